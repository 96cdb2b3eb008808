"""Sweep axes: config keys with a list of values, per method (and optionally per benchmark).

A study tunes a method by listing values of any of its config keys::

    sweeps:
      methods:     {hnet: {hnet.beta: [0.001, 0.01, 0.1]}, ewc: {ewc.lambda: [1, 10, 100]}}
      benchmarks:  {permuted_mnist_100: {ewc: {ewc.lambda: [10, 100, 1000]}}}

A benchmark's entry overrides the method's entry key by key. Several keys of one method form
their product. One combination of values is a *point*; the points keep the listed order (the
first key varies slowest), which is what breaks ties when a value is selected
(:mod:`hnet.study.select`).

Torch-free: the Snakefile checks sweeps while it parses, against the defaults that the catalog
snapshots (:mod:`hnet.study.catalog`), so an unknown key, a value of the wrong type or a key the
method does not have fails before any job, with a message naming the key and the method. The
type rule is the one of ``--set`` (:func:`hnet.config.check_type`).

A point has a readable run directory name: ``key=value`` pairs joined by ``,``, where a key of
the method's own section drops the section (``beta=0.01`` under ``hnet/``, ``train.lr=0.001``),
so ``…/hnet/official/beta=0.01/seed0``. The name is a function of the value alone, so adding a
value to a sweep adds directories and leaves the others where they are.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from typing import Any

from hnet.errors import ConfigError, StudyError
from hnet.models.sizes import ARCH_KEYS
from hnet.study import catalog

#: one point: ((dotted key, canonical JSON value), ...) in the sweep's key order
Point = tuple[tuple[str, str], ...]

SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.+-]+$")  # what a value may become in a directory name
# Keys that describe the machine, not the experiment (hnet.config.ENV_KEYS): nothing to tune.
MACHINE_KEYS = ("data.dir", "data.download")


def raw_sweep(config: dict[str, Any], benchmark: str, method: str) -> dict[str, tuple[list, str]]:
    """key → (values, where they were given) for one benchmark and method: ``methods.<m>``,
    overridden key by key by ``benchmarks.<b>.<m>``."""
    sw = config.get("sweeps") or {}
    out = {
        k: (v, f"sweeps.methods.{method}.{k}")
        for k, v in (sw.get("methods") or {}).get(method, {}).items()
    }
    per_bench = ((sw.get("benchmarks") or {}).get(benchmark) or {}).get(method, {})
    where = f"sweeps.benchmarks.{benchmark}.{method}"
    out.update({k: (v, f"{where}.{k}") for k, v in per_bench.items()})
    return out


def is_swept(config: dict[str, Any], benchmark: str, method: str) -> bool:
    return bool(raw_sweep(config, benchmark, method))


def any_sweeps(config: dict[str, Any]) -> bool:
    sw = config.get("sweeps") or {}
    return any(sw.get("methods") or {}) or any(
        m for per in (sw.get("benchmarks") or {}).values() for m in (per or {}).values()
    )


def default_of(benchmark: str, method: str, key: str, where: str, action: str = "sweep") -> Any:
    """The default of ``key`` in a (benchmark, method) job config, from the catalog; a
    StudyError naming the key and the method when the job config has no such key. ``action``
    is ``sweep`` (sweeps) or ``set`` (hparams, which may also set the machine keys)."""
    from hnet.config import DERIVED_KEYS

    cat = catalog.load()
    section, _, sub = key.partition(".")
    methods = cat["methods"]
    home = "sweeps" if action == "sweep" else "hparams"
    if key in MACHINE_KEYS and action == "sweep":
        raise StudyError(
            f"study config: {where}: {key} says where the data is, not how to train; it cannot "
            "be swept."
        )
    if key in DERIVED_KEYS:
        raise StudyError(
            f"study config: {where}: {key} is derived from train.epochs and the task sizes and "
            f"cannot be {action}; {action} train.epochs, or train.iters with train.epochs: 0."
        )
    if section == "buffer":
        return _buffer_default(benchmark, method, key, where, action)
    if section == method:
        hparams = methods[method]["hparams"]
        if sub not in hparams:
            raise _unknown(where, key, [f"{method}.{k}" for k in hparams], method, "", action)
        return hparams[sub]
    if section in methods:
        raise StudyError(
            f"study config: {where}: method {method!r} has no {section!r} section, so it cannot "
            f"{action} {key}; {action} it under {home}.methods.{section}."
        )
    if section == "hnet_arch":
        if not methods[method]["sized"]:
            raise StudyError(
                f"study config: {where}: method {method!r} has no hypernetwork, so it has no "
                f"{key}; {action} hnet_arch.* under {home}.methods.<a hypernetwork method>."
            )
        if sub not in ARCH_KEYS:
            known = [f"hnet_arch.{k}" for k in ARCH_KEYS]
            raise _unknown(where, key, known, method, "", action)
        return None  # the size's value; types are checked when check_study resolves the size
    shared = cat["benchmarks"][benchmark]["config"]
    if key not in shared:
        known = [
            k
            for k in shared
            if k not in DERIVED_KEYS and (k not in MACHINE_KEYS or action == "set")
        ]
        known += [f"{method}.{k}" for k in methods[method]["hparams"]]
        raise _unknown(where, key, known, method, benchmark, action)
    return shared[key]


def _buffer_default(benchmark: str, method: str, key: str, where: str, action: str) -> int:
    """The shared ``buffer`` section: rehearsal methods only, set (hparams) but not tuned."""
    if not catalog.is_rehearsal(method):
        raise StudyError(
            f"study config: {where}: method {method!r} stores no training samples, so it has no "
            f"{key} (only the rehearsal methods have a buffer section)."
        )
    if action == "sweep":
        raise StudyError(
            f"study config: {where}: {key} is not tuned (a larger buffer always wins on "
            "validation, so selecting it would only pick the largest); compare buffer sizes as "
            "a grid axis instead: buffer_sizes: [...] (docs/studies.md)."
        )
    if key != "buffer.size":
        raise _unknown(where, key, ["buffer.size"], method, "", action)
    return catalog.default_buffer_size(method, benchmark)


def check_value(benchmark: str, method: str, key: str, value: Any, where: str, action: str) -> Any:
    """``value`` for ``key`` of a (benchmark, method) job config, converted by the ``--set``
    type rule; a StudyError naming ``where``, the method and the expected type otherwise."""
    from hnet.config import check_type  # yaml and numpy, but no torch

    default = default_of(benchmark, method, key, where, action)
    try:
        return check_type(key, default, value)
    except ConfigError:
        raise StudyError(
            f"study config: {where} = {value!r}: {key} of method {method!r} takes a "
            f"{type(default).__name__} (default {default!r}), not a {type(value).__name__}."
        ) from None


def _unknown(
    where: str, key: str, known: list[str], method: str, bench: str = "", action: str = "sweep"
) -> StudyError:
    close = difflib.get_close_matches(key, known, n=2)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    on = f" on {bench}" if bench else ""
    what = "Sweepable keys" if action == "sweep" else "Keys"
    return StudyError(
        f"study config: {where}: {key!r} is not a config key of method {method!r}{on}.{hint} "
        f"{what}: {', '.join(sorted(known)) or '(none)'} "
        "(`hnet train -b BENCHMARK -m METHOD --print-config` shows them all)."
    )


def token(value: Any) -> str:
    """A value as it appears in a run directory name: ``0.01``, ``1e-05``, ``100.0``, ``true``,
    ``online``, ``64-64`` for a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return "-".join(token(v) for v in value) or "empty"
    return json.dumps(value, sort_keys=True)  # unsafe on purpose: rejected by SAFE_TOKEN


