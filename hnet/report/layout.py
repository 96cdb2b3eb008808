"""The fixed output layout of ``hnet report``: which figures and tables exist, and where.

The study Snakefile imports this module at parse time to declare the report's outputs and to
caption its figures in Snakemake's HTML report, so it must stay importable in milliseconds: the
standard library and hnet's torch-free catalog only (no pandas, numpy, matplotlib or torch).

Layout of a report directory ``OUT``::

    OUT/tables/<name>                                   every name in TABLES, always written
    OUT/figures/<kind>/<benchmark>__<scenario>.png|svg  one per kind in FIGURE_KINDS and
                                                        benchmark × scenario that has the data
    OUT/figures/<kind>/<benchmark>__<scenario>__<method>.png|svg
                                                        kinds in PER_METHOD_KINDS: one per
                                                        method as well (generated samples)

Every ``figures/<kind>`` directory exists after a report, even when empty; files of earlier
reports that the current runs no longer produce are deleted, so the directories hold exactly
the current figures.
"""

from __future__ import annotations

from collections.abc import Iterable

from hnet.study.catalog import is_generative, is_sized

#: the from-scratch controls of transfer, as in hnet.metrics.TRANSFER_CONTROLS (which imports
#: numpy: this module is read while Snakemake parses a study; a unit test keeps the two equal)
TRANSFER_CONTROLS = ("scratch", "hnet_scratch")

#: figure kind → (title, one-sentence description), in display order
FIGURE_KINDS: dict[str, tuple[str, str]] = {
    "acc_final": (
        "Final accuracy",
        "Mean accuracy over all tasks after training the last task, per method and hypernetwork "
        "size (bars: mean over seeds, error bars: 95 % CI, dots: single seeds).",
    ),
    "forgetting": (
        "Backward transfer, forgetting and forward transfer",
        "BWT, forgetting and FWT per method and hypernetwork size in three panels (bars: mean "
        "over seeds, error bars: 95 % CI, dots: single seeds).",
    ),
    "compression": (
        "Accuracy vs compression",
        "Final accuracy of the hypernetwork against its compression ratio (hypernetwork / "
        "target-network parameters, log scale), with the other methods as horizontal lines.",
    ),
    "memory": (
        "Accuracy vs memory",
        "Final accuracy against what each method keeps beyond its network after the last task, "
        "in exemplar equivalents (bytes / bytes of one stored training input, log scale): hnet "
        "at each size and each rehearsal method at each buffer size joined by a line, the other "
        "methods as single points, methods that keep nothing on the '0' tick.",
    ),
    "matrices": (
        "Accuracy matrices",
        "Mean accuracy matrix over seeds per method and size: row i = after training task i, "
        "column j = evaluated on task j.",
    ),
    "final_per_task": (
        "Accuracy per task after the last task",
        "Accuracy on every task after training the last one, one line per method and size "
        "(band: 95 % CI over seeds); shows where along the sequence knowledge is lost.",
    ),
    "during_vs_final": (
        "Accuracy right after learning vs at the end",
        "Per task, the accuracy right after learning it (R[j,j]) and after the last task "
        "(R[T,j]), one panel per method and size; the shaded gap is what was forgotten.",
    ),
    "transfer_per_task": (
        "Per task: hypernetwork against fine-tuning and from scratch",
        "The paper's Split CIFAR figure: per task, grouped bars of the hypernetwork's accuracy "
        "right after learning the task (hatched) and after the last task, of fine-tuning right "
        "after learning it and of the task trained alone from scratch, by a plain network "
        "(scratch) and by a hypernetwork of the same size (hnet_scratch) (bars: mean over "
        "seeds, whiskers: 95 % CI); drawn when there are hnet runs and finetune, scratch or "
        "hnet_scratch runs.",
    ),
    "samples": (
        "Generated samples",
        "Samples of a replay method's generator after the last task, drawn from fixed noise "
        "(first seed): one row per earlier task for the hypernetwork-protected replay model "
        "(HNET+R, HNET+TIR), unconditional rows for DGR+distill's generator.",
    ),
    "embeddings": (
        "Task embeddings (PCA)",
        "The hypernetwork's learned task embeddings projected on their first two principal "
        "components, one panel per hypernetwork size (first seed), points labelled by task.",
    ),
    "sensitivity": (
        "Sensitivity to swept hyperparameters",
        "Studies with sweeps: the validation metric that selects the values against each swept "
        "value, one line per method and size (mean over tuning seeds, band: 95 % CI, dots: "
        "seeds, ring: the selected value; log axis for values spanning decades).",
    ),
}

