"""Where a job runs and what it records about it: device, package versions, git commit, memory,
process age. Recorded in every metrics.json so a result can be traced to its code and machine."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from hnet.fast.cpu import flush_denormals

DISTRIBUTION = "hnet-cl"  # hnet's name on PyPI / in pip (the import package is `hnet`)
PACKAGES = (DISTRIBUTION, "torch", "torchvision", "numpy", "scikit-learn", "mlflow", "snakemake")


def resolve_device(name: str):
    """``auto`` → CUDA when available, else CPU; nothing in hnet assumes a GPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from hnet.errors import ConfigError

        raise ConfigError(
            f"device {name!r} was asked for but CUDA is not available here; "
            "use --device auto or cpu."
        )
    return torch.device(name)


# What says a job's cores are its own: a scheduler's allocation (SLURM), a thread budget the user
# set for OpenMP, or a workflow that never gives its jobs more threads than cores (the study's
# Snakemake rules set HNET_DEDICATED_CORES=1).
DEDICATED = ("SLURM_JOB_ID", "OMP_NUM_THREADS", "HNET_DEDICATED_CORES")


def dedicated(environ: Mapping[str, str]) -> bool:
    """Were this process's cores granted to it (:data:`DEDICATED`; blank values do not count)?"""
    return any(environ.get(var, "").strip() for var in DEDICATED)


def omp_wait_policy(environ: Mapping[str, str], threads: int | None) -> str | None:
    """``PASSIVE``, or None to leave OpenMP's own default: its idle threads spin for a moment
    before they sleep.

    With passive waiting every parallel operation wakes its threads through the kernel: a
    default-thread Split Fashion-MNIST job alone on 2 cores took 31.3 s against 21.7 s with
    OpenMP's default. Spinning threads, though, steal the cores of any other job on them (two
    jobs side by side: 82 s each against 21.6 s passive; docs/performance.md, "Jobs side by
    side"). So a job spins where its cores are its own (:func:`dedicated`) or where it shares
    them with the other hnet jobs on them (default ``threads``, 0 or None: :mod:`hnet.job.cores`),
    and waits passively with a thread count fixed by hand (``--threads N``), which cannot make
    room for others. The user's own ``OMP_WAIT_POLICY`` wins."""
    if "OMP_WAIT_POLICY" in environ or dedicated(environ) or not threads:
        return None
    return "PASSIVE"


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, narrowed by what a scheduler or the
    user granted (``SLURM_CPUS_PER_TASK``, ``OMP_NUM_THREADS``). torch's own default is the
    machine's physical core count, which ignores all three: jobs started side by side (Snakemake
    ``--cores``, several SLURM tasks on a node) then each spin that many threads and fight."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    for var in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            cores = min(cores, int(value))
    return max(1, cores)


def apply_threads(threads: int) -> int:
    """Set torch's intra-op threads: ``threads``, or :func:`available_cores` when 0. Returns
    the number in use (recorded with the job's metrics). Subnormals are flushed first
    (:func:`hnet.fast.cpu.flush_denormals`), while the thread pool may not exist yet."""
    import torch

    flush_denormals()  # hnet.fast.cpu
    n = threads or available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def hnet_version() -> str:
    """``0.1.0 (hnet-cl)``: the installed distribution's version (``hnet --version``)."""
    try:
        return f"{metadata.version(DISTRIBUTION)} ({DISTRIBUTION})"
    except metadata.PackageNotFoundError:  # a source tree on PYTHONPATH, not pip-installed
        from hnet import __version__

        return f"{__version__} (source tree; {DISTRIBUTION} is not pip-installed)"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def git_commit() -> str | None:
    """Commit of the hnet source tree (None when not installed from a git checkout)."""
    src = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(src), "status", "--porcelain", "--", "hnet"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def git_repository() -> str | None:
    """Where the hnet source tree comes from: its git remote ``origin`` if it has one, else the
    checkout's directory (None when not installed from a git checkout). The MLflow runs' Source."""
    src = Path(__file__).resolve().parents[2]
    for args in (["remote", "get-url", "origin"], ["rev-parse", "--show-toplevel"]):
        try:
            out = subprocess.run(
                ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere). A job's fixed cost
    (interpreter, imports, data, model) is this age when its first training step begins."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
