"""Held-out evaluation: per-tag summaries, per-image extra metrics, and the trainer using the same path."""

import numpy as np
import pytest
import torch

from superflow.evaluation.runner import evaluate_policy
from superflow.models.mini import MiniFlowConfig, MiniFlowNet, MiniFlowPolicy, PromptTokenizer
from superflow.prompts import PromptSet
from superflow.rewards.registry import Reward

PROMPTS = [
    "a photo of a red circle",
    "a photo of two blue squares",
    "a photo of a green ring",
    "a photo of a red square",
]
TAGS = ["single_object", "counting", "single_object", "colors"]


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    tok = PromptTokenizer.build(PROMPTS)
    return MiniFlowPolicy(net=MiniFlowNet(MiniFlowConfig(channels=(8, 16, 16), vocab=tok.vocab)))


def brightness_with_extras(images, prompts, metadata):
    value = images.float().mean(dim=(1, 2, 3)).numpy()
    return value, {"per_image": {"double": 2 * value, "is_ring": np.array([float("ring" in p) for p in prompts])}}


def test_per_tag_and_per_image_metrics_are_summarised(policy):
    prompts = PromptSet(PROMPTS, [{"tag": t} for t in TAGS], "test")
    reward = Reward("brightness", brightness_with_extras)
    out = evaluate_policy(policy, prompts, reward, images_per_prompt=2, num_steps=2, guidance_scale=1.0, batch_size=3)
    assert out["images"] == 8 and set(out["per_tag"]) == {"single_object", "counting", "colors"}
    assert out["tag_mean"] == pytest.approx(np.mean(list(out["per_tag"].values())))
    assert out["double"]["mean"] == pytest.approx(2 * out["mean"])
    assert out["double"]["per_tag"]["counting"] == pytest.approx(2 * out["per_tag"]["counting"])
    assert out["is_ring"]["per_tag"] == {"single_object": 0.5, "counting": 0.0, "colors": 0.0}
    again = evaluate_policy(
        policy, prompts, reward, images_per_prompt=2, num_steps=2, guidance_scale=1.0, batch_size=8
    )
    assert again["mean"] == pytest.approx(out["mean"], abs=1e-6)  # noise is per prompt and image, not per batch
    other_seed = evaluate_policy(policy, prompts, reward, images_per_prompt=2, num_steps=2, guidance_scale=1.0, seed=7)
    assert other_seed["mean"] != pytest.approx(out["mean"], abs=1e-6)


def test_samples_are_saved_in_genevals_folder_layout(policy, tmp_path):
    import json

    from PIL import Image

    prompts = PromptSet(PROMPTS[:2], [{"tag": "single_object", "include": [{"class": "circle", "count": 1}]}] * 2, "t")
    reward = Reward("brightness", brightness_with_extras)
    evaluate_policy(policy, prompts, reward, images_per_prompt=2, num_steps=2, guidance_scale=1.0, save_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000", "00001"]
    meta = json.loads((tmp_path / "00001" / "metadata.jsonl").read_text())
    assert meta["prompt"] == PROMPTS[1] and meta["include"] == [{"class": "circle", "count": 1}]
    assert sorted(p.name for p in (tmp_path / "00000" / "samples").iterdir()) == ["0000.png", "0001.png"]
    assert Image.open(tmp_path / "00000" / "samples" / "0001.png").size == (32, 32)
