"""Training prompt sets for the GenEval and OCR tasks, regenerated to stand in for Flow-GRPO's.

Flow-GRPO's ``dataset/geneval/train_metadata.jsonl`` and ``dataset/ocr/train.txt`` could not be
obtained (``shared/data/flow_grpo_prompts/SOURCE.md``), so ``superflow prompts`` rebuilds them.

GenEval: the six tags of GenEval's ``prompts/create_prompts.py`` with its facts (80 COCO classes,
10 colours, counts 2 to 4 with an ``exclude`` of count + 1, relations left of / right of / above /
below, no "[colour] person" prompts, "a"/"an" by the first letter, plural "+es" after a final "s"
else "+s"). Each tag's whole prompt space is enumerated by index and sampled without replacement,
so a tag never yields duplicates and a small tag yields all of its prompts. Prompts equal to a test
prompt are removed, where equality ignores case, spacing, the order of the two objects of
"a photo of A and B" (two_object, color_attr: Flow-GRPO's rule, issue yifan123/flow_grpo#4) and,
stricter than Flow-GRPO, the mirror form of a relation ("A left of B" is "B right of A"; GenEval
scores both the same way; the official set itself holds one such pair). Default:
``DEFAULT_PER_TAG`` distinct prompts per tag, fewer where the tag's space is smaller. With GenEval's
official 553 test prompts the spaces left are single_object 0 (the test set holds all 80), counting
160, colors 696, two_object 6122, position 25082 and color_attr 554380, so the default file has
0 / 5000 / 160 / 696 / 5000 / 5000 prompts: train with ``data.balance_tags=true`` or counting gets
about 1% of the draws.

OCR: scene descriptions built from templates (shop fronts, warning signs, posters, book covers,
t-shirts, screens, cakes, ...) with one double-quoted target each, the form of Flow-GRPO's 1018
test prompts, whose OCR reward reads the target as ``prompt.split('"')[1]``. Targets are composed
from word lists that fit the carrier (a shop name on an awning, a room number on a door) and kept
to ``MAX_TARGET_CHARS``. No prompt equals a test prompt and no target equals a test target once
both are lower-cased with spaces removed, the normalisation the OCR reward compares under.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from superflow.evaluation.geneval_protocol import OFFICIAL_METADATA as GENEVAL_OFFICIAL_METADATA
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

DEFAULT_OCR_COUNT = 20000  # the original reportedly held 19,653 (Tencent-Hunyuan/UniRL#407)
MAX_TARGET_CHARS = 29  # the longest target in Flow-GRPO's OCR test set
MIN_TARGET_CHARS = 2
# A handful of carriers with the same text teach nothing new; a cap keeps targets varied.
MAX_PROMPTS_PER_TARGET = 3
_PHOTO = "a photo of "


# ---------------------------------------------------------------------------------- GenEval


def load_geneval_classes(path: str | Path = GENEVAL_OBJECT_NAMES) -> list[str]:
    """GenEval's class names, one per line, in file order."""
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise PromptFileError(f"{path}: duplicate class names")
    return names


def with_article(word: str) -> str:
    """GenEval's article rule: "an" before a vowel letter, else "a"."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def geneval_plural(name: str) -> str:
    """GenEval's plural rule ("bus" -> "buses", "skis" -> "skises"), kept so train matches test wording."""
    return f"{name}es" if name.endswith("s") else f"{name}s"


def canonical_geneval_prompt(prompt: str) -> str:
    """The form under which two GenEval prompts count as the same for train/test disjointness."""
    text = " ".join(prompt.lower().split())
    if not text.startswith(_PHOTO):
        return text
    body = text[len(_PHOTO):]
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
        return {"tag": "single_object", "include": [{"class": name, "count": 1}], "prompt": f"a photo of {with_article(name)}"}

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
            "prompt": f"a photo of {GENEVAL_COUNT_WORDS[count]} {geneval_plural(name)}",
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
    _refuse_overwriting_test(output, test_path)
    records = generate_geneval_train(load_geneval_test_prompts(test_path), per_tag=per_tag, seed=seed)
    _write_lines(output, (json.dumps(r) for r in records))
    counts = Counter(r["tag"] for r in records)
    return {tag: counts.get(tag, 0) for tag in GENEVAL_TAGS}


# ---------------------------------------------------------------------------------- OCR

