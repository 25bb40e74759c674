"""Scheme: the classical digital chain of SINFONY Fig. 7 (float16 features -> Huffman -> 5G LDPC -> BPSK/QAM).

The source is what the SINFONY *perfect comm.* model transmits (its power-normalised Tx output,
``[B, 4, 56]`` on MNIST), or, with ``source: pixels``, the raw 8-bit pixels of each image quadrant
(the "Central - image transmission" variant). Per agent and per block of ``block_vectors`` test
images (the agent's ``block_vectors`` feature vectors, 100 x 56 = 5,600 float16 values on MNIST):

1. float32 -> float16 bit patterns (:func:`~linksim.link.huffman.float_to_symbols`); pixels are
   their own 8-bit symbols;
2. one Huffman code per agent over all 2^16 float16 patterns (2^8 pixel values), fitted on the
   training set (:meth:`~linksim.link.huffman.HuffmanCode.from_counts`, pseudo-count
   ``huffman_floor`` for unseen symbols, code length <= ``huffman_max_length``); the codebook is
   known at the receiver and not charged; each block is encoded independently;
3. the block's bitstream is cut into LDPC information words of ``k`` bits, the last one padded with
   random bits; every codeword goes through :class:`~linksim.link.digital.DigitalLink` (5G LDPC
   ``(k, n)``, optional interleaver, Gray BPSK = ``pam`` with 1 bit/symbol or QAM) and the scenario's
   channel, an APP demapper with the true noise variance and BP decoding (hard output);
4. the block's decoded bits are Huffman-decoded, the values go into the perfect-comm. receiver
   (``model.decode``), or the reassembled images into the central classifier.

**Failed codewords.** There is no CRC: a codeword the BP decoder gets wrong delivers its hard
decisions as they are, and the receiver Huffman-decodes them like any other bits. Bit errors can
desynchronise the prefix code: the block is then cut at ``block_vectors`` vectors (extra bits are
ignored) or, when the bits run out first, completed per ``pad`` (``random``: symbols drawn i.i.d.
from the code's distribution 2^-length; ``zero``: symbol 0, i.e. feature +0.0 or a black pixel).
float16 patterns that are not finite (all-ones exponent) and -0 become 0.0
(:func:`~linksim.link.huffman.symbols_to_float`). Blocks never affect each other.

**Rate accounting** (spec seed003 section 2). Complex channel uses per image
``= agents * values * b / (k/n) / bits_per_symbol``, with ``values`` per agent (56 features, or 196
pixels on MNIST) and ``b`` the mean Huffman code length in bits per value **measured on the training
symbols** the code was fitted on; LDPC padding and the codebook are not counted. BPSK spends one
complex channel use per coded bit (only its real part carries energy): the rate-normalised SNR
``Es/N0 + 10 log10(channel uses / 112)`` is then the paper's ``SNR + 10 log10(N_Tx,eff / N_Feat)``
with its per-real-dimension SNR and real channel uses, because both compare energy per image
(e.g. b = 11.86, R = 1/4, BPSK: +19.77 dB on Es/N0, i.e. the paper's +16.76 dB on an SNR that is
3.01 dB above Es/N0). ``info_bits`` per image (for the Eb/N0 axis) is ``agents * values * b``.

**Items and batches.** An item is one test image; the test set (all, or the ``data.eval_subset``
sample) is cut into ``floor(N / block_vectors)`` blocks (the rest is not used) that are visited
cyclically from the first one in every work unit. The batch the engine asks for is **rounded up to
whole blocks** and ``samples`` counts the images actually simulated, so use a ``stop.batch_size``
and ``max_samples`` that are multiples of ``block_vectors`` to hit them exactly. One call uses one noise variance for
all its codewords (a codeword carries parts of many images).

The source coding does not depend on the SNR: the test blocks are encoded once in :meth:`prepare`
and only the LDPC link runs per SNR point. The Huffman code is cached beside the model weights
(``<key>.huffman.npz``; the key covers the feature model's weights key).

**Counters:** ``samples`` (images), ``errors`` (misclassified), ``loss_sum`` (cross-entropy, nats),
``bits``, ``bit_errors`` (information bits of the LDPC link, padding included), ``blocks``,
``block_errors`` (codewords), ``source_blocks``, ``source_block_errors`` (Huffman blocks with any
wrong symbol), ``source_se``, ``source_values`` (squared error of the decoded values: features, or
pixels scaled to [0, 1], against the float16-rounded / exact values sent).
**Rates:** ``error_rate`` (primary), ``loss``, ``ber``, ``bler``, ``source_bler``, ``source_mse``.

CPU cost: BP decoding of one n = 15,360 codeword takes about 10 ms (8 iterations, early stop) to
25 ms (20 iterations) on one core of this project's machines; the link runs in chunks of
``decoder_chunk`` codewords (auto: 2^20 coded bits per call on a CPU, 2^23 on a GPU) and the decoder
splits a call further where that is faster (:class:`~linksim.link.ldpc.EarlyStopBP`). Huffman decoding
(about 0.7 ms per block of 5,600 values on one core, 1-3 % of a point's time on a CPU) runs in a worker
thread, block by block as their codewords come out of the decoder, so that on a GPU it can overlap the
decoding of the next chunk. The run's manifest records both stages per work unit (``stages_s``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt, ValidationError, model_validator

from linksim.atomic import atomic_write
from linksim.channels.base import Channel
from linksim.data.quadrants import split_quadrants
from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams
from linksim.link.huffman import HuffmanCode, float_to_symbols, symbols_to_float
from linksim.models import count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext
from linksim.schemes.sinfony.reference import SinfonyModelParams, SinfonyReference, training_images
from linksim.snr import LinkBudget
from linksim.training import cache_key, model_cache_dir

__all__ = [
    "SinfonyDigitalParams",
    "SinfonyDigitalScheme",
    "Transfer",
    "digital_channel_uses",
    "merge_quadrants",
    "decode_block",
]

GRID = 2  # SINFONY's 2 x 2 agents


class SinfonyDigitalParams(SinfonyModelParams):
    """The classical digital chain of SINFONY Fig. 7 (see the module docstring); ``data``,
    ``power_norm`` and ``train`` select the SINFONY model it builds on as for ``sinfony`` (the
    perfect-comm. model; the central classifier for ``source: pixels``).

    ``source``: ``features`` (the perfect-comm. model's transmitted features, float16) or ``pixels``
    (8-bit quadrant pixels into the central classifier). ``block_vectors``: images (feature vectors
    per agent) per Huffman block. ``k, n, modulation, bits_per_symbol, interleaver, decoder``: the
    :class:`~linksim.link.digital.DigitalLinkParams` of the link (5G LDPC, APP demapping; BPSK is
    ``modulation: pam, bits_per_symbol: 1``; ``interleaver: nr`` is the 38.212 row-column bit
    interleaver of depth ``bits_per_symbol``). ``pad``: how a desynchronised block that runs out of
    bits is completed. ``huffman_fit_images``: training images the Huffman code is fitted on, a seeded
    sample as for ``train.subset`` (default: those the SINFONY model was trained on, ``train.subset``
    or all). ``decoder_chunk``:
    codewords per BP decoder call (``None``: automatic).
    """

    source: Literal["features", "pixels"] = "features"
    block_vectors: PositiveInt = 100
    k: int = 3840
    n: int = 15360
    modulation: Literal["qam", "pam"] = "pam"
    bits_per_symbol: PositiveInt = 1
    interleaver: Literal["none", "nr", "random"] = "none"
    decoder: DecoderParams = DecoderParams()
    pad: Literal["random", "zero"] = "random"
    huffman_fit_images: PositiveInt | None = None
    huffman_max_length: int = Field(24, ge=16, le=25)
    huffman_floor: float = Field(0.5, gt=0)
    decoder_chunk: PositiveInt | None = None

    @model_validator(mode="after")
    def _link_is_valid(self):
        try:
            self.link_params()
        except ValidationError as err:
            raise ValueError(err.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    def link_params(self) -> DigitalLinkParams:
        return DigitalLinkParams(k=self.k, n=self.n, modulation=self.modulation, bits_per_symbol=self.bits_per_symbol,
                                 interleaver=self.interleaver, decoder=self.decoder)


def digital_channel_uses(agents: int, values: int, bits_per_value: float, k: int, n: int,
                         bits_per_symbol: int) -> float:
    """Complex channel uses per image of the digital chain: ``agents * values * bits_per_value`` Huffman
    bits, at code rate ``k/n``, ``bits_per_symbol`` coded bits per complex symbol (padding not counted)."""
    return agents * values * bits_per_value * n / k / bits_per_symbol


def merge_quadrants(tiles: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Inverse of :func:`~linksim.data.quadrants.split_quadrants`: ``[B, grid*grid, C, h, w] -> [B, C, grid*h, grid*w]``."""
    b, _, c, h, w = tiles.shape
    return tiles.reshape(b, grid, grid, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(b, c, grid * h, grid * w)


def decode_block(code: HuffmanCode, bits: np.ndarray, num_symbols: int, pad: Literal["random", "zero"],
                 rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Huffman-decode one received block (the hard bits of its codewords, padding included) into exactly
    ``num_symbols`` symbols, per the failure policy of the module docstring; also says whether the block
    ran out of bits (desynchronised and completed per ``pad``)."""
    symbols, decoded = code.decode(bits, num_symbols, pad=pad, rng=rng)
    return symbols, decoded < num_symbols


@dataclass
class Transfer:
    """What one call of :meth:`SinfonyDigitalScheme.transfer` moved: ``images`` (indices into the test
    set, [B]), ``sent`` and ``received`` (the values, [B, agents, values], float32: features after
    float16 rounding, or pixels in [0, 1]), ``received_symbols`` (uint, same shape) and the link counters."""

    images: np.ndarray
    sent: np.ndarray
    received: np.ndarray
    received_symbols: np.ndarray
    counters: dict[str, float]


@register_scheme("sinfony_digital", SinfonyDigitalParams)
class SinfonyDigitalScheme(Scheme):
    """SINFONY Fig. 7 classic digital baseline: Huffman + 5G LDPC + BPSK/QAM; an item is one test image.

    See the module docstring for the chain, the failure policy and the rate accounting.
    """

    rates = {
        "error_rate": Rate("errors", "samples"),
        "loss": Rate("loss_sum", "samples", interval=False),
        "ber": Rate("bit_errors", "bits"),
        "bler": Rate("block_errors", "blocks"),
        "source_bler": Rate("source_block_errors", "source_blocks"),
        "source_mse": Rate("source_se", "source_values", interval=False),
    }
    primary = "error_rate"

    def __init__(self, params: SinfonyDigitalParams):
        super().__init__()
        self.params = p = params
        self.link = DigitalLink(p.link_params())
        self.reference = SinfonyReference(p.reference_params("perfect" if p.source == "features" else "central"))
        self.agents = GRID * GRID
        self._bits_per_value: float | None = None
        self.facts = {}
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ source symbols and the Huffman code
    @property
    def alphabet_size(self) -> int:
        return 1 << 16 if self.params.source == "features" else 1 << 8

    def _symbols(self, images: torch.Tensor) -> np.ndarray:
        """Source symbols ``[N, agents, values]`` (uint16 float16 patterns, or uint8 pixels) of uint8 images."""
        if self.params.source == "features":
            return float_to_symbols(self.reference.transmitted_features(images).cpu().numpy())
        return split_quadrants(images, GRID).reshape(len(images), self.agents, -1).cpu().numpy()

    def symbol_values(self, symbols: np.ndarray) -> np.ndarray:
        """Symbols -> the float32 values they stand for (features; pixels in [0, 1])."""
        if self.params.source == "features":
            return symbols_to_float(symbols)
        return symbols.astype(np.float32) / 255.0

    def _fit_codes(self, description: dict, symbols, cache: Path) -> tuple[list[HuffmanCode], float, str, bool]:
        """Per-agent Huffman codes fitted on training symbols (a callable giving ``[N, agents, values]``),
        cached as ``<key>.huffman.npz``; also the mean code length on those symbols (bits per value)."""
        key = cache_key(description)
        path = cache / f"{key}.huffman.npz"
        if path.is_file():
            with np.load(path) as data:
                return [HuffmanCode(row.astype(np.int64)) for row in data["lengths"]], float(data["bits"]), key, True
        train_symbols = symbols()
        codes, total = [], 0.0
        for a in range(self.agents):
            counts = np.bincount(train_symbols[:, a].ravel(), minlength=self.alphabet_size)
            code = HuffmanCode.from_counts(counts, floor=self.params.huffman_floor,
                                           max_length=self.params.huffman_max_length)
            codes.append(code)
            total += float(np.dot(counts, code.lengths.astype(np.int64)))
        bits = total / train_symbols.size
        atomic_write(path, lambda f: np.savez(f, lengths=np.stack([c.lengths for c in codes]), bits=np.float64(bits)))
        return codes, bits, key, False

    # ------------------------------------------------------------------ preparation
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        ref = self.reference.prepare(context, f"{self.name or 'sinfony_digital'}.{self.reference.params.variant}")
        if context.compile:
            self.link.compile_decoder()

        train_set = p.data.training_set(context)
        fit_images = min(p.huffman_fit_images or p.train.subset or len(train_set), len(train_set))
        description = {
            "scheme": "sinfony_digital/huffman/2",  # /2: fitted on the seeded sample of train.subset
            "source": p.source,
            "dataset": p.data.name,
            "dataset_path": p.data.path,
            "model": ref.key if p.source == "features" else None,
            "fit_images": fit_images,
            "max_length": p.huffman_max_length,
            "floor": p.huffman_floor,
        }
        self.codes, self._bits_per_value, huffman_key, huffman_reused = self._fit_codes(
            description, lambda: self._symbols(training_images(train_set.images, fit_images)),
            context.cache_dir or model_cache_dir())

        test = p.data.evaluation_set(context)  # the same images as the sinfony schemes
        bv = p.block_vectors
        self._num_blocks = len(test) // bv
        if self._num_blocks == 0:
            raise ValueError(f"sinfony_digital: {len(test)} test images make no block of block_vectors={bv}")
        n_test = self._num_blocks * bv
        self._sent = self._symbols(test.images[:n_test])  # [N, agents, values]
        self._labels = test.labels[:n_test].to(device)
        self._image_shape = tuple(test.images.shape[1:])
        self.values = self._sent.shape[-1]
        self._block_len = bv * self.values

        # encode every test block once: per agent, the padded information words and where each block's start
        k = p.k
        rng = np.random.default_rng(context.seed)
        self._words, self._offsets = [], []
        payload = pad_bits = 0
        for a, code in enumerate(self.codes):
            bits, block_bits = code.encode_blocks(self._sent[:, a].reshape(self._num_blocks, self._block_len))
            counts = -(-block_bits // k)
            words = np.empty((int(counts.sum()), k), np.uint8)
            offsets = np.concatenate([[0], np.cumsum(counts)])
            ends = np.cumsum(block_bits)
            for b in range(self._num_blocks):
                flat = words[offsets[b] : offsets[b + 1]].reshape(-1)
                flat[: block_bits[b]] = bits[ends[b] - block_bits[b] : ends[b]]
                flat[block_bits[b] :] = rng.integers(0, 2, flat.size - block_bits[b], dtype=np.uint8)
            self._words.append(words)
            self._offsets.append(offsets)
            payload += int(block_bits.sum())
            pad_bits += words.size - int(block_bits.sum())

        self.facts = {
            "reference_model": self.reference.params.variant,
            "reference_parameters": count_parameters(self.reference.model),
            "weights": ref.key,
            "weights_reused": ref.reused,
            "train_precision": ref.precision,
            "dataset_source": test.source,
            "huffman": huffman_key,
            "huffman_reused": huffman_reused,
            "huffman_fit_images": fit_images,
            "huffman_bits_per_value": round(self._bits_per_value, 4),
            "huffman_gain": round((16 if p.source == "features" else 8) / self._bits_per_value, 4),
            "huffman_bits_per_value_test": round(payload / self._sent.size, 4),
            "codewords_per_image": round(sum(len(w) for w in self._words) / n_test, 4),
            "padding_fraction": round(pad_bits / (payload + pad_bits), 5),
            "channel_uses_awgn": round(self._channel_symbols(), 3),
            "test_images": n_test,
            "blocks": self._num_blocks,
        }

    # ------------------------------------------------------------------ accounting
    def _channel_symbols(self) -> float:
        p = self.params
        return digital_channel_uses(self.agents, self.values, self._bits_per_value, p.k, p.n, p.bits_per_symbol)

    def budget(self, channel: Channel) -> LinkBudget:
        if self._bits_per_value is None:
            raise RuntimeError("sinfony_digital: call prepare() first (the channel uses depend on the Huffman code)")
        return LinkBudget(channel.channel_uses(self._channel_symbols()),
                          self.agents * self.values * self._bits_per_value)

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def _chunk(self, device: torch.device) -> int:
        if self.params.decoder_chunk is not None:
            return self.params.decoder_chunk
        return max(1, (1 << 23 if device.type == "cuda" else 1 << 20) // self.params.n)

    def _link(self, words: np.ndarray, no: torch.Tensor, channel: Channel) -> Iterator[tuple[int, np.ndarray]]:
        """Information words ``[C, k]`` (uint8) through encoder, mapper, channel, demapper and BP decoder, in
        chunks of :meth:`_chunk` words; yields ``(end, decoded)``: the hard decisions (uint8) of words up
        to ``end``, chunk by chunk, so that the caller can work on them while the next chunk decodes."""
        chunk = self._chunk(no.device)
        for start in range(0, len(words), chunk):
            with self.stage_times("link"):
                part = torch.from_numpy(words[start : start + chunk]).to(device=no.device, dtype=torch.float32)
                y, no_eff = channel(self.link.transmit(part), no.expand(len(part)))
                decoded = self.link.receive(y, no_eff)[0].to(torch.uint8).cpu().numpy()
            yield start + len(part), decoded

    def transfer(self, blocks: np.ndarray, no: torch.Tensor, channel: Channel) -> Transfer:
        """Send the test blocks ``blocks`` (indices, [nb]) of all agents through the link at noise variance
        ``no`` ([] or one value repeated) and decode them; the engine-independent core of :meth:`simulate`.

        Each block is Huffman-decoded in a worker thread as soon as the link has decoded all its
        codewords, while the link goes on with the next chunk; the blocks are decoded in order, so the
        result (padding draws included) is that of a sequential loop."""
        p = self.params
        no = torch.as_tensor(no, dtype=torch.float32, device=self._labels.device)
        if no.dim():
            if not bool((no == no.reshape(-1)[0]).all()):
                raise ValueError("sinfony_digital needs one noise variance per call (a codeword carries parts of "
                                 f"many images); got {no.unique().tolist()[:4]}")
            no = no.reshape(-1)[0]
        # (agent, position in the batch, first word, end word); a block may repeat when the batch wraps
        spans = [(a, i, int(self._offsets[a][b]), int(self._offsets[a][b + 1]))
                 for a in range(self.agents) for i, b in enumerate(blocks)]
        rows = np.cumsum([0] + [e - s for _, _, s, e in spans])  # span j is rows[j]:rows[j + 1] of ``words``
        words = np.concatenate([self._words[a][s:e] for a, _, s, e in spans])
        words_hat = np.empty_like(words)

        bv, nb = p.block_vectors, len(blocks)
        images = (np.asarray(blocks)[:, None] * bv + np.arange(bv)).reshape(-1)
        sent = self._sent[images]
        received = np.empty_like(sent)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))

        def decode_spans(first: int, last: int) -> int:
            """Huffman-decode spans ``first:last`` into ``received``; returns how many desynchronised."""
            desync = 0
            with self.stage_times("source_decode"):
                for j in range(first, last):
                    a, i, _, _ = spans[j]
                    symbols, ran_out = decode_block(self.codes[a], words_hat[rows[j] : rows[j + 1]].reshape(-1),
                                                    self._block_len, p.pad, rng)
                    desync += ran_out
                    received[i * bv : (i + 1) * bv, a] = symbols.reshape(bv, self.values)
            return desync

        with ThreadPoolExecutor(max_workers=1) as worker:
            pending, done = [], 0
            for end, decoded in self._link(words, no, channel):
                words_hat[end - len(decoded) : end] = decoded
                ready = int(np.searchsorted(rows, end, side="right")) - 1  # spans whose words are all in
                if ready > done:
                    pending.append(worker.submit(decode_spans, done, ready))
                    done = ready
            desync = sum(f.result() for f in pending)
        wrong = words_hat != words
        word_wrong = wrong.any(axis=1)
        source_errors = int((received != sent).reshape(nb, bv, self.agents, self.values).any(axis=(1, 3)).sum())
        sent_values, received_values = self.symbol_values(sent), self.symbol_values(received)
        counters = {
            "bits": int(words.size),
            "bit_errors": int(wrong.sum()),
            "blocks": int(len(words)),
            "block_errors": int(word_wrong.sum()),
            "source_blocks": nb * self.agents,
            "source_block_errors": source_errors,
            "source_desync": int(desync),
            "source_se": float(np.square(received_values.astype(np.float64) - sent_values).sum()),
            "source_values": int(sent.size),
        }
        return Transfer(images, sent_values, received_values, received, counters)

    @torch.no_grad()
    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        nb = -(-batch_size // self.params.block_vectors)
        blocks = self._eval.take(nb, self._num_blocks)
        t = self.transfer(blocks, no, channel)
        device = self._labels.device
        labels = self._labels[torch.from_numpy(t.images).to(device)]
        received = torch.from_numpy(t.received).to(device)
        with self.stage_times("classifier"):
            if self.params.source == "features":
                logits = self.reference.model.decode(received)
            else:
                c, h, w = self._image_shape
                tiles = received.reshape(len(labels), self.agents, c, h // GRID, w // GRID)
                logits = self.reference.model(merge_quadrants(tiles))
            counters = {"samples": len(labels), "errors": int((logits.argmax(-1) != labels).sum()),
                        "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum"))}
        return {**counters, **t.counters}
