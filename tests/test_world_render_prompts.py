"""The mini world's prompts and renders: schema, splits, determinism, validity."""

import json
from collections import Counter

import numpy as np
import pytest

from superflow.world.prompts import make_splits
from superflow.world.render import render_scene
from superflow.world.spec import BACKGROUND, COLOURS, RELATIONS, SHAPES, TAGS
from superflow.world.text import TEXT_ALPHABET, TEXT_LENGTHS, make_text_prompts, make_text_splits, render_text


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return make_splits(out, n_train=2000, n_test=300, seed=0), out


def test_vocabulary_is_large_enough():
    assert len(SHAPES) >= 5 and len(COLOURS) >= 6 and set(RELATIONS) == {"left of", "right of", "above", "below"}


def test_splits_follow_geneval_schema_hold_out_compositions_and_balance_tags(splits):
    (train, test), out = splits
    assert len(train) == 2000 and len(test) == 300 and len({r["prompt"] for r in test}) == 300
    on_disk = [json.loads(x) for x in (out / "test_metadata.jsonl").read_text().splitlines()]
    assert on_disk == test
    test_tags = Counter(r["tag"] for r in test)
    assert set(test_tags) == set(TAGS)
    assert test_tags["single_object"] == len(SHAPES) * 3 and test_tags["two_object"] == 45  # all there are
    assert test_tags["counting"] == test_tags["colors"] == test_tags["position"] == 50
    assert test_tags["color_attr"] == 300 - 18 - 45 - 3 * 50  # the largest tag fills up

    def key(r):
        return json.dumps(r["include"], sort_keys=True)

    for tag in ("position", "color_attr"):  # compositions: no test requirement set is trained on
        assert not {key(r) for r in train if r["tag"] == tag} & {key(r) for r in test if r["tag"] == tag}, tag
    for tag in ("single_object", "two_object", "counting", "colors"):  # every shape and colour is trained on
        assert {key(r) for r in test if r["tag"] == tag} <= {key(r) for r in train if r["tag"] == tag}, tag
    for r in train + test:
        assert set(r) <= {"tag", "include", "exclude", "prompt"}
        for item in r["include"]:
            assert item["class"] in SHAPES and 1 <= item["count"] <= 4
            assert item.get("color", "red") in COLOURS
            if "position" in item:
                assert item["position"][0] in RELATIONS and 0 <= item["position"][1] < len(r["include"])
        if r["tag"] == "counting":
            assert r["exclude"] == [{"class": r["include"][0]["class"], "count": r["include"][0]["count"] + 1}]


def test_splits_are_deterministic(tmp_path):
    assert make_splits(tmp_path / "a", seed=3) == make_splits(tmp_path / "b", seed=3)
    assert make_splits(tmp_path / "c", seed=4) != make_splits(tmp_path / "a", seed=3)


def test_renders_are_deterministic_and_show_the_requested_colours(splits):
    (train, _), _ = splits
    for record in train[:200]:
        a = render_scene(record, 32, np.random.default_rng(1))
        b = render_scene(record, 32, np.random.default_rng(1))
        assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        pixels = {tuple(p) for p in a.reshape(-1, 3)}
        for item in record["include"]:
            if "color" in item:
                assert tuple(COLOURS[item["color"]]) in pixels, record["prompt"]
        assert tuple(BACKGROUND) in pixels


def test_position_renders_respect_the_relation(splits):
    (train, _), _ = splits
    for record in [r for r in train if r["tag"] == "position"][:60]:
        meta = {
            **record,
            "include": [{**record["include"][0], "color": "red"}, {**record["include"][1], "color": "blue"}],
        }
        img = render_scene(meta, 32, np.random.default_rng(0))

        def centre(c, img=img):
            return np.argwhere(np.all(img == COLOURS[c], axis=-1)).mean(axis=0)

        (by, bx), (ay, ax) = centre("red"), centre("blue")  # include[0] is the reference, include[1] is placed
        relation = record["include"][1]["position"][0]
        expected = {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[relation]
        assert expected, (record["prompt"], (ay, ax), (by, bx))


def test_text_prompts_and_renders(tmp_path):
    train, test = make_text_splits(tmp_path, n_train=500, n_test=100, seed=0)
    assert len(train) == 500 and len(test) == 100

    def targets(ps):
        return {p.split('"')[1] for p in ps}

    assert not targets(train) & targets(test)
    for p in make_text_prompts(50, seed=1):
        t = p.split('"')[1]
        assert len(t) in TEXT_LENGTHS and set(t) <= set(TEXT_ALPHABET)
    img = render_text("K7", 32, np.random.default_rng(0))
    assert img.shape == (32, 32, 3) and np.array_equal(img, render_text("K7", 32, np.random.default_rng(0)))
    assert (img.min(axis=-1) < 100).sum() > 10  # ink is on the canvas
    assert not np.array_equal(render_text("K7"), render_text("7K"))
