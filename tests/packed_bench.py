"""Time packed seeds against one ``hnet train`` process per seed, and compare their results.

    python tests/packed_bench.py OUT_DIR [--reps 2] [--seeds 3,8] [--methods hnet,finetune]
        [--benchmark split_digits] [--threads 1] [--set KEY=VALUE ...]

For every (method, K) and repetition it runs, alternating which goes first, ``hnet train
--seeds 0-(K-1)`` (one process) and the same K seeds as K ``hnet train --seed s`` processes one
after the other, each in a fresh directory, and prints the wall-time ratio (packed / separate)
and the largest per-seed differences: accuracy matrix entries (points), final accuracy and
weights in the final checkpoint. The table is also written to OUT_DIR/packed_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def hnet_train(*args: str) -> list[str]:
    return [sys.executable, "-m", "hnet.cli", "train", "-q", "--no-tracking", *args]


def timed(argvs: list[list[str]]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "state" / "ckpt.pt", weights_only=True, map_location="cpu")
    method = state["method"]
    return method["hnet"] if "hnet" in method else method["net"]


def compare(a: Path, b: Path) -> dict[str, float]:
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    ra, rb = torch.tensor(ma["acc_matrix"]), torch.tensor(mb["acc_matrix"])
    wa, wb = weights(a), weights(b)
    return {
        "acc": (ra - rb).abs().nan_to_num().max().item(),
        "acc_final": abs(ma["acc_final"] - mb["acc_final"]),
        "weights": max((wa[n] - wb[n]).abs().max().item() for n in wb),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seeds", default="3,8", help="pack sizes K")
    ap.add_argument("--methods", default="hnet,finetune")
    ap.add_argument("--benchmark", default="split_digits")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    common = ["-b", args.benchmark, "--threads", args.threads]
    for item in args.sets:
        common += ["--set", item]
    rows = []
    for rep in range(args.reps):
        for k in (int(x) for x in args.seeds.split(",")):
            for method in args.methods.split(","):
                base = args.out / f"r{rep}" / f"{method}-k{k}"
                packed = hnet_train(
                    *common,
                    "-m",
                    method,
                    "--seeds",
                    f"0-{k - 1}",
                    "--out",
                    f"{base}/p/seed{{seed}}",
                )
                single = [
                    hnet_train(
                        *common, "-m", method, "--seed", str(s), "--out", f"{base}/u/seed{s}"
                    )
                    for s in range(k)
                ]
                if rep % 2 == 0:
                    tp, tu = timed([packed]), timed(single)
                else:
                    tu, tp = timed(single), timed([packed])
                diffs = [
                    compare(base / "p" / f"seed{s}", base / "u" / f"seed{s}") for s in range(k)
                ]
                row = {
                    "rep": rep,
                    "method": method,
                    "K": k,
                    "packed_s": tp,
                    "separate_s": tu,
                    "ratio": tp / tu,
                    **{f"max_d_{key}": max(d[key] for d in diffs) for key in diffs[0]},
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\nmethod    K  packed s  separate s  ratio (mean of reps)  max|Δacc|  max|Δw|")
    for method in args.methods.split(","):
        for k in (int(x) for x in args.seeds.split(",")):
            mine = [r for r in rows if r["method"] == method and r["K"] == k]
            print(
                f"{method:9} {k:2} {statistics.mean(r['packed_s'] for r in mine):8.1f} "
                f"{statistics.mean(r['separate_s'] for r in mine):11.1f} "
                f"{statistics.mean(r['ratio'] for r in mine):21.2f} "
                f"{max(r['max_d_acc'] for r in mine):10.3g} "
                f"{max(r['max_d_weights'] for r in mine):8.3g}"
            )
    (args.out / "packed_bench.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
