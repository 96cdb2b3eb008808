"""Job configuration: one nested dict, resolved from layered defaults.

    global defaults < the benchmark's settings < the method's defaults
                    < the method's tuned values for this benchmark (and scenario) < --set

Every value's layer is recorded (:func:`resolve_with_sources`), so ``--print-config`` can say
where it came from.

The resolved dict is what a job records next to its metrics, so it must be complete: every key
the training code reads exists in it. ``--set section.key=value`` may only change keys that exist
(so typos fail loudly); values are parsed as YAML and must match the default's type.
Nothing here imports torch: study workflows validate configs cheaply.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import math
from typing import Any

import yaml

from hnet.errors import ConfigError
from hnet.rng import MAX_SEED
from hnet.scenarios import SCENARIOS

GLOBAL_DEFAULTS: dict[str, Any] = {
    "benchmark": None,
    "scenario": "cl1",
    "method": "hnet",
    "size": "official",  # hypernetwork size preset, or cr<ratio>; see hnet.models.sizes
    "seed": 0,
    "device": "auto",  # auto = CUDA when available, else CPU
    "threads": 0,  # torch CPU threads; 0 = the cores this process may use (affinity, SLURM, OMP)
    # val_fraction: share of each task's training data held out for validation (0 = none)
    "data": {"dir": None, "download": True, "val_fraction": 0.0},
    "target": {"kind": "mlp", "hidden": [100, 100], "activation": "relu"},
    "train": {
        "iters": 1000,  # optimizer steps per task (when epochs = 0)
        "epochs": 0,  # > 0: steps per task = ceil(task's training set / batch_size) · epochs
        "iters_per_task": None,  # derived (never set): the steps of every task when epochs > 0
        "batch_size": 128,
        "lr": 1e-3,
        "lr_schedule": "none",  # none | resnet_cifar (see hnet.methods.common.schedule)
        "adam_betas": [0.9, 0.999],
        "bn_per_task": False,  # baselines: one set of BatchNorm statistics per task (CL1)
        "eval_batch_size": 2000,
        "log_every": 50,  # steps between logged training losses
    },
    "hnet_arch": {},  # overrides of the resolved size preset (chunk_size, hidden, ...)
}

# The ``buffer`` section, present only in the configs of rehearsal methods (Method.rehearsal), so
# that a buffer-size sweep axis multiplies only them and other methods' run identities ignore it.
REHEARSAL_DEFAULTS: dict[str, Any] = {
    "size": 1000,  # stored training samples over all tasks (a fixed budget, Mammoth's buffer_size)
}


# Keys that describe the machine, not the experiment: they are not part of a run's identity, so
# a run moved to another device, thread count or data copy is the same run (resumes, one MLflow
# run). The job's resume check and the MLflow run key both use this one definition.
ENV_KEYS = ("device", "threads", "data.dir", "data.download")
# Keys added after results existed, with the value that reproduces the results made before them:
# at that value they are left out of a run's identity, so those runs keep their identity (they
# resume, are not rerun, and stay one MLflow run). ``train.iters_per_task`` is derived from other
# keys, never an input.
NEUTRAL_KEYS: dict[str, Any] = {
    "data.val_fraction": 0.0,
    "data.check_counts": True,
    "train.epochs": 0,
    "train.iters_per_task": None,
    "train.lr_schedule": "none",
    "train.bn_per_task": False,
}
# Keys computed from the rest of the config when it is resolved; `--set` cannot change them.
DERIVED_KEYS = ("train.iters_per_task",)


def _pop(tree: dict[str, Any], dotted: str) -> Any:
    *parents, last = dotted.split(".")
    node: Any = tree
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    return node.pop(last, None) if isinstance(node, dict) else None


def identity_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` without the keys that describe the machine rather than the experiment, and
    without :data:`NEUTRAL_KEYS` at their neutral value."""
    out = json.loads(json.dumps(cfg))
    for dotted in ENV_KEYS:
        _pop(out, dotted)
    for dotted, neutral in NEUTRAL_KEYS.items():
        value = _pop(out, dotted)
        if value is not None and value != neutral:
            *parents, last = dotted.split(".")
            node = out
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value
    return out