def canonical_values(benchmark: str, method: str, key: str, values: Any, where: str) -> list[str]:
    """The values of one swept key as canonical JSON texts (int 1 for a float key is 1.0), in
    the listed order; StudyError on a wrong type, a duplicate or a value no path can hold."""
    if not isinstance(values, list) or not values:
        raise StudyError(f"study config: {where}: give a non-empty list of values.")
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        value = check_value(benchmark, method, key, value, f"{where}[{i}]", "sweep")
        tok = token(value)
        if not SAFE_TOKEN.match(tok):
            raise StudyError(
                f"study config: {where}[{i}] = {value!r} cannot be written into a run directory "
                "name (letters, digits and . _ + - only); sweep a number, a word or a list of them."
            )
        if tok in seen:
            raise StudyError(
                f"study config: {where}[{i}] = {value!r} repeats {where}[{seen[tok]}] (the same "
                f"value of {key}); list every value once."
            )
        seen[tok] = i
        out.append(json.dumps(value, sort_keys=True))
    return out


def points(config: dict[str, Any], benchmark: str, method: str) -> list[Point]:
    """Every point of the method's sweep on ``benchmark``, in listed order ([] = not swept)."""
    sweep = raw_sweep(config, benchmark, method)
    if not sweep:
        return []
    axes = [
        [(key, v) for v in canonical_values(benchmark, method, key, values, where)]
        for key, (values, where) in sweep.items()
    ]
    return [tuple(combo) for combo in itertools.product(*axes)]


def values_of(point: Point) -> dict[str, Any]:
    """``{"hnet.beta": 0.01, ...}``: the ``--set`` overrides of a point."""
    return {key: json.loads(v) for key, v in point}


def point_dir(method: str, point: Point) -> str:
    """The run directory name of a point: ``beta=0.01`` or ``beta=0.01,train.lr=0.001``."""
    parts = []
    for key, v in point:
        section, _, sub = key.partition(".")
        parts.append(f"{sub if section == method else key}={token(json.loads(v))}")
    return ",".join(parts)


def check_sweeps(config: dict[str, Any]) -> None:
    """Names of the sweep entries: methods and benchmarks of the study (the keys and values are
    checked per benchmark × method by :func:`points`)."""
    sw = config.get("sweeps") or {}
    for m in sw.get("methods") or {}:
        if m not in config["methods"]:
            raise StudyError(
                f"study config: sweeps.methods.{m}: {m!r} is not in methods "
                f"({', '.join(config['methods'])}); add it there or drop its sweep."
            )
    for b, per in (sw.get("benchmarks") or {}).items():
        if b not in config["benchmarks"]:
            raise StudyError(
                f"study config: sweeps.benchmarks.{b}: {b!r} is not in benchmarks "
                f"({', '.join(config['benchmarks'])})."
            )
        for m in per or {}:
            if m not in config["methods"]:
                raise StudyError(
                    f"study config: sweeps.benchmarks.{b}.{m}: {m!r} is not in methods "
                    f"({', '.join(config['methods'])})."
                )
