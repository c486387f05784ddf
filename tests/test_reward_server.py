"""The reward server: started by the project on loopback, health-checked, scores, survives bad requests, stops."""

import json
import urllib.request

import numpy as np
import pytest
import torch

from superflow.rewards import get_reward
from superflow.rewards.registry import RewardError
from superflow.rewards.server import RewardServer, encode_images
from superflow.world.render import render_scene

RECORDS = [
    {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"},
    {
        "tag": "colors",
        "include": [{"class": "square", "count": 1, "color": "red"}],
        "prompt": "a photo of a red square",
    },
    {
        "tag": "counting",
        "include": [{"class": "cross", "count": 2}],
        "exclude": [{"class": "cross", "count": 3}],
        "prompt": "a photo of two crosses",
    },
]


def batch_of(records, size=32):
    rng = np.random.default_rng(0)
    images = np.stack([render_scene(r, size, rng) for r in records])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def served():
    reward = get_reward("served", reward="geneval_mini", kwargs={"mode": "strict"}, startup_timeout=120, timeout=60)
    yield reward
    reward.fn.server.close()


def test_served_scores_equal_in_process_scores(served):
    local = get_reward("geneval_mini", mode="strict")
    images = batch_of(RECORDS)
    prompts, meta = [r["prompt"] for r in RECORDS], RECORDS
    remote_scores, remote_info = served(images, prompts, meta)
    local_scores, local_info = local(images, prompts, meta)
    np.testing.assert_array_equal(remote_scores, local_scores)
    assert remote_scores.tolist() == [1.0, 1.0, 1.0]  # ground-truth renders
    assert remote_info["strict"] == local_info["strict"] and served.bounds == (0.0, 1.0)
    wrong = [{**r, "include": [{**r["include"][0], "class": "ring"}]} for r in RECORDS]
    assert served(images, prompts, wrong)[0].tolist() == [0.0, 0.0, 0.0]


def test_health_and_malformed_requests_get_error_replies(served):
    server = served.fn.server
    assert server.url.startswith("http://127.0.0.1:") and server.health()["reward"] == "geneval_mini"
    for body in (
        b"not json",
        json.dumps({"prompts": ["x"]}).encode(),
        json.dumps({"images": "!!", "prompts": ["x"]}).encode(),
    ):
        request = urllib.request.Request(server.url + "/score", data=body)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 400 and "malformed request" in json.loads(err.value.read())["error"]
    mismatched = {"images": encode_images(np.zeros((2, 8, 8, 3), np.uint8)), "prompts": ["a photo of a circle"]}
    with pytest.raises(RewardError, match="replied 400: malformed request: 2 images, 1 prompts"):
        server._request("/score", mismatched)
    no_metadata = {"images": encode_images(np.zeros((1, 8, 8, 3), np.uint8)), "prompts": ["a photo of a circle"]}
    with pytest.raises(RewardError, match="replied 500: reward 'geneval_mini' failed: .*include"):
        server._request("/score", no_metadata)
    assert server.health()["status"] == "ok"  # still serving


def test_a_dead_server_is_a_clear_error_not_a_hang():
    server = RewardServer("geneval_mini", startup_timeout=120, timeout=30)
    process = server.process
    process.kill()
    process.wait()
    with pytest.raises(RewardError, match=r"exited with code -9 before a request"):
        server.score(np.zeros((1, 8, 8, 3), np.uint8), ["a photo of a circle"], [RECORDS[0]])
    server.close()
    assert process.poll() is not None


def test_a_server_that_cannot_start_reports_its_log(tmp_path):
    with pytest.raises(RewardError, match=r"(?s)exited with code 1 while starting.*unknown reward 'no_such_reward'"):
        RewardServer("no_such_reward", startup_timeout=120)
    with pytest.raises(RewardError, match="interpreter .*missing-python.* does not exist"):
        RewardServer("geneval_mini", python=str(tmp_path / "missing-python"))


def test_close_stops_the_process():
    server = RewardServer("geneval_mini", startup_timeout=120)
    process = server.process
    server.close()
    assert process.poll() is not None
