"""Tests for load_image_folder on tiny PNG/JPEG trees in a directory and a zip; its size= resize + centre
crop, the image-folder dataset, DataParams.image_size and the Mini-ImageNet helper."""

import io
import os
import zipfile

import numpy as np
import pydantic
import pytest
import torch
from PIL import Image

from linksim import registry
from linksim.data import (
    DataParams,
    DataUnavailableError,
    image_folder,
    load_image_folder,
    load_mini_imagenet,
)
from linksim.data.cache import load_converted
from linksim.schemes.base import SchemeContext

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


# --- size=: resize (shorter side) + centre crop, the image-folder dataset, DataParams.image_size ---------------

S = 8
# (class, file) -> (width, height, mode): landscape, portrait, square, odd margins, already S, smaller than S
MIXED = {
    ("cat", "a.png"): (20, 12, "RGB"), ("cat", "b.jpg"): (12, 21, "RGB"), ("cat", "c.png"): (16, 16, "L"),
    ("dog", "d.png"): (33, 17, "RGB"), ("dog", "e.bmp"): (8, 11, "RGB"), ("dog", "f.png"): (5, 7, "L"),
}


def _noise(w, h, mode, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def _make_mixed(base, split="train"):
    for seed, ((cls, name), (w, h, mode)) in enumerate(MIXED.items()):
        (base / split / cls).mkdir(parents=True, exist_ok=True)
        _noise(w, h, mode, seed).save(base / split / cls / name)
    return base


def _by_hand(file, size, mode):
    """The expected crop, written out with PIL: shorter side -> size (bicubic), central size x size."""
    with Image.open(file) as im:
        im = im.convert(mode)
        w, h = im.size
        nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = round((nw - size) / 2), round((nh - size) / 2)
        return np.asarray(im.crop((left, top, left + size, top + size)))


def test_size_resizes_shorter_side_and_centre_crops_like_pil(tmp_path):
    base = _make_mixed(tmp_path / "mixed")
    ds = load_image_folder(base, "train", root=tmp_path / "cache", size=S)
    assert ds.images.shape == (6, 3, S, S) and ds.images.dtype == torch.uint8  # mixed gray + colour -> RGB
    assert ds.classes == ("cat", "dog") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    for i, (cls, name) in enumerate(sorted(MIXED)):
        expected = _by_hand(base / "train" / cls / name, S, "RGB")
        assert np.array_equal(ds.images[i].permute(1, 2, 0).numpy(), expected), name
    assert "resized to 8" in ds.source and "bicubic" in ds.source


def test_size_keeps_grayscale_and_mode_forces_rgb(tmp_path):
    base = tmp_path / "gray"
    for i, (w, h) in enumerate([(10, 14), (19, 9)]):
        (base / "train" / "x").mkdir(parents=True, exist_ok=True)
        _noise(w, h, "L", i).save(base / "train" / "x" / f"{i}.png")
    gray = load_image_folder(base, "train", root=tmp_path / "cache", size=S)
    assert gray.images.shape == (2, 1, S, S)
    assert np.array_equal(gray.images[1, 0].numpy(), _by_hand(base / "train" / "x" / "1.png", S, "L"))
    rgb = load_image_folder(base, "train", root=tmp_path / "cache", size=S, mode="RGB")
    assert rgb.images.shape == (2, 3, S, S) and torch.equal(rgb.images[:, 0], gray.images[:, 0])
    assert torch.equal(rgb.images[:, 2], gray.images[:, 0])


def test_size_from_zip_equals_directory(tmp_path):
    base = _make_mixed(tmp_path / "d")
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for cls, name in MIXED:
            zf.write(base / "train" / cls / name, f"mixed/train/{cls}/{name}")
    from_zip = load_image_folder(path, "train", root=tmp_path / "cache", size=S)
    from_dir = load_image_folder(base, "train", root=tmp_path / "cache", size=S)
    assert torch.equal(from_zip.images, from_dir.images) and torch.equal(from_zip.labels, from_dir.labels)


def test_without_size_mixed_sizes_still_refused(tmp_path):
    with pytest.raises(ValueError, match="the first image is"):
        load_image_folder(_make_mixed(tmp_path / "m"), "train", root=tmp_path / "cache")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="size must be a positive int"):
            load_image_folder(tmp_path / "m", "train", root=tmp_path / "cache", size=bad)
    with pytest.raises(ValueError, match="mode must be one of"):
        load_image_folder(tmp_path / "m", "train", root=tmp_path / "cache", size=S, mode="CMYK")


