"""AESC-I (seed004): model-parameter bits, splice, JPEG payload split, session accounting, the schemes end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import seeded

from linksim import registry
from linksim.channels.awgn import AWGNChannel
from linksim.channels.rayleigh import RayleighChannel
from linksim.link.digital import DigitalLink
from linksim.link.image_codec import jpeg_join, jpeg_split
from linksim.link.model_bits import ParameterCodec, splice, unsplice
from linksim.models.aesci import AESCI
from linksim.quantizers import UniformQuantizer
from linksim.schemes.aesci.base import (
    DEFAULT_LINK,
    SemanticImageParams,
    segment_symbols,
    send_segments,
)
from linksim.schemes.aesci.direct import AesciDirectScheme
from linksim.schemes.aesci.jpeg import (
    AesciJpegParams,
    AesciJpegScheme,
    jpeg_decode,
    jpeg_encode,
)
from linksim.schemes.aesci.learned import AesciParams, AesciScheme
from linksim.schemes.base import SchemeContext

TINY_TRAIN = {"epochs": 1, "batch_size": 100, "subset": 300, "validation": 50}
TINY_CLASSIFIER = {"epochs": 1, "subset": 200}


def test_decoder_parameters_round_trip_within_one_step():
    torch.manual_seed(0)
    decoder = AESCI("mnist", 40).decoder
    for bits in (8, 16):
        codec = ParameterCodec(decoder, bits)
        assert codec.num_bits == sum(p.numel() for p in decoder.parameters()) * bits == codec.to_bits().numel()
        rebuilt = codec.rebuild(codec.to_bits())
        for (name, p), q, r in zip(decoder.named_parameters(), codec.quantizers, rebuilt.parameters(), strict=True):
            assert (r - p).abs().max() <= q.step / 2 + 1e-6, name
        assert rebuilt is not decoder


def test_code_quantiser_round_trip_within_one_step_and_clips():
    q = UniformQuantizer(8, 0.0, 3.0)
    x = 3.0 * torch.rand(1000, generator=seeded(1))
    back = q.dequantize(q.from_bits(q.to_bits(q.quantize(x))))
    assert (back - x).abs().max() <= q.step / 2 + 1e-6
    assert q.dequantize(q.quantize(torch.tensor([7.0]))).item() == pytest.approx(3.0)


@pytest.mark.parametrize("bits", [8, 16])
def test_decoder_rebuilt_from_flipped_bits_has_finite_weights(bits):
    torch.manual_seed(1)
    decoder = AESCI("mnist", 40).decoder
    codec = ParameterCodec(decoder, bits)
    clean = codec.to_bits()
    for rate in (0.01, 0.5, 1.0):
        flips = torch.rand(clean.shape, generator=seeded(2)) < rate
        rebuilt = codec.rebuild(torch.where(flips, 1.0 - clean, clean))
        assert all(torch.isfinite(p).all() for p in rebuilt.parameters())
        assert any((p != r).any() for p, r in zip(decoder.parameters(), rebuilt.parameters(), strict=True))
        out = rebuilt(torch.rand(4, 40))
        assert torch.isfinite(out).all() and out.shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="parameter bits"):
        codec.rebuild(clean[:-1])


def test_splice_and_its_inverse_are_exact():
    g = seeded(3)
    segments = [torch.randint(0, 2, (n,), generator=g).float() for n in (1000, 7, 512, 1)]
    for block in (1, 512):
        stream = splice(segments, block)
        assert len(stream) == sum(math.ceil(len(s) / block) * block for s in segments)
        back = unsplice(stream, [len(s) for s in segments], block)
        assert all(torch.equal(a, b) for a, b in zip(segments, back, strict=True))
    assert stream[1000:1024].sum() == 0  # the padding of the first segment is zeros
    with pytest.raises(ValueError, match="does not hold"):
        unsplice(stream, [1000, 7], 512)


def test_jpeg_payload_header_split_round_trips():
    g = np.random.default_rng(4)
    for shape, quality in (((1, 28, 28), 0), ((1, 28, 28), 60), ((3, 32, 32), 90)):
        image = g.integers(0, 256, shape, dtype=np.uint8)
        data = jpeg_encode(image, quality)
        header, payload = jpeg_split(data)
        assert header[:2] == b"\xff\xd8" and header.rfind(b"\xff\xda") > 0 and len(payload) > 0
        assert jpeg_join(header, payload) == data
        assert jpeg_decode(data, shape).shape == shape
    with pytest.raises(ValueError, match="not a complete JPEG"):
        jpeg_split(data[:-2])


def test_send_segments_is_exact_at_high_snr_and_fails_at_low_snr():
    link = DigitalLink(DEFAULT_LINK)
    g = seeded(5)
    segments = [torch.randint(0, 2, (n,), generator=g).float() for n in (1500, 300, 300, 700)]
    received, errors = send_segments(link, segments, RayleighChannel(), torch.tensor(1e-4))
    assert all(torch.equal(a, b) for a, b in zip(segments, received, strict=True)) and errors.sum() == 0
    received, errors = send_segments(link, segments, AWGNChannel(), torch.tensor(10.0))
    assert errors.tolist() == [3, 1, 1, 2]  # every codeword fails at -10 dB
    assert segment_symbols(1500, DEFAULT_LINK) == 3 * 512
    kind, params = registry.channel_presets()["tdl-a"]  # beyond the paper: multipath over OFDM
    received, errors = send_segments(link, segments, registry.channels()[kind].build(params), torch.tensor(1e-3))
    assert all(torch.equal(a, b) for a, b in zip(segments, received, strict=True)) and errors.sum() == 0


def _context(tmp_path) -> SchemeContext:
    return SchemeContext(cache_dir=tmp_path / "models", run_dir=tmp_path / "run", train_channel=AWGNChannel(),
                         progress=False, seed=7)


def _aesci(**extra) -> AesciScheme:
    return AesciScheme(AesciParams(latent=40, data={"name": "mnist", "eval_subset": 20}, train=TINY_TRAIN,
                                   classifier_train=TINY_CLASSIFIER, **extra))


def test_session_accounting_of_channel_uses():
    link = DEFAULT_LINK
    for n in (1, 100, 10000):
        scheme = _aesci(session_images=n)
        decoder_bits = 7409 * 8
        assert scheme.facts["decoder_bits"] == decoder_bits and scheme.facts["compression_ratio"] == 784 / 40
        expected = segment_symbols(320, link) + segment_symbols(decoder_bits, link) / n
        assert scheme.channel_uses(AWGNChannel()) == pytest.approx(expected)
    assert _aesci(decoder_over_channel=False).channel_uses(AWGNChannel()) == segment_symbols(320, link)


def test_aesci_sessions_share_one_decoder(tmp_path, synthetic_data):
    scheme = _aesci(session_images=8)
    scheme.prepare(_context(tmp_path))
    assert (tmp_path / "run" / "training" / "classifier.csv").is_file()
    assert {"loss", "pixel", "semantic", "val_loss", "val_semantic"} <= set(_history_keys(tmp_path))
    scheme.reset()
    clean = scheme.simulate(20, torch.full((20,), 1e-4), AWGNChannel())
    assert clean["sessions"] == 3 and clean["decoder_bits"] == 3 * scheme.facts["decoder_bits"]
    assert clean["corrupted_sessions"] == clean["bit_errors"] == 0 and clean["samples"] == 20
    shown = scheme.reconstruct(torch.arange(4), torch.tensor(1e-4), AWGNChannel())
    assert torch.equal(shown, scheme.clean_shown[:4])
    scheme.reset()
    noisy = scheme.simulate(20, torch.full((20,), 3.0), AWGNChannel())  # -4.8 dB: nothing gets through
    assert noisy["corrupted_sessions"] == 3 and noisy["corrupted_images"] == 20
    assert noisy["bit_errors"] > 0 and noisy["decoder_bit_errors"] > 0
    assert not torch.equal(scheme.reconstruct(torch.arange(4), torch.tensor(3.0), AWGNChannel()),
                           scheme.clean_shown[:4])
    genie = _aesci(session_images=8, decoder_over_channel=False)  # the error-free-decoder ablation
    genie.prepare(_context(tmp_path))
    assert genie.facts["weights_reused"] and genie.facts["weights"] == scheme.facts["weights"]
    genie.reset()
    c = genie.simulate(20, torch.full((20,), 3.0), AWGNChannel())
    assert c["decoder_bits"] == c["corrupted_sessions"] == 0 and c["sessions"] == 3


def _history_keys(tmp_path) -> list[str]:
    (log,) = [p for p in (tmp_path / "run" / "training").glob("*.csv") if p.name != "classifier.csv"]
    return log.read_text().splitlines()[0].split(",")


def test_baselines_are_exact_at_high_snr(tmp_path, synthetic_data):
    ctx = _context(tmp_path)
    common = {"data": {"name": "mnist", "eval_subset": 10}, "classifier_train": TINY_CLASSIFIER}
    jpeg = AesciJpegScheme(AesciJpegParams(quality=60, **common))
    direct = AesciDirectScheme(SemanticImageParams(**common))
    for scheme in (jpeg, direct):
        scheme.prepare(ctx)
        scheme.reset()
        c = scheme.simulate(10, torch.full((10,), 1e-4), AWGNChannel())
        assert c["bit_errors"] == c["codeword_errors"] == 0 and c["correct"] == c["correct_original"]
        scheme.reset()
        bad = scheme.simulate(10, torch.full((10,), 3.0), AWGNChannel())
        assert bad["codeword_errors"] == bad["codewords"] and bad["psnr_sum"] < c["psnr_sum"]
    assert c["psnr_sum"] == 10 * 100.0  # direct transmission: PSNR at its cap
    assert jpeg.facts["compression_ratio"] > 1 and jpeg.channel_uses(AWGNChannel()) >= 512


def test_bad_params_name_the_key():
    with pytest.raises(ValueError, match="data.name"):
        AesciParams(latent=4, data={"name": "synthetic-cifar"})
    with pytest.raises(ValueError, match="link.n"):
        AesciParams(latent=4, link={"k": 512})
    with pytest.raises(ValueError, match="quality"):
        AesciJpegParams(quality=101)
