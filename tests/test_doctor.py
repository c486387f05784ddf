"""`superflow doctor` tells the truth about this machine: packages, weights and fixes per component."""

import importlib.util
import json

from superflow.cli import main
from superflow.config import load_config
from superflow.doctor import packages, run_checks


def by_name(checks):
    return {(c.component, c.backend.split(" ")[0]): c for c in checks}


def test_package_probe_matches_importability():
    ok, detail, missing = packages("numpy", "surely_not_a_package_xyz")
    assert not ok and missing == ["surely_not_a_package_xyz"] and detail.startswith("numpy ")


def test_checks_follow_installed_packages_and_found_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERFLOW_PICKSCORE_PATH", raising=False)
    monkeypatch.delenv("SUPERFLOW_PICKSCORE_PROCESSOR_PATH", raising=False)
    checks = by_name(run_checks(load_config(None, ["model.kind=mini", f"model.path={tmp_path / 'no_model'}"])))
    rapid = checks[("reward ocr", "rapidocr")]
    assert rapid.ok == (
        importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None
    )
    paddle = checks[("reward ocr", "paddleocr")]
    assert paddle.ok == (
        importlib.util.find_spec("paddleocr") is not None and importlib.util.find_spec("paddle") is not None
    )
    if not paddle.ok:
        assert "superflow[paddleocr]" in paddle.fix and "envs/ocr.yaml" in paddle.fix
    mini = checks[("model mini", "MiniFlow")]
    assert not mini.ok and "no_model" in mini.fix and "superflow pretrain" in mini.fix
    pick = checks[("reward pickscore", "transformers")]
    assert not pick.ok and "yuvalkirstain/PickScore_v1" in pick.fix and "SUPERFLOW_PICKSCORE_PATH (unset)" in pick.fix

    model, processor = tmp_path / "pickscore", tmp_path / "processor"
    model.mkdir()
    processor.mkdir()
    (model / "config.json").write_text("{}")
    (processor / "tokenizer_config.json").write_text("{}")
    monkeypatch.setenv("SUPERFLOW_PICKSCORE_PATH", str(model))
    monkeypatch.setenv("SUPERFLOW_PICKSCORE_PROCESSOR_PATH", str(processor))
    pick = by_name(run_checks())[("reward pickscore", "transformers")]
    assert pick.ok and str(model) in pick.detail and str(processor) in pick.detail


def test_cli_json_and_strict_exit_code(capsys):
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"component", "backend", "ok", "detail", "fix"} <= set(rows[0]) and len(rows) >= 9
    assert main(["doctor", "--strict"]) == (0 if all(r["ok"] for r in rows) else 1)
    assert "ready" in capsys.readouterr().out
