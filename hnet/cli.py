"""The ``hnet`` command line: ``train``, ``list``, ``bench``.

Heavy imports (torch, torchvision) happen inside the sub-commands, so ``hnet --help`` is instant.
User errors (:class:`hnet.errors.HnetError`) are printed as one paragraph, without a traceback,
and exit with status 2.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import time
from pathlib import Path

from hnet.errors import HnetError, JobInterrupted


def _add_job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", "-b", required=True, help="benchmark name (see `hnet list`)")
    p.add_argument("--scenario", default="cl1", help="cl1 | cl2 | cl3 (default: cl1)")
    p.add_argument("--method", "-m", default="hnet", help="method name (default: hnet)")
    p.add_argument("--seed", type=int, default=0, help="fixes init, permutations, data order")
    p.add_argument(
        "--size",
        default=None,
        help="hypernetwork size: 'official' (default), a preset, or cr<ratio>",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.iters=100 (repeatable)",
    )
    p.add_argument("--device", default=None, help="auto (default) | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (0 = default)")
    p.add_argument(
        "--data-dir", default=None, help="dataset root (default: $HNET_DATA or ~/.cache/hnet/data)"
    )


def _resolve(args: argparse.Namespace) -> dict:
    from hnet.config import parse_set, resolve

    overrides = parse_set(args.overrides)
    if args.data_dir:
        overrides["data.dir"] = str(Path(args.data_dir).expanduser().resolve())
    return resolve(
        args.benchmark,
        args.method,
        scenario=args.scenario,
        seed=args.seed,
        size=args.size,
        overrides=overrides,
        device=args.device,
        threads=args.threads,
    )


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _resolve(args)
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return 0
    if args.out is None:
        raise HnetError("hnet train needs --out DIR (the run directory to write).")
    out = Path(args.out)
    if out.exists() and (
        args.restart or (args.if_changed == "restart" and config_changed(out, cfg))
    ):
        aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(out), str(aside))
        print(f"moved the previous run to {aside}", file=sys.stderr)
    from hnet.train import run_job

    # $HNET_NO_TRACKING=1 is --no-tracking from the environment: study workflows switch the
    # mirror per study without changing the jobs' command lines (which would rerun every cell).
    no_tracking = args.no_tracking or os.environ.get("HNET_NO_TRACKING", "") not in ("", "0")
    uri = None if no_tracking else args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    progress = False if args.quiet else None
    if uri is None:
        res = run_job(cfg, out, progress=progress, scratch=args.scratch)
    else:
        from hnet.tracking import Mirror

        with Mirror(uri, args.experiment, cfg, out) as mirror:
            res = run_job(
                cfg, out, progress=progress, scratch=args.scratch, on_event=mirror.on_event
            )
    keys = (
        "acc_final",
        "acc_during",
        "bwt",
        "fwt",
        "forgetting",
        "compression_ratio",
        "train_seconds",
    )
    print(" ".join(f"{k}={res[k]:.4g}" for k in keys if res.get(k) is not None))
    print(f"wrote {out / 'metrics.json'}")
    return 0


def config_changed(out: Path, cfg: dict) -> bool:
    """Does ``out`` hold a run of a different config? (compared as JSON)"""
    old = out / "config.json"
    return old.exists() and json.loads(old.read_text()) != json.loads(json.dumps(cfg))


def cmd_tracking_init(args: argparse.Namespace) -> int:
    from hnet.tracking import init_store

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise HnetError("hnet tracking-init needs --tracking-uri URI or $MLFLOW_TRACKING_URI.")
    exp_id = init_store(uri, args.experiment)
    print(f"MLflow store {uri}: experiment {args.experiment!r} (id {exp_id}) ready")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from hnet.config import SCENARIOS
    from hnet.data import BENCHMARKS
    from hnet.methods import METHODS
    from hnet.models.sizes import SIZES

    print("benchmarks:")
    for name, spec in BENCHMARKS.items():
        print(
            f"  {name:18s} {'/'.join(spec.scenarios):14s} size={spec.defaults.get('size', '-'):8s}"
            f" {spec.description}"
        )
    print("methods:")
    for name, cls in METHODS.items():
        print(f"  {name:18s} {'/'.join(cls.scenarios):14s} {cls.summary}")
    print("scenarios:")
    for name, text in SCENARIOS.items():
        print(f"  {name:18s} {text}")
    print("size presets (also: official = the benchmark's default, cr<ratio> e.g. cr0.5):")
    for name, arch in SIZES.items():
        shape = (
            f"chunk {arch['chunk_size']}, chunk emb {arch['chunk_emb']}, "
            if arch["chunked"]
            else "full, "
        )
        print(
            f"  {name:18s} {shape}task emb {arch['task_emb']}, hidden {arch['hidden']}, "
            f"{arch['activation']}"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from hnet.bench import run_bench

    run_bench(_resolve(args), prev_tasks=args.prev_tasks, steps=args.steps, repeats=args.repeats)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from hnet.sync import run_dirs_under, sync

    dirs = [d for arg in args.run_dirs for d in run_dirs_under(arg)]
    for run_dir in dirs:
        run_id = sync(run_dir, uri=args.tracking_uri, experiment=args.experiment, force=args.force)
        print(f"{run_dir}: mirrored as MLflow run {run_id}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hnet.report import make_report

    rep = make_report(args.results_dir, args.out, hnet_ref=args.hnet_ref, expected=args.expected)
    for note in rep.notes:
        print(note, file=sys.stderr)
    print(f"wrote {len(rep.written)} files to {rep.out / 'tables'} and {rep.out / 'figures'}")
    print(rep.missing_summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hnet", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="run one job (one grid cell) into a run directory")
    _add_job_args(p)
    p.add_argument("--out", "-o", help="run directory (metrics.json, config.json, losses.jsonl)")
    p.add_argument(
        "--restart", action="store_true", help="move an existing run directory aside and start over"
    )
    p.add_argument(
        "--if-changed",
        choices=("refuse", "restart"),
        default="refuse",
        help="when --out holds a run of a different config: refuse (default) or move "
        "it aside and start over (what the study workflow uses)",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow store to mirror the run to (default: $MLFLOW_TRACKING_URI; none = no mirror)",
    )
    p.add_argument(
        "--experiment",
        default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "hnet"),
        help="MLflow experiment, the study name (default: $MLFLOW_EXPERIMENT_NAME or hnet)",
    )
    p.add_argument(
        "--no-tracking", action="store_true", help="no MLflow mirror (also $HNET_NO_TRACKING=1)"
    )
    p.add_argument(
        "--scratch",
        metavar="RUN",
        help="matching scratch run (dir or metrics.json): adds transfer_vs_scratch",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config, exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("list", help="benchmarks, methods, scenarios and size presets")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("bench", help="time training steps and the regularizer (prints a table)")
    _add_job_args(p)
    p.add_argument(
        "--prev-tasks",
        type=int,
        nargs="*",
        default=None,
        help="numbers of previous tasks to time the regularizer at (default: 1..T-1)",
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per task index")
    p.add_argument("--repeats", type=int, default=20, help="timed regularizer calls per point")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "tracking-init",
        help="create the MLflow store and experiment once, "
        "before parallel jobs (avoids the migration and experiment races)",
    )
    p.add_argument("--tracking-uri", metavar="URI", help="default: $MLFLOW_TRACKING_URI")
    p.add_argument("--experiment", default="hnet", help="experiment (study) name")
    p.set_defaults(func=cmd_tracking_init)

    p = sub.add_parser("sync", help="upload finished run dirs to MLflow (idempotent)")
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories, or directories searched for finished runs (e.g. a study's runs/)",
    )
    p.add_argument(
        "--tracking-uri", metavar="URI", help="default: mlflow_pending.json, $MLFLOW_TRACKING_URI"
    )
    p.add_argument(
        "--experiment", metavar="NAME", help="default: mlflow_pending.json, config, the run's key"
    )
    p.add_argument("--force", action="store_true", help="re-upload runs already complete")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("report", help="tables and figures from all metrics.json under a directory")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="searched recursively for runs")
    p.add_argument("--out", "-o", default=None, help="output directory (default: RESULTS_DIR)")
    p.add_argument(
        "--hnet-ref",
        metavar="SIZE",
        default=None,
        help="hnet size for the paired comparison (default: the best mean acc_final)",
    )
    p.add_argument(
        "--expected",
        metavar="GRID_JSON",
        default=None,
        help="the study's grid file: expected cells without a result are listed in "
        "tables/missing.csv|md (failed, interrupted or not run)",
    )
    p.set_defaults(func=cmd_report)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get("HNET_DEBUG"):
        return args.func(args)
    try:
        return args.func(args)
    except JobInterrupted as e:
        print(f"hnet {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except HnetError as e:
        print(f"hnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hnet {args.command}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point: ``main()``, then a fast exit.

    Tearing down an interpreter that imported torch takes ≈0.8 s (module and GC finalisation),
    a third of a short job's fixed cost in a study of many jobs. Everything a command writes is
    closed and flushed by the time ``main`` returns, so after running the ``atexit`` handlers
    (MLflow's among them) the process exits without that teardown.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
