"""Benchmarks: idx validation, the real torchvision loading path on tiny files, task protocols.

Tiny MNIST-format files (50 train / 20 test images) are written in the torchvision layout and in
Debian's layout, so the same code that loads the real datasets runs here in milliseconds.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hnet.data import BENCHMARKS, load_benchmark, location, mnist
from hnet.data.idx import read_idx, write_idx
from hnet.errors import ConfigError, DataError

N_TRAIN, N_TEST = 50, 20
NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images with labels 0..9, each class equally often."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        img, lab = NAMES[split]
        out[img] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        out[lab] = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    return out


def write_tiny(directory: Path, gz: bool, seed: int = 0) -> dict[str, np.ndarray]:
    arrays = tiny_arrays(seed)
    for name, arr in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), arr)
    return arrays


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Never touch the real system dirs, $HNET_DATA or ~/.cache; accept tiny sample counts."""
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": ()})
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", None)
    monkeypatch.delenv("HNET_DATA", raising=False)


@pytest.fixture
def mnist_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data root with tiny MNIST in torchvision's layout (decompressed in MNIST/raw/)."""
    return tmp_path, write_tiny(tmp_path / "MNIST" / "raw", gz=False)


# --- registry ----------------------------------------------------------------------------------


def test_registry_and_defaults():
    assert set(BENCHMARKS.names()) >= {
        "split_mnist",
        "split_fmnist",
        "permuted_mnist",
        "permuted_fmnist",
        "split_digits",
        "permuted_digits",
        "toy_regression",
    }
    for name, spec in BENCHMARKS.items():
        assert spec.name == name
        assert {"data", "target", "train", "size"} <= set(spec.defaults)
        assert "hnet" not in spec.defaults  # a method's values live in hnet/methods/tuned/
        assert isinstance(spec.defaults["data"], dict)
    assert BENCHMARKS.get("permuted_mnist").defaults["data"] == {
        "n_tasks": 10,
        "pad_to": 32,
        "check_counts": True,
    }
    assert BENCHMARKS.get("toy_regression").scenarios == ("cl1",)
    with pytest.raises(ConfigError, match="split_mnist"):
        load_benchmark("split_mnsit", {}, 0)


# --- idx files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip(tmp_path, suffix):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / f"x{suffix}", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / f"x{suffix}", "images", 2), arr)
    if suffix:
        assert gzip.decompress((tmp_path / "x.gz").read_bytes())[:4] == b"\x00\x00\x08\x03"


def test_idx_errors_name_the_file(tmp_path):
    good = tmp_path / "lab"
    write_idx(good, np.zeros(10, dtype=np.uint8))
    data = good.read_bytes()
    cases = {
        "bad": (b"\x00\x00\x09\x99" + data[4:], "bad magic"),
        "short": (data[:-3], "truncated"),
        "long": (data + b"xx", "trailing"),
        "tiny": (data[:2], "too short"),
    }
    for name, (content, msg) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=msg) as err:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataError, match=r"cut\.gz.*gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataError, match="holds labels, expected images"):
        read_idx(good, "images")
    with pytest.raises(DataError, match="holds 10 samples, expected 60000"):
        read_idx(good, "labels", 60000)


# --- MNIST-like loading through torchvision ----------------------------------------------------


