"""Flow-GRPO's OCR reward, computed with RapidOCR (default, offline) or PaddleOCR.

Reward (ALGORITHM.md section 4, as the Flow-GRPO reference computes it): the target is the text
between the first pair of double quotes of the prompt; target and recognised text are lower-cased
with spaces removed; the distance is 0 when the target is a substring of the recognised text, else
their Levenshtein distance capped at the target's length; reward = 1 - distance / len(target).
OCR accuracy is the mean reward over the test prompts.

As in the reference (PaddleOCR's ``drop_score``), recognised lines with confidence below
``text_score`` (0.5) are dropped, and an image whose OCR call fails scores 0 (counted in the info
dict as ``ocr_failures``; a batch in which every image fails raises instead).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from superflow.rewards.registry import register_reward
from superflow.rewards.simple import to_uint8

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'superflow[ocr]'"
PADDLE_HINT = "pip install 'superflow[paddleocr]' (or the conda env envs/ocr.yaml)"


def ocr_target(prompt: str) -> str:
    """The text between the first pair of double quotes (``prompt.split('"')[1]``)."""
    parts = prompt.split('"')
    if len(parts) < 3:
        raise ValueError(f"OCR prompt has no double-quoted target text: {prompt!r}")
    if not parts[1].replace(" ", ""):
        raise ValueError(f"OCR prompt's double-quoted target text is empty: {prompt!r}")
    return parts[1]


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def ocr_score(recognised: str, target: str) -> float:
    """1 - d / len(target), d = 0 for a substring match, else Levenshtein capped at len(target)."""
    target = target.replace(" ", "").lower()
    recognised = recognised.replace(" ", "").lower()
    if not target:
        raise ValueError("OCR target text is empty (after removing spaces)")
    distance = 0 if target in recognised else min(levenshtein(recognised, target), len(target))
    return 1 - distance / len(target)


class OCREngine(Protocol):
    """Reads one text string per image (lines joined by spaces; "" when nothing is read)."""

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        """``images``: uint8 RGB arrays [H, W, 3]."""
        ...


_INTERPOLATION = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST, "bilinear": Image.BILINEAR}


def prepare(image: np.ndarray, min_side: int = 128, margin: int = 8, interpolation: str = "bicubic") -> np.ndarray:
    """Upscale so the short side is at least ``min_side``, then pad ``margin`` px of the corner colour."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"OCR engines read uint8 [H, W, 3] images, got {image.dtype} {image.shape}")
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATION)}, got {interpolation!r}")
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    scale = min_side / min(h, w)
    if scale > 1:
        pil = pil.resize((round(w * scale), round(h * scale)), _INTERPOLATION[interpolation])
    if margin:
        canvas = Image.new("RGB", (pil.width + 2 * margin, pil.height + 2 * margin), pil.getpixel((0, 0)))
        canvas.paste(pil, (margin, margin))
        pil = canvas
    return np.asarray(pil)


@lru_cache(maxsize=4)
def _rapidocr(
    det_limit_side_len: int | None = None,
    rec_batch_num: int = 64,
    threads: int | None = None,
    rec_width: int | None = None,
):
    """One RapidOCR per process and setting (model files load once; ~0.5 s).

    ``threads`` caps onnxruntime's intra-op pool, which otherwise takes every core whatever
    ``OMP_NUM_THREADS`` says: a one-thread Snakemake job would oversubscribe its neighbours.
    """
    try:
        from rapidocr import RapidOCR
    except ImportError as err:
        raise ImportError(f"the OCR reward's default backend needs rapidocr and onnxruntime: {INSTALL_HINT}") from err
    params = {"Global.log_level": "warning", "Rec.rec_batch_num": rec_batch_num}
    if threads is not None:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    if rec_width is not None:
        params["Rec.rec_img_shape"] = [3, 48, rec_width]
    if det_limit_side_len is not None:
        params["Det.limit_side_len"] = det_limit_side_len
    engine = RapidOCR(params=params)
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return engine


class RapidOCREngine:
    """RapidOCR 3.x with the PP-OCRv6 small models inside its wheel (no download).

    Images are upscaled to ``min_side`` on the short side and padded with ``margin`` px before
    reading. With ``use_det=False`` the text detector is skipped and each whole canvas is read as one
    line, all canvases in one batched recogniser call: right for the mini world's single-line signs
    and ~10x faster (the detector is most of the cost). ``det_limit_side_len`` is the size the
    detector rescales the short side to (RapidOCR's default 736; ``None`` keeps it). Lines read
    with confidence below ``text_score`` are dropped, as PaddleOCR's ``drop_score`` does.
    ``rec_width`` is the width the recogniser pads each 48 px high line to (RapidOCR's default 320,
    made for long lines; a square sign fills 48 of it).
    """

    def __init__(
        self,
        use_det: bool = True,
        min_side: int = 128,
        margin: int = 8,
        interpolation: str = "bicubic",
        text_score: float = 0.5,
        det_limit_side_len: int | None = None,
        threads: int | None = None,
        rec_width: int | None = None,
    ):
        if min_side < 1 or margin < 0:
            raise ValueError(f"min_side must be >= 1 and margin >= 0, got {min_side} and {margin}")
        if interpolation not in _INTERPOLATION:
            raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATION)}, got {interpolation!r}")
        self.use_det, self.min_side, self.margin = bool(use_det), int(min_side), int(margin)
        self.interpolation, self.text_score = interpolation, float(text_score)
        # torch's thread count is the job's budget (OMP_NUM_THREADS or --threads set it)
        self.threads = int(threads) if threads is not None else torch.get_num_threads()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if rec_width is not None and rec_width < 48:
            raise ValueError(f"rec_width must be >= 48 (the recogniser's height), got {rec_width}")
        self.engine = _rapidocr(det_limit_side_len, threads=self.threads, rec_width=rec_width)

    def _bgr(self, image: np.ndarray) -> np.ndarray:
        # RapidOCR takes numpy arrays as OpenCV BGR
        return np.ascontiguousarray(prepare(image, self.min_side, self.margin, self.interpolation)[:, :, ::-1])

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        images = [self._bgr(image) for image in images]
        if not images:
            return []
        if not self.use_det:
            from rapidocr.ch_ppocr_rec import TextRecInput

            out = self.engine._load_rec_model()(TextRecInput(img=images))
            return [txt if score >= self.text_score else "" for txt, score in zip(out.txts, out.scores)]
        texts = []
        for image in images:
            out = self.engine(image, use_det=True, use_cls=False, use_rec=True, text_score=self.text_score)
            texts.append(" ".join(out.txts) if getattr(out, "txts", None) else "")
        return texts


@lru_cache(maxsize=4)
def _paddleocr(det_model_dir: str | None = None, rec_model_dir: str | None = None):
    try:
        from paddleocr import PaddleOCR
    except ImportError as err:
        raise ImportError(
            f"the 'paddleocr' OCR backend needs paddleocr and paddlepaddle: {PADDLE_HINT}; "
            "the default backend 'rapidocr' runs offline"
        ) from err
    if det_model_dir or rec_model_dir:
        # Local models given: skip PaddleX's connectivity probe of the model hosters.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    try:
        try:  # PaddleOCR 3.x
            return PaddleOCR(
                lang="en",
                use_doc_orientation_classify=False,
                use_doc_unwarping=False,
                use_textline_orientation=False,
                text_detection_model_dir=det_model_dir,
                text_recognition_model_dir=rec_model_dir,
            )
        except (TypeError, ValueError):  # PaddleOCR 2.x, as the Flow-GRPO reference calls it
            return PaddleOCR(
                use_angle_cls=False,
                lang="en",
                show_log=False,
                det_model_dir=det_model_dir,
                rec_model_dir=rec_model_dir,
            )
    except ImportError:
        raise
    except Exception as err:  # PaddleX raises a bare Exception when no model is on disk or reachable
        raise RuntimeError(
            f"PaddleOCR could not load its detection and recognition models ({err}). Nothing is downloaded at run "
            "time: on a machine with internet run PaddleOCR once (it caches the PP-OCR models in "
            "~/.paddlex/official_models), copy the two model folders here and set reward.kwargs.det_model_dir and "
            "reward.kwargs.rec_model_dir; or use the default backend 'rapidocr', whose models ship in its wheel"
        ) from err


