"""A reward served from another process (another Python, e.g. the mmdet conda env) on loopback.

GenEval's Mask2Former needs mmdet/mmcv pinned to an old torch, which cannot share an environment
with the trainer. The trainer therefore starts the reward in its own interpreter, talks to it over
HTTP on 127.0.0.1 with a port the server picks, health-checks it, and stops it when done: no
hand-started server and no hard-coded address (the reference implementations' most reported
set-up problem).

    reward:
      name: served
      kwargs:
        reward: geneval                 # any registered reward (or file.py:function)
        kwargs: {backend: mmdet}        # its own kwargs
        python: ~/miniforge3/envs/superflow-geneval/bin/python   # default: this interpreter

Protocol: ``GET /health`` -> ``{"status": "ok", "reward": name}``; ``POST /score`` with JSON
``{"images": base64 .npy of uint8 [B, H, W, 3], "prompts": [...], "metadata": [...]}`` ->
``{"scores": [...], "info": {...}}``; a malformed request or a failing reward gets an error reply
``{"error": "..."}`` (HTTP 400/500) and the server keeps serving.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superflow.rewards.registry import RewardError, register_reward

LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------- wire format
def encode_images(images: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(images), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_images(text: str) -> np.ndarray:
    images = np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {list(images.shape)}")
    return images


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------- server side
def make_handler(reward):
    lock = threading.Lock()  # one batch at a time: rewards hold models that are not thread-safe

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet; errors are returned to the client
            pass

        def _reply(self, code: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                self._reply(200, {"status": "ok", "reward": reward.name, "bounds": reward.bounds, "pid": os.getpid()})
            else:
                self._reply(404, {"error": f"unknown path {self.path}; use GET /health or POST /score"})

        def do_POST(self):
            if self.path != "/score":
                self._reply(404, {"error": f"unknown path {self.path}; use POST /score"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"null")
                if not isinstance(request, dict) or not {"images", "prompts"} <= set(request):
                    raise ValueError("the request must be a JSON object with 'images' and 'prompts'")
                images = decode_images(request["images"])
                prompts = request["prompts"]
                metadata = request.get("metadata") or [{} for _ in prompts]
                if len(prompts) != len(images) or len(metadata) != len(images):
                    raise ValueError(
                        f"{len(images)} images, {len(prompts)} prompts and {len(metadata)} metadata entries"
                    )
            except Exception as err:  # malformed: tell the client, keep serving
                self._reply(400, {"error": f"malformed request: {err}"})
                return
            try:
                batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
                with lock:
                    scores, info = reward(batch, prompts, metadata)
                self._reply(200, {"scores": np.asarray(scores, np.float64).tolist(), "info": _jsonable(info)})
            except Exception as err:
                self._reply(500, {"error": f"reward {reward.name!r} failed: {type(err).__name__}: {err}"})

    return Handler


def serve(reward_name: str, reward_kwargs: dict, port: int = 0, port_file: str | None = None) -> None:
    """Load the reward, listen on loopback, write the chosen port to ``port_file``, serve forever."""
    from superflow.rewards import get_reward

    reward = get_reward(reward_name, **reward_kwargs)
    server = ThreadingHTTPServer((LOOPBACK, port), make_handler(reward))
    if port_file:  # written atomically: the parent polls for it
        tmp = Path(port_file).with_suffix(".tmp")
        tmp.write_text(str(server.server_address[1]))
        os.replace(tmp, port_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve a registered reward on 127.0.0.1")
    parser.add_argument("--reward", required=True)
    parser.add_argument("--kwargs", default="{}", help="the reward's kwargs as JSON")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file")
    args = parser.parse_args(argv)
    serve(args.reward, json.loads(args.kwargs), args.port, args.port_file)
    return 0


# ---------------------------------------------------------------- client side
class RewardServer:
    """Starts a server process (:func:`main`) for one reward and talks to it.

    ``python`` is the interpreter to run it with (another conda env's), default this one. Start-up
    waits up to ``startup_timeout`` seconds for the health check; every request has ``timeout``
    seconds; a server that died is reported with its exit code and the end of its log.
    """

    def __init__(
        self,
        reward: str,
        kwargs: dict | None = None,
        python: str | None = None,
        startup_timeout: float = 300.0,
        timeout: float = 600.0,
    ):
        self.reward, self.kwargs = reward, dict(kwargs or {})
        self.python = str(Path(python).expanduser()) if python else sys.executable
        if python and not Path(self.python).exists():
            raise RewardError(f"reward server: interpreter {self.python!r} (reward.kwargs.python) does not exist")
        self.timeout = timeout
        self._dir = tempfile.TemporaryDirectory(prefix="superflow-reward-")
        self.log_path = Path(self._dir.name) / "server.log"
        port_file = Path(self._dir.name) / "port"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
            ),
        }
        # -c, not -m: run as __main__ the module would register its rewards a second time
        entry = "import sys; from superflow.rewards.server import main; sys.exit(main(sys.argv[1:]))"
        cmd = [
            self.python,
            "-c",
            entry,
            "--reward",
            reward,
            "--kwargs",
            json.dumps(self.kwargs),
            "--port-file",
            str(port_file),
        ]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._finalizer = weakref.finalize(self, _stop_process, self.process, self._log, self._dir)
        deadline = time.monotonic() + startup_timeout
        while not port_file.exists():
            self._raise_if_dead("while starting")
            if time.monotonic() > deadline:
                self.close()
                raise RewardError(
                    f"reward server for {reward!r} did not start within {startup_timeout:.0f} s; "
                    f"log: {self.log_tail()}"
                )
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.url = f"http://{LOOPBACK}:{self.port}"
        health = self.health()
        self.bounds = tuple(health["bounds"]) if health.get("bounds") else None
        if health.get("status") != "ok":
            self.close()
            raise RewardError(f"reward server for {reward!r} answered its health check with {health}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text()[-chars:] or "(empty)"
        except OSError:
            return "(no log)"

    def _raise_if_dead(self, doing: str, grace: float = 0.0) -> None:
        """Raise when the server has exited (waiting up to ``grace`` s for one that just dropped a connection)."""
        try:
            code = self.process.wait(timeout=grace) if grace else self.process.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            raise RewardError(
                f"reward server for {self.reward!r} (pid {self.process.pid}) exited with code {code} {doing}; "
                f"its log ends: {self.log_tail()}"
            )

    def _request(self, path: str, payload: dict | None = None, timeout: float | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                message = json.loads(err.read()).get("error", "")
            except Exception:
                message = str(err)
            raise RewardError(f"reward server for {self.reward!r} replied {err.code}: {message}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            # a dropped connection usually means the server died mid-request: say so, not "no answer"
            self._raise_if_dead(f"(request {path} failed: {err})", grace=0.0 if isinstance(err, TimeoutError) else 5.0)
            raise RewardError(f"reward server for {self.reward!r} at {self.url} did not answer {path}: {err}") from err

    def health(self) -> dict:
        return self._request("/health", timeout=30)

    def score(self, images: np.ndarray, prompts: list[str], metadata: list[dict]) -> tuple[np.ndarray, dict]:
        self._raise_if_dead("before a request")
        reply = self._request(
            "/score",
            {"images": encode_images(images), "prompts": list(prompts), "metadata": _jsonable(list(metadata))},
        )
        return np.asarray(reply["scores"], np.float64), reply.get("info", {})

    def close(self) -> None:
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _stop_process(process: subprocess.Popen, log, directory) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()
    directory.cleanup()


@register_reward("served")
def served(
    reward: str,
    kwargs: dict | None = None,
    python: str | None = None,
    startup_timeout: float = 300.0,
    timeout: float = 600.0,
):
    """Any registered reward, run by a server process this trainer starts and stops (see module doc)."""
    from superflow.rewards.simple import to_uint8

    server = RewardServer(reward, kwargs, python=python, startup_timeout=startup_timeout, timeout=timeout)

    def score(images, prompts, metadata):
        return server.score(to_uint8(images), prompts, metadata)

    score.server = server  # keeps the server alive as long as the reward function
    score.bounds = server.bounds  # the served reward's declared range (Beta tracker for accuracies)
    return score
