"""The image codec + 5G LDPC digital baseline (`image_digital`): budgets, failures, fallback,
capacity, additive counters and the envelope. CPU, tiny synthetic images, no network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from linksim.channels import AWGNChannel
from linksim.channels.base import Channel
from linksim.config import SnrGrid, StopRule, load_scenario
from linksim.data import ImageDataset
from linksim.engine import WorkUnit, run_unit, unit_seed
from linksim.link.image_codec import JpegCodec, encode_to_budget
from linksim.metrics import psnr
from linksim.schemes.base import SchemeContext
from linksim.schemes.image_digital import ImageDigitalParams, ImageDigitalScheme, McsParams, capacity_bits
from linksim.snr import esno_db_to_no

ROOT = Path(__file__).resolve().parent.parent
QPSK = {"name": "qpsk", "k": 384, "n": 512, "bits_per_symbol": 2, "interleaver": "nr"}
QAM16 = {"name": "16qam", "k": 768, "n": 1024, "bits_per_symbol": 4, "interleaver": "nr"}
QAM64 = {"name": "64qam", "k": 1152, "n": 1536, "bits_per_symbol": 6, "interleaver": "nr"}
JPEG = {"codec": "jpeg", "jpeg": {"headers": "abbreviated"}}


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny LDPC batches here run fastest on one thread (and never wait on a busy second core)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n: int, seed: int) -> np.ndarray:
    """Smooth 32x32 colour images (gradients and a blob, mild noise): uint8 [n, 32, 32, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0, 1, 3)
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
        img = np.stack([a * xx + (1 - a) * yy, b * blob + (1 - b) * xx, c * (1 - yy) + (1 - c) * blob], -1)
        out.append(np.clip(255 * img + rng.normal(0, 3, img.shape), 0, 255))
    return np.asarray(out, dtype=np.uint8)


class _Context(SchemeContext):
    def dataset(self, name, split, path=None):
        imgs = _images(6 if split == "test" else 16, seed=1 if split == "test" else 2)
        return ImageDataset(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(),
                            torch.zeros(len(imgs), dtype=torch.int64), ("x",), "tiny", "synthetic")


class _Clean(Channel):
    """y = x with a small stated noise variance (the demapper needs one)."""

    def forward(self, x, no):
        return x, torch.full(x.shape, 1e-3)


class _CorruptFirstRow(_Clean):
    """Scrambles the first row's symbols (the first image of a batch) and keeps the others."""

    def forward(self, x, no):
        y = x.clone()
        y[0] = -x[0].roll(1)
        return y, torch.full(x.shape, 1e-3)


class _Overhead(Channel):
    """Charges 14/12 channel uses per data symbol, as the TDL channel's pilots."""

    def channel_uses(self, num_symbols: int) -> float:
        return num_symbols * 14 / 12


def _scheme(**params) -> ImageDigitalScheme:
    params = {**JPEG, "bandwidth_ratio": "1/6", "mcs": [QPSK, QAM16, QAM64], **params}
    scheme = ImageDigitalScheme(ImageDigitalParams(**params))
    scheme.prepare(_Context())
    return scheme


def test_channel_use_accounting_matches_a_hand_calculation():
    p = ImageDigitalParams(codec="jpeg", bandwidth_ratio="1/6", mcs=[QPSK, QAM16, QAM64,
                           {"k": 512, "n": 1024, "bits_per_symbol": 4, "crc": "CRC24A"}])
    s = ImageDigitalScheme(p)
    assert p.channel_uses == 512 == s.budget(AWGNChannel()).channel_uses  # 3072 / 6 complex channel uses
    assert s.budget(AWGNChannel()).info_bits is None
    awgn = AWGNChannel()
    # codewords = floor(512 * m / n): 2 each; budget = 2 * k (CRC bits not counted as payload)
    assert [s.codewords_per_image(i, awgn) for i in range(4)] == [2, 2, 2, 2]
    assert [s.mcs_budget_bits(i, awgn) for i in range(4)] == [768, 1536, 2304, 2 * (512 - 24)]
    assert s.mcs_names[3] == "16qam-k512-n1024"
    half = ImageDigitalScheme(ImageDigitalParams(codec="jpeg", bandwidth_ratio=1 / 12, mcs=[QPSK, QAM64]))
    assert half.params.channel_uses == 256
    assert [half.mcs_budget_bits(i, awgn) for i in range(2)] == [384, 1152]  # one codeword each
    # pilots: 512 channel uses carry floor(512 * 12 / 14) = 438 data symbols -> one 16-QAM codeword
    assert s.data_symbols(_Overhead()) == 438
    assert s.codewords_per_image(1, _Overhead()) == 1 and s.mcs_budget_bits(1, _Overhead()) == 768
    assert s.describe()["mcs"]["64qam"] == {"codewords_per_image": 2, "budget_bits": 2304, "bits_per_channel_use": 4.5}


