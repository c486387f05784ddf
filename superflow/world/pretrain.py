"""Pretraining MiniFlow on the mini world's renders (rectified-flow matching, SD3's objective).

The base model is deliberately stopped early (a step budget, like SD3.5-M's 0.63 GenEval leaves
room) so RL has something to improve. Every batch is rendered on the fly from ``(seed, step)``, and
checkpoints are atomic, so a killed pretraining resumes to the same weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from superflow.checkpoint import (
    atomic_write_text,
    load_newest_valid_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from superflow.files import read_jsonl
from superflow.models.mini import MiniFlowConfig, MiniFlowNet, PromptTokenizer, save_miniflow
from superflow.rl.ema import EMA
from superflow.world.caption_noise import disagreeing_scene, disagreeing_text


@dataclass
class PretrainConfig:
    output_dir: str = "runs/miniflow"
    data_dir: str = "runs/world"
    seed: int = 0
    steps: int = 1700
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    decay_fraction: float = 0.3
    final_lr_fraction: float = 0.05
    weight_decay: float = 1e-4
    image_size: int = 32
    channels: tuple[int, ...] = (32, 64, 128)
    cfg_dropout: float = 0.1
    text_fraction: float = 0.4
    text_position_jitter: float = 0.0
    #: Probability that a pair's image disagrees with its caption in the attribute its tag tests
    #: (``superflow.world.caption_noise``); 0 pretrains on perfectly captioned renders.
    caption_noise: float = 0.0
    #: How a noisy sign disagrees with its caption: one character ``substitute``d, or two neighbours ``swap``ped.
    sign_noise: str = "substitute"
    #: ``MiniFlowConfig.position_aware``: signs rendered in the prompt's character order.
    position_aware: bool = False
    ema_decay: float = 0.99
    save_every: int = 100
    #: Checkpoints kept; a resume falls back to an older one when the newest is damaged.
    save_total_limit: int = 2
    threads: int = 2


@dataclass
class WorldRecord:
    prompt: str
    metadata: dict
    kind: str  # "scene" or "text"


def load_world_records(data_dir: str | Path, split: str) -> list[WorldRecord]:
    """The world's prompt files written by ``superflow world``: GenEval-style scenes and text signs."""
    from superflow.prompts import load_prompts

    data_dir = Path(data_dir)
    scenes = load_prompts(data_dir / "geneval" / f"{split}_metadata.jsonl")
    texts = load_prompts(data_dir / "ocr" / f"ocr_{split}.txt")
    records = [WorldRecord(p, m, "scene") for p, m in zip(scenes.prompts, scenes.metadata)]
    records += [WorldRecord(p, {"text": p.split('"')[1]}, "text") for p in texts.prompts]
    return records


def render_record(
    record: WorldRecord, size: int, rng: np.random.Generator, text_position_jitter: float = 1.0
) -> np.ndarray:
    from superflow.world.render import render_scene
    from superflow.world.text import render_text

    if record.kind == "text":
        return render_text(record.metadata["text"], size=size, rng=rng, position_jitter=text_position_jitter)
    return render_scene(record.metadata, size=size, rng=rng)


def noisy_record(record: WorldRecord, rng: np.random.Generator, sign_noise: str = "substitute") -> WorldRecord:
    """The record with metadata that contradicts its prompt (the prompt itself is kept)."""
    if record.kind == "text":
        return WorldRecord(record.prompt, {"text": disagreeing_text(record.metadata["text"], rng, sign_noise)}, "text")
    return WorldRecord(record.prompt, disagreeing_scene(record.metadata, rng), "scene")


