"""Speed and memory of RL epochs per model and method, time split by phase.

    python benchmarks/speed.py                      # tiny SD3 and MiniFlow, Flow-GRPO and SuperFlow
    python benchmarks/speed.py --models tiny_sd3 --epochs 4 --threads 2
    python benchmarks/speed.py --models miniflow --methods flowgrpo --name speed_levers \
        --variant preset --variant no_cfg sample.guidance_scale=1     # levers: config overrides per row

Each (model, method) runs in its own process (so its peak memory is its own) for ``--epochs``
epochs at the same image budget; the first epoch is warm-up and left out of the averages. A
``--variant NAME KEY=VALUE ...`` adds a row per case with those config overrides (a speed lever:
no CFG, fewer steps, larger epochs, ...). Writes results/benchmarks/NAME.csv, NAME.md and
NAME_environment.json (machine, versions, commands), NAME being ``--name`` (default speed).
MiniFlow's speed does not depend on its weights: without a pretrained model at --miniflow it
times a freshly initialised one.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from superflow.cli.training import DEMO_PROMPTS
from superflow.reporting.markdown import to_markdown

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine

MODELS = ("tiny_sd3", "miniflow")
METHODS = ("flowgrpo", "superflow")


def case_config(model: str, method: str, epochs: int, workdir: Path, miniflow: Path, overrides: list[str]):
    """The config of one timed case; both methods sample the same number of images per epoch."""
    from superflow.config import load_config

    common = [
        f"method={method}",
        f"num_epochs={epochs}",
        "eval_every=0",
        f"save_every={epochs + 1}",
        f"output_dir={workdir / 'run'}",
    ]
    tail = list(overrides)
    if model == "tiny_sd3":
        from superflow.models.tiny_sd3 import save_tiny_sd3

        model_dir = save_tiny_sd3(workdir / "tiny-sd3", seed=0)
        prompts = workdir / "prompts.txt"
        prompts.write_text("\n".join(DEMO_PROMPTS) + "\n")
        return load_config(
            "preset:tiny_sd3_demo", [*common, f"model.path={model_dir}", f"data.train_prompts={prompts}", *tail]
        )
    world = workdir / "world"
    from superflow.world.prompts import make_splits

    make_splits(world / "geneval", n_train=200, n_test=20, seed=0)
    if not (miniflow / "model.pt").exists():
        from superflow.world.pretrain import PretrainConfig, pretrain
        from superflow.world.text import make_text_splits

        make_text_splits(world / "ocr", n_train=50, n_test=10, seed=0)
        miniflow = pretrain(
            PretrainConfig(output_dir=str(workdir / "miniflow"), data_dir=str(world), steps=1, batch_size=4),
            progress=False,
        )
    return load_config(
        "preset:mini_geneval",
        [
            *common,
            f"model.path={miniflow}",
            f"data.train_prompts={world / 'geneval/train_metadata.jsonl'}",
            f"data.test_prompts={world / 'geneval/test_metadata.jsonl'}",  # the preset's default may not exist
            *tail,
        ],
    )


def run_case(
    model: str, method: str, epochs: int, threads: int, miniflow: Path, variant: str, overrides: list[str]
) -> dict:
    import torch

    from superflow.train import Trainer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = case_config(model, method, epochs, Path(tmp), miniflow, overrides)
        trainer = Trainer(cfg, progress=False)
        history = trainer.run()
    timed = history[1:] or history  # the first epoch pays for warm-up
    frame = pd.DataFrame(timed)
    optimiser_steps = cfg.train.updates_per_epoch * cfg.train.inner_epochs
    row = {
        "model": model,
        "method": method,
        "variant": variant,
        "images_per_epoch": float(frame["images_sampled"].mean()),
        "sampling_s": float(frame["time_sampling"].mean()),
        "reward_s": float(frame["time_reward"].mean()),
        "training_s": float(frame["time_training"].mean()),
        "epoch_s": float(frame["time_epoch"].mean()),
        "images_per_s": float(frame["images_sampled"].sum() / frame["time_sampling"].sum()),
        "train_step_s": float(frame["time_training"].mean() / optimiser_steps),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "epochs_timed": len(timed),
        "threads": threads,
    }
    if torch.cuda.is_available():
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=["flowgrpo", "flowspo", "superflow"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--miniflow", default="runs/miniflow/model", help="pretrained MiniFlow (optional)")
    parser.add_argument("--output-dir", default="results/benchmarks")
    parser.add_argument("--name", default="speed", help="basename of the result files")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar="NAME",
        help="NAME KEY=VALUE ...: a row with these config overrides (repeatable); default: one row, no overrides",
    )
    parser.add_argument("--case", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    variants = args.variant or [["default"]]
    if args.case:  # child process: one case, JSON on stdout
        (name, *overrides) = variants[0]
        print(json.dumps(run_case(*args.case, args.epochs, args.threads, Path(args.miniflow), name, overrides)))
        return 0
    rows = []
    for model, method, variant in ((m, k, v) for m in args.models for k in args.methods for v in variants):
        cmd = [
            sys.executable,
            __file__,
            "--case",
            model,
            method,
            "--epochs",
            str(args.epochs),
            "--threads",
            str(args.threads),
            "--miniflow",
            args.miniflow,
            "--variant",
            *variant,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{model}/{method}/{variant[0]} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(
            f"{model:9s} {method:9s} {variant[0]:14s} {rows[-1]['images_per_s']:8.1f} images/s sampling, "
            f"{rows[-1]['train_step_s']:.3f} s per training step, peak {rows[-1]['peak_rss_mb']:.0f} MB"
        )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / f"{args.name}.csv", index=False)
    (out / f"{args.name}.md").write_text(to_markdown(frame, digits=3) + "\n")
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    (out / f"{args.name}_environment.json").write_text(
        json.dumps({**describe_machine(), "command": command}, indent=1) + "\n"
    )
    print(f"wrote {out / f'{args.name}.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
