"""HEVC-intra backends on CIFAR-10: x265 through PyAV at the image's own size against pillow-heif.

libheif (pillow-heif) pads a 32x32 image to 64x64 before x265 codes it; the ``pyav`` backend codes it
at 32x32, as bpgenc does (padding to a multiple of 8). Both are counted the same BPG-style way
(:meth:`~linksim.link.image_codec.HevcIntraCodec.bit_count`), use the same x265 settings and the same
colour conversion, so the difference is the coded picture size. On the first ``--images`` test
images (one process, one core, ``workers = 0``):

* equal QP: mean counted bits, mean slice bytes and mean PSNR per backend, and their ratios;
* equal budget (the codec's budget search, :func:`~linksim.link.image_codec.encode_batch_to_budget`):
  the share of images with a fitting file, the mean PSNR over the images that both backends fit,
  and the mean time of one budget search.

Ends with ``ratio=<x>``: mean counted bits pyav / pillow-heif at QP 28 (BPG's default).

    python bench/hevc_backends.py --data /path/to/cifar10 [--images 100] [--budgets 256 512 1024 2048]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import environment

from linksim.data import load_cifar10
from linksim.link.image_codec import HevcIntraCodec, encode_batch_to_budget
from linksim.metrics import psnr

BACKENDS = ("pyav", "pillow-heif")


def equal_qp(codec: HevcIntraCodec, images: np.ndarray, qp: int) -> tuple[float, float, float]:
    """Mean counted bits, slice bytes and PSNR (dB) at constant ``qp``."""
    data = [codec.encode(im, 51 - qp) for im in images]
    counts = [codec.bit_count(d) for d in data]
    decoded = np.stack([codec.decode(d) for d in data])
    return (8 * np.mean([c.total for c in counts]), np.mean([c.slice_data for c in counts]),
            float(np.mean(psnr(images, decoded))))


def equal_budget(codec: HevcIntraCodec, images: np.ndarray, budget: int):
    """(fits bool [N], PSNR dB [N] (NaN where nothing fits), seconds per budget search)."""
    t0 = time.perf_counter()
    data, _ = encode_batch_to_budget(codec, images, budget)
    seconds = (time.perf_counter() - t0) / len(images)
    fits = np.array([d is not None for d in data])
    values = np.full(len(images), np.nan)
    for i, d in enumerate(data):
        if d is not None:
            values[i] = psnr(images[i], codec.decode(d))[0]
    return fits, values, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="local CIFAR-10 copy (default: the cached/downloaded tarball)")
    ap.add_argument("--images", type=int, default=100, help="first test images")
    ap.add_argument("--qps", type=int, nargs="+", default=[38, 33, 28, 23, 18])
    ap.add_argument("--budgets", type=int, nargs="+", default=[256, 512, 1024, 2048])
    args = ap.parse_args()

    test = load_cifar10("test", path=args.data)
    images = test.images[: args.images].permute(0, 2, 3, 1).contiguous().numpy()
    codecs = {b: HevcIntraCodec(backend=b) for b in BACKENDS}
    print(environment("cpu"))
    print(f"data: {test.source}, first {len(images)} test images; HEVC-intra 4:2:0, preset veryslow, "
          "BPG-style counting")

    print("\nequal QP: mean counted bits, slice bytes, PSNR")
    print("| QP | bits pyav | bits pillow-heif | ratio | slice bytes pyav | slice bytes pillow-heif | ratio "
          "| PSNR pyav | PSNR pillow-heif | diff dB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    headline = None
    for qp in args.qps:
        (ba, sa, pa), (bh, sh, ph) = (equal_qp(codecs[b], images, qp) for b in BACKENDS)
        print(f"| {qp} | {ba:.0f} | {bh:.0f} | {ba / bh:.3f} | {sa:.1f} | {sh:.1f} | {sa / sh:.3f} "
              f"| {pa:.2f} | {ph:.2f} | {pa - ph:+.2f} |")
        if qp == 28:
            headline = ba / bh

    print("\nequal budget: images with a fitting file, mean PSNR over the images both fit, ms per search")
    print("| budget bits | fit pyav | fit pillow-heif | images both fit | PSNR pyav | PSNR pillow-heif "
          "| diff dB | ms pyav | ms pillow-heif |")
    print("|---|---|---|---|---|---|---|---|---|")
    for budget in args.budgets:
        (fa, va, ta), (fh, vh, th) = (equal_budget(codecs[b], images, budget) for b in BACKENDS)
        both = fa & fh
        if both.any():
            pa, ph = float(va[both].mean()), float(vh[both].mean())
            cells = f"{pa:.2f} | {ph:.2f} | {pa - ph:+.2f}"
        else:
            cells = "- | - | -"
        print(f"| {budget} | {fa.mean():.0%} | {fh.mean():.0%} | {both.sum()} | {cells} "
              f"| {1e3 * ta:.1f} | {1e3 * th:.1f} |")

    if headline is not None:
        print(f"\nratio={headline:.3f}")


if __name__ == "__main__":
    main()
