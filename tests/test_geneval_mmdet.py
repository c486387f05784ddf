"""GenEval's mmdet backend feeds the shared rules unchanged: result conversion, colour crops, errors."""

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from superflow.evaluation.geneval_mmdet import (
    COLORS,
    CROP_BACKGROUND,
    assign_colours,
    coco_classes,
    crop_for_colour,
    detections_from_mmdet,
)
from superflow.evaluation.geneval_rules import score_detections
from superflow.rewards import get_reward

CLASSES = coco_classes()


def mmdet2_result(objects, shape=(64, 64)):
    """mmdet 2.x layout: per class an [N, 5] box array and N masks."""
    boxes = [np.zeros((0, 5), np.float32) for _ in CLASSES]
    masks = [[] for _ in CLASSES]
    for cls, box, score in objects:
        k = CLASSES.index(cls)
        boxes[k] = np.vstack([boxes[k], [*box, score]]).astype(np.float32)
        mask = np.zeros(shape, bool)
        mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
        masks[k].append(mask)
    return boxes, masks


def test_object_names_are_cocos_80_in_order():
    assert len(CLASSES) == 80 and CLASSES[:3] == ["person", "bicycle", "car"] and CLASSES[-1] == "toothbrush"


def test_mmdet2_results_go_through_the_shared_rules():
    result = mmdet2_result(
        [("dog", (2, 2, 20, 20), 0.95), ("dog", (40, 2, 60, 20), 0.5), ("cat", (2, 40, 20, 60), 0.2)]
    )
    dets, masks = detections_from_mmdet(result, CLASSES, (64, 64))
    assert [(d.cls, d.score) for d in dets] == [
        ("cat", pytest.approx(0.2)),
        ("dog", pytest.approx(0.95)),
        ("dog", pytest.approx(0.5)),
    ]
    assert all(m.shape == (64, 64) for m in masks)
    two_dogs = {
        "tag": "counting",
        "include": [{"class": "dog", "count": 2}],
        "exclude": [{"class": "dog", "count": 3}],
    }
    assert not score_detections(dets, two_dogs).correct  # counting keeps only confidence > 0.9: one dog
    dog_and_cat = {"tag": "two_object", "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1}]}
    assert not score_detections(dets, dog_and_cat).correct  # the cat is below 0.3
    dog_left = {
        "tag": "position",
        "include": [{"class": "dog", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}],
    }
    assert score_detections(dets, {"tag": "two_object", "include": [{"class": "dog", "count": 2}]}).correct
    assert not score_detections(dets, dog_left).correct  # the same most-confident dog cannot be left of itself
    with pytest.raises(ValueError, match="returned 3 classes"):
        detections_from_mmdet(([np.zeros((0, 5))] * 3, [[]] * 3), CLASSES, (64, 64))


def test_mmdet3_results_convert_to_the_same_detections():
    boxes, _ = mmdet2_result([("dog", (2, 2, 20, 20), 0.95), ("cat", (2, 40, 20, 60), 0.6)])
    inst = SimpleNamespace(
        bboxes=torch.tensor([[2, 2, 20, 20], [2, 40, 20, 60]], dtype=torch.float32),
        scores=torch.tensor([0.95, 0.6]),
        labels=torch.tensor([CLASSES.index("dog"), CLASSES.index("cat")]),
        masks=torch.zeros(2, 64, 64, dtype=torch.bool),
    )
    dets3, _ = detections_from_mmdet(SimpleNamespace(pred_instances=inst), CLASSES, (64, 64))
    dets2, _ = detections_from_mmdet(boxes, CLASSES, (64, 64))
    assert [(d.cls, d.box, round(d.score, 4)) for d in dets3] == [(d.cls, d.box, round(d.score, 4)) for d in dets2]


def test_colour_crops_and_decisions_follow_geneval():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :] = (0, 0, 255)
    image[2:20, 2:20] = (255, 0, 0)
    mask = np.zeros((64, 64), bool)
    mask[4:18, 4:18] = True
    crop = np.asarray(crop_for_colour(image, (2, 2, 22, 22), mask))
    assert crop.shape == (20, 20, 3)
    assert tuple(crop[0, 0]) == CROP_BACKGROUND and tuple(crop[5, 5]) == (255, 0, 0)  # outside the mask: #999

    result = mmdet2_result(
        [("car", (2, 2, 20, 20), 0.9), ("car", (30, 30, 50, 50), 0.8), ("car", (40, 2, 60, 20), 0.4)]
    )
    dets, masks = detections_from_mmdet(result, CLASSES, (64, 64))
    asked = []

    def classify(crops, cls):  # mean red channel decides: red or blue
        asked.append((cls, len(crops)))
        return [
            {c: (1.0 if c == ("red" if np.asarray(x)[..., 0].mean() > 150 else "blue") else 0.0) for c in COLORS}
            for x in crops
        ]

    meta = {"tag": "color_attr", "include": [{"class": "car", "count": 2, "color": "red"}]}
    assign_colours(image, dets, masks, meta, classify)
    assert asked == [("car", 2)]  # only the two most confident cars are classified, as GenEval does
    assert [d.decided_color for d in dets] == ["red", "blue", None]
    result = score_detections(dets, meta)
    # partial: count 1 - |2 - 3| / 2 (three cars above 0.3) and colour 1 / 2 red
    assert not result.correct and result.partial == pytest.approx((0.5 + 0.5) / 2)


