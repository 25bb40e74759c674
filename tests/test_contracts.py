"""Contracts every registered scheme, channel and bit channel keeps, checked on each of them.

A scheme is built the way the runner builds it (:func:`linksim.runner.build_scheme`), prepared on
synthetic data (:mod:`linksim.data.synthetic` served as ``cifar10`` / ``mnist``) with a tiny
training recipe, then held to what the engine relies on: a positive channel-use budget, the number
of items asked for, its primary among its statistics, reproducible counters under a seed, a results
row from :func:`linksim.engine.run_unit`, and params errors that name the key. A scheme registered
without an entry in :data:`EXAMPLES` fails here, before any run uses it.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import yaml
from conftest import undocumented, use_synthetic_data

from linksim import registry
from linksim.config import (
    ChannelSpec,
    ConfigError,
    SchemeSpec,
    SnrGrid,
    StopRule,
    load_scenario,
)
from linksim.engine import WorkUnit, run_unit, seed_everything, split_configs
from linksim.runner import build_channel, build_scheme
from linksim.schemes.base import SchemeContext

_TINY_TRAIN = {"epochs": 1, "subset": 48, "batch_size": 16}
_SINFONY_TRAIN = {**_TINY_TRAIN, "snr_db": [0.0, 10.0]}
_MNIST = {"name": "mnist", "eval_subset": 16}
_CIFAR = {"name": "cifar10", "eval_subset": 8}

EXAMPLES: dict[str, dict] = {
    "digital_link": {"k": 64, "n": 128, "bits_per_symbol": 2},
    "deepjscc": {"data": _CIFAR, "bandwidth_ratio": "1/12", "width": 8, "train": {**_TINY_TRAIN, "snr_db": 10.0}},
    "image_digital": {"data": _CIFAR, "bandwidth_ratio": "1/6", "codec": "jpeg",
                      "jpeg": {"headers": "abbreviated", "optimize": False}, "capacity": True,
                      "mcs": [{"name": "qpsk", "k": 384, "n": 512, "bits_per_symbol": 2}]},
    "sinfony": {"data": _MNIST, "variant": "txrx", "n_tx": 8, "train": _SINFONY_TRAIN},
    "sinfony_digital": {"data": _MNIST, "train": _SINFONY_TRAIN, "block_vectors": 4, "k": 64, "n": 128},
    "sinfony_analog_ae": {"data": _MNIST, "train": _SINFONY_TRAIN, "n_tx_el": 2,
                          "ae_train": {"epochs": 1, "subset": 1024, "batch_size": 256}},
    "aesci": {"data": _MNIST, "latent": 8, "session_images": 4, "train": _TINY_TRAIN, "classifier_train": _TINY_TRAIN},
    "aesci_jpeg": {"data": _MNIST, "quality": 50, "classifier_train": _TINY_TRAIN},
    "aesci_direct": {"data": _MNIST, "classifier_train": _TINY_TRAIN},
    "jcm": {"data": _CIFAR, "method": "jcm", "bandwidth_ratio": "1/24", "width": 0.0625, "snr_db": [0, 12],
            "train": _TINY_TRAIN},
    "split_jscc": {"data": _CIFAR, "bandwidth_ratio": "1/48", "interface": {"bits": 400}, "width": 8,
                   "channel_width": 8, "source_train": {**_TINY_TRAIN, "validation": 16, "samples": 2},
                   "train": {**_TINY_TRAIN, "validation": 16, "samples": 2, "snr_db": 10.0}},
    "vscc": {"data": _CIFAR, "matching": 5.0, "draws": 2, "base_width": 8, "stage_widths": [8, 16],
             "num_groups": 4, "latent_channels": 2, "train": {**_TINY_TRAIN, "snr_db": 5.0}},
}
"""Per registered scheme: params that build, prepare and simulate in a second or two on CPU."""

BAD_VALUES: dict[str, list[tuple[str, object]]] = {
    "digital_link": [("bits_per_symbol", 0)],
    "deepjscc": [("width", 0), ("train.validation", 1.5), ("train.early_stopping", {"metric": "val_loss"})],
    "image_digital": [("workers", -1), ("mcs", [{"k": 384, "n": 512, "bits_per_symbol": 2, "colour": 1}])],
    "sinfony": [("power_norm", "layer"), ("train.snr_db", [5, 1])],
    "sinfony_digital": [("block_vectors", 0)],
    "sinfony_analog_ae": [("n_tx_el", 0), ("ae_train.epochs", 0)],
    "aesci": [("latent", 0), ("session_images", 0), ("gamma", 2.0)],
    "aesci_jpeg": [("quality", 101), ("subsampling", "4:1:1")],
    "aesci_direct": [("lpips", "sometimes"), ("classifier_train.epochs", 0)],
    "jcm": [("width", 0.1), ("train.snr_db", 5), ("method", "digital")],
    "split_jscc": [("interface", {"bits": 402}), ("source_train.snr_db", 5.0), ("train.samples", 1), ("decision", "soft-ish")],
    "vscc": [("matching", 0), ("draws", 0), ("tv_variance", "linear"), ("power", "peak")],
}
"""Per scheme: (dotted) params keys and values its params model refuses; the error must name the key
(``mcs`` names the unknown key inside its first item)."""

ROUNDS_UP = {"sinfony_digital"}
"""Schemes documented to simulate more items than asked (whole blocks)."""

BATCH = 6  # items per simulate call: not a multiple of sinfony_digital's block of 4


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``get(name)``: the scheme of ``EXAMPLES[name]``, built and prepared once for this module."""
    cache = tmp_path_factory.mktemp("models")
    schemes = {}
    with pytest.MonkeyPatch.context() as mp:
        use_synthetic_data(mp)
        context = SchemeContext(device="cpu", cache_dir=cache, progress=False, seed=3,
                                train_channel=build_channel(ChannelSpec(name="awgn", type="awgn"), 3),
                                train_channel_spec={"name": "awgn", "type": "awgn", "params": {}})

        def get(name: str):
            if name not in schemes:
                scheme = build_scheme(SchemeSpec(name=f"{name}-example", type=name, params=EXAMPLES[name]), seed=3)
                scheme.prepare(context)
                schemes[name] = scheme
            return schemes[name]

        yield get