def test_bit_budget_is_never_exceeded_and_quality_is_the_highest_that_fits():
    s = _scheme(capacity=True)
    s.reset()
    no = torch.tensor(10 ** (-0.5))  # 5 dB
    s.simulate(6, no, _Clean())
    budgets = [s.mcs_budget_bits(i, _Clean()) for i in range(3)] + [int(capacity_bits(512, no))]
    assert sorted(s._cache) == sorted(budgets)
    codec = s.codec
    for budget, entry in s._cache.items():
        assert (entry.status != 0).all()
        for j, data in entry.data.items():
            assert codec.counted_bits(data) == entry.file_bits[j] == 8 * len(codec.wire_bytes(data)) <= budget
            assert data == encode_to_budget(codec, s._images[j], budget)[0]
    # the file fills at most the image's codewords
    for i, k in enumerate([QPSK["k"], QAM16["k"], QAM64["k"]]):
        entry = s._cache[s.mcs_budget_bits(i, _Clean())]
        assert (-(-entry.file_bits // k) <= 2).all()


def test_noiseless_link_delivers_the_codecs_decoding():
    s = _scheme()
    idx = np.arange(6)
    d = s.deliver("64qam", idx, torch.tensor(1e-3), _Clean())
    assert d.ok.all() and not d.unfit.any() and (d.codeword_errors == 0).all()
    shown = s.received_images("64qam", d, _Clean())
    for j in idx:
        data, _ = encode_to_budget(s.codec, s._images[j], 2304)
        np.testing.assert_array_equal(shown[j], s.codec.decode(data))
    s.reset()
    counters = s.simulate(6, torch.tensor(1e-3), _Clean())
    assert counters["psnr_sum_64qam"] == pytest.approx(float(psnr(s._images, shown).sum()))
    assert counters["failed_64qam"] == 0 and counters["codeword_errors_64qam"] == 0
    assert counters["codewords_64qam"] == int(sum(-(-s._cache[2304].file_bits // 1152)))


def test_a_codeword_in_error_fails_its_image_and_shows_the_fallback():
    s = _scheme()
    train = _Context().dataset("x", "train").images.numpy().astype(np.float64)
    np.testing.assert_array_equal(s._fallback, np.round(train.mean(axis=0)).transpose(1, 2, 0).astype(np.uint8))
    d = s.deliver("16qam", np.arange(4), torch.tensor(1e-3), _CorruptFirstRow())
    assert d.codeword_errors[0] >= 1 and (d.codeword_errors[1:] == 0).all()
    assert d.ok.tolist() == [False, True, True, True] and not d.unfit.any()
    shown = s.received_images("16qam", d, _Clean())
    np.testing.assert_array_equal(shown[0], s._fallback)
    s.reset()
    c = s.simulate(4, torch.tensor(1e-3), _CorruptFirstRow())
    expected = float(psnr(s._images[:4], shown).sum())
    assert c["failed_16qam"] == 1 and c["unfit_16qam"] == 0 and c["psnr_sum_16qam"] == pytest.approx(expected)
    # far below any code's threshold every image fails and shows the fallback
    s.reset()
    c = s.simulate(6, torch.tensor(10.0), AWGNChannel())  # -10 dB
    for o in ("qpsk", "16qam", "64qam"):
        assert c[f"failed_{o}"] == 6 and c[f"codeword_errors_{o}"] >= 6
        assert c[f"psnr_sum_{o}"] == pytest.approx(float(s._fallback_psnr.sum()))


def test_images_whose_file_cannot_fit_fail_without_transmission():
    s = _scheme(bandwidth_ratio="1/300", mcs=[QPSK])  # 10 channel uses: no 512-bit codeword fits
    assert s.mcs_budget_bits(0, AWGNChannel()) == 0
    s.reset()
    c = s.simulate(6, torch.tensor(1e-3), AWGNChannel())
    assert c["unfit_qpsk"] == c["failed_qpsk"] == 6 and c["codewords_qpsk"] == 0
    assert c["psnr_sum_qpsk"] == pytest.approx(float(s._fallback_psnr.sum()))


def test_capacity_budget_grows_with_snr():
    esno = np.arange(-5, 26, 5.0)
    bits = capacity_bits(512, torch.tensor(10 ** (-esno / 10), dtype=torch.float32))
    assert (np.diff(bits) > 0).all()
    assert capacity_bits(512, torch.tensor(1.0)) == 512  # 0 dB: log2(2) = 1 bit per channel use
    assert capacity_bits(256, torch.tensor(10 ** -1.5)) == math.floor(256 * math.log2(1 + 10**1.5))
    s = _scheme(mcs=[], capacity=True)
    psnrs, files = [], []
    for e in esno:
        s.reset()
        c = s.simulate(6, torch.tensor(10 ** (-e / 10)), AWGNChannel())
        psnrs.append(c["psnr_sum_capacity"])
        files.append(c["file_bits_capacity"])
        no = esno_db_to_no(torch.tensor(float(e)))
        assert s.theory(AWGNChannel(), float(e))["capacity_bits"] == int(capacity_bits(512, no))
    assert (np.diff(files) >= 0).all() and (np.diff(psnrs) >= -1e-9).all() and psnrs[-1] > psnrs[0]


def _row(scheme, batch_size: int, snr_db: float, samples: int = 6):
    unit = WorkUnit("img", "awgn", snr_db)
    stop = StopRule(batch_size=batch_size, max_samples=samples, target_errors=10**9)
    return run_unit(scheme, AWGNChannel(), unit, SnrGrid(values=[snr_db]), stop, unit_seed(3, unit))


def test_counters_are_additive_and_the_envelope_picks_the_best_mcs():
    s = _scheme(capacity=True)
    whole, halves = _row(s, 6, 30.0), _row(s, 3, 30.0)  # error-free at 30 dB: independent of the draws
    s.reset()
    counters = set(s.simulate(1, torch.tensor(1e-3), AWGNChannel())) - {"samples"}
    # per MCS 5 counters of the file and the link + 7 quality sums (quality_counters); capacity 3 + 7
    assert len(counters) == 3 * 12 + 10 and counters <= set(whole)
    assert all(whole[k] == pytest.approx(halves[k]) for k in counters)
    for o in ("qpsk", "16qam", "64qam", "capacity"):  # the quality means, with intervals from the sums of squares
        assert whole[f"images_{o}"] == 6 and whole[f"psnr_db_{o}"] == pytest.approx(whole[f"psnr_sum_{o}"] / 6)
        for m in ("psnr_db", "ssim", "mse"):
            assert whole[f"{m}_{o}_ci_low"] <= whole[f"{m}_{o}"] <= whole[f"{m}_{o}_ci_high"]
            assert whole[f"{m}_{o}_std"] >= 0
        assert whole[f"psnr_of_mean_mse_db_{o}"] <= whole[f"psnr_db_{o}"] + 1e-9  # Jensen
    # the headline restates the best option's means with their intervals
    assert all(whole[f"{m}{part}"] == whole[f"{m}_64qam{part}"]
               for m in ("psnr_db", "ssim", "mse") for part in ("", "_ci_low", "_ci_high", "_std"))
    assert whole["psnr_of_mean_mse_db"] == whole["psnr_of_mean_mse_db_64qam"] and "primary" not in whole
    assert set(s.stage_times.take()) == {"codec", "link"}  # the run's timings: where the time went
    for row in (whole, halves):
        assert row["samples"] == 6 and row["best_mcs"] == "64qam"
        assert row["psnr_db"] == pytest.approx(max(row[f"psnr_db_{m}"] for m in ("qpsk", "16qam", "64qam")))
        assert row["error_rate"] == row["image_failure_rate"] == row["image_failure_rate_64qam"]
        assert row["errors"] == row["failed_64qam"] and row["ci_low"] == row["image_failure_rate_64qam_ci_low"]
        assert row["psnr_db_capacity"] >= row["psnr_db"]
    # the summed simulate counters of two half batches equal one whole batch (engine-style reset + cursor)
    s.reset()
    one = s.simulate(6, torch.tensor(1e-3), AWGNChannel())
    s.reset()
    a, b = s.simulate(3, torch.tensor(1e-3), AWGNChannel()), s.simulate(3, torch.tensor(1e-3), AWGNChannel())
    assert set(one) == set(a) and all(one[k] == pytest.approx(a[k] + b[k]) for k in one)
    # at a noisy point the headline is still the MCS with the highest mean PSNR of the point
    row = _row(s, 3, 6.0)
    best = max(("qpsk", "16qam", "64qam"), key=lambda m: row[f"psnr_sum_{m}"])
    assert row["best_mcs"] == best and row["psnr_db"] == row[f"psnr_db_{best}"]


def test_each_mcs_gets_a_results_row_of_the_same_shape_as_the_envelope():
    """results.csv is tidy: the envelope's headline row, then one row per option with the same column
    names (config = the option), so a figure or snr-at can read any MCS like any scheme."""
    from linksim.engine import POINT_COLUMNS, split_configs

    s = _scheme(capacity=True)
    row = _row(s, 6, 6.0)
    rows = split_configs(row, s.configs)
    assert [r["config"] for r in rows] == ["", "qpsk", "16qam", "64qam", "capacity"]
    headline, *options = rows
    assert headline["best_mcs"] == row["best_mcs"] and headline["psnr_db"] == row["psnr_db"]
    assert not [c for c in headline if any(c.endswith(f"_{o}") or f"_{o}_" in c for o in s.configs)]
    for r in options:
        o = r["config"]
        assert r["psnr_db"] == row[f"psnr_db_{o}"] and r["psnr_db_ci_high"] == row[f"psnr_db_{o}_ci_high"]
        assert r["failed"] == row[f"failed_{o}"] and r["image_failure_rate"] == row[f"image_failure_rate_{o}"]
        assert all(r[c] == row[c] or r[c] != r[c] and row[c] != row[c]  # the point on every row (NaN: NaN)
                   for c in POINT_COLUMNS if c in row)
        assert ("bler" in r) == (o != "capacity")
    assert set(options[0]) == set(options[1]) == set(options[2])  # every MCS row has the same columns
    # every column of the point lands in exactly one row
    assert sum(len(set(r) - set(POINT_COLUMNS) - {"scheme", "channel", "config"}) for r in rows) == \
        len(set(row) - set(POINT_COLUMNS) - {"scheme", "channel"})


def test_hevc_codec_fits_its_budget():
    pytest.importorskip("pillow_heif")
    s = _scheme(codec="hevc", mcs=[QAM16])
    s.reset()
    c = s.simulate(2, torch.tensor(1e-3), _Clean())
    entry = s._cache[1536]
    assert (entry.file_bits[:2] <= 1536).all() and c["failed_16qam"] == c["unfit_16qam"]
    assert "x265" in s.describe()["codec"]


def test_abbreviated_jpeg_stream_counts_the_stream_and_a_quality_byte():
    img = _images(1, 0)[0]
    full, abbr = JpegCodec(optimize=False), JpegCodec(optimize=False, headers="abbreviated")
    data = abbr.encode(img, 30)
    assert data == full.encode(img, 30)  # the same file; only the accounting differs
    wire = abbr.wire_bytes(data)
    assert abbr.counted_bits(data) == 8 * len(wire) < full.counted_bits(data) - 8 * 400
    assert wire[1:3] == b"\xff\xd8" and wire.endswith(b"\xff\xd9")
    assert b"\xff\xdb" not in wire[:40] and b"\xff\xc4" not in wire[:40] and b"\xff\xc0" in wire[:10]
    with pytest.raises(ValueError, match="optimize"):
        JpegCodec(headers="abbreviated")
    with pytest.raises(ValueError, match="optimize"):
        ImageDigitalParams(codec="jpeg", jpeg={"headers": "abbreviated", "optimize": True}, bandwidth_ratio=0.1,
                           capacity=True)


def test_params_are_checked():
    with pytest.raises(ValueError, match="mcs grid, capacity"):
        ImageDigitalParams(bandwidth_ratio="1/6")
    with pytest.raises(ValueError, match="fraction"):
        ImageDigitalParams(bandwidth_ratio="one sixth", capacity=True)
    with pytest.raises(ValueError, match="needs an LDPC code"):
        McsParams(k=64, bits_per_symbol=2)
    with pytest.raises(ValueError, match="unique"):
        ImageDigitalParams(bandwidth_ratio=0.1, mcs=[QPSK, QPSK])


def test_presets_and_scenario_fit_whole_codewords():
    sc = load_scenario(ROOT / "scenarios" / "image_digital_cifar10.yaml", profile="quick",
                       overrides=["scheme_defaults.image_digital.data.path=/nowhere"])
    assert sc.snr.axis == "esno" and {0.0, 15.0} <= set(sc.snr.points())
    for spec in sc.schemes:
        p = ImageDigitalParams(**spec.params)
        assert p.data.eval_subset == 100 and p.data.path == "/nowhere" and p.channel_uses in (256, 512)
        if p.mcs:
            assert len(p.mcs) >= 6 and {m.bits_per_symbol for m in p.mcs} == {2, 4, 6}
            rates = [m.k / m.n for m in p.mcs]
            assert min(rates) == pytest.approx(1 / 3, abs=0.01) and max(rates) == pytest.approx(0.75)
            for m in p.mcs:  # every MCS fills the image's channel uses with whole codewords
                assert (p.channel_uses * m.bits_per_symbol) % m.n == 0 and p.channel_uses * m.bits_per_symbol >= m.n
