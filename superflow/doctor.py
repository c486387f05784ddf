"""`superflow doctor`: what this machine can run, and what to install or download for the rest.

For every model, reward and evaluator: its backend, whether its packages import (with versions),
whether its weights are found (and every place searched), and the fix. Nothing is downloaded and
no model is loaded; the check is offline and takes seconds.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from superflow.models.weights import WeightsNotFoundError, WeightSpec, resolve_weights


@dataclass
class Check:
    component: str  # "reward pickscore", "model sd3", ...
    backend: str
    ok: bool
    detail: str  # versions, the folder found, or what was searched
    fix: str = ""  # what to install or download; empty when ok


def packages(*names: str) -> tuple[bool, str, list[str]]:
    """Whether the import names resolve, their versions, and the missing ones (no import is run)."""
    found, missing = [], []
    for name in names:
        if importlib.util.find_spec(name) is None:
            missing.append(name)
            continue
        dist = {"paddle": "paddlepaddle", "cv2": "opencv-python", "open_clip": "open_clip_torch"}.get(name, name)
        try:
            found.append(f"{name} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(name)
    detail = "; ".join(filter(None, [", ".join(found), f"missing: {', '.join(missing)}" if missing else ""]))
    return not missing, detail, missing


def weights(spec: WeightSpec, explicit: str | None) -> tuple[bool, str]:
    try:
        return True, f"weights at {resolve_weights(spec, explicit)}"
    except WeightsNotFoundError as err:
        return False, str(err)


def combine(
    component: str,
    backend: str,
    pkg: tuple[bool, str, list[str]],
    install: str,
    *needed: tuple[str, WeightSpec, str | None],
) -> Check:
    """One check from a package probe and any number of ``(label, spec, explicit path)`` weights."""
    ok, detail, missing = pkg
    fixes = [install] if missing else []
    for label, spec, explicit in needed:
        found, where = weights(spec, explicit)
        if found:
            detail = f"{detail}; {label}{where}"
        else:
            ok = False
            fixes.append(where)
    return Check(component, backend, ok, detail, " ".join(fixes))


def _torch() -> Check:
    import torch

    if torch.cuda.is_available():
        device = f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    else:
        device = "no CUDA device: paper-scale training needs a GPU; the mini world runs on this CPU"
    return Check("runtime", "torch", True, f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {device}")


def _hub() -> Check:
    offline = os.environ.get("HF_HUB_OFFLINE", "")
    try:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    except ImportError:
        cache = "(huggingface_hub not installed)"
    return Check(
        "weights",
        "Hugging Face cache",
        True,
        f"cache {cache}; HF_HUB_OFFLINE={offline or 'unset'} (superflow never downloads: weights come from a config "
        "path, an environment variable, or this cache)",
    )


def _rapidocr_models() -> tuple[bool, str]:
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        return False, ""
    models = sorted(p.name for p in (Path(list(spec.submodule_search_locations)[0]) / "models").glob("*.onnx"))
    return bool(models), f"bundled models: {', '.join(models)}" if models else "no bundled .onnx models"


def run_checks(config=None) -> list[Check]:
    """All checks; ``config`` (a :class:`superflow.config.Config`) supplies explicit weight paths."""
    from superflow.models.mini import MINIFLOW_WEIGHTS
    from superflow.models.weights import SD3_WEIGHTS
    from superflow.rewards.pickscore import PICKSCORE_MODEL, PICKSCORE_PROCESSOR
    from superflow.world.preference_model import PREFERENCE_WEIGHTS

    model_path = config.model.path if config is not None else None
    kind = config.model.kind if config is not None else None
    reward_kwargs = dict(config.reward.kwargs) if config is not None else {}
    if config is not None and config.reward.name == "served":  # the served reward's own kwargs
        reward_kwargs = {**reward_kwargs, **dict(reward_kwargs.get("kwargs") or {})}
    checks: list[Callable[[], Check]] = [
        _torch,
        _hub,
        lambda: combine(
            "model sd3",
            "diffusers + peft LoRA",
            packages("diffusers", "transformers", "peft"),
            "pip install -e . (diffusers, transformers and peft are core dependencies)",
            ("", SD3_WEIGHTS, model_path if kind == "sd3" else None),
        ),
        lambda: combine(
            "model mini",
            "MiniFlow",
            packages("torch"),
            "",
            ("", MINIFLOW_WEIGHTS, model_path if kind == "mini" else "runs/miniflow/model"),
        ),
        lambda: combine(
            "reward geneval_mini",
            "mini-world detector + GenEval rules",
            packages("numpy", "scipy"),
            "pip install -e .",
        ),
        _ocr_rapidocr,
        lambda: combine(
            "reward ocr",
            "paddleocr (Flow-GRPO's backend)",
            packages("paddleocr", "paddle"),
            "pip install 'superflow[paddleocr]' or conda env create -f envs/ocr.yaml",
        ),
        lambda: combine(
            "reward pickscore",
            "transformers CLIPModel (PickScore_v1)",
            packages("transformers"),
            "pip install -e .",
            ("", PICKSCORE_MODEL, reward_kwargs.get("model_path")),
            ("processor ", PICKSCORE_PROCESSOR, reward_kwargs.get("processor_path")),
        ),
        lambda: combine(
            "reward mini_preference",
            "learned dual encoder",
            packages("torch"),
            "",
            ("", PREFERENCE_WEIGHTS, reward_kwargs.get("path") or "runs/preference"),
        ),
        lambda: _geneval_mmdet(reward_kwargs),
        _workflow,
    ]
    results = []
    for check in checks:
        try:
            results.append(check())
        except Exception as err:  # a broken check must not hide the others
            results.append(
                Check("doctor", getattr(check, "__name__", "check"), False, f"the check itself failed: {err!r}")
            )
    return results


def _ocr_rapidocr() -> Check:
    check = combine(
        "reward ocr",
        "rapidocr (default, offline)",
        packages("rapidocr", "onnxruntime"),
        "pip install 'superflow[ocr]'",
    )
    if check.ok:
        ok, models = _rapidocr_models()
        check.detail += f"; {models}"
        if not ok:
            check.ok, check.fix = False, "reinstall rapidocr==3.10.0: its wheel carries the PP-OCR models"
    return check


def _geneval_mmdet(reward_kwargs: dict) -> Check:
    # The module imports without mmdet: its weight specs are plain data.
    from superflow.evaluation.geneval_mmdet import CLIP_WEIGHTS, DETECTOR_WEIGHTS, ENV_HINT

    return combine(
        "evaluator geneval",
        "mmdet Mask2Former + CLIP ViT-L/14",
        packages("mmdet", "mmcv", "open_clip"),
        ENV_HINT,
        ("", DETECTOR_WEIGHTS, reward_kwargs.get("detector_path")),
        ("CLIP ", CLIP_WEIGHTS, reward_kwargs.get("clip_path")),
    )


def _workflow() -> Check:
    ok, detail, missing = packages("snakemake")
    conda = shutil.which("conda") or shutil.which("mamba") or shutil.which("micromamba")
    detail += f"; conda: {conda or 'not found (rules run in this environment; --use-conda needs conda)'}"
    return Check("workflow", "snakemake", ok, detail, "pip install 'superflow[workflow]'" if missing else "")


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c.ok else 'MISSING'}] {c.component} ({c.backend}): {c.detail}")
        if c.fix:
            lines.append(f"    fix: {c.fix}")
    missing = [c for c in checks if not c.ok]
    lines.append(
        f"{len(checks) - len(missing)} of {len(checks)} ready"
        + (f"; missing: {', '.join(f'{c.component} ({c.backend})' for c in missing)}" if missing else "")
    )
    return "\n".join(lines)


def as_json(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
