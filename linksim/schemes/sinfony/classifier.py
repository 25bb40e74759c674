"""Scheme: SINFONY (Beck et al.), distributed semantic classification, and its design variants."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, PositiveInt, model_validator

from linksim.accel import compiled
from linksim.channels.base import Channel
from linksim.layers import inference_chunk, preferred_memory_format
from linksim.models import CentralClassifier, Sinfony, conv_kernels, count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext
from linksim.snr import LinkBudget, esno_db_to_no
from linksim.train import TrainParams, load_or_train, train

__all__ = ["SinfonyParams", "SinfonyScheme", "real_to_complex", "complex_to_real"]

# Table I: (in_channels, image_size, residual units per stage, base width) per dataset
_ARCH = {"mnist": (1, 28, 2, 14), "cifar10": (3, 32, 3, 16)}

Variant = Literal["central", "perfect", "awgn", "awgn_trained", "txrx"]


class SinfonyParams(BaseModel):
    """One SINFONY design variant (paper Sec. IV, Figs. 4-6).

    ``variant``:
      * ``central``: one ResNet on the whole image, no communication (reference line);
      * ``perfect``: four agents, features power-normalised and delivered error-free;
      * ``awgn``: the ``perfect`` model (same cached weights) evaluated over the channel;
      * ``awgn_trained``: the same architecture trained through the training channel;
      * ``txrx``: per-agent Tx (``n_tx`` real channel uses) and shared Rx (width ``n_rx``), trained
        through the channel.
    ``dataset_path``: a local copy (directory, zip, tarball) instead of the download/cache path.
    ``eval_subset``: evaluate on a fixed random sample of ``eval_subset`` test images (quick profiles).
    """

    model_config = ConfigDict(extra="forbid")
    dataset: Literal["mnist", "cifar10"] = "mnist"
    dataset_path: str | None = None
    variant: Variant = "txrx"
    n_tx: PositiveInt | None = None
    n_rx: PositiveInt | None = None
    power_norm: Literal["vector", "batch"] = "vector"
    train: TrainParams = TrainParams()
    eval_subset: PositiveInt | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.variant == "txrx" and self.n_tx is None:
            raise ValueError("variant txrx needs n_tx (real channel uses per agent)")
        if self.variant != "txrx" and (self.n_tx is not None or self.n_rx is not None):
            raise ValueError(f"n_tx/n_rx only apply to variant txrx, not {self.variant}")
        return self

    @property
    def trains_through_channel(self) -> bool:
        return self.variant in ("awgn_trained", "txrx")

    @property
    def uses_channel(self) -> bool:
        return self.variant not in ("central", "perfect")


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Pack real channel uses into unit-energy complex symbols.

    :input x: [batch, agents, n] float32, unit average power per real channel use.
    :output: [batch, agents * ceil(n / 2)] complex64, ``(x_0 + j x_1) / sqrt(2)``; an odd ``n`` is
        padded with one zero (not counted as a channel use). The per-real-dimension SNR equals the
        Es/N0 of the complex symbols.
    """
    if x.shape[-1] % 2:
        x = F.pad(x, (0, 1))
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return torch.complex(pairs[..., 0], pairs[..., 1]).flatten(1) / math.sqrt(2.0)


