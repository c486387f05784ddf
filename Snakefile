# SuperFlow study: base model, Flow-GRPO, Flow-SPO and SuperFlow per task, evaluated on held-out
# prompts, summarised as the paper's Table 1, an efficiency table and figures.
#
#   snakemake --cores all reproduce_table1                          # mini scale (default)
#   snakemake --cores all all --config scale=smoke                  # CI-sized
#   snakemake --profile workflow/profiles/slurm reproduce_table1 --config scale=paper
#   snakemake --cores all reproduce_table1 --configfile my_study.yaml   # a whole config of your own
#
# Snakemake owns the experiment; every rule calls the `superflow` CLI with explicit paths.

from pathlib import Path

import yaml
from snakemake.utils import min_version

min_version("9.0")


# A complete config given with --configfile (one that names `runs`) is used as it is; otherwise
# the scale's file (--config scale=mini|smoke|paper, default mini), with any other --config or
# --configfile values merged on top (nested keys too: --config runs=runs/world1 'world={seed: 1}'
# keeps the rest of world).
if not any("runs" in (yaml.safe_load(Path(path).read_text()) or {}) for path in workflow.overwrite_configfiles):

    configfile: f"workflow/config/{config.get('scale', 'mini')}.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        rules.reproduce_table1.input,
        rules.figures.input,
    default_target: True