def test_split_mnist_from_torchvision_layout(mnist_root):
    root, arrays = mnist_root
    bench = load_benchmark("split_mnist", {"dir": str(root)}, seed=0)
    assert (bench.n_tasks, bench.in_dim, bench.head_size) == (5, 784, 2)
    labels = arrays["train-labels-idx1-ubyte"]
    for t, task in enumerate(bench.tasks):
        assert task.classes == (2 * t, 2 * t + 1)
        assert task.x_train.dtype == torch.uint8 and task.x_train.shape == (10, 784)
        assert task.y_train.dtype == torch.int64 and set(task.y_train.tolist()) == {0, 1}
        assert task.n_test == 4 and task.perm is None
        keep = (labels // 2) == t  # the rows of this task, in file order
        expect = arrays["train-images-idx3-ubyte"][keep].reshape(-1, 784)
        np.testing.assert_array_equal(task.x_train.numpy(), expect)
        np.testing.assert_array_equal(task.y_train.numpy(), labels[keep] - 2 * t)
        x, _ = task.train_batch(torch.arange(3))
        assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
        assert torch.allclose(x, task.x_train[:3].float() / 255)


def test_fmnist_from_debian_dir_is_decompressed_into_torchvision_layout(tmp_path, monkeypatch):
    system = tmp_path / "usr-share" / "fashion-mnist"
    arrays = write_tiny(system, gz=True, seed=1)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    root = tmp_path / "data"
    bench = load_benchmark("split_fmnist", {"dir": str(root)}, seed=0)
    assert bench.n_tasks == 5 and bench.name == "split_fmnist"
    raw = root / "FashionMNIST" / "raw"
    for name, arr in arrays.items():
        np.testing.assert_array_equal(read_idx(raw / name), arr)
    assert not list(raw.glob(".*tmp"))  # atomic writes leave no temp files behind
    # a second load uses the decompressed copies, even with the system dir gone
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": ()})
    assert load_benchmark("split_fmnist", {"dir": str(root)}, seed=0).tasks[0].n_train == 10


def test_gz_directly_in_root_and_hnet_data_env(tmp_path, monkeypatch):
    write_tiny(tmp_path, gz=True)
    monkeypatch.setenv("HNET_DATA", str(tmp_path))
    bench = load_benchmark("split_mnist", {"dir": None}, seed=0)
    assert bench.tasks[4].classes == (8, 9)
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_permuted_mnist(mnist_root):
    root, arrays = mnist_root
    cfg = {"dir": str(root), "n_tasks": 4}
    bench = load_benchmark("permuted_mnist", cfg, seed=3)
    assert (bench.n_tasks, bench.in_dim, bench.head_size) == (4, 1024, 10)
    first = bench.tasks[0]
    assert first.perm is None and first.x_train.shape == (N_TRAIN, 1024)
    assert [t.classes for t in bench.tasks][1] == tuple(range(10, 20))
    img = first.x_train.view(N_TRAIN, 32, 32)
    assert img[:, :2].sum() == 0 and img[:, -2:].sum() == 0 and img[:, :, :2].sum() == 0
    np.testing.assert_array_equal(img[:, 2:30, 2:30].numpy(), arrays["train-images-idx3-ubyte"])
    for task in bench.tasks[1:]:  # one shared copy of the pixels, only perm differs
        assert task.x_train.data_ptr() == first.x_train.data_ptr()
        assert task.x_test.data_ptr() == first.x_test.data_ptr()
        assert sorted(task.perm.tolist()) == list(range(1024))
        idx = torch.arange(5)
        assert torch.equal(task.train_batch(idx)[0], first.train_batch(idx)[0][:, task.perm])
    perms = [t.perm for t in bench.tasks[1:]]
    assert not torch.equal(perms[0], perms[1])
    again = load_benchmark("permuted_mnist", cfg, seed=3)
    assert all(torch.equal(a, b.perm) for a, b in zip(perms, again.tasks[1:], strict=True))
    other = load_benchmark("permuted_mnist", cfg, seed=4)
    assert not torch.equal(perms[0], other.tasks[1].perm)
    longer = load_benchmark("permuted_mnist", {**cfg, "n_tasks": 6}, seed=3)
    assert torch.equal(perms[2], longer.tasks[3].perm)  # task t's perm ignores n_tasks


# --- error paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("bench", ["split_mnist", "permuted_fmnist"])
def test_missing_data_is_one_clear_error(tmp_path, bench):
    with pytest.raises(DataError) as err:
        load_benchmark(bench, {"dir": str(tmp_path), "download": False}, seed=0)
    msg = str(err.value)
    name = "FashionMNIST" if "fmnist" in bench else "MNIST"
    assert "\n" not in msg
    assert str(tmp_path / name / "raw") in msg and f"{tmp_path}/*.gz" in msg
    assert "HNET_DATA" in msg and "--data-dir" in msg and "data.download=true" in msg
    assert ("apt-get install dataset-fashion-mnist" in msg) == (name == "FashionMNIST")


def test_default_root_is_in_message(monkeypatch, tmp_path):
    monkeypatch.setattr(location, "DEFAULT_ROOT", tmp_path / "cache")
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "cache"))):
        load_benchmark("split_mnist", {}, seed=0)


def test_corrupt_raw_file_names_the_file(mnist_root):
    root, _ = mnist_root
    bad = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    truncated = bad.read_bytes()[:-100]
    bad.write_bytes(truncated)
    with pytest.raises(DataError, match="truncated") as err:
        load_benchmark("split_mnist", {"dir": str(root)}, seed=0)
    assert str(bad) in str(err.value) and "data.download=true" in str(err.value)
    write_tiny(root, gz=True)  # valid .gz files in the same root repair the torchvision cache
    assert load_benchmark("split_mnist", {"dir": str(root)}, seed=0).n_tasks == 5
    (aside,) = bad.parent.glob("train-images-idx3-ubyte.broken-*")  # moved aside, not deleted
    assert aside.read_bytes() == truncated and bad.read_bytes() != truncated