def run_key(cfg: dict[str, Any]) -> str:
    """Same experiment config → same key on any machine (16 hex digits of a sha256)."""
    text = json.dumps(identity_config(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def deep_merge(base: dict, extra: dict) -> dict:
    """Recursively merge ``extra`` into a copy of ``base`` (extra wins; dicts merge)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", "hnet.beta=0"]`` → ``{"train.lr": 0.0001, "hnet.beta": 0}``."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not of the form key=value (e.g. train.lr=1e-4).")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: cannot parse value {raw!r} ({e}).") from None
        if isinstance(value, str):  # YAML reads 1e-4 as a string; numbers should be numbers
            with contextlib.suppress(ValueError):
                value = float(value)
        out[key.strip()] = value
    return out


def check_type(key: str, old: Any, new: Any) -> Any:
    """``new`` for a key whose default is ``old``, if the types agree (an int where a float is
    expected becomes that float, an integral float where an int is expected that int); else a
    ConfigError. The one type rule of overrides: ``--set`` and study sweeps apply it."""
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise ConfigError(f"--set {key}={new!r}: expected true or false.")
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if isinstance(old, int) and isinstance(new, float) and new.is_integer():
        return int(new)
    if type(old) is not type(new):
        raise ConfigError(
            f"--set {key}={new!r}: expected a {type(old).__name__} like the default {old!r}, "
            f"got a {type(new).__name__}."
        )
    return new


def apply_overrides(
    cfg: dict, overrides: dict[str, Any], open_sections: tuple[str, ...] = ()
) -> dict:
    """Set dotted keys; a key must already exist unless its section is in ``open_sections``."""
    cfg = copy.deepcopy(cfg)
    for key, value in overrides.items():
        parts = key.split(".")
        node = cfg
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth])
            if not isinstance(node, dict) or (part not in node and parts[0] not in open_sections):
                options = sorted(node) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, options, n=2)
                hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise ConfigError(
                    f"Unknown config key {key!r}: {where or 'the top level'} has no {part!r}."
                    f"{hint} Valid keys there: {', '.join(options) or '(none)'}. "
                    f"`hnet train ... --print-config` shows the whole resolved config."
                )
            if last:
                node[part] = check_type(key, node.get(part), value)
            else:
                node = node[part]
    return cfg


def leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` → ``{"train.lr": 1e-3}`` (empty dicts are leaves)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Layers:
    """Merges config layers in order and remembers which layer set each leaf."""

    def __init__(self) -> None:
        self.cfg: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def add(self, extra: dict[str, Any], source: str) -> None:
        self.cfg = deep_merge(self.cfg, extra)
        self.sources.update(dict.fromkeys(leaves(extra), source))


def resolve_with_sources(
    benchmark: str,
    method: str,
    scenario: str = "cl1",
    seed: int = 0,
    size: str | None = None,
    overrides: dict[str, Any] | None = None,
    **top: Any,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The complete job config and, per dotted key, the layer its value came from. Raises
    :class:`ConfigError` naming the offending key."""
    from hnet.data import BENCHMARKS
    from hnet.methods import METHODS, tuned

    spec = BENCHMARKS.get(benchmark)
    mcls = METHODS.get(method)
    layers = Layers()
    layers.add(GLOBAL_DEFAULTS, "default")
    layers.add({k: v for k, v in spec.defaults.items() if k != "size"}, f"benchmark {benchmark}")
    cell = {"benchmark": benchmark, "method": method, "scenario": scenario, "seed": seed}
    layers.add({**cell, "size": size or "official"}, "job")
    layers.add({"default_size": spec.defaults.get("size", "full")}, f"benchmark {benchmark}")
    layers.add({method: mcls.defaults}, f"{method} default")
    if mcls.rehearsal:
        layers.add({"buffer": REHEARSAL_DEFAULTS}, "default")
        for values, source in tuned.matches("buffer", benchmark, scenario, method):
            layers.add({"buffer": {**values, "source": source}}, f"tuned: {source}")
    elif any(k.split(".")[0] == "buffer" for k in overrides or {}):
        key = next(k for k in overrides or {} if k.split(".")[0] == "buffer")
        raise ConfigError(
            f"{key}: method {method!r} stores no training samples, so it has no buffer section "
            f"(only the rehearsal methods do: {', '.join(rehearsal_methods())})."
        )
    for values, source in tuned.matches(mcls.tuned_as or method, benchmark, scenario):
        # one layer per entry: each value names the entry it came from (later entries win)
        layers.add({method: {**values, "source": source}}, f"tuned: {source}")
    layers.add({k: v for k, v in top.items() if v is not None}, "command line")
    for key in DERIVED_KEYS:
        if key in (overrides or {}):
            raise ConfigError(
                f"{key} is derived from train.epochs and the task sizes and cannot be set; "
                "set train.epochs, or train.iters with train.epochs=0."
            )
    cfg = apply_overrides(layers.cfg, overrides or {}, open_sections=("hnet_arch",))
    layers.sources.update(dict.fromkeys(overrides or {}, "--set"))
    validate(cfg, spec, mcls)
    if derive_iters(cfg, spec):
        layers.sources["train.iters_per_task"] = "derived: ceil(task size / batch_size) · epochs"
    return cfg, layers.sources


def rehearsal_methods() -> list[str]:
    """The methods with a rehearsal buffer (``Method.rehearsal``): those with ``buffer.size``."""
    from hnet.methods import METHODS

    return [name for name, cls in METHODS.items() if cls.rehearsal]


def derive_iters(cfg: dict[str, Any], spec: Any) -> bool:
    """Fill ``train.iters_per_task`` when ``train.epochs`` > 0: every task gets
    ``ceil(n_train / batch_size) · epochs`` steps, from the sizes the benchmark declares (no
    data files are read, so ``--print-config`` shows them). Returns whether it did."""
    train = cfg["train"]
    if not train["epochs"]:
        train["iters_per_task"] = None
        return False
    sizes = spec.task_sizes(cfg["data"]) if spec.task_sizes is not None else None
    if sizes is None:
        raise ConfigError(
            f"train.epochs={train['epochs']}: benchmark {spec.name!r} does not declare its task "
            "sizes, so epochs cannot be turned into steps. Use train.iters (steps per task) "
            "with train.epochs=0."
        )
    bs = train["batch_size"]
    train["iters_per_task"] = [math.ceil(n / bs) * train["epochs"] for n in sizes]
    return True


def resolve(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The complete job config (see :func:`resolve_with_sources`)."""
    return resolve_with_sources(*args, **kwargs)[0]


def format_with_sources(cfg: dict[str, Any], sources: dict[str, str]) -> str:
    """The config as YAML, each value followed by a comment naming its source."""
    lines: list[str] = []

    def walk(node: dict[str, Any], prefix: str, depth: int) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                lines.append(f"{'  ' * depth}{k}:")
                walk(v, f"{key}.", depth + 1)
                continue
            text = f"{'  ' * depth}{k}: {json.dumps(v)}"
            lines.append(f"{text:<40} # {sources.get(key, 'default')}")

    walk(cfg, "", 0)
    return "\n".join(lines) + "\n"


def validate(cfg: dict, spec: Any, mcls: Any) -> None:
    """Semantic checks that a schema cannot express."""
    from hnet.models.sizes import is_valid_size

    sc = cfg["scenario"]
    if sc not in SCENARIOS:
        raise ConfigError(f"Unknown scenario {sc!r}; choose one of {', '.join(SCENARIOS)}.")
    if sc not in spec.scenarios:
        raise ConfigError(
            f"Benchmark {spec.name!r} does not support scenario {sc!r} "
            f"(it supports {', '.join(spec.scenarios)})."
        )
    if sc not in mcls.scenarios:
        raise ConfigError(
            f"Method {mcls.name!r} does not support scenario {sc!r} "
            f"(it supports {', '.join(mcls.scenarios)})."
        )
    if mcls.benchmarks is not None and spec.name not in mcls.benchmarks:
        raise ConfigError(
            f"Method {mcls.name!r} does not support benchmark {spec.name!r} "
            f"(it supports {', '.join(mcls.benchmarks)})."
        )
    if not is_valid_size(cfg["size"]):
        from hnet.models.sizes import SIZES

        raise ConfigError(
            f"Unknown size {cfg['size']!r}: use 'official', a preset "
            f"({', '.join(SIZES.names())}) or a compression ratio like cr0.5."
        )
    if not isinstance(cfg["seed"], int) or not 0 <= cfg["seed"] <= MAX_SEED:
        raise ConfigError(
            f"seed must be an integer from 0 to {MAX_SEED} (what every RNG accepts), "
            f"got {cfg['seed']!r}."
        )
    if cfg["device"] not in ("auto", "cpu", "cuda") and not str(cfg["device"]).startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], got {cfg['device']!r}.")
    train = cfg["train"]
    for key in ("iters", "batch_size", "eval_batch_size", "log_every"):
        if train[key] < 1:
            raise ConfigError(f"train.{key} must be ≥ 1, got {train[key]!r}.")
    if train["lr"] <= 0:
        raise ConfigError(f"train.lr must be > 0, got {train['lr']!r}.")
    if not isinstance(train["epochs"], int) or train["epochs"] < 0:
        raise ConfigError(
            f"train.epochs must be an integer ≥ 0 (0 = use train.iters), got {train['epochs']!r}."
        )
    validate_training(cfg)
    if isinstance(cfg.get("target"), dict):  # the job builds it: refuse here what it would
        from hnet.models.target import check_target_kind

        check_target_kind(cfg["target"])
    from hnet.data.validation import check_fraction

    check_fraction(cfg["data"].get("val_fraction", 0.0))
    if mcls.rehearsal:  # the method checks what its way of filling the buffer needs
        from hnet.methods.common import budget

        budget.check_size(cfg["buffer"]["size"])
    mcls.check_config(cfg)


def validate_training(cfg: dict) -> None:
    """The learning-rate schedule and the baselines' BatchNorm option."""
    from hnet.methods.common.schedule import LR_SCHEDULES

    train = cfg["train"]
    if train["lr_schedule"] not in LR_SCHEDULES:
        raise ConfigError(
            f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
            f"got {train['lr_schedule']!r}."
        )
    betas = train["adam_betas"]
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ConfigError(f"train.adam_betas must be two numbers in [0, 1), got {betas!r}.")
    if train["bn_per_task"] and cfg["scenario"] != "cl1":
        raise ConfigError(
            "train.bn_per_task=true picks the BatchNorm statistics by task identity at test "
            f"time, which scenario {cfg['scenario']} does not give; use it in cl1 only."
        )
