"""The ``hnet`` command line: one module per subcommand, each with ``add_parser`` and ``run``.

Heavy imports (torch, torchvision, mlflow) happen inside the subcommands, so ``hnet --help`` is
instant. User errors (:class:`hnet.errors.HnetError`) are printed as one paragraph, without a
traceback, and exit with status 2; so are a full disk and a missing permission (an ``OSError``
naming the path). ``HNET_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys

from hnet.cli import bench, listing, report, status, sync, tracking_init, train
from hnet.errors import HnetError, JobInterrupted, os_error_message
from hnet.job.environment import omp_wait_policy

SUBCOMMANDS = (train, listing, bench, tracking_init, sync, report, status)


class VersionAction(argparse.Action):
    """``hnet --version``: the installed distribution's version (importlib.metadata), looked up
    only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from hnet.job.environment import hnet_version

        print(f"hnet {hnet_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="hnet", description="Continual learning with task-conditioned hypernetworks."
    )
    ap.add_argument("--version", action=VersionAction, help="print hnet's version and exit")
    sub = ap.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Read once, when torch loads its OpenMP (no subcommand has imported it yet): idle threads
    # spin unless the thread count was fixed by hand on cores others may use (omp_wait_policy).
    if policy := omp_wait_policy(os.environ, getattr(args, "threads", None)):
        os.environ["OMP_WAIT_POLICY"] = policy
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
    except OSError as e:
        if (message := os_error_message(e)) is None:
            raise
        print(f"hnet {args.command}: error: {message}", file=sys.stderr)
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
