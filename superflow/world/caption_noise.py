"""Caption noise: training renders that disagree with their caption in the attribute the tag tests.

Real text-to-image models learn from web captions that often do not match their images (the
finding behind recaptioning in DALL-E 3), so they know a concept and follow it only sometimes. A
MiniFlow pretrained on perfectly captioned renders fails differently, by lacking the skill (blurred
shapes, wrong glyphs), which RL cannot teach in a few hundred images. Pretraining with caption
noise makes the base fail the way web-captioned models fail: for a prompt, some of its samples are
right and some are not, which is the within-group variance that RL shifts.

With probability ``caption_noise`` a pretraining pair keeps its caption but its image is rendered
from a perturbed record that changes exactly the attribute the prompt's tag is about:

- single_object: another shape;               - colors: another colour;
- counting: the count off by one (1 to 5);     - two_object: one of the two shapes replaced;
- position: the relation mirrored;             - color_attr: the two colours swapped;
- text signs: one character changed.
"""

from __future__ import annotations

import numpy as np

from superflow.world.spec import COLOURS, SHAPES
from superflow.world.text import TEXT_ALPHABET

MIRROR = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
#: The largest count a perturbed counting render may show (the world's prompts ask for 1 to 4).
MAX_NOISY_COUNT = 5


def _other(options, current, rng: np.random.Generator):
    choices = [o for o in options if o != current]
    return choices[int(rng.integers(len(choices)))]


def disagreeing_scene(metadata: dict, rng: np.random.Generator) -> dict:
    """A copy of a GenEval-style ``metadata`` record that contradicts it in its tag's attribute."""
    tag = metadata["tag"]
    include = [dict(item) for item in metadata["include"]]
    if tag in ("single_object", "colors"):
        key, options = ("class", SHAPES) if tag == "single_object" else ("color", list(COLOURS))
        include[0][key] = _other(options, include[0][key], rng)
    elif tag == "counting":
        n = include[0]["count"]
        include[0]["count"] = _other([c for c in (n - 1, n + 1) if 1 <= c <= MAX_NOISY_COUNT], None, rng)
    elif tag == "two_object":
        which = int(rng.integers(2))
        taken = {item["class"] for item in include}
        include[which]["class"] = _other([s for s in SHAPES if s not in taken], None, rng)
    elif tag == "position":
        relation, other = include[1]["position"]
        include[1]["position"] = [MIRROR[relation], other]
    elif tag == "color_attr":
        include[0]["color"], include[1]["color"] = include[1]["color"], include[0]["color"]
    else:
        raise ValueError(f"caption noise: unknown tag {tag!r} in {metadata}")
    return {**metadata, "include": include, "exclude": []}


SIGN_NOISE_MODES = ("substitute", "swap")


def disagreeing_text(text: str, rng: np.random.Generator, mode: str = "substitute") -> str:
    """``text`` with one character replaced by another of the alphabet (``substitute``), or with two
    neighbouring, different characters exchanged (``swap``: a wrong order of the right characters,
    one coherent alternative as the position tag's mirrored relation is; a sign without two
    different neighbours gets a substitution)."""
    if mode not in SIGN_NOISE_MODES:
        raise ValueError(f"sign noise mode must be one of {SIGN_NOISE_MODES}, got {mode!r}")
    pairs = [i for i in range(len(text) - 1) if text[i] != text[i + 1]]
    if mode == "swap" and pairs:
        i = pairs[int(rng.integers(len(pairs)))]
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    i = int(rng.integers(len(text)))
    return text[:i] + _other(TEXT_ALPHABET, text[i], rng) + text[i + 1 :]
