"""Rule mlflow_init: create the tracking store and the study's experiment once, and write the
tracking destination file that every training job of the study reads."""

import json
from pathlib import Path

from hnet.tracking.store import init_store

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
uri, experiment = smk.params.uri, smk.params.experiment
exp_id = init_store(uri, experiment)
live = bool(smk.params.live)
record = {"uri": uri, "experiment": experiment, "experiment_id": exp_id, "live": live}
Path(smk.output[0]).write_text(json.dumps(record, indent=1) + "\n")
Path(smk.log[0]).write_text(f"MLflow store {uri}: experiment {experiment!r} (id {exp_id})\n")
