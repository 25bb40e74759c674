"""The Ray executor writes the same results.csv as a local run, whatever the number of workers, the
chunking of points or a worker dying mid-task; learned schemes train in a Ray task, the driver reuses
their cached weights; without Ray a run fails with one line."""

import builtins
import json
import os

import pytest

from linksim import executors
from linksim.cli import main
from linksim.config import load_scenario
from linksim.runner import RunOptions, run_scenario

#: three SNR points and a stop_sweep_below that cuts some curves: the sequential cut under Ray
_OVERRIDES = ["snr.values=[1.0,3.0,5.0]", "stop.stop_sweep_below=0.05"]


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance of 2 CPUs for the module (its worker processes serve every test)."""
    ray = pytest.importorskip("ray")
    executors.init_local_ray(ray, 2)
    yield ray
    ray.shutdown()


def _run(path, out, overrides=(), **options):
    summary = run_scenario(load_scenario(path, overrides=list(overrides)),
                           RunOptions(out=str(out), run_id="r", plots=False, progress=False, report=False,
                                      scenario_file=str(path), **options))
    return summary, json.loads(summary.run_dir.manifest_path.read_text())


def test_without_ray_a_ray_run_fails_with_one_line_before_any_work(write_scenario, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = write_scenario()
    assert main(["run", str(path), "--executor", "ray", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[ray]"' in err
    assert not (tmp_path / "out").exists()
    assert main(["run", str(path), "--workers", "2", "--out", str(tmp_path / "out")]) == 2  # --workers is Ray's


def test_ray_with_one_and_two_workers_and_chunked_points_writes_the_local_bytes(ray_instance, write_scenario,
                                                                                 tmp_path):
    path = write_scenario()
    local, manifest = _run(path, tmp_path / "local", _OVERRIDES)
    assert local.cut > 0 and manifest["sessions"][0]["executor"]["name"] == "local"
    expected = local.run_dir.csv.read_bytes()
    for workers in (1, 2):
        ray, manifest = _run(path, tmp_path / f"ray{workers}", _OVERRIDES, executor="ray", workers=workers)
        assert ray.run_dir.csv.read_bytes() == expected, f"{workers} worker(s)"
        assert (ray.finished, ray.cut) == (local.finished, local.cut)
        executor = manifest["sessions"][0]["executor"]
        assert executor["name"] == "ray" and executor["workers"] == workers and executor["nodes"][0]["cpus"] == 2
        assert all("node" in entry for entry in manifest["units"].values())
    # a driver stopped after 5 points (as by a crash: results.csv is whole after every point) and resumed
    out = tmp_path / "ray-resumed"
    while (part := _run(path, out, _OVERRIDES, executor="ray", workers=2, resume=True, max_units=5)[0]).remaining:
        pass
    assert part.run_dir.csv.read_bytes() == expected
    # chunks of 150 items (batches of 100 and 50) split every point of 300: the same bytes local and on Ray
    chunked = [*_OVERRIDES, "stop.chunk_samples=150"]
    local_chunks, _ = _run(path, tmp_path / "local-chunks", chunked)
    ray_chunks, manifest = _run(path, tmp_path / "ray-chunks", chunked, executor="ray", workers=2)
    assert ray_chunks.run_dir.csv.read_bytes() == local_chunks.run_dir.csv.read_bytes()
    assert local_chunks.run_dir.csv.read_bytes() != expected  # chunks have seeds of their own
    assert any(entry["chunks"] == 2 for entry in manifest["units"].values())  # 300 items: two chunks


def test_a_worker_killed_mid_task_is_retried_and_nothing_is_counted_twice(ray_instance, write_scenario, tmp_path,
                                                                          monkeypatch):
    path = write_scenario()
    local, _ = _run(path, tmp_path / "local", ["stop.chunk_samples=100"])
    marker = str(tmp_path / "killed")

    def dying(scenario, settings, task, run=executors.run_task):  # pickled by value: a nested function
        if task.chunk == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-task, once
        return run(scenario, settings, task)

    monkeypatch.setattr(executors, "run_task", dying)
    ray, _ = _run(path, tmp_path / "ray", ["stop.chunk_samples=100"], executor="ray", workers=2)
    assert os.path.exists(marker)
    assert ray.run_dir.csv.read_bytes() == local.run_dir.csv.read_bytes()


_LEARNED = """\
name: tiny-learned
seed: 2
device: cpu
snr: {values: [5, 10]}
stop: {batch_size: 8, max_samples: 8}
channels: [awgn]
schemes:
  - name: jscc
    type: deepjscc
    params:
      bandwidth_ratio: 1/12
      width: 8
      data: {name: synthetic-cifar, eval_subset: 8}
      train: {epochs: 1, batch_size: 32, subset: 64, snr_db: 10}
"""


def test_a_learned_scheme_trains_in_a_ray_task_and_the_driver_reuses_its_weights(ray_instance, write_scenario,
                                                                                  tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_MODELS", str(tmp_path / "models"))
    path = write_scenario(_LEARNED)
    ray, manifest = _run(path, tmp_path / "ray", executor="ray", workers=2)
    facts = manifest["schemes"]["jscc"]
    assert facts["prepare_task"]["weights_reused"] is False  # trained in the task
    assert facts["weights_reused"] is True  # the driver loaded what the task cached
    assert manifest["sessions"][0]["models"] == str(tmp_path / "models")
    assert (ray.run_dir.path / "training" / "jscc.csv").is_file()
    local, _ = _run(path, tmp_path / "local")
    assert ray.run_dir.csv.read_bytes() == local.run_dir.csv.read_bytes()