UNTRAINED = {"digital_link", "image_digital"}
"""Schemes without a trained model."""


def _values_of(facts: dict, suffix: str) -> list:
    """The values of every key ending in ``suffix`` in nested ``facts``."""
    out = []
    for key, value in facts.items():
        if isinstance(value, dict):
            out += _values_of(value, suffix)
        elif key.endswith(suffix):
            out.append(value)
    return out


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_scheme_trains_under_bf16_autocast_and_simulates(name, tmp_path, monkeypatch):
    """The scenario's ``train_precision: bfloat16`` reaches every learned scheme's training (its
    channel, losses and quantisers take bf16 activations); evaluation stays float32."""
    use_synthetic_data(monkeypatch)
    context = SchemeContext(device="cpu", cache_dir=tmp_path, progress=False, seed=3, train_precision="bfloat16",
                            train_channel=build_channel(ChannelSpec(name="awgn", type="awgn"), 3),
                            train_channel_spec={"name": "awgn", "type": "awgn", "params": {}})
    scheme = build_scheme(SchemeSpec(name=f"{name}-bf16", type=name, params=EXAMPLES[name]), seed=3)
    scheme.prepare(context)
    trained = set(_values_of(scheme.describe(), "train_precision"))
    assert trained == (set() if name in UNTRAINED else {"bfloat16"})
    seed_everything(0)
    counters = scheme.simulate(BATCH, _no(10.0, BATCH), build_channel(ChannelSpec(name="awgn", type="awgn"), 0))
    assert all(math.isfinite(v) for v in counters.values())


@pytest.fixture(scope="module")
def awgn():
    return build_channel(ChannelSpec(name="awgn", type="awgn"), 0)


def _no(esno_db: float, batch: int) -> torch.Tensor:
    return torch.full((batch,), 10 ** (-esno_db / 10), dtype=torch.float32)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a))


def _builtin(table: dict) -> set[str]:
    """The names linksim itself registers (tests may register toy schemes of their own)."""
    return {name for name, entry in table.items() if entry.factory.__module__.startswith("linksim.")}


SCHEMES = sorted(_builtin(registry.schemes()))