_FIRST_NAMES = (
    "Rosa", "Milo", "Ada", "Theo", "Nina", "Omar", "Leo", "Ivy", "Hugo", "Maya", "Eli", "Zoe", "Sam", "Ruby",
    "Finn", "Luna", "Otto", "Iris", "Jonas", "Mei", "Priya", "Tariq", "Lena", "Oscar", "Clara", "Felix", "Nora",
    "Ravi", "Elsa", "Kofi", "Ines", "Yuki", "Marco", "Sofia", "Aiden", "Hana", "Pablo", "Greta", "Dev", "June",
    "Amir", "Bea", "Carlos", "Dina", "Emil", "Fatima", "Gus", "Hiro", "Lucia", "Noah",
)
_TOWNS = (
    "Maple Falls", "Riverton", "Oakridge", "Elm Hollow", "Cedar Bay", "Pine Harbor", "Stonebridge", "Willow Creek",
    "Fairhaven", "Redwood", "Silver Lake", "Brookside", "Ashford", "Greenport", "Lakeview", "Millbrook",
    "Northfield", "Eastwick", "Sunnyvale", "Harborview", "Glenwood", "Bayside", "Hillcrest", "Clearwater",
)
_SHOP_ADJECTIVES = (
    "Golden", "Silver", "Rusty", "Blue", "Little", "Happy", "Lucky", "Wild", "Sunny", "Cozy", "Crimson",
    "Velvet", "Copper", "Hidden", "Royal", "Urban", "Rustic", "Maple", "Cedar", "Lazy", "Jolly", "Humble",
    "Midnight", "Morning", "Northern", "Salty", "Sweet", "Green", "Tiny", "Brave", "Quiet", "Clever", "Gentle",
    "Bright", "Honey", "Misty", "Secret", "Old Town", "Corner", "Daily",
)
_SHOP_NOUNS = (
    "Crust", "Bean", "Anchor", "Fox", "Owl", "Lantern", "Oak", "Pine", "Moon", "Sun", "Star", "Leaf", "Spoon",
    "Kettle", "Barrel", "Feather", "Pepper", "Harbor", "Garden", "Willow", "Meadow", "River", "Stone", "Bridge",
    "Whisk", "Teapot", "Acorn", "Badger", "Otter", "Sparrow", "Lemon", "Fig", "Clover", "Thistle", "Compass",
    "Needle", "Hammer", "Wheel", "Bell", "Pebble",
)
_SHOP_KINDS = (
    "Bakery", "Cafe", "Books", "Diner", "Tavern", "Bistro", "Pizza", "Tacos", "Deli", "Florist", "Barbers",
    "Records", "Tailors", "Garage", "Hardware", "Market", "Pub", "Coffee", "Noodles", "Ramen", "Creamery",
    "Salon", "Gym", "Studio", "Inn", "Motel", "Bikes", "Toys", "Pottery", "Antiques", "Grocery", "Laundry",
    "Pharmacy", "Tea House", "Donuts", "Bagels", "Gelato", "Kitchen", "Brewery", "Bookshop",
)
_HAZARDS = (
    "Wet Floor", "Thin Ice", "Falling Rocks", "Loose Gravel", "Low Bridge", "Deep Water", "Strong Current",
    "Sharp Curve", "Hot Surface", "Slippery Steps", "Moving Parts", "Falling Ice", "High Voltage", "Steep Drop",
    "Soft Shoulder", "Loose Tiles", "Open Trench", "Low Ceiling", "Rough Road", "Black Ice", "Wild Boars",
    "Road Work", "Rip Currents", "Sudden Gusts", "Flying Balls", "Falling Branches", "Uneven Ground",
    "Hidden Roots", "Crossing Deer", "Loose Stones",
)
_HAZARD_PREFIXES = ("Caution", "Danger", "Warning", "Beware of", "Watch for", "Mind the")
_FORBIDDEN_ACTIVITIES = (
    "Swimming", "Fishing", "Parking", "Diving", "Skateboarding", "Feeding Ducks", "Drones", "Bicycles",
    "Camping", "Littering", "Campfires", "Loud Music", "Climbing", "Flash Photography", "Running", "Glass Bottles",
    "Jet Skis", "Metal Detectors", "Rollerblades", "Overnight Parking", "Ball Games", "Kites", "Horses",
    "Food or Drinks", "Trespassing",
)
_KEEP_PHRASES = (
    "Gate Closed", "Dogs on Leash", "Door Closed", "Left", "Right", "Clear", "Out", "Off the Dunes", "Aisles Clear",
    "Hands Off", "Off the Rocks", "Lid Shut", "Lights Off", "Back", "Off the Pier", "Paths Clear",
)
_CLOSABLE_PLACES = (
    "Trail", "Beach", "Pool", "Bridge", "Road", "Park", "Pier", "Lane", "Lift", "Stairs", "Tunnel", "Playground",
    "Ski Slope", "Footpath", "Car Park", "Kitchen", "Gallery", "Museum", "Garden", "Ferry",
)
_RESTRICTED_TO = ("Staff", "Members", "Residents", "Buses", "Bikes", "Deliveries", "Employees", "Guests", "Visitors", "Authorized Personnel")
_EVENTS = (
    "Jazz Night", "Food Fair", "Book Fair", "Film Festival", "Art Walk", "Street Market", "Chili Cookoff",
    "Dance Party", "Science Expo", "Kite Festival", "Talent Show", "Charity Run", "Robot Battle", "Car Show",
    "Comedy Night", "Poetry Slam", "Harvest Fair", "Winter Gala", "Spring Fling", "Pie Contest", "Chess Open",
    "Boat Parade", "Lantern Walk", "Bake Sale", "Flea Market", "Blues Festival", "Trivia Night", "Salsa Night",
    "Garden Show", "Craft Fair",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TITLE_ADJECTIVES = (
    "Silent", "Forgotten", "Hidden", "Crimson", "Endless", "Broken", "Golden", "Distant", "Quiet", "Midnight",
    "Hollow", "Secret", "Burning", "Frozen", "Wandering", "Paper", "Glass", "Iron", "Velvet", "Lonely", "Last",
    "Sleeping", "Painted", "Salt", "Winter", "Summer", "Lost", "Little", "Northern", "Emerald",
)
_TITLE_NOUNS = (
    "Harbor", "Lighthouse", "Garden", "Orchard", "Tide", "Mountain", "Compass", "Clockmaker", "Cartographer",
    "Violin", "Archive", "Forest", "Glacier", "Comet", "Orchid", "Mirror", "Bridge", "Kingdom", "Desert",
    "Island", "Storm", "Valley", "River", "Lantern", "Map", "Tower", "Sparrow", "Engine", "Ocean", "Fox",
    "Letter", "Station", "Astronomer", "Beekeeper", "Shadow", "Moon", "Signal", "Voyage", "Labyrinth", "Meadow",
)
_SEASONS = ("Spring", "Summer", "Autumn", "Winter", "April", "June", "October", "December")
_STAY_ADJECTIVES = ("Wild", "Curious", "Humble", "Golden", "Weird", "Kind", "Cool", "Brave", "Hungry", "Salty", "Sunny", "Focused")
_HOBBY_VERBS = ("Run", "Surf", "Bake", "Read", "Travel", "Dance", "Climb", "Ride", "Sing", "Paint", "Skate", "Hike", "Fish", "Garden", "Dream", "Explore")
_FOODS = ("Coffee", "Tacos", "Pizza", "Donuts", "Pancakes", "Noodles", "Cookies", "Bagels", "Dumplings", "Waffles", "Cheese", "Tea", "Pie", "Sushi", "Burritos", "Avocados")
_MORE_OF = (
    "Read More Books", "Drink More Water", "Plant More Trees", "Eat More Plants", "Ride More Bikes", "Take More Naps",
    "Hug More Dogs", "Make More Art", "Drink More Tea", "Climb More Rocks", "Watch More Stars", "Write More Letters",
    "Bake More Bread", "Sing More Songs", "Walk More Miles", "Pet More Cats",
)
_TEAM_NOUNS = ("Night Owl", "Early Bird", "Sunrise", "Pancake", "Book", "Chess", "Hiking", "Surf", "Garden", "Robot", "Kite", "Rowing", "Film", "Cycling")
_ROLES = ("Dad", "Mom", "Teacher", "Coach", "Nurse", "Uncle", "Aunt", "Grandma", "Grandpa", "Boss", "Sister", "Brother", "Neighbor", "Friend")
_PRODUCE = (
    "Apples", "Peaches", "Pears", "Plums", "Cherries", "Tomatoes", "Carrots", "Lemons", "Melons", "Berries",
    "Pumpkins", "Potatoes", "Onions", "Figs", "Mangoes", "Honey", "Corn", "Eggs", "Flowers", "Lemonade",
)
_DISHES = ("Soup", "Chili", "Pasta", "Curry", "Burger", "Pancakes", "Salad", "Pie", "Tacos", "Ramen", "Waffles", "Fish Stew", "Gumbo", "Risotto", "Dumplings", "Paella")
_FREE_THINGS = ("Refills", "Wifi", "Parking", "Samples", "Delivery", "Coffee", "Hugs", "Advice", "Puppies", "Books", "Lemonade", "Entry")
_SCREEN_MESSAGES = (
    "Battery Low", "Update Complete", "Game Over", "Insert Coin", "Loading Please Wait", "Access Granted",
    "Access Denied", "System Online", "Out of Order", "Press Start", "Signal Lost", "Connection Lost",
    "Mission Complete", "Try Again", "Ready Player One", "Upload Complete", "Scan Your Card", "Hello Human",
    "Sync Complete", "Now Playing", "Do Not Disturb", "Charging", "Paused", "New Record",
)
_SHORT_MESSAGES = (
    "Be Kind", "Dream Big", "Wish You Were Here", "See You Soon", "Gone Fishing", "Stay Here", "Look Up",
    "You Are Loved", "Take a Break", "Breathe In", "Follow Me", "Almost There", "Never Give Up", "Keep Going",
    "Enjoy the View", "Make a Wish", "Say Cheese", "Well Done", "Hang in There", "Come Back Soon", "Good Morning",
    "Good Night", "Sweet Dreams", "Hello There", "Best Day Ever", "Slow Down", "Smile More", "Be Brave",
    "Dance Anyway", "Home Again",
)
_SINGLE_WORDS = (
    "Serenity", "Wander", "Bloom", "Courage", "Gather", "Sunshine", "Wonder", "Escape", "Home", "Joy", "Peace",
    "Relax", "Harmony", "Believe", "Adventure", "Explore", "Create", "Imagine", "Balance", "Freedom", "Kindness",
    "Laughter", "Open", "Closed", "Welcome", "Exit", "Bakery", "Hotel", "Library", "Pharmacy", "Museum", "Theater",
    "Arcade", "Station", "Garage", "Taxi", "Police", "Pizza", "Sushi", "Books", "Tickets", "Hello", "Thanks",
    "Cheers", "Bravo", "Victory", "Focus", "Hope", "Onward", "Shelter",
)
_PLACES = ("Paris", "Tokyo", "Lisbon", "Cairo", "Oslo", "Lima", "Seoul", "Dublin", "Vienna", "Mars", "Summer", "Sunshine", "Moon", "Earth", "Venice", "Prague")
_STREETS = ("Maple", "Oak", "Elm", "Pine", "Cedar", "Birch", "Willow", "Harbor", "River", "Hill", "Lake", "Park", "Mill", "Church", "Bridge", "Orchard")
_STREET_KINDS = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Place")
_AIRLINE_CODES = ("SF", "QX", "LM", "TR", "VK", "NB", "ZA", "PW")


def _business_name(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(_SHOP_ADJECTIVES)} {rng.choice(_SHOP_NOUNS)} {rng.choice(_SHOP_KINDS)}"
    if kind == 1:
        return f"The {rng.choice(_SHOP_ADJECTIVES)} {rng.choice(_SHOP_NOUNS)}"
    if kind == 2:
        return f"{rng.choice(_FIRST_NAMES)}'s {rng.choice(_SHOP_KINDS)}"
    if kind == 3:
        first, second = rng.sample(_SHOP_NOUNS, 2)
        return f"{first} and {second}"
    if kind == 4:
        return f"{rng.choice(_SHOP_NOUNS)} {rng.choice(_SHOP_KINDS)}"
    return f"{rng.choice(_TOWNS)} {rng.choice(_SHOP_KINDS)}"


def _shop_note(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return f"Since {rng.randrange(1880, 2021)}"
    if kind == 1:
        return f"Est. {rng.randrange(1880, 2021)}"
    if kind == 2:
        return f"Back in {rng.choice((5, 10, 15, 20, 30, 45))} Minutes"
    if kind == 3:
        return f"Open {rng.randrange(6, 11)} to {rng.randrange(4, 12)}"
    return rng.choice(("Now Open", "Grand Opening", "Closing Sale", "Under New Management", "Now Hiring", "Open Late", "Sold Out", "Fresh Daily"))


def _warning(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return f"{rng.choice(_HAZARD_PREFIXES)} {rng.choice(_HAZARDS)}"
    if kind == 1:
        return f"{rng.choice(_HAZARDS)} Ahead"
    if kind == 2:
        return f"No {rng.choice(_FORBIDDEN_ACTIVITIES)}"
    if kind == 3:
        return f"{rng.choice(_FORBIDDEN_ACTIVITIES)} Prohibited"
    if kind == 4:
        return f"Keep {rng.choice(_KEEP_PHRASES)}"
    if kind == 5:
        return f"{rng.choice(_CLOSABLE_PLACES)} Closed {rng.choice(('Today', 'for Repairs', 'Until Noon', 'on Sundays', ''))}".strip()
    if kind == 6:
        return f"{rng.choice(_RESTRICTED_TO)} Only"
    return f"{rng.choice(_HAZARDS)} Next {rng.randrange(2, 30)} Miles"


def _event(rng: random.Random) -> str:
    kind = rng.randrange(6)
    event = rng.choice(_EVENTS)
    if kind == 0:
        return f"{event} {rng.randrange(2024, 2040)}"
    if kind == 1:
        return f"{rng.choice(_TOWNS)} {event}"
    if kind == 2:
        return f"{event} {rng.choice(_WEEKDAYS)}"
    if kind == 3:
        return f"{event} Tonight"
    if kind == 4:
        nth = rng.randrange(2, 60)
        suffix = "th" if 10 <= nth % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(nth % 10, "th")
        return f"{nth}{suffix} Annual {event}"
    return f"{event} This Weekend"


def _title(rng: random.Random) -> str:
    kind = rng.randrange(8)
    adjective, noun = rng.choice(_TITLE_ADJECTIVES), rng.choice(_TITLE_NOUNS)
    if kind == 0:
        return f"The {adjective} {noun}"
    if kind == 1:
        first, second = rng.sample(_TITLE_NOUNS, 2)
        return f"{first} of the {second}"
    if kind == 2:
        return f"The Last {noun}"
    if kind == 3:
        return f"Beyond the {adjective} {noun}"
    if kind == 4:
        return f"A {noun} in {rng.choice(_SEASONS)}"
    if kind == 5:
        return f"Secrets of the {noun}"
    if kind == 6:
        return f"The {noun}'s {rng.choice(('Daughter', 'Promise', 'Secret', 'Journey', 'Song', 'Return'))}"
    return f"{adjective} {noun}"


def _slogan(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return f"Stay {rng.choice(_STAY_ADJECTIVES)}"
    if kind == 1:
        return f"Born to {rng.choice(_HOBBY_VERBS)}"
    if kind == 2:
        return f"Powered by {rng.choice(_FOODS)}"
    if kind == 3:
        return rng.choice(_MORE_OF)
    if kind == 4:
        return f"Will {rng.choice(_HOBBY_VERBS)} for {rng.choice(_FOODS)}"
    if kind == 5:
        return f"{rng.choice(_TEAM_NOUNS)} Club"
    if kind == 6:
        return f"Eat Sleep {rng.choice(_HOBBY_VERBS)} Repeat"
    if kind == 7:
        return f"{rng.choice(_TOWNS)} {rng.choice(('Rowing', 'Chess', 'Soccer', 'Cycling', 'Hiking', 'Surf'))} Club"
    return f"I Love {rng.choice(_FOODS + _PLACES)}"


def _room_label(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"Room {rng.randrange(100, 1000)}"
    if kind == 1:
        return f"Suite {rng.randrange(100, 1000)}"
    return f"Apartment {rng.randrange(1, 60)}{rng.choice('ABCD')}"


def _travel_label(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"Gate {rng.choice('ABCDEF')}{rng.randrange(1, 41)}"
    if kind == 1:
        return f"Flight {rng.choice(_AIRLINE_CODES)} {rng.randrange(100, 1000)}"
    if kind == 2:
        return f"Platform {rng.randrange(1, 13)}"
    return f"Seat {rng.randrange(1, 40)}{rng.choice('ABCDEF')}"


def _road_label(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"Exit {rng.randrange(1, 121)}"
    if kind == 1:
        return f"Route {rng.randrange(1, 100)}"
    return f"{rng.choice(_TOWNS)} {rng.randrange(2, 60)} Miles"


def _storage_label(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"Batch {rng.randrange(1, 10000):04d}"
    if kind == 1:
        return f"{rng.choice(('Level', 'Bay', 'Lot', 'Dock', 'Locker', 'Aisle', 'Zone'))} {rng.randrange(1, 60)}"
    return f"Unit {rng.randrange(1, 41)}{rng.choice('ABCD')}"


def _address(rng: random.Random) -> str:
    return f"{rng.randrange(1, 1000)} {rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"


def _vehicle_number(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"Route {rng.randrange(1, 100)}"
    if kind == 1:
        return f"Bus {rng.randrange(1, 300)} {rng.choice(_TOWNS)}"
    if kind == 2:
        return f"Truck {rng.randrange(1, 100)}"
    return f"Fleet No. {rng.randrange(1, 1000)}"


def _greeting(rng: random.Random) -> str:
    name = rng.choice(_FIRST_NAMES)
    kind = rng.randrange(8)
    if kind == 0:
        return f"Happy Birthday {name}"
    if kind == 1:
        return f"Welcome Home {name}"
    if kind == 2:
        return f"{rng.choice(('Congrats', 'Thank You', 'Good Luck', 'Get Well Soon', 'Bon Voyage', 'We Miss You'))} {name}"
    if kind == 3:
        return f"Best {rng.choice(_ROLES)} Ever"
    if kind == 4:
        age = rng.randrange(4, 100)
        suffix = "th" if 10 <= age % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(age % 10, "th")
        return f"Happy {age}{suffix} Birthday"
    if kind == 5:
        first, second = rng.sample(_FIRST_NAMES, 2)
        return f"{first} and {second}"
    if kind == 6:
        return f"Happy Retirement {name}"
    return f"Class of {rng.randrange(2024, 2040)}"


def _price(rng: random.Random) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        return f"Fresh {rng.choice(_PRODUCE)} {rng.randrange(1, 10)} Dollars"
    if kind == 1:
        return f"{rng.choice(_PRODUCE)} {rng.randrange(2, 6)} for {rng.randrange(1, 10)} Dollars"
    if kind == 2:
        return f"{rng.choice(_DISHES)} of the Day"
    if kind == 3:
        return f"Sale {rng.choice(range(10, 80, 5))} Percent Off"
    if kind == 4:
        return f"Free {rng.choice(_FREE_THINGS)}"
    if kind == 5:
        return f"{rng.choice(_DISHES)} {rng.randrange(3, 25)} Dollars"
    return f"Fresh {rng.choice(_PRODUCE)}"


def _screen(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice(_SCREEN_MESSAGES)
    if kind == 1:
        return f"Level {rng.randrange(2, 100)} Complete"
    if kind == 2:
        return f"{rng.randrange(2, 100)} New Messages"
    if kind == 3:
        return f"Error {rng.randrange(100, 1000)}"
    if kind == 4:
        return f"High Score {rng.randrange(1000, 100000)}"
    if kind == 5:
        return f"Welcome Back {rng.choice(_FIRST_NAMES)}"
    if kind == 6:
        return f"Player {rng.randrange(1, 5)} Wins"
    return f"Next Train {rng.randrange(1, 30)} Min"


def _single_word(rng: random.Random) -> str:
    return rng.choice(_SINGLE_WORDS)


def _message(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(_SHORT_MESSAGES)
    if kind == 1:
        return rng.choice(_SINGLE_WORDS)
    if kind == 2:
        return f"Hello {rng.choice(_PLACES)}"
    if kind == 3:
        return f"Miss You {rng.choice(_FIRST_NAMES)}"
    return f"{rng.choice(_SEASONS)} {rng.randrange(2024, 2040)}"


@dataclass(frozen=True)
class _Carrier:
    """Something that carries text, with the ways a prompt can attach text to it and place it."""

    nouns: tuple[str, ...]
    relative_verbs: tuple[str, ...]  # after the noun in a noun phrase: 'a sign "that reads" "X"'
    finite_verbs: tuple[str, ...]  # as the sentence's verb: 'a sign "reads" "X"'
    settings: tuple[str, ...]  # prepositional, so they can close the sentence or open it
    texts: tuple[Callable[[random.Random], str], ...]
    weight: float = 1.0  # how often it is drawn relative to the others


_SIGN_VERBS_REL = ("that reads", "that says", "reading", "displaying the words", "with the words", "bearing the text")
_SIGN_VERBS_FIN = ("reads", "says", "displays the words", "bears the words", "announces")

_NUMBER_VERBS_REL = ("marked", "labeled", "showing", "numbered", "stenciled with", "that reads")
_NUMBER_VERBS_FIN = ("is marked", "is labeled", "shows", "reads", "is stenciled with")

_CARRIERS = (
    _Carrier(
        nouns=(
            "a striped storefront awning", "a hand-painted shop window", "a wooden sign hanging above a shop door",
            "a vintage neon sign above a small diner", "a chalkboard sandwich board outside a cafe",
            "a brass plaque beside an office door", "a glowing lightbox sign above a corner shop",
            "a faded mural on the side of an old brick building", "a carved wooden sign at the entrance of a country inn",
            "a gold-leaf lettered glass door of a boutique",
        ),
        relative_verbs=_SIGN_VERBS_REL + ("lettered with", "painted with"),
        finite_verbs=_SIGN_VERBS_FIN + ("is lettered with",),
        settings=(
            "on a quiet cobblestone street at dawn", "in a bustling downtown district at rush hour",
            "on a rainy evening with reflections on the wet pavement", "in a sleepy seaside village",
            "on a snowy winter afternoon", "in a busy market square under a clear blue sky",
            "at the corner of a narrow alley lit by string lights", "in a sunlit small-town main street",
            "beneath a row of blooming cherry trees", "in the warm glow of late afternoon sun",
            "across from a quiet tree-lined park", "in an old harbor town at golden hour",
        ),
        texts=(_business_name, _business_name, _business_name, _shop_note, _single_word),
    ),
    _Carrier(
        nouns=(
            "a red warning sign on a chain-link fence", "a yellow road sign", "a metal sign bolted to a brick wall",
            "a laminated notice taped to a glass door", "a striped construction barrier", "a weathered sign at a trailhead",
            "a bright orange traffic cone with a printed sleeve", "a painted sign nailed to a wooden post",
            "a reflective highway sign", "an enamel sign on a railway fence",
        ),
        relative_verbs=_SIGN_VERBS_REL + ("warning",),
        finite_verbs=_SIGN_VERBS_FIN + ("warns",),
        settings=(
            "beside a winding mountain road", "at the edge of a frozen lake", "in front of an abandoned warehouse",
            "along a foggy coastal path", "at the entrance of a construction site", "on a dusty desert highway",
            "next to a rushing river", "at the edge of a dense pine forest", "in a quiet suburban cul-de-sac",
            "on a rain-soaked city sidewalk", "near a busy harbor dock", "at the foot of a steep hiking trail",
        ),
        texts=(_warning,),
    ),
    _Carrier(
        nouns=(
            "a concert poster pasted on a brick wall", "a large banner stretched across a town square",
            "a billboard beside a highway", "a flyer pinned to a cork board", "a theater marquee",
            "a hand-drawn poster in a bookshop window", "a festival ticket held in someone's hand",
            "a vertical street banner on a lamppost", "an LED sign above a stadium entrance",
            "a screen-printed gig poster",
        ),
        relative_verbs=_SIGN_VERBS_REL + ("advertising", "announcing", "printed with"),
        finite_verbs=_SIGN_VERBS_FIN + ("advertises", "announces"),
        settings=(
            "in a lively city street at night", "on a crowded summer evening", "in a small town decorated with bunting",
            "under a bright afternoon sky", "in a subway station corridor", "at the gates of a fairground",
            "outside a historic concert hall", "in a rainy urban alley full of posters", "on a busy pedestrian bridge",
            "in a park filled with food stalls", "above a crowd of cheering fans", "in a cozy college town",
        ),
        texts=(_event, _event, _event, _greeting),
    ),
    _Carrier(
        nouns=(
            "a hardcover book", "a worn paperback novel", "a vinyl record sleeve", "a retro movie poster",
            "a glossy magazine cover", "a leather-bound journal", "a children's picture book",
            "a video game box", "a cassette tape case", "a cloth-bound book spine",
        ),
        relative_verbs=("titled", "with the title", "called", "bearing the title", "embossed with"),
        finite_verbs=("is titled", "bears the title", "displays the title", "shows the title"),
        settings=(
            "on a cluttered wooden desk beside a cup of tea", "on a library shelf lit by warm lamplight",
            "in the window of a secondhand bookshop", "on a bedside table next to reading glasses",
            "on a park bench in autumn leaves", "in a crate at a flea market", "on a marble table in a quiet cafe",
            "on a window seat overlooking a rainy garden", "on a display stand in a modern bookstore",
            "on a picnic blanket in the sun", "on a shelf among dusty antiques", "on a train table beside a window",
        ),
        texts=(_title,),
    ),
    _Carrier(
        nouns=(
            "a white t-shirt", "a gray hoodie", "a canvas tote bag", "a baseball cap", "a ceramic coffee mug",
            "a laptop sticker", "a bumper sticker on a car", "an embroidered patch on a denim jacket",
            "a skateboard deck", "a knitted winter scarf", "a reusable water bottle", "a sports jersey",
        ),
        relative_verbs=("printed with", "that says", "with the slogan", "emblazoned with", "featuring the words", "that reads"),
        finite_verbs=("is printed with", "says", "reads", "features the words", "shows the slogan"),
        settings=(
            "at a crowded summer music festival", "on a rack in a sunlit boutique", "on a clothesline in a sunny backyard",
            "in a minimalist product shot on a white background", "at a weekend farmers market", "on a skate park ramp",
            "in a college dorm room", "on a mountain trail at sunrise", "at a beach volleyball game",
            "on a wooden table in a craft fair stall", "in a busy city coffee shop", "at a marathon finish line",
        ),
        texts=(_slogan, _slogan, _slogan, _event),
    ),
    # Numbers: one small carrier per kind of numbered thing, so a label fits what bears it.
    _Carrier(
        nouns=("a hotel room door", "an apartment door", "a brass key tag", "a painted wooden door"),
        relative_verbs=_NUMBER_VERBS_REL,
        finite_verbs=_NUMBER_VERBS_FIN,
        settings=(
            "in a dimly lit hallway", "in an old grand hotel", "in a modern apartment building",
            "at the end of a long carpeted corridor", "in a quiet seaside guesthouse", "on a cracked stone staircase",
        ),
        texts=(_room_label,),
        weight=0.25,
    ),
    _Carrier(
        nouns=("an airport departure board", "a boarding pass", "a train platform sign", "an overhead station display"),
        relative_verbs=_NUMBER_VERBS_REL,
        finite_verbs=_NUMBER_VERBS_FIN,
        settings=(
            "in a busy international airport", "at a foggy train station", "in a crowded terminal hall",
            "at a small rural station", "under a high glass roof", "in a bustling transit hub",
        ),
        texts=(_travel_label,),
        weight=0.25,
    ),
    _Carrier(
        nouns=("a green highway sign", "a reflective road sign", "a weathered mile marker", "an overhead gantry sign"),
        relative_verbs=_NUMBER_VERBS_REL,
        finite_verbs=_NUMBER_VERBS_FIN,
        settings=(
            "on a rainy highway at night", "along a desert road under a wide sky", "beside a forest road in autumn",
            "above a busy interstate", "on a quiet country road", "at a mountain pass covered in snow",
        ),
        texts=(_road_label,),
        weight=0.25,
    ),
    _Carrier(
        nouns=(
            "a steel shipping container", "a concrete pillar in a parking garage", "a wooden crate", "a school locker",
            "a warehouse shelf label",
        ),
        relative_verbs=_NUMBER_VERBS_REL,
        finite_verbs=_NUMBER_VERBS_FIN,
        settings=(
            "at a busy container port", "in an empty underground garage", "in a dusty warehouse",
            "in a school corridor", "under flickering fluorescent lights", "in a large distribution center",
        ),
        texts=(_storage_label,),
        weight=0.25,
    ),
    _Carrier(
        nouns=("a dented metal mailbox", "a ceramic house number plaque", "a painted curb", "a brass door plate"),
        relative_verbs=_NUMBER_VERBS_REL,
        finite_verbs=_NUMBER_VERBS_FIN,
        settings=(
            "in front of a suburban house", "beside a garden gate covered in ivy", "on a quiet residential street",
            "next to a blue front door", "at the end of a gravel driveway", "on a row of brick townhouses",
        ),
        texts=(_address,),
        weight=0.2,
    ),
    _Carrier(
        nouns=(
            "a birthday cake", "a greeting card", "a shiny helium balloon", "a paper banner over a doorway",
            "a classroom chalkboard", "a wooden wedding sign", "a sugar cookie decorated with icing",
            "a framed certificate", "a handmade quilt", "a stack of pancakes with syrup lettering",
        ),
        relative_verbs=("that says", "reading", "decorated with the words", "with the message", "inscribed with"),
        finite_verbs=("says", "reads", "carries the message", "is decorated with the words"),
        settings=(
            "at a cheerful surprise party", "in a living room full of streamers", "on a rustic farmhouse table",
            "in a bright kindergarten classroom", "at an outdoor garden wedding", "in a cozy kitchen with morning light",
            "at a small family gathering", "in a hospital room with flowers", "at a retirement party in an office",
            "on a sunny backyard patio", "in a bakery display case", "at a graduation celebration",
        ),
        texts=(_greeting, _greeting, _greeting, _message),
    ),
    _Carrier(
        nouns=(
            "a chalkboard menu", "a paper price tag", "a farmers market stand sign", "a lemonade stand sign",
            "a handwritten cardboard sign", "a supermarket shelf label", "a food truck menu board",
            "a window decal on a shop front", "a wooden crate with a painted label", "a folded tent card on a counter",
        ),
        relative_verbs=_SIGN_VERBS_REL + ("advertising", "listing"),
        finite_verbs=_SIGN_VERBS_FIN + ("advertises",),
        settings=(
            "at a busy farmers market on a Saturday morning", "in a brightly lit supermarket aisle",
            "at a roadside fruit stand in summer", "in a cozy corner cafe", "beside a food truck at lunchtime",
            "in a small-town general store", "on a sidewalk in a sunny suburb", "at a night market glowing with lanterns",
            "in an old-fashioned diner", "at a seaside snack kiosk", "in a bustling street food alley",
            "at a county fair",
        ),
        texts=(_price, _price, _price, _business_name),
    ),
    _Carrier(
        nouns=(
            "a smartphone screen", "a laptop screen", "a smartwatch display", "an arcade machine screen",
            "a digital billboard", "a vending machine display", "a retro computer terminal", "a robot's chest display",
            "a digital alarm clock", "a car dashboard display", "a handheld game console",
        ),
        relative_verbs=("displaying", "showing", "flashing", "with a notification that reads", "glowing with the words"),
        finite_verbs=("displays", "shows", "flashes", "glows with the words"),
        settings=(
            "in a dark bedroom", "on a cluttered office desk", "in a neon-lit arcade", "in a busy train station",
            "on a kitchen counter at night", "in a futuristic laboratory", "in a dim basement workshop",
            "on a coffee table in a living room", "inside a parked car at night", "in a science fiction spaceship cabin",
            "in a crowded shopping mall", "on a rainy city street",
        ),
        texts=(_screen,),
    ),
    _Carrier(
        nouns=(
            "a sandcastle", "letters drawn in the sand", "fluffy clouds", "frost on a window pane",
            "a message in a glass bottle", "a carved pumpkin", "a chalk drawing on a sidewalk", "a skywriting plane",
            "a hedge trimmed into letters", "a pile of autumn leaves arranged into words", "a latte with foam art",
            "glowing fireflies",
        ),
        relative_verbs=("spelling out", "forming the words", "that spells", "shaped into the words", "arranged to read"),
        finite_verbs=("spell out", "form the words", "read"),
        settings=(
            "on a sunny beach at low tide", "in a clear blue summer sky", "on a frosty winter morning",
            "in a magical forest at twilight", "in a quiet garden at dusk", "on a city sidewalk after the rain",
            "in a whimsical storybook landscape", "on a windswept coastline", "under a starry night sky",
            "in a park in early autumn", "on a foggy morning by a lake", "in a field of wildflowers",
        ),
        texts=(_message,),
    ),
    _Carrier(
        nouns=(
            "a delivery van", "a city bus", "a vintage pickup truck", "a yellow taxi", "a food truck",
            "a small fishing boat", "a hot air balloon", "a race car", "a red double-decker bus", "a bicycle cargo box",
        ),
        relative_verbs=("with the words", "painted with", "bearing the name", "with a decal that reads", "marked"),
        finite_verbs=("displays the words", "is painted with", "bears the name", "carries a decal that reads"),
        settings=(
            "driving along a coastal highway", "parked on a sunny street", "at a busy harbor at dawn",
            "in a crowded downtown intersection", "on a country road between fields", "floating over green hills",
            "on a race track under stadium lights", "at a suburban curb in autumn", "in a quiet town square",
            "on a bridge at sunset", "outside a busy train station", "in a rainy city at night",
        ),
        texts=(_business_name, _business_name, _vehicle_number, _slogan),
    ),
    _Carrier(
        nouns=(
            "a flickering neon sign", "a pink neon sign", "a glowing blue neon sign", "a marquee light sign",
            "a backlit acrylic sign", "an illuminated rooftop sign",
        ),
        relative_verbs=("that reads", "glowing with the words", "spelling out", "that flashes"),
        finite_verbs=("reads", "glows with the words", "spells out", "flashes"),
        settings=(
            "in a rain-soaked alley at midnight", "above a crowded bar", "in the window of a late-night noodle shop",
            "on a brick wall in a trendy loft", "over a retro bowling alley", "in a foggy harbor district",
            "above a busy boulevard in the city", "in a dim jazz club", "on top of an old hotel",
        ),
        texts=(_business_name, _message, _shop_note, _slogan),
    ),
)

_CARRIER_WEIGHTS = tuple(c.weight for c in _CARRIERS)
_OPENINGS = (
    "", "", "", "A realistic photograph of ", "A close-up photograph of ", "A high-quality photo of ",
    "A detailed shot of ", "A film photograph of ", "A cinematic wide shot of ", "A candid snapshot of ",
    "A digital illustration of ", "A watercolor painting of ", "A sharp product photo of ", "An artistic photo of ",
)
_TEXT_STYLES = (
    "", "", "", " in bold red letters", " in elegant gold script", " in chunky white capitals",
    " in glowing blue letters", " in hand-painted letters", " in a clean sans-serif font", " in faded block letters",
    " in bright yellow paint", " in playful cartoon lettering", " in crisp black type", " in weathered stencil letters",
    " in neat cursive handwriting", " in retro pixel font",
)
# Neutral about time of day and weather, so no closing contradicts the setting before it.
_CLOSINGS = (
    "The image is sharp and richly detailed, with a shallow depth of field.",
    "The lettering is clearly legible and evenly spaced.",
    "The colors are vibrant and the composition is well balanced.",
    "The composition is centered, with the text in crisp focus.",
    "The background is softly blurred, keeping attention on the words.",
    "Subtle textures of the surfaces are visible up close.",
    "Every detail is rendered realistically, from the lettering to the surroundings.",
    "The photo has a nostalgic, film-like grain and muted colors.",
    "Dramatic shadows and high contrast give the image a cinematic look.",
    "A few curious onlookers pause to read the message.",
    "The overall mood is cheerful and inviting.",
    "The scene feels calm and unhurried.",
    "The words stand out clearly against their surroundings.",
    "Shot with a wide-angle lens, the scene shows plenty of context around the text.",
    "The letters look crisp, with clean edges and consistent spacing.",
    "Soft, even lighting keeps the colors true and the details clear.",
    "The atmosphere is playful, with a touch of whimsy.",
    "Reflections and highlights add depth to the scene.",
    "The framing draws the eye straight to the message.",
    "The style is photorealistic, with natural colors.",
)
_SECOND_CLOSING_PROBABILITY = 0.35
_UPPERCASE_PROBABILITY = 0.03  # the test set has a few all-caps targets ("SLEEP IS FOR WEAK")


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
                raise PromptFileError(f"{path}:{lineno}: OCR prompt has no non-empty double-quoted target text: {text[:80]!r}")
            prompts.append(text)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts found")
    return prompts


def _ocr_target(rng: random.Random, carrier: _Carrier) -> str:
    text = rng.choice(carrier.texts)(rng)
    if rng.random() < _UPPERCASE_PROBABILITY:
        text = text.upper()
    return text


def _ocr_scene(rng: random.Random, carrier: _Carrier, target: str) -> str:
    noun, setting = rng.choice(carrier.nouns), rng.choice(carrier.settings)
    style = rng.choice(_TEXT_STYLES)
    if rng.random() < 0.6:
        opening = rng.choice(_OPENINGS)
        lead = f"{opening}{noun} {rng.choice(carrier.relative_verbs)} \"{target}\"{style}, {setting}."
        lead = lead[0].upper() + lead[1:]
    else:
        lead = f"{setting[0].upper()}{setting[1:]}, {noun} {rng.choice(carrier.finite_verbs)} \"{target}\"{style}."
    closings = [rng.choice(_CLOSINGS)]
    if rng.random() < _SECOND_CLOSING_PROBABILITY:
        closings.append(rng.choice([c for c in _CLOSINGS if c != closings[0]]))
    return " ".join([lead, *closings])


def generate_ocr_train(test_prompts: Iterable[str], count: int = DEFAULT_OCR_COUNT, seed: int = 0) -> list[str]:
    """``count`` distinct text-rendering prompts whose prompts and targets avoid ``test_prompts``'."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    test_prompts = list(test_prompts)
    banned_prompts = set(test_prompts)
    banned_targets = {target_key(t) for t in map(ocr_prompt_target, test_prompts) if t is not None}
    rng = random.Random(f"ocr:{seed}")
    uses: Counter[str] = Counter()
    seen: set[str] = set()
    prompts: list[str] = []
    attempts, max_attempts = 0, 50 * count + 1000
    while len(prompts) < count:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(f"could only make {len(prompts)} distinct OCR prompts of the {count} asked for")
        carrier = rng.choices(_CARRIERS, weights=_CARRIER_WEIGHTS)[0]
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
    _refuse_overwriting_test(output, test)
    prompts = generate_ocr_train(load_ocr_test_prompts(test), count=count, seed=seed)
    _write_lines(output, prompts)
    lengths = [len(ocr_prompt_target(p) or "") for p in prompts]
    return {
        "prompts": len(prompts),
        "distinct_targets": len({target_key(ocr_prompt_target(p) or "") for p in prompts}),
        "target_chars_median": statistics.median(lengths) if lengths else 0,
        "target_chars_max": max(lengths, default=0),
    }


# ---------------------------------------------------------------------------------- files


def _refuse_overwriting_test(output: Path, test: Path) -> None:
    if output.exists() and test.exists() and output.resolve() == test.resolve():
        raise ValueError(f"--output {output} is the test file; write the training set elsewhere")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")
