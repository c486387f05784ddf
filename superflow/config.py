"""Typed run configuration, loaded from YAML with every key checked.

One :class:`Config` drives every method: ``method`` picks the defaults of the algorithm switches
(Flow-GRPO, Flow-SPO, SuperFlow) and any switch can be overridden for ablations. A key the
dataclasses do not define is an error naming the key, the file and the closest valid key, because a
typo that silently falls back to a default wastes a GPU-day.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from superflow.config_rules import range_checks
from superflow.files import read_text
from superflow.method_defaults import CHOICES, METHOD_DEFAULTS
from superflow.strict_dataclasses import ConfigError, build_dataclass, is_dataclass_type

#: Flow-GRPO's LoRA targets: every attention projection of SD3's joint (MM-DiT) blocks. Kept here,
#: not in the adapter, so reading a config never imports torch or diffusers.
SD3_LORA_TARGETS = (
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "attn.to_k",
    "attn.to_out.0",
    "attn.to_q",
    "attn.to_v",
)


def _help(text: str, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    kwargs: dict[str, Any] = {"metadata": {"help": text}}
    if factory is not dataclasses.MISSING:
        kwargs["default_factory"] = factory
    else:
        kwargs["default"] = default
    return field(**kwargs)


@dataclass
class ModelConfig:
    kind: str = _help("Model adapter: 'sd3' (diffusers SD3/SD3.5 with a LoRA) or 'mini' (MiniFlow, CPU).", "sd3")
    path: str | None = _help(
        "Local folder of the diffusers pipeline, or a Hugging Face repo id looked up in the local "
        "cache only. Falls back to $SUPERFLOW_SD3_PATH.",
        None,
    )
    resolution: int = _help("Image side in pixels.", 512)
    lora_rank: int = _help("LoRA rank r (Flow-GRPO: 32).", 32)
    lora_alpha: int = _help("LoRA alpha (Flow-GRPO: 64).", 64)
    lora_targets: list[str] = _help(
        "Module name suffixes that get a LoRA (Flow-GRPO: every attention projection).",
        factory=lambda: list(SD3_LORA_TARGETS),
    )
    max_sequence_length: int = _help("T5 token length of the prompt encoding (Flow-GRPO: 128).", 128)
    dtype: str = _help(
        "SD3: weights dtype of the frozen parts (float32, bfloat16, float16). MiniFlow: bfloat16 runs the "
        "network under CPU autocast, weights fp32; auto picks bfloat16 where the CPU has it natively "
        "(avx512_bf16 or AMX), float32 elsewhere.",
        "float32",
    )
    device: str = _help("'auto' (cuda if available), 'cpu' or 'cuda[:N]'.", "auto")
    autocast: bool = _help(
        "SD3 with a bf16/fp16 dtype: run the transformer, LoRA included, under torch.autocast in that dtype "
        "(fp32 LoRA master weights, optimiser and log-probs).",
        True,
    )
    tf32: bool = _help("SD3 on CUDA: allow TF32 tensor-core matmuls and convolutions for the fp32 parts.", True)
    gradient_checkpointing: bool = _help(
        "SD3: recompute block activations in the backward (less memory, about a third more training time).",
        False,
    )
    compile_backend: str | None = _help(
        "SD3: torch.compile the transformer with this backend ('inductor' on a GPU); None runs it eagerly.", None
    )
    prompt_cache: str | None = _help(
        "SD3: a folder of prompt embeddings (one per model and prompt set). The run's prompts are embedded "
        "once, then the text encoders move to the CPU; a folder made by other encoders is refused.",
        None,
    )
    attention_backend: str | None = _help(
        "SD3: diffusers' attention backend ('native', 'flash', '_native_cudnn', 'sage', ...); None keeps the default.",
        None,
    )
    train_text_encoder: bool = _help(
        "MiniFlow only: fine-tune its prompt encoder too (SD3's text encoders are always frozen).", False
    )
    trainable: list[str] | None = _help(
        "MiniFlow only: train just the parameters whose names contain one of these parts (e.g. "
        "['attn', 'film', 'text_proj']: the conditioning pathways); None trains the whole UNet.",
        None,
    )
    adapter_path: str | None = _help(
        "A trained run's exported weights (its `lora/` folder) to load on top of model.path: the SD3 "
        "LoRA, or MiniFlow's fine-tuned weights. For evaluating or continuing a finished run.",
        None,
    )


@dataclass
class DataConfig:
    train_prompts: str | None = _help("Training prompts: .txt (one per line) or .jsonl with a 'prompt' field.", None)
    test_prompts: str | None = _help("Held-out prompts for evaluation, same formats.", None)
    balance_tags: bool = _help(
        "Draw training prompts so each metadata 'tag' is equally likely (GenEval's test tags are balanced; "
        "a train split dominated by one tag would spend the RL budget there).",
        False,
    )


@dataclass
class SampleConfig:
    num_steps: int = _help("Denoising steps while training (Flow-GRPO: 10).", 10)
    eval_num_steps: int = _help("Denoising steps for evaluation (Flow-GRPO: 40).", 40)
    guidance_scale: float = _help("Classifier-free guidance scale, used in training too (4.5).", 4.5)
    noise_level: float = _help("SDE noise level a in std_dev = a sqrt(s / (1 - s)) (0.7).", 0.7)
    sde_last_step: bool = _help("Inject noise in the last step to sigma 0, as the reference does.", True)
    sde_window_size: int | None = _help(
        "Stochastic steps per trajectory, the rest ODE, and only they train (Flow-GRPO-Fast); 0: every step "
        "is stochastic. None: the method's (3 for flowgrpo_fast, else 0).",
        None,
    )
    sde_window_range: list[int] | None = _help(
        "[lo, hi): each image's window starts at a draw from lo .. hi - size (None: the first half).", None
    )
    sde_type: str = _help("'sde' (Flow-GRPO's step) or 'cps' (coefficients-preserving, Flow-GRPO-Fast).", "sde")
    same_initial_noise: bool = _help(
        "Every image of a group starts from one initial noise (DanceGRPO's init_same_noise): the group "
        "mean is then a baseline per start, so the advantage no longer carries the reward variance of "
        "the start, which no trained transition chose.",
        False,
    )
    prompts_per_epoch: int = _help("Distinct prompts (groups) sampled per epoch (Flow-GRPO: 48).", 48)
    group_size: int = _help("Images per prompt for fixed-size methods (Flow-GRPO: 24).", 24)
    batch_size: int = _help("Images per sampling forward pass (memory knob; no effect on results).", 8)
    overlap_reward: bool = _help(
        "Score each sampled batch in a worker thread while the next one samples (same rewards, same "
        "order; pays when the reward is slow next to a GPU sampler).",
        False,
    )


@dataclass
class TrainConfig:
    lr: float = _help("AdamW learning rate (3e-4).", 3e-4)
    weight_decay: float = _help("AdamW weight decay (1e-4).", 1e-4)
    adam_beta1: float = _help("AdamW beta1.", 0.9)
    adam_beta2: float = _help("AdamW beta2.", 0.999)
    adam_eps: float = _help("AdamW epsilon.", 1e-8)
    max_grad_norm: float = _help("Gradient clipping norm (1.0).", 1.0)
    clip_range: float = _help("PPO ratio clip range (1e-4).", 1e-4)
    adv_clip: float = _help("Advantages are clamped to [-adv_clip, adv_clip] (5).", 5.0)
    beta: float = _help("KL weight against the adapter-off model (0.04 GenEval/OCR, 0.01 PickScore).", 0.04)
    timestep_fraction: float = _help("Train the first int(T * fraction) steps of each trajectory (0.99).", 0.99)
    updates_per_epoch: int = _help("Optimiser steps per inner epoch; samples split evenly (2).", 2)
    inner_epochs: int = _help("Passes over each epoch's samples (1).", 1)
    micro_batch_size: int = _help("Samples per forward/backward (memory knob; gradients accumulate).", 8)
    ema: bool = _help("Keep an EMA of the trainable weights for evaluation and checkpoints.", True)
    ema_decay: float = _help("EMA decay cap; decay = min((1 + n) / (10 + n), cap).", 0.9)
    ema_every: int = _help("Update the EMA every this many optimiser steps (8).", 8)
    nft_beta: float = _help(
        "DiffusionNFT's b: the implicit policies are v+- = old +- b (v - old) (1.0; 0.1 for OCR in their config).", 1.0
    )
    old_decay_rate: float = _help(
        "NFT's old and AWM's slow copy: copy <- d copy + (1 - d) live per epoch, d = min(rate * step, cap).", 0.001
    )
    old_decay_cap: float | None = _help("That decay's cap; None: the method's (NFT 0.5, AWM 0.3).", None)
    awm_ghuber_power: float = _help("AWM: p of the generalised Huber transform of the matching error (0.25).", 0.25)
    awm_slow_weight: float = _help("AWM: weight of ||v - v_slow||^2, the pull to the slow copy (1.0).", 1.0)


@dataclass
class AlgorithmConfig:
    """SuperFlow's switches. ``None`` means: the method's default (see METHOD_DEFAULTS)."""

    baseline: str | None = _help(
        "'group' (Flow-GRPO group mean/std) or 'tracker' (SPO: r - p_c, batch-normalised).", None
    )
    global_std: bool | None = _help("With the group baseline, divide by the batch std instead of the group's.", None)
    prompt_draw: str | None = _help("'uniform' (seeded permutation) or 'prioritized' (probability ~ u_c + eps).", None)
    group_sizes: str | None = _help(
        "'fixed', 'neyman' (size ~ reward std, exact budget) or 'bins' (size M_max - b + 1).", None
    )
    step_advantage: str | None = _help("'trajectory', 'noise_weighted', 'paper', 'tweedie_td' or 'mixed'.", None)
    skip_tied_groups: bool | None = _help(
        "Do not train on groups whose rewards all tie (no signal with a group baseline).", None
    )
    objective: str | None = _help(
        "'policy_gradient' (the clipped loss on SDE transitions), 'nft' (DiffusionNFT's forward-process "
        "loss on ODE samples of an old copy of the weights) or 'awm' (advantage-weighted matching; docs/METHODS.md).",
        None,
    )
    tracker: str = _help("'auto' (Beta for rewards in [0, 1], else Gaussian), 'beta' or 'gaussian'.", "auto")
    unseen_prior: str = _help(
        "What an unseen prompt's tracker value and uncertainty are: 'fixed' (the tracker's prior) or 'tag' "
        "(pooled over the seen prompts with the same metadata tag; one pool when prompts have no tags).",
        "fixed",
    )
    rho: float = _help("Tracker forgetting factor in (0, 1].", 0.9)
    rho_half_life: float | None = _help("If set, drift-adaptive rho = 2^(-D / half_life) (SPO).", None)
    budget: int | None = _help("Images per epoch; default prompts_per_epoch * group_size.", None)
    m_min: int = _help("Smallest group size (>= 2).", 2)
    m_max: int | None = _help(
        "Largest group size. None: sample.group_size for 'bins' (M_max), 2 x group_size for 'neyman' "
        "(so the budget of group_size per prompt leaves room to move).",
        None,
    )
    num_bins: int = _help("Uncertainty bins of the 'bins' allocation (K).", 4)
    eps: float = _help("Uncertainty floor in allocation and prioritised draws.", 1e-3)
    eta: float | None = _help("Scale of the 'paper' step weights; None = weights average 1.", None)
    mixed_lambda: float = _help("Weight of the TD term in the 'mixed' estimator.", 0.5)


@dataclass
class RewardConfig:
    name: str = _help(
        "Registered reward name, or 'path/to/file.py:function' / 'package.module:function'.", "jpeg_compressibility"
    )
    kwargs: dict[str, Any] = _help("Keyword arguments passed to the reward factory.", factory=dict)
    shuffle_within_epoch: bool = _help(
        "Control arm: permute the epoch's rewards (and step values) across its samples before any use, so "
        "they carry no information about which image earned them; a method should learn nothing.",
        False,
    )


@dataclass
class LogConfig:
    backends: list[str] = _help(
        "Where a run's metrics go besides metrics.jsonl (always written): any of 'tensorboard' "
        "(pip install 'superflow[tensorboard]'; event files in <output_dir>/tensorboard) and 'wandb' "
        "(pip install 'superflow[wandb]'; offline unless WANDB_API_KEY is set or log.wandb_mode says so).",
        factory=lambda: ["jsonl"],
    )
    samples: int = _help("Held-out prompts shown in the sample grid logged at each evaluation (0: none).", 8)
    wandb_project: str = _help("W&B project.", "superflow")
    wandb_entity: str | None = _help("W&B entity (team or user); None: the account's default.", None)
    wandb_mode: str | None = _help("'online', 'offline' or 'disabled'; None: online only with WANDB_API_KEY.", None)


@dataclass
class Config:
    method: str = _help(
        "'flowgrpo', 'flowspo', 'superflow', 'nft', 'awm' or 'superflow_nft': the algorithm switches' defaults.",
        "flowgrpo",
    )
    seed: int = _help("Seed of every random stream of the run (of all but the prompt draws when data_seed is set).", 0)
    data_seed: int | None = _help(
        "Seed of the epochs' prompt draws; None: `seed`. Fixed across seeds, the runs see the same prompts in the "
        "same order and differ in their noise only (it separates the prompt draw's share of the seed spread).",
        None,
    )
    num_epochs: int = _help("Training epochs (one epoch = sample, score, update).", 100)
    output_dir: str = _help("Run folder: metrics.jsonl, checkpoints/, lora/, config.yaml.", "runs/default")
    save_every: int = _help("Checkpoint every N epochs (and at the end).", 10)
    save_total_limit: int = _help(
        "Checkpoints kept (the newest; a resume falls back to an older one when the newest is damaged).", 2
    )
    eval_every: int = _help("Evaluate on held-out prompts every N epochs (0: never).", 0)
    eval_num_prompts: int = _help("Held-out prompts per evaluation (0: all).", 0)
    eval_seed: int = _help("Seed of the evaluation noise (fixed across evaluations).", 12345)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def num_train_steps(self) -> int:
        """Transitions trained per trajectory: the SDE window's, else the first fraction of the steps."""
        return self.sample.sde_window_size or int(self.sample.num_steps * self.train.timestep_fraction)

    @property
    def budget(self) -> int:
        return self.algorithm.budget or self.sample.prompts_per_epoch * self.sample.group_size


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

