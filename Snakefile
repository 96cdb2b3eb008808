# hnet study workflow: a study config (workflow/config/*.yaml) → one `hnet train` job per grid
# cell → MLflow mirror → tables, figures and `snakemake --report`.
#
#   snakemake --profile workflow/profiles/local                       # the demo study
#   snakemake --profile workflow/profiles/local --configfile workflow/config/fashion.yaml
#
# Parsing imports no torch (the grid comes from hnet's torch-free catalog), so building the DAG
# of a grid of thousands of cells is cheap, also when SLURM jobs re-parse this file.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from hnet.errors import HnetError
from hnet.study.validate import check_not_empty, schema_message

min_version("8.0")

STUDY_FILES = list(workflow.overwrite_configfiles or [])


if not config and not STUDY_FILES:  # no --configfile: the embedded demo study

    configfile: "workflow/config/default.yaml"


# A study config is checked whole before any job: an empty one is refused (it would plan the
# demo study), schema errors are one line naming the key, then common.smk checks the rest.
try:
    check_not_empty(config, STUDY_FILES)
    validate(config, "workflow/schemas/study.schema.yaml")
except WorkflowError as e:
    cause = e.__cause__ or e.__context__  # jsonschema's ValidationError
    if not hasattr(cause, "absolute_path"):
        raise
    raise WorkflowError(schema_message(cause, STUDY_FILES)) from None
except HnetError as e:
    raise WorkflowError(str(e)) from None


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
    batch=BATCH_NAME,  # cluster.cells_per_job: a batch of cells (hnet.study.batches)


localrules:
    all,


# Every cell's metrics.json (so a deleted cell is rebuilt even though the report exists), the
# MLflow mirror and the report.
rule all:
    default_target: True
    input:
        study_targets(),


onstart:
    batch_warning()


onsuccess:
    tracking_summary()


onerror:
    partial_report()
    tracking_summary(failed=True)