def test_bad_magic_in_system_dir(tmp_path, monkeypatch):
    system = tmp_path / "sys"
    write_tiny(system, gz=True)
    bad = system / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x07" + b"\x00" * 40))
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    with pytest.raises(DataError, match="bad magic") as err:
        load_benchmark("split_fmnist", {"dir": str(tmp_path / "d")}, seed=0)
    assert str(bad) in str(err.value)


def test_mismatched_counts_and_standard_counts(mnist_root, monkeypatch):
    root, _ = mnist_root
    raw = root / "MNIST" / "raw"
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", {"train": 60000, "test": 10000})
    with pytest.raises(DataError, match="holds 50 samples, expected 60000"):
        load_benchmark("split_mnist", {"dir": str(root)}, seed=0)
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", None)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds 20 images but .* holds 7 labels"):
        load_benchmark("split_mnist", {"dir": str(root)}, seed=0)


def test_download_failure_is_wrapped(tmp_path, monkeypatch):
    def offline(name, filename, directory):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nURLError no network")

    monkeypatch.setattr(mnist, "fetch_gz", offline)
    with pytest.raises(DataError, match=r"Download into .* failed: Error downloading") as err:
        load_benchmark("split_mnist", {"dir": str(tmp_path), "download": True}, seed=0)
    assert "\n" not in str(err.value)


def test_bad_data_settings(mnist_root):
    root, _ = mnist_root
    with pytest.raises(ConfigError, match="classes_per_task"):
        load_benchmark("split_mnist", {"dir": str(root), "classes_per_task": 3}, seed=0)
    with pytest.raises(ConfigError, match="pad_to"):
        load_benchmark("permuted_mnist", {"dir": str(root), "pad_to": 20}, seed=0)


# --- an explicit data dir is what the user asked for (issue 15) -------------------------------


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below ``directory``: bytes, mtime and inode (a rewrite changes them)."""
    return {
        p.relative_to(directory).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("given", ["data_dir", "HNET_DATA"])
def test_explicit_dir_with_broken_files_stops_and_never_uses_the_system_copy(
    tmp_path, monkeypatch, capsys, given
):
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_tiny(system, gz=True, seed=1)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    root = tmp_path / "mine"
    raw = root / "FashionMNIST" / "raw"
    write_tiny(raw, gz=False)
    bad = raw / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-7])
    before = snapshot(root)
    data = {"dir": str(root)} if given == "data_dir" else {"dir": None}
    if given == "HNET_DATA":
        monkeypatch.setenv("HNET_DATA", str(root))
    with pytest.raises(DataError) as err:
        load_benchmark("split_fmnist", data, seed=0)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("Fashion-MNIST in the data directory you chose (")
    assert f"{bad}: truncated: header (20, 28, 28) promises 15680 bytes of data, found" in msg
    assert "hnet does not silently read another copy" in msg
    assert "--set data.download=true to fetch only the broken files again" in msg
    drop = "drop --data-dir (data.dir)" if given == "data_dir" else "unset HNET_DATA"
    assert msg.endswith(f"or {drop} to use the copy found at {system}.")
    assert snapshot(root) == before  # nothing written, moved or replaced in the user's dir
    assert capsys.readouterr().err == ""


def test_broken_gz_in_explicit_dir_stops_too(tmp_path, monkeypatch):
    system = tmp_path / "sys"
    write_tiny(system, gz=True)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    root = tmp_path / "mine"
    write_tiny(root, gz=True)
    bad = root / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as err:
        load_benchmark("split_fmnist", {"dir": str(root)}, seed=0)
    assert str(bad) in str(err.value) and not (root / "FashionMNIST").exists()


def test_real_system_copy_is_offered_not_used(tmp_path):
    """With the real SYSTEM_DIRS: the message offers Debian's copy; nothing is read from it."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (REAL_FMNIST,)})
    try:
        raw = tmp_path / "FashionMNIST" / "raw"
        write_tiny(raw, gz=False)
        (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
        with pytest.raises(DataError, match="train-labels-idx1-ubyte: truncated header") as err:
            load_benchmark("split_fmnist", {"dir": str(tmp_path)}, seed=0)
        offered = f"to use the copy found at {REAL_FMNIST}." in str(err.value)
        assert offered == (REAL_FMNIST / "train-images-idx3-ubyte.gz").exists()
    finally:
        monkeypatch.undo()


def test_empty_explicit_dir_falls_back_and_says_so(tmp_path, monkeypatch, capsys):
    system = tmp_path / "sys"
    write_tiny(system, gz=True)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    root = tmp_path / "mine"
    assert load_benchmark("split_fmnist", {"dir": str(root)}, seed=0).n_tasks == 5
    raw = root / "FashionMNIST" / "raw"
    assert capsys.readouterr().err == (
        f"hnet: Fashion-MNIST: {root} holds no complete copy; using the copy in {system}, "
        f"decompressed into {raw}.\n"
    )


def test_default_root_with_broken_file_moves_it_aside_and_uses_the_system_copy(
    tmp_path, monkeypatch, capsys
):
    system = tmp_path / "sys"
    arrays = write_tiny(system, gz=True, seed=3)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (system,)})
    monkeypatch.setattr(location, "DEFAULT_ROOT", tmp_path / "cache")
    raw = tmp_path / "cache" / "FashionMNIST" / "raw"
    write_tiny(raw, gz=False, seed=3)
    bad = raw / "train-images-idx3-ubyte"
    bad.write_bytes(b"junk")
    keep = {k: v for k, v in snapshot(raw).items() if k != bad.name}
    assert load_benchmark("split_fmnist", {}, seed=0).n_tasks == 5
    after = snapshot(raw)
    assert all(after[k] == v for k, v in keep.items())  # valid files untouched
    (aside,) = raw.glob("train-images-idx3-ubyte.broken-*")
    assert aside.read_bytes() == b"junk"
    np.testing.assert_array_equal(read_idx(bad), arrays["train-images-idx3-ubyte"])
    err = capsys.readouterr().err
    assert f"using the copy in {system}" in err and f"Moved it aside to {aside.name}" in err


