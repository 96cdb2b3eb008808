"""``hnet report``: tables and figures from every metrics.json under a directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="tables and figures from all metrics.json under a directory")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="searched recursively for runs")
    p.add_argument("--out", "-o", default=None, help="output directory (default: RESULTS_DIR)")
    p.add_argument(
        "--hnet-ref",
        metavar="SIZE",
        default=None,
        help="hnet size every method is compared with in the paired table, fixed in advance "
        "(default: official, else the first size; studies pass report.hnet_reference)",
    )
    p.add_argument(
        "--selection",
        metavar="SELECTION_JSON",
        default=None,
        help="a study's tuning/selection.json: the selected values (tables/selected.csv|md) "
        "and the sensitivity figures",
    )
    p.add_argument(
        "--expected",
        metavar="GRID_JSON",
        default=None,
        help="the study's grid file: expected cells without a result are listed in "
        "tables/missing.csv|md (failed, running, interrupted or not started)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.report.build import make_report

    rep = make_report(
        args.results_dir,
        args.out,
        hnet_ref=args.hnet_ref,
        expected=args.expected,
        selection=args.selection,
    )
    for note in rep.notes:
        print(note, file=sys.stderr)
    print(f"wrote {len(rep.written)} files to {rep.out / 'tables'} and {rep.out / 'figures'}")
    print(rep.missing_summary())
    return 0
