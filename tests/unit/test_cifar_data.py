"""Split CIFAR: the real loader on tiny real-format files, its errors, and batched augmentation.

Tiny CIFAR-10 (50 train / 20 test) and CIFAR-100 (200 / 100) pickles in torchvision's layout
come from ``tests/cifar_files.py``; the sample-count check is switched off for them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_files import FOLDER, N_TEST, N_TRAIN, write_cifar, write_cifar_archive

from hnet.data import (
    BENCHMARKS,
    Benchmark,
    TaskData,
    cifar_format,
    cifar_sources,
    load_benchmark,
    location,
)
from hnet.data.augment import ImageAugment, shift_flip
from hnet.errors import ConfigError, DataError
from hnet.methods import tuned

ARCHIVE = "cifar-10-python.tar.gz"
MEAN, STD = cifar_format.LAYOUTS["CIFAR10"].mean, cifar_format.LAYOUTS["CIFAR10"].std


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Tiny sample counts; never $HNET_DATA or ~/.cache."""
    monkeypatch.setattr(cifar_format, "EXPECTED_ROWS", None)
    monkeypatch.setattr(location, "DEFAULT_ROOT", tmp_path / "default-root")
    monkeypatch.delenv("HNET_DATA", raising=False)


@pytest.fixture
def root(tmp_path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """A data root holding tiny CIFAR-10 and CIFAR-100 in torchvision's layout."""
    return tmp_path, {n: write_cifar(tmp_path, n, seed=i) for i, n in enumerate(FOLDER)}


def load(name: str, root: Path, **data) -> Benchmark:
    return load_benchmark(name, {"dir": str(root), "download": False, **data}, seed=0)


def images(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(-1, 3, 32, 32)


# --- loading ----------------------------------------------------------------------------------


def test_specs_and_layout_match_torchvision():
    import torchvision.datasets as tvd

    for name, layout in cifar_format.LAYOUTS.items():
        cls = getattr(tvd, name)
        assert (layout.folder, layout.archive) == (cls.base_folder, cls.filename)
        assert list(layout.train) == [f for f, _ in cls.train_list]
        assert list(layout.test) == [f for f, _ in cls.test_list]
        assert (layout.meta, layout.meta_key) == (cls.meta["filename"], cls.meta["key"])
    for name in ("split_cifar10_100", "split_cifar10", "split_cifar100"):
        d = BENCHMARKS.get(name).defaults
        assert d["target"] == {"kind": "resnet32"} and d["size"] == "cifar_resnet"
        assert d["train"] == {
            "batch_size": 32,
            "lr": 1e-3,
            "epochs": 200,
            "lr_schedule": "resnet_cifar",
        }
        assert d["data"]["augment"] is True and d["data"]["normalize"] is True
        assert tuned.lookup("hnet", name, "cl1")[0] == {"beta": 0.05, "mask_heads": True}
        assert BENCHMARKS.get(name).scenarios == ("cl1", "cl2", "cl3")
    zenke = BENCHMARKS.get("split_cifar10_100_zenke").defaults
    assert zenke["target"] == {"kind": "zenke"} and zenke["size"] == "cifar_zenke"
    assert zenke["train"] == {
        "batch_size": 256,
        "lr": 1e-4,
        "adam_betas": [0.5, 0.999],
        "epochs": 80,
    }
    assert zenke["data"]["augment"] is False and zenke["data"]["normalize"] is False
    assert tuned.lookup("hnet", "split_cifar10_100_zenke", "cl1")[0]["beta"] == 0.01


def test_split_cifar10_100(root):
    path, arrays = root
    bench = load("split_cifar10_100", path)
    assert (bench.n_tasks, bench.in_dim, bench.head_size) == (6, 3072, 10)
    assert bench.in_shape == (3, 32, 32)
    assert bench.tasks[0].classes == tuple(range(10))
    for t in range(1, 6):  # CIFAR-100 classes 10(t-1).. get global ids after CIFAR-10's
        assert bench.tasks[t].classes == tuple(range(10 * t, 10 * t + 10))
    all_classes = [c for task in bench.tasks for c in task.classes]
    assert len(set(all_classes)) == len(all_classes) == 60
    c10, c100 = arrays["CIFAR10"], arrays["CIFAR100"]
    first = bench.tasks[0]
    assert first.n_train == N_TRAIN["CIFAR10"] and first.n_test == N_TEST["CIFAR10"]
    np.testing.assert_array_equal(first.x_train.numpy(), images(c10["x_train"]))
    np.testing.assert_array_equal(first.y_test.numpy(), c10["y_test"])
    task3 = bench.tasks[2]  # CIFAR-100 classes 10..19
    keep = (c100["y_train"] >= 10) & (c100["y_train"] < 20)
    np.testing.assert_array_equal(task3.x_train.numpy(), images(c100["x_train"][keep]))
    np.testing.assert_array_equal(task3.y_train.numpy(), c100["y_train"][keep] - 10)
    assert task3.augment.mean == cifar_format.LAYOUTS["CIFAR100"].mean
    for task in bench.tasks:
        assert task.x_train.dtype == torch.uint8 and task.x_train.shape[1:] == (3, 32, 32)
        assert task.y_train.dtype == torch.int64 and task.y_test.dtype == torch.int64
        assert set(task.y_train.tolist()) == set(range(10))
        x, y = task.train_batch(torch.arange(4), torch.Generator().manual_seed(0))
        assert x.dtype == torch.float32 and x.shape == (4, 3, 32, 32) and y.shape == (4,)


def test_split_cifar10_and_cifar100(root):
    path, _ = root
    c10 = load("split_cifar10", path)
    assert (c10.n_tasks, c10.head_size, c10.in_shape) == (5, 2, (3, 32, 32))
    assert [t.classes for t in c10.tasks] == [(2 * t, 2 * t + 1) for t in range(5)]
    assert sum(t.n_train for t in c10.tasks) == N_TRAIN["CIFAR10"]
    c100 = load("split_cifar100", path)
    assert (c100.n_tasks, c100.head_size) == (10, 10)
    assert c100.tasks[9].classes == tuple(range(90, 100))
    assert sum(t.n_test for t in c100.tasks) == N_TEST["CIFAR100"]
    short = load("split_cifar100", path, n_tasks=2, classes_per_task=5)
    assert [t.classes for t in short.tasks] == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    assert load("split_cifar10_100", path, n_tasks=2).n_tasks == 2
    direct = BENCHMARKS.get("split_cifar10").load({"dir": str(path)}, 0)  # defaults still apply
    assert direct.n_tasks == 5 and direct.tasks[0].augment.random
    with pytest.raises(ConfigError, match="classes_per_task"):
        load("split_cifar10", path, classes_per_task=3)
    with pytest.raises(ConfigError, match="n_tasks"):
        load("split_cifar10_100", path, n_tasks=12)


def test_settings_turn_off_augmentation_and_normalisation(root):
    path, _ = root
    plain = load("split_cifar10", path, augment=False, normalize=False)
    assert plain.tasks[0].augment is None
    x, _ = plain.tasks[0].train_batch(torch.arange(3))
    assert torch.equal(x, plain.tasks[0].x_train[:3].float() * (1 / 255))
    norm = load("split_cifar10", path, augment=False).tasks[0].augment
    assert norm == ImageAugment(MEAN, STD, pad=0, flip=False) and not norm.random


def test_archive_is_read_and_extracted(tmp_path):
    arrays = write_cifar_archive(tmp_path, "CIFAR10", seed=3)
    bench = load("split_cifar10", tmp_path)
    np.testing.assert_array_equal(
        bench.tasks[0].y_train.numpy(), arrays["y_train"][arrays["y_train"] < 2]
    )
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").exists()
    assert not list((tmp_path / "cifar-10-batches-py").glob(".*tmp"))
    (tmp_path / "cifar-10-python.tar.gz").unlink()  # the extracted folder is used next time
    assert load("split_cifar10", tmp_path).tasks[4].classes == (8, 9)


def test_hnet_data_env_and_default_root(tmp_path, monkeypatch):
    write_cifar(tmp_path / "env", "CIFAR10")
    monkeypatch.setenv("HNET_DATA", str(tmp_path / "env"))
    assert load_benchmark("split_cifar10", {"dir": None, "download": False}, 0).n_tasks == 5
    monkeypatch.delenv("HNET_DATA")
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "default-root"))):
        load_benchmark("split_cifar10", {"download": False}, 0)


