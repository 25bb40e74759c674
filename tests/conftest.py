"""Shared fixtures: tiny scenario files written into the test's own temporary directory."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch

from linksim import registry
from linksim.data import ImageDataset
from linksim.data.synthetic import SYNTHETIC
from linksim.schemes.base import SchemeContext

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

SMALL_SCENARIO = """\
name: tiny
seed: 11
device: cpu
snr: {axis: ebno, values: [1.0, 3.0]}
stop: {batch_size: 100, target_errors: 20, max_samples: 300}
schemes:
  - {name: ldpc, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}
  - {name: unc, type: digital_link, params: {k: 128, bits_per_symbol: 4}}
channels: [awgn, rayleigh]
profiles:
  quick:
    stop: {max_samples: 100}
"""


#: a tiny image baseline (JPEG + 5G LDPC, two MCS and capacity, synthetic images) beside a digital link
IMAGE_SCENARIO = """\
name: tidy
seed: 5
device: cpu
snr: {axis: esno, values: [0.0, 12.0]}
stop: {batch_size: 4, max_samples: 8, target_errors: 1000000}
schemes:
  - name: jpeg
    type: image_digital
    params:
      codec: jpeg
      jpeg: {headers: abbreviated}
      bandwidth_ratio: 1/6
      capacity: true
      data: {name: synthetic-cifar, eval_subset: 8}
      mcs:
        - {name: qpsk-r1_2, k: 256, n: 512, bits_per_symbol: 2, interleaver: nr}
        - {name: 16qam-r1_2, k: 512, n: 1024, bits_per_symbol: 4, interleaver: nr}
  - {name: ldpc, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}
channels: [awgn]
"""


def dying_after_first_epoch(train):
    """``train`` (:func:`linksim.training.loop.train`) wrapped so that its progress report raises
    ``KeyboardInterrupt`` after epoch 1, as Ctrl-C would once that epoch's checkpoint is written."""

    def dying(*args, progress=None, **kwargs):
        def report(log):
            if log["epoch"] == 1:
                raise KeyboardInterrupt
        return train(*args, progress=report, **kwargs)

    return dying


def seeded(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (reproducible draws inside one test)."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write YAML text (dedented) to ``tmp_path/<name>.yaml`` and return its path."""

    def write(text: str = SMALL_SCENARIO, name: str = "scenario") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


def use_synthetic_data(mp: pytest.MonkeyPatch) -> None:
    """Serve the seeded synthetic sets of :mod:`linksim.data.synthetic` under the registered names
    ``cifar10`` (3 x 32 x 32) and ``mnist`` (1 x 28 x 28): schemes whose params accept only those
    names then load them without network or files."""
    mp.setitem(registry.datasets(), "cifar10", SYNTHETIC["synthetic-cifar"])
    mp.setitem(registry.datasets(), "mnist", SYNTHETIC["synthetic-mnist"])


@pytest.fixture
def synthetic_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`use_synthetic_data` for one test."""
    use_synthetic_data(monkeypatch)


def tiny_mnist(n: int, seed: int) -> ImageDataset:
    """Two easily separable classes of 28x28 images: bright left half vs bright right half."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, y in enumerate(labels):
        images[i, :, :, 14 * int(y) : 14 * int(y) + 14] += 150
    return ImageDataset(images, labels, ("left", "right"), "tiny", "synthetic")


class TinyContext(SchemeContext):
    """A scheme context whose datasets are :func:`tiny_mnist` (``train_size`` / ``test_size`` images)."""

    train_size = 256
    test_size = 64

    def dataset(self, name, split, path=None):
        return tiny_mnist(self.train_size if split == "train" else self.test_size, seed=0 if split == "train" else 1)


def undocumented(columns) -> list[str]:
    """The columns that docs/results.md does not name, neither as such nor as the statistic a
    ``_ci_low``/``_ci_high``/``_std`` column belongs to; a name there with ``<i>`` stands for any number."""
    names = re.findall(r"`([a-z_0-9<>]+)`", (Path(__file__).resolve().parent.parent / "docs" / "results.md").read_text())
    pattern = re.compile("|".join(re.escape(n).replace(re.escape("<i>"), r"\d+") for n in names))
    return sorted({c for c in columns if not pattern.fullmatch(re.sub(r"_(ci_low|ci_high|std)$", "", c))})
