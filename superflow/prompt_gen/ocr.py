"""OCR training prompts, regenerated to stand in for Flow-GRPO's ``dataset/ocr/train.txt``.

Scene descriptions built from templates (shop fronts, warning signs, posters, book covers,
t-shirts, screens, cakes, ...) with one double-quoted target each, the form of Flow-GRPO's 1018
test prompts, whose OCR reward reads the target as ``prompt.split('"')[1]``. Targets are composed
from word lists that fit the carrier (a shop name on an awning, a room number on a door) and kept
to ``MAX_TARGET_CHARS``. No prompt equals a test prompt and no target equals a test target once
both are lower-cased with spaces removed, the normalisation the OCR reward compares under.

The words live in ``ocr_words.yaml`` and the carriers, openings, text styles and closings in
``ocr_carriers.yaml`` (read by :mod:`.ocr_data`), so they can be edited without touching code; what
composes them (the ``_business_name``-style functions and the sentence frames) stays here.
"""

from __future__ import annotations

import functools
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from superflow.prompt_gen._files import refuse_overwriting_test, write_lines
from superflow.prompt_gen.ocr_data import CARRIERS_FILE, Carrier, Scenes, ocr_scenes, ocr_words
from superflow.prompts import PromptFileError

DEFAULT_OCR_COUNT = 20000  # the original reportedly held 19,653 (Tencent-Hunyuan/UniRL#407)
MAX_TARGET_CHARS = 29  # the longest target in Flow-GRPO's OCR test set
MIN_TARGET_CHARS = 2
# A handful of carriers with the same text teach nothing new; a cap keeps targets varied.
MAX_PROMPTS_PER_TARGET = 3
_SECOND_CLOSING_PROBABILITY = 0.35
_UPPERCASE_PROBABILITY = 0.03  # the test set has a few all-caps targets ("SLEEP IS FOR WEAK")


def _business_name(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(w.shop_adjectives)} {rng.choice(w.shop_nouns)} {rng.choice(w.shop_kinds)}"
    if kind == 1:
        return f"The {rng.choice(w.shop_adjectives)} {rng.choice(w.shop_nouns)}"
    if kind == 2:
        return f"{rng.choice(w.first_names)}'s {rng.choice(w.shop_kinds)}"
    if kind == 3:
        first, second = rng.sample(w.shop_nouns, 2)
        return f"{first} and {second}"
    if kind == 4:
        return f"{rng.choice(w.shop_nouns)} {rng.choice(w.shop_kinds)}"
    return f"{rng.choice(w.towns)} {rng.choice(w.shop_kinds)}"


