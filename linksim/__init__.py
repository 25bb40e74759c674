"""linksim: link-level Monte Carlo simulation of learned semantic transceivers on Sionna.

The Python API (:mod:`linksim.api`): ``load_scenario``, ``run``, ``open_run`` and ``Run``; imported
on first use, so ``import linksim`` (and ``linksim --version``) does not load torch.
"""

__version__ = "0.1.0"

__all__ = ["Run", "load_scenario", "open_run", "run", "__version__"]


def __getattr__(name: str):
    if name in ("Run", "load_scenario", "open_run", "run"):
        from linksim import api

        return getattr(api, name)
    raise AttributeError(f"module 'linksim' has no attribute {name!r}")
