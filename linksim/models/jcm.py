"""JCM (Bo, Duan, Shao, Tao, "Joint coding-modulation for digital semantic communications via variational
autoencoder", IEEE TCOM 2024): a ResNet encoder with a categorical head over PAM levels, and two decoders on
the raw received reals (a SpinalNet classifier and a depth-to-space image decoder).

Data flow (CIFAR-10, ``d`` real channel values: ``d = 2 n`` for QAM, ``d = n`` for BPSK; widths at
multiplier 1)::

    image [B,3,32,32] in [-1,1]
      -> conv3x3 64 BN PReLU -> ResBlock 64 -> ResBlock 128/2 -> 2 ResBlocks 256/2 -> 2 ResBlocks d/2
      -> [B, d, 4, 4]
         jcm:                   flatten -> Linear(16 d -> d K) -> ReLU -> logits [B, d, K] over K PAM levels
         analog, uniform, nn:   AvgPool 4x4 -> [B, d] reals
      ~~ symbol chain + channel (linksim.schemes.jcm.chain) ~~> received reals [B, d]
      -> classifier: 4 SpinalNet layers on halves of the input -> [B, 10] class logits
      -> decoder: reshape [B, d/16, 4, 4] -> 1x1 256 -> 4 ResBlocks -> d2s(4) 1x1 128 -> 2 ResBlocks
                  -> d2s(2) 1x1 3 (linear) -> image [B,3,32,32] in about [-1,1]

The architecture is that of the authors' code as resolved by the parameter counts of the paper's Table III
(which it reproduces at n = 256; the paper's n = 128 elsewhere gives smaller models): see
:func:`jcm_complexity`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from linksim.layers import DepthToSpaceConv, PostActResidualUnit
from linksim.models.parameters import count_macs, count_parameters
from linksim.quantizers import LearnedQuantizer

__all__ = ["JCM", "JCMDecoder", "JCMEncoder", "Method", "ProbabilityHead", "SpinalClassifier", "jcm_complexity"]

Method = Literal["jcm", "analog", "uniform", "nn"]


def _channels(base: int, width: float) -> int:
    c = base * width
    if c != int(c) or c < 1:
        raise ValueError(f"width {width:g} gives {c:g} channels for a {base}-channel layer (need a whole number)")
    return int(c)


class JCMEncoder(nn.Sequential):
    """The ResNet encoder: stem and four stages (1, 1, 2, 2 residual blocks), 32x32 -> 4x4.

    :param d: output channels (real channel values per image: ``2 n`` for QAM, ``n`` for BPSK).
    :param width: multiplier of the 64 / 128 / 256 hidden conv widths (1 = the paper).

    :input x: [B, 3, 32, 32], torch.float32, images in [-1, 1].
    :output: [B, d, 4, 4], torch.float32.
    """

    def __init__(self, d: int, width: float = 1.0):
        c1, c2, c3 = (_channels(c, width) for c in (64, 128, 256))
        super().__init__(
            nn.Sequential(nn.Conv2d(3, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.PReLU()),
            PostActResidualUnit(c1, c1),
            PostActResidualUnit(c1, c2, stride=2),
            PostActResidualUnit(c2, c3, stride=2), PostActResidualUnit(c3, c3),
            PostActResidualUnit(c3, d, stride=2), PostActResidualUnit(d, d))


class ProbabilityHead(nn.Module):
    """JCM's categorical head: ``Linear(16 d -> d K)`` (+ ReLU, as the authors' code) -> logits per real value.

    :param d: real channel values per image.
    :param levels: ``K``, PAM levels per real value (``sqrt(M)`` for M-QAM, 2 for BPSK).
    :param relu: apply a ReLU to the logits (they are then >= 0; the authors' choice).

    :input h: [B, d, 4, 4], torch.float32 (the encoder's output).
    :output logits: [B, d, K], torch.float32; ``softmax`` over the last axis is the distribution of each value.
    """

    def __init__(self, d: int, levels: int, relu: bool = True):
        super().__init__()
        self.d, self.levels = d, levels
        self.linear = nn.Linear(16 * d, d * levels)
        self.relu = relu

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.linear(h.flatten(1))
        return (torch.relu(logits) if self.relu else logits).reshape(len(h), self.d, self.levels)


class SpinalClassifier(nn.Module):
    """SpinalNet classifier on the received reals: four layers of width ``w = d / 8``, each fed one half of
    the input (``h = d / 2`` values, alternating) and the previous layer's output; a linear output on all four.

    :param d: input reals (even).
    :param classes: number of classes.
    :param dropout: dropout probability in front of every layer.

    :input y: [B, d], torch.float32.
    :output: [B, classes], torch.float32 logits.
    """

    def __init__(self, d: int, classes: int = 10, dropout: float = 0.5):
        super().__init__()
        if d % 8:
            raise ValueError(f"SpinalClassifier needs d divisible by 8, found {d}")
        h, w = d // 2, d // 8
        self.half = h
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Dropout(dropout), nn.Linear(h + (w if i else 0), w), nn.PReLU()) for i in range(4))
        self.out = nn.Linear(4 * w, classes)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        halves = (y[:, : self.half], y[:, self.half : 2 * self.half])
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            outs.append(layer(halves[i % 2] if i == 0 else torch.cat([halves[i % 2], outs[-1]], dim=1)))
        return self.out(torch.cat(outs, dim=1))


class JCMDecoder(nn.Module):
    """The depth-to-space image decoder on the received reals.

    :param d: input reals (a multiple of 16).
    :param width: multiplier of the 256 / 128 hidden conv widths (1 = the paper).

    :input y: [B, d], torch.float32.
    :output: [B, 3, 32, 32], torch.float32, images in about [-1, 1] (linear output, not clipped).
    """

    def __init__(self, d: int, width: float = 1.0):
        super().__init__()
        if d % 16:
            raise ValueError(f"JCMDecoder needs d divisible by 16, found {d}")
        c3, c2 = _channels(256, width), _channels(128, width)
        if c3 % 16 or c2 % 4:
            raise ValueError(f"width {width:g}: the depth-to-space steps need 256 w divisible by 16 and 128 w by 4")
        self.d = d
        self.body = nn.Sequential(
            nn.Conv2d(d // 16, c3, 1), nn.PReLU(),
            *(PostActResidualUnit(c3, c3) for _ in range(4)),
            DepthToSpaceConv(c3, c2, 4),
            *(PostActResidualUnit(c2, c2) for _ in range(2)),
            DepthToSpaceConv(c2, 3, 2, activation=False))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.body(y.reshape(len(y), self.d // 16, 4, 4))


class JCM(nn.Module):
    """The encoder, its method's output stage and both decoders of one JCM-family model.

    :param method: ``jcm`` (categorical head over the PAM levels), ``analog`` (AvgPool, continuous values),
        ``uniform`` (the analog encoder; the scheme quantises to the PAM levels) or ``nn`` (the analog encoder
        and a learned one-layer quantiser of ``bits`` bits per value, :class:`~linksim.quantizers.LearnedQuantizer`).
    :param d: real channel values per image (``2 n`` for QAM, ``n`` for BPSK), a multiple of 16.
    :param levels: PAM levels per real value ``K`` (the head's categories; used by ``jcm`` only).
    :param width: conv width multiplier (1 = the paper).
    :param relu_logits: the head's ReLU (``jcm``).
    :param bits: quantiser bits per value (``nn``).
    :param classes: number of classes.

    :input images: [B, 3, 32, 32], torch.float32 in [-1, 1] (:meth:`encode`).
    :output: :meth:`encode` gives logits [B, d, K] (``jcm``) or reals [B, d] (the others), not yet normalised;
        :meth:`decode` maps received reals [B, d] to (class logits [B, classes], images [B, 3, 32, 32]).

    .. rubric:: Example

    >>> model = JCM("jcm", d=32, levels=4, width=0.125)
    >>> model.encode(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 32, 4])
    >>> [t.shape for t in model.decode(torch.zeros(2, 32))]
    [torch.Size([2, 10]), torch.Size([2, 3, 32, 32])]
    """

    def __init__(self, method: Method, d: int, levels: int, width: float = 1.0, relu_logits: bool = True,
                 bits: int = 1, classes: int = 10):
        super().__init__()
        self.method, self.d = method, d
        self.encoder = JCMEncoder(d, width)
        if method == "jcm":
            self.head = ProbabilityHead(d, levels, relu_logits)
        self.classifier = SpinalClassifier(d, classes)
        self.decoder = JCMDecoder(d, width)
        for m in self.modules():  # the authors' initialisation
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
            elif isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
        if method == "nn":  # after the loop: it starts as the uniform quantiser of bits + 1 cells
            self.quantizer = LearnedQuantizer(bits)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        h = self.encoder(images)
        return self.head(h) if self.method == "jcm" else h.mean(dim=(2, 3))

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier(y), self.decoder(y)


def jcm_complexity(model: JCM) -> dict[str, int]:
    """Trainable parameters and multiply-accumulates per image (convolutions and dense layers, as a thop-style
    profiler counts them; BatchNorm and activations excluded) of ``model`` over encoder, head and both
    decoders (:func:`~linksim.models.parameters.count_macs`).

    :output: ``{"parameters": int, "macs": int}``.

    .. rubric:: Example

    >>> jcm_complexity(JCM("jcm", d=512, levels=4))["parameters"]   # 16-QAM, n = 256: Table III's 33.0 M
    32983628
    """
    def run(m: JCM) -> None:
        z = m.encode(torch.zeros(1, 3, 32, 32))
        m.decode(z[..., 0] if z.dim() == 3 else z)  # a stand-in received vector [1, d]

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            macs = count_macs(model, run)
    finally:
        model.train(was_training)
    return {"parameters": count_parameters(model), "macs": macs}
