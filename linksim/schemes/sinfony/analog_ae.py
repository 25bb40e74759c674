"""Scheme: the analog "semantic" autoencoder baseline of SINFONY Fig. 7 (one MSE autoencoder per feature element).

Between the SINFONY *perfect comm.* model's transmitted features (``[B, 4, 56]`` on MNIST) and its
receiver sits an :class:`~linksim.models.AnalogFeatureAE`: every scalar feature element is mapped
by the same Tx (Dense 32 ReLU, Dense 32 ReLU, Dense ``n_tx_el`` linear, power normalisation over
the ``n_tx_el`` outputs or per output over the batch: ``ae_power_norm``) to ``n_tx_el`` = 16 real
channel uses and recovered by the same Rx (Dense 32 ReLU, Dense 32 ReLU, Dense 1). The 4 x 56 x 16
= 3,584 real channel uses of an image are packed in pairs into 1,792 unit-energy complex symbols
(:func:`~linksim.link.packing.real_to_complex`), so the per-real-dimension SNR is Es/N0 and the
rate-normalised axis (reference 224 real uses) plots the AE 10 log10(16) = 12.04 dB right of its Es/N0.

**Training** (spec seed003 5.2, 9.7): MSE on the flattened feature elements of the training images
the perfect-comm. model was trained on (``train.subset`` or all; ``ae_train.subset`` then samples
that many elements), Adam, lr 1e-3, batch 1000, Es/N0 drawn per element uniformly in dB in
``ae_train.snr_db`` = [-4, 6] through the scenario's training channel (or ``ae_train.channel``). One
epoch is one pass over the elements (MNIST: 60,000 x 224 = 13.4 M elements = 13,440 steps); the
default 7 epochs are 94,080 Adam steps, about the 1e5 the spec recommends (a few minutes on a GPU,
tens of minutes on 2 CPU cores); quick profiles use 1 epoch on a 10,000-image subset (2,240 steps).
The weights are cached by :func:`~linksim.training.fit_or_load` under a key that includes the
perfect model's key. The training log's ``within_0p1`` is the share of elements reconstructed within
+-0.1 (the features have unit mean power per vector).

**Encode once, evaluate many.** Neither the perfect model's Tx nor the AE's depends on the SNR or
the channel: the AE's channel symbols of every evaluation image are computed once in
:meth:`~SinfonyAnalogAEScheme.prepare`; a point runs only the channel, the AE's Rx and the
perfect-comm. receiver.

**Counters:** ``samples`` (images), ``errors`` (misclassified), ``loss_sum`` (cross-entropy, nats),
``source_se``, ``source_values`` (squared error of the reconstructed features). **Rates:**
``error_rate`` (primary), ``loss``, ``source_mse``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from linksim.channels.base import Channel
from linksim.link.packing import complex_to_real, real_to_complex, real_uses_budget
from linksim.models import AnalogFeatureAE, count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext
from linksim.schemes.sinfony.reference import SinfonyModelParams, SinfonyReference, training_images
from linksim.snr import LinkBudget
from linksim.training import PiecewiseSchedule, Schedule, TrainParams, fit_or_load, training_no

__all__ = ["AETrainParams", "SinfonyAnalogAEParams", "SinfonyAnalogAEScheme"]


class AETrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with the analog AE's defaults: Adam, lr 1e-3, batch 1000,
    7 epochs over the training feature elements, constant learning rate, training Es/N0 uniform in
    [-4, 6] dB, no L2."""

    epochs: PositiveInt = 7
    batch_size: PositiveInt = 1000
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: PositiveFloat = 1e-3
    schedule: Schedule = PiecewiseSchedule(milestones=[])
    conv_l2: NonNegativeFloat = 0.0
    snr_db: float | tuple[float, float] | None = (-4.0, 6.0)


class SinfonyAnalogAEParams(SinfonyModelParams):
    """SINFONY Fig. 7 analog AE: ``n_tx_el`` real channel uses per feature element, hidden width
    ``hidden`` (default ``2 * n_tx_el``), the AE Tx's power normalisation ``ae_power_norm``, trained
    per ``ae_train``; ``data``, ``power_norm`` and ``train`` select the perfect-comm. model as for
    ``sinfony`` (see the module docstring).

    ``ae_power_norm``: ``vector`` gives every feature element's ``n_tx_el`` symbols the energy
    ``n_tx_el``; ``batch`` gives each of the ``n_tx_el`` symbol positions unit mean power over the
    elements of the batch (running statistics in evaluation), so an element's energy may follow its
    value, the average staying one per real channel use. The paper says only "normalization"; the
    authors' code normalises over the batch.
    """

    n_tx_el: PositiveInt = 16
    hidden: PositiveInt | None = None
    ae_power_norm: Literal["vector", "batch"] = "vector"
    ae_train: AETrainParams = AETrainParams()


