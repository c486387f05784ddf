"""Regenerated GenEval and OCR training prompt sets (``superflow prompts``)."""

import json
import statistics

import pytest

from superflow.cli import main
from superflow.evaluation.geneval_wording import plural, with_article
from superflow.prompt_gen.geneval import (
    GENEVAL_COLORS,
    GENEVAL_OFFICIAL_METADATA,
    GENEVAL_RELATIONS,
    GENEVAL_TAGS,
    canonical_geneval_prompt,
    generate_geneval_train,
    load_geneval_classes,
    load_geneval_test_prompts,
    write_geneval_train,
)
from superflow.prompt_gen.ocr import (
    MAX_TARGET_CHARS,
    generate_ocr_train,
    load_ocr_test_prompts,
    ocr_prompt_target,
    target_key,
    write_ocr_train,
)
from superflow.prompts import PromptFileError, load_prompts

CLASSES = load_geneval_classes()
SMALL_CLASSES = ["person", "cat", "dog", "car", "bus"]
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
OCR_TEST_LINES = [
    'A neon sign above a bar that reads "Game Over", glowing in the rain.',
    'A hiker passes a trail sign reading "Stay Wild" at dawn.',
    'A cake with icing that says "Be Kind" on a kitchen table.',
    'An arcade screen flashing "Battery Low" in a dark room.',
]


def _write_jsonl(path, prompts):
    path.write_text("".join(json.dumps({"tag": "two_object", "prompt": p}) + "\n" for p in prompts))
    return path


def _expected_prompt(record: dict) -> str:
    """The prompt GenEval's generator writes for this metadata."""
    include = record["include"]
    if record["tag"] == "counting":
        return f"a photo of {NUMBER_WORDS[include[0]['count']]} {plural(include[0]['class'])}"
    if record["tag"] == "position":
        relation = include[1]["position"][0]
        return f"a photo of {with_article(include[1]['class'])} {relation} {with_article(include[0]['class'])}"
    objects = [
        f"{with_article(i['color'])} {i['class']}" if "color" in i else with_article(i["class"]) for i in include
    ]
    return "a photo of " + " and ".join(objects)


def _check_record(record: dict, classes) -> None:
    tag, include = record["tag"], record["include"]
    assert tag in GENEVAL_TAGS
    assert set(record) <= {"tag", "include", "exclude", "prompt"}
    assert all(i["class"] in classes for i in include)
    expected_len = {"single_object": 1, "counting": 1, "colors": 1}.get(tag, 2)
    assert len(include) == expected_len
    if tag == "counting":
        count = include[0]["count"]
        assert 2 <= count <= 4 and record["exclude"] == [{"class": include[0]["class"], "count": count + 1}]
    else:
        assert "exclude" not in record and all(i["count"] == 1 for i in include)
    if tag in ("colors", "color_attr"):
        assert all(i["color"] in GENEVAL_COLORS and i["class"] != "person" for i in include)
    if tag in ("two_object", "position", "color_attr"):
        assert include[0]["class"] != include[1]["class"]
    if tag == "color_attr":
        assert include[0]["color"] != include[1]["color"]
    if tag == "position":
        assert include[1]["position"][0] in GENEVAL_RELATIONS and include[1]["position"][1] == 0
    assert record["prompt"] == _expected_prompt(record)


