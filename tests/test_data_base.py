"""Tests for the dataset container, errors, cache directory and pickle-free npz format."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

import linksim.data as data
from linksim.data import DATASETS, DataUnavailableError, ImageDataset, cache_dir
from linksim.data.cache import (
    ChecksumError,
    atomic_write,
    check_digest,
    load_converted,
    save_converted,
    sha256_file,
)


def _dataset(n=4):
    images = torch.arange(n * 2 * 2, dtype=torch.uint8).reshape(n, 1, 2, 2) * 17  # 0, 17, ..., 255
    return ImageDataset(images, torch.arange(n, dtype=torch.int64) % 2, ("a", "b"), "toy", "unit test")


def test_image_dataset_len_float_subset():
    ds = _dataset()
    assert len(ds) == 4
    f = ds.float()
    assert f.dtype == torch.float32 and f.shape == (4, 1, 2, 2)
    assert torch.equal(f, ds.images.to(torch.float32) / 255)
    assert f.min().item() == 0.0 and f.max().item() == 1.0
    sub = ds.subset(3)
    assert len(sub) == 3 and torch.equal(sub.images, ds.images[:3]) and torch.equal(sub.labels, ds.labels[:3])
    assert (sub.classes, sub.name, sub.source) == (ds.classes, ds.name, ds.source)
    with pytest.raises(ValueError, match="subset size 5"):
        ds.subset(5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64), "uint8"),
        (torch.zeros(2, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), "uint8"),
        (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32), "int64"),
        (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), "int64"),
        (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 2]), r"\[0, 2\)"),
    ],
)
def test_image_dataset_rejects_bad_tensors(images, labels, match):
    with pytest.raises(ValueError, match=match):
        ImageDataset(images, labels, ("a", "b"), "toy", "unit test")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LINKSIM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "linksim" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "linksim" / "data"
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert not (tmp_path / "env").exists()  # resolving the path creates nothing


def test_atomic_write_replaces_or_keeps_old_content(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write(target, lambda f: f.write(b"first"))
    assert target.read_bytes() == b"first"

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # temp file removed


def test_digests(tmp_path):
    f = tmp_path / "blob"
    f.write_bytes(b"hello")
    expected = hashlib.sha256(b"hello").hexdigest()
    assert sha256_file(f) == expected
    check_digest(f, expected.upper(), "blob")
    check_digest(b"hello", hashlib.md5(b"hello").hexdigest(), "blob", "md5")
    with pytest.raises(ChecksumError, match=r"blob: sha256 is .* expected the pinned 0{64}"):
        check_digest(f, "0" * 64, "blob")


def test_converted_npz_round_trip(tmp_path):
    path = tmp_path / "toy.npz"
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8), np.array([0, 1, 2, 1, 0], dtype=np.int64))
    test = (rng.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8), np.array([2, 2], dtype=np.int64))
    save_converted(path, {"train": train, "test": test}, ("x", "y", "z"), "toy source")
    with np.load(path, allow_pickle=False) as z:  # nothing pickled inside
        assert sorted(z.files) == ["classes", "source", "test_images", "test_labels", "train_images", "train_labels"]
    ds = load_converted(path, "test", "toy")
    assert np.array_equal(ds.images.numpy(), test[0]) and np.array_equal(ds.labels.numpy(), test[1])
    assert ds.classes == ("x", "y", "z") and ds.source == "toy source" and ds.name == "toy"
    with pytest.raises(ValueError, match="no 'val' split"):
        load_converted(path, "val", "toy")


def test_converted_npz_refuses_object_arrays(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, train_images=np.array([object()], dtype=object), train_labels=np.zeros(1, np.int64),
             classes=np.array(["a"]), source=np.array("evil"))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_converted(path, "train", "evil")


def test_data_unavailable_error_lists_sources_and_hint():
    err = DataUnavailableError("Toy", [("cache /c/toy.npz", "not present"), ("mirror m", "timed out")],
                               "put toy.npz in /c")
    text = str(err)
    assert isinstance(err, RuntimeError)
    assert "cache /c/toy.npz: not present" in text and "mirror m: timed out" in text
    assert "put toy.npz in /c" in text and err.attempts[1] == ("mirror m", "timed out")


def test_registry():
    assert DATASETS == {"mnist": data.load_mnist, "cifar10": data.load_cifar10}
    assert set(data.__all__) <= set(dir(data))


def test_sample_draws_across_a_class_sorted_dataset():
    import torch

    from linksim.data.base import ImageDataset

    labels = torch.arange(10).repeat_interleave(100)  # sorted by class, like an image folder
    ds = ImageDataset(torch.zeros(1000, 1, 2, 2, dtype=torch.uint8), labels, tuple("abcdefghij"), "t", "s")
    picked = ds.sample(200)
    assert len(picked) == 200 and len(set(picked.labels.tolist())) == 10
    assert torch.equal(picked.labels, ds.sample(200).labels)  # deterministic
    assert set(ds.subset(200).labels.tolist()) == {0, 1}  # why subset() is not enough
