"""5G LDPC encoding as a matrix product against Sionna's encoder."""

import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder

from linksim.link.ldpc_encoder import LDPC5GMatrixEncoder, make_ldpc_encoder


@pytest.mark.parametrize(("k", "n", "m"), [(512, 1024, None), (512, 1024, 4), (100, 300, None), (1000, 1500, 2),
                                           (40, 60, None)])
def test_codewords_equal_sionnas(k, n, m):
    bits = torch.randint(0, 2, (3, 70, k), generator=torch.Generator().manual_seed(k)).float()
    ref, ours = LDPC5GEncoder(k, n, num_bits_per_symbol=m), LDPC5GMatrixEncoder(k, n, num_bits_per_symbol=m)
    assert torch.equal(ours(bits), ref(bits))
    assert torch.equal(ours(bits, rv=[0, 2]), ref(bits, rv=[0, 2]))  # redundancy versions: Sionna's own path


def test_long_codes_keep_sionnas_encoder():
    assert type(make_ldpc_encoder(3840, 15360)) is LDPC5GEncoder
    assert type(make_ldpc_encoder(512, 1024)) is LDPC5GMatrixEncoder
