"""The Python API: the README's example runs as written; runs made from Python are ordinary run directories."""

import re
import shutil
from pathlib import Path

import pytest

import linksim

ROOT = Path(__file__).resolve().parent.parent


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (example,) = [b for b in blocks if "linksim.run(" in b]
    return example


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "ldpc_qam.yaml", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    out = capsys.readouterr().out
    run, df = scope["run"], scope["df"]
    assert (tmp_path / "bler.pdf").is_file() and run.path.resolve().parent == tmp_path / "runs" / "ldpc_qam"
    assert len(df) == 9 and df["wall_s"].gt(0).all() and set(df["stop_reason"]) <= {"target_errors", "max_samples"}
    assert "ldpc-qpsk / awgn" in out and "ebno_db_at_target" in out
    manifest = scope["again"].manifest
    assert manifest["profile"] == "quick" and manifest["overrides"][0] == "channels=[awgn]"
    assert manifest["scenario_file"] == "scenarios/ldpc_qam.yaml"


def test_runs_resume_and_refuse_overrides_on_a_loaded_scenario(write_scenario, tmp_path):
    path = write_scenario()
    first = linksim.run(path, profile="quick", out=tmp_path, run_id="r", max_units=3, progress=False,
                        report=False, plots=False)
    assert (first.finished, first.remaining) == (3, 5)
    rest = linksim.run(path, profile="quick", out=tmp_path, run_id="r", resume=True, progress=False,
                       report=False, plots=False)
    assert (rest.finished, rest.remaining) == (5, 0) and len(rest.results()) == 8
    with pytest.raises(ValueError, match="pass them to load_scenario"):
        linksim.run(linksim.load_scenario(path), overrides=["seed=3"])
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        linksim.open_run(tmp_path)
    fig = linksim.open_run(rest.path).plot("ber", channels=["awgn"], style="wide")
    legend = fig.axes[0].get_legend() or fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()][:2] == ["ldpc", "unc"]


def test_a_module_that_validates_dataset_params_at_import_imports_first():
    """linksim.link.packing builds a DataParams default while it loads: the dataset registry it
    consults must not import the schemes, which import it back (a circular import)."""
    import subprocess
    import sys

    code = "import linksim.link.packing, linksim.registry; assert 'cifar10' in linksim.registry.datasets()"
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_import_linksim_stays_light():
    import subprocess
    import sys

    code = "import sys, linksim; assert 'torch' not in sys.modules, 'torch imported'; print(linksim.__version__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
