"""Encode once, evaluate many: the evaluation time of one SNR point of a SINFONY Tx/Rx model with its
Tx output computed once (what the ``sinfony`` scheme does) against the whole network run per point.

Builds the ``sinfony`` scheme for MNIST, N_Tx = 14, N_w = 56 (as ``txrx14``), trained for one epoch
on 64 random images (throughput only: the weights do not matter), and prepares it on ``--images``
random test images, which computes their Tx output once (timed). One point is those images through
AWGN at 2 dB, classified:

* encoded once: :meth:`SinfonyScheme.simulate` (channel, receiver and classifier on the stored Tx output);
* whole network: the same images through the feature extractors, Tx, channel, receiver and classifier,
  in the same chunks (the path a point took before the Tx output was stored).

Both draw the same channel noise; the script checks that they give the same counters, prints the
seconds per point of each, then ``ratio=<x>``: whole network over encoded once, per point.

    python bench/encode_once.py [--device cpu] [--min-time 5] [--images 2000]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import environment, pick_device, rate, sync
from sionna.phy import config as sionna_config

from linksim.channels import AWGNChannel
from linksim.data import ImageDataset
from linksim.layers import inference_chunk
from linksim.schemes.base import SchemeContext
from linksim.schemes.sinfony.classifier import SinfonyScheme
from linksim.schemes.sinfony.reference import SinfonyParams, SinfonyTrainParams
from linksim.snr import esno_db_to_no

N_TX, N_RX, ESNO_DB = 14, 56, 2.0


class RandomImages(SchemeContext):
    """A scheme context whose datasets are random 28 x 28 images with random labels (``train_size``
    training and ``test_size`` test images)."""

    train_size, test_size = 64, 2000

    def dataset(self, name, split, path=None):
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        n = self.train_size if split == "train" else self.test_size
        images = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=gen)
        return ImageDataset(images, labels, tuple(str(c) for c in range(10)), "random", "random images")


def whole_network(scheme: SinfonyScheme, images: torch.Tensor, labels: torch.Tensor, no: torch.Tensor,
                  channel: AWGNChannel) -> dict[str, float]:
    """One point through the whole network, chunk by chunk as the scheme evaluates (``inference_chunk``):
    uint8 ``images [N, 1, 28, 28]`` -> counters ``samples, errors, loss_sum``."""
    step = inference_chunk(images.device) or len(images)
    with torch.no_grad():
        logits = torch.cat([
            scheme.model(images[i : i + step].float() / 255.0,
                         lambda x: scheme.reference.through(x, channel, no.expand(len(x))))
            for i in range(0, len(images), step)])
    return {"samples": len(images), "errors": int((logits.argmax(-1) != labels).sum()),
            "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum"))}


def prepared_scheme(device: str, images: int) -> tuple[SinfonyScheme, ImageDataset]:
    """The ``txrx14``-sized scheme trained for one epoch on 64 random images and prepared on ``images``
    random test images (their Tx output computed once); also those test images."""
    sionna_config.seed = 0  # the initial weights and the training noise
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        context = RandomImages(device=device, cache_dir=Path(tmp), train_channel=AWGNChannel().to(device),
                               train_channel_spec={"name": "awgn", "type": "awgn", "params": {}}, progress=False)
        context.test_size = images
        scheme = SinfonyScheme(SinfonyParams(variant="txrx", n_tx=N_TX, n_rx=N_RX,
                                             train=SinfonyTrainParams(epochs=1)))
        scheme.prepare(context)
    return scheme, context.dataset("mnist", "test")


def encoded_once(scheme: SinfonyScheme, n: int, no: torch.Tensor, channel: AWGNChannel) -> dict[str, float]:
    """One point of the scheme as the engine runs it: the first ``n`` evaluation images."""
    scheme.reset()
    return scheme.simulate(n, no, channel)


def both_paths(scheme: SinfonyScheme, images: torch.Tensor, labels: torch.Tensor, no: torch.Tensor,
               channel: AWGNChannel, seed: int = 7) -> tuple[dict[str, float], dict[str, float]]:
    """The counters of one point encoded once and through the whole network (the scheme's evaluation
    images ``images`` with ``labels``), each from the same seed: both draw the same channel noise."""
    sionna_config.seed = seed
    cached = encoded_once(scheme, len(images), no, channel)
    sionna_config.seed = seed
    return cached, whole_network(scheme, images, labels, no, channel)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--min-time", type=float, default=5.0)
    ap.add_argument("--images", type=int, default=2000, help="evaluation images per point")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(environment(device))
    n = args.images
    scheme, test = prepared_scheme(device, n)
    images, labels = test.images.to(device), test.labels.to(device)
    channel, no = AWGNChannel().to(device), esno_db_to_no(torch.tensor(ESNO_DB, device=device))
    cached, whole = both_paths(scheme, images, labels, no, channel)
    # the same numbers up to summation order (a GPU encodes in other chunks than the whole-network pass)
    same = cached["errors"] == whole["errors"] and math.isclose(cached["loss_sum"], whole["loss_sum"], rel_tol=1e-5)
    if not same:
        raise SystemExit(f"the two paths disagree: encoded once {cached}, whole network {whole}")
    chunk = inference_chunk(device) or 1000
    t0 = time.perf_counter()
    scheme.reference.transmitted_features(test.images, chunk)
    sync(device)
    encode_s = time.perf_counter() - t0
    per_point = {name: 1.0 / rate(fn, 1, device, args.min_time, warmup=1)
                 for name, fn in (("whole network", lambda: whole_network(scheme, images, labels, no, channel)),
                                  ("encoded once", lambda: encoded_once(scheme, n, no, channel)))}
    print(f"sinfony txrx, MNIST sizes, N_Tx = {N_TX}, N_w = {N_RX}; {n:,} images per point, AWGN at "
          f"Es/N0 {ESNO_DB:g} dB, {inference_chunk(device) or 'all'} images per forward pass")
    print(f"  same counters on both paths: {cached}")
    print(f"  {'Tx output of the evaluation images, once (prepare)':52s} {encode_s:8.3f} s")
    for name, seconds in per_point.items():
        print(f"  {'per point, ' + name:52s} {seconds:8.3f} s")
    print(f"ratio={per_point['whole network'] / per_point['encoded once']:.2f}")


if __name__ == "__main__":
    main()
