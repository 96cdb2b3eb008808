"""Rule mlflow_sync: mirror every finished cell of the study to MLflow (idempotent: runs are
found again by their key, complete ones are left alone).

A failing store (damaged, read-only) or an unreadable metrics.json does not fail the study:
the cells not uploaded get mlflow_pending.json, unreadable ones are listed under "skipped", and
the Snakefile's onsuccess hook says what to do in one message (docs/studies.md#tracking)."""

import json
from pathlib import Path

from hnet.tracking.sync import sync_many

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
with open(smk.log[0], "w") as log:
    done = sync_many(
        [Path(m).parent for m in smk.input.runs],
        uri=smk.params.uri,
        experiment=smk.params.experiment,
        on_run=lambda d, run_id: print(f"{d}: MLflow run {run_id}", file=log, flush=True),
    )
    for d, why in done.skipped.items():
        print(f"{d}: skipped, unreadable files: {why}", file=log)
    for d, why in done.pending.items():
        print(f"{d}: not mirrored, the store failed: {why}", file=log)
record = done.record(smk.params.uri, smk.params.experiment)
Path(smk.output[0]).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
