"""The OCR generator's data: the word lists and carriers of ``ocr_words.yaml`` / ``ocr_carriers.yaml``.

Both files ship inside the package and are read once, on first use, through ``importlib.resources``
so an installed wheel finds them too. Lists keep their file order because the generator draws from
them by position with a seeded ``random.Random``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from types import SimpleNamespace

import yaml

WORDS_FILE = "ocr_words.yaml"
CARRIERS_FILE = "ocr_carriers.yaml"


@dataclass(frozen=True)
class Carrier:
    """Something that carries text, with the ways a prompt can attach text to it and place it."""

    nouns: tuple[str, ...]
    relative_verbs: tuple[str, ...]  # after the noun in a noun phrase: 'a sign "that reads" "X"'
    finite_verbs: tuple[str, ...]  # as the sentence's verb: 'a sign "reads" "X"'
    settings: tuple[str, ...]  # prepositional, so they can close the sentence or open it
    texts: tuple[str, ...]  # names of the ocr.py functions that compose the quoted target
    weight: float = 1.0  # how often it is drawn relative to the others


@dataclass(frozen=True)
class Scenes:
    carriers: tuple[Carrier, ...]
    weights: tuple[float, ...]
    openings: tuple[str, ...]
    text_styles: tuple[str, ...]
    closings: tuple[str, ...]


def _strings(value: object, where: str) -> tuple[str, ...]:
    # An unquoted word such as "No" or "On" would load as a boolean; refuse it rather than write it.
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a non-empty list of quoted strings, got {value!r}")
    return tuple(value)


def _load(name: str) -> dict:
    data = yaml.safe_load(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a mapping at the top level")
    return data


@functools.cache
def ocr_words() -> SimpleNamespace:
    """The word lists of ``ocr_words.yaml`` as attributes (``ocr_words().first_names``)."""
    lists = _load(WORDS_FILE)
    return SimpleNamespace(**{key: _strings(value, f"{WORDS_FILE}: {key}") for key, value in lists.items()})


def _carrier(entry: dict, verb_sets: dict, where: str) -> Carrier:
    base = verb_sets[entry["verb_set"]] if "verb_set" in entry else {"relative": [], "finite": []}
    return Carrier(
        nouns=_strings(entry["nouns"], f"{where} nouns"),
        relative_verbs=_strings(base["relative"] + entry.get("relative_verbs", []), f"{where} relative verbs"),
        finite_verbs=_strings(base["finite"] + entry.get("finite_verbs", []), f"{where} finite verbs"),
        settings=_strings(entry["settings"], f"{where} settings"),
        texts=_strings(entry["texts"], f"{where} texts"),
        weight=float(entry.get("weight", 1.0)),
    )


@functools.cache
def ocr_scenes() -> Scenes:
    """The carriers, openings, text styles and closings of ``ocr_carriers.yaml``."""
    data = _load(CARRIERS_FILE)
    carriers = tuple(
        _carrier(entry, data["verb_sets"], f"{CARRIERS_FILE}: carrier {index}")
        for index, entry in enumerate(data["carriers"])
    )
    return Scenes(
        carriers=carriers,
        weights=tuple(c.weight for c in carriers),
        openings=_strings(data["openings"], f"{CARRIERS_FILE}: openings"),
        text_styles=_strings(data["text_styles"], f"{CARRIERS_FILE}: text_styles"),
        closings=_strings(data["closings"], f"{CARRIERS_FILE}: closings"),
    )
