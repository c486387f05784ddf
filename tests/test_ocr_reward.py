"""Flow-GRPO's OCR reward formula, the mini world's text signs and the RapidOCR backend."""

import sys
import types

import numpy as np
import pytest
import torch

from superflow.rewards import get_reward
from superflow.rewards import ocr as ocr_module
from superflow.rewards.ocr import levenshtein, ocr_score, ocr_target, prepare, read_robustly
from superflow.world.text import (
    TEXT_ALPHABET,
    TEXT_LENGTHS,
    TEXT_TEMPLATES,
    make_text_prompts,
    make_text_splits,
    render_text,
)

NEEDS_RAPIDOCR = "the OCR backend is an optional extra: pip install 'superflow[ocr]' (rapidocr==3.10.0, onnxruntime)"


def as_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def gt_signs(n: int, size: int, seed: int) -> tuple[list[str], torch.Tensor]:
    prompts = make_text_prompts(n, seed=seed)
    rng = np.random.default_rng(seed)
    return prompts, as_batch([render_text(ocr_target(p), size, rng) for p in prompts])


# --- the reference formula ----------------------------------------------------------------------


def test_target_is_the_first_quoted_text():
    assert ocr_target('A sign that says "Hello World" and "x"') == "Hello World"
    assert ocr_target('a sign that says "K7"') == "K7"
    with pytest.raises(ValueError, match="no double-quoted target text: 'a plain prompt'"):
        ocr_target("a plain prompt")
    with pytest.raises(ValueError, match="no double-quoted target text: 'an open \"quote'"):
        ocr_target('an open "quote')
    with pytest.raises(ValueError, match="target text is empty: 'empty \" \" quotes'"):
        ocr_target('empty " " quotes')


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("sitting", "kitten") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3 and levenshtein("", "") == 0
    assert levenshtein("abc", "abc") == 0 and levenshtein("flaw", "lawn") == 2


@pytest.mark.parametrize(
    "recognised,target,expected",
    [
        ("K7", "K7", 1.0),  # exact
        ("Hello World", "hello world", 1.0),  # case and spaces ignored
        ("hello  world", "HelloWorld", 1.0),
        ("xx HELLO42 yy", "hello 42", 1.0),  # substring: distance 0 however long the reading
        ("K77", "K7", 1.0),  # over-long but containing the target
        ("HELL0 42", "hello 42", 1 - 1 / 7),  # one substitution over 7 characters
        ("HELO", "hello", 1 - 1 / 5),  # one deletion
        ("K", "K7", 0.5),  # one missing character of two
        ("ACX", "ACE", 1 - 1 / 3),
        ("MNX", "MNXY", 1 - 1 / 4),
        ("MXNY", "MNXY", 1 - 2 / 4),  # a transposition costs two edits
        ("7K", "K7", 0.0),  # two edits over two characters
        ("", "K7", 0.0),  # nothing read: distance 2 = len(target)
        ("", "MNXY", 0.0),
        ("completely different text", "K7", 0.0),  # distance 24 capped at len(target)
        ("hxllo world", "hello", 0.0),  # over-long, not a substring: 1 + 5 = 6 edits capped at 5
        ("hxllo", "hello", 0.8),
    ],
)
def test_reference_formula(recognised, target, expected):
    assert ocr_score(recognised, target) == pytest.approx(expected)


def test_empty_target_is_an_error():
    with pytest.raises(ValueError, match="target text is empty"):
        ocr_score("abc", "  ")


# --- the mini world's signs -------------------------------------------------------------------


def test_alphabet_has_no_look_alikes():
    assert len(set(TEXT_ALPHABET)) == len(TEXT_ALPHABET) >= 16
    assert TEXT_ALPHABET.isalnum() and TEXT_ALPHABET == TEXT_ALPHABET.upper()
    for pair in ("O0", "I1", "S5", "B8", "Z2"):
        assert not set(pair) <= set(TEXT_ALPHABET), pair


def test_text_prompts_and_splits(tmp_path):
    prompts = make_text_prompts(60, seed=1)
    assert prompts == make_text_prompts(60, seed=1) and prompts != make_text_prompts(60, seed=2)
    assert len(set(prompts)) == 60
    for p in prompts:
        t = ocr_target(p)
        assert p.count('"') == 2 and len(t) in TEXT_LENGTHS and set(t) <= set(TEXT_ALPHABET)
    train, test = make_text_splits(tmp_path, n_train=120, n_test=30, seed=0)
    assert len(train) == 120 and len(test) == 30
    assert not {ocr_target(p) for p in train} & {ocr_target(p) for p in test}
    assert (tmp_path / "ocr_train.txt").read_text().splitlines() == train
    assert (tmp_path / "ocr_test.txt").read_text().splitlines() == test
    assert make_text_splits(tmp_path / "again", n_train=120, n_test=30, seed=0) == (train, test)


