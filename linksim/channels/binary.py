"""Bit channels: bits in, received bits + per-bit crossover probability out (BSC, multi-level BSC, digital link)."""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from sionna.phy.utils import rand
from torch import nn

from linksim import registry
from linksim.link.digital import DigitalLink, DigitalLinkParams
from linksim.snr import esno_db_to_no

__all__ = [
    "BitChannel",
    "bsc_output_probs",
    "BSC",
    "BSCParams",
    "geometric_levels",
    "level_index",
    "MultiLevelBSC",
    "MultiLevelBSCParams",
    "DigitalLinkBits",
    "DigitalLinkBitsParams",
    "build_bit_channel",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class BitChannel(nn.Module):
    """The one interface every linksim bit channel implements: the bit-level twin of
    :class:`~linksim.channels.base.Channel` ("in -> out + CSI").

    Randomness comes from Sionna's generator for the tensor's device (``sionna.phy.config.torch_rng``, seeded
    per work unit by the engine), so a seeded run is reproducible.

    :input bits: [batch, n], float32 in {0, 1}.
    :input no: [] or [batch], float32, or ``None``. Noise variance per complex symbol (``1 / (Es/N0)``) for
        channels whose error rate follows an SNR; channels with fixed crossover probabilities ignore it.
    :output bits_hat: [batch, n], float32 in {0, 1}. The received bits.
    :output flip_prob: [batch, n], float32. Each bit's crossover probability ``P(bits_hat != bits)``, what a
        receiver knows about the channel (its CSI).
    """

    def forward(self, bits: torch.Tensor, no: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def channel_uses(self, num_bits: int) -> float:
        """Uses of the underlying medium (complex symbols for a modulated link) to carry one row of
        ``num_bits`` bits; one per bit for a memoryless binary channel."""
        return float(num_bits)


def bsc_output_probs(probs: torch.Tensor, flip_prob: torch.Tensor | float) -> torch.Tensor:
    """``P(received bit = 1) = f (1 - 2 eps) + eps`` for a bit that is 1 with probability ``f`` sent over a
    BSC with crossover ``eps`` (seed002 Lemma 1; use it in :func:`~linksim.estimators.bernoulli_log_prob`).

    :input probs: [...], float in [0, 1].
    :input flip_prob: [...] (broadcastable) or a float, in [0, 1].
    :output p1: [...], float in [0, 1], differentiable in ``probs``.
    """
    return probs * (1.0 - 2.0 * flip_prob) + flip_prob


def _flip(bits: torch.Tensor, flip_prob: torch.Tensor) -> torch.Tensor:
    """XOR ``bits`` with Bernoulli(``flip_prob``) errors drawn from Sionna's generator of ``bits.device``.

    Written ``bits + e (1 - 2 bits)``: exactly the XOR in value, differentiable in ``bits`` with derivative
    ``1 - 2 e`` (+1 where a bit passes, -1 where it is flipped)."""
    u = rand(tuple(bits.shape), dtype=torch.float32, device=bits.device)
    e = (u < flip_prob).to(bits.dtype)
    return bits + e * (1.0 - 2.0 * bits)


def _rows(no: torch.Tensor, batch: int) -> torch.Tensor:
    """[] or [batch] -> [batch, 1] (or [] for a scalar)."""
    if no.dim() == 0:
        return no
    if no.shape != (batch,):
        raise ValueError(f"no must be a scalar or one value per row ({batch}), found shape {tuple(no.shape)}")
    return no.unsqueeze(-1)


class BSCParams(BaseModel):
    """``p``: crossover probability; ``None`` = that of hard-decided BPSK on the complex AWGN channel at the
    call's noise variance, ``p = Q(sqrt(2 / no)) = erfc(sqrt(1 / no)) / 2`` (so the BSC follows an SNR grid)."""

    model_config = ConfigDict(extra="forbid")
    p: Probability | None = None


@registry.register_bit_channel("bsc", BSCParams)
class BSC(BitChannel):
    """Binary symmetric channel: each bit flips independently with probability ``p``.

    Flips are ``u < p`` with ``u`` uniform from Sionna's generator (exact Bernoulli samples). Sionna's own
    ``BinarySymmetricChannel`` was not used: it draws four uniforms per bit (a Gumbel-softmax sample for
    each of ``p_b0`` and ``p_b1``) and ran 35x slower than this on 3.2 M bits on a CPU, and its XOR passes
    an identity gradient even for flipped bits; here ``d bits_hat / d bits = 1 - 2 e`` (see :class:`BitChannel`).

    :param params: :class:`BSCParams`.

    Inputs and outputs as :class:`BitChannel`; ``no`` is used only when ``params.p`` is ``None``
    (then ``flip_prob`` is one value per row for a per-example ``no``).

    .. rubric:: Example

    >>> ch = BSC(BSCParams(p=0.1))
    >>> bits_hat, flip_prob = ch(torch.randint(0, 2, (4, 100)).float())
    >>> flip_prob[0, 0].item()
    0.10000000149011612
    """

    def __init__(self, params: BSCParams | None = None):
        super().__init__()
        self.params = params or BSCParams()

    def crossover(self, no: torch.Tensor | None, device: torch.device | str = "cpu") -> torch.Tensor:
        """The crossover probability, [] or [batch] float32."""
        if self.params.p is not None:
            return torch.tensor(self.params.p, dtype=torch.float32, device=device)
        if no is None:
            raise ValueError("BSC with p: null takes its crossover from the noise variance: pass no")
        no = torch.as_tensor(no, dtype=torch.float32, device=device)
        return 0.5 * torch.special.erfc(torch.rsqrt(no))

    def forward(self, bits: torch.Tensor, no: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = _rows(self.crossover(no, bits.device), bits.shape[0])
        flip_prob = p.to(torch.float32).expand(bits.shape)
        return _flip(bits, flip_prob), flip_prob


def geometric_levels(eps_first: float, eps_last: float, levels: int) -> torch.Tensor:
    """Crossover probabilities decreasing geometrically from ``eps_first`` to ``eps_last`` (seed002 eq. 17):
    ``eps_i = eps_first (eps_last / eps_first)^(i / (levels - 1))``, ``i = 0 .. levels - 1``.

    :output eps: [levels], float64 (``[eps_first]`` for one level).
    """
    if levels == 1:
        return torch.tensor([eps_first], dtype=torch.float64)
    i = torch.arange(levels, dtype=torch.float64)
    return eps_first * (eps_last / eps_first) ** (i / (levels - 1))


def level_index(bits: int, levels: int) -> torch.Tensor:
    """The level of each of ``bits`` positions, contiguous: position ``j`` (0-based) is in level
    ``floor(j * levels / bits)`` (seed002 §2; equal groups when ``levels`` divides ``bits``).

    :output level: [bits], int64 in ``[0, levels)``, non-decreasing.
    """
    return torch.arange(bits, dtype=torch.int64) * levels // bits


class MultiLevelBSCParams(BaseModel):
    """``bits``: bits per row (M); ``levels`` (N, default 10) contiguous groups, level 0 first (the least
    reliable in seed002's medium); either the geometric schedule from ``eps_first`` to ``eps_last`` or an
    explicit list ``eps`` of per-level crossover probabilities (then ``levels`` defaults to its length)."""

    model_config = ConfigDict(extra="forbid")
    bits: PositiveInt
    levels: PositiveInt | None = None
    eps_first: float = Field(0.4, gt=0.0, le=1.0)
    eps_last: float = Field(0.001, gt=0.0, le=1.0)
    eps: list[Probability] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.eps is not None and self.levels is not None and self.levels != len(self.eps):
            raise ValueError(f"levels {self.levels} does not match the {len(self.eps)} entries of eps")
        if self.num_levels > self.bits:
            raise ValueError(f"{self.num_levels} levels need at least as many bits, found bits={self.bits}")
        return self

    @property
    def num_levels(self) -> int:
        return len(self.eps) if self.eps is not None else (self.levels or 10)

    def level_eps(self) -> torch.Tensor:
        """[levels] float64 crossover probability of each level."""
        if self.eps is not None:
            return torch.tensor(self.eps, dtype=torch.float64)
        return geometric_levels(self.eps_first, self.eps_last, self.num_levels)


@registry.register_bit_channel("multilevel_bsc", MultiLevelBSCParams)
class MultiLevelBSC(BitChannel):
    """Parallel BSCs on contiguous groups of bits: seed002's multi-level reliability interface.

    Bit ``j`` of a row goes through the BSC of level :func:`level_index` ``(j)``; with the defaults and
    ``bits = 10000`` that is levels of 1,000 bits with crossover 0.4, 0.2056, ..., 0.001. Flips as
    :class:`BSC`; ``no`` is ignored.

    :param params: :class:`MultiLevelBSCParams`.

    :input bits: [batch, params.bits], float32 in {0, 1}.
    :output bits_hat, flip_prob: [batch, params.bits], float32, as :class:`BitChannel`.

    .. rubric:: Example

    >>> ch = MultiLevelBSC(MultiLevelBSCParams(bits=100, levels=4, eps_first=0.4, eps_last=0.05))
    >>> bits_hat, flip_prob = ch(torch.zeros(2, 100))
    >>> ch.per_level(bits_hat).shape  # the empirical BER of each level
    torch.Size([2, 4])
    """

    def __init__(self, params: MultiLevelBSCParams):
        super().__init__()
        self.params = params
        eps = params.level_eps().to(torch.float32)
        level = level_index(params.bits, params.num_levels)
        self.register_buffer("eps", eps, persistent=False)
        self.register_buffer("level", level, persistent=False)
        self.register_buffer("flip_probs", eps[level], persistent=False)
        self.register_buffer("level_sizes", torch.bincount(level, minlength=len(eps)), persistent=False)

    def per_level(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``x`` [..., bits] over each level's bits -> [..., levels] (e.g. per-level BER of errors)."""
        sums = torch.zeros(*x.shape[:-1], len(self.eps), dtype=x.dtype, device=x.device)
        return sums.index_add_(-1, self.level, x) / self.level_sizes.to(x.dtype)

    def forward(self, bits: torch.Tensor, no: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if bits.shape[-1] != self.params.bits:
            raise ValueError(f"expected rows of {self.params.bits} bits, found {bits.shape[-1]}")
        flip_prob = self.flip_probs.expand(bits.shape)
        return _flip(bits, flip_prob), flip_prob


class DigitalLinkBitsParams(BaseModel):
    """A real digital link serving the bit interface.

    ``link``: the :class:`~linksim.link.digital.DigitalLinkParams` (5G LDPC + QAM, or uncoded). ``channel``:
    a registered symbol channel type (``awgn``, ``rayleigh``, ``tdl``) or a preset name (``rayleigh-fast``,
    ``tdl-a-ls``, ...); ``channel_params`` are its params (merged over a preset's). ``esno_db``: Es/N0 when a
    call passes no ``no``. ``chunk_words``: codewords per call of the link (bounds memory).
    """

    model_config = ConfigDict(extra="forbid")
    link: DigitalLinkParams
    channel: str = "awgn"
    channel_params: dict[str, Any] = {}
    esno_db: float | None = None
    chunk_words: PositiveInt = 4096

    @model_validator(mode="after")
    def _known_channel(self):
        self.channel_spec()  # unknown names and bad channel params fail here, when the params are read
        return self

    def channel_spec(self) -> tuple[str, BaseModel]:
        """``(channel type, validated channel params)``."""
        presets, types = registry.channel_presets(), registry.channels()
        if self.channel in presets:
            kind, params = presets[self.channel][0], {**presets[self.channel][1], **self.channel_params}
        elif self.channel in types:
            kind, params = self.channel, dict(self.channel_params)
        else:
            raise ValueError(f"unknown channel {self.channel!r}; types: {sorted(types)}, presets: {sorted(presets)}")
        return kind, types[kind].params.model_validate(params)


@registry.register_bit_channel("digital_link", DigitalLinkBitsParams)
class DigitalLinkBits(BitChannel):
    """Bits through a real :class:`~linksim.link.digital.DigitalLink` over a symbol channel.

    Each row is cut into ``ceil(n / k)`` words of ``k = link.payload_bits`` bits (the last padded with zeros),
    every word is one block of the link (CRC, LDPC, QAM, channel, APP demapping, BP decoding), and the
    padding is dropped again. The link decides hard bits and does not expose decoder LLRs, so ``flip_prob``
    is the *measured* bit error rate of the call (genie-aided: counted against the sent bits), one value per
    row when ``no`` has one value per row, else one for the whole call, broadcast to ``[batch, n]``. The
    output carries no gradient. The channel and link are built at construction, on Sionna's device; whatever
    they draw then (e.g. OFDM pilots) follows the seed the caller set.

    :param params: :class:`DigitalLinkBitsParams`.

    :input bits: [batch, n], float32 in {0, 1} (any n).
    :input no: [] or [batch], float32, or ``None`` for ``params.esno_db``. Noise variance per complex symbol.
    :output bits_hat, flip_prob: [batch, n], float32, as :class:`BitChannel`.

    .. rubric:: Example

    >>> ch = DigitalLinkBits(DigitalLinkBitsParams(link={"k": 64, "n": 128}, esno_db=6.0))
    >>> bits_hat, flip_prob = ch(torch.randint(0, 2, (3, 200)).float())
    >>> ch.channel_uses(200)  # 4 codewords of 64 QPSK symbols
    256.0
    """

    def __init__(self, params: DigitalLinkBitsParams):
        super().__init__()
        self.params = params
        kind, channel_params = params.channel_spec()
        self.link = DigitalLink(params.link)
        self.channel = registry.channels()[kind].factory(channel_params)

    @property
    def word_bits(self) -> int:
        """Payload bits per codeword (``k`` minus the CRC)."""
        return self.params.link.payload_bits

    def channel_uses(self, num_bits: int) -> float:
        words = math.ceil(num_bits / self.word_bits)
        return words * self.channel.channel_uses(self.params.link.num_symbols)

    def _noise(self, no: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        if no is None:
            if self.params.esno_db is None:
                raise ValueError("DigitalLinkBits needs no in the call or esno_db in its params")
            return esno_db_to_no(torch.tensor(self.params.esno_db, dtype=torch.float32, device=device))
        return torch.as_tensor(no, dtype=torch.float32, device=device)

    @torch.no_grad()
    def forward(self, bits: torch.Tensor, no: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n = bits.shape
        no = self._noise(no, bits.device)
        _rows(no, batch)  # shape check
        k = self.word_bits
        words = math.ceil(n / k)
        blocks = F.pad(bits.to(torch.float32), (0, words * k - n)).reshape(batch * words, k)
        no_blocks = no.repeat_interleave(words) if no.dim() == 1 else no
        step = self.params.chunk_words
        decoded = [
            self.link(blocks[s : s + step], self.channel, no_blocks[s : s + step] if no.dim() == 1 else no)[0]
            for s in range(0, batch * words, step)
        ]
        bits_hat = torch.cat(decoded).reshape(batch, words * k)[:, :n].to(bits.dtype)
        errors = (bits_hat != bits).to(torch.float32)
        ber = errors.mean(dim=1, keepdim=True) if no.dim() == 1 else errors.mean()
        return bits_hat, ber.expand(batch, n)


def build_bit_channel(type: str, params: dict[str, Any] | BaseModel | None = None) -> BitChannel:
    """Build a registered bit channel from its type name and params (a scheme's ``{type: bsc, params: {...}}``).

    :param type: a name in :func:`linksim.registry.bit_channels` (``bsc``, ``multilevel_bsc``, ``digital_link``).
    :param params: a dict validated against the channel's params model (unknown keys refused), or a model.
    :output: the :class:`BitChannel`.

    .. rubric:: Example

    >>> ch = build_bit_channel("bsc", {"p": 0.05})
    """
    table = registry.bit_channels()
    if type not in table:
        raise ValueError(f"unknown bit channel {type!r}; known: {sorted(table)}")
    return table[type].build(params)
