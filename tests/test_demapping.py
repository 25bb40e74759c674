"""The per-axis demapper against Sionna's Demapper."""

import numpy as np
import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder
from sionna.phy.mapping import Constellation, Demapper

from linksim.channels.awgn import AWGNChannel
from linksim.link.demapping import AxisDemapper, _axis_labels, make_demapper
from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams

CONSTELLATIONS = [("qam", 2), ("qam", 4), ("qam", 6), ("qam", 8), ("pam", 1), ("pam", 2), ("pam", 3)]


@pytest.mark.parametrize("method", ["app", "maxlog"])
@pytest.mark.parametrize(("kind", "m"), CONSTELLATIONS)
def test_logits_equal_sionnas_to_float_rounding(kind, m, method):
    gen = torch.Generator().manual_seed(m)
    const = Constellation(kind, m)
    ref, ours = Demapper(method, constellation=const), make_demapper(method, const)
    assert isinstance(ours, AxisDemapper)
    y = torch.complex(torch.randn(50, 40, generator=gen), torch.randn(50, 40, generator=gen))
    for no in (torch.tensor(0.3), torch.rand(50, 1, generator=gen) * 0.1 + 0.01):  # scalar and per block
        a, b = ref(y, no), ours(y, no)
        assert a.shape == b.shape == (50, 40 * m)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))
        assert torch.equal(a > 0, b > 0)


def test_a_constellation_that_is_not_a_product_goes_to_sionna():
    points = np.exp(2j * np.pi * np.arange(8) / 8)  # 8-PSK
    assert _axis_labels(points, 3) is None
    const = Constellation("custom", 3, points=torch.as_tensor(points, dtype=torch.complex64))
    assert isinstance(make_demapper("app", const), Demapper)
    with pytest.raises(ValueError, match="product constellation"):
        AxisDemapper("app", const)


def test_very_reliable_bits_keep_their_sign_and_stay_finite():
    const = Constellation("qam", 4)
    y = const()[:16].reshape(1, 16) * 1.0
    llr = make_demapper("app", const)(y, torch.tensor(1e-6))
    ref = Demapper("app", constellation=const)(y, torch.tensor(1e-6))
    assert torch.isfinite(llr).all() and torch.equal(llr > 0, ref > 0)


def test_the_default_link_decides_as_sionnas_demapper_with_the_torch_core():
    """The per-axis demapper, matrix encoder and compiled decoder together against Sionna's demapper and
    encoder with linksim's torch core: the same decoded bits on noisy 16-QAM blocks near the threshold."""
    params = DigitalLinkParams(k=512, n=1024, bits_per_symbol=4)
    fast = DigitalLink(params)
    reference = DigitalLink(params.model_copy(update={"decoder": DecoderParams(implementation="torch")}))
    reference.demapper = Demapper("app", constellation=Constellation("qam", 4))
    reference.encoder = LDPC5GEncoder(512, 1024)
    gen = torch.Generator().manual_seed(11)
    bits = torch.randint(0, 2, (300, 512), generator=gen).float()
    assert torch.equal(fast.transmit(bits), reference.transmit(bits))
    torch.manual_seed(12)
    y, no = AWGNChannel()(fast.transmit(bits), torch.full((300,), 0.27))
    out_fast, out_ref = fast.receive(y, no)[0], reference.receive(y, no)[0]
    fails = (out_ref != bits).any(1).float().mean()
    assert 0.05 < fails < 0.95
    assert torch.equal(out_fast, out_ref)
