import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory):
    """A tiny random SD3 pipeline saved once per test session (offline)."""
    from superflow.models.tiny_sd3 import save_tiny_sd3

    path = tmp_path_factory.mktemp("tiny-sd3")
    save_tiny_sd3(path, seed=0)
    return path


@pytest.fixture()
def tiny_pipeline(tiny_sd3_dir):
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(tiny_sd3_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe
