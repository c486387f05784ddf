"""GenEval's scoring rules, independent of the detector that produced the detections.

The rules and thresholds are those of the official GenEval evaluation (``evaluation/
evaluate_images.py`` and ``evaluation/summary_scores.py`` of djghosh13/geneval):

- detections of a class are kept above a confidence threshold (0.3; 0.9 for the ``counting`` tag),
  most confident first, at most 16 per class; overlap suppression is off (max overlap 1.0);
- ``include`` clauses are ANDed: a clause needs at least ``count`` detections of its class; only
  the ``count`` most confident are then checked for colour (at least ``count`` of them must have
  the colour) and position;
- relative position of A to B: offset of the box centres, shrunk on each axis by
  0.1 x (size of A + size of B) and normalised by the offset's length; "left of" if dx < -0.5,
  "right of" if dx > 0.5, "above" if dy < -0.5, "below" if dy > 0.5 (image y grows downwards);
  every pair of (checked object, target object) must satisfy the relation, and a clause whose
  target clause failed fails;
- ``exclude`` clauses are ORed: detecting ``count`` or more of the class fails the image;
- per-tag accuracy is the mean correctness of the tag's images; the overall score is the mean of
  the per-tag accuracies.

The *partial* score is Flow-GRPO's training reward as ALGORITHM.md section 4 states it: the mean
over requirements, where each include clause contributes a count requirement scored
``max(0, 1 - |n_required - n_found| / n_required)`` plus, when present, a colour requirement (the
fraction of the ``count`` checked objects with the right colour) and a position requirement (the
fraction of checked pairs in the right relation); each exclude clause is a requirement met or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

CONFIDENCE_THRESHOLD = 0.3
COUNTING_CONFIDENCE_THRESHOLD = 0.9
MAX_OBJECTS_PER_CLASS = 16
POSITION_THRESHOLD = 0.1


@dataclass
class Detection:
    """One detected object: class name, box (x0, y0, x1, y1), confidence, and its colour.

    ``color`` is a decided colour name, or ``None`` when ``color_scores`` (colour name -> score,
    e.g. CLIP zero-shot logits on the crop) should decide it.
    """

    cls: str
    box: tuple[float, float, float, float]
    score: float = 1.0
    color: str | None = None
    color_scores: dict[str, float] | None = None

    @property
    def decided_color(self) -> str | None:
        if self.color is not None:
            return self.color
        if self.color_scores:
            return max(self.color_scores, key=self.color_scores.get)
        return None


@dataclass
class GenEvalResult:
    correct: bool
    partial: float
    reason: str
    tag: str = ""
    details: dict = field(default_factory=dict)


def relative_position(
    box_a: Sequence[float], box_b: Sequence[float], threshold: float = POSITION_THRESHOLD
) -> set[str]:
    """Relations of A to B under GenEval's rule (empty when the objects overlap too much to tell)."""
    a, b = np.asarray(box_a[:4], dtype=float).reshape(2, 2), np.asarray(box_b[:4], dtype=float).reshape(2, 2)
    offset = a.mean(axis=0) - b.mean(axis=0)
    dims = np.abs(a[1] - a[0]) + np.abs(b[1] - b[0])
    revised = np.maximum(np.abs(offset) - threshold * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def keep_detections(detections: Iterable[Detection], tag: str) -> dict[str, list[Detection]]:
    """Per class, the confident detections, most confident first (GenEval's filtering)."""
    threshold = COUNTING_CONFIDENCE_THRESHOLD if tag == "counting" else CONFIDENCE_THRESHOLD
    by_class: dict[str, list[Detection]] = {}
    for det in sorted(detections, key=lambda d: -d.score):
        if det.score > threshold and len(by_class.get(det.cls, [])) < MAX_OBJECTS_PER_CLASS:
            by_class.setdefault(det.cls, []).append(det)
    return by_class


def score_detections(detections: Iterable[Detection], metadata: dict) -> GenEvalResult:
    """Strict correctness, partial score and the reason, for one image and its GenEval record."""
    tag = metadata.get("tag", "")
    objects = keep_detections(detections, tag)
    correct, reasons, partial = True, [], []
    matched: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        cls, count = req["class"], int(req.get("count", 1))
        everything = objects.get(cls, [])
        found = everything[:count]
        partial.append(max(0.0, 1 - abs(count - len(everything)) / count))
        ok = True
        if len(found) < count:
            correct = ok = False
            reasons.append(f"expected {cls}>={count}, found {len(found)}")
            if "color" in req:
                partial.append(0.0)
            if "position" in req:
                partial.append(0.0)
        else:
            if "color" in req:
                colors = [d.decided_color for d in found]
                hits = colors.count(req["color"])
                partial.append(hits / count)
                if hits < count:
                    correct = ok = False
                    summary = ", ".join(f"{colors.count(c)} {c}" for c in dict.fromkeys(colors))
                    reasons.append(f"expected {req['color']} {cls}>={count}, found {summary}")
            if "position" in req:
                relation, target = req["position"]
                targets = matched[target] if target < len(matched) else None
                if not ok:
                    partial.append(0.0)
                elif targets is None:
                    correct = ok = False
                    partial.append(0.0)
                    reasons.append(f"no target for {cls} to be {relation}")
                else:
                    pairs = [(d, t) for d in found for t in targets]
                    good = [relation in relative_position(d.box, t.box) for d, t in pairs]
                    partial.append(sum(good) / len(pairs))
                    if not all(good):
                        correct = ok = False
                        bad = next(relative_position(d.box, t.box) for (d, t), g in zip(pairs, good) if not g)
                        reasons.append(
                            f"expected {cls} {relation} target, found {' and '.join(sorted(bad)) or 'no'} relation"
                        )
        matched.append(found if ok else None)
    for req in metadata.get("exclude", []):
        n = len(objects.get(req["class"], []))
        if n >= req["count"]:
            correct = False
            partial.append(0.0)
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
        else:
            partial.append(1.0)
    return GenEvalResult(
        correct=correct, partial=float(np.mean(partial)) if partial else 1.0, reason="\n".join(reasons), tag=tag
    )


def summarize(results: Sequence[GenEvalResult]) -> dict:
    """GenEval's summary: per-tag accuracy (tags in first-seen order) and their mean as ``overall``."""
    tags: dict[str, list[bool]] = {}
    for r in results:
        tags.setdefault(r.tag, []).append(r.correct)
    per_tag = {t: float(np.mean(v)) for t, v in tags.items()}
    return {
        "per_tag": per_tag,
        "overall": float(np.mean(list(per_tag.values()))) if per_tag else float("nan"),
        "images": len(results),
        "correct_images": float(np.mean([r.correct for r in results])) if results else float("nan"),
        "partial": float(np.mean([r.partial for r in results])) if results else float("nan"),
    }
