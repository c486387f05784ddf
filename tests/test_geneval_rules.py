"""GenEval's rules on hand-built detections: every tag and every edge."""

import pytest

from superflow.evaluation.geneval_rules import Detection, relative_position, score_detections, summarize


def det(cls, x, y, size=10, score=0.95, color=None, **kw):
    return Detection(cls=cls, box=(x, y, x + size, y + size), score=score, color=color, **kw)


def test_single_object_and_confidence_threshold():
    meta = {"tag": "single_object", "include": [{"class": "cat", "count": 1}]}
    assert score_detections([det("cat", 0, 0)], meta).correct
    low = score_detections([det("cat", 0, 0, score=0.3)], meta)  # must be strictly above 0.3
    assert not low.correct and low.reason == "expected cat>=1, found 0" and low.partial == 0
    assert score_detections([det("cat", 0, 0, score=0.31)], meta).correct


def test_counting_uses_the_stricter_threshold_and_exclude():
    meta = {"tag": "counting", "include": [{"class": "cup", "count": 2}], "exclude": [{"class": "cup", "count": 3}]}
    two = [det("cup", 0, 0), det("cup", 20, 0)]
    assert score_detections(two, meta).correct
    unsure = [det("cup", 0, 0), det("cup", 20, 0, score=0.85)]  # 0.85 < 0.9 for counting
    r = score_detections(unsure, meta)
    assert not r.correct and r.partial == pytest.approx((0.5 + 1) / 2)
    three = two + [det("cup", 40, 0)]
    r = score_detections(three, meta)
    assert not r.correct and "expected cup<3, found 3" in r.reason
    assert r.partial == pytest.approx((max(0, 1 - 1 / 2) + 0) / 2)
    four_needed = {
        "tag": "counting",
        "include": [{"class": "cup", "count": 4}],
        "exclude": [{"class": "cup", "count": 5}],
    }
    assert score_detections([det("cup", 12 * i, 0) for i in range(1)], four_needed).partial == pytest.approx(
        (0.25 + 1) / 2
    )


def test_two_objects_and_other_objects_are_ignored():
    meta = {"tag": "two_object", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}]}
    assert score_detections([det("cat", 0, 0), det("dog", 30, 0), det("bird", 50, 50)], meta).correct
    r = score_detections([det("cat", 0, 0)], meta)
    assert not r.correct and r.partial == 0.5 and r.reason == "expected dog>=1, found 0"


def test_colours_decide_on_the_most_confident_objects():
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}]}
    assert score_detections([det("car", 0, 0, color="red")], meta).correct
    r = score_detections([det("car", 0, 0, score=0.99, color="blue"), det("car", 20, 0, score=0.5, color="red")], meta)
    # partial: two cars found for one asked scores 1 - |1 - 2| / 1 = 0 on the count, and 0 on colour
    assert not r.correct and "expected red car>=1, found 1 blue" in r.reason and r.partial == 0
    scored = Detection("car", (0, 0, 5, 5), 0.9, color_scores={"red": 0.2, "blue": 0.7})
    assert not score_detections([scored], meta).correct


def test_colour_attribution_needs_both_colours():
    meta = {
        "tag": "color_attr",
        "include": [{"class": "cat", "count": 1, "color": "red"}, {"class": "dog", "count": 1, "color": "blue"}],
    }
    good = [det("cat", 0, 0, color="red"), det("dog", 30, 0, color="blue")]
    swapped = [det("cat", 0, 0, color="blue"), det("dog", 30, 0, color="red")]
    assert score_detections(good, meta).correct and score_detections(good, meta).partial == 1
    r = score_detections(swapped, meta)
    assert not r.correct and r.partial == pytest.approx(0.5)  # both counts met, both colours wrong


@pytest.mark.parametrize(
    "relation,dx,dy", [("left of", -30, 0), ("right of", 30, 0), ("above", 0, -30), ("below", 0, 30)]
)
def test_each_relation(relation, dx, dy):
    meta = {
        "tag": "position",
        "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1, "position": [relation, 0]}],
    }
    assert score_detections([det("dog", 50, 50), det("cat", 50 + dx, 50 + dy)], meta).correct
    r = score_detections([det("dog", 50, 50), det("cat", 50 - dx, 50 - dy)], meta)
    assert not r.correct and r.partial == pytest.approx(2 / 3)


def test_position_margin_edge():
    # boxes of width 10: the offset shrinks by 0.1 * 20 = 2 and is divided by the original length,
    # so a relation needs |offset| - 2 > 0.5 |offset|, i.e. centres more than 4 apart
    assert relative_position((0, 0, 10, 10), (4.1, 0, 14.1, 10)) == {"left of"}
    assert relative_position((0, 0, 10, 10), (3.9, 0, 13.9, 10)) == set()
    assert relative_position((0, 0, 10, 10), (2, 0, 12, 10)) == set()
    # diagonal at 45 degrees: both components are 0.707 > 0.5
    assert relative_position((0, 0, 2, 2), (30, 30, 32, 32)) == {"left of", "above"}
    # mostly horizontal: dy component below 0.5 is not a relation
    assert relative_position((0, 0, 2, 2), (30, 10, 32, 12)) == {"left of"}


def test_position_without_target_fails_with_reason():
    meta = {
        "tag": "position",
        "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1, "position": ["left of", 0]}],
    }
    r = score_detections([det("cat", 0, 0)], meta)
    assert not r.correct and "no target for cat to be left of" in r.reason and r.partial == pytest.approx(1 / 3)


def test_summary_is_mean_of_per_tag_accuracy():
    results = []
    for tag, outcomes in {"a": [True, True, False, False], "b": [True]}.items():
        for ok in outcomes:
            meta = {"tag": tag, "include": [{"class": "x", "count": 1}]}
            results.append(score_detections([det("x", 0, 0)] if ok else [], meta))
    s = summarize(results)
    assert s["per_tag"] == {"a": 0.5, "b": 1.0} and s["overall"] == 0.75 and s["correct_images"] == 0.6
