"""Tests for load_image_folder on tiny PNG/JPEG trees in a directory and a zip."""

import io
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from linksim.data import image_folder, load_image_folder

H, W = 4, 5  # non-square, so a transposed layout would show


def _png(value, mode="RGB"):
    buf = io.BytesIO()
    color = value if mode == "L" else (value, value + 1, value + 2)
    Image.new(mode, (W, H), color).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(value):
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (value, value, value)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


# dog is created before cat and file names are out of order, to check the sorting
TREE = {
    ("dog", "b.png"): 50, ("dog", "a.png"): 40, ("dog", "c.png"): 60,
    ("cat", "z.png"): 30, ("cat", "x.png"): 10, ("cat", "y.png"): 20,
}
EXPECTED_ORDER = [10, 20, 30, 40, 50, 60]  # cat x,y,z then dog a,b,c


def _make_dir(base, split="train", mode="RGB"):
    for (cls, name), value in TREE.items():
        (base / split / cls).mkdir(parents=True, exist_ok=True)
        (base / split / cls / name).write_bytes(_png(value, mode))
    (base / split / "cat" / "notes.txt").write_text("ignored")
    return base


def test_directory_rgb_shapes_labels_order(tmp_path):
    ds = load_image_folder(_make_dir(tmp_path / "tree"), "train", root=tmp_path / "cache")
    assert ds.images.shape == (6, 3, H, W) and ds.images.dtype == torch.uint8
    assert ds.classes == ("cat", "dog")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1] and ds.labels.dtype == torch.int64
    assert ds.images[:, 0, 0, 0].tolist() == EXPECTED_ORDER
    assert ds.images[:, 2, H - 1, W - 1].tolist() == [v + 2 for v in EXPECTED_ORDER]
    assert ds.source == f"image folder {(tmp_path / 'tree').resolve()}" and ds.name == "tree"


def test_directory_grayscale_gives_one_channel(tmp_path):
    ds = load_image_folder(_make_dir(tmp_path / "g", mode="L"), "train", root=tmp_path / "cache")
    assert ds.images.shape == (6, 1, H, W)
    assert ds.images[:, 0, 1, 1].tolist() == EXPECTED_ORDER


def test_mixed_gray_and_color_gives_rgb(tmp_path):
    base = _make_dir(tmp_path / "m")
    (base / "train" / "cat" / "x.png").write_bytes(_png(10, "L"))
    ds = load_image_folder(base, "train", root=tmp_path / "cache")
    assert ds.images.shape == (6, 3, H, W)
    assert ds.images[0, :, 0, 0].tolist() == [10, 10, 10]  # gray replicated
    assert ds.images[1, :, 0, 0].tolist() == [20, 21, 22]


def test_zip_with_jpegs_and_wrapper_folder(tmp_path):
    path = tmp_path / "pics.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for (cls, name), value in TREE.items():
            zf.writestr(f"pics/train/{cls}/{name[:-4]}.jpg", _jpeg(value))
        zf.writestr("pics/test/cat/q.jpg", _jpeg(200))
        zf.writestr("pics/README", "not an image")
    ds = load_image_folder(path, "train", root=tmp_path / "cache")
    assert ds.images.shape == (6, 3, H, W) and ds.classes == ("cat", "dog")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.allclose(ds.images[:, 0, 0, 0].numpy(), EXPECTED_ORDER, atol=3)  # lossy JPEG
    test = load_image_folder(path, "test", root=tmp_path / "cache")
    assert test.images.shape == (1, 3, H, W) and test.labels.tolist() == [0]
    assert ds.name == "pics" and ds.source.endswith("pics.zip")


def test_zip_without_wrapper_equals_directory(tmp_path):
    base = _make_dir(tmp_path / "d")
    path = tmp_path / "flat.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for (cls, name), _ in TREE.items():
            zf.write(base / "train" / cls / name, f"train/{cls}/{name}")
    from_zip = load_image_folder(path, "train", root=tmp_path / "cache")
    from_dir = load_image_folder(base, "train", root=tmp_path / "cache")
    assert torch.equal(from_zip.images, from_dir.images) and torch.equal(from_zip.labels, from_dir.labels)


def test_given_classes_set_label_order(tmp_path):
    base = _make_dir(tmp_path / "c")
    ds = load_image_folder(base, "train", classes=("dog", "bird", "cat"), root=tmp_path / "cache")
    assert ds.classes == ("dog", "bird", "cat")
    assert ds.labels.tolist() == [2, 2, 2, 0, 0, 0]  # files still read cat first (sorted folders)
    with pytest.raises(ValueError, match=r"class folders \['dog'\] are not among"):
        load_image_folder(base, "train", classes=("cat",), root=tmp_path / "cache")


def test_second_load_uses_cache_until_a_file_changes(monkeypatch, tmp_path):
    base = _make_dir(tmp_path / "t")
    root = tmp_path / "cache"
    first = load_image_folder(base, "train", root=root)
    assert len(list((root / "image_folder").glob("*.npz"))) == 1

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(image_folder.Image, "open", no_decode)
    second = load_image_folder(base, "train", root=root)
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert second.classes == first.classes and second.source == first.source

    changed = base / "train" / "dog" / "a.png"
    changed.write_bytes(_png(99))
    os.utime(changed, ns=(1, 1))
    monkeypatch.undo()
    third = load_image_folder(base, "train", root=root)
    assert third.images[3, 0, 0, 0].item() == 99
    assert len(list((root / "image_folder").glob("*.npz"))) == 2


def test_zip_cache_keyed_by_size_and_mtime(monkeypatch, tmp_path):
    path = tmp_path / "k.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/a/1.png", _png(1))
    root = tmp_path / "cache"
    assert load_image_folder(path, "train", root=root).images[0, 0, 0, 0].item() == 1
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/a/1.png", _png(7))
        zf.writestr("train/a/2.png", _png(8))
    ds = load_image_folder(path, "train", root=root)
    assert ds.images[:, 0, 0, 0].tolist() == [7, 8]


def test_errors(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing", "train", root=root)
    base = _make_dir(tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="e/test is not a directory"):
        load_image_folder(base, "test", root=root)
    Image.new("RGB", (W + 1, H)).save(base / "train" / "dog" / "d.png")
    with pytest.raises(ValueError, match=r"dog/d.png is 6x4, the first image is 5x4"):
        load_image_folder(base, "train", root=root)
    (base / "train" / "dog" / "d.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot decode dog/d.png"):
        load_image_folder(base, "train", root=root)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .png"):
        load_image_folder(tmp_path / "empty", "train", root=root)