def test_every_registered_scheme_has_an_example():
    assert _builtin(registry.schemes()) - set(EXAMPLES) == set(), "add tiny params for the new scheme to EXAMPLES"
    assert set(EXAMPLES) - _builtin(registry.schemes()) == set(), "EXAMPLES names a scheme that is not registered"
    assert set(BAD_VALUES) == set(EXAMPLES)


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_budget_items_and_primary(name, prepared, awgn):
    scheme = prepared(name)
    assert scheme.budget(awgn).channel_uses > 0
    assert scheme.primary in scheme.rates
    seed_everything(1)
    scheme.reset()
    counters = scheme.simulate(BATCH, _no(5.0, BATCH), awgn)
    if name in ROUNDS_UP:
        assert counters["samples"] >= BATCH
    else:
        assert counters["samples"] == BATCH
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in counters.values()), counters
    source = scheme.describe().get("dataset_source")
    assert source is None or source.startswith("synthetic"), source  # never a real dataset here


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_counters_are_reproducible_under_a_seed(name, prepared, awgn):
    scheme = prepared(name)
    runs = []
    for _ in range(2):
        seed_everything(11)
        scheme.reset()
        runs.append([scheme.simulate(BATCH, _no(0.0, BATCH), awgn) for _ in range(2)])  # two batches
    assert _same(runs[0][0], runs[1][0]) and _same(runs[0][1], runs[1][1]), runs


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_takes_one_noise_value_or_one_per_item(name, prepared, awgn):
    """``no`` is ``[]`` or ``[batch]``: the same value either way gives the same counters."""
    scheme = prepared(name)
    runs = []
    for no in (_no(3.0, BATCH), _no(3.0, BATCH)[0]):
        seed_everything(5)
        scheme.reset()
        runs.append(scheme.simulate(BATCH, no, awgn))
    assert _same(*runs), runs


@pytest.mark.parametrize("name", SCHEMES)
def test_run_unit_gives_a_row_with_the_primary(name, prepared, awgn):
    scheme = prepared(name)
    unit = WorkUnit(f"{name}-example", "awgn", 4.0)
    stop = StopRule(batch_size=4, max_samples=8, target_errors=1_000)
    row = run_unit(scheme, awgn, unit, SnrGrid(values=[4.0]), stop, seed=7)
    assert scheme.primary in row and row["scheme"] == unit.scheme and row["samples"] >= 8
    assert row["channel_uses"] == scheme.budget(awgn).channel_uses
    again = run_unit(scheme, awgn, unit, SnrGrid(values=[4.0]), stop, seed=7)
    assert _same(row, again)
    missing = undocumented([c for r in split_configs(row, scheme.configs) for c in r])
    assert not missing, f"{name}: columns docs/results.md does not name: {missing}"


def _scenario(tmp_path, name: str, params: dict):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": "contract", "device": "cpu", "snr": {"values": [0.0]},
                                    "schemes": [{"name": "s", "type": name, "params": params}],
                                    "channels": ["awgn"]}))
    return path


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_example_loads_and_bad_params_are_refused_naming_the_key(name, tmp_path):
    load_scenario(_scenario(tmp_path, name, EXAMPLES[name]))  # the example itself is valid

    path = _scenario(tmp_path, name, {**EXAMPLES[name], "no_such_key": 1})
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(f"{path}: schemes[0].params.no_such_key: "), info.value.lines

    for key, value in BAD_VALUES[name]:
        params = copy.deepcopy(EXAMPLES[name])
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        path = _scenario(tmp_path, name, params)
        with pytest.raises(ConfigError) as info:
            load_scenario(path)
        where = "mcs[0].colour" if key == "mcs" else key
        assert len(info.value.lines) == 1, info.value.lines
        assert info.value.lines[0].startswith(f"{path}: schemes[0].params.{where}: "), info.value.lines


# ---------------------------------------------------------------- symbol channels

CHANNEL_EXAMPLES: dict[str, list[tuple[dict, bool]]] = {
    "awgn": [({}, True)],
    "rayleigh": [({}, True), ({"coherence_symbols": 1}, True), ({"csi": "none"}, False)],
    "tdl": [({}, True), ({"csi": "ls", "model": "C"}, False)],
}
"""Per registered channel type: (params, whether the receiver equalises with known or estimated CSI
well enough that a high-SNR output is close to the input)."""

CHANNEL_CASES = [(kind, params, eq) for kind in sorted(_builtin(registry.channels())) for params, eq in
                 CHANNEL_EXAMPLES.get(kind, [({}, False)])]


def _channel_id(case) -> str:
    kind, params, _ = case
    return kind + "".join(f"-{k}={v}" for k, v in params.items())


def test_every_registered_channel_has_an_example():
    assert _builtin(registry.channels()) == set(CHANNEL_EXAMPLES)


