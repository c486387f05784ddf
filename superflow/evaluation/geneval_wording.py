"""GenEval's wording rules: the article before a word and the plural of a class name.

Taken from GenEval's ``prompts/create_prompts.py`` (djghosh13/geneval), which chooses "a"/"an" by
the first letter alone and forms plurals by appending "es" after a final "s", else "s" ("bus" ->
"buses", "skis" -> "skises"). Prompts written with these rules read exactly as GenEval's test
prompts do, which the train/test disjointness checks and the mini world's prompts rely on.
"""

from __future__ import annotations


def article(word: str) -> str:
    """GenEval's article: "an" before a lower-case vowel letter (a, e, i, o, u), else "a"."""
    return "an" if word[0] in "aeiou" else "a"


def with_article(word: str) -> str:
    """``word`` preceded by its GenEval article ("an apple", "a dog")."""
    return f"{article(word)} {word}"


def plural(name: str) -> str:
    """GenEval's plural: "+es" after a final "s", else "+s"; never "-y" -> "-ies" or "+es" after "x"."""
    return f"{name}es" if name.endswith("s") else f"{name}s"
