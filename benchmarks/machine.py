"""What a benchmark result was measured on: CPU or GPU, core count, versions, date."""

from __future__ import annotations

import os
import platform
import time


def describe_machine() -> dict:
    import torch

    from superflow.run_logging import cpu_name

    info = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
