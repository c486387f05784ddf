# One rule trains every method and ablation: the variant's config (methods.*, ablations.* or
# baselines.*) is a list of --set overrides on the task's preset (then its task_set for the task),
# so the algorithm lives in the package, not here.


rule train:
    input:
        unpack(lambda wc: {**task_inputs(wc.task), "model": model_inputs(wc.task)}),
    output:
        summary=f"{RUNS}/train/{{task}}/{{variant}}/seed{{seed}}/summary.json",
    params:
        preset=lambda wc: config["tasks"][wc.task]["preset"],
        folder=lambda wc: run_dir(wc.task, wc.variant, wc.seed),
        overrides=lambda wc: task_overrides(wc.task)
        + " "
        + overrides(
            VARIANTS[wc.variant]["set"],
            (VARIANTS[wc.variant].get("task_set") or {}).get(wc.task, []),
            [f"seed={wc.seed}"],
        ),
    threads: config["train_threads"]
    resources:
        **gpu_resources(),
    log:
        f"{RUNS}/logs/train/{{task}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RUNS}/benchmarks/train/{{task}}/{{variant}}/seed{{seed}}.tsv"
    conda:
        ENV
    shell:
        # --resume: a killed job continues from its last checkpoint when rerun; a changed config
        # (Snakemake reruns the job) starts over instead of resuming someone else's run.
        "OMP_NUM_THREADS={threads} superflow train --config {params.preset} {params.overrides}"
        " --output-dir {params.folder} --resume --restart-on-config-change --quiet > {log} 2>&1"
