"""SINFONY (Beck et al.) and its Fig. 7 baselines, one module per scheme."""

from linksim.schemes.sinfony import analog_ae, classifier, digital

__all__ = ["analog_ae", "classifier", "digital"]
