"""GenEval's wording rules, shared by the paper-task generator and the mini world."""

from superflow.evaluation.geneval_wording import article, plural, with_article
from superflow.world.spec import COLOURS, SHAPES


def _english_plural(word: str) -> str:
    # The rule the mini world used before it took GenEval's: also "+es" after sh, ch and x.
    return word + "es" if word.endswith(("s", "sh", "ch", "x")) else word + "s"


def test_geneval_rules():
    assert [article(w) for w in ("apple", "umbrella", "dog", "hair drier")] == ["an", "an", "a", "a"]
    assert with_article("orange") == "an orange" and with_article("red") == "a red"
    # GenEval's own oddities, kept so training prompts read like its test prompts.
    assert plural("bus") == "buses" and plural("skis") == "skises" and plural("box") == "boxs"


def test_world_shapes_read_the_same_under_either_plural_rule():
    # The world's prompts did not change when it switched rules: it has no shape the rules differ on.
    assert [plural(s) for s in SHAPES] == [_english_plural(s) for s in SHAPES]
    assert [plural(s) for s in SHAPES] == ["squares", "circles", "triangles", "crosses", "diamonds", "rings"]
    assert all(article(w) == ("an" if w[0] in "aeiou" else "a") for w in (*SHAPES, *COLOURS))
