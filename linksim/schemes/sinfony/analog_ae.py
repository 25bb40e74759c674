"""Scheme: the analog "semantic" autoencoder baseline of SINFONY Fig. 7 (one MSE autoencoder per feature element).

Between the SINFONY *perfect comm.* model's transmitted features (``[B, 4, 56]`` on MNIST) and its
receiver sits an :class:`~linksim.models.AnalogFeatureAE`: every scalar feature element is mapped
by the same Tx (Dense 32 ReLU, Dense 32 ReLU, Dense ``n_tx_el`` linear, power normalisation over
the ``n_tx_el`` outputs) to ``n_tx_el`` = 16 real channel uses and recovered by the same Rx (Dense 32
ReLU, Dense 32 ReLU, Dense 1). The 4 x 56 x 16 = 3,584 real channel uses of an image are packed in
pairs into 1,792 unit-energy complex symbols (:func:`~linksim.schemes.sinfony.real_to_complex`), so
the per-real-dimension SNR is Es/N0 and the rate-normalised axis (reference 224 real uses) plots
the AE 10 log10(16) = 12.04 dB right of its Es/N0.

**Training** (spec seed003 5.2, 9.7): MSE on the flattened feature elements of the training images
the perfect-comm. model was trained on (``train.subset`` or all; ``ae_train.subset`` then samples
that many elements), Adam, lr 1e-3, batch 1000, Es/N0 drawn per element uniformly in dB in
``ae_train.snr_db`` = [-4, 6] through the scenario's training channel. One epoch is one pass over
the elements (MNIST: 60,000 x 224 = 13.4 M elements = 13,440 steps); the default 7 epochs are
94,080 Adam steps, about the 1e5 the spec recommends (a few minutes on a GPU, tens of minutes on
2 CPU cores); quick profiles use 1 epoch on a 10,000-image subset (2,240 steps). The weights are
cached with :func:`~linksim.train.load_or_train` under a key that includes the perfect model's
key. The training log's ``accuracy`` is the share of elements reconstructed within +-0.1 (the
features have unit mean power per vector).

**Counters:** ``samples`` (images), ``errors`` (misclassified), ``loss_sum`` (cross-entropy, nats),
``source_se``, ``source_values`` (squared error of the reconstructed features). **Rates:**
``error_rate`` (primary), ``loss``, ``source_mse``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveFloat, PositiveInt

from linksim.channels.base import Channel
from linksim.models import AnalogFeatureAE, count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext
from linksim.schemes.sinfony.classifier import SinfonyScheme, complex_to_real, real_to_complex
from linksim.schemes.sinfony.digital import (
    SinfonyBaselineParams,
    prepare_reference,
    training_images,
    transmitted_features,
)
from linksim.snr import LinkBudget, esno_db_to_no
from linksim.train import TrainParams, load_or_train, train

__all__ = ["AETrainParams", "SinfonyAnalogAEParams", "SinfonyAnalogAEScheme"]


class AETrainParams(TrainParams):
    """:class:`~linksim.train.TrainParams` with the analog AE's defaults: Adam, lr 1e-3, batch 1000,
    7 epochs over the training feature elements, training Es/N0 uniform in [-4, 6] dB, no L2."""

    epochs: PositiveInt = 7
    batch_size: PositiveInt = 1000
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: PositiveFloat = 1e-3
    lr_milestones: list[PositiveInt] = []
    conv_l2: float = 0.0
    snr_db: tuple[float, float] | None = (-4.0, 6.0)


class SinfonyAnalogAEParams(SinfonyBaselineParams):
    """SINFONY Fig. 7 analog AE: ``n_tx_el`` real channel uses per feature element, hidden width
    ``hidden`` (default ``2 * n_tx_el``), trained per ``ae_train``; ``dataset``, ``train`` etc. select
    the perfect-comm. model as for ``sinfony`` (see the module docstring)."""

    n_tx_el: PositiveInt = 16
    hidden: PositiveInt | None = None
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
        self.reference = SinfonyScheme(p.reference_params("perfect"))
        self.ae = AnalogFeatureAE(n_tx_el=p.n_tx_el, hidden=p.hidden)
        self.agents, self.values = self.reference.agents, self.reference.n_tx
        self.facts = {"parameters": count_parameters(self.ae)}
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ channel glue
    @property
    def _real_uses(self) -> int:
        """Real channel uses per agent and image."""
        return self.values * self.params.n_tx_el

    def budget(self, channel: Channel) -> LinkBudget:
        n = self._real_uses
        return LinkBudget(channel.channel_uses(self.agents * math.ceil(n / 2)) * n / (2 * math.ceil(n / 2)))

    def _through(self, x: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        """``x [B, ..., n_tx_el]`` real -> one row of complex symbols per example -> channel -> same shape."""
        shape = x.shape
        rows = x.reshape(shape[0], 1, -1)
        y, _ = channel(real_to_complex(rows), no)
        return complex_to_real(y, 1, rows.shape[-1]).reshape(shape)

    def reconstruct(self, features: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """Features ``[B, agents, values]`` through the AE and ``channel`` at ``no`` ([] or [B]); each agent's
        ``values * n_tx_el`` real uses form its own stretch of the example's row of complex symbols."""
        x = self.ae.encode(features)  # [B, agents, values, n_tx_el]
        b = x.shape[0]
        y, _ = channel(real_to_complex(x.reshape(b, self.agents, -1)), no)
        y = complex_to_real(y, self.agents, self._real_uses).reshape(x.shape)
        return self.ae.decode(y)

    # ------------------------------------------------------------------ training
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        ref = prepare_reference(self.reference, self.name or "sinfony_analog_ae", context)
        self.ae.to(device)
        train_set = context.dataset(p.dataset, "train", p.dataset_path)
        n_images = min(p.train.subset or len(train_set), len(train_set))
        description = {
            "scheme": "sinfony_analog_ae/1",
            "features_model": ref["weights"],
            "train_images": n_images,
            "n_tx_el": p.n_tx_el,
            "hidden": p.hidden,
            "train": p.ae_train.model_dump(),
            "train_channel": context.train_channel_spec if p.ae_train.snr_db is not None else None,
            "seed": context.seed,
        }
        snr_range, channel = p.ae_train.snr_db, context.train_channel

        def step(r, _target, rng):
            if snr_range is None:
                r_hat = self.ae(r)
            else:
                u = torch.rand(len(r), generator=rng, device=r.device)
                no = esno_db_to_no(snr_range[0] + (snr_range[1] - snr_range[0]) * u)
                r_hat = self.ae(r, lambda x: self._through(x, channel, no))
            return F.mse_loss(r_hat, r), (r_hat - r).abs().detach() < 0.1

        def fit(checkpoint):
            images = training_images(train_set.images, n_images)
            elements = transmitted_features(self.reference.model, images, device).reshape(-1)
            name = context.run_dir.name if context.run_dir else ""

            def report(log):
                if context.progress:
                    print(f"  train analog AE epoch {log['epoch']}: mse {log['loss']:.5f} "
                          f"within 0.1 {log['accuracy']:.4f} ({log['wall_s']:.0f} s) {name}", flush=True)

            return train(self.ae, step, elements, elements, p.ae_train, seed=context.seed, checkpoint=checkpoint,
                         progress=report, cuda_graph=context.cuda_graphs)

        history, key, reused = load_or_train(self.ae, description, fit, context.cache_dir)
        self.ae.eval()
        test = context.dataset(p.dataset, "test", p.dataset_path)
        if p.eval_subset is not None:  # the same images as the sinfony schemes
            test = test.sample(min(p.eval_subset, len(test)))
        self._features = transmitted_features(self.reference.model, test.images, device)
        self._labels = test.labels.to(device)
        elements = n_images * self.agents * self.values
        if p.ae_train.subset is not None:
            elements = min(elements, p.ae_train.subset)
        self.facts.update({"weights": key, "weights_reused": reused, "epochs": len(history),
                            "train_elements": elements,
                            "steps": len(history) * math.ceil(elements / p.ae_train.batch_size),
                            "final_train_mse": history[-1]["loss"] if history else None,
                            "reference_weights": ref["weights"], "reference_weights_reused": ref["weights_reused"],
                            "dataset_source": ref.get("dataset_source"), "test_images": len(test)})
        context.log_training(self.name or key, history)

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._labels))).to(self._labels.device)
        r, labels = self._features[idx], self._labels[idx]
        r_hat = self.reconstruct(r, no, channel)
        logits = self.reference.model.decode(r_hat)
        return {
            "samples": batch_size,
            "errors": int((logits.argmax(-1) != labels).sum()),
            "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum")),
            "source_se": float((r_hat - r).double().square().sum()),
            "source_values": int(r.numel()),
        }