def test_download_replaces_only_the_broken_file(mnist_root, monkeypatch, capsys):
    root, arrays = mnist_root
    raw = root / "MNIST" / "raw"
    bad = raw / "train-labels-idx1-ubyte"
    truncated = bad.read_bytes()[:-3]
    bad.write_bytes(truncated)
    good = {k: v for k, v in snapshot(raw).items() if k != bad.name}
    fetched = []

    def fake_fetch(name, filename, directory):  # a valid file, as the mirror would send it
        fetched.append((name, filename))
        write_idx(directory / filename, arrays[filename.removesuffix(".gz")])
        return directory / filename

    monkeypatch.setattr(mnist, "fetch_gz", fake_fetch)
    bench = load_benchmark("split_mnist", {"dir": str(root), "download": True}, seed=0)
    assert bench.n_tasks == 5
    assert fetched == [("MNIST", "train-labels-idx1-ubyte.gz")]  # only the broken one
    after = snapshot(raw)
    assert {k: after[k] for k in good} == good  # same bytes, mtime and inode
    (aside,) = raw.glob("train-labels-idx1-ubyte.broken-*")
    assert aside.read_bytes() == truncated  # moved aside, never deleted
    np.testing.assert_array_equal(read_idx(bad), arrays["train-labels-idx1-ubyte"])
    assert set(after) == {*good, bad.name, aside.name}  # no temp files left behind
    err = capsys.readouterr().err
    assert f"{bad}: truncated" in err and f"Moved it aside to {aside.name}" in err
    assert f"downloaded train-labels-idx1-ubyte into {raw}" in err


def test_failed_download_leaves_the_broken_file_in_place(mnist_root, monkeypatch):
    root, _ = mnist_root
    raw = root / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"junk")
    before = snapshot(raw)

    def offline(name, filename, directory):
        raise OSError("no network")

    monkeypatch.setattr(mnist, "fetch_gz", offline)
    with pytest.raises(DataError, match=r"Download into .* failed: no network") as err:
        load_benchmark("split_mnist", {"dir": str(root), "download": True}, seed=0)
    assert snapshot(raw) == before
    msg = str(err.value)
    assert msg.startswith("MNIST in the data directory you chose (--data-dir (data.dir): ")
    assert "t10k-images-idx3-ubyte: bad magic" in msg and "data.download=true" not in msg
    assert msg.endswith(
        f"(The download that would replace them failed: Download into {root} failed: no network.)"
    )