def test_mmdet_backend_says_what_to_install():
    if importlib.util.find_spec("mmdet") is not None:
        pytest.skip("mmdet is installed here")
    with pytest.raises(ImportError, match="envs/geneval.yaml.*served"):
        get_reward("geneval", backend="mmdet")
    with pytest.raises(ValueError, match="backend must be 'mmdet' or 'mini'"):
        get_reward("geneval", backend="yolo")


def test_mini_backend_is_geneval_mini():
    from superflow.world.render import render_scene

    meta = {
        "tag": "colors",
        "include": [{"class": "square", "count": 1, "color": "red"}],
        "prompt": "a photo of a red square",
    }
    images = (
        torch.from_numpy(np.stack([render_scene(meta, 32, np.random.default_rng(i)) for i in range(3)])).permute(
            0, 3, 1, 2
        )
        / 255
    )
    a, info_a = get_reward("geneval", backend="mini", mode="strict")(images, [meta["prompt"]] * 3, [meta] * 3)
    b, _ = get_reward("geneval_mini", mode="strict")(images, [meta["prompt"]] * 3, [meta] * 3)
    assert a.tolist() == b.tolist() == [1.0, 1.0, 1.0] and info_a["per_image"]["partial"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.slow
def test_real_mmdet_backend_runs_where_installed(tmp_path):
    """Where mmdet is installed: the real config lookup, checkpoint loading, Mask2Former inference and
    result conversion, on a randomly initialised model saved where the real checkpoint would be.
    CLIP colours run too where open_clip imports; otherwise a stand-in colour classifier."""
    mmdet = pytest.importorskip("mmdet")
    from pathlib import Path

    from mmdet.apis import init_detector

    from superflow.evaluation.geneval_mmdet import MASK2FORMER, Mask2FormerDetector, mmdet_config_path
    from superflow.evaluation.geneval_rules import Detection
    from superflow.rewards.geneval import geneval_scorer

    config = mmdet_config_path(Path(mmdet.__file__).parent)
    random_model = init_detector(str(config), None, device="cpu")
    (tmp_path / "det").mkdir()
    torch.save({"state_dict": random_model.state_dict(), "meta": {}}, tmp_path / "det" / f"{MASK2FORMER}.pth")
    colours = None
    try:
        import open_clip

        (tmp_path / "clip").mkdir()
        torch.save(open_clip.create_model("ViT-L-14").state_dict(), tmp_path / "clip" / "open_clip_pytorch_model.bin")
    except (ImportError, RuntimeError):  # no open_clip, or a torchvision built for another torch
        asked = []

        def colours(crops, cls):
            asked.append((len(crops), cls))
            return [dict.fromkeys(COLORS, 0.0) | {"red": 1.0} for _ in crops]

    detector = Mask2FormerDetector(
        str(tmp_path / "det"), clip_path=str(tmp_path / "clip"), device="cpu", colours=colours
    )
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    meta = {
        "tag": "two_object",
        "include": [{"class": "dog", "count": 1}, {"class": "cup", "count": 1}],
        "prompt": "a photo of a dog and a cup",
    }
    found = detector.detect(image, meta)
    # A random Mask2Former still returns its queries as scored detections: the conversion ran.
    assert found and all(isinstance(d, Detection) and d.cls in CLASSES for d in found)
    reward = geneval_scorer(detector.detect, "partial")
    scores, info = reward(
        torch.from_numpy(np.stack([image, image])).permute(0, 3, 1, 2) / 255, [meta["prompt"]] * 2, [meta] * 2
    )
    assert np.asarray(scores).shape == (2,) and all(0.0 <= float(v) <= 1.0 for v in scores)
    assert set(info["per_image"]) >= {"strict", "partial"}
