"""Weight discovery: config path, environment variable, Hugging Face cache; never a download."""

import pytest

from superflow.models.weights import WeightsNotFoundError, WeightSpec, resolve_weights

SPEC = WeightSpec(
    component="Thing",
    config_key="model.path",
    env_var="THING_PATH",
    repo_id="org/thing",
    required_files=("model_index.json",),
    how_to_obtain="Download org/thing.",
)


def _folder(path):
    path.mkdir(parents=True)
    (path / "model_index.json").write_text("{}")
    return path


def _fake_cache(root, repo_id):
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = _folder(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return snapshot


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("THING_PATH", raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_explicit_folder_wins(tmp_path, monkeypatch):
    explicit, env = _folder(tmp_path / "a"), _folder(tmp_path / "b")
    monkeypatch.setenv("THING_PATH", str(env))
    assert resolve_weights(SPEC, explicit) == explicit
    assert resolve_weights(SPEC, None) == env


def test_cache_snapshot_is_found_offline(empty_cache):
    snapshot = _fake_cache(empty_cache, "org/thing")
    assert resolve_weights(SPEC, None).resolve() == snapshot.resolve()
    other = _fake_cache(empty_cache, "org/other")
    assert resolve_weights(SPEC, "org/other").resolve() == other.resolve()


def test_explicit_repo_never_falls_back_to_default(empty_cache):
    _fake_cache(empty_cache, "org/thing")
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(SPEC, "org/missing")
    assert "org/missing" in str(err.value) and "org/thing" not in str(err.value).split("Download")[0]


def test_miss_lists_every_place_and_what_to_get(tmp_path, empty_cache):
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(SPEC, None)
    message = str(err.value)
    assert "$THING_PATH (unset)" in message and str(empty_cache) in message and "Download org/thing." in message
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    with pytest.raises(WeightsNotFoundError, match="missing model_index.json"):
        resolve_weights(SPEC, incomplete)
