"""Worker for tests/test_distributed.py: trains the tiny SD3 under a launcher (torchrun, accelerate).

Usage: python distributed_worker.py CONFIG_YAML RESULT_PREFIX
Writes RESULT_PREFIX<rank>.pt with the epochs' group sizes, the last advantages and the weights.
"""

import sys

import torch

from superflow.config import load_config
from superflow.distributed import Distributed
from superflow.train import Trainer


def main() -> None:
    config, prefix = sys.argv[1:]
    torch.set_num_threads(1)
    cfg = load_config(config)
    dist = Distributed.from_environment()
    trainer = Trainer(cfg, progress=False, distributed=dist)
    initial = [p.detach().clone() for p in trainer.params]
    initial_eval = trainer.evaluate()  # sharded over the ranks
    history = trainer.run()
    torch.save(
        {
            "world_size": dist.world_size,
            "group_sizes": [h["group_sizes"] for h in history],
            "rewards": [h["reward_mean"] for h in history],
            "advantages": trainer.last_step_advantages,
            "params": [p.detach().clone() for p in trainer.params],
            "initial": initial,
            "initial_eval": initial_eval,
        },
        f"{prefix}{dist.rank}.pt",
    )


if __name__ == "__main__":
    main()