def test_cache_keyed_by_size_and_corrupt_cache_rebuilt(monkeypatch, tmp_path):
    base = _make_mixed(tmp_path / "k")
    root = tmp_path / "cache"
    cache = root / "image_folder"
    first = load_image_folder(base, "train", root=root, size=S)
    (file_8,) = cache.glob("*.npz")
    other = load_image_folder(base, "train", root=root, size=6)
    assert other.images.shape == (6, 3, 6, 6) and len(list(cache.glob("*.npz"))) == 2  # a new cache

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(image_folder.Image, "open", no_decode)
    assert torch.equal(load_image_folder(base, "train", root=root, size=S).images, first.images)
    assert torch.equal(load_image_folder(base, "train", root=root, size=6).images, other.images)
    monkeypatch.undo()

    good = file_8.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # inside the image array: a bad CRC
    for corrupt in (bytes(flipped), good[: len(good) // 2], b"not an npz"):
        file_8.write_bytes(corrupt)
        again = load_image_folder(base, "train", root=root, size=S)
        assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
        assert file_8.read_bytes() != corrupt  # replaced by a sound copy
        assert torch.equal(load_converted(file_8, "train", "k").images, first.images)
    assert len(list(cache.glob("*.npz"))) == 2


def test_registered_image_folder_dataset(tmp_path):
    load = registry.datasets()["image-folder"]
    base = _make_mixed(tmp_path / "r")
    ds = load("train", root=tmp_path / "cache", path=str(base), size=S)
    assert ds.images.shape == (6, 3, S, S) and ds.name == "r"
    with pytest.raises(ValueError, match=r"^image-folder needs data\.path: [^\n]*$"):
        load("train", root=tmp_path / "cache")


def _msg(excinfo):
    (error,) = excinfo.value.errors()
    assert "\n" not in error["msg"]
    return error["msg"]


def test_data_params_image_size(tmp_path, monkeypatch):
    base = _make_mixed(tmp_path / "p")
    params = DataParams(name="image-folder", path=str(base), image_size=16)
    assert params.image_shape == (3, 16, 16)
    assert DataParams(name="cifar10").image_shape == (3, 32, 32) and DataParams().image_size is None
    with pytest.raises(pydantic.ValidationError) as e:
        DataParams(name="image-folder", path=str(base))
    assert _msg(e).startswith("Value error, data.image_size: image-folder needs")
    with pytest.raises(pydantic.ValidationError) as e:
        DataParams(name="image-folder", image_size=16)
    assert _msg(e).startswith("Value error, data.path: image-folder needs")
    with pytest.raises(pydantic.ValidationError) as e:
        DataParams(name="mnist", image_size=16)
    assert _msg(e).startswith("Value error, data.image_size: only image-folder, mini-imagenet are resized")
    with pytest.raises(pydantic.ValidationError, match="image_size"):
        DataParams(name="image-folder", path=str(base), image_size=0)

    # through SchemeContext.dataset (size in its key) into the loader
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "cache"))
    context = SchemeContext()
    small = DataParams(name="image-folder", path=str(base), image_size=S)
    train = small.training_set(context)
    assert train.images.shape == (6, 3, S, S) and small.training_set(context) is train
    assert params.training_set(context).images.shape == (6, 3, 16, 16)
    with pytest.raises(FileNotFoundError, match="test is not a directory"):
        small.evaluation_set(context)

    class OldContext:  # a context written before size=: still called without it
        def dataset(self, name, split, path=None):
            return (name, split, path)

    assert DataParams(name="synthetic-mnist").training_set(OldContext()) == ("synthetic-mnist", "train", None)


def test_mini_imagenet_from_a_local_copy(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"train\|val\|test/<wnid>/\*\.jpg"):
        load_mini_imagenet("test", root=tmp_path / "cache")  # <cache>/mini-imagenet is absent
    base = tmp_path / "mini"
    for i, wnid in enumerate(["n02110063", "n01930112"]):
        (base / "test" / wnid).mkdir(parents=True)
        _noise(30 + 7 * i, 24, "RGB", i).save(base / "test" / wnid / f"{wnid}_1.JPEG")
    with pytest.raises(DataUnavailableError, match="train does not exist"):
        load_mini_imagenet("train", path=base, root=tmp_path / "cache")
    ds = load_mini_imagenet("test", path=base, root=tmp_path / "cache")
    assert ds.images.shape == (2, 3, 256, 256) and ds.name == "mini-imagenet"
    assert ds.classes == ("n01930112", "n02110063") and ds.labels.tolist() == [0, 1]
    expected = _by_hand(base / "test" / "n01930112" / "n01930112_1.JPEG", 256, "RGB")
    assert np.array_equal(ds.images[0].permute(1, 2, 0).numpy(), expected)
