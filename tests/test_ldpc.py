"""linksim's 5G LDPC BP core against Sionna's decoder, and its early stop."""

import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Constellation, Demapper, Mapper

from linksim.link.digital import DecoderParams
from linksim.link.ldpc import CN_UPDATES, LDPC5GEarlyStopDecoder, _cn_update


def _llrs(k: int, n: int, esno_db: float, batch: int, seed: int = 0):
    """Info bits [batch, k] and QPSK APP logits [batch, n] over AWGN at ``esno_db``."""
    gen = torch.Generator().manual_seed(seed)
    enc = LDPC5GEncoder(k, n)
    const = Constellation("qam", 2)
    bits = torch.randint(0, 2, (batch, k), generator=gen).float()
    x = Mapper(constellation=const)(enc(bits))
    no = torch.tensor(10 ** (-esno_db / 10))
    noise = torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen))
    y = x + noise * (no / 2).sqrt()
    return enc, bits, Demapper("app", constellation=const)(y, no)


@pytest.mark.parametrize("cn_update", [c for c in CN_UPDATES if c != "normalized-minsum"])  # not in Sionna
def test_without_early_stop_decisions_equal_sionna(cn_update):
    # near the threshold: a mix of decoded and failed codewords
    enc, bits, llr = _llrs(256, 512, 1.0, 300)
    ref = LDPC5GDecoder(enc, cn_update=cn_update, num_iter=12)(llr)
    dec = LDPC5GEarlyStopDecoder(enc, cn_update=cn_update, num_iter=12, early_stop=False)
    out = dec(llr)
    ref_fail, fail = (ref != bits).any(1), (out != bits).any(1)
    assert 0.05 < ref_fail.float().mean() < 0.95
    assert (ref_fail == fail).float().mean() >= 0.99  # float summation order may flip a borderline block
    assert (out == ref).all(1).float().mean() >= 0.98  # failed blocks included: the same decisions, bit by bit
    assert (dec.last_iterations == 12).all()


def test_normalized_min_sum_scales_the_min_sum_messages():
    v2c = torch.randn(7, 5, 3)
    assert torch.equal(_cn_update(v2c, "normalized-minsum", None, 0.5), 0.5 * _cn_update(v2c, "minsum", None))
    enc, _, llr = _llrs(256, 512, 1.0, 50)
    minsum = LDPC5GEarlyStopDecoder(enc, cn_update="minsum", num_iter=8)(llr)
    unit = LDPC5GEarlyStopDecoder(enc, cn_update="normalized-minsum", minsum_scale=1.0, num_iter=8)(llr)
    assert torch.equal(minsum, unit)


def test_early_stop_keeps_the_error_rate_and_saves_iterations():
    enc, bits, llr = _llrs(256, 512, 2.0, 400, seed=1)
    full = LDPC5GEarlyStopDecoder(enc, num_iter=20, early_stop=False)(llr)
    dec = LDPC5GEarlyStopDecoder(enc, num_iter=20, early_stop=True)
    out = dec(llr)
    fail_full, fail = (full != bits).any(1), (out != bits).any(1)
    # a codeword that satisfies every check is final; it may only differ where the full run also failed
    assert fail.sum() <= fail_full.sum() + 2
    assert (out != full)[~fail_full & ~fail].sum() == 0
    it = dec.last_iterations
    assert it.dtype == torch.int32 and it.shape == (400,)
    assert it.float().mean() < 10 and it.min() >= 1
    assert (it[fail] == 20).all()  # a block that never satisfied its checks ran every iteration


def test_noiseless_codewords_stop_after_one_iteration():
    enc = LDPC5GEncoder(100, 300)
    bits = torch.randint(0, 2, (7, 100)).float()
    llr = 10.0 * (2 * enc(bits) - 1)  # logits log p(1)/p(0)
    dec = LDPC5GEarlyStopDecoder(enc, num_iter=20)
    assert torch.equal(dec(llr), bits)
    assert (dec.last_iterations == 1).all()


def test_an_empty_batch_decodes_to_nothing():  # Sionna's decoder raises on one
    dec = LDPC5GEarlyStopDecoder(LDPC5GEncoder(100, 200))
    assert dec(torch.zeros(0, 200)).shape == (0, 100) and dec.last_iterations.shape == (0,)


def test_soft_output_signs_match_hard_output_and_leading_dims_are_kept():
    enc, _, llr = _llrs(128, 384, 3.0, 12)
    hard = LDPC5GEarlyStopDecoder(enc)(llr.reshape(3, 4, 384))
    soft = LDPC5GEarlyStopDecoder(enc, hard_out=False)(llr.reshape(3, 4, 384))
    assert hard.shape == soft.shape == (3, 4, 128)
    assert torch.equal(hard, (soft > 0).float())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="cn_update must be one of"):
        LDPC5GEarlyStopDecoder(LDPC5GEncoder(100, 200), cn_update="layered")
    with pytest.raises(ValueError, match="no early stop"):
        DecoderParams(implementation="sionna")
    assert not DecoderParams(implementation="sionna", early_stop=False).early_stop
    with pytest.raises(ValueError, match="no normalized-minsum and no layered"):
        DecoderParams(implementation="sionna", early_stop=False, schedule="layered")
    with pytest.raises(ValueError, match="layered schedule runs in the compiled core"):
        DecoderParams(implementation="torch", schedule="layered")
    with pytest.raises(ValueError, match="minsum_scale"):
        DecoderParams(minsum_scale=0)


def test_compiled_iterations_decide_like_the_eager_path():
    enc, bits, llr = _llrs(128, 256, 1.5, 200, seed=3)
    eager = LDPC5GEarlyStopDecoder(enc, num_iter=10)
    fast = LDPC5GEarlyStopDecoder(enc, num_iter=10)
    fast.compile_iterations()
    out_eager, out_fast = eager(llr), fast(llr)
    assert (out_eager == out_fast).all(1).float().mean() >= 0.99
    assert abs(int((out_eager != bits).any(1).sum()) - int((out_fast != bits).any(1).sum())) <= 2
    assert (eager.last_iterations != fast.last_iterations).float().mean() <= 0.01


def test_5g_ldpc_params_apply_sionnas_rules_when_read():
    """DigitalLinkParams refuses exactly the (k, n) Sionna's LDPC5GEncoder would refuse when built: its
    length and rate checks and its base-graph selection (``_sel_basegraph``, called directly: building
    every encoder would take seconds)."""
    from pydantic import ValidationError
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    from linksim.link.digital import DigitalLinkParams

    def sionna_accepts(k, n):
        r = k / n
        if not (12 <= k <= 8448 and 0 <= n <= 316 * 384 and 1 / 5 <= r <= 0.95):
            return False
        try:
            LDPC5GEncoder._sel_basegraph(None, k, r)
        except ValueError:
            return False
        return True

    checked = 0
    for k in (12, 100, 292, 293, 1000, 3824, 3825, 3840, 3841, 4000, 8448):
        for rate in (0.15, 0.2, 0.22, 0.25, 0.26, 0.3, 0.34, 0.5, 0.67, 0.68, 0.9, 0.95):
            n = 2 * round(k / rate / 2)  # even, for QPSK
            if n <= k:
                continue
            try:
                DigitalLinkParams(k=k, n=n, bits_per_symbol=2)
                ours = True
            except ValidationError as err:
                ours = False
                assert "5G LDPC" in str(err) and f"k={k}" in str(err)
            assert ours == sionna_accepts(k, n), (k, n)
            checked += 1
    assert checked > 100
