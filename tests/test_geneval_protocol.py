"""GenEval's output format: results.jsonl lines and the summary its summary_scores.py prints."""

import json

import pytest
import torch

from superflow.cli import main
from superflow.evaluation.geneval_protocol import OFFICIAL_METADATA, format_summary, summary_scores
from superflow.models.mini import MiniFlowConfig, MiniFlowNet, PromptTokenizer, save_miniflow
from superflow.prompts import load_prompts


def record(tag, prompt, correct):
    return {"tag": tag, "prompt": prompt, "correct": correct, "metadata": json.dumps({"tag": tag, "prompt": prompt})}


def test_summary_matches_genevals_definitions():
    records = [record("counting", "two cats", c) for c in (True, False, False, False)]
    records += [record("colors", "a red car", c) for c in (False, False, False, False)]
    records += [record("colors", "a blue car", c) for c in (True, True, False, True)]
    s = summary_scores(records)
    assert (s["total_images"], s["total_prompts"]) == (12, 3)
    assert s["correct_images"] == pytest.approx(4 / 12) and s["correct_prompts"] == pytest.approx(2 / 3)
    assert s["per_tag"] == {"counting": 0.25, "colors": 0.375} and s["overall"] == pytest.approx((0.25 + 0.375) / 2)
    text = format_summary(s)
    assert "colors           = 37.50% (3 / 8)" in text and "Overall score (avg. over tasks): 0.31250" in text
    with pytest.raises(ValueError, match="no GenEval results"):
        summary_scores([])


def test_official_metadata_ships_with_the_package():
    prompts = load_prompts(OFFICIAL_METADATA)
    tags = [m["tag"] for m in prompts.metadata]
    assert len(prompts) == 553 and {t: tags.count(t) for t in set(tags)} == {
        "position": 100,
        "color_attr": 100,
        "two_object": 99,
        "colors": 94,
        "single_object": 80,
        "counting": 80,
    }


def test_evaluate_writes_results_jsonl_and_images(tmp_path, capsys):
    metas = [
        {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"},
        {
            "tag": "colors",
            "include": [{"class": "square", "count": 1, "color": "red"}],
            "prompt": "a photo of a red square",
        },
    ]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(m) + "\n" for m in metas))
    torch.manual_seed(0)
    tok = PromptTokenizer.build([m["prompt"] for m in metas])
    save_miniflow(MiniFlowNet(MiniFlowConfig(channels=(8, 16, 16), vocab=tok.vocab)), tmp_path / "model")
    out = tmp_path / "results.jsonl"
    assert (
        main(
            [
                "evaluate",
                "--config",
                "preset:mini_geneval",
                "--set",
                f"model.path={tmp_path / 'model'}",
                "--set",
                "sample.eval_num_steps=2",
                "--prompts",
                str(prompts),
                "--images-per-prompt",
                "2",
                "--geneval-results",
                str(out),
                "--save-images",
                str(tmp_path / "images"),
                "--quiet",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4 and {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"} <= set(
        lines[0]
    )
    assert (
        lines[1]["filename"].endswith("00000/samples/0001.png")
        and (tmp_path / "images" / "00001" / "samples" / "0000.png").exists()
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["geneval"]["total_images"] == 4 and printed["geneval"]["total_prompts"] == 2
    assert printed["strict"]["mean"] == pytest.approx(printed["geneval"]["correct_images"])
