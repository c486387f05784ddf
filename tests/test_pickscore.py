"""PickScore: a tiny random CLIP saved to folders loads through the real code path and scores as the reference does."""

import numpy as np
import pytest
import torch

from superflow.models.weights import WeightsNotFoundError
from superflow.rewards import get_reward
from superflow.rewards.pickscore import PAPER_SCALE

transformers = pytest.importorskip("transformers")
PROMPTS = ["a photo of a cat", "a red bus on a street", "two dogs", 'a sign that says "K7"']


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from superflow.models.tiny_sd3 import build_clip_tokenizer

    root = tmp_path_factory.mktemp("pickscore")
    tokenizer = build_clip_tokenizer()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(root / "processor")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
        projection_dim=16,
    )
    model = CLIPModel(config)
    model.save_pretrained(root / "model")
    return root, model.eval()


def images(n: int, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_scores_equal_a_direct_transformers_computation(folders):
    from PIL import Image
    from transformers import AutoProcessor

    root, model = folders
    reward = get_reward(
        "pickscore", model_path=str(root / "model"), processor_path=str(root / "processor"), device="cpu", batch_size=3
    )
    batch = images(4)
    scores, info = reward(batch, PROMPTS)
    processor = AutoProcessor.from_pretrained(root / "processor")
    pil = [Image.fromarray(a) for a in (batch.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)]
    with torch.no_grad():
        image_inputs = processor(images=pil, return_tensors="pt")
        text_inputs = processor(text=PROMPTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
        img = model.get_image_features(**image_inputs)
        txt = model.get_text_features(**text_inputs)
        img = getattr(img, "pooler_output", img)
        txt = getattr(txt, "pooler_output", txt)
        img, txt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
        expected = (model.logit_scale.exp() * txt @ img.T).diag()
    np.testing.assert_allclose(scores, expected.numpy() * PAPER_SCALE, rtol=1e-4, atol=1e-5)
    assert info["pickscore_raw"] == pytest.approx(float(expected.mean()), rel=1e-4)
    assert not np.allclose(scores, scores[0])  # prompts and images matter


def test_missing_folders_name_what_to_download(folders, tmp_path, monkeypatch):
    root, _ = folders
    monkeypatch.delenv("SUPERFLOW_PICKSCORE_PATH", raising=False)
    with pytest.raises(
        WeightsNotFoundError, match=r"PickScore model weights not found.*nothing.*yuvalkirstain/PickScore_v1"
    ):
        get_reward("pickscore", model_path=str(tmp_path / "nothing"), processor_path=str(root / "processor"))
    empty = tmp_path / "config_only"
    empty.mkdir()
    (empty / "config.json").write_text((root / "model" / "config.json").read_text())
    with pytest.raises(WeightsNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        get_reward("pickscore", model_path=str(empty), processor_path=str(root / "processor"))


def test_a_silently_broken_tokenizer_is_an_error(folders, tmp_path):
    from transformers import AutoProcessor, CLIPProcessor, CLIPTokenizer

    root, _ = folders
    processor = AutoProcessor.from_pretrained(root / "processor")
    two_tokens = CLIPTokenizer(
        vocab={"<|startoftext|>": 0, "<|endoftext|>": 1}, merges=[]
    )  # the offline trap's result
    CLIPProcessor(image_processor=processor.image_processor, tokenizer=two_tokens).save_pretrained(tmp_path / "broken")
    with pytest.raises(WeightsNotFoundError, match="tokenizer loaded from .*broken is unusable"):
        get_reward("pickscore", model_path=str(root / "model"), processor_path=str(tmp_path / "broken"))