def test_text_lengths_are_configurable_and_impossible_splits_are_refused(tmp_path, monkeypatch):
    assert {len(ocr_target(p)) for p in make_text_prompts(200, seed=0, lengths=[4])} == {4}
    assert {len(ocr_target(p)) for p in make_text_prompts(400, seed=0, lengths=[2, 3])} == {2, 3}
    # 20 single characters cannot fill 2 x (30 + 10) prompts with disjoint targets.
    with pytest.raises(ValueError, match="cannot fill disjoint splits"):
        make_text_splits(tmp_path, n_train=30, n_test=10, lengths=[1])
    with pytest.raises(ValueError, match="100 distinct prompts asked for"):
        make_text_prompts(100, lengths=[1])  # 20 characters x 3 templates
    # A draw whose targets all reappear in the test split leaves the training split short: refused.
    import superflow.world.text as text

    monkeypatch.setattr(text, "make_text_prompts", lambda n, seed, lengths: [t.format("K7") for t in TEXT_TEMPLATES])
    with pytest.raises(ValueError, match="only 0 training prompts"):
        make_text_splits(tmp_path, n_train=2, n_test=1, lengths=[2])


def test_render_text_is_deterministic_dark_on_light():
    img = render_text("K7", 32, np.random.default_rng(0))
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert np.array_equal(img, render_text("K7", 32, np.random.default_rng(0)))
    assert not np.array_equal(img, render_text("K7", 32, np.random.default_rng(1)))  # jitter
    assert np.array_equal(render_text("K7"), render_text("K7")) and not np.array_equal(
        render_text("K7"), render_text("7K")
    )
    assert np.median(img) > 200 and img.min() < 100  # light background, dark ink
    for size in (32, 48, 64):
        wide = render_text("MNXY", size)
        assert wide.shape == (size, size, 3)
        ink = np.flatnonzero((wide.min(axis=2) < 128).any(axis=0))
        assert ink.min() >= 1 and ink.max() <= size - 2  # the longest strings fit the width
    assert render_text("K7", 32, font_size=10).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="empty"):
        render_text("")


def test_prepare_upscales_and_pads():
    img = render_text("K7", 32)
    big = prepare(img, min_side=128, margin=8)
    assert big.shape == (144, 144, 3) and big.dtype == np.uint8 and (big[:8] == big[0, 0]).all()
    assert prepare(img, min_side=16, margin=0).shape == (32, 32, 3)  # never downscales
    assert prepare(img, 128, 0, "nearest").shape == (128, 128, 3)
    with pytest.raises(ValueError, match="uint8"):
        prepare(img.astype(np.float32))


# --- failures and backends without an OCR engine ------------------------------------------------------------


class FlakyEngine:
    def __init__(self, bad: set[int]):
        self.bad = bad

    def read(self, images):
        out = []
        for image in images:
            if int(image[0, 0, 0]) in self.bad:
                raise RuntimeError("engine crashed")
            out.append("K7")
        return out


def test_a_failed_image_scores_zero_and_all_failed_raises():
    images = [np.full((8, 8, 3), v, np.uint8) for v in (1, 2, 3)]
    texts, failures = read_robustly(FlakyEngine({2}), images)
    assert texts == ["K7", None, "K7"] and failures == 1
    with pytest.raises(RuntimeError, match="OCR failed on all 3 images: engine crashed"):
        read_robustly(FlakyEngine({1, 2, 3}), images)


def test_unknown_backend_and_missing_paddle():
    with pytest.raises(ValueError, match="unknown backend 'tesseract'"):
        get_reward("ocr", backend="tesseract")
    try:
        import paddleocr  # noqa: F401
    except ImportError:
        ocr_module._paddleocr.cache_clear()
        with pytest.raises(ImportError, match="superflow\\[paddleocr\\].*envs/ocr.yaml"):
            get_reward("ocr", backend="paddleocr")


@pytest.mark.parametrize("api", ["3.x", "2.x"])
def test_paddleocr_results_are_parsed(monkeypatch, api):
    seen = {}

    class PaddleOCR3:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def predict(self, image):
            seen["shape"] = image.shape
            return [{"rec_texts": ["K", "7", "noise"], "rec_scores": [0.9, 0.8, 0.2]}]

    class PaddleOCR2:
        def __init__(self, **kwargs):
            if "use_textline_orientation" in kwargs:
                raise ValueError("unknown argument")
            seen.update(kwargs)

        def ocr(self, image, cls=True):
            assert cls is False
            return [[[None, ("K", 0.9)], [None, ("7", 0.8)], [None, ("noise", 0.2)]]]

    module = types.ModuleType("paddleocr")
    module.PaddleOCR = PaddleOCR3 if api == "3.x" else PaddleOCR2
    monkeypatch.setitem(sys.modules, "paddleocr", module)
    ocr_module._paddleocr.cache_clear()
    try:
        reward = get_reward("ocr", backend="paddleocr", min_side=64)
        scores, info = reward(torch.ones(2, 3, 32, 32), ['a sign that says "K7"', 'the text "K9"'])
    finally:
        ocr_module._paddleocr.cache_clear()
    assert scores.tolist() == [1.0, 0.5] and info["ocr_failures"] == 0  # "noise" (score 0.2) is dropped
    assert seen["lang"] == "en"
    if api == "3.x":
        assert seen["use_textline_orientation"] is False and seen["shape"] == (64, 64, 3)
    else:
        assert seen["use_angle_cls"] is False


