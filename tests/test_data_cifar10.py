"""Tests for the CIFAR-10 loader on a tiny fake canonical tarball, batch directory and image zip (no network)."""

import hashlib
import io
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from linksim.data import DataUnavailableError, cifar10, load_cifar10

REAL_TARBALL_MD5 = cifar10.TARBALL_MD5
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "env-cache"))


@pytest.fixture
def batches():
    """name -> (pickle bytes, data uint8 [2, 3072], labels int64 [2]); 2 images per batch."""
    rng = np.random.default_rng(0)
    out = {}
    for i, name in enumerate(BATCHES):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        labels = [i % 10, (i + 3) % 10]
        blob = pickle.dumps({"batch_label": name, "labels": labels, "data": data, "filenames": ["a", "b"]}, 2)
        out[name] = (blob, data, np.array(labels, dtype=np.int64))
    return out


def _tarball(path, batches):
    with tarfile.open(path, "w:gz") as tf:
        for name, (blob, _, _) in {**batches, "batches.meta": (pickle.dumps({}), None, None)}.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return path


def _pin_tarball(monkeypatch, path):
    monkeypatch.setattr(cifar10, "TARBALL_MD5", hashlib.md5(path.read_bytes()).hexdigest())


def _expected(batches, names):
    data = np.concatenate([batches[n][1] for n in names])
    return data.reshape(-1, 3, 32, 32), np.concatenate([batches[n][2] for n in names])


def test_tarball_path_parsing_and_layout(monkeypatch, tmp_path, batches):
    tarball = _tarball(tmp_path / "cifar-10-python.tar.gz", batches)
    _pin_tarball(monkeypatch, tarball)
    train = load_cifar10("train", root=tmp_path / "cache", path=tarball)
    images, labels = _expected(batches, BATCHES[:5])
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images.numpy(), images) and np.array_equal(train.labels.numpy(), labels)
    raw = batches["data_batch_1"][1][0]  # channel-major planes, row-major pixels
    assert train.images[0, 1, 0, 0].item() == raw[1024] and train.images[0, 2, 1, 3].item() == raw[2048 + 32 + 3]
    assert train.classes == cifar10.CLASSES and train.classes[0] == "airplane" and len(train.classes) == 10
    assert train.name == "cifar10" and "canonical python tarball" in train.source
    test = load_cifar10("test", path=tmp_path)  # directory holding the tarball
    assert np.array_equal(test.images.numpy(), _expected(batches, ["test_batch"])[0])


def test_tarball_with_wrong_md5_is_rejected_before_unpickling(monkeypatch, tmp_path, batches):
    tarball = _tarball(tmp_path / "cifar-10-python.tar.gz", batches)
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10("train", path=tarball)
    assert "cifar-10-python.tar.gz: md5" in str(info.value) and REAL_TARBALL_MD5 in str(info.value)
    assert calls == []


def test_download_converts_once_then_reads_cache(monkeypatch, tmp_path, batches):
    served = _tarball(tmp_path / "served.tar.gz", batches)
    _pin_tarball(monkeypatch, served)
    urls = []

    def fake_fetch(url, dest, timeout=None):
        urls.append(url)
        shutil.copy(served, dest)
        return dest

    monkeypatch.setattr(cifar10, "fetch_url", fake_fetch)
    root = tmp_path / "cache"
    test = load_cifar10("test", root=root)
    assert urls == [cifar10.TARBALL_URL] and (root / "cifar10.npz").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["cifar10.npz"]
    assert "md5-verified" in test.source

    monkeypatch.setattr(cifar10, "fetch_url", lambda *a, **k: pytest.fail("downloaded again"))
    train = load_cifar10("train", root=root)
    images, labels = _expected(batches, BATCHES[:5])
    assert np.array_equal(train.images.numpy(), images) and np.array_equal(train.labels.numpy(), labels)
    assert train.source == test.source and train.classes == cifar10.CLASSES


def test_extracted_batch_directory_checks_each_md5(monkeypatch, tmp_path, batches):
    batch_dir = tmp_path / "cifar-10-batches-py"
    batch_dir.mkdir()
    for name, (blob, _, _) in batches.items():
        (batch_dir / name).write_bytes(blob)
    with pytest.raises(DataUnavailableError, match=cifar10.BATCH_MD5["data_batch_1"]):
        load_cifar10("train", path=tmp_path)
    monkeypatch.setattr(cifar10, "BATCH_MD5", {n: hashlib.md5(b).hexdigest() for n, (b, _, _) in batches.items()})
    ds = load_cifar10("test", path=tmp_path)  # parent of cifar-10-batches-py
    assert np.array_equal(ds.labels.numpy(), batches["test_batch"][2])
    assert load_cifar10("train", path=batch_dir).images.shape == (10, 3, 32, 32)
    (batch_dir / "data_batch_3").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}))
    with pytest.raises(DataUnavailableError, match=r"data_batch_3: md5 is \w+, expected the pinned"):
        load_cifar10("train", path=batch_dir)


def test_bad_batch_layout_is_reported(monkeypatch, tmp_path, batches):
    batches["test_batch"] = (pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}), None, None)
    tarball = _tarball(tmp_path / "c.tgz", batches)
    _pin_tarball(monkeypatch, tarball)
    with pytest.raises(DataUnavailableError, match="test_batch: data .* is not the CIFAR-10 layout"):
        load_cifar10("test", path=tarball)


def test_image_zip_path_uses_canonical_class_indices(tmp_path):
    path = tmp_path / "cifar_q75.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for cls, value in (("ship", 200), ("airplane", 10), ("truck", 90)):
            for k in range(3):
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), (value, k, 0)).save(buf, "PNG")
                zf.writestr(f"train/{cls}/{k}.png", buf.getvalue())
    ds = load_cifar10("train", root=tmp_path / "cache", path=path)
    assert ds.images.shape == (9, 3, 32, 32)
    assert ds.labels.tolist() == [0, 0, 0, 8, 8, 8, 9, 9, 9]
    assert ds.images[:, 0, 5, 5].tolist() == [10] * 3 + [200] * 3 + [90] * 3
    assert ds.name == "cifar10" and ds.source == f"image folder {path}" and ds.classes == cifar10.CLASSES


def test_unavailable_lists_sources(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10("train", root=root)
    err = info.value
    assert [s for s, _ in err.attempts] == [f"converted cache {root / 'cifar10.npz'}",
                                            f"canonical tarball {cifar10.TARBALL_URL}"]
    assert "network disabled in tests" in str(err) and "cifar-10-batches-py" in str(err)
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10("val", root=root)


@pytest.mark.parametrize("where", ["path", "cache"])
def test_a_truncated_zip_or_npz_is_a_listed_failure_not_a_traceback(tmp_path, where):
    """BadZipFile (a truncated .zip copy, a truncated converted cifar10.npz) is one of the failures a
    source may have: reported with its path, the next source tried."""
    root = tmp_path / "cache"
    root.mkdir()
    broken = tmp_path / "copy.zip" if where == "path" else root / "cifar10.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10("train", root=root, path=broken if where == "path" else None)
    assert str(broken) in str(info.value)
