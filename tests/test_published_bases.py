"""Published mini bases: a folder with a manifest of settings and sha256s, installed only intact."""

import json

import pytest

from superflow.cli import main
from superflow.world.published import MANIFEST, install, publish, read_manifest


def _base(folder, content: bytes):
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.pt").write_bytes(content)
    (folder / "model" / "config.json").write_text('{"channels": [24, 48, 96]}')
    return folder / "model"


def test_publish_then_install_round_trips_the_files_and_records_settings(tmp_path):
    source = _base(tmp_path / "runs" / "miniflow", b"weights")
    made_with = {"seed": 0, "channels": [24, 48, 96]}
    publish({"miniflow": source}, {"miniflow": made_with}, tmp_path / "published")
    manifest = read_manifest(tmp_path / "published")
    assert manifest["bases"]["miniflow"]["settings"] == made_with
    assert set(manifest["bases"]["miniflow"]["files"]) == {"model.pt", "config.json"}
    assert manifest["made_on"]["torch"]
    installed = install(tmp_path / "published", "miniflow", tmp_path / "study" / "miniflow" / "model")
    assert (installed / "model.pt").read_bytes() == b"weights"
    assert (installed / "config.json").read_text() == '{"channels": [24, 48, 96]}'
    assert sorted(p.name for p in (tmp_path / "study" / "miniflow").iterdir()) == ["model"]  # no staging left


def test_install_refuses_an_altered_file_a_missing_file_and_an_unknown_base(tmp_path):
    publish({"miniflow": _base(tmp_path / "a", b"weights")}, {"miniflow": {}}, tmp_path / "published")
    (tmp_path / "published" / "miniflow" / "model.pt").write_bytes(b"version https://git-lfs.github.com/spec/v1")
    with pytest.raises(ValueError, match=r"model\.pt does not match its sha256"):
        install(tmp_path / "published", "miniflow", tmp_path / "out")
    (tmp_path / "published" / "miniflow" / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.pt is missing"):
        install(tmp_path / "published", "miniflow", tmp_path / "out")
    with pytest.raises(ValueError, match="no base 'preference'.*published: miniflow"):
        install(tmp_path / "published", "preference", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_publishes_and_installs_and_names_bad_settings(tmp_path, capsys):
    source = _base(tmp_path / "runs" / "miniflow", b"w")
    out = tmp_path / "published"
    assert main(["publish-bases", "--base", "miniflow", str(source), '{"seed": 3}', "--output-dir", str(out)]) == 0
    assert json.loads((out / MANIFEST).read_text())["bases"]["miniflow"]["settings"] == {"seed": 3}
    install_args = ["--published", str(out), "--name", "miniflow", "--output-dir", str(tmp_path / "x")]
    assert main(["install-base", *install_args]) == 0
    assert (tmp_path / "x" / "model.pt").read_bytes() == b"w"
    assert main(["publish-bases", "--base", "miniflow", str(source), "{seed: 3}", "--output-dir", str(out)]) == 2
    assert "--base miniflow: the settings are not JSON" in capsys.readouterr().err
