"""The compiled CPU BP core against linksim's torch core and Sionna's decoder."""

import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from test_ldpc import _llrs

from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams
from linksim.link.ldpc import CN_UPDATES, LDPC5GEarlyStopDecoder
from linksim.link.ldpc_cpu import LDPC5GCompiledDecoder


def _both(enc, llr, **kw):
    """(torch core, compiled core) after decoding ``llr`` with the same settings, and their outputs."""
    ref, fast = LDPC5GEarlyStopDecoder(enc, **kw), LDPC5GCompiledDecoder(enc, **kw)
    return ref, fast, ref(llr), fast(llr)


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("cn_update", CN_UPDATES)
def test_noisy_codewords_decide_as_the_torch_core(cn_update, early_stop):
    # near the threshold (a mix of decoded and failed blocks), more blocks than SIMD lanes
    enc, bits, llr = _llrs(512, 1024, 1.0, 100, seed=4)
    ref, fast, out_ref, out = _both(enc, llr, cn_update=cn_update, num_iter=12, early_stop=early_stop)
    assert torch.equal(out, out_ref)
    assert torch.equal(fast.last_iterations, ref.last_iterations)
    if cn_update == "boxplus-phi":
        assert 0.05 < (out != bits).any(1).float().mean() < 0.95


@pytest.mark.parametrize("early_stop", [True, False])
def test_random_llrs_decide_as_the_torch_core(early_stop):
    gen = torch.Generator().manual_seed(5)
    enc = LDPC5GEncoder(512, 1024)
    llr = 3 * torch.randn(40, 1024, generator=gen)
    ref, fast, out_ref, out = _both(enc, llr, num_iter=8, early_stop=early_stop, hard_out=False)
    assert torch.equal(out > 0, out_ref > 0)
    assert torch.equal(fast.last_iterations, ref.last_iterations)
    # phi's last bit may differ from torch's vectorised kernels: soft outputs agree to float32 rounding
    assert torch.allclose(out, out_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("early_stop", [True, False])
def test_long_code_decides_as_the_torch_core(early_stop):
    enc, _, llr = _llrs(3840, 15360, -2.0, 6, seed=6)  # near the threshold: 11-14 iterations with early stop
    ref, fast, out_ref, out = _both(enc, llr, num_iter=20, early_stop=early_stop)
    assert torch.equal(out, out_ref)
    assert torch.equal(fast.last_iterations, ref.last_iterations)


def test_without_early_stop_decisions_equal_sionna():
    enc, bits, llr = _llrs(256, 512, 1.0, 300)
    ref = LDPC5GDecoder(enc, num_iter=12)(llr)
    out = LDPC5GCompiledDecoder(enc, num_iter=12, early_stop=False)(llr)
    ref_fail, fail = (ref != bits).any(1), (out != bits).any(1)
    assert 0.05 < ref_fail.float().mean() < 0.95
    assert (ref_fail == fail).float().mean() >= 0.99  # as the torch core: summation order may flip a borderline block
    assert (out == ref).all(1).float().mean() >= 0.98


def test_an_empty_batch_decodes_to_nothing():
    dec = LDPC5GCompiledDecoder(LDPC5GEncoder(100, 200))
    assert dec(torch.zeros(0, 200)).shape == (0, 100) and dec.last_iterations.shape == (0,)


def test_the_link_selects_it_by_name():
    params = DigitalLinkParams(k=128, n=256, bits_per_symbol=4, decoder=DecoderParams(implementation="cpu"))
    link = DigitalLink(params)
    assert isinstance(link.decoder, LDPC5GCompiledDecoder)
    bits = torch.randint(0, 2, (5, 128)).float()
    y = link.transmit(bits)
    assert torch.equal(link.receive(y, torch.tensor(1e-3))[0], bits)
    assert (link.last_iterations == 1).all()