@register_scheme("sinfony_analog_ae", SinfonyAnalogAEParams)
class SinfonyAnalogAEScheme(Scheme):
    """SINFONY perfect-comm. features sent by a per-element analog MSE autoencoder; an item is one test image."""

    rates = {
        "error_rate": Rate("errors", "samples"),
        "loss": Rate("loss_sum", "samples", interval=False),
        "source_mse": Rate("source_se", "source_values", interval=False),
    }
    primary = "error_rate"

    def __init__(self, params: SinfonyAnalogAEParams):
        super().__init__()
        self.params = p = params
        self.reference = SinfonyReference(p.reference_params("perfect"))
        self.ae = AnalogFeatureAE(n_tx_el=p.n_tx_el, hidden=p.hidden, power_norm=p.ae_power_norm)
        self.agents, self.values = self.reference.agents, self.reference.n_tx
        self.facts = {"parameters": count_parameters(self.ae)}
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ channel glue
    @property
    def _real_uses(self) -> int:
        """Real channel uses per agent and image."""
        return self.values * self.params.n_tx_el

    def budget(self, channel: Channel) -> LinkBudget:
        return real_uses_budget(channel, self.agents, self._real_uses)

    def _through(self, x: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        """AE symbols of single feature elements, ``x [B, n_tx_el]`` real -> one row of complex symbols
        per element -> ``channel`` at ``no`` ([B]) -> the same shape (training)."""
        y, _ = channel(real_to_complex(x.unsqueeze(1)), no)
        return complex_to_real(y, (1, x.shape[-1])).reshape(x.shape)

    @torch.no_grad()
    def reconstruct(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """The features of evaluation images ``idx`` ([B] int64) as the AE's Rx recovers them from
        ``channel`` at ``no`` ([] or [B]): ``[B, agents, values]`` float32."""
        y, _ = channel(self._sent[idx], no)
        y = complex_to_real(y, (self.agents, self._real_uses))
        return self.ae.decode(y.reshape(len(idx), self.agents, self.values, self.params.n_tx_el))

    # ------------------------------------------------------------------ training
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        ref = self.reference.prepare(context, f"{self.name or 'sinfony_analog_ae'}.perfect")
        self.ae.to(device)
        train_set = p.data.training_set(context)
        n_images = min(p.train.subset or len(train_set), len(train_set))
        channel = context.train_channel_for(p.ae_train.channel)

        def step(r, _target, rng):
            no = training_no(p.ae_train.snr_db, len(r), rng, r.device)
            r_hat = self.ae(r) if no is None else self.ae(r, lambda x: self._through(x, channel, no))
            return F.mse_loss(r_hat, r), {"within_0p1": (r_hat - r).abs().detach() < 0.1}

        def data():
            elements = self.reference.transmitted_features(training_images(train_set.images, n_images)).reshape(-1)
            return elements, elements

        weights = fit_or_load(context, self.ae, name=self.name or "sinfony_analog_ae", params=p.ae_train, step=step,
                              data=data, description={"scheme": "sinfony_analog_ae/1", "features_model": ref.key,
                                                      "train_images": n_images, "n_tx_el": p.n_tx_el,
                                                      "hidden": p.hidden, "power_norm": p.ae_power_norm})
        self.ae.eval()
        test = p.data.evaluation_set(context)  # the same images as the sinfony schemes
        self._features = self.reference.transmitted_features(test.images)
        with torch.no_grad():  # each agent's values * n_tx_el real uses: its own stretch of the image's row
            x = self.ae.encode(self._features)  # [N, agents, values, n_tx_el]
        self._sent = real_to_complex(x.reshape(len(x), self.agents, -1))  # [N, agents * values * n_tx_el / 2]
        tx_power = float(x.square().mean())  # 1 by construction per vector; per batch, the running statistic's fit
        self._labels = test.labels.to(device)
        elements = n_images * self.agents * self.values
        if p.ae_train.subset is not None:
            elements = min(elements, p.ae_train.subset)
        self.facts.update({**weights.facts(), "train_elements": elements,
                           "steps": len(weights.history) * math.ceil(elements / p.ae_train.batch_size),
                           "final_train_mse": weights.history[-1]["loss"] if weights.history else None,
                           "tx_power_per_real_use": round(tx_power, 4),
                           "reference_weights": ref.key, "reference_weights_reused": ref.reused,
                           "dataset_source": test.source, "test_images": len(test)})

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    @torch.no_grad()
    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._labels))).to(self._labels.device)
        r, labels = self._features[idx], self._labels[idx]
        r_hat = self.reconstruct(idx, no, channel)
        logits = self.reference.decode(r_hat)
        return {
            "samples": batch_size,
            "errors": int((logits.argmax(-1) != labels).sum()),
            "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum")),
            "source_se": float((r_hat - r).double().square().sum()),
            "source_values": int(r.numel()),
        }