# --- errors -----------------------------------------------------------------------------------


def test_missing_data_is_one_error_naming_every_place(tmp_path):
    with pytest.raises(DataError) as err:
        load("split_cifar10_100", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("CIFAR-10 and CIFAR-100 not found")
    for place in (
        tmp_path / "cifar-10-batches-py",
        tmp_path / "cifar-10-python.tar.gz",
        tmp_path / "cifar-100-python",
        tmp_path / "cifar-100-python.tar.gz",
    ):
        assert str(place) in msg
    assert "--data-dir" in msg and "HNET_DATA" in msg and "data.download=true" in msg
    assert "data_batch_1" in msg and "batches.meta" in msg


def test_one_dataset_missing_names_only_it(tmp_path):
    write_cifar(tmp_path, "CIFAR10")
    with pytest.raises(DataError, match=r"^CIFAR-100 not found") as err:
        load("split_cifar10_100", tmp_path)
    assert "cifar-10-batches-py" not in str(err.value)


def test_truncated_pickle_names_the_file(root):
    path, _ = root
    bad = path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load("split_cifar10", path)
    assert str(bad) in str(err.value) and "HNET_DATA" in str(err.value)
    write_cifar_archive(path, "CIFAR10")  # a valid archive repairs the extracted folder
    assert load("split_cifar10", path).n_tasks == 5
    assert load("split_cifar10", path).n_tasks == 5  # now from the repaired folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("data"), "expected a dict with a 'data' key"),
        (lambda e: e.pop("labels"), "no 'labels' or 'fine_labels'"),
        (lambda e: e.update(data=e["data"][:, :100]), r"expected \(n > 0, 3072\)"),
        (lambda e: e.update(data=e["data"].astype(np.int32)), "2-D uint8"),
        (lambda e: e.update(labels=e["labels"][:-1]), "images but 'labels' has shape"),
        (lambda e: e.update(labels=[10] * len(e["labels"])), r"labels outside 0\.\.9"),
    ],
)
def test_bad_content_names_the_file(root, change, message):
    import pickle

    from cifar_files import py2_pickle

    path, _ = root
    bad = path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(bad.read_bytes(), encoding="latin1")
    change(entry)
    bad.write_bytes(py2_pickle({k.encode(): v for k, v in entry.items()}))
    with pytest.raises(DataError, match=message) as err:
        load("split_cifar10", path)
    assert str(bad) in str(err.value)