def test_unreadable_data_dir_is_one_paragraph(tmp_path, monkeypatch):
    """In-process (tests run as root, whom chmod does not stop): the file system says no."""
    root = tmp_path / "locked"
    (root / "MNIST" / "raw").mkdir(parents=True)
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if str(self).startswith(str(root / "MNIST")):
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(DataError) as err:
        load_benchmark("split_mnist", {"dir": str(root)}, seed=0)
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.startswith("Cannot read the data directory ")
    assert f"{root / 'MNIST' / 'raw'} (Permission denied)" in msg
    assert "chmod u+rx" in msg and "--data-dir or HNET_DATA" in msg


# --- digits and toy regression -----------------------------------------------------------------


def test_split_digits():
    bench = load_benchmark("split_digits", {}, seed=0)
    assert (bench.n_tasks, bench.in_dim, bench.head_size) == (5, 64, 2)
    n_train = n_test = 0
    for t, task in enumerate(bench.tasks):
        assert task.classes == (2 * t, 2 * t + 1)
        for y, n in ((task.y_train, task.n_train), (task.y_test, task.n_test)):
            counts = torch.bincount(y, minlength=2)
            assert counts.numel() == 2 and abs(int(counts[0] - counts[1])) <= 0.1 * n
        assert 0.28 < task.n_test / (task.n_train + task.n_test) < 0.32
        x, _ = task.train_batch(torch.arange(task.n_train))
        assert x.shape == (task.n_train, 64) and x.max() <= 1.0 and x.max() > 0.9
        n_train, n_test = n_train + task.n_train, n_test + task.n_test
    assert n_train + n_test == 1797
    other = load_benchmark("split_digits", {}, seed=7)  # the test set never depends on the seed
    for a, b in zip(bench.tasks, other.tasks, strict=True):
        assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)


def test_permuted_digits():
    bench = load_benchmark("permuted_digits", {}, seed=0)
    assert (bench.n_tasks, bench.in_dim, bench.head_size) == (5, 64, 10)
    assert bench.tasks[0].perm is None
    assert bench.tasks[2].classes == tuple(range(20, 30))
    assert all(t.x_train.data_ptr() == bench.tasks[0].x_train.data_ptr() for t in bench.tasks)
    other = load_benchmark("permuted_digits", {}, seed=1)
    assert not torch.equal(bench.tasks[1].perm, other.tasks[1].perm)
    assert torch.equal(bench.tasks[1].x_test, other.tasks[1].x_test)


def test_toy_regression():
    bench = load_benchmark("toy_regression", {}, seed=0)
    assert (bench.n_tasks, bench.in_dim, bench.head_size, bench.kind) == (3, 1, 1, "regression")
    domains = [(-4, -2), (-1, 1), (2, 4)]
    for task, (lo, hi) in zip(bench.tasks, domains, strict=True):
        assert task.x_train.shape == task.y_train.shape == (20, 1)
        assert task.x_test.shape == task.y_test.shape == (100, 1)
        assert task.y_train.dtype == torch.float32
        assert lo <= task.x_train.min() and task.x_train.max() <= hi
    t2 = bench.tasks[1]
    assert torch.allclose(t2.y_test, 2 * t2.x_test**2 - 1)
    residual = t2.y_train - (2 * t2.x_train**2 - 1)
    assert 0 < residual.abs().max() < 0.3
    same = load_benchmark("toy_regression", {}, seed=0)
    assert torch.equal(same.tasks[0].x_train, bench.tasks[0].x_train)
    assert torch.equal(same.tasks[0].y_train, bench.tasks[0].y_train)
    other = load_benchmark("toy_regression", {"n_train": 5}, seed=1)
    assert other.tasks[0].n_train == 5
    assert not torch.equal(other.tasks[0].x_train, bench.tasks[0].x_train[:5])


# --- the real Fashion-MNIST (Debian's dataset-fashion-mnist), when installed --------------------


@pytest.mark.skipif(
    not (REAL_FMNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="dataset-fashion-mnist is not installed",
)
def test_real_split_fmnist(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": (REAL_FMNIST,)})
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", {"train": 60000, "test": 10000})
    bench = load_benchmark("split_fmnist", {"dir": str(tmp_path)}, seed=0)
    assert bench.n_tasks == 5
    assert bench.tasks[0].n_train == 12000 and bench.tasks[0].n_test == 2000


def test_digits_csv_reader_matches_sklearn_load_digits():
    """The direct CSV read (no sklearn import per job) gives exactly load_digits' data."""
    from sklearn.datasets import load_digits

    from hnet.data.digits import read_sklearn_digits

    images, labels = read_sklearn_digits()
    ref = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, ref.images.astype(np.uint8))
    np.testing.assert_array_equal(labels, ref.target)
