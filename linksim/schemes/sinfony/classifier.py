"""Scheme: SINFONY (Beck et al.), distributed semantic classification, and its design variants.

Four agents each see one image quadrant, extract ResNet features and send them (``perfect``,
``awgn``, ``awgn_trained``: power-normalised; ``txrx``: through a learned Tx of ``n_tx`` real channel
uses) over the channel to one receiver that classifies the image; ``central`` classifies the whole
image with no communication (a reference line). The variants, their networks and their training
are :mod:`linksim.schemes.sinfony.reference`'s.

**Channel uses.** ``4 * N_Tx`` real channel uses per image, packed in pairs into ``4 * ceil(N_Tx / 2)``
unit-energy complex symbols (an odd ``N_Tx`` padded with an uncounted zero), so that the paper's
per-real-dimension SNR is the Es/N0 of the complex symbols.

**Encode once, evaluate many.** The transmitter does not depend on the SNR or the channel: its
output (the power-normalised Tx symbols ``model.encode(images)``, valid in eval mode for both
``power_norm`` modes; the ResNet features of ``central``) is computed once per evaluation image in
:meth:`~SinfonyScheme.prepare`; a point runs only the channel, the receiver and the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linksim.accel import compiled
from linksim.channels.base import Channel
from linksim.layers import inference_chunk
from linksim.link.packing import real_uses_budget
from linksim.models import count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext
from linksim.schemes.sinfony.reference import SinfonyParams, SinfonyReference
from linksim.snr import LinkBudget

__all__ = ["SinfonyScheme"]


@register_scheme("sinfony", SinfonyParams)
class SinfonyScheme(Scheme):
    """SINFONY and its variants on MNIST or CIFAR-10; an item is one test image.

    Counters: ``samples`` (images), ``errors`` (misclassified), ``loss_sum`` (cross-entropy, nats;
    reported as the mean ``loss``).
    Channel uses per image: ``4 * N_Tx / 2`` complex (``4 * N_Tx`` real), ``N_Tx = N_Feat`` for the
    variants without Tx layers; the central classifier is charged like ``perfect`` so that it plots
    as a reference line.
    """

    rates = {"error_rate": Rate("errors", "samples"), "loss": Rate("loss_sum", "samples", interval=False)}
    primary = "error_rate"

    def __init__(self, params: SinfonyParams):
        super().__init__()
        self.params = params
        self.reference = SinfonyReference(params)
        self.model = self.reference.model
        self.facts = {"parameters": count_parameters(self.model)}
        self._eval = EvalCursor()
        self._decode = self.reference.decode  # through torch.compile when the run asks for it

    def budget(self, channel: Channel) -> LinkBudget:
        return real_uses_budget(channel, self.reference.agents, self.reference.n_tx)

    def prepare(self, context: SchemeContext) -> None:
        weights = self.reference.prepare(context, self.name or "sinfony")
        if context.compile:
            self._decode = compiled(self.reference.decode, dynamic=False)
        test = self.params.data.evaluation_set(context)
        device = torch.device(context.device)
        self._labels = test.labels.to(device)
        self._sent = self.reference.transmitted_features(test.images, inference_chunk(device) or 1000)
        self.facts.update({**weights.facts(), "dataset_source": test.source, "test_images": len(test)})

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def _logits(self, sent: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """What the transmitter sent for a batch (:meth:`SinfonyReference.transmitted_features`) through
        ``channel`` at ``no`` ([B], where the variant uses it), the receiver and the classifier:
        logits [B, classes]."""
        if self.params.uses_channel:
            sent = self.reference.through(sent, channel, no)
        return self._decode(sent)

    @torch.no_grad()
    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._labels))).to(self._labels.device)
        labels = self._labels[idx]
        no = no.expand(batch_size)
        # in the chunks a whole-network pass takes (inference_chunk): the channel then draws the same
        # noise per image as running the network on the images would (tests and bench/encode_once.py)
        step = inference_chunk(labels.device) or batch_size
        logits = torch.cat([self._logits(self._sent[idx[i : i + step]], no[i : i + step], channel)
                            for i in range(0, batch_size, step)])
        return {
            "samples": batch_size,
            "errors": int((logits.argmax(-1) != labels).sum()),
            "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum")),
        }
