"""A study config file, read and checked without Snakemake: ``python -m hnet.study.configfile
FILE...`` (``make study`` runs it before Snakemake).

Snakemake reads ``--configfile`` itself, before the Snakefile runs, and reports any YAML error
as "Config file is not valid JSON or YAML" without the line or the reason (``snakemake
--verbose`` shows them in its traceback). :func:`load_file` names the file, the line, the column
and the reason; :func:`main` then runs the parse-time checks of ``snakemake -n``
(:mod:`hnet.study.validate`, :func:`hnet.study.grid.expand`), except the JSON schema.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hnet.errors import StudyError
from hnet.study.grid import expand, tuning_cells
from hnet.study.validate import REQUIRED, check_not_empty


def load_file(path: str | Path) -> dict[str, Any]:
    """A study config file as a dict; a StudyError naming the file, line and reason when it is
    not plain YAML (Python tags and other non-standard tags are refused)."""
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