def _symbols(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    """Unit-energy QPSK [batch, n] complex64."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (batch, n, 2), generator=g).float()
    return torch.complex(1 - 2 * bits[..., 0], 1 - 2 * bits[..., 1]) / math.sqrt(2)


@pytest.fixture(params=CHANNEL_CASES, ids=[_channel_id(c) for c in CHANNEL_CASES])
def channel_case(request):
    kind, params, equalises = request.param
    return build_channel(ChannelSpec(name="c", type=kind, params=params), seed=1), equalises


def test_channel_shapes_dtypes_and_channel_uses(channel_case):
    channel, _ = channel_case
    batch, n = 3, 150
    x = _symbols(batch, n)
    for no in (torch.tensor(0.1), torch.tensor([0.05, 0.1, 0.2])):
        y, no_eff = channel(x, no)
        assert y.shape == (batch, n) and y.dtype == torch.complex64
        assert no_eff.shape == (batch, n) and no_eff.dtype == torch.float32
        assert torch.isfinite(y).all() and (no_eff >= 0).all()
    for k in (1, 100, 1000):
        assert channel.channel_uses(k) >= k


def test_channel_is_reproducible_under_a_seed(channel_case):
    channel, _ = channel_case
    x = _symbols(2, 200)
    outs = []
    for _ in range(2):
        seed_everything(21)
        outs.append(channel(x, torch.tensor(0.3)))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    seed_everything(22)
    assert not torch.equal(channel(x, torch.tensor(0.3))[0], outs[0][0])


def test_channel_returns_its_input_at_high_snr_when_it_equalises(channel_case):
    channel, equalises = channel_case
    if not equalises:
        pytest.skip("no (or estimated) CSI: the output is not an estimate of the input")
    x = _symbols(4, 300)
    seed_everything(2)
    y, no_eff = channel(x, torch.tensor(1e-6))
    assert (y - x).abs().square().mean() < 1e-3
    assert no_eff.median() < 1e-4


def test_no_eff_grows_with_no(channel_case):
    channel, _ = channel_case
    x = _symbols(8, 300)
    errors = []
    for no in (0.01, 1.0):
        seed_everything(3)
        _, no_eff = channel(x, torch.tensor(no))
        errors.append(no_eff.mean().item())
    assert errors[1] > errors[0]


# ---------------------------------------------------------------- bit channels

BIT_CHANNEL_EXAMPLES: dict[str, tuple[dict, dict]] = {
    "bsc": ({"p": 0.1}, {"p": 0.0}),
    "multilevel_bsc": ({"bits": 400, "levels": 4, "eps_first": 0.4, "eps_last": 0.05},
                       {"bits": 400, "eps": [0.0, 0.0]}),
    "digital_link": ({"link": {"k": 64, "n": 128}, "esno_db": 0.0}, {"link": {"k": 64, "n": 128}, "esno_db": 30.0}),
}
"""Per registered bit channel: (noisy params, error-free params)."""

BIT_CHANNELS = sorted(registry.bit_channels()) if hasattr(registry, "bit_channels") else []


def _bit_channel(kind: str, params: dict):
    seed_everything(0)
    return registry.bit_channels()[kind].build(params)


def test_every_registered_bit_channel_has_an_example():
    assert set(BIT_CHANNELS) == set(BIT_CHANNEL_EXAMPLES)


@pytest.mark.parametrize("kind", BIT_CHANNELS)
def test_bit_channel_contract(kind):
    noisy, clean = (_bit_channel(kind, p) for p in BIT_CHANNEL_EXAMPLES[kind])
    bits = torch.randint(0, 2, (5, 400), generator=torch.Generator().manual_seed(0)).float()
    outs = []
    for _ in range(2):
        seed_everything(8)
        outs.append(noisy(bits))
    bits_hat, flip_prob = outs[0]
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])  # reproducible
    assert bits_hat.shape == bits.shape and bits_hat.dtype == torch.float32
    assert flip_prob.shape == bits.shape and flip_prob.dtype == torch.float32
    assert set(bits_hat.unique().tolist()) <= {0.0, 1.0}
    assert ((flip_prob >= 0) & (flip_prob <= 1)).all()
    measured = (bits_hat != bits).float().mean().item()
    assert measured > 0 and abs(measured - flip_prob.mean().item()) < 0.05  # flip_prob describes the errors
    clean_hat, clean_prob = clean(bits)
    assert torch.equal(clean_hat, bits) and (clean_prob == 0).all()
    assert noisy.channel_uses(400) > 0