def test_paddleocr_model_folders_and_missing_models(monkeypatch):
    seen = {}

    class PaddleOCR3:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            if not kwargs.get("text_detection_model_dir"):
                raise Exception("No available model hosting platforms detected.")  # what PaddleX raises offline

    module = types.ModuleType("paddleocr")
    module.PaddleOCR = PaddleOCR3
    monkeypatch.setitem(sys.modules, "paddleocr", module)
    ocr_module._paddleocr.cache_clear()
    try:
        get_reward("ocr", backend="paddleocr", det_model_dir="/models/det", rec_model_dir="/models/rec")
        assert (
            seen["text_detection_model_dir"] == "/models/det" and seen["text_recognition_model_dir"] == "/models/rec"
        )
        with pytest.raises(RuntimeError, match="det_model_dir.*rec_model_dir.*rapidocr"):
            get_reward("ocr", backend="paddleocr")
    finally:
        ocr_module._paddleocr.cache_clear()


@pytest.mark.slow
def test_real_paddleocr_without_models_says_what_is_missing(tmp_path, monkeypatch):
    """Where paddleocr is installed (envs/ocr.yaml): with no models on disk and no network, the
    backend's error names the missing models and the keys that point at local copies."""
    pytest.importorskip("paddleocr")
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty model cache
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / ".paddlex"))
    ocr_module._paddleocr.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="det_model_dir"):
            get_reward("ocr", backend="paddleocr")
    finally:
        ocr_module._paddleocr.cache_clear()


# --- RapidOCR on ground-truth renders -------------------------------------------------------------------


@pytest.mark.parametrize("use_det", [False, True])
def test_rapidocr_reads_ground_truth_signs(use_det):
    pytest.importorskip("rapidocr", reason=NEEDS_RAPIDOCR)
    prompts, batch = gt_signs(20, 32, seed=11)
    reward = get_reward("ocr", use_det=use_det)
    scores, info = reward(batch, prompts, [{}] * len(prompts))
    assert reward.bounded_unit and scores.shape == (20,)
    assert scores.mean() >= 0.95, list(zip(prompts, scores))
    assert info["ocr_accuracy"] == pytest.approx(scores.mean()) and info["ocr_failures"] == 0
    assert 0 < info["ocr_seconds_per_image"] < 5


def test_rapidocr_reward_end_to_end_on_noise_and_mixed_batch():
    pytest.importorskip("rapidocr", reason=NEEDS_RAPIDOCR)
    reward = get_reward("ocr", use_det=False, min_side=128)
    noise = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)).mul(0.25).add(0.5).clamp(0, 1)
    prompts = make_text_prompts(8, seed=3)
    assert reward(noise, prompts)[0].mean() < 0.2
    # a right sign, a wrong sign, a blank canvas: 1, (partial), 0
    blank = np.full((32, 32, 3), 245, np.uint8)
    batch = as_batch([render_text("K7", 32), render_text("K9", 32), blank])
    scores, _ = reward(batch, ['a sign that says "K7"', 'a sign that says "K7"', 'a sign that says "K7"'])
    assert scores.tolist() == [1.0, 0.5, 0.0]


def test_rapidocr_uses_the_jobs_thread_budget_not_every_core():
    pytest.importorskip("rapidocr", reason=NEEDS_RAPIDOCR)
    from superflow.rewards.ocr import RapidOCREngine

    def intra_op_threads(engine):
        return engine.engine._load_rec_model().session.session.get_session_options().intra_op_num_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # what OMP_NUM_THREADS=1 gives a Snakemake job
        assert intra_op_threads(RapidOCREngine(use_det=False)) == 1
    finally:
        torch.set_num_threads(before)
    assert intra_op_threads(RapidOCREngine(use_det=False, threads=2)) == 2
    with pytest.raises(ValueError, match="threads"):
        RapidOCREngine(threads=0)


def test_a_narrower_recogniser_line_still_reads_ground_truth_signs():
    pytest.importorskip("rapidocr", reason=NEEDS_RAPIDOCR)
    prompts, batch = gt_signs(20, 32, seed=11)
    reward = get_reward("ocr", use_det=False, rec_width=128)
    assert reward(batch, prompts)[0].mean() >= 0.95
    from superflow.rewards.ocr import RapidOCREngine

    assert list(RapidOCREngine(use_det=False, rec_width=128).engine._load_rec_model().rec_image_shape) == [3, 48, 128]
    with pytest.raises(ValueError, match="rec_width"):
        RapidOCREngine(rec_width=32)


@pytest.mark.slow
@pytest.mark.parametrize("size,use_det", [(32, False), (32, True), (48, False), (64, False)])
def test_rapidocr_reads_300_ground_truth_signs(size, use_det):
    """Validation behind the reported numbers: >= 0.95 mean reward on 300 jittered renders."""
    pytest.importorskip("rapidocr", reason=NEEDS_RAPIDOCR)
    prompts, batch = gt_signs(300, size, seed=123)
    scores, info = get_reward("ocr", use_det=use_det)(batch, prompts)
    assert scores.mean() >= 0.95, (size, use_det, info)