PRESET_PREFIX = "preset:"


def preset_names() -> list[str]:
    folder = resources.files("superflow") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(source: str | Path) -> tuple[dict[str, Any], str]:
    source = str(source)
    if source.startswith(PRESET_PREFIX):
        name = source[len(PRESET_PREFIX) :]
        path = resources.files("superflow") / "presets" / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
        text, label = path.read_text(), f"preset {name}"
    else:
        p = Path(source)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        text, label = read_text(p), str(p)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{label}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        parent, _ = _read_yaml(
            base
            if str(base).startswith(PRESET_PREFIX) or "/" in str(base) or str(base).endswith(".yaml")
            else PRESET_PREFIX + str(base)
        )
        data = _deep_merge(parent, data)
    return data, label


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(source: str | Path | dict | None = None, overrides: list[str] | None = None) -> Config:
    """Load a config from a YAML path, ``preset:NAME`` or a dict, then apply ``key.sub=value`` overrides.

    Raises :class:`ConfigError` naming the key and the source for unknown keys, wrong types and
    invalid choices.
    """
    if source is None:
        data, label = {}, "defaults"
    elif isinstance(source, dict):
        data, label = dict(source), "config dict"
        base = data.pop("base", None)
        if base is not None:
            parent, _ = _read_yaml(
                base if ("/" in str(base) or str(base).endswith(".yaml")) else PRESET_PREFIX + str(base)
            )
            data = _deep_merge(parent, data)
    else:
        data, label = _read_yaml(source)
    for item in overrides or []:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node[path[-1]] = value
    if overrides:
        label = f"{label} + --set {' '.join(overrides)}"
    cfg = build_dataclass(Config, data, "", label)
    return resolve(cfg, label)


