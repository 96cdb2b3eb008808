"""The supported (method, scenario, benchmark) triples the unit tier leaves out (the same
benchmark loaders on other files, other scenarios of the same methods): each runs end to end on
tiny files, checked like the unit tier's (tests/registry_cases.py), so between the two tiers
every supported triple runs once. The same for every method with each convolutional target."""

import pytest
from registry_cases import check_conv_target, check_triple, other_conv_cases, other_triples


@pytest.mark.parametrize(("method", "scenario", "benchmark"), other_triples())
def test_every_supported_triple_runs(tmp_path, tiny_data_root, method, scenario, benchmark):
    check_triple(tmp_path, tiny_data_root, method, scenario, benchmark)


@pytest.mark.parametrize(("method", "kind"), other_conv_cases())
def test_every_method_runs_with_each_conv_target(tmp_path, tiny_data_root, method, kind):
    """The methods the unit tier runs with ResNet-32 only, with ZenkeNet."""
    check_conv_target(tmp_path, tiny_data_root, method, kind)
