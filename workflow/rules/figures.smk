# Figures of the study (PNG under results/figures/), each with a caption in the HTML report; the
# baselines target draws the same set for every newer method under results/figures/baselines/.

FIGURES_COMMAND = (
    "MPLBACKEND=Agg superflow report figures {params.arguments} {params.samples} --output-dir {params.folder}"
    " > {log} 2>&1"
)


rule figures_png:
    input:
        unpack(lambda wc: figure_inputs(METHODS)),
    output:
        made=touch(f"{RUNS}/figures.done"),  # see tables.smk: makes a fresh clone redraw the figures
        **figure_outputs(f"{RESULTS}/figures", "Figures", "Samples"),
    params:
        arguments=report_arguments(METHODS, with_base=False),
        samples=sample_arguments(METHODS),
        folder=lambda wc, output: os.path.dirname(output[FIGURES[0]]),
    log:
        f"{RUNS}/logs/figures.log",
    conda:
        ENV
    shell:
        FIGURES_COMMAND


rule baseline_figures_png:
    input:
        unpack(lambda wc: figure_inputs(BASELINE_VARIANTS)),
    output:
        made=touch(BASELINE_FIGURES_DONE),
        **figure_outputs(f"{RESULTS}/figures/baselines", "Baselines", "Baselines: samples"),
    params:
        arguments=report_arguments(BASELINE_VARIANTS, with_base=False),
        samples=sample_arguments(BASELINE_VARIANTS),
        folder=lambda wc, output: os.path.dirname(output[FIGURES[0]]),
    log:
        f"{RUNS}/logs/baseline_figures.log",
    conda:
        ENV
    shell:
        FIGURES_COMMAND


rule figures:
    input:
        rules.figures_png.output,
