# Held-out evaluation with the task's reward (GenEval's protocol where the task says so): the base
# model once per task, every trained run at its end. Samples are kept for the figures' grids.

EVALUATE_COMMAND = (
    "mkdir -p {output.folder} && OMP_NUM_THREADS={threads} superflow evaluate --config {params.preset}"
    " {params.overrides} {params.arguments} --save-images {output.folder} --output {output.result}"
    " --quiet > {log} 2>&1"
)


rule evaluate_base:
    input:
        unpack(lambda wc: {**task_inputs(wc.task), "model": model_inputs(wc.task)}),
    output:
        result=f"{RESULTS}/evaluations/{{task}}/base.json",
        folder=directory(f"{RUNS}/samples/{{task}}/base"),
    params:
        preset=lambda wc: config["tasks"][wc.task]["preset"],
        overrides=lambda wc: task_overrides(wc.task),
        arguments=lambda wc, output: evaluate_arguments(wc.task, output.folder),
    threads: config["train_threads"]
    resources:
        **gpu_resources(),
    log:
        f"{RUNS}/logs/evaluate/{{task}}/base.log",
    benchmark:
        f"{RUNS}/benchmarks/evaluate/{{task}}/base.tsv"
    conda:
        ENV
    shell:
        EVALUATE_COMMAND


rule evaluate_run:
    input:
        unpack(lambda wc: {**task_inputs(wc.task), "model": model_inputs(wc.task)}),
        summary=rules.train.output.summary,
    output:
        result=f"{RESULTS}/evaluations/{{task}}/{{variant}}/seed{{seed}}.json",
        folder=directory(f"{RUNS}/samples/{{task}}/{{variant}}/seed{{seed}}"),
    params:
        preset=lambda wc: config["tasks"][wc.task]["preset"],
        overrides=lambda wc: task_overrides(wc.task)
        + " "
        + overrides(VARIANTS[wc.variant]["set"], [f"seed={wc.seed}"])
        + f" --set model.adapter_path={run_dir(wc.task, wc.variant, wc.seed)}/lora",
        arguments=lambda wc, output: evaluate_arguments(wc.task, output.folder),
    threads: config["train_threads"]
    resources:
        **gpu_resources(),
    log:
        f"{RUNS}/logs/evaluate/{{task}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RUNS}/benchmarks/evaluate/{{task}}/{{variant}}/seed{{seed}}.tsv"
    conda:
        ENV
    shell:
        EVALUATE_COMMAND