FIGURE_EXTS = ("png", "svg")
#: kinds drawn once per method of a benchmark × scenario (the file name adds ``__<method>``)
PER_METHOD_KINDS = ("samples",)

#: the table files written into ``OUT/tables`` by every report
TABLES = (
    "runs.csv",
    "summary.csv",
    "summary_wide.csv",
    "summary.md",
    "summary.tex",
    "published.csv",
    "published.md",
    "paired_vs_hnet.csv",
    "paired_vs_hnet.md",
    "missing.csv",
    "missing.md",
    "state.csv",
    "state.md",
    "state.rst",
    "selected.csv",
    "selected.md",
)


def figure_dir(kind: str) -> str:
    """``figures/<kind>`` relative to the report directory."""
    if kind not in FIGURE_KINDS:
        raise KeyError(f"unknown figure kind {kind!r}; known: {', '.join(FIGURE_KINDS)}")
    return f"figures/{kind}"


def figure_path(
    kind: str, benchmark: str, scenario: str, ext: str, method: str | None = None
) -> str:
    """``figures/<kind>/<benchmark>__<scenario>.<ext>`` relative to the report directory; for
    the kinds in PER_METHOD_KINDS ``figures/<kind>/<benchmark>__<scenario>__<method>.<ext>``."""
    if (method is not None) != (kind in PER_METHOD_KINDS):
        need = "needs a" if kind in PER_METHOD_KINDS else "takes no"
        raise ValueError(f"figure kind {kind!r} {need} method")
    stem = f"{benchmark}__{scenario}" + (f"__{method}" if method else "")
    return f"{figure_dir(kind)}/{stem}.{ext}"


def figure_pattern(kind: str) -> str:
    """The PNG file pattern of a kind's directory (Snakemake's report declares these)."""
    stem = "{benchmark}__{scenario}" + ("__{method}" if kind in PER_METHOD_KINDS else "")
    return f"{stem}.png"


def figure_labels(kind: str) -> dict[str, str]:
    """The labels a kind's figures carry in Snakemake's report (the pattern's wildcards)."""
    labels = {"benchmark": "{benchmark}", "scenario": "{scenario}"}
    return labels | ({"method": "{method}"} if kind in PER_METHOD_KINDS else {})


def figure_kinds_for(
    methods: Iterable[str], hnet_sizes: Iterable[str] = (), tuned: bool = False
) -> list[str]:
    """The kinds drawn for one benchmark × scenario once every run of this grid has finished
    (with at least two tasks): lets a workflow list exact figure files before anything ran.

    ``compression`` needs two or more hypernetwork sizes, ``embeddings`` a run of a sized
    (hypernetwork) method other than the ``hnet_scratch`` control, ``samples`` a generative
    (replay) method, ``transfer_per_task`` such a method and ``finetune``, ``scratch`` or
    ``hnet_scratch``, and the kinds about accuracy after the last
    task a method other than ``scratch`` (whose runs learn every task alone, so only their
    diagonal means something). ``sensitivity`` needs a tuning stage (``tuned``: the study
    sweeps a method of this benchmark × scenario).
    """
    methods = set(methods)
    # hypernetwork learners: sized methods but the same-size control (no embeddings to draw)
    any_hnet = any(is_sized(m) and m not in TRANSFER_CONTROLS for m in methods)
    n_sizes = len(set(hnet_sizes)) if any_hnet else 0
    kinds = []
    for kind in FIGURE_KINDS:
        if kind == "compression":
            ok = n_sizes >= 2
        elif kind == "embeddings":
            ok = any_hnet
        elif kind == "samples":
            ok = any(is_generative(m) for m in methods)
        elif kind == "transfer_per_task":
            ok = any_hnet and bool(methods & {"finetune", *TRANSFER_CONTROLS})
        elif kind == "matrices":
            ok = bool(methods)
        elif kind == "sensitivity":
            ok = tuned
        else:
            ok = bool(methods - {"scratch"})
        if ok:
            kinds.append(kind)
    return kinds
