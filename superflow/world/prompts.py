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

from superflow.world.spec import COLOURS, COUNTS, NUMBER_WORDS, RELATIONS, SHAPES, TAGS, TEMPLATES, plural


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _all_records() -> dict[str, list[dict]]:
    colours = list(COLOURS)
    by_tag: dict[str, list[dict]] = {t: [] for t in TAGS}
    for s in SHAPES:
        by_tag["single_object"].append({"tag": "single_object", "include": [{"class": s, "count": 1}], "prompt": f"{{opening}} {_article(s)} {s}"})
        for c in colours:
            by_tag["colors"].append({"tag": "colors", "include": [{"class": s, "count": 1, "color": c}], "prompt": f"{{opening}} {_article(c)} {c} {s}"})
        for n in COUNTS[1:]:
            by_tag["counting"].append({
                "tag": "counting", "include": [{"class": s, "count": n}], "exclude": [{"class": s, "count": n + 1}],
                "prompt": f"{{opening}} {NUMBER_WORDS[n]} {plural(s)}",
            })
    for a, b in itertools.permutations(SHAPES, 2):
        if a < b:
            by_tag["two_object"].append({"tag": "two_object", "include": [{"class": a, "count": 1}, {"class": b, "count": 1}], "prompt": f"{{opening}} {_article(a)} {a} and {_article(b)} {b}"})
        for rel in RELATIONS:
            by_tag["position"].append({
                "tag": "position", "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [rel, 0]}],
                "prompt": f"{{opening}} {_article(a)} {a} {rel} {_article(b)} {b}",
            })
        for ca, cb in itertools.permutations(colours, 2):
            by_tag["color_attr"].append({
                "tag": "color_attr", "include": [{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}],
                "prompt": f"{{opening}} {_article(ca)} {ca} {a} and {_article(cb)} {cb} {b}",
            })
    return by_tag


def _with_templates(record: dict) -> list[dict]:
    return [{**record, "prompt": record["prompt"].format(opening=opening)} for opening in TEMPLATES]


def make_splits(out_dir: str | Path, n_train: int = 2000, n_test: int = 300, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Disjoint train/test prompts balanced over tags (small tags are split, not oversampled).

    Each tag's distinct requirement sets are shuffled with ``seed``; the test split takes an equal
    share per tag (at most a third of a tag), the train split up to ``n_train`` prompts from the
    rest, round-robin over tags so rare tags are not crowded out. A requirement set comes with every
    prompt opening (``TEMPLATES``) and all of them land in the same split, so no test requirement is
    seen in training. Writes ``train_metadata.jsonl`` and ``test_metadata.jsonl``.
    """
    rng = np.random.default_rng(seed)
    by_tag = _all_records()
    shuffled = {tag: [by_tag[tag][i] for i in rng.permutation(len(by_tag[tag]))] for tag in TAGS}
    per_tag = int(np.ceil(n_test / len(TAGS) / len(TEMPLATES)))
    take = {tag: min(per_tag, len(shuffled[tag]) // 3) for tag in TAGS}
    # small tags cannot fill their share: the largest tags make up the difference
    for tag in sorted(TAGS, key=lambda t: -len(shuffled[t])):
        missing = int(np.ceil(n_test / len(TEMPLATES))) - sum(take.values())
        if missing > 0:
            take[tag] = min(take[tag] + missing, len(shuffled[tag]) // 3)
    test = [r for tag in TAGS for record in shuffled[tag][: take[tag]] for r in _with_templates(record)]
    rest = {tag: [r for record in shuffled[tag][take[tag]:] for r in _with_templates(record)][::-1] for tag in TAGS}
    test = [test[i] for i in rng.permutation(len(test))][:n_test]
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