def _shop_note(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(5)
    if kind == 0:
        return f"Since {rng.randrange(1880, 2021)}"
    if kind == 1:
        return f"Est. {rng.randrange(1880, 2021)}"
    if kind == 2:
        return f"Back in {rng.choice((5, 10, 15, 20, 30, 45))} Minutes"
    if kind == 3:
        return f"Open {rng.randrange(6, 11)} to {rng.randrange(4, 12)}"
    return rng.choice(w.shop_notices)


def _warning(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(8)
    if kind == 0:
        return f"{rng.choice(w.hazard_prefixes)} {rng.choice(w.hazards)}"
    if kind == 1:
        return f"{rng.choice(w.hazards)} Ahead"
    if kind == 2:
        return f"No {rng.choice(w.forbidden_activities)}"
    if kind == 3:
        return f"{rng.choice(w.forbidden_activities)} Prohibited"
    if kind == 4:
        return f"Keep {rng.choice(w.keep_phrases)}"
    if kind == 5:
        return f"{rng.choice(w.closable_places)} Closed {rng.choice(w.closed_when)}".strip()
    if kind == 6:
        return f"{rng.choice(w.restricted_to)} Only"
    return f"{rng.choice(w.hazards)} Next {rng.randrange(2, 30)} Miles"


def _event(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(6)
    event = rng.choice(w.events)
    if kind == 0:
        return f"{event} {rng.randrange(2024, 2040)}"
    if kind == 1:
        return f"{rng.choice(w.towns)} {event}"
    if kind == 2:
        return f"{event} {rng.choice(w.weekdays)}"
    if kind == 3:
        return f"{event} Tonight"
    if kind == 4:
        nth = rng.randrange(2, 60)
        suffix = "th" if 10 <= nth % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(nth % 10, "th")
        return f"{nth}{suffix} Annual {event}"
    return f"{event} This Weekend"


def _title(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(8)
    adjective, noun = rng.choice(w.title_adjectives), rng.choice(w.title_nouns)
    if kind == 0:
        return f"The {adjective} {noun}"
    if kind == 1:
        first, second = rng.sample(w.title_nouns, 2)
        return f"{first} of the {second}"
    if kind == 2:
        return f"The Last {noun}"
    if kind == 3:
        return f"Beyond the {adjective} {noun}"
    if kind == 4:
        return f"A {noun} in {rng.choice(w.seasons)}"
    if kind == 5:
        return f"Secrets of the {noun}"
    if kind == 6:
        return f"The {noun}'s {rng.choice(w.title_possessions)}"
    return f"{adjective} {noun}"


def _slogan(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(9)
    if kind == 0:
        return f"Stay {rng.choice(w.stay_adjectives)}"
    if kind == 1:
        return f"Born to {rng.choice(w.hobby_verbs)}"
    if kind == 2:
        return f"Powered by {rng.choice(w.foods)}"
    if kind == 3:
        return rng.choice(w.more_of)
    if kind == 4:
        return f"Will {rng.choice(w.hobby_verbs)} for {rng.choice(w.foods)}"
    if kind == 5:
        return f"{rng.choice(w.team_nouns)} Club"
    if kind == 6:
        return f"Eat Sleep {rng.choice(w.hobby_verbs)} Repeat"
    if kind == 7:
        return f"{rng.choice(w.towns)} {rng.choice(w.club_activities)} Club"
    return f"I Love {rng.choice(w.foods + w.places)}"


def _room_label(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"Room {rng.randrange(100, 1000)}"
    if kind == 1:
        return f"Suite {rng.randrange(100, 1000)}"
    return f"Apartment {rng.randrange(1, 60)}{rng.choice('ABCD')}"


def _travel_label(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(4)
    if kind == 0:
        return f"Gate {rng.choice('ABCDEF')}{rng.randrange(1, 41)}"
    if kind == 1:
        return f"Flight {rng.choice(w.airline_codes)} {rng.randrange(100, 1000)}"
    if kind == 2:
        return f"Platform {rng.randrange(1, 13)}"
    return f"Seat {rng.randrange(1, 40)}{rng.choice('ABCDEF')}"


def _road_label(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(3)
    if kind == 0:
        return f"Exit {rng.randrange(1, 121)}"
    if kind == 1:
        return f"Route {rng.randrange(1, 100)}"
    return f"{rng.choice(w.towns)} {rng.randrange(2, 60)} Miles"


def _storage_label(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(3)
    if kind == 0:
        return f"Batch {rng.randrange(1, 10000):04d}"
    if kind == 1:
        return f"{rng.choice(w.storage_areas)} {rng.randrange(1, 60)}"
    return f"Unit {rng.randrange(1, 41)}{rng.choice('ABCD')}"


def _address(rng: random.Random) -> str:
    w = ocr_words()
    return f"{rng.randrange(1, 1000)} {rng.choice(w.streets)} {rng.choice(w.street_kinds)}"


def _vehicle_number(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(4)
    if kind == 0:
        return f"Route {rng.randrange(1, 100)}"
    if kind == 1:
        return f"Bus {rng.randrange(1, 300)} {rng.choice(w.towns)}"
    if kind == 2:
        return f"Truck {rng.randrange(1, 100)}"
    return f"Fleet No. {rng.randrange(1, 1000)}"


def _greeting(rng: random.Random) -> str:
    w = ocr_words()
    name = rng.choice(w.first_names)
    kind = rng.randrange(8)
    if kind == 0:
        return f"Happy Birthday {name}"
    if kind == 1:
        return f"Welcome Home {name}"
    if kind == 2:
        return f"{rng.choice(w.wishes)} {name}"
    if kind == 3:
        return f"Best {rng.choice(w.roles)} Ever"
    if kind == 4:
        age = rng.randrange(4, 100)
        suffix = "th" if 10 <= age % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(age % 10, "th")
        return f"Happy {age}{suffix} Birthday"
    if kind == 5:
        first, second = rng.sample(w.first_names, 2)
        return f"{first} and {second}"
    if kind == 6:
        return f"Happy Retirement {name}"
    return f"Class of {rng.randrange(2024, 2040)}"


def _price(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(7)
    if kind == 0:
        return f"Fresh {rng.choice(w.produce)} {rng.randrange(1, 10)} Dollars"
    if kind == 1:
        return f"{rng.choice(w.produce)} {rng.randrange(2, 6)} for {rng.randrange(1, 10)} Dollars"
    if kind == 2:
        return f"{rng.choice(w.dishes)} of the Day"
    if kind == 3:
        return f"Sale {rng.choice(range(10, 80, 5))} Percent Off"
    if kind == 4:
        return f"Free {rng.choice(w.free_things)}"
    if kind == 5:
        return f"{rng.choice(w.dishes)} {rng.randrange(3, 25)} Dollars"
    return f"Fresh {rng.choice(w.produce)}"


def _screen(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice(w.screen_messages)
    if kind == 1:
        return f"Level {rng.randrange(2, 100)} Complete"
    if kind == 2:
        return f"{rng.randrange(2, 100)} New Messages"
    if kind == 3:
        return f"Error {rng.randrange(100, 1000)}"
    if kind == 4:
        return f"High Score {rng.randrange(1000, 100000)}"
    if kind == 5:
        return f"Welcome Back {rng.choice(w.first_names)}"
    if kind == 6:
        return f"Player {rng.randrange(1, 5)} Wins"
    return f"Next Train {rng.randrange(1, 30)} Min"


def _single_word(rng: random.Random) -> str:
    w = ocr_words()
    return rng.choice(w.single_words)


def _message(rng: random.Random) -> str:
    w = ocr_words()
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(w.short_messages)
    if kind == 1:
        return rng.choice(w.single_words)
    if kind == 2:
        return f"Hello {rng.choice(w.places)}"
    if kind == 3:
        return f"Miss You {rng.choice(w.first_names)}"
    return f"{rng.choice(w.seasons)} {rng.randrange(2024, 2040)}"


# The names ``ocr_carriers.yaml`` gives these composers in a carrier's ``texts``.
_TEXTS: dict[str, Callable[[random.Random], str]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _business_name,
        _shop_note,
        _warning,
        _event,
        _title,
        _slogan,
        _room_label,
        _travel_label,
        _road_label,
        _storage_label,
        _address,
        _vehicle_number,
        _greeting,
        _price,
        _screen,
        _single_word,
        _message,
    )
}


@functools.cache
def _scenes() -> Scenes:
    scenes = ocr_scenes()
    # Checked once up front: a misspelt name would otherwise fail only when a draw first hits it.
    unknown = sorted({name for c in scenes.carriers for name in c.texts} - set(_TEXTS))
    if unknown:
        raise ValueError(f"{CARRIERS_FILE}: unknown texts {unknown}; known: {', '.join(_TEXTS)}")
    return scenes


def target_key(text: str) -> str:
    """A target as the OCR reward compares it: lower-cased, spaces removed."""
    return text.replace(" ", "").lower()


def ocr_prompt_target(prompt: str) -> str | None:
    """The OCR reward's target (``prompt.split('"')[1]``), or None when the prompt has none."""
    parts = prompt.split('"')
    if len(parts) < 3 or not parts[1].strip():
        return None
    return parts[1]


def load_ocr_test_prompts(path: str | Path) -> list[str]:
    """OCR test prompts, one per line, each with a double-quoted target; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    prompts: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if ocr_prompt_target(text) is None:
                raise PromptFileError(
                    f"{path}:{lineno}: OCR prompt has no non-empty double-quoted target text: {text[:80]!r}"
                )
            prompts.append(text)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts found")
    return prompts


def _ocr_target(rng: random.Random, carrier: Carrier) -> str:
    text = _TEXTS[rng.choice(carrier.texts)](rng)
    if rng.random() < _UPPERCASE_PROBABILITY:
        text = text.upper()
    return text


def _ocr_scene(rng: random.Random, carrier: Carrier, target: str) -> str:
    scenes = _scenes()
    noun, setting = rng.choice(carrier.nouns), rng.choice(carrier.settings)
    style = rng.choice(scenes.text_styles)
    if rng.random() < 0.6:
        opening = rng.choice(scenes.openings)
        lead = f'{opening}{noun} {rng.choice(carrier.relative_verbs)} "{target}"{style}, {setting}.'
        lead = lead[0].upper() + lead[1:]
    else:
        lead = f'{setting[0].upper()}{setting[1:]}, {noun} {rng.choice(carrier.finite_verbs)} "{target}"{style}.'
    closings = [rng.choice(scenes.closings)]
    if rng.random() < _SECOND_CLOSING_PROBABILITY:
        closings.append(rng.choice([c for c in scenes.closings if c != closings[0]]))
    return " ".join([lead, *closings])


def generate_ocr_train(test_prompts: Iterable[str], count: int = DEFAULT_OCR_COUNT, seed: int = 0) -> list[str]:
    """``count`` distinct text-rendering prompts whose prompts and targets avoid ``test_prompts``'."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    test_prompts = list(test_prompts)
    banned_prompts = set(test_prompts)
    banned_targets = {target_key(t) for t in map(ocr_prompt_target, test_prompts) if t is not None}
    scenes = _scenes()
    rng = random.Random(f"ocr:{seed}")
    uses: Counter[str] = Counter()
    seen: set[str] = set()
    prompts: list[str] = []
    attempts, max_attempts = 0, 50 * count + 1000
    while len(prompts) < count:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(f"could only make {len(prompts)} distinct OCR prompts of the {count} asked for")
        carrier = rng.choices(scenes.carriers, weights=scenes.weights)[0]
        target = _ocr_target(rng, carrier)
        key = target_key(target)
        if not MIN_TARGET_CHARS <= len(target) <= MAX_TARGET_CHARS or key in banned_targets:
            continue
        if uses[key] >= MAX_PROMPTS_PER_TARGET:
            continue
        prompt = _ocr_scene(rng, carrier, target)
        if prompt in seen or prompt in banned_prompts:
            continue
        seen.add(prompt)
        uses[key] += 1
        prompts.append(prompt)
    return prompts


def write_ocr_train(output: str | Path, test: str | Path, count: int = DEFAULT_OCR_COUNT, seed: int = 0) -> dict:
    """Write the OCR training prompts (one per line); returns counts and target length statistics."""
    output, test = Path(output), Path(test)
    refuse_overwriting_test(output, test)
    prompts = generate_ocr_train(load_ocr_test_prompts(test), count=count, seed=seed)
    write_lines(output, prompts)
    lengths = [len(ocr_prompt_target(p) or "") for p in prompts]
    return {
        "prompts": len(prompts),
        "distinct_targets": len({target_key(ocr_prompt_target(p) or "") for p in prompts}),
        "target_chars_median": statistics.median(lengths) if lengths else 0,
        "target_chars_max": max(lengths, default=0),
    }