def resolve(cfg: Config, label: str = "config") -> Config:
    """Fill method defaults into unset switches and validate choices and ranges."""
    if cfg.method not in METHOD_DEFAULTS:
        raise ConfigError(f"{label}: unknown method {cfg.method!r}; choose one of {', '.join(METHOD_DEFAULTS)}")
    for key, value in METHOD_DEFAULTS[cfg.method].items():
        section, name = key.split(".") if "." in key else ("algorithm", key)
        if getattr(getattr(cfg, section), name) is None:
            setattr(getattr(cfg, section), name, value)
    sample = cfg.sample
    sample.sde_window_size = sample.sde_window_size or 0
    if sample.sde_window_range is None:
        sample.sde_window_range = [0, max(sample.num_steps // 2, sample.sde_window_size)]
    if cfg.algorithm.m_max is None:
        factor = 2 if cfg.algorithm.group_sizes == "neyman" else 1
        cfg.algorithm.m_max = factor * cfg.sample.group_size
    for dotted, allowed in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{label}: key '{dotted}' is {value!r}; choose one of {', '.join(allowed)}")
    if cfg.train.old_decay_cap is None:
        cfg.train.old_decay_cap = 0.3 if cfg.algorithm.objective == "awm" else 0.5
    for key, ok, why in range_checks(cfg):
        if not ok:
            raise ConfigError(f"{label}: key '{key}' {why}")
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def describe(cls=Config, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(key, help, default) for every leaf field: the CLI's ``superflow config-help``."""
    rows = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if is_dataclass_type(tp):
            rows.extend(describe(tp, f"{prefix}{f.name}."))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((f"{prefix}{f.name}", f.metadata.get("help", ""), default))
    return rows
