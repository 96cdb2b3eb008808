# hnet study workflow: a study config (workflow/config/*.yaml) → one `hnet train` job per grid
# cell → MLflow mirror → tables, figures and `snakemake --report`.
#
#   snakemake --profile workflow/profiles/local                       # the demo study
#   snakemake --profile workflow/profiles/local --configfile workflow/config/fashion.yaml
#
# Parsing imports no torch (the grid comes from hnet's torch-free catalog), so building the DAG
# of a grid of thousands of cells is cheap, also when SLURM jobs re-parse this file.
from snakemake.utils import min_version, validate

min_version("8.0")


if (
    not config
):  # no --configfile: the embedded demo study (a given config is not merged in)

    configfile: "workflow/config/default.yaml"


validate(config, "workflow/schemas/study.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tuning.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/aggregate.smk"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    benchmark=r"[A-Za-z0-9_]+",
    scenario=r"cl[123]",
    method=r"[A-Za-z0-9_]+",
    size=r"[A-Za-z0-9_.]+",
    seed=r"\d+",
    point=r"[^/]*=[^/]*",  # a swept point, e.g. beta=0.01 (tuning cells only)


localrules:
    all,


# Every cell's metrics.json (so a deleted cell is rebuilt even though the report exists), the
# MLflow mirror and the report.
rule all:
    default_target: True
    input:
        study_targets(),


onsuccess:
    tracking_summary()


onerror:
    partial_report()
    tracking_summary(failed=True)
