"""Seeded GenEval-style prompts for the mini world, in GenEval's own metadata schema.

Six tags as in GenEval: single_object, two_object, counting, colors, position, color_attr. Records
carry ``tag``, ``include`` (``class``, ``count``, optional ``color`` and ``position``) and, for
counting, ``exclude`` with count + 1, exactly as GenEval's metadata does.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from superflow.evaluation.geneval_wording import article, plural
from superflow.world.spec import COLOURS, COUNTS, NUMBER_WORDS, RELATIONS, SHAPES, TAGS, TEMPLATES


def _all_records() -> dict[str, list[dict]]:
    colours = list(COLOURS)
    by_tag: dict[str, list[dict]] = {t: [] for t in TAGS}
    for s in SHAPES:
        by_tag["single_object"].append(
            {"tag": "single_object", "include": [{"class": s, "count": 1}], "prompt": f"{{opening}} {article(s)} {s}"}
        )
        for c in colours:
            by_tag["colors"].append(
                {
                    "tag": "colors",
                    "include": [{"class": s, "count": 1, "color": c}],
                    "prompt": f"{{opening}} {article(c)} {c} {s}",
                }
            )
        for n in COUNTS[1:]:
            by_tag["counting"].append(
                {
                    "tag": "counting",
                    "include": [{"class": s, "count": n}],
                    "exclude": [{"class": s, "count": n + 1}],
                    "prompt": f"{{opening}} {NUMBER_WORDS[n]} {plural(s)}",
                }
            )
    for a, b in itertools.permutations(SHAPES, 2):
        if a < b:
            by_tag["two_object"].append(
                {
                    "tag": "two_object",
                    "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
                    "prompt": f"{{opening}} {article(a)} {a} and {article(b)} {b}",
                }
            )
        for rel in RELATIONS:
            by_tag["position"].append(
                {
                    "tag": "position",
                    "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [rel, 0]}],
                    "prompt": f"{{opening}} {article(a)} {a} {rel} {article(b)} {b}",
                }
            )
        for ca, cb in itertools.permutations(colours, 2):
            by_tag["color_attr"].append(
                {
                    "tag": "color_attr",
                    "include": [{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}],
                    "prompt": f"{{opening}} {article(ca)} {ca} {a} and {article(cb)} {cb} {b}",
                }
            )
    return by_tag


def _with_templates(record: dict) -> list[dict]:
    return [{**record, "prompt": record["prompt"].format(opening=opening)} for opening in TEMPLATES]


HELD_OUT_MIN_SETS = 60


def make_splits(
    out_dir: str | Path, n_train: int = 2000, n_test: int = 300, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Seeded train/test prompts, the test split balanced over tags as GenEval's is.

    Tags with at least ``HELD_OUT_MIN_SETS`` distinct requirement sets (position, colour
    attribution) are split by requirement set: a test requirement is never trained on, so these tags
    measure composition. The small tags (6 single objects, 15 pairs, 18 counts, 36 coloured shapes)
    have too few sets to hold any out without leaving a shape or colour unseen, so, as Flow-GRPO's
    GenEval training prompts share GenEval's object classes, their test prompts are drawn from all
    sets and the train split holds all of them too. Each tag gets ``n_test / 6`` test prompts where
    it has that many; the largest held-out tags make up the rest. The train split takes up to
    ``n_train`` prompts round-robin over tags so rare tags are not crowded out. Writes
    ``train_metadata.jsonl`` and ``test_metadata.jsonl``.
    """
    rng = np.random.default_rng(seed)
    by_tag = _all_records()
    shuffled = {tag: [by_tag[tag][i] for i in rng.permutation(len(by_tag[tag]))] for tag in TAGS}
    held_out = {tag for tag in TAGS if len(shuffled[tag]) >= HELD_OUT_MIN_SETS}
    if not held_out:
        raise ValueError(f"no tag has {HELD_OUT_MIN_SETS} requirement sets to hold out")
    per_tag = n_test // len(TAGS)
    test_by_tag: dict[str, list[dict]] = {}
    used = dict.fromkeys(held_out, 0)  # requirement sets of a held-out tag given to the test split
    for tag in TAGS:
        if tag in held_out:
            used[tag] = int(np.ceil(per_tag / len(TEMPLATES)))
            test_by_tag[tag] = [r for record in shuffled[tag][: used[tag]] for r in _with_templates(record)][:per_tag]
        else:
            prompts = [r for record in shuffled[tag] for r in _with_templates(record)]
            test_by_tag[tag] = [prompts[i] for i in rng.permutation(len(prompts))[:per_tag]]
    missing = n_test - sum(len(v) for v in test_by_tag.values())
    for tag in sorted(held_out, key=lambda t: -len(shuffled[t])):  # fill up from the largest held-out tags
        extra_sets = int(np.ceil(max(missing, 0) / len(TEMPLATES)))
        added = [r for record in shuffled[tag][used[tag] : used[tag] + extra_sets] for r in _with_templates(record)][
            :missing
        ]
        used[tag] += extra_sets
        test_by_tag[tag] += added
        missing -= len(added)
    test = [r for tag in TAGS for r in test_by_tag[tag]]
    test = [test[i] for i in rng.permutation(len(test))]
    rest = {
        tag: [r for record in shuffled[tag][used.get(tag, 0) :] for r in _with_templates(record)][::-1] for tag in TAGS
    }
    train: list[dict] = []
    while len(train) < n_train and any(rest.values()):
        for tag in TAGS:
            if rest[tag] and len(train) < n_train:
                train.append(rest[tag].pop())
    train = [train[i] for i in rng.permutation(len(train))]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("train_metadata.jsonl", train), ("test_metadata.jsonl", test)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return train, test