class PaddleOCREngine:
    """PaddleOCR, Flow-GRPO's backend (its models must already be on disk or downloadable).

    Works with PaddleOCR 3.x (``predict`` -> ``rec_texts``/``rec_scores``) and 2.x (``ocr``).
    """

    def __init__(
        self,
        min_side: int = 0,
        margin: int = 0,
        text_score: float = 0.5,
        det_model_dir: str | None = None,
        rec_model_dir: str | None = None,
    ):
        self.min_side, self.margin, self.text_score = int(min_side), int(margin), float(text_score)
        self.engine = _paddleocr(det_model_dir, rec_model_dir)

    def read(self, images: Sequence[np.ndarray]) -> list[str]:
        texts = []
        for image in images:
            bgr = np.ascontiguousarray(prepare(image, max(self.min_side, 1), self.margin)[:, :, ::-1])
            if hasattr(self.engine, "predict"):
                lines = [
                    (t, s)
                    for res in self.engine.predict(bgr) or []
                    for t, s in zip(res["rec_texts"], res["rec_scores"])
                ]
            else:
                result = self.engine.ocr(bgr, cls=False)
                lines = [(line[1][0], line[1][1]) for line in (result[0] if result and result[0] else [])]
            texts.append(" ".join(t for t, s in lines if s >= self.text_score and s > 0))
        return texts


BACKENDS = ("rapidocr", "paddleocr")


def make_engine(backend: str = "rapidocr", use_det: bool = True, min_side: int = 128, **kwargs) -> OCREngine:
    if backend == "rapidocr":
        return RapidOCREngine(use_det=use_det, min_side=min_side, **kwargs)
    if backend == "paddleocr":
        if not use_det:
            raise ValueError("ocr: use_det=False is implemented for the rapidocr backend only")
        return PaddleOCREngine(min_side=min_side, **kwargs)
    raise ValueError(f"ocr: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def read_robustly(engine: OCREngine, images: Sequence[np.ndarray]) -> tuple[list[str | None], int]:
    """Texts per image, ``None`` for an image whose OCR call failed (after a per-image retry)."""
    try:
        return list(engine.read(images)), 0
    except Exception as batch_error:
        if len(images) <= 1:
            raise
        texts: list[str | None] = []
        first_error = batch_error
        for image in images:
            try:
                texts.append(engine.read([image])[0])
            except Exception as err:
                first_error = err
                texts.append(None)
        failures = sum(t is None for t in texts)
        if failures == len(images):
            raise RuntimeError(f"OCR failed on all {len(images)} images: {first_error}") from first_error
        logger.warning("OCR failed on %d of %d images (scored 0): %s", failures, len(images), first_error)
        return texts, failures


@register_reward("ocr", bounds=(0, 1))
def ocr(backend: str = "rapidocr", use_det: bool = True, min_side: int = 128, **engine_kwargs):
    """Flow-GRPO's OCR reward; ``use_det=False`` reads single-line canvases without the detector.

    ``engine_kwargs`` go to the engine (rapidocr: ``margin``, ``interpolation``, ``text_score``,
    ``det_limit_side_len``, ``threads``, ``rec_width``). Info: ``ocr_accuracy`` (mean reward),
    ``ocr_seconds_per_image``, ``ocr_failures``.
    """
    engine = make_engine(backend, use_det=use_det, min_side=min_side, **engine_kwargs)

    def score(images, prompts, metadata):
        targets = [ocr_target(p) for p in prompts]
        start = time.perf_counter()
        texts, failures = read_robustly(engine, list(to_uint8(images)))
        seconds = (time.perf_counter() - start) / max(len(prompts), 1)
        scores = np.array([0.0 if t is None else ocr_score(t, target) for t, target in zip(texts, targets)])
        info = {"ocr_accuracy": float(scores.mean()) if len(scores) else 0.0, "ocr_seconds_per_image": seconds}
        info["ocr_failures"] = failures
        return scores, info

    return score
