"""Rule batch_done: the record of one batch (cluster.cells_per_job), written last in its
cluster job: which cells it trained, on which host and SLURM job, and what each cell cost
(read from its metrics.json), so a batch's time limit can be compared with what it used."""

import json
import os
import socket
import sys
import time
from pathlib import Path

from hnet.files import write_json

COST = ("train_seconds", "process_seconds", "peak_rss_mb", "peak_cuda_mb", "resumed")

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
cells = []
for run_dir, metrics in zip(smk.params.cells, smk.input, strict=True):
    result = json.loads(Path(metrics).read_text())
    cells.append({"run_dir": run_dir, **{k: result[k] for k in COST if k in result}})
record = {
    "batch": smk.wildcards.batch,
    "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    "host": socket.gethostname(),
    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "cells": cells,
}
write_json(Path(smk.output[0]), record)
with open(smk.log[0], "w") as log:
    print(f"{len(cells)} cells, SLURM job {record['slurm_job_id']}", file=log)
sys.exit(0)
