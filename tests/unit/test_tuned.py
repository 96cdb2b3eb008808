"""Official and tuned hyperparameters as data (hnet/methods/tuned/*.yaml): every name, key and
type in them is real, HNET has a β for every benchmark, and --print-config names the source."""

from __future__ import annotations

import pytest

from hnet import config
from hnet.data import BENCHMARKS
from hnet.methods import METHODS, tuned
from hnet.scenarios import SCENARIOS

FILES = sorted(p.stem for p in tuned.DIR.glob("*.yaml"))


def test_every_file_belongs_to_a_method_or_a_shared_section():
    assert FILES, "no tuned/*.yaml found"
    assert set(FILES) <= set(METHODS.names()) | set(tuned.SHARED)


def defaults_of(name: str) -> dict:
    """The keys a tuned file may set: its method's hyperparameters, or the shared section's."""
    return {"buffer": config.REHEARSAL_DEFAULTS}.get(name) or METHODS.get(name).defaults


@pytest.mark.parametrize("name", FILES)
def test_entries_name_real_benchmarks_keys_and_types(name):
    defaults = defaults_of(name)
    for i, entry in enumerate(tuned.entries(name)):
        where = f"tuned/{name}.yaml entry {i}"
        shared = {"methods"} if name in tuned.SHARED else set()
        assert set(entry) <= {"benchmarks", "scenarios", "values", "source"} | shared, where
        rehearsal = {m for m, cls in METHODS.items() if cls.rehearsal}
        assert set(entry.get("methods", [])) <= rehearsal, where
        assert isinstance(entry["source"], str) and entry["source"], where
        assert set(entry["benchmarks"]) <= set(BENCHMARKS.names()), where
        assert set(entry.get("scenarios", [])) <= set(SCENARIOS), where
        for key, value in entry["values"].items():
            assert key in defaults, f"{where}: {name} has no hyperparameter {key!r}"
            default = defaults[key]
            if default is not None:  # YAML reads 1e5 as a string: types must match
                assert isinstance(value, type(default)) or (
                    isinstance(default, float) and isinstance(value, int)
                ), f"{where}: {key}={value!r} is not a {type(default).__name__}"


@pytest.mark.parametrize("bench", BENCHMARKS.names())
def test_hnet_beta_comes_from_the_tuned_file_for_every_benchmark(bench):
    values, source = tuned.lookup("hnet", bench, BENCHMARKS.get(bench).scenarios[0])
    assert "beta" in values and source, f"add {bench} to hnet/methods/tuned/hnet.yaml"
    cfg = config.resolve(bench, "hnet", BENCHMARKS.get(bench).scenarios[0])
    assert cfg["hnet"]["beta"] == values["beta"]


def test_scenario_specific_entries_win_and_online_ewc_shares_ewc_values():
    lam = {sc: config.resolve("split_digits", "ewc", sc)["ewc"]["lambda"] for sc in SCENARIOS}
    assert len(set(lam.values())) == 3
    online = config.resolve("split_digits", "online_ewc", "cl3")["online_ewc"]
    assert online["lambda"] == lam["cl3"]


def test_print_config_names_the_source_of_every_value():
    cfg, sources = config.resolve_with_sources(
        "split_digits", "ewc", "cl3", overrides={"train.lr": 0.01}, device="cpu"
    )
    assert sources["train.lr"] == "--set"
    assert sources["train.iters"] == "benchmark split_digits"
    assert sources["train.eval_batch_size"] == "default"
    assert sources["ewc.lambda"].startswith("tuned: van de Ven")
    assert sources["ewc.fisher_samples"] == "ewc default"
    assert sources["device"] == "command line"
    text = config.format_with_sources(cfg, sources)
    assert "  lr: 0.01" in text and "# --set" in text
    lines = [line for line in text.splitlines() if ":" in line and not line.endswith(":")]
    assert all("#" in line for line in lines)  # every leaf value carries its source
    import yaml

    assert yaml.safe_load(text) == cfg  # the output is valid YAML of the config itself
