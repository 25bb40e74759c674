"""Per-image quality metrics (PSNR, SSIM, MSE) and the additive counters image schemes report.

The metrics take two batches of images of the same shape, as numpy arrays or torch tensors (any real or
integer dtype; computed in float64), and return one value per image: a float64 numpy array of
shape ``[N]``, or a float64 torch tensor on the first input's device when either input is a
tensor. ``layout`` names the axes: ``"NHWC"`` (default, channels last, as the codecs' uint8
images) or ``"NCHW"`` (torch style). A single image (3-D input, ``HWC`` or ``CHW``) counts as a
batch of one.

:func:`image_quality_counters` turns a batch into the sums every image scheme reports, and
:func:`image_quality_rates` gives the matching statistics (:class:`~linksim.schemes.base.Mean` per
image, with intervals): the papers' PSNR is the per-image PSNR in dB, averaged over the images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from linksim.schemes.base import Statistic

__all__ = ["psnr", "ssim", "mse", "mse_from_psnr", "psnr_of_mse", "quality_counters", "image_quality_counters",
           "image_quality_rates", "PSNR_CAP_DB", "psnr_per_channel", "occupancy_counters", "occupancy_entropy_bits"]

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
    values = 10.0 * torch.log10(max_val**2 / _mse(tx, ty))  # mse == 0 -> +inf (torch does not warn)
    if cap_db is not None:
        values = values.clamp(max=cap_db)
    return _out(values, is_torch)


def psnr_per_channel(x, y, max_val: float = 1.0, layout: Layout = "NHWC", cap_db: float | None = PSNR_CAP_DB):
    """PSNR per image as the JCM code computes it: ``10 log10(max_val^2 / MSE)`` of each colour channel on
    its own, then the mean over the channels (in dB). Not clipped or rounded here: pass the reconstruction
    as the decoder gives it. Never below :func:`psnr` of the same images (Jensen's inequality); equal for
    one channel. Values capped at ``cap_db`` as :func:`psnr`.
    """
    tx, ty, is_torch, _ = _as_nchw(x, y, layout)
    values = 10.0 * torch.log10(max_val**2 / (tx - ty).square().flatten(2).mean(dim=2))
    if cap_db is not None:
        values = values.clamp(max=cap_db)
    return _out(values.mean(dim=1), is_torch)


def _mse(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return (tx - ty).square().flatten(1).mean(dim=1)


def mse(x, y, layout: Layout = "NHWC"):
    """Mean squared error per image over all its pixels and channels, in squared pixel units
    (``(0..255)^2`` for 8-bit images); ``psnr = 10 log10(max_val^2 / mse)``."""
    tx, ty, is_torch, _ = _as_nchw(x, y, layout)
    return _out(_mse(tx, ty), is_torch)


def psnr_of_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of per-image MSE values of images in [0, 1] (``-10 log10 mse``, MSE floored at
    1e-10): the training loops' ``psnr_db`` metric.

    :input mse: [B], float, detached.
    :output: [B], same dtype (dB).
    """
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def mse_from_psnr(psnr_db, max_val: float = 255.0, cap_db: float | None = PSNR_CAP_DB) -> np.ndarray:
    """The per-image MSE behind PSNR values from :func:`psnr`: ``max_val^2 10^(-psnr/10)``, and 0 for
    values at ``cap_db`` (identical images). Exact up to float64 rounding as long as no real
    reconstruction reaches the cap (for 8-bit images the largest finite PSNR is about 83 dB, below
    the default 100 dB cap); for schemes that keep per-image PSNR values but not the images.

    :input: ``psnr_db``: [N], any float array (dB).
    :output: [N], float64 numpy array.
    """
    p = np.asarray(psnr_db, dtype=np.float64)
    out = max_val**2 * 10.0 ** (-p / 10.0)
    return np.where(p >= cap_db, 0.0, out) if cap_db is not None else out


def _values(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64).reshape(-1)


def quality_counters(psnr_db, ssim_values, mse_values, prefix: str = "", suffix: str = "") -> dict[str, float]:
    """Additive counters of per-image PSNR, SSIM and MSE values (what :func:`image_quality_counters`
    returns, for a scheme that already has the values).

    :input: ``psnr_db``, ``ssim_values``, ``mse_values``: [N] each (numpy or torch, any float dtype).
    :param prefix: prepended to every counter name; ``suffix``: appended (``_<option>``).
    :output: ``{psnr_sum, psnr_sq_sum, ssim_sum, ssim_sq_sum, mse_sum, mse_sq_sum, images}`` (names
        with ``prefix``/``suffix``): float sums of the values and of their squares, and ``images`` = N
        (int). Counters of two batches add up to those of the batches together.
    """
    out: dict[str, float] = {}
    n = None
    for key, values in (("psnr", psnr_db), ("ssim", ssim_values), ("mse", mse_values)):
        v = _values(values)
        if n is not None and len(v) != n:
            raise ValueError(f"{key}: expected {n} values (one per image), found {len(v)}")
        n = len(v)
        out[f"{prefix}{key}_sum{suffix}"] = float(v.sum())
        out[f"{prefix}{key}_sq_sum{suffix}"] = float(np.square(v).sum())
    out[f"{prefix}images{suffix}"] = int(n)
    return out


def image_quality_counters(x, x_hat, max_val: float = 255.0, layout: Layout = "NHWC", prefix: str = "",
                           suffix: str = "") -> dict[str, float]:
    """The additive counters of a batch of images and their reconstructions, for the statistics of
    :func:`image_quality_rates`.

    :input: ``x``, ``x_hat``: [N, H, W, C] (``layout`` ``"NHWC"``) or [N, C, H, W] (``"NCHW"``), the
        same shape, numpy or torch, any real or integer dtype, pixel values in ``[0, max_val]``.
    :param max_val: the peak pixel value (255 for 8-bit images, 1.0 for images in [0, 1]).
    :param prefix: prepended to every counter name; ``suffix``: appended (``_<option>``).
    :output: ``{psnr_sum, psnr_sq_sum, ssim_sum, ssim_sq_sum, mse_sum, mse_sq_sum, images}``:
        per-image PSNR (dB, :func:`psnr`, capped at :data:`PSNR_CAP_DB`), SSIM (:func:`ssim`) and MSE
        (:func:`mse`, squared pixel units) summed over the images, their squares summed, and the
        number of images (see :func:`quality_counters`).
    """
    return quality_counters(psnr(x, x_hat, max_val, layout), ssim(x, x_hat, max_val, layout),
                            mse(x, x_hat, layout), prefix, suffix)


def _psnr_of_mean_mse(counters: Mapping[str, float], mse_sum: str, images: str, max_val: float,
                      cap_db: float | None) -> float:
    n = counters.get(images, 0)
    if not n:
        return math.nan
    m = counters.get(mse_sum, 0) / n
    value = 10.0 * math.log10(max_val**2 / m) if m > 0 else math.inf
    return min(value, cap_db) if cap_db is not None else value


def image_quality_rates(prefix: str = "", suffix: str = "", max_val: float = 255.0,
                        cap_db: float | None = PSNR_CAP_DB) -> dict[str, Statistic]:
    """The statistics of the counters of :func:`image_quality_counters` (same ``prefix``/``suffix``),
    for a scheme's ``rates``.

    :param max_val: the peak pixel value the counters were computed with.
    :output: ``psnr_db`` (per-image PSNR in dB averaged over the images, the papers' convention),
        ``ssim``, ``mse`` (:class:`~linksim.schemes.base.Mean`, each with a Student-t interval and a
        ``_std`` column) and ``psnr_of_mean_mse_db`` = ``10 log10(max_val^2 / mean MSE)`` (a
        :class:`~linksim.schemes.base.Derived` column, capped at ``cap_db``; it weights the worst
        images more and lies at or below ``psnr_db`` by Jensen's inequality), names with
        ``prefix``/``suffix``.
    """
    from linksim.schemes.base import Derived, Mean  # here: linksim.schemes imports this module

    def name(key: str) -> str:
        return f"{prefix}{key}{suffix}"

    count = name("images")
    return {
        name("psnr_db"): Mean(name("psnr_sum"), name("psnr_sq_sum"), count),
        name("ssim"): Mean(name("ssim_sum"), name("ssim_sq_sum"), count),
        name("mse"): Mean(name("mse_sum"), name("mse_sq_sum"), count),
        name("psnr_of_mean_mse_db"): Derived(
            partial(_psnr_of_mean_mse, mse_sum=name("mse_sum"), images=count, max_val=max_val, cap_db=cap_db),
            f"10 log10({max_val:g}^2 / mean MSE) over the point's images, dB"),
    }


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


def occupancy_counters(indices: torch.Tensor, num_points: int, prefix: str = "occupancy_") -> dict[str, int]:
    """How often each of ``num_points`` constellation points was sent: additive counters
    ``<prefix><i>`` (int), one per point ``i`` (zeros included, so that every batch has the same keys).

    :input indices: [...], integer tensor of point indices in ``[0, num_points)``.
    """
    counts = torch.bincount(indices.reshape(-1).long(), minlength=num_points)
    if len(counts) > num_points:
        raise ValueError(f"point index {len(counts) - 1} out of range for {num_points} points")
    return {f"{prefix}{i}": int(c) for i, c in enumerate(counts.tolist())}


def occupancy_entropy_bits(counters: Mapping[str, float], prefix: str = "occupancy_") -> float:
    """Entropy in bits per symbol of the empirical point distribution of :func:`occupancy_counters`
    (``log2 M`` for uniform use of ``M`` points; NaN without counts)."""
    counts = np.array([v for k, v in counters.items() if k.startswith(prefix)], dtype=np.float64)
    total = counts.sum()
    if not total:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())