def to_model_space(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [-1, 1] (MiniFlow's pixel space)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def build_tokenizer(data_dir: str | Path) -> PromptTokenizer:
    from superflow.world.text import TEXT_ALPHABET

    prompts = [r.prompt for split in ("train", "test") for r in load_world_records(data_dir, split)]
    return PromptTokenizer.build(prompts, characters=TEXT_ALPHABET)


def _batch(pools: dict[str, list[WorldRecord]], cfg: PretrainConfig, step: int) -> tuple[torch.Tensor, list[str]]:
    """Text signs with probability ``text_fraction``, else a scene of a uniformly drawn GenEval tag
    (the train split is dominated by colour attribution, the most combinatorial tag)."""
    rng = np.random.default_rng([cfg.seed, step])
    scene_tags = sorted(k for k in pools if k != "text")
    images, prompts = [], []
    for _ in range(cfg.batch_size):
        kind = "text" if rng.random() < cfg.text_fraction else scene_tags[int(rng.integers(len(scene_tags)))]
        pool = pools[kind]
        record = pool[int(rng.integers(len(pool)))]
        # Drawn only when noise is on, so a noise-free run renders exactly what it did before.
        if cfg.caption_noise and rng.random() < cfg.caption_noise:
            record = noisy_record(record, rng, cfg.sign_noise)
        images.append(render_record(record, cfg.image_size, rng, cfg.text_position_jitter))
        prompts.append("" if rng.random() < cfg.cfg_dropout else record.prompt)
    return to_model_space(np.stack(images)), prompts


def learning_rate(cfg: PretrainConfig, step: int) -> float:
    """Warm-up, constant, then a linear decay over the last ``decay_fraction`` of the steps.

    A function of the step alone, so a resumed run follows the same schedule. Decaying at the end
    of a fixed budget is what makes an early-stopped base usable (measured: the EMA of a constant-lr
    run scored 0.26 GenEval at 1,200 steps).
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_start = cfg.steps * (1 - cfg.decay_fraction)
    if step < decay_start or cfg.decay_fraction <= 0:
        return cfg.lr
    progress = min(1.0, (step - decay_start) / max(cfg.steps - decay_start, 1))
    return cfg.lr * (1 - progress * (1 - cfg.final_lr_fraction))


def flow_matching_loss(net: MiniFlowNet, x0: torch.Tensor, ids, mask, generator: torch.Generator) -> torch.Tensor:
    """SD3's objective: logit-normal noise levels, x_s = (1 - s) x0 + s eps, regress v = eps - x0."""
    sigma = torch.sigmoid(torch.randn(len(x0), generator=generator))
    eps = torch.randn(x0.shape, generator=generator)
    s = sigma.view(-1, 1, 1, 1)
    return F.mse_loss(net((1 - s) * x0 + s * eps, sigma, ids, mask), eps - x0)


def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = True) -> Path:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = load_world_records(cfg.data_dir, "train")
    by_kind: dict[str, list[WorldRecord]] = {}
    for r in records:
        by_kind.setdefault("text" if r.kind == "text" else r.metadata["tag"], []).append(r)
    tokenizer = build_tokenizer(cfg.data_dir)
    torch.manual_seed(cfg.seed)
    net = MiniFlowNet(
        MiniFlowConfig(
            image_size=cfg.image_size,
            channels=tuple(cfg.channels),
            vocab=tokenizer.vocab,
            position_aware=cfg.position_aware,
        )
    )
    params = list(net.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(params, decay=cfg.ema_decay, update_every=1)
    step, elapsed = 0, 0.0
    ckpt_dir = out / "checkpoints"
    found = load_newest_valid_checkpoint(ckpt_dir) if resume else None
    if found is not None:
        state, meta, _ = found
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        step, elapsed = meta["epoch"], meta["elapsed"]
    log_path = out / "pretrain_log.jsonl"
    if log_path.exists():  # drop lines of steps that will run again
        kept = [row for row in read_jsonl(log_path) if row["step"] <= step]
        atomic_write_text(log_path, "".join(json.dumps(row) + "\n" for row in kept))
    atomic_write_text(out / "pretrain_config.json", json.dumps(asdict(cfg), indent=1))
    log = log_path.open("a")
    bar = tqdm(total=cfg.steps, initial=step, desc="pretrain", disable=not progress)
    while step < cfg.steps:
        start = time.perf_counter()
        x0, prompts = _batch(by_kind, cfg, step)
        ids, mask = tokenizer(prompts)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, step, 1]).generate_state(1)[0]))
        loss = flow_matching_loss(net, x0, ids, mask, gen)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.step(params, step)
        step += 1
        elapsed += time.perf_counter() - start
        log.write(
            json.dumps(
                {
                    "step": step,
                    "loss": float(loss.detach()),
                    "lr": optimizer.param_groups[0]["lr"],
                    "elapsed": round(elapsed, 3),
                }
            )
            + "\n"
        )
        bar.update(1)
        if step % cfg.save_every == 0 or step == cfg.steps:
            log.flush()
            state = {
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict(),
                "rng": rng_state(),
            }
            save_checkpoint(ckpt_dir, step, state, {"elapsed": elapsed}, keep_last=cfg.save_total_limit)
    bar.close()
    log.close()
    with ema.swapped_in(params):
        save_miniflow(net, out / "model", extra={"pretrain_steps": step, "pretrain_seconds": round(elapsed, 1)})
    save_miniflow(net, out / "model_raw", extra={"pretrain_steps": step, "pretrain_seconds": round(elapsed, 1)})
    return out / "model"
