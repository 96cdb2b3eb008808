"""Rule mlflow_sync: mirror every finished cell of the study to MLflow (idempotent: runs are
found again by their key, complete ones are left alone)."""

import json
from pathlib import Path

from hnet.tracking.sync import sync

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
runs = {}
with open(smk.log[0], "w") as log:
    for metrics in smk.input.runs:
        run_dir = Path(metrics).parent
        runs[str(run_dir)] = sync(run_dir, uri=smk.params.uri, experiment=smk.params.experiment)
        print(f"{run_dir}: MLflow run {runs[str(run_dir)]}", file=log)
record = {"uri": smk.params.uri, "experiment": smk.params.experiment, "runs": runs}
Path(smk.output[0]).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
