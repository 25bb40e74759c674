"""The compiled CPU BP core (the default on CPUs) against linksim's torch core and Sionna's decoder."""

import numba
import numpy as np
import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from test_ldpc import _llrs

from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams
from linksim.link.ldpc import CN_UPDATES, EarlyStopBP, LDPC5GEarlyStopDecoder
from linksim.link.ldpc import _phi as _phi_torch
from linksim.link.ldpc_cpu import LDPC5GCompiledDecoder, _phi


@numba.njit
def _phi_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = _phi(x[i])


def _phi_array(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _phi_loop(x, out)
    return out


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


@pytest.mark.parametrize("implementation", ["auto", "cpu"])
def test_the_link_selects_it_by_default_and_by_name(implementation):
    params = DigitalLinkParams(k=128, n=256, bits_per_symbol=4, decoder=DecoderParams(implementation=implementation))
    link = DigitalLink(params)
    assert isinstance(link.decoder, LDPC5GCompiledDecoder)
    assert link.decoder.cpu_only == (implementation == "cpu")
    assert type(DigitalLink(params.model_copy(update={"decoder": DecoderParams(implementation="torch")})).decoder) \
        is LDPC5GEarlyStopDecoder
    bits = torch.randint(0, 2, (5, 128)).float()
    y = link.transmit(bits)
    assert torch.equal(link.receive(y, torch.tensor(1e-3))[0], bits)
    assert (link.last_iterations == 1).all()


def test_phi_is_within_three_units_in_the_last_place_of_torchs():
    # every binade of phi's argument range, and the clipped ends
    gen = torch.Generator().manual_seed(7)
    x = torch.cat([torch.exp(torch.empty(200_000).uniform_(-17.0, 2.9, generator=gen)),
                   torch.empty(100_000).uniform_(0, 17, generator=gen), torch.tensor([0.0, 1e-9, 16.7, 30.0])])
    ref = _phi_torch(x).numpy()
    ours = _phi_array(x.numpy())
    ulps = np.abs(ours.view(np.int32).astype(np.int64) - ref.view(np.int32))
    assert ulps.max() <= 3
    assert (ulps > 0).mean() < 0.1


@pytest.mark.parametrize("schedule", ["flooding", "layered"])
def test_noise_free_codewords_decode_in_one_iteration(schedule):
    enc = LDPC5GEncoder(512, 1024)
    bits = torch.randint(0, 2, (70, 512), generator=torch.Generator().manual_seed(2)).float()
    llr = 20.0 * (2 * enc(bits) - 1)  # logits: log p(1)/p(0)
    dec = LDPC5GCompiledDecoder(enc, schedule=schedule)
    assert torch.equal(dec(llr), bits) and (dec.last_iterations == 1).all()


def test_layered_schedule_needs_fewer_iterations_for_the_same_frame_errors():
    enc, bits, llr = _llrs(512, 1024, 1.5, 200, seed=8)
    flooding = LDPC5GCompiledDecoder(enc, num_iter=20)
    layered = LDPC5GCompiledDecoder(enc, num_iter=20, schedule="layered")
    fer_flooding = (flooding(llr) != bits).any(1).float().mean()
    fer_layered = (layered(llr) != bits).any(1).float().mean()
    assert fer_layered <= fer_flooding + 0.02
    assert layered.last_iterations.float().mean() < 0.75 * flooding.last_iterations.float().mean()


def test_inputs_off_the_cpu_go_to_the_torch_core_unless_cpu_only(monkeypatch):
    enc = LDPC5GEncoder(256, 512)
    llr = torch.zeros(3, 512, device="meta")  # no GPU needed: any tensor that is not on a CPU
    monkeypatch.setattr(EarlyStopBP, "_decide", lambda self, llr, num_iter: ("torch core", num_iter))
    assert LDPC5GCompiledDecoder(enc)._decide(llr, 7) == ("torch core", 7)
    with pytest.raises(ValueError, match="runs float32 on a CPU, found torch.float32 on meta"):
        LDPC5GCompiledDecoder(enc, cpu_only=True)._decide(llr, 7)
    with pytest.raises(ValueError, match="schedule: layered"):
        LDPC5GCompiledDecoder(enc, schedule="layered")._decide(llr, 7)
    with pytest.raises(ValueError, match="schedule must be one of"):
        LDPC5GCompiledDecoder(enc, schedule="zigzag")
