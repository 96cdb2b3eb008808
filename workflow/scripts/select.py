"""Checkpoint select: choose each swept group's values from the finished tuning cells by the
study's validation metric (hnet.study.select) and write the selection file."""

import sys
from pathlib import Path

from hnet.errors import HnetError
from hnet.files import write_json
from hnet.study.select import select

smk = snakemake  # noqa: F821 (injected by Snakemake's script directive)
tuning = smk.params.tuning
with open(smk.log[0], "w") as log:
    try:
        selection = select(
            smk.params.cells,
            smk.params.out,
            metric=tuning.get("metric", "val_acc_final"),
            aggregate=tuning.get("aggregate", "mean"),
        )
    except HnetError as e:
        print(e, file=log)
        print(e, file=sys.stderr)
        sys.exit(1)
    write_json(Path(smk.output[0]), selection)
    print(f"rule: {selection['rule']['text']}", file=log)
    for g in selection["groups"]:
        where = "/".join(g[k] for k in ("benchmark", "scenario", "method", "size"))
        print(f"{where}: {g['selected_dir']}", file=log)
