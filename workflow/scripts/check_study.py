"""Rule check_study: resolve every cell's config and size before any job starts (imports torch,
so it runs as a job, not while the Snakefile is parsed), then write the expected grid."""

import json
import sys
from pathlib import Path

from hnet.errors import HnetError
from hnet.study.check import check_cells
from hnet.study.grid import expand, grid_record, tuning_cells

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
with open(smk.log[0], "w") as log:
    try:
        cells = expand(smk.config)
        tuning = tuning_cells(smk.config, cells)
        check_cells(smk.config, cells + tuning)
    except HnetError as e:
        print(e, file=log)
        print(e, file=sys.stderr)
        sys.exit(1)
    out = Path(smk.output[0])
    out.write_text(json.dumps(grid_record(smk.config, cells, tuning), indent=1) + "\n")
    print(f"{len(cells)} final and {len(tuning)} tuning cells checked; wrote {out}", file=log)
