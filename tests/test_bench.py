"""The benchmarks' own logic (their timings are not tested): references and bookkeeping."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import compile_cpu
import encode_once
import sinfony_end_to_end
import sinfony_throughput
import training_precision
from conftest import use_synthetic_data

from linksim.models import Sinfony, count_parameters


def test_per_agent_reference_is_the_same_model_written_per_agent():
    ref = sinfony_throughput.PerAgentSinfony()
    ours = Sinfony(in_channels=1, image_size=28, units_per_stage=2, base_width=14, n_tx=14, n_rx=56)
    assert count_parameters(ref) == count_parameters(ours) == 541_138
    logits = ref(torch.rand(3, 1, 28, 28), sinfony_throughput.awgn_per_image(torch.full((3,), 5.0)))
    assert logits.shape == (3, 10)


def test_compile_break_even_is_compile_time_over_the_gain_per_call():
    assert compile_cpu.break_even(eager_s=0.3, compiled_s=0.2, compile_s=50.0) == pytest.approx(500.0)
    assert compile_cpu.break_even(eager_s=0.2, compiled_s=0.2, compile_s=1.0) == math.inf
    assert compile_cpu.break_even(eager_s=0.2, compiled_s=0.3, compile_s=0.0) == math.inf


def test_end_to_end_breakdown_splits_the_manifest_by_phase():
    manifest = {
        "scenario": {"schemes": [{"name": "central", "type": "sinfony"}, {"name": "digital", "type": "sinfony_digital"},
                                 {"name": "ae", "type": "sinfony_analog_ae"}]},
        "sessions": [{"data_wall_s": 2.0}],
        "schemes": {"central": {"prepare_wall_s": 10.0}, "digital": {"prepare_wall_s": 3.0},
                    "ae": {"prepare_wall_s": 4.0}},
        "units": {"central|awgn|0": {"wall_s": 1.5}, "central|awgn|5": {"wall_s": 0.5},
                  "digital|awgn|14": {"wall_s": 6.0}, "ae|awgn|0": {"wall_s": 1.0}},
    }
    assert sinfony_end_to_end.breakdown(manifest) == {"data": 2.0, "training": 8.0, "evaluation": 2.0,
                                                       "baselines": 14.0}


def test_encode_once_reference_is_the_whole_network_with_the_same_noise():
    scheme, test = encode_once.prepared_scheme("cpu", 300)  # two inference chunks on a CPU
    channel, no = encode_once.AWGNChannel(), torch.tensor(0.5)
    cached, whole = encode_once.both_paths(scheme, test.images, test.labels, no, channel)
    assert cached == whole and cached["samples"] == 300


def test_training_precision_times_the_cases_own_epochs_in_either_precision(tmp_path, monkeypatch):
    use_synthetic_data(monkeypatch)
    kind, params = training_precision.CASES["sinfony-central"]
    params = {**params, "train": {**params["train"], "epochs": 2, "subset": 64}}
    for precision in ("float32", "bfloat16"):
        seconds, loss, images = training_precision.train_once(kind, params, precision, "cpu", tmp_path / precision)
        assert seconds > 0 and loss > 0 and images == 128
