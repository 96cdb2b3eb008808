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


@pytest.fixture
def tiny_mnist_root(tmp_path, monkeypatch):
    """A data root with tiny MNIST and Fashion-MNIST (60 train / 20 test images, real idx
    format) so the real loading code runs; system dirs and sample-count checks are off."""
    import numpy as np

    from hnet.data import mnist
    from hnet.data.idx import write_idx

    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": ()})
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", None)
    monkeypatch.delenv("HNET_DATA", raising=False)
    rng = np.random.default_rng(0)
    for name in ("MNIST", "FashionMNIST"):
        raw = tmp_path / name / "raw"
        for split, n in (("train", 60), ("t10k", 20)):
            write_idx(
                raw / f"{split}-images-idx3-ubyte.gz",
                rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            )
            write_idx(raw / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return tmp_path
