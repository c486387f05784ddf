"""GenEval training metadata, regenerated to stand in for Flow-GRPO's ``train_metadata.jsonl``.

The six tags of GenEval's ``prompts/create_prompts.py`` with its facts (80 COCO classes, 10
colours, counts 2 to 4 with an ``exclude`` of count + 1, relations left of / right of / above /
below, no "[colour] person" prompts, "a"/"an" by the first letter, plural "+es" after a final "s"
else "+s": :mod:`superflow.evaluation.geneval_wording`). Each tag's whole prompt space is
enumerated by index and sampled without replacement, so a tag never yields duplicates and a small
tag yields all of its prompts. Prompts equal to a test prompt are removed, where equality ignores
case, spacing, the order of the two objects of "a photo of A and B" (two_object, color_attr:
Flow-GRPO's rule, issue yifan123/flow_grpo#4) and, stricter than Flow-GRPO, the mirror form of a
relation ("A left of B" is "B right of A"; GenEval scores both the same way; the official set
itself holds one such pair). Default: ``DEFAULT_PER_TAG`` distinct prompts per tag, fewer where the
tag's space is smaller. With GenEval's official 553 test prompts the spaces left are single_object
0 (the test set holds all 80), counting 160, colors 696, two_object 6122, position 25082 and
color_attr 554380, so the default file has 0 / 5000 / 160 / 696 / 5000 / 5000 prompts: train with
``data.balance_tags=true`` or counting gets about 1% of the draws.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from superflow.evaluation.geneval_protocol import OFFICIAL_METADATA as GENEVAL_OFFICIAL_METADATA
from superflow.evaluation.geneval_wording import plural, with_article
from superflow.prompt_gen._files import refuse_overwriting_test, write_lines
from superflow.prompts import PromptFileError, load_prompts

GENEVAL_OBJECT_NAMES = GENEVAL_OFFICIAL_METADATA.with_name("object_names.txt")

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
GENEVAL_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
GENEVAL_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
GENEVAL_RELATIONS = ("left of", "right of", "above", "below")
MIRRORED_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
# GenEval never colours people; its generator skips the class for the colour tags.
UNCOLOURED_CLASS = "person"
# 1000 epochs x 48 prompts with balanced tags draw ~10k prompts per tag: 5000 distinct ones keep
# repeats to about two per prompt over a whole paper-length run.
DEFAULT_PER_TAG = 5000
_PHOTO = "a photo of "


def load_geneval_classes(path: str | Path = GENEVAL_OBJECT_NAMES) -> list[str]:
    """GenEval's class names, one per line, in file order."""
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise PromptFileError(f"{path}: duplicate class names")
    return names


def canonical_geneval_prompt(prompt: str) -> str:
    """The form under which two GenEval prompts count as the same for train/test disjointness."""
    text = " ".join(prompt.lower().split())
    if not text.startswith(_PHOTO):
        return text
    body = text[len(_PHOTO) :]
    pair = body.split(" and ")
    if len(pair) == 2:
        return _PHOTO + " and ".join(sorted(pair))
    for relation, mirror in MIRRORED_RELATION.items():
        parts = body.split(f" {relation} ")
        if len(parts) == 2:
            first, second = parts
            return _PHOTO + " ".join(min((first, relation, second), (second, mirror, first)))
    return text


def _distinct_pair(index: int, n: int) -> tuple[int, int]:
    """The index-th ordered pair (a, b) of distinct items out of n."""
    a, rest = divmod(index, n - 1)
    return a, rest if rest < a else rest + 1


@dataclass(frozen=True)
class _TagSpace:
    size: int
    record: Callable[[int], dict]


