"""Model adapters behind one interface (:class:`superflow.models.base.FlowPolicy`), and the factory
that builds the one a config names. Adapters import their heavy stacks only when built."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from superflow.config import Config
    from superflow.models.base import FlowPolicy


def build_policy(cfg: Config) -> FlowPolicy:
    """The model named by ``cfg.model`` (weights from disk only)."""
    if cfg.model.kind == "sd3":
        from superflow.models.sd3 import SD3Policy

        m = cfg.model
        policy = SD3Policy(
            m.path,
            resolution=m.resolution,
            lora_rank=m.lora_rank,
            lora_alpha=m.lora_alpha,
            lora_targets=m.lora_targets,
            lora_init_seed=cfg.seed,
            max_sequence_length=m.max_sequence_length,
            dtype=m.dtype,
            device=m.device,
            autocast=m.autocast,
            tf32=m.tf32,
            gradient_checkpointing=m.gradient_checkpointing,
            compile_backend=m.compile_backend,
            attention_backend=m.attention_backend,
            prompt_cache=m.prompt_cache,
        )
        if m.adapter_path:
            policy.load_adapter(m.adapter_path)
        return policy
    if cfg.model.kind == "mini":
        from superflow.models.mini import MiniFlowPolicy

        # MiniFlow is fine-tuned in full, so its export is a complete model that replaces the base.
        return MiniFlowPolicy(
            cfg.model.adapter_path or cfg.model.path,
            device=cfg.model.device,
            train_text_encoder=cfg.model.train_text_encoder,
            trainable=cfg.model.trainable,
            dtype=cfg.model.dtype,
        )
    raise ValueError(f"unknown model.kind {cfg.model.kind!r}")  # pragma: no cover - config validates
