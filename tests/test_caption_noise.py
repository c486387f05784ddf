"""Caption noise: a noisy render contradicts its caption in the tag's attribute and in nothing else,
and a noise-free pretraining batch is exactly what it was before the option existed."""

import numpy as np
import pytest
import torch

from superflow.evaluation.geneval_rules import score_detections
from superflow.world.caption_noise import disagreeing_scene, disagreeing_text
from superflow.world.detector import detect
from superflow.world.pretrain import PretrainConfig, WorldRecord, _batch, load_world_records, render_record
from superflow.world.prompts import make_splits
from superflow.world.render import render_scene
from superflow.world.spec import TAGS
from superflow.world.text import TEXT_ALPHABET, make_text_splits


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    make_splits(root / "geneval", n_train=600, n_test=60, seed=0)
    make_text_splits(root / "ocr", n_train=100, n_test=20, seed=0)
    return root


def _by_tag(world):
    pools: dict[str, list[WorldRecord]] = {}
    for r in load_world_records(world, "train"):
        pools.setdefault("text" if r.kind == "text" else r.metadata["tag"], []).append(r)
    return pools


def _strict(image, metadata):
    return float(score_detections(detect(image), metadata).correct)


@pytest.mark.parametrize("tag", TAGS)
def test_a_noisy_render_fails_its_caption_and_a_clean_one_passes(world, tag):
    records = _by_tag(world)[tag][:12]
    rng = np.random.default_rng(0)
    for record in records:
        noisy = disagreeing_scene(record.metadata, rng)
        assert _strict(render_scene(noisy, 32, rng), record.metadata) == 0.0, (record.prompt, noisy["include"])
        assert _strict(render_scene(noisy, 32, rng), noisy) == 1.0  # a faithful render of the changed record
        assert _strict(render_scene(record.metadata, 32, rng), record.metadata) == 1.0


def test_only_the_tested_attribute_changes():
    rng = np.random.default_rng(1)
    position = {
        "tag": "position",
        "include": [{"class": "ring", "count": 1}, {"class": "square", "count": 1, "position": ["left of", 0]}],
    }
    assert disagreeing_scene(position, rng)["include"][1] == {
        "class": "square",
        "count": 1,
        "position": ["right of", 0],
    }
    swapped = {
        "tag": "color_attr",
        "include": [{"class": "ring", "count": 1, "color": "red"}, {"class": "square", "count": 1, "color": "blue"}],
    }
    assert [i["color"] for i in disagreeing_scene(swapped, rng)["include"]] == ["blue", "red"]
    counts = {
        disagreeing_scene({"tag": "counting", "include": [{"class": "ring", "count": 1}]}, rng)["include"][0]["count"]
        for _ in range(20)
    }
    assert counts == {2}  # one below 1 is nothing, so 1 becomes 2
    assert position["include"][1]["position"] == ["left of", 0]  # the input is not modified


def test_a_noisy_sign_differs_in_exactly_one_character():
    rng = np.random.default_rng(2)
    for text in ("AF", "YX3", "MNPR"):
        for _ in range(10):
            noisy = disagreeing_text(text, rng)
            assert len(noisy) == len(text) and sum(a != b for a, b in zip(noisy, text)) == 1
            assert set(noisy) <= set(TEXT_ALPHABET)


def test_zero_noise_renders_the_same_batch_as_before(world):
    pools = _by_tag(world)
    cfg = PretrainConfig(data_dir=str(world), batch_size=16)
    # The batch as it was rendered before the option existed: no draw for the noise at all.
    rng = np.random.default_rng([cfg.seed, 3])
    scene_tags = sorted(k for k in pools if k != "text")
    expected = []
    for _ in range(cfg.batch_size):
        kind = "text" if rng.random() < cfg.text_fraction else scene_tags[int(rng.integers(len(scene_tags)))]
        record = pools[kind][int(rng.integers(len(pools[kind])))]
        expected.append(render_record(record, cfg.image_size, rng, cfg.text_position_jitter))
        rng.random()  # the CFG-dropout draw
    images, _ = _batch(pools, cfg, 3)
    torch.testing.assert_close(images, torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).float() / 127.5 - 1)


def test_noise_hits_about_its_share_of_the_images(world, monkeypatch):
    import superflow.world.pretrain as pretrain_module

    calls = []
    real = pretrain_module.noisy_record
    monkeypatch.setattr(
        pretrain_module, "noisy_record", lambda record, rng, *mode: calls.append(1) or real(record, rng, *mode)
    )
    pools = _by_tag(world)
    _batch(pools, PretrainConfig(data_dir=str(world), batch_size=256, caption_noise=0.35), 7)
    assert 60 < len(calls) < 120  # Binomial(256, 0.35): mean 89.6, std 7.6


def test_a_swapped_sign_exchanges_two_different_neighbours():
    rng = np.random.default_rng(0)
    for text in ("K97", "P4KH", "HH9H", "AB"):
        for _ in range(30):
            noisy = disagreeing_text(text, rng, mode="swap")
            moved = [i for i, (a, b) in enumerate(zip(text, noisy)) if a != b]
            assert sorted(noisy) == sorted(text) and len(moved) == 2 and moved[1] == moved[0] + 1
    same = disagreeing_text("HHH", rng, mode="swap")  # no two different neighbours: a substitution
    assert sum(a != b for a, b in zip("HHH", same)) == 1
    with pytest.raises(ValueError, match="sign noise mode"):
        disagreeing_text("AB", rng, mode="shuffle")