def _tag_spaces(classes: Sequence[str]) -> dict[str, _TagSpace]:
    """Every prompt a tag can produce, addressable by an index in range(size)."""
    n = len(classes)
    colourable = [c for c in classes if c != UNCOLOURED_CLASS]
    m, n_colours, n_counts = len(colourable), len(GENEVAL_COLORS), len(GENEVAL_COUNT_WORDS)
    counts = sorted(GENEVAL_COUNT_WORDS)

    def single_object(i: int) -> dict:
        name = classes[i]
        return {
            "tag": "single_object",
            "include": [{"class": name, "count": 1}],
            "prompt": f"a photo of {with_article(name)}",
        }

    def two_object(i: int) -> dict:
        a, b = (classes[k] for k in _distinct_pair(i, n))
        return {
            "tag": "two_object",
            "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
            "prompt": f"a photo of {with_article(a)} and {with_article(b)}",
        }

    def counting(i: int) -> dict:
        k, c = divmod(i, n_counts)
        name, count = classes[k], counts[c]
        return {
            "tag": "counting",
            "include": [{"class": name, "count": count}],
            "exclude": [{"class": name, "count": count + 1}],
            "prompt": f"a photo of {GENEVAL_COUNT_WORDS[count]} {plural(name)}",
        }

    def colors(i: int) -> dict:
        k, c = divmod(i, n_colours)
        name, colour = colourable[k], GENEVAL_COLORS[c]
        return {
            "tag": "colors",
            "include": [{"class": name, "count": 1, "color": colour}],
            "prompt": f"a photo of {with_article(colour)} {name}",
        }

    def position(i: int) -> dict:
        pair, r = divmod(i, len(GENEVAL_RELATIONS))
        a, b = (classes[k] for k in _distinct_pair(pair, n))
        relation = GENEVAL_RELATIONS[r]
        # GenEval's layout: the reference object first, the placed one second pointing at include 0.
        return {
            "tag": "position",
            "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [relation, 0]}],
            "prompt": f"a photo of {with_article(a)} {relation} {with_article(b)}",
        }

    def color_attr(i: int) -> dict:
        pair, colour_pair = divmod(i, n_colours * (n_colours - 1))
        a, b = (colourable[k] for k in _distinct_pair(pair, m))
        colour_a, colour_b = (GENEVAL_COLORS[k] for k in _distinct_pair(colour_pair, n_colours))
        return {
            "tag": "color_attr",
            "include": [{"class": a, "count": 1, "color": colour_a}, {"class": b, "count": 1, "color": colour_b}],
            "prompt": f"a photo of {with_article(colour_a)} {a} and {with_article(colour_b)} {b}",
        }

    return {
        "single_object": _TagSpace(n, single_object),
        "two_object": _TagSpace(n * (n - 1), two_object),
        "counting": _TagSpace(n * n_counts, counting),
        "colors": _TagSpace(m * n_colours, colors),
        "position": _TagSpace(n * (n - 1) * len(GENEVAL_RELATIONS), position),
        "color_attr": _TagSpace(m * (m - 1) * n_colours * (n_colours - 1), color_attr),
    }


def load_geneval_test_prompts(path: str | Path = GENEVAL_OFFICIAL_METADATA) -> list[str]:
    """Test prompts from GenEval metadata (.jsonl) or a plain prompt list (.txt)."""
    loaded = load_prompts(path)
    for lineno, prompt in enumerate(loaded.prompts, start=1):
        if prompt.startswith("{"):
            # A JSON file under a .txt name would be read as raw lines and filter nothing.
            raise PromptFileError(f"{path}: prompt {lineno} looks like JSON; name the file .jsonl")
    return loaded.prompts


def generate_geneval_train(
    test_prompts: Iterable[str],
    per_tag: int | dict[str, int] = DEFAULT_PER_TAG,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> list[dict]:
    """GenEval-schema training records disjoint from ``test_prompts``, shuffled across tags.

    ``per_tag``: one count for every tag, or counts by tag (a tag left out gets none).
    """
    classes = list(classes) if classes is not None else load_geneval_classes()
    wanted = per_tag if isinstance(per_tag, dict) else {tag: per_tag for tag in GENEVAL_TAGS}
    unknown = set(wanted) - set(GENEVAL_TAGS)
    if unknown:
        raise ValueError(f"unknown GenEval tags {sorted(unknown)}; known: {', '.join(GENEVAL_TAGS)}")
    if any(n < 0 for n in wanted.values()):
        raise ValueError(f"per-tag counts must be >= 0, got {wanted}")
    banned = {canonical_geneval_prompt(p) for p in test_prompts}
    records: list[dict] = []
    for tag, space in _tag_spaces(classes).items():
        want = wanted.get(tag, 0)
        if want == 0:
            continue
        # A test prompt bans at most two texts of a tag (both orders or both relation forms), so
        # this many draws always reach ``want`` when the space allows it.
        draws = min(space.size, want + 2 * len(banned))
        rng = random.Random(f"geneval:{tag}:{seed}")  # per tag: one tag's count never reshuffles another
        taken = 0
        for index in rng.sample(range(space.size), draws):
            record = space.record(index)
            if canonical_geneval_prompt(record["prompt"]) in banned:
                continue
            records.append(record)
            taken += 1
            if taken == want:
                break
    random.Random(f"geneval:order:{seed}").shuffle(records)
    return records


def write_geneval_train(
    output: str | Path,
    test: str | Path | None = None,
    per_tag: int = DEFAULT_PER_TAG,
    seed: int = 0,
) -> dict[str, int]:
    """Write the training metadata (.jsonl); returns the number of prompts per tag."""
    test_path = Path(test) if test else GENEVAL_OFFICIAL_METADATA
    output = Path(output)
    refuse_overwriting_test(output, test_path)
    records = generate_geneval_train(load_geneval_test_prompts(test_path), per_tag=per_tag, seed=seed)
    write_lines(output, (json.dumps(r) for r in records))
    counts = Counter(r["tag"] for r in records)
    return {tag: counts.get(tag, 0) for tag in GENEVAL_TAGS}
