"""Per-image quality metrics: PSNR and SSIM.

Both take two batches of images of the same shape, as numpy arrays or torch tensors (any real or
integer dtype; computed in float64), and return one value per image: a float64 numpy array of
shape ``[N]``, or a float64 torch tensor on the first input's device when either input is a
tensor. ``layout`` names the axes: ``"NHWC"`` (default, channels last, as the codecs' uint8
images) or ``"NCHW"`` (torch style). A single image (3-D input, ``HWC`` or ``CHW``) counts as a
batch of one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["psnr", "ssim", "PSNR_CAP_DB"]

#: PSNR reported for identical images (and the ceiling for all values) unless ``cap_db=None``.
PSNR_CAP_DB = 100.0

Layout = Literal["NHWC", "NCHW"]
_SSIM_CHUNK = 1024


def _as_nchw(x, y, layout: Layout) -> tuple[torch.Tensor, torch.Tensor, bool, torch.device]:
    """Both inputs as float64 [N, C, H, W] tensors; whether to answer in torch; the device."""
    tensors = [t for t in (x, y) if isinstance(t, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")

    def conv(t) -> torch.Tensor:
        t = t if isinstance(t, torch.Tensor) else torch.from_numpy(np.array(t, dtype=np.float64))
        return t.detach().to(device, torch.float64)

    tx, ty = conv(x), conv(y)
    if tx.shape != ty.shape:
        raise ValueError(f"shape mismatch: {tuple(tx.shape)} vs {tuple(ty.shape)}")
    if tx.ndim == 3:
        tx, ty = tx.unsqueeze(0), ty.unsqueeze(0)
    if tx.ndim != 4:
        raise ValueError(f"expected [N, H, W, C] / [N, C, H, W] (or one image), found {tuple(tx.shape)}")
    if layout == "NHWC":
        tx, ty = tx.permute(0, 3, 1, 2), ty.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise ValueError(f"layout must be NHWC or NCHW, found {layout!r}")
    return tx, ty, bool(tensors), device


def _out(values: torch.Tensor, is_torch: bool):
    return values if is_torch else values.cpu().numpy()


def psnr(x, y, max_val: float = 255.0, layout: Layout = "NHWC", cap_db: float | None = PSNR_CAP_DB):
    """Peak signal-to-noise ratio per image, in dB: ``10 log10(max_val^2 / MSE)``.

    The MSE is taken over all pixels and channels of each image (so ``layout`` does not change the
    result). Identical images have MSE 0 and infinite PSNR; values are capped at ``cap_db``
    (default :data:`PSNR_CAP_DB` = 100 dB, far above any lossy reconstruction of 8-bit images:
    one wrong level out of 255 in a 32x32x3 image is already ~83 dB) so that averages stay
    finite. ``cap_db=None`` returns ``inf`` for identical images.
    """
    tx, ty, is_torch, _ = _as_nchw(x, y, layout)
    mse = (tx - ty).square().flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(max_val**2 / mse)  # mse == 0 -> +inf (torch does not warn)
    if cap_db is not None:
        values = values.clamp(max=cap_db)
    return _out(values, is_torch)


def _valid_filter_matrix(n: int, size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """[n - size + 1, n] matrix applying the normalised 1-D Gaussian window at every valid offset."""
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    m = torch.zeros(n - size + 1, n, dtype=torch.float64, device=device)
    for i in range(n - size + 1):
        m[i, i : i + size] = g
    return m


def ssim(
    x,
    y,
    max_val: float = 255.0,
    layout: Layout = "NHWC",
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
):
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) per image.

    The standard form: an ``win_size`` x ``win_size`` (11x11) Gaussian window with ``sigma`` 1.5,
    normalised to sum 1; local means, variances and covariance with population (1/N) weighting;
    ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = max_val``; the SSIM map over the "valid" part
    of the image only (window entirely inside; 22x22 for a 32x32 image, no padding), averaged per
    channel, then the channel means averaged. This equals scikit-image's
    ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=max_val, channel_axis=-1)``. Images must be at least ``win_size`` on each side.
    """
    tx, ty, is_torch, device = _as_nchw(x, y, layout)
    n, c, h, w = tx.shape
    if h < win_size or w < win_size:
        raise ValueError(f"images of {h}x{w} are smaller than the {win_size}x{win_size} SSIM window")
    # "valid" separable Gaussian filtering as two banded matrix products (fast in float64)
    gv = _valid_filter_matrix(h, win_size, sigma, device)
    gh = _valid_filter_matrix(w, win_size, sigma, device)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    values = torch.empty(n, dtype=torch.float64, device=device)
    for s in range(0, n, _SSIM_CHUNK):  # bounded memory for whole datasets
        a, b = tx[s : s + _SSIM_CHUNK], ty[s : s + _SSIM_CHUNK]
        planes = torch.stack([a, b, a * a, b * b, a * b])  # [5, n, C, H, W]
        mu_a, mu_b, aa, bb, ab = (gv @ planes @ gh.T).unbind(0)
        var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        smap = num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        values[s : s + _SSIM_CHUNK] = smap.flatten(2).mean(dim=2).mean(dim=1)
    return _out(values, is_torch)
