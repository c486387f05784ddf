"""Shared builders for trainer tests on the tiny SD3."""

from pathlib import Path

from superflow.config import load_config

PROMPTS = [
    "a red apple",
    "a blue car",
    "a green tree",
    "a yellow sun",
    "a purple flower",
    "an orange cat",
    "a white house",
    "a black dog",
]


def write_prompts(folder: Path) -> Path:
    path = Path(folder) / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    return path


def tiny_config(model_dir: Path, out_dir: Path, method: str = "flowgrpo", **overrides):
    prompts = write_prompts(Path(out_dir).parent if Path(out_dir).parent.exists() else out_dir)
    items = [
        f"model.path={model_dir}",
        f"data.train_prompts={prompts}",
        f"data.test_prompts={prompts}",
        f"output_dir={out_dir}",
        f"method={method}",
        "num_epochs=3",
        "eval_every=0",
        "sample.prompts_per_epoch=3",
        "sample.group_size=4",
        "sample.batch_size=6",
        "train.micro_batch_size=6",
        "algorithm.num_bins=2",
    ]
    items += [f"{k}={v}" for k, v in overrides.items()]
    return load_config("preset:tiny_sd3_demo", items)
