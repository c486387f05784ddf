"""A tiny, randomly initialised Stable Diffusion 3 pipeline built offline from configs.

No SD3 weights can be downloaded on our machines, yet the paper-scale code path (diffusers'
``StableDiffusion3Pipeline``: two CLIP encoders and T5, the MM-DiT transformer, the VAE, the
flow-matching Euler scheduler, plus a peft LoRA) must be exercised end to end. This module builds every
part of that pipeline from small configs, deterministically from a seed, so that tests and the CPU demo
run the real SD3 code rather than a stand-in. The weights are random: images are noise-like, which is
fine because what is under test is the plumbing (shapes, conditioning, guidance, schedulers, LoRA,
save/load), not the picture.

No vocabulary ships with transformers or diffusers, so the tokenizers are built in code too:

* CLIP (used twice, as in SD3): byte-level BPE over the 256 byte symbols and their end-of-word
  variants, with no merges, so every character is one token and no text maps to ``<unk>``. Prompts are
  therefore limited to 75 characters before CLIP truncates them (diffusers logs a warning).
* T5: a real :class:`~transformers.T5Tokenizer` (Unigram, ``▁`` word-boundary pieces) over a small word
  list plus single characters. Words in the list become one token; any other ASCII text falls back to
  characters, so distinct prompts keep distinct ids even with a short ``max_sequence_length``.

Both survive ``save_pretrained``/``from_pretrained`` of the whole pipeline.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Pipeline
    from transformers import CLIPTokenizer, T5Tokenizer

CLIP_MAX_LENGTH = 77
T5_MAX_LENGTH = 256
SCHEDULER_SHIFT = 3.0

#: Whole-word T5 pieces: the words of the demo and test prompts, GenEval-style objects and colours.
_T5_WORDS = (
    "a an the of on in with and to at by is are photo picture image sign that says text "
    "left right above below top bottom next front behind "
    "one two three four five six seven eight nine ten "
    "red green blue yellow purple orange white black pink brown gray grey "
    "cat dog car bus truck fire tree house apple cube ball sun flower table street sky garden door "
    "balloon rose bowl cherries umbrella rain bench bird person clock cup chair"
).split()


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible map from the 256 bytes to printable unicode characters, in byte order.

    Byte-level BPE (the ``ByteLevel`` pre-tokenizer) rewrites input bytes into exactly these
    characters, so a vocabulary containing all of them can tokenize any string without ``<unk>``.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def build_clip_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer: byte symbols, their ``</w>`` forms, then BOS and EOS (ids 512, 513).

    EOS doubles as the pad token (as in OpenAI's CLIP), which the text encoder's pooled output relies on:
    it pools at the first EOS, so the config's ``eos_token_id`` must match this tokenizer.
    """
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=CLIP_MAX_LENGTH)


def build_t5_tokenizer() -> T5Tokenizer:
    """A T5 Unigram tokenizer: ``<pad>``=0, ``</s>``=1, ``<unk>``=2, then words, then characters.

    Scores make a listed word (``▁red``) cheaper than spelling it out, so Viterbi keeps known words whole
    and spells the rest. No sentinel ``<extra_id_*>`` tokens: the encoder never sees them.
    """
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [("▁" + word, -1.0) for word in dict.fromkeys(_T5_WORDS)]
    characters = string.ascii_letters + string.digits + string.punctuation
    pieces += [("▁" + c, -4.0) for c in characters]
    pieces += [(c, -5.0) for c in characters]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def build_tiny_sd3_pipeline(seed: int = 0, sample_size: int = 32) -> StableDiffusion3Pipeline:
    """Every part of an SD3 pipeline, tiny and random, float32 on the CPU; same seed, same weights.

    ``sample_size`` is the image side in pixels and, since the VAE has a single block (no
    downsampling, ``vae_scale_factor`` 1), also the latent side. The transformer patchifies with
    ``patch_size`` 2, so a 32 px image is 256 image tokens. The global RNG is left as it was found.
    """
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    if sample_size < 2 or sample_size % 2:
        raise ValueError(f"sample_size must be an even number of pixels >= 2, got {sample_size}")

    clip_tokenizer = build_clip_tokenizer()
    t5_tokenizer = build_t5_tokenizer()
    clip_config = CLIPTextConfig(
        vocab_size=len(clip_tokenizer),
        hidden_size=32,
        intermediate_size=37,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        hidden_act="gelu",
        bos_token_id=clip_tokenizer.bos_token_id,
        eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id,
    )
    t5_config = T5Config(
        vocab_size=len(t5_tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=t5_tokenizer.pad_token_id,
        eos_token_id=t5_tokenizer.eos_token_id,
        decoder_start_token_id=t5_tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = SD3Transformer2DModel(
            sample_size=sample_size,
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            joint_attention_dim=t5_config.d_model,
            pooled_projection_dim=2 * clip_config.projection_dim,
            pos_embed_max_size=sample_size,
        )
        text_encoder = CLIPTextModelWithProjection(clip_config)
        text_encoder_2 = CLIPTextModelWithProjection(clip_config)
        text_encoder_3 = T5EncoderModel(t5_config)
        vae = AutoencoderKL(
            sample_size=sample_size,
            in_channels=3,
            out_channels=3,
            block_out_channels=(4,),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=1,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        )
    for module in (transformer, text_encoder, text_encoder_2, text_encoder_3, vae):
        module.eval()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SCHEDULER_SHIFT),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=build_clip_tokenizer(),
        text_encoder_3=text_encoder_3,
        tokenizer_3=t5_tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_sd3(path: str | Path, seed: int = 0, sample_size: int = 32) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it into ``path`` (created if missing).

    ``StableDiffusion3Pipeline.from_pretrained(path)`` then loads it with no network access and gives the
    same images as :func:`build_tiny_sd3_pipeline` with the same arguments.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    build_tiny_sd3_pipeline(seed=seed, sample_size=sample_size).save_pretrained(path)
    return path
