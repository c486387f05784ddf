# Figures of the study (PNG under results/figures/), each with a caption in the HTML report.

# Each figure's caption is workflow/report/NAME.rst (the report's only copy of it).
FIGURES = ["test_reward_vs_step", "test_reward_vs_time", "group_sizes", "step_advantage_profile"]


rule figures_png:
    input:
        unpack(lambda wc: run_files(METHODS)),
        samples=[f"{RUNS}/samples/{t}/base" for t in TASKS]
        + [f"{RUNS}/samples/{t}/{m}/seed{SEEDS[0]}" for t in TASKS for m in METHODS],
    output:
        made=touch(f"{RUNS}/figures.done"),  # see tables.smk: makes a fresh clone redraw the figures
        **{
            name: report(f"{RESULTS}/figures/{name}.png", caption=f"../report/{name}.rst", category="Figures")
            for name in FIGURES
        },
        **{
            f"samples_{t}": report(
                f"{RESULTS}/figures/samples_{t}.png", caption="../report/samples.rst", category="Samples"
            )
            for t in TASKS
        },
    params:
        arguments=report_arguments(METHODS, with_base=False),
        samples=" ".join(
            [f"--samples {t} base {RUNS}/samples/{t}/base" for t in TASKS]
            + [f"--samples {t} {m} {RUNS}/samples/{t}/{m}/seed{SEEDS[0]}" for t in TASKS for m in METHODS]
        ),
        folder=lambda wc, output: os.path.dirname(output[FIGURES[0]]),
    log:
        f"{RUNS}/logs/figures.log",
    conda:
        ENV
    shell:
        "MPLBACKEND=Agg superflow report figures {params.arguments} {params.samples} --output-dir {params.folder}"
        " > {log} 2>&1"


rule figures:
    input:
        rules.figures_png.output,
