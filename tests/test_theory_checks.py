"""The simulated classical link against closed forms and against a direct Sionna chain."""

import pytest
import torch
from sionna.phy import config as sionna_config
from sionna.phy.channel import AWGN
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Demapper, Mapper
from sionna.phy.utils import ebnodb2no

from linksim.channels import AWGNChannel, RayleighChannel, RayleighParams
from linksim.config import SnrGrid, StopRule
from linksim.engine import WorkUnit, run_unit
from linksim.link import DigitalLinkParams
from linksim.schemes.digital_link import DigitalLinkScheme
from linksim.theory import uncoded_ber_awgn, uncoded_ber_rayleigh

EBNO = SnrGrid(axis="ebno", values=[0.0])


def _run(scheme, channel, snr_db, stop, seed=5):
    return run_unit(scheme, channel, WorkUnit("s", "c", snr_db), EBNO, stop, seed)


@pytest.mark.parametrize("ebno_db", [0.0, 4.0, 8.0])
def test_uncoded_16qam_awgn_inside_interval_of_closed_form(ebno_db):
    scheme = DigitalLinkScheme(DigitalLinkParams(k=2000, bits_per_symbol=4))
    row = _run(scheme, AWGNChannel(), ebno_db, StopRule(batch_size=200, target_errors=10**9, max_samples=400))
    exact = uncoded_ber_awgn("qam", 4, ebno_db + 6.020599913)
    assert row["ber_theory"] == pytest.approx(exact, rel=1e-6)
    assert row["ber_ci_low"] <= exact <= row["ber_ci_high"], row
    assert row["bits"] == 800_000 and row["ber_ci_high"] - row["ber_ci_low"] < 0.1 * exact


@pytest.mark.parametrize(
    ("modulation", "m", "k", "coherence", "blocks"), [("pam", 1, 1, None, 500_000), ("qam", 4, 1000, 1, 2000)]
)
def test_uncoded_rayleigh_ber_inside_interval_of_closed_form(modulation, m, k, coherence, blocks):
    # per-codeword fading with one-bit blocks (BPSK), so bit errors are independent and the binomial
    # interval is valid; and i.i.d. fading per symbol with 16-QAM
    scheme = DigitalLinkScheme(DigitalLinkParams(k=k, bits_per_symbol=m, modulation=modulation))
    channel = RayleighChannel(RayleighParams(coherence_symbols=coherence))
    row = _run(scheme, channel, 10.0, StopRule(batch_size=blocks // 4, target_errors=10**9, max_samples=blocks))
    esno = 10.0 + 10 * torch.log10(torch.tensor(float(m))).item()
    exact = uncoded_ber_rayleigh(modulation, m, esno)
    assert row["ber_theory"] == pytest.approx(exact, rel=1e-6)
    assert row["ber_ci_low"] <= exact <= row["ber_ci_high"], row


def test_ldpc_bler_equals_direct_sionna_chain_on_same_seed():
    k, n, m, ebno_db, batch, batches, seed = 512, 1024, 2, 1.5, 250, 3, 77
    scheme = DigitalLinkScheme(DigitalLinkParams(k=k, n=n, bits_per_symbol=m))
    row = _run(scheme, AWGNChannel(), ebno_db, StopRule(batch_size=batch, target_errors=10**9,
                                                         max_samples=batch * batches), seed=seed)
    # the same chain written directly with Sionna's blocks, as its tutorials do
    sionna_config.seed = seed
    src, enc = BinarySource(), LDPC5GEncoder(k, n)
    dec, mapper, demapper, awgn = LDPC5GDecoder(enc, num_iter=20), Mapper("qam", m), Demapper("app", "qam", m), AWGN()
    block_errors = 0
    for _ in range(batches):
        no = ebnodb2no(ebno_db, m, k / n)
        b = src([batch, k])
        b_hat = dec(demapper(awgn(mapper(enc(b)), no), no))
        block_errors += int((b != b_hat).any(-1).sum())
    from linksim.stats import binomial_interval

    lo, hi = binomial_interval(block_errors, batch * batches)
    assert row["samples"] == batch * batches
    assert 0 < row["block_errors"] < row["samples"]
    assert max(lo, row["bler_ci_low"]) <= min(hi, row["bler_ci_high"])  # intervals overlap
    assert abs(row["block_errors"] - block_errors) <= 3 * (block_errors**0.5 + 1)
