"""Central ResNet classifier on the full image (the SINFONY upper-bound baseline)."""

import torch
from torch import nn

from ..layers import Dense, PreActResNet

__all__ = ["CentralClassifier"]


class CentralClassifier(nn.Module):
    r"""Pre-activation ResNet-(6n+2) classifier on the full image: features -> linear classifier.

    No transmitter, channel or receiver; the logits feed a softmax cross-entropy loss.

    :param in_channels: Image channels.
    :param units_per_stage: Residual units per ResNet stage (2 for ResNet14, 3 for ResNet20).
    :param base_width: ResNet stem/stage-1 filters (14 for MNIST, 16 for CIFAR-10).
    :param num_classes: Number of classes.

    :input images: [batch, in_channels, H, W], `torch.float32` in [0, 1]
    :output logits: [batch, num_classes], `torch.float32`
    """

    def __init__(self, *, in_channels: int, units_per_stage: int, base_width: int, num_classes: int = 10):
        super().__init__()
        self.feature_extractor = PreActResNet(in_channels, units_per_stage, base_width)
        self.n_feat = self.feature_extractor.num_features
        self.classifier = Dense(self.n_feat, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``[batch, N_Feat]`` of ``images [batch, C, H, W]``."""
        return self.feature_extractor(images.unsqueeze(1)).squeeze(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
