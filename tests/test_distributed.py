"""Two processes (gloo, launched by torchrun) train exactly like one process on the same global batch."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from superflow.config import dump_config

WORKER = Path(__file__).with_name("distributed_worker.py")
# SuperFlow exercises every shared decision: tracker-driven prompt draws and group sizes (from the
# second epoch on, they depend on the gathered rewards) and step-level advantages.
OVERRIDES = {"num_epochs": 2, "save_every": 1, "sample.prompts_per_epoch": 8, "train.lr": 3e-2}
# One initial latent per group, drawn by the group's global index, must not depend on the split either.
SHARED_STARTS = {**OVERRIDES, "sample.same_initial_noise": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(
    nproc: int, model_dir: Path, run_dir: Path, prefix: Path, launcher: str = "torchrun", overrides=OVERRIDES
) -> None:
    run_dir.mkdir(parents=True)
    config = run_dir.parent / "config.yaml"
    config.write_text(dump_config(tiny_config(model_dir, run_dir, method="superflow", **overrides)))
    if launcher == "torchrun":
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={nproc}",
            "--master-addr=127.0.0.1",
            f"--master-port={_free_port()}",
            str(WORKER),
            str(config),
            str(prefix),
        ]
    else:  # accelerate's multi-process launcher; on a machine without GPUs it runs gloo on CPU
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            f"--num_processes={nproc}",
            f"--main_process_port={_free_port()}",
            str(WORKER),
            str(config),
            str(prefix),
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


@pytest.fixture(scope="module")
def runs(tiny_sd3_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    _launch(1, tiny_sd3_dir, root / "one" / "run", root / "one_rank")
    _launch(2, tiny_sd3_dir, root / "two" / "run", root / "two_rank")
    _launch(2, tiny_sd3_dir, root / "accelerate" / "run", root / "accelerate_rank", launcher="accelerate")
    for nproc in (1, 2):
        _launch(
            nproc, tiny_sd3_dir, root / f"shared{nproc}" / "run", root / f"shared{nproc}_rank", overrides=SHARED_STARTS
        )
    one = torch.load(root / "one_rank0.pt")
    two = [torch.load(root / f"two_rank{r}.pt") for r in (0, 1)]
    return one, two, root


def test_ranks_agree_with_each_other(runs):
    _, (r0, r1), _ = runs
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["group_sizes"] == r1["group_sizes"]
    assert torch.equal(r0["advantages"], r1["advantages"])
    for a, b in zip(r0["params"], r1["params"]):
        assert torch.equal(a, b)


def test_two_processes_match_one(runs):
    one, (two, _), _ = runs
    assert one["world_size"] == 1
    assert two["group_sizes"] == one["group_sizes"]
    assert len(one["group_sizes"]) == 2
    assert len(set(one["group_sizes"][1])) > 1, "the second epoch's allocation should use the gathered rewards"
    # Adam turns float summation-order differences on near-zero gradients into visible steps;
    # 1e-4 is 0.1% of what lr 3e-2 moves a weight in these four steps. The last epoch's advantages
    # come from rewards of those weights, so they get the same tolerance (at 1e-5 they failed on
    # one CPU model by 3.8e-5 in 2 of 84 entries, before and after the issue-15 restructuring).
    torch.testing.assert_close(two["advantages"], one["advantages"], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(two["rewards"], one["rewards"], rtol=1e-4, atol=1e-6)
    for a, b in zip(two["params"], one["params"]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    # ...and training changed the weights, so this is not two untouched models agreeing.
    assert any(not torch.allclose(a, b) for a, b in zip(one["params"], one["initial"]))


def test_sharded_evaluation_equals_one_process(runs):
    one, (r0, r1), _ = runs
    assert r0["initial_eval"] == r1["initial_eval"]  # every rank holds the gathered result
    assert r0["initial_eval"]["eval_num_images"] == one["initial_eval"]["eval_num_images"] == 8
    for key, value in one["initial_eval"].items():
        assert r0["initial_eval"][key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_only_rank_zero_writes_the_run_folder(runs):
    *_, root = runs
    run = root / "two" / "run"
    assert (run / "summary.json").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all('"world_size": 2' in line for line in lines)


def test_accelerate_launch_trains_like_torchrun(runs):
    *_, root = runs
    via_accelerate, via_torchrun = torch.load(root / "accelerate_rank0.pt"), torch.load(root / "two_rank0.pt")
    assert via_accelerate["world_size"] == 2
    assert via_accelerate["group_sizes"] == via_torchrun["group_sizes"]
    for a, b in zip(via_accelerate["params"], via_torchrun["params"]):
        assert torch.equal(a, b)


def test_shared_starts_do_not_depend_on_the_split_across_ranks(runs):
    *_, root = runs
    one, two = torch.load(root / "shared1_rank0.pt"), torch.load(root / "shared2_rank0.pt")
    assert two["world_size"] == 2 and two["group_sizes"] == one["group_sizes"]
    torch.testing.assert_close(two["rewards"], one["rewards"], rtol=1e-4, atol=1e-6)
    for a, b in zip(two["params"], one["params"]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    # the shared starts changed what was sampled (else this repeats test_two_processes_match_one)
    own_starts = torch.load(root / "one_rank0.pt")
    assert one["rewards"] != own_starts["rewards"]
