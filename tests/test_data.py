"""Dataset loaders read small files written in each real format through the users' code path."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_formats import write_aedat31, write_cifar_batch, write_idx, write_nmnist

import autost
from autost.data import load_dataset, make_loader
from autost.data.base import FrameCache, stratified_split

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EVENT_SAMPLES = SHARED / "event-samples"


def test_registry_lists_every_dataset() -> None:
    assert set(autost.data.list_datasets()) >= {
        "digits", "digits-events", "mnist", "nmnist", "dvsgesture", "cifar10dvs", "shd",
        "cifar10", "cifar100", "imagefolder",
    }  # fmt: skip
    with pytest.raises(autost.AutostError, match="digits"):
        load_dataset("digitz")


def test_digits_splits_are_deterministic_disjoint_and_stratified() -> None:
    parts = {s: load_dataset("digits", split=s, timesteps=3) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 1797
    x, _ = parts["train"][0]
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert torch.equal(x[0], x[2])  # direct coding repeats the image
    again = load_dataset("digits", split="val", timesteps=3)
    assert again.targets == parts["val"].targets
    for part in parts.values():
        assert len(set(part.targets)) == 10
    assert parts["train"].info.num_classes == 10 and parts["train"].info.in_channels == 1
    big = load_dataset("digits", split="test", timesteps=2, image_size=16)
    assert big[0][0].shape == (2, 1, 16, 16) and big.info.image_size == 16


def test_stratified_split_partitions_indices() -> None:
    labels = np.repeat(np.arange(5), 20)
    split = stratified_split(labels, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=1)
    joined = np.concatenate(list(split.values()))
    assert sorted(joined.tolist()) == list(range(100))
    assert np.bincount(labels[split["b"]]).tolist() == [6] * 5


def test_digits_events_frames_through_tonic(tmp_path: Path) -> None:
    ds = load_dataset("digits-events", split="train", timesteps=5, cache_dir=tmp_path)
    x, y = ds[0]
    assert x.shape == (5, 2, 8, 8) and x.sum() > 0 and 0 <= y < 10
    # ON events in the first half of the window, OFF events in the second
    assert x[:2, 1].sum() > 0 and x[-2:, 0].sum() > 0
    assert x[0, 0].sum() == 0 and x[-1, 1].sum() == 0
    cached = sorted(p for p in tmp_path.rglob("*.npy"))
    assert len(cached) == 1
    again = load_dataset("digits-events", split="train", timesteps=5, cache_dir=tmp_path)
    assert torch.equal(again[0][0], x)


def test_mnist_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    labels = np.tile(np.arange(10), 6).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress=False)
    test = load_dataset("mnist", root=tmp_path, split="test", timesteps=2)
    assert len(test) == 60
    x, y = test[7]
    assert y == 7 and torch.allclose(x[0, 0], torch.from_numpy(images[7] / 255.0).float())
    with pytest.raises(autost.AutostError, match=r"train-images-idx3-ubyte.*source=test"):
        load_dataset("mnist", root=tmp_path, split="train")
    from_test = load_dataset("mnist", root=tmp_path, split="val", source="test")
    assert len(from_test) == 10


def test_mnist_truncated_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(10, dtype=np.uint8), compress=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(autost.AutostError, match=r"t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", root=tmp_path, split="test")
    path.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(autost.AutostError, match="not an IDX file"):
        load_dataset("mnist", root=tmp_path, split="test")
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(autost.AutostError, match=r"t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", root=tmp_path, split="test")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data/mnist is absent")
def test_real_mnist_test_set() -> None:
    ds = load_dataset("mnist", root=SHARED / "mnist", split="test", timesteps=1)
    assert len(ds) == 10_000
    assert np.bincount(ds.targets).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]  # fmt: skip


def _nmnist_tree(root: Path, per_class: int = 3) -> None:
    rng = np.random.default_rng(0)
    for split in ("Train", "Test"):
        for digit in range(10):
            for k in range(per_class):
                n = 200
                t = np.sort(rng.integers(0, 300_000, n)).astype(np.uint32)
                write_nmnist(
                    root / "NMNIST" / split / str(digit) / f"{k:05d}.bin",
                    rng.integers(0, 34, n),
                    rng.integers(0, 34, n),
                    t,
                    rng.integers(0, 2, n),
                )


def test_nmnist_binary_files(tmp_path: Path) -> None:
    _nmnist_tree(tmp_path, per_class=5)  # the fewest files per digit that give val one
    train = load_dataset("nmnist", root=tmp_path, split="train", timesteps=4, cache_dir=tmp_path)
    test = load_dataset("nmnist", root=tmp_path, split="test", timesteps=4, cache=False)
    val = load_dataset("nmnist", root=tmp_path, split="val", timesteps=4, cache=False)
    assert len(test) == 50 and len(train) == 40 and len(val) == 10
    x, _ = test[0]
    assert x.shape == (4, 2, 34, 34) and x.sum() == 200


def test_nmnist_truncated_file(tmp_path: Path) -> None:
    _nmnist_tree(tmp_path, per_class=1)
    victim = tmp_path / "NMNIST" / "Test" / "0" / "00000.bin"
    victim.write_bytes(victim.read_bytes()[:-3])
    ds = load_dataset("nmnist", root=tmp_path, split="test", timesteps=4, cache=False)
    with pytest.raises(autost.AutostError, match=r"00000.bin.*multiple of 5"):
        ds[0]


def test_missing_event_folder_says_where_files_go(tmp_path: Path) -> None:
    with pytest.raises(autost.AutostError, match="Train"):
        load_dataset("nmnist", root=tmp_path)
    with pytest.raises(autost.AutostError, match=r"trials_to_train.txt"):
        load_dataset("dvsgesture", root=tmp_path)
    with pytest.raises(autost.AutostError, match="no download"):
        load_dataset("cifar10dvs")


def test_dvsgesture_aedat_recordings(tmp_path: Path) -> None:
    base = tmp_path / "DvsGesture"
    base.mkdir()
    rng = np.random.default_rng(1)
    rows = ["class,startTime_usec,endTime_usec"]
    n = 3000
    t = np.sort(rng.integers(0, 1_100_000, n)).astype(np.uint32)
    write_aedat31(
        base / "user01_fluorescent.aedat",
        rng.integers(0, 128, n),
        rng.integers(0, 128, n),
        t,
        rng.integers(0, 2, n),
    )
    for c in range(11):
        rows.append(f"{c + 1},{c * 100_000},{(c + 1) * 100_000}")
    (base / "user01_fluorescent_labels.csv").write_text("\n".join(rows) + "\n")
    (base / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (base / "trials_to_test.txt").write_text("user01_fluorescent.aedat\n")
    test = load_dataset(
        "dvsgesture",
        root=tmp_path,
        split="test",
        timesteps=4,
        image_size=32,
        cache_dir=tmp_path / "cache",
    )
    assert len(test) == 11 and test.targets == list(range(11))
    for i in (0, 5):
        x, _ = test[i]
        in_window = ((t >= i * 100_000) & (t < (i + 1) * 100_000)).sum()
        assert x.shape == (4, 2, 32, 32) and x.sum() == in_window
    (base / "user01_fluorescent.aedat").write_bytes(b"not an aedat file at all")
    fresh = load_dataset("dvsgesture", root=tmp_path, split="test", timesteps=3, cache=False)
    with pytest.raises(autost.AutostError, match=r"user01_fluorescent.aedat"):
        fresh[0]


def test_cifar_pickle_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        images = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
        write_cifar_batch(folder / f"data_batch_{i}", images, [j % 10 for j in range(20)], "labels")
    test_images = rng.integers(0, 256, size=(10, 3, 32, 32), dtype=np.uint8)
    write_cifar_batch(folder / "test_batch", test_images, list(range(10)), "labels")
    test = load_dataset("cifar10", root=tmp_path, split="test", timesteps=2)
    x, y = test[3]
    assert y == 3 and torch.allclose(x[1], torch.from_numpy(test_images[3] / 255.0).float())
    assert len(load_dataset("cifar10", root=tmp_path, split="train")) == 90
    assert len(load_dataset("cifar10", root=tmp_path, split="val")) == 10
    c100 = tmp_path / "c100" / "cifar-100-python"
    write_cifar_batch(c100 / "test", test_images, [99] * 10, "fine_labels")
    assert load_dataset("cifar100", root=tmp_path / "c100", split="test")[0][1] == 99


def test_cifar_refuses_foreign_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(autost.AutostError, match=r"test_batch.*not allowed"):
        load_dataset("cifar10", root=tmp_path, split="test")


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("cat", "dog"):
        for k in range(10):
            color = (255, 0, 0) if label == "cat" else (0, 0, 255)
            (tmp_path / label).mkdir(exist_ok=True)
            Image.new("RGB", (20, 20), color).save(tmp_path / label / f"{k}.png")
    ds = load_dataset("imagefolder", root=tmp_path, split="train", image_size=16, timesteps=2)
    assert ds.info.num_classes == 2 and len(ds) == 14
    x, y = ds[0]
    assert x.shape == (2, 3, 16, 16)
    assert x[0, 0].mean() > 0.99 if y == 0 else x[0, 2].mean() > 0.99
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(autost.AutostError, match=r"broken.png"):
        load_dataset("imagefolder", root=tmp_path, split="train", seed=3)


def test_shd_hdf5(tmp_path: Path) -> None:
    import h5py

    rng = np.random.default_rng(3)
    with h5py.File(tmp_path / "shd_test.h5", "w") as f:
        vlen_f = h5py.vlen_dtype(np.float32)
        vlen_u = h5py.vlen_dtype(np.uint16)
        times = f.create_dataset("spikes/times", (4,), dtype=vlen_f)
        units = f.create_dataset("spikes/units", (4,), dtype=vlen_u)
        for i in range(4):
            times[i] = np.sort(rng.random(50)).astype(np.float32)
            units[i] = rng.integers(0, 700, 50).astype(np.uint16)
        f.create_dataset("labels", data=np.arange(4))
    ds = load_dataset("shd", root=tmp_path, split="test", timesteps=10, cache=False)
    x, y = ds[2]
    assert x.shape == (10, 1, 28, 28) and x.sum() == 50 and y == 2


def test_cache_never_reads_a_partial_file(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, {"dataset": "demo", "T": 2})
    good = np.arange(12, dtype=np.int16).reshape(2, 1, 2, 3)
    cache.store(0, good)
    assert np.array_equal(cache.load(0), good)
    # a file cut short (as by a crash of a non-atomic writer) is treated as absent
    path = cache.path(1)
    path.write_bytes(cache.path(0).read_bytes()[:40])
    assert cache.load(1) is None
    assert np.array_equal(cache.get_or_make(1, lambda: good + 1), good + 1)

    # a writer that dies mid-way leaves no file under the final name
    def boom() -> np.ndarray:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_make(2, boom)
    assert not cache.path(2).exists()
    assert not [p for p in cache.folder.iterdir() if p.suffix == ".tmp"]


def test_cache_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FrameCache(tmp_path, {"dataset": "demo"})
    cache.store(0, np.zeros(3, dtype=np.int16))

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        cache.store(1, np.ones(3, dtype=np.int16))
    assert not cache.path(1).exists()
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not EVENT_SAMPLES.is_dir(), reason="../shared/data/event-samples is absent")
def test_real_nmnist_recording(tmp_path: Path) -> None:
    target = tmp_path / "NMNIST" / "Test" / "3"
    target.mkdir(parents=True)
    shutil.copy(EVENT_SAMPLES / "sample_nmnist.bin", target / "00001.bin")
    for split in ("Train",):
        (tmp_path / "NMNIST" / split / "3").mkdir(parents=True)
        shutil.copy(
            EVENT_SAMPLES / "sample_nmnist.bin", tmp_path / "NMNIST" / split / "3" / "a.bin"
        )
    ds = load_dataset("nmnist", root=tmp_path, split="test", timesteps=8, cache=False)
    x, y = ds[0]
    assert y == 3 and x.shape == (8, 2, 34, 34)
    assert int(x.sum()) == 4325  # every event of the recording lands in a frame
    from autost.data.events import read_nmnist

    events = read_nmnist(target / "00001.bin")
    assert len(events) == 4325 and events["t"].min() == 654 and events["t"].max() == 311_175


@pytest.mark.skipif(not EVENT_SAMPLES.is_dir(), reason="../shared/data/event-samples is absent")
def test_real_aedat4_recording(tmp_path: Path) -> None:
    from autost.data.events import read_aedat4_events

    events, (width, height) = read_aedat4_events(EVENT_SAMPLES / "sample.aedat4")
    assert len(events) > 10_000 and width <= 320 and height <= 240
    folder = tmp_path / "CIFAR10DVS"
    for name in autost.data.events.CIFAR10_CLASSES:
        (folder / name).mkdir(parents=True)
        shutil.copy(EVENT_SAMPLES / "sample.aedat4", folder / name / "0.aedat4")
    ds = load_dataset(
        "cifar10dvs",
        root=tmp_path,
        split="train",
        timesteps=4,
        image_size=64,
        cache_dir=tmp_path / "cache",
    )
    x, _ = ds[0]
    inside = ((events["x"] < 128) & (events["y"] < 128)).sum()
    assert x.shape == (4, 2, 64, 64) and int(x.sum()) == inside
    with pytest.raises(autost.AutostError, match=r"AEDAT 4.0"):
        read_aedat4_events(EVENT_SAMPLES / "sample_aedat_header.aedat")


def test_loader_is_seeded_and_batches_time_second() -> None:
    ds = load_dataset("digits", split="val", timesteps=2)
    first = [y.tolist() for _, y in make_loader(ds, 32, shuffle=True, seed=5)]
    second = [y.tolist() for _, y in make_loader(ds, 32, shuffle=True, seed=5)]
    other = [y.tolist() for _, y in make_loader(ds, 32, shuffle=True, seed=6)]
    assert first == second and first != other
    x, _ = next(iter(make_loader(ds, 8)))
    assert x.shape == (8, 2, 1, 8, 8)


def test_frames_feed_a_model() -> None:
    ds = load_dataset("digits-events", split="val", timesteps=4, cache=False)
    model = autost.create_model(
        "spikformer-2-256-dvsgesture",
        image_size=8,
        embed_dim=32,
        num_heads=2,
        timesteps=4,
        stem_pooling="0011",
    )
    x, _ = next(iter(make_loader(ds, 4)))
    assert model(x.transpose(0, 1)).shape == (4, 11)


def test_nmnist_with_too_few_files_per_digit_says_why(tmp_path: Path) -> None:
    _nmnist_tree(tmp_path, per_class=3)
    assert len(load_dataset("nmnist", root=tmp_path, split="train", cache=False)) == 30
    why = r"val split is empty: found 3 \.bin files per class.*90/10.*at least 5 \.bin files"
    with pytest.raises(autost.AutostError, match=why):
        load_dataset("nmnist", root=tmp_path, split="val", cache=False)
    # the trainer reports the loader's reason, not a bare "empty train or val split"
    config = autost.ArchConfig(
        in_channels=2, image_size=34, num_classes=10, timesteps=2, stem_pooling="0001",
        embed_dim=32, depth=1, num_heads=(2,), mlp_ratios=(2,),
    )  # fmt: skip
    with pytest.raises(autost.AutostError, match=why):
        autost.train(
            config, "nmnist", root=tmp_path, out=tmp_path / "run", epochs=1, progress=False,
            dataset_options={"cache": False},
        )  # fmt: skip


def test_dataset_options_are_parsed_and_checked() -> None:
    from autost.data import dataset_options, parse_options

    assert parse_options(["source=test", "image_size=16", "cache=false", "cache_dir=/x"]) == {
        "source": "test", "image_size": 16, "cache": False, "cache_dir": "/x",
    }  # fmt: skip
    assert "source" in dataset_options("mnist") and "root" not in dataset_options("mnist")
    with pytest.raises(autost.AutostError, match="KEY=VALUE"):
        parse_options(["source"])
    with pytest.raises(autost.AutostError, match="own argument"):
        parse_options(["root=/data"])
    with pytest.raises(autost.AutostError, match=r"no option 'sorce' \(options: .*source"):
        load_dataset("mnist", root="/nowhere", sorce="test")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data/mnist is absent")
def test_real_mnist_t10k_only_source_splits_70_15_15() -> None:
    sizes = {
        split: len(load_dataset("mnist", root=SHARED / "mnist", split=split, source="test"))
        for split in ("train", "val", "test")
    }
    assert sum(sizes.values()) == 10_000 and sizes["train"] == pytest.approx(7000, abs=10)


def test_natural_stand_in_needs_no_files_and_is_deterministic() -> None:
    from autost.data import load_dataset
    from autost.errors import AutostError

    train = load_dataset("natural", split="train", timesteps=2, image_size=16, num_classes=4)
    again = load_dataset("natural", split="train", timesteps=2, image_size=16, num_classes=4)
    val = load_dataset("natural", split="val", timesteps=2, image_size=16, num_classes=4)
    assert (len(train), len(val)) == (512, 128)
    assert train[0][0].shape == (2, 3, 16, 16) and train.info.num_classes == 4
    assert torch.equal(train[5][0], again[5][0]) and train.targets == again.targets
    assert not torch.equal(train[0][0], val[0][0])
    assert sorted(set(train.targets)) == [0, 1, 2, 3]
    with pytest.raises(AutostError, match="image_size must be an integer >= 1"):
        load_dataset("natural", image_size=0)
