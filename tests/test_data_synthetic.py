"""The synthetic image sets (linksim.data.synthetic): seeded, learnable, registered, no files."""

import pytest
import torch

from linksim import registry
from linksim.data import DataParams
from linksim.data.synthetic import SYNTHETIC, class_patterns, synthetic_images


def test_images_are_seeded_balanced_uint8():
    a, b = synthetic_images(40, seed=2), synthetic_images(40, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, synthetic_images(40, seed=3).images)
    assert a.images.shape == (40, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.bincount(a.labels, minlength=10).tolist() == [4] * 10
    assert synthetic_images(6, shape=(1, 28, 28), classes=3).images.shape == (6, 1, 28, 28)


def test_classes_share_their_pattern_across_seeds_and_can_be_told_apart():
    """Nearest class mean, fitted on one seed's images, classifies another seed's."""
    train, test = synthetic_images(300, seed=0), synthetic_images(100, seed=1)
    means = torch.stack([train.float()[train.labels == c].mean(0) for c in range(10)])
    guess = ((test.float()[:, None] - means[None]) ** 2).flatten(2).sum(-1).argmin(1)
    assert (guess == test.labels).float().mean() > 0.9
    assert torch.equal(class_patterns((3, 32, 32), 10), class_patterns((3, 32, 32), 10))
    assert test.images.float().std() > 30  # not flat: there is something to reconstruct


@pytest.mark.parametrize(("name", "shape"), [("synthetic-cifar", (3, 32, 32)), ("synthetic-mnist", (1, 28, 28))])
def test_registered_loaders(name, shape):
    load = registry.datasets()[name]
    assert load is SYNTHETIC[name]
    train, test = load("train"), load("test", root="/nonexistent")
    assert train.images.shape[1:] == shape and test.images.shape[1:] == shape
    assert len(train) > len(test) and train.name == name
    assert not torch.equal(train.images[: len(test)], test.images)
    with pytest.raises(ValueError, match="split"):
        load("validation")
    with pytest.raises(ValueError, match="no local copy"):
        load("train", path="/some/where")
    assert DataParams(name=name).name == name
