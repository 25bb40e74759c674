"""Learned transceiver architectures composed from :mod:`linksim.layers`."""

from .analog_ae import AnalogFeatureAE
from .central import CentralClassifier
from .deepjscc import DeepJSCC
from .jcm import JCM, jcm_complexity
from .parameters import conv_kernels, count_macs, count_parameters
from .sinfony import Sinfony
from .split_jscc import ChannelCodec, SourceCodec
from .vscc import VSCCAutoencoder

__all__ = ["AnalogFeatureAE", "CentralClassifier", "DeepJSCC", "Sinfony", "conv_kernels", "count_parameters",
           "VSCCAutoencoder", "JCM", "count_macs", "jcm_complexity",
           "SourceCodec", "ChannelCodec"]
