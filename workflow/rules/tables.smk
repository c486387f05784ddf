# Table 1 (final held-out metric, mean and std over seeds), the efficiency table (cost to reach
# Flow-GRPO's final metric) and the ablation table, from explicit run files.
#
# Each table also keeps a copy under runs/ (study_copy). The committed results/ are present in a
# fresh clone while runs/ is empty; without an output there, Snakemake would see every table up to
# date and report nothing to do instead of running the study.

REPORT_COMMAND = (
    "superflow report {params.kind} {params.arguments} --csv {output.csv} --md {output.md} > {log} 2>&1"
    " && cp {output.csv} {output.study_copy}"
)


rule table1:
    input:
        unpack(lambda wc: run_files(TABLE1_VARIANTS)),
        base=expand(f"{RESULTS}/evaluations/{{task}}/base.json", task=TASKS),
    output:
        csv=f"{RESULTS}/table1.csv",
        study_copy=f"{RUNS}/tables/table1.csv",
        md=report(f"{RESULTS}/table1.md", caption="../report/table1.rst", category="Tables"),
    params:
        kind="table1",
        arguments=report_arguments(TABLE1_VARIANTS),
    log:
        f"{RUNS}/logs/table1.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND


rule efficiency:
    input:
        unpack(lambda wc: run_files(METHODS)),
    output:
        csv=f"{RESULTS}/efficiency.csv",
        study_copy=f"{RUNS}/tables/efficiency.csv",
        md=report(f"{RESULTS}/efficiency.md", caption="../report/efficiency.rst", category="Tables"),
    params:
        kind="efficiency",
        arguments=report_arguments(METHODS, with_base=False),
    log:
        f"{RUNS}/logs/efficiency.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND


rule ablation_table:
    input:
        unpack(lambda wc: run_files(["superflow", *ABLATIONS])),
    output:
        csv=f"{RESULTS}/ablations.csv",
        study_copy=f"{RUNS}/tables/ablations.csv",
        md=report(f"{RESULTS}/ablations.md", caption="../report/ablations.rst", category="Tables"),
    params:
        kind="ablations",
        arguments=report_arguments(["superflow", *ABLATIONS], with_base=False),
    log:
        f"{RUNS}/logs/ablations.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND


# The newer baselines (BASELINE_VARIANTS, common.smk) next to Flow-GRPO and SuperFlow, on Table 1's
# tasks and seeds; the efficiency table's ratios are to Flow-GRPO, and its images and seconds axes
# are the fair ones (methods may take different numbers of optimiser steps per image).

rule baseline_table:
    input:
        unpack(lambda wc: run_files(BASELINE_VARIANTS)),
        base=expand(f"{RESULTS}/evaluations/{{task}}/base.json", task=TASKS),
    output:
        csv=f"{RESULTS}/baselines.csv",
        study_copy=f"{RUNS}/tables/baselines.csv",
        md=f"{RESULTS}/baselines.md",
    params:
        kind="table1",
        arguments=report_arguments(BASELINE_VARIANTS),
    log:
        f"{RUNS}/logs/baselines.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND


rule baseline_efficiency:
    input:
        unpack(lambda wc: run_files(BASELINE_VARIANTS)),
    output:
        csv=f"{RESULTS}/baselines_efficiency.csv",
        study_copy=f"{RUNS}/tables/baselines_efficiency.csv",
        md=f"{RESULTS}/baselines_efficiency.md",
    params:
        kind="efficiency",
        arguments=report_arguments(BASELINE_VARIANTS, with_base=False),
    log:
        f"{RUNS}/logs/baselines_efficiency.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND


rule baselines:
    input:
        rules.baseline_table.output,
        rules.baseline_efficiency.output,
        BASELINE_FIGURES_DONE,  # figures.smk draws them


rule reproduce_table1:
    input:
        rules.table1.output,
        rules.efficiency.output,
        rules.baselines.input if WITH_BASELINES else [],


rule ablations:
    input:
        rules.ablation_table.output,


rule task_table:
    # One task on its own (base and every method): the quickest way to try a new reward.
    input:
        base=f"{RESULTS}/evaluations/{{task}}/base.json",
        evaluations=lambda wc: [f"{RESULTS}/evaluations/{wc.task}/{m}/seed{s}.json" for m in METHODS for s in SEEDS],
    output:
        study_copy=f"{RUNS}/tables/tasks/{{task}}.csv",
        csv=f"{RESULTS}/tasks/{{task}}.csv",
        md=f"{RESULTS}/tasks/{{task}}.md",
    params:
        kind="table1",
        arguments=lambda wc: task_report_arguments(wc.task),
    log:
        f"{RUNS}/logs/tasks/{{task}}.log",
    conda:
        ENV
    shell:
        REPORT_COMMAND
