"""Test options: slow and cluster tests are skipped unless asked for."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption("--runcluster", action="store_true", help="also run tests marked cluster")


def pytest_collection_modifyitems(config, items):
    for marker, option in (("slow", "--runslow"), ("cluster", "--runcluster")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"{marker} test: run with {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
