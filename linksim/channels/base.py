"""The one interface every linksim channel implements: symbols in, equalised symbols + CSI out."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Channel", "expand_noise"]


def expand_noise(no: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or per-example noise variance ``no`` ([] or [batch]) to ``x.shape`` (real)."""
    no = torch.as_tensor(no, dtype=x.real.dtype, device=x.device)
    if no.dim() == 1:
        no = no.reshape(-1, *([1] * (x.dim() - 1)))
    return no.expand(x.shape)


class Channel(nn.Module):
    """A channel with its receiver front end (equaliser), as seen by a demapper or a learned receiver.

    Subclasses implement :meth:`forward` and, where the physical layer adds overhead (pilots),
    :meth:`channel_uses`. Everything is differentiable with respect to ``x`` so learned
    transmitters can train through the channel.

    :input x: [batch, n], complex64. Unit average energy per symbol (Es = 1).
    :input no: [] or [batch], float32. Noise variance per complex symbol, linear
        (``no = 1 / (Es/N0)``); one value per example lets one batch hold many SNR points.
    :output x_hat: [batch, n], complex64. Equalised symbols (estimates of ``x``).
    :output no_eff: [batch, n], float32. Post-equalisation noise variance of each symbol,
        what an APP demapper or a CSI-aware learned receiver needs.
    """

    def forward(self, x: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def channel_uses(self, num_symbols: int) -> float:
        """Complex channel uses spent to carry ``num_symbols`` data symbols (overheads included)."""
        return float(num_symbols)