def complex_to_real(y: torch.Tensor, agents: int, n: int) -> torch.Tensor:
    """Inverse of :func:`real_to_complex`: [batch, agents * ceil(n/2)] complex -> [batch, agents, n] real."""
    pairs = torch.stack((y.real, y.imag), dim=-1).reshape(y.shape[0], agents, -1) * math.sqrt(2.0)
    return pairs[..., :n]


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
        self.params = p = params
        in_ch, size, units, width = _ARCH[p.dataset]
        if p.variant == "central":
            self.model = CentralClassifier(in_channels=in_ch, units_per_stage=units, base_width=width)
            self.agents, self.n_tx = 4, self.model.n_feat
        else:
            self.model = Sinfony(in_channels=in_ch, image_size=size, units_per_stage=units, base_width=width,
                                 n_tx=p.n_tx, n_rx=p.n_rx, power_norm=p.power_norm)
            self.agents, self.n_tx = self.model.num_agents, self.model.n_tx
        self.facts = {"parameters": count_parameters(self.model)}
        self._eval = EvalCursor()
        self._compiled_model = None  # the model through torch.compile, when the run asks for it

    def _model(self, *args) -> torch.Tensor:
        return (self._compiled_model or self.model)(*args)

    # ------------------------------------------------------------------ channel glue
    def _through(self, x: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        y, _ = channel(real_to_complex(x), no)
        return complex_to_real(y, self.agents, self.n_tx)

    def budget(self, channel: Channel) -> LinkBudget:
        return LinkBudget(channel.channel_uses(self.agents * math.ceil(self.n_tx / 2)) * self.n_tx
                          / (2 * math.ceil(self.n_tx / 2)))

    # ------------------------------------------------------------------ training
    def _description(self, context: SchemeContext) -> dict:
        p = self.params
        variant = "perfect" if p.variant == "awgn" else p.variant  # awgn reuses the perfect model
        train_params = p.train.model_dump()
        if variant in ("central", "perfect"):
            train_params["snr_db"] = None  # trained noise-free
        return {
            "scheme": "sinfony/3",  # bump when the training semantics change: old weights must not be reused
            "dataset": p.dataset,
            "dataset_path": p.dataset_path,
            "variant": variant,
            "n_tx": p.n_tx,
            "n_rx": p.n_rx,
            "power_norm": p.power_norm,
            "train": train_params,
            "train_channel": context.train_channel_spec if self.params.trains_through_channel else None,
            "seed": context.seed,
        }

    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        self.model.to(device, memory_format=preferred_memory_format(device))
        if context.compile:
            self._compiled_model = compiled(self.model, dynamic=False)
        description = self._description(context)
        snr_range = description["train"]["snr_db"]
        channel = context.train_channel

        def step(images, labels, rng):
            if snr_range is None:
                logits = self._model(images)
            else:
                snr = torch.rand(len(labels), generator=rng, device=images.device)
                snr_db = snr_range[0] + (snr_range[1] - snr_range[0]) * snr
                no = esno_db_to_no(snr_db)
                logits = self._model(images, lambda x: self._through(x, channel, no))
            return F.cross_entropy(logits, labels), logits.argmax(-1) == labels

        def fit(checkpoint):
            data = context.dataset(p.dataset, "train", p.dataset_path)
            name = context.run_dir.name if context.run_dir else ""

            def report(log):
                if context.progress:
                    print(f"  train {description['variant']} epoch {log['epoch']}: loss {log['loss']:.4f} "
                          f"acc {log['accuracy']:.4f} ({log['wall_s']:.0f} s) {name}", flush=True)

            return train(self.model, step, data.images.to(device), data.labels.to(device), p.train,
                         seed=context.seed, conv_kernels=conv_kernels(self.model), checkpoint=checkpoint,
                         progress=report, cuda_graph=context.cuda_graphs)

        history, key, reused = load_or_train(self.model, description, fit, context.cache_dir)
        self.model.eval()
        test = context.dataset(p.dataset, "test", p.dataset_path)
        if p.eval_subset is not None:
            test = test.sample(min(p.eval_subset, len(test)))
        self._test_images, self._test_labels = test.images.to(device), test.labels.to(device)
        self.facts.update({"weights": key, "weights_reused": reused, "dataset_source": test.source,
                            "test_images": len(test), "epochs": len(history)})
        context.log_training(self.name or key, history)

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def _logits(self, images: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """``images [B, C, H, W]`` in [0, 1] through the variant (and ``channel`` at ``no [B]``) -> logits [B, classes]."""
        if self.params.uses_channel:
            return self._model(images, lambda x: self._through(x, channel, no))
        return self._model(images)

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._test_labels))).to(self._test_labels.device)
        labels = self._test_labels[idx]
        no = no.expand(batch_size)
        step = inference_chunk(labels.device) or batch_size
        logits = torch.cat([self._logits(self._test_images[idx[i : i + step]].float() / 255.0, no[i : i + step], channel)
                            for i in range(0, batch_size, step)])
        return {
            "samples": batch_size,
            "errors": int((logits.argmax(-1) != labels).sum()),
            "loss_sum": float(F.cross_entropy(logits, labels, reduction="sum")),
        }