def test_incomplete_folder_meta_counts_and_unsafe_pickles(root, monkeypatch):
    import pickle

    path, _ = root
    folder = path / "cifar-100-python"
    meta = folder / "meta"
    meta.write_bytes(pickle.dumps({"fine_label_names": ["x"] * 3}, protocol=2))
    with pytest.raises(DataError, match=f"{re.escape(str(meta))}: expected 'fine_label_names'"):
        load("split_cifar100", path)
    meta.write_bytes(pickle.dumps(print, protocol=2))  # a global no CIFAR file uses
    with pytest.raises(DataError, match=r"meta: refers to .*print, which no CIFAR file"):
        load("split_cifar100", path)
    meta.unlink()
    with pytest.raises(DataError, match="incomplete, missing meta"):
        load("split_cifar100", path)
    monkeypatch.setattr(cifar_format, "EXPECTED_ROWS", {"train": 50000, "test": 10000})
    with pytest.raises(DataError, match="train files hold 50 images, expected 50000"):
        load("split_cifar10", path)


def test_download_failure_is_wrapped(tmp_path, monkeypatch):
    def offline(layout, directory):
        raise RuntimeError("Error downloading cifar-10-python.tar.gz:\nURLError no network")

    monkeypatch.setattr(cifar_sources, "fetch_archive", offline)
    with pytest.raises(DataError, match=r"Download of CIFAR-10 into .* failed: Error") as err:
        load_benchmark("split_cifar10", {"dir": str(tmp_path), "download": True}, seed=0)
    assert "\n" not in str(err.value) and "data.download=true" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp dir left behind


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below ``directory``: bytes, mtime and inode (a rewrite changes them)."""
    return {
        p.relative_to(directory).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_download_replaces_only_the_broken_file(tmp_path, monkeypatch, capsys):
    arrays = write_cifar(tmp_path, "CIFAR10")
    folder = tmp_path / "cifar-10-batches-py"
    bad = folder / "data_batch_2"
    truncated = bad.read_bytes()[:3000]
    bad.write_bytes(truncated)
    good = {k: v for k, v in snapshot(folder).items() if k != bad.name}

    def fake_fetch(layout, directory):  # the official archive, as the server would send it
        write_cifar_archive(directory, layout.name)
        return directory / layout.archive

    monkeypatch.setattr(cifar_sources, "fetch_archive", fake_fetch)
    bench = load("split_cifar10", tmp_path, download=True)
    assert bench.n_tasks == 5
    after = snapshot(folder)
    assert {k: after[k] for k in good} == good  # same bytes, mtime and inode
    (aside,) = folder.glob("data_batch_2.broken-*")
    assert aside.read_bytes() == truncated  # moved aside, never deleted
    assert set(after) == {*good, bad.name, aside.name}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py", ARCHIVE]
    err = capsys.readouterr().err
    assert f"{bad} was broken; moved it aside to {aside.name}" in err
    x = torch.cat([t.x_train for t in bench.tasks]).numpy()
    assert sorted(map(bytes, x)) == sorted(map(bytes, images(arrays["x_train"])))


def test_unreadable_folder_is_one_paragraph(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-batches-py").mkdir()
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "cifar-10-batches-py")):
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(DataError) as err:
        load("split_cifar10", tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"Cannot read the data directory {tmp_path / 'cifar-10-batches-py'} ")
    assert "\n" not in msg and "chmod u+rx" in msg


# --- augmentation -----------------------------------------------------------------------------


@pytest.fixture
def task(root) -> TaskData:
    return load("split_cifar10_100", root[0]).tasks[0]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def normalized(x: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return (x.float() / 255 - m) / s


def test_same_generator_state_same_batch_other_seed_other_crops(task):
    idx = torch.arange(16)
    a, ya = task.train_batch(idx, gen(1))
    b, yb = task.train_batch(idx, gen(1))
    assert torch.equal(a, b) and torch.equal(ya, yb) and torch.equal(ya, task.y_train[idx])
    c, _ = task.train_batch(idx, gen(2))
    assert not torch.equal(a, c)
    g = gen(1)
    task.train_batch(idx, g)
    assert not torch.equal(task.train_batch(idx, g)[0], a)  # the generator advances


def test_crop_and_flip_match_reference(task):
    aug = task.augment
    rows = task.x_train[:32]
    offsets, flips = aug.draw(32, gen(5))
    assert offsets.min() >= 0 and offsets.max() <= 8 and 0 < flips.sum() < 32
    out = aug.crop_flip(rows, gen(5))
    assert out.shape == rows.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(rows, (4, 4, 4, 4))  # zeros, like RandomCrop(padding=4)
    for i in range(32):
        dy, dx = offsets[i].tolist()
        ref = padded[i, :, dy : dy + 32, dx : dx + 32]
        assert torch.equal(out[i], torch.flip(ref, dims=[-1]) if flips[i] else ref)
    x, _ = task.train_batch(torch.arange(32), gen(5))
    assert torch.allclose(x, normalized(out), atol=1e-6)


def test_flip_only_is_a_flip_and_crop_pads_with_zeros(task):
    rows = task.x_train[:16]
    flip_only = ImageAugment(flip=True)
    out = flip_only.crop_flip(rows, gen(0))
    _, flips = flip_only.draw(16, gen(0))
    assert torch.equal(out[flips], torch.flip(rows[flips], dims=[-1]))
    assert torch.equal(out[~flips], rows[~flips])
    corner = shift_flip(
        rows, torch.zeros(16, 2, dtype=torch.long), torch.zeros(16, dtype=torch.bool), 4
    )
    assert corner[:, :, :4].eq(0).all() and corner[:, :, :, :4].eq(0).all()
    assert torch.equal(corner[:, :, 4:, 4:], rows[:, :, :28, :28])  # shifted by the padding
    shifted = shift_flip(rows, torch.full((16, 2), 8), torch.zeros(16, dtype=torch.bool), 4)
    assert shifted[:, :, -4:].eq(0).all() and torch.equal(
        shifted[:, :, :28, :28], rows[:, :, 4:, 4:]
    )
    x = ImageAugment(MEAN, STD, pad=4).normalize(corner.float() / 255)
    for c in range(3):  # padding is 0 before normalisation: -mean/std after it
        assert torch.allclose(x[:, c, :4], torch.tensor(-MEAN[c] / STD[c]))


def test_test_batches_are_normalised_not_augmented(task):
    xs, ys = zip(*task.test_batches(7), strict=True)
    assert [len(y) for y in ys] == [7, 7, 6]
    assert torch.allclose(torch.cat(xs), normalized(task.x_test), atol=1e-6)
    assert torch.allclose(task.inputs(task.x_train[:5]), normalized(task.x_train[:5]), atol=1e-6)
    for c in range(3):  # the per-channel constants, checked on a constant image
        const = torch.full((1, 3, 32, 32), 128, dtype=torch.uint8)
        assert torch.allclose(
            task.inputs(const)[0, c], torch.tensor((128 / 255 - MEAN[c]) / STD[c])
        )


def test_without_augment_the_generator_is_untouched(root):
    task = load("split_cifar10", root[0], augment=False, normalize=False).tasks[0]
    g = gen(0)
    state = g.get_state()
    task.train_batch(torch.arange(4), g)
    assert torch.equal(g.get_state(), state)


def test_benchmark_to_keeps_augment_and_in_shape(root):
    bench = load("split_cifar10_100", root[0], n_tasks=2)
    moved = bench.to("cpu")
    assert moved.in_shape == (3, 32, 32) and moved.tasks[1].augment == bench.tasks[1].augment
    assert moved.tasks[1].classes == bench.tasks[1].classes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_batch_equals_cpu_batch(root):
    bench = load("split_cifar10_100", root[0], n_tasks=2)
    gpu = bench.to("cuda")
    idx = torch.arange(32)
    for t in range(2):
        cpu_x, cpu_y = bench.tasks[t].train_batch(idx, gen(7))
        gpu_x, gpu_y = gpu.tasks[t].train_batch(idx.cuda(), gen(7))
        assert gpu_x.device.type == "cuda"
        assert torch.allclose(gpu_x.cpu(), cpu_x, atol=1e-6) and torch.equal(gpu_y.cpu(), cpu_y)
    with pytest.raises(ValueError, match="CPU generator"):
        gpu.tasks[0].train_batch(idx.cuda(), torch.Generator(device="cuda"))
