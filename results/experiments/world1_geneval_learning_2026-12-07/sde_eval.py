"""`superflow evaluate` with the training SDE (noise level 0.7) instead of the ODE: python sde_eval.py ARGS."""

import sys

import superflow.evaluation.runner as runner

ode = runner.sample_trajectories
runner.sample_trajectories = lambda *a, **k: ode(*a, **{**k, "noise_level": 0.7})
from superflow.cli import main  # noqa: E402

sys.exit(main(["evaluate", *sys.argv[1:]]))