def test_geneval_same_seed_same_bytes_other_seed_differs(tmp_path):
    paths = [tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (3, 3, 4)):
        write_geneval_train(path, per_tag=40, seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_geneval_every_line_follows_the_schema(tmp_path):
    path = tmp_path / "train.jsonl"
    counts = write_geneval_train(path, per_tag=300, seed=0)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == sum(counts.values())
    for record in records:
        _check_record(record, CLASSES)
    prompts = [r["prompt"] for r in records]
    assert len(set(prompts)) == len(prompts)
    assert len(load_prompts(path)) == len(records)  # the trainer's loader reads it


def test_geneval_generator_reproduces_the_official_records(tmp_path):
    # Every official prompt is one our generator can make, byte for byte in its JSON form.
    official = [json.loads(line) for line in GENEVAL_OFFICIAL_METADATA.read_text().splitlines()]
    everything = generate_geneval_train(
        [], per_tag={"single_object": 80, "two_object": 6320, "counting": 240, "colors": 790, "position": 25280}
    )
    ours = {json.dumps(r) for r in everything}
    assert sum(r["tag"] == "colors" for r in everything) == 790  # no "[colour] person"
    for record in official:
        if record["tag"] != "color_attr":
            assert json.dumps(record) in ours, record
        _check_record(record, CLASSES)


def test_geneval_order_and_mirror_insensitive_disjointness(tmp_path):
    test_prompts = load_geneval_test_prompts(
        _write_jsonl(
            tmp_path / "test.jsonl",
            [
                "a photo of a cat and a dog",
                "a photo of a red car and a blue bus",
                "a photo of a dog left of a cat",
                "a photo of two cats",
                "a photo of a car",
            ],
        )
    )
    records = generate_geneval_train(test_prompts, per_tag=10**6, classes=SMALL_CLASSES)
    prompts = {r["prompt"] for r in records}
    for banned in (
        "a photo of a cat and a dog",
        "a photo of a dog and a cat",
        "a photo of a red car and a blue bus",
        "a photo of a blue bus and a red car",
        "a photo of a dog left of a cat",
        "a photo of a cat right of a dog",
        "a photo of two cats",
        "a photo of a car",
    ):
        assert banned not in prompts
    # Only those are gone: each tag's whole space is taken otherwise.
    sizes = {tag: sum(r["tag"] == tag for r in records) for tag in GENEVAL_TAGS}
    assert sizes == {
        "single_object": 4,
        "two_object": 18,
        "counting": 14,
        "colors": 40,
        "position": 78,
        "color_attr": 1078,
    }
    assert "a photo of a cat right of a car" in prompts and "a photo of a dog right of a cat" in prompts
    for record in records:
        _check_record(record, SMALL_CLASSES)


def test_canonical_geneval_prompt():
    assert canonical_geneval_prompt("a photo of a cat and a dog") == canonical_geneval_prompt(
        "A photo of  a dog and a cat"
    )
    assert canonical_geneval_prompt("a photo of a cup above a tv") == canonical_geneval_prompt(
        "a photo of a tv below a cup"
    )
    assert canonical_geneval_prompt("a photo of a cup above a tv") != canonical_geneval_prompt(
        "a photo of a tv above a cup"
    )
    assert canonical_geneval_prompt("a photo of two cats") != canonical_geneval_prompt("a photo of three cats")


def test_geneval_tag_coverage_and_official_test_exhausts_single_object(tmp_path):
    small_test = _write_jsonl(tmp_path / "test.jsonl", ["a photo of a cat and a dog"])
    counts = write_geneval_train(tmp_path / "a.jsonl", test=small_test, per_tag=50)
    assert counts == {tag: 50 for tag in GENEVAL_TAGS}
    # GenEval's own test set holds all 80 single-object prompts, and 80 of the 240 counting ones.
    counts = write_geneval_train(tmp_path / "b.jsonl", per_tag=1000)
    assert counts == {
        "single_object": 0,
        "two_object": 1000,
        "counting": 160,
        "colors": 696,
        "position": 1000,
        "color_attr": 1000,
    }
    train = {
        canonical_geneval_prompt(json.loads(line)["prompt"])
        for line in (tmp_path / "b.jsonl").read_text().splitlines()
    }
    assert not train & {canonical_geneval_prompt(p) for p in load_geneval_test_prompts()}


def test_geneval_cli_keeps_both_orders_of_a_test_pair_out(tmp_path, capsys):
    test = _write_jsonl(tmp_path / "test.jsonl", ["a photo of a cat and a dog"])
    out = tmp_path / "train" / "geneval.jsonl"
    assert (
        main(
            ["prompts", "geneval-train", "--output", str(out), "--test", str(test), "--per-tag", "7000", "--seed", "1"]
        )
        == 0
    )
    assert "two_object 6318" in capsys.readouterr().out  # all 80 x 79 ordered pairs but the two banned
    prompts = {json.loads(line)["prompt"] for line in out.read_text().splitlines()}
    assert "a photo of a cat and a dog" not in prompts and "a photo of a dog and a cat" not in prompts
    assert "a photo of a cat and a horse" in prompts and "a photo of a horse and a cat" in prompts


def _ocr_test_file(tmp_path, extra=()):
    path = tmp_path / "ocr_test.txt"
    path.write_text("\n".join([*OCR_TEST_LINES, *extra]) + "\n")
    return path


def test_ocr_deterministic_and_shaped_like_the_test_set(tmp_path):
    test = _ocr_test_file(tmp_path)
    paths = [tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"]
    for path, seed in zip(paths, (0, 0, 1)):
        write_ocr_train(path, test, count=1500, seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()
    prompts = paths[0].read_text().splitlines()
    assert len(prompts) == len(set(prompts)) == 1500
    from superflow.rewards.ocr import ocr_target

    targets = []
    for prompt in prompts:
        assert prompt.count('"') == 2, prompt  # exactly one quoted target
        target = ocr_prompt_target(prompt)
        assert target == ocr_target(prompt) == target.strip()
        targets.append(target)
    lengths = [len(t) for t in targets]
    assert 14 <= statistics.median(lengths) <= 20 and max(lengths) <= MAX_TARGET_CHARS and min(lengths) >= 2
    assert 150 <= statistics.median(len(p) for p in prompts) <= 260
    assert len(set(map(target_key, targets))) > 0.6 * len(targets)


def test_ocr_avoids_test_prompts_and_targets(tmp_path):
    free = generate_ocr_train([], count=3000, seed=0)
    free_targets = {target_key(ocr_prompt_target(p)) for p in free}
    test_keys = {target_key(ocr_prompt_target(p)) for p in OCR_TEST_LINES}
    assert free_targets & test_keys  # the word lists do make these targets...
    # The comparison is the reward's: case and spaces do not make a target new.
    respelled = ocr_prompt_target(free[1]).upper().replace(" ", "  ")
    test = _ocr_test_file(tmp_path, extra=[free[0], f'A chalkboard that says "{respelled}" in a cafe.'])
    train = generate_ocr_train(load_ocr_test_prompts(test), count=3000, seed=0)
    assert free[0] not in train
    banned = test_keys | {target_key(ocr_prompt_target(free[0])), target_key(respelled)}
    assert not {target_key(ocr_prompt_target(p)) for p in train} & banned  # ...and leave them out when tested


def test_ocr_cli_writes_the_file(tmp_path, capsys):
    out = tmp_path / "ocr" / "train.txt"
    test = _ocr_test_file(tmp_path)
    assert (
        main(["prompts", "ocr-train", "--output", str(out), "--test", str(test), "--count", "200", "--seed", "5"]) == 0
    )
    assert "wrote 200 prompts" in capsys.readouterr().out
    assert out.read_text().splitlines() == generate_ocr_train(OCR_TEST_LINES, count=200, seed=5)


@pytest.mark.parametrize(
    "lines,lineno,message",
    [
        (
            ['{"prompt": "a photo of a cat"}', '{"prompt": "a photo of', '{"prompt": "a photo of a dog"}'],
            2,
            "invalid JSON",
        ),
        (['{"prompt": "a photo of a cat"}', "", '{"tag": "counting"}'], 3, "'prompt'"),
    ],
)
def test_malformed_geneval_test_file_names_file_and_line(tmp_path, capsys, lines, lineno, message):
    test = tmp_path / "bad.jsonl"
    test.write_text("\n".join(lines) + "\n")
    with pytest.raises(PromptFileError, match=message) as err:
        write_geneval_train(tmp_path / "train.jsonl", test=test, per_tag=5)
    assert f"{test}:{lineno}:" in str(err.value)
    assert main(["prompts", "geneval-train", "--output", str(tmp_path / "t.jsonl"), "--test", str(test)]) == 2
    assert f"{test}:{lineno}:" in capsys.readouterr().err


def test_geneval_test_file_of_json_under_a_txt_name_is_refused(tmp_path):
    test = tmp_path / "test.txt"
    test.write_text('{"prompt": "a photo of a cat"}\n')
    with pytest.raises(PromptFileError, match="looks like JSON"):
        load_geneval_test_prompts(test)


def test_malformed_ocr_test_file_names_file_and_line(tmp_path, capsys):
    test = tmp_path / "ocr_test.txt"
    test.write_text(f"{OCR_TEST_LINES[0]}\n\nA sign that reads nothing quoted.\n")
    with pytest.raises(PromptFileError, match="double-quoted") as err:
        load_ocr_test_prompts(test)
    assert f"{test}:3:" in str(err.value)
    assert (
        main(["prompts", "ocr-train", "--output", str(tmp_path / "t.txt"), "--test", str(test), "--count", "5"]) == 2
    )
    assert f"{test}:3:" in capsys.readouterr().err
    test.write_text('A sign that reads "  " on a wall.\n')
    with pytest.raises(PromptFileError, match=f"{test}:1:"):
        load_ocr_test_prompts(test)


def test_refuses_to_overwrite_the_test_file_and_bad_counts(tmp_path):
    test = _ocr_test_file(tmp_path)
    with pytest.raises(ValueError, match="is the test file"):
        write_ocr_train(test, test, count=5)
    assert test.read_text().splitlines() == OCR_TEST_LINES
    with pytest.raises(ValueError, match=">= 0"):
        generate_geneval_train([], per_tag=-1)
    with pytest.raises(ValueError, match="unknown GenEval tags"):
        generate_geneval_train([], per_tag={"colours": 3})
