"""A small dual-encoder preference model trained with PickScore's objective.

PickScore scores an (image, prompt) pair as ``exp(logit_scale) * cos(image_emb, text_emb)`` and is
trained on preference pairs: for one prompt and two images, the softmax over the two scores is
fitted to the human label (1/0, or 0.5 for a tie) with cross-entropy. The mini world's
preference reward is this model, trained on pairs labelled by a hidden, documented preference, so it
plays PickScore's role in the paper: both the RL reward and the task's metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from superflow.models.mini import PromptEncoder, PromptTokenizer
from superflow.models.weights import WeightSpec, load_weights_folder, save_weights_folder

# 2,400 rather than 600: held-out pair accuracy 0.93 against 0.91, and RL learns the preference task on
# every world's validation prompts only with the longer-trained model (docs/MINI_RL_BUDGET.md, 2026-12-07).
TRAINING_STEPS = 2400


@dataclass
class PreferenceModelConfig:
    image_size: int = 32
    embed_dim: int = 64
    text_dim: int = 64
    text_layers: int = 2
    heads: int = 4
    max_tokens: int = 24
    vocab: list[str] = field(default_factory=list)


class ImageEncoder(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        chans = (3, 32, 64, 128)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.GroupNorm(8, cout),
                nn.SiLU(),
                nn.Conv2d(cout, cout, 3, padding=1, stride=2),
                nn.SiLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 2, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.features(images * 2 - 1)
        # mean and max pooling: "is there an object anywhere" and "what does the canvas look like"
        return self.head(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))


class PreferenceModel(nn.Module):
    """``score(images, prompts) = exp(logit_scale) * cos(image_embedding, text_embedding)``."""

    def __init__(self, cfg: PreferenceModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = PromptTokenizer(cfg.vocab, cfg.max_tokens)
        self.image_encoder = ImageEncoder(cfg.embed_dim)
        self.text_encoder = PromptEncoder(len(cfg.vocab), cfg.text_dim, cfg.text_layers, cfg.heads, cfg.max_tokens)
        self.text_head = nn.Linear(cfg.text_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10, learned as in CLIP

    def forward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.tokenizer(prompts)
        device = self.logit_scale.device
        img = F.normalize(self.image_encoder(images.to(device)), dim=-1)
        txt = F.normalize(self.text_head(self.text_encoder(ids.to(device), mask.to(device))[2]), dim=-1)
        return self.logit_scale.exp() * (img * txt).sum(-1)


def pickscore_pair_loss(score_a: torch.Tensor, score_b: torch.Tensor, prefer_a: torch.Tensor) -> torch.Tensor:
    """PickScore's objective: cross-entropy of softmax([s_a, s_b]) against the label (1, 0 or 0.5)."""
    logits = torch.stack([score_a, score_b], dim=1)
    target = torch.stack([prefer_a, 1 - prefer_a], dim=1).float()
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


PREFERENCE_WEIGHTS = WeightSpec(
    component="mini preference model",
    config_key="reward.kwargs.path",
    env_var="SUPERFLOW_MINI_PREFERENCE_PATH",
    repo_id=None,
    required_files=("config.json", "model.pt"),
    how_to_obtain="Train it with `superflow train-preference --output-dir DIR` (a few minutes on 2 CPU cores).",
)


def save_preference_model(model: PreferenceModel, path: str | Path, extra: dict | None = None) -> Path:
    return save_weights_folder(model.state_dict(), {**asdict(model.cfg), **(extra or {})}, path)


def load_preference_model(path: str | Path | None) -> PreferenceModel:
    raw, state = load_weights_folder(PREFERENCE_WEIGHTS, path)
    fields = PreferenceModelConfig.__dataclass_fields__
    model = PreferenceModel(PreferenceModelConfig(**{k: v for k, v in raw.items() if k in fields}))
    model.load_state_dict(state)
    return model.eval()


def train_preference_model(
    train_records: list[dict],
    test_records: list[dict],
    vocab: list[str],
    *,
    steps: int = TRAINING_STEPS,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    eval_pairs: int = 1000,
    progress: bool = True,
) -> tuple[PreferenceModel, dict]:
    """Fit the dual encoder to hidden-preference pairs; report held-out pair accuracy (ties excluded)."""
    import numpy as np
    from tqdm.auto import tqdm

    from superflow.world.preference_data import make_pairs

    def to_tensor(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255

    torch.manual_seed(seed)
    model = PreferenceModel(PreferenceModelConfig(vocab=vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    losses = []
    for step in tqdm(range(steps), desc="preference model", disable=not progress):
        pairs = make_pairs(train_records, batch_size, np.random.default_rng([seed, step]))
        loss = pickscore_pair_loss(
            model(to_tensor(pairs.images_a), pairs.prompts),
            model(to_tensor(pairs.images_b), pairs.prompts),
            torch.as_tensor(pairs.prefer_a, dtype=torch.float32),
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    pairs = make_pairs(test_records, eval_pairs, np.random.default_rng([seed, 10**6]))
    with torch.no_grad():
        a = model(to_tensor(pairs.images_a), pairs.prompts).numpy()
        b = model(to_tensor(pairs.images_b), pairs.prompts).numpy()
    decided = pairs.prefer_a != 0.5
    accuracy = float(((a > b) == (pairs.prefer_a == 1))[decided].mean())
    return model, {
        "heldout_pair_accuracy": accuracy,
        "heldout_pairs": int(decided.sum()),
        "final_loss": float(np.mean(losses[-20:])),
    }
