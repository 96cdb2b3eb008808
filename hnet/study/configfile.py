"""A study config file, read and checked without Snakemake: ``python -m hnet.study.configfile
FILE...`` (``make study`` runs it before Snakemake).

Snakemake reads ``--configfile`` itself, before the Snakefile runs, and reports any YAML error
as "Config file is not valid JSON or YAML" without the line or the reason (``snakemake
--verbose`` shows them in its traceback). :func:`load_file` names the file, the line, the column
and the reason; :func:`main` then runs the parse-time checks of ``snakemake -n``
(:mod:`hnet.study.validate`, :func:`hnet.study.grid.expand`), except the JSON schema.

Snakemake also runs Python *from* a config file whose top level says ``__use_yte__: true`` (YTE
templates: ``?expr`` keys and values are evaluated when the file is read, under ``snakemake -n``
too, before the Snakefile can check anything). :func:`check_no_code` refuses such a file; every
command that reads a study config before Snakemake does (``make study``, ``hnet status``) calls
it, through :func:`load_file` or directly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hnet.errors import StudyError
from hnet.study.grid import expand, tuning_cells
from hnet.study.validate import REQUIRED, check_not_empty

YTE_KEY = "__use_yte__"  # Snakemake's switch for YTE templates in a config file


def check_no_code(config: Any, path: str | Path) -> None:
    """Refuse a study config that would make Snakemake run code while reading it (a StudyError
    naming the file and the fix). ``config``: the file as plain YAML loads it (:func:`load_file`
    does that and calls this)."""
    if isinstance(config, dict) and YTE_KEY in config:
        switch = f"{YTE_KEY}: {json.dumps(config[YTE_KEY])}"
        raise StudyError(
            f"study config {path}: '{switch}' turns on Snakemake's YTE "
            "templates, which run the Python expressions of this file whenever Snakemake reads "
            "it, even under `snakemake -n`, before any check. Study configs are plain YAML: "
            f"remove the {YTE_KEY} key and write the values out (hparams, include and exclude "
            "cover what templates are used for), and do not pass this file to snakemake."
        )


def load_file(path: str | Path) -> dict[str, Any]:
    """A study config file as a dict; a StudyError naming the file, line and reason when it is
    not plain YAML (Python tags and other non-standard tags are refused) or when it would make
    Snakemake run code (:func:`check_no_code`)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise StudyError(f"study config {path}: cannot read it ({e.strerror}).") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = str(getattr(e, "problem", None) or e).rstrip(".")
        hint = ""
        if "python/" in reason:
            hint = " Study configs are plain YAML: Python tags (!!python/...) are refused."
        raise StudyError(f"study config {path}{at}: not valid YAML: {reason}.{hint}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise StudyError(
            f"study config {path}: the top level must be a mapping of keys (study, benchmarks, "
            f"...), not a {type(config).__name__}."
        )
    check_no_code(config, path)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m hnet.study.configfile FILE...``: the parse-time checks of ``snakemake -n``
    (YAML, name, seeds, resources, names, pairs, hparams, include/exclude, sweeps), without
    Snakemake and without the JSON schema."""
    status = 0
    for name in argv if argv is not None else sys.argv[1:]:
        try:
            config = load_file(name)
            check_not_empty(config, [name])
            cells = expand(config)
            tuning = tuning_cells(config, cells)
        except (StudyError, KeyError, TypeError, AttributeError) as e:
            message = str(e)
            if isinstance(e, KeyError):
                message = f"study config {name}: missing key {e} (required: {', '.join(REQUIRED)})."
            elif not isinstance(e, StudyError):
                message = (
                    f"study config {name}: a value of the wrong type ({e}); `snakemake -n` "
                    "checks it against workflow/schemas/study.schema.yaml and names the key."
                )
            print(f"hnet: {message}", file=sys.stderr)
            status = 2
            continue
        print(f"{name}: {len(cells)} final and {len(tuning)} tuning cells")
    return status


if __name__ == "__main__":
    sys.exit(main())
