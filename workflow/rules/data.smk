# Prompt sets: the mini world's seeded splits, or the paper's training prompts regenerated next to
# Flow-GRPO's published test prompts (data/flow_grpo/).


if WORLD:

    rule world:
        output:
            geneval_train=f"{RUNS}/world/geneval/train_metadata.jsonl",
            geneval_test=f"{RUNS}/world/geneval/test_metadata.jsonl",
            ocr_train=f"{RUNS}/world/ocr/ocr_train.txt",
            ocr_test=f"{RUNS}/world/ocr/ocr_test.txt",
        params:
            folder=lambda wc, output: os.path.dirname(os.path.dirname(output.geneval_train)),
            seed=WORLD["seed"],
            n_train=WORLD["n_train"],
            n_test=WORLD["n_test"],
            text_lengths=" ".join(str(n) for n in WORLD.get("text_lengths", [2, 3])),
        log:
            f"{RUNS}/logs/world.log",
        conda:
            ENV
        shell:
            "superflow world --output-dir {params.folder} --n-train {params.n_train} --n-test {params.n_test}"
            " --seed {params.seed} --text-lengths {params.text_lengths} > {log} 2>&1"

else:

    rule geneval_train_prompts:
        output:
            f"{RUNS}/prompts/geneval/train_metadata.jsonl",
        params:
            seed=config.get("prompt_seed", 0),
        log:
            f"{RUNS}/logs/prompts_geneval.log",
        conda:
            ENV
        shell:
            "superflow prompts geneval-train --output {output} --seed {params.seed} > {log} 2>&1"

    rule ocr_train_prompts:
        input:
            test="data/flow_grpo/ocr/test.txt",
        output:
            f"{RUNS}/prompts/ocr/train.txt",
        params:
            seed=config.get("prompt_seed", 0),
        log:
            f"{RUNS}/logs/prompts_ocr.log",
        conda:
            ENV
        shell:
            "superflow prompts ocr-train --test {input.test} --output {output} --seed {params.seed} > {log} 2>&1"
