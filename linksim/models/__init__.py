"""Learned transceiver architectures composed from :mod:`linksim.layers`."""

from .analog_ae import AnalogFeatureAE
from .central import CentralClassifier
from .parameters import conv_kernels, count_parameters
from .sinfony import Sinfony

__all__ = ["AnalogFeatureAE", "CentralClassifier", "Sinfony", "conv_kernels", "count_parameters"]
