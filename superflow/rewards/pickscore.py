"""PickScore (Kirstain et al. 2023), the paper's preference reward, computed as its reference does.

score = exp(logit_scale) * cos(text embedding, image embedding), with PickScore_v1's CLIP-H model
and the CLIP-ViT-H-14 (laion2B) processor. Flow-GRPO trains on score / 26 and the paper's table
reports that scaled value; the reward returns ``score * scale`` (``scale`` = 1/26 by default) and
the raw score in its info (``pickscore_raw``).

Weights come from local folders only (config path, then environment variable, then the Hugging
Face cache, never a download). What is loaded is validated, because an offline ``from_pretrained``
of a missing tokenizer can succeed with a useless 2-token vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from superflow.models.weights import WeightsNotFoundError, WeightSpec, resolve_weights
from superflow.rewards.registry import register_reward
from superflow.rewards.simple import to_uint8

PICKSCORE_MODEL = WeightSpec(
    component="PickScore model",
    config_key="reward.kwargs.model_path",
    env_var="SUPERFLOW_PICKSCORE_PATH",
    repo_id="yuvalkirstain/PickScore_v1",
    required_files=("config.json",),
    how_to_obtain=(
        "On a machine with internet access run `huggingface-cli download yuvalkirstain/PickScore_v1 --local-dir DIR`, "
        "copy DIR here and set reward.kwargs.model_path (or SUPERFLOW_PICKSCORE_PATH) to it."
    ),
)
PICKSCORE_PROCESSOR = WeightSpec(
    component="PickScore processor (CLIP-ViT-H-14 tokenizer and image preprocessing)",
    config_key="reward.kwargs.processor_path",
    env_var="SUPERFLOW_PICKSCORE_PROCESSOR_PATH",
    repo_id="laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    required_files=("tokenizer_config.json",),
    how_to_obtain=(
        "On a machine with internet access run `huggingface-cli download laion/CLIP-ViT-H-14-laion2B-s32B-b79K "
        "preprocessor_config.json tokenizer_config.json tokenizer.json vocab.json merges.txt special_tokens_map.json "
        "--local-dir DIR`, copy DIR here and set reward.kwargs.processor_path (or SUPERFLOW_PICKSCORE_PROCESSOR_PATH)."
    ),
)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# the hub folder has preprocessor_config.json; transformers 5's save_pretrained writes processor_config.json
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
PAPER_SCALE = 1 / 26


class PickScoreScorer:
    """The reference computation, batched; half precision on a GPU unless ``dtype`` says otherwise."""

    def __init__(
        self,
        model_path: str | None = None,
        processor_path: str | None = None,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 32,
    ):
        from transformers import AutoProcessor, CLIPModel

        model_dir = resolve_weights(PICKSCORE_MODEL, model_path)
        processor_dir = resolve_weights(PICKSCORE_PROCESSOR, processor_path)
        if not any((model_dir / f).exists() for f in WEIGHT_FILES):
            raise WeightsNotFoundError(
                f"PickScore model folder {model_dir} has config.json but no {' or '.join(WEIGHT_FILES)}. "
                + PICKSCORE_MODEL.how_to_obtain
            )
        if not any((processor_dir / f).exists() for f in PROCESSOR_FILES):
            raise WeightsNotFoundError(
                f"PickScore processor folder {processor_dir} has no {' or '.join(PROCESSOR_FILES)}. "
                + PICKSCORE_PROCESSOR.how_to_obtain
            )
        self.device = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        )
        torch_dtype = (
            getattr(torch, dtype) if dtype else (torch.float16 if self.device.type == "cuda" else torch.float32)
        )
        self.processor = AutoProcessor.from_pretrained(processor_dir, local_files_only=True)
        self.model = CLIPModel.from_pretrained(model_dir, local_files_only=True).eval().to(self.device, torch_dtype)
        self.model.requires_grad_(False)
        self.dtype, self.batch_size = torch_dtype, int(batch_size)
        validate_clip_tokenizer(self.processor.tokenizer, self.model.config.text_config.vocab_size, processor_dir)

    @torch.no_grad()
    def __call__(self, images: Sequence, prompts: Sequence[str]) -> torch.Tensor:
        """Raw PickScore per (image, prompt) pair; ``images`` are PIL images or uint8 [H, W, 3] arrays."""
        out = []
        for start in range(0, len(prompts), self.batch_size):
            imgs, texts = list(images[start : start + self.batch_size]), list(prompts[start : start + self.batch_size])
            image_inputs = self.processor(images=imgs, return_tensors="pt")
            text_inputs = self.processor(text=texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
            pixel_values = image_inputs["pixel_values"].to(self.device, self.dtype)
            image_embs = self.model.get_image_features(pixel_values=pixel_values)
            text_embs = self.model.get_text_features(**{k: v.to(self.device) for k, v in text_inputs.items()})
            image_embs = _as_tensor(image_embs)
            text_embs = _as_tensor(text_embs)
            image_embs = image_embs / image_embs.norm(p=2, dim=-1, keepdim=True)
            text_embs = text_embs / text_embs.norm(p=2, dim=-1, keepdim=True)
            out.append((self.model.logit_scale.exp() * (text_embs * image_embs).sum(-1)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)


def _as_tensor(features) -> torch.Tensor:
    # transformers 5 may return a model output holding the pooled embedding instead of a tensor
    if isinstance(features, torch.Tensor):
        return features
    for name in ("pooler_output", "image_embeds", "text_embeds"):
        value = getattr(features, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"unexpected CLIP feature output {type(features).__name__}")


def validate_clip_tokenizer(tokenizer, model_vocab_size: int, folder) -> None:
    """Turn a silently broken tokenizer (the offline 2-token trap) into a clear error."""
    size = len(tokenizer)
    ids = tokenizer("a photo of a cat")["input_ids"]
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id}
    if size < 3 or not [i for i in ids if i not in special]:
        raise WeightsNotFoundError(
            f"the tokenizer loaded from {folder} is unusable (vocabulary of {size}; 'a photo of a cat' -> {ids}): "
            "its vocab.json/merges.txt or tokenizer.json are missing. " + PICKSCORE_PROCESSOR.how_to_obtain
        )
    if size > model_vocab_size:
        raise WeightsNotFoundError(
            f"the tokenizer from {folder} has {size} tokens but the PickScore model's text encoder has "
            f"{model_vocab_size}: the processor and model folders do not belong together"
        )


@register_reward("pickscore")
def pickscore(
    model_path: str | None = None,
    processor_path: str | None = None,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int = 32,
    scale: float = PAPER_SCALE,
):
    """PickScore * ``scale`` (1/26: Flow-GRPO's training reward and the paper's table value)."""
    scorer = PickScoreScorer(model_path, processor_path, device=device, dtype=dtype, batch_size=batch_size)

    def score(images, prompts, metadata):
        raw = scorer(list(to_uint8(images)), prompts)
        return raw * scale, {
            "pickscore_raw": float(raw.mean()) if len(raw) else float("nan"),
            "per_image": {"pickscore_raw": raw.numpy().astype(np.float64)},
        }

    return score
