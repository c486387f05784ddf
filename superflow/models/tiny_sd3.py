"""A tiny, randomly initialised Stable Diffusion 3 pipeline built offline from configs.

No SD3 weights can be downloaded on our machines, yet the paper-scale code path (diffusers'
``StableDiffusion3Pipeline`` with a peft LoRA) must be exercised end to end. This builds every part of
that pipeline from small configs, tokenizers included (no vocabulary ships with transformers or
diffusers), deterministically from a seed, so tests and the CPU demo run the real SD3 code.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

CLIP_MAX_LENGTH = 77
T5_MAX_LENGTH = 256
_WORDS = (
    "a an the of on in with and photo picture sign that says red green blue yellow purple orange "
    "white black pink brown cat dog car tree house apple cube ball sun flower two three four table "
    "street sky garden door balloon rose bowl cherries umbrella rain truck fire"
).split()


def _byte_alphabet() -> list[str]:
    """GPT-2/CLIP's reversible map from the 256 bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _clip_tokenizer(folder: Path):
    """A byte-level CLIP BPE tokenizer with no merges: every character is its own token."""
    from transformers import CLIPTokenizer

    chars = _byte_alphabet()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=CLIP_MAX_LENGTH,
        pad_token="<|endoftext|>",
    )


def _t5_tokenizer():
    """A word-level T5-style tokenizer over a small vocabulary (unknown words map to <unk>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_max_length=T5_MAX_LENGTH,
    )


def build_tiny_sd3_pipeline(seed: int = 0, sample_size: int = 32):
    """Every part of an SD3 pipeline, tiny and random, float32 on the CPU, same seed -> same weights."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    with tempfile.TemporaryDirectory() as tmp:
        clip_tokenizer = _clip_tokenizer(Path(tmp))
    t5_tokenizer = _t5_tokenizer()
    clip_config = CLIPTextConfig(
        vocab_size=len(clip_tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=32, max_position_embeddings=CLIP_MAX_LENGTH,
        bos_token_id=clip_tokenizer.bos_token_id, eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id, hidden_act="gelu",
    )
    t5_config = T5Config(
        vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = SD3Transformer2DModel(
            sample_size=sample_size, patch_size=2, in_channels=4, out_channels=4, num_layers=2,
            attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
            joint_attention_dim=32, pooled_projection_dim=64, pos_embed_max_size=sample_size,
        )
        text_encoder = CLIPTextModelWithProjection(clip_config)
        text_encoder_2 = CLIPTextModelWithProjection(clip_config)
        text_encoder_3 = T5EncoderModel(t5_config)
        vae = AutoencoderKL(
            sample_size=sample_size, in_channels=3, out_channels=3, block_out_channels=(4,),
            layers_per_block=1, latent_channels=4, norm_num_groups=1, use_quant_conv=False,
            use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
        )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=clip_tokenizer,
        text_encoder_3=text_encoder_3,
        tokenizer_3=t5_tokenizer,
    )
    for module in (transformer, text_encoder, text_encoder_2, text_encoder_3, vae):
        module.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_sd3(path: str | Path, seed: int = 0, sample_size: int = 32) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it, loadable offline with ``from_pretrained``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    build_tiny_sd3_pipeline(seed=seed, sample_size=sample_size).save_pretrained(path)
    return path
