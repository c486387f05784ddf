"""The mini world's vocabulary: shapes, colours, counts and relations.

Colours are far apart in RGB so that a detector can tell them apart after the blur and noise a
small generative model produces; class names play the role of GenEval's COCO classes.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "cross", "diamond", "ring")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 20),
    "purple": (150, 40, 190),
    "orange": (245, 130, 20),
}
BACKGROUND: tuple[int, int, int] = (245, 245, 245)
COUNTS: tuple[int, ...] = (1, 2, 3, 4)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
#: GenEval's relation words; the position entry of an object is ``[relation, index_of_other]``.
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
#: Prompt openings; a record's prompt uses one of them (the metadata is what is scored).
TEMPLATES: tuple[str, ...] = ("a photo of", "an image of", "a picture of")
TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
