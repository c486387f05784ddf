"""The numbers the README reads off Table 1's study: per-seed finals, gain over seed std, differences to
Flow-GRPO in standard errors, Flow-GRPO's periodic evaluations, SuperFlow's share of full groups and its
preference seeds' training curves. Run from the repository root after `snakemake --cores all
reproduce_table1`: `python results/experiments/table1_reading_2026-12-07/table1_reading.py`."""

import json
import statistics as st

RUNS = "runs/pipeline/mini"
METHODS = ("flowgrpo", "flowspo", "superflow")
METRIC = {"geneval": lambda d: d["strict"]["tag_mean"], "ocr": lambda d: d["mean"], "preference": lambda d: d["mean"]}


def metrics(task, method, seed):
    return [json.loads(line) for line in open(f"{RUNS}/train/{task}/{method}/seed{seed}/metrics.jsonl")]


for task, metric in METRIC.items():
    base = metric(json.load(open(f"results/evaluations/{task}/base.json")))
    finals = {
        m: [metric(json.load(open(f"results/evaluations/{task}/{m}/seed{s}.json"))) for s in range(3)] for m in METHODS
    }
    for m, v in finals.items():
        mean, sd = st.mean(v), st.stdev(v)
        print(
            f"{task} {m}: seeds {[round(x, 4) for x in v]}, mean {mean:.4f}, std {sd:.4f}, "
            f"gain/std {(mean - base) / sd:.1f}"
        )
    grpo = finals["flowgrpo"]
    for m in ("flowspo", "superflow"):
        diff = st.mean(finals[m]) - st.mean(grpo)
        se = (st.variance(finals[m]) / 3 + st.variance(grpo) / 3) ** 0.5
        print(f"  {m} - flowgrpo: {diff:.4f} ({diff / se:.2f} SE)")
    key = "eval_strict_tag_mean" if task == "geneval" else "eval_reward_mean"
    periodic = {}
    for s in range(3):
        for row in metrics(task, "flowgrpo", s):
            if key in row:
                periodic.setdefault(row["epoch"], []).append(row[key])
    print("  flowgrpo periodic, mean over seeds:", {e: round(st.mean(v), 3) for e, v in sorted(periodic.items())})
    sizes = [size for s in range(3) for row in metrics(task, "superflow", s) for size in row["group_sizes"]]
    full = sum(size == 8 for size in sizes) / len(sizes)
    print(f"  superflow groups: {full:.2f} full (8), sizes {min(sizes)}-{max(sizes)}, {len(sizes)} prompts")
for s in range(3):
    rows = metrics("preference", "superflow", s)
    print(f"preference superflow seed{s}: training reward {[round(r['reward_mean'], 2) for r in rows]}")
    print(f"  periodic {[round(r['eval_reward_mean'], 2) for r in rows if 'eval_reward_mean' in r]}")
