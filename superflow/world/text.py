"""Text-rendering prompts for the mini world's OCR task (the paper's OCR analogue).

Strings of 2 or 3 characters (``TEXT_LENGTHS``) from an alphabet without look-alike pairs (O/0,
I/1, S/5, B/8, Z/2, G/6, D, Q) are drawn dark on light with Pillow's built-in scalable font, never a
system font, so a render looks the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT_ALPHABET = "ACEFHKLMNPRTUVXY3479"
TEXT_BACKGROUND = (245, 245, 245)
TEXT_TEMPLATES = ('a sign that says "{}"', 'the text "{}"', 'a label reading "{}"')
#: Sign lengths. Four characters shrink the font to about 9 px on a 32 px canvas; the default base
#: (not position-aware) read 0.16 of such signs against 0.27 for two. A position-aware MiniFlow
#: spells 2-3 characters almost perfectly and 3-4 with near misses (docs/MINI_WORLD.md, "Signs in order").
TEXT_LENGTHS = (2, 3)


@lru_cache(maxsize=16)
def _font(size: int):
    return ImageFont.load_default(size=size)


def render_text(
    text: str,
    size: int = 32,
    rng: np.random.Generator | None = None,
    font_size: int | None = None,
    position_jitter: float = 1.0,
) -> np.ndarray:
    """uint8 [size, size, 3]: ``text`` centred; with ``rng``, random ink and a random offset of up to
    ``position_jitter`` times the free space around the text.

    The font starts at ``font_size`` px (default 0.45 * size) and shrinks until the text fits the
    width with a margin of 2 px per 32 px of canvas.
    """
    if not text:
        raise ValueError("render_text: text is empty")
    image = Image.new("RGB", (size, size), TEXT_BACKGROUND)
    draw = ImageDraw.Draw(image)
    font_size = int(round(size * 0.45)) if font_size is None else int(font_size)
    while True:  # the largest font whose text keeps a 2 px margin
        font = _font(font_size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 <= size - 4 * size / 32 or font_size <= 6:
            break
        font_size -= 1
    slack_x, slack_y = max(0.0, (size - 4 * size / 32 - (x1 - x0)) / 2), max(0.0, (size - (y1 - y0)) / 4)
    x, y = (size - (x1 - x0)) / 2 - x0, (size - (y1 - y0)) / 2 - y0
    ink = (20, 20, 20)
    if rng is not None:
        x += rng.uniform(-1, 1) * slack_x * position_jitter
        y += rng.uniform(-1, 1) * slack_y * position_jitter
        ink = tuple(int(v) for v in rng.integers(0, 60, size=3))
    draw.text((x, y), text, font=font, fill=ink)
    return np.asarray(image)


def distinct_signs(lengths: Sequence[int]) -> int:
    """How many different strings of the given lengths the alphabet spells."""
    if not lengths or min(lengths) < 1:
        raise ValueError(f"text lengths must be positive integers, got {list(lengths)}")
    return sum(len(TEXT_ALPHABET) ** k for k in set(lengths))


def make_text_prompts(n: int, seed: int = 0, lengths: Sequence[int] = TEXT_LENGTHS) -> list[str]:
    """``n`` distinct prompts, each asking for a string of one of ``lengths`` characters in double quotes."""
    possible = len(TEXT_TEMPLATES) * distinct_signs(lengths)
    if n > possible:
        raise ValueError(f"{n} distinct prompts asked for; signs of lengths {sorted(set(lengths))} give {possible}")
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        length = int(lengths[int(rng.integers(len(lengths)))])
        text = "".join(rng.choice(list(TEXT_ALPHABET), size=length))
        seen.setdefault(TEXT_TEMPLATES[int(rng.integers(len(TEXT_TEMPLATES)))].format(text))
    return list(seen)


def make_text_splits(
    out_dir: str | Path, n_train: int = 2000, n_test: int = 300, seed: int = 0, lengths: Sequence[int] = TEXT_LENGTHS
) -> tuple[list[str], list[str]]:
    """Disjoint train/test text prompts (no target string in both), as ``ocr_train.txt``/``ocr_test.txt``."""
    distinct = distinct_signs(lengths)
    if distinct < 2 * (n_train + n_test):
        raise ValueError(
            f"{distinct} distinct strings of lengths {sorted(set(lengths))} cannot fill disjoint splits of "
            f"{n_train} + {n_test} prompts: allow longer strings"
        )
    prompts = make_text_prompts(2 * (n_train + n_test), seed, lengths)
    test, train, test_targets = [], [], set()
    for p in prompts:
        target = p.split('"')[1]
        if len(test) < n_test:
            test.append(p)
            test_targets.add(target)
        elif target not in test_targets and len(train) < n_train:
            train.append(p)
    if len(train) < n_train:
        raise ValueError(
            f"only {len(train)} training prompts have a target outside the {n_test} test prompts' "
            f"(asked for {n_train}): allow longer strings or fewer test prompts"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ocr_train.txt").write_text("\n".join(train) + "\n")
    (out / "ocr_test.txt").write_text("\n".join(test) + "\n")
    return train, test
