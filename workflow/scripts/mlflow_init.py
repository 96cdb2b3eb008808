"""Rule mlflow_init: create the tracking store and the study's experiment once, and write the
tracking destination file that every training job of the study reads.

A store that cannot be opened fails the study here only when the study requires tracking
(tracking.required); otherwise the destination is written anyway with the error, the jobs run
(results files are the truth) and the onsuccess hook reports the mirror as incomplete."""

import json
import sys
from pathlib import Path

from hnet.tracking.status import short_reason, store_fix
from hnet.tracking.store import init_store

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
uri, experiment = smk.params.uri, smk.params.experiment
live = bool(smk.params.live)
record = {"uri": uri, "experiment": experiment, "experiment_id": None, "live": live}
try:
    record["experiment_id"] = exp_id = init_store(uri, experiment)
    note = f"MLflow store {uri}: experiment {experiment!r} (id {exp_id})\n"
except Exception as e:
    reason = short_reason(f"{type(e).__name__}: {e}", uri)
    note = (
        f"hnet: cannot open the MLflow tracking store {uri} ({reason}). Fix it, then run "
        f"`hnet sync {Path(smk.output[0]).parent}` {store_fix(uri, reason)}.\n"
    )
    if smk.params.required:
        Path(smk.log[0]).write_text(note)
        print(note + "(tracking.required is true: the study stops here.)", file=sys.stderr)
        sys.exit(1)
    record["error"] = reason
Path(smk.output[0]).write_text(json.dumps(record, indent=1) + "\n")
Path(smk.log[0]).write_text(note)
