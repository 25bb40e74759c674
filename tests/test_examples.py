"""Every script in examples/ runs in its --smoke form (synthetic data, offline, tiny models) through the
public API, writes its run under --out and saves its figure there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))

# the schemes each smoke run keeps (the rest of its scenario is left out with channels: [])
EXPECTED = {
    "ldpc_qam": {"ldpc-qpsk", "ldpc-16qam", "uncoded-16qam"},
    "sinfony": {"perfect", "txrx14", "digital-bpsk-r14"},
    "image_codec": {"hevc-r1_12", "jpeg-r1_12"},
    "deepjscc": {"djscc-r1_12-awgn7", "hevc-ldpc-r1_12"},
    "vscc": {"vscc-s5-d5", "ae-s5", "hevc-ldpc"},
    "jcm": {"analog-2d-n128", "jcm-qam16-n128", "uniform-qam16-n128", "hevc-ldpc-r1_24"},
    "aesci": {"aesci-cr20", "jpeg-cr20", "direct"},
}


def _load(script: Path):
    spec = importlib.util.spec_from_file_location(f"linksim_example_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered():
    assert {p.stem for p in SCRIPTS} == set(EXPECTED)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_smoke_form_runs_offline_and_saves_its_figure(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINKSIM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "data"))
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the scripts import their helpers from examples/_examples_common.py
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    run = _load(script).main(["--smoke", "--out", str(out)])
    assert run.path.resolve().is_relative_to(out.resolve()) and run.remaining == 0
    df = pd.read_csv(run.path / "results.csv")
    assert set(df["scheme"]) == EXPECTED[script.stem]
    figures = list(run.path.glob("*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 10_000
    assert f"figure: {figures[0]}" in capsys.readouterr().out
    # the smoke form trains into OUT/smoke-models, never into the weight cache (here tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.safetensors"))
    assert any((out / "smoke-models").rglob("*.safetensors")) == (script.stem not in ("ldpc_qam", "image_codec"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help_describes_the_script(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    with pytest.raises(SystemExit) as stop:
        _load(script).main(["--help"])
    assert stop.value.code == 0 and "--smoke" in capsys.readouterr().out
