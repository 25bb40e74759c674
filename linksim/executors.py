"""Where a run's tasks execute: in this process (:class:`LocalExecutor`) or as Ray tasks on a local
instance or a cluster (:class:`RayExecutor`).

A task (:class:`Task`) prepares one scheme (trains it, or loads its cached weights), simulates one
work unit, or simulates one chunk of a point (``stop.chunk_samples``). Every task's outcome depends
on the scenario and the task only (per-unit and per-chunk seeds), so which worker ran it, and when,
changes no number. The driver alone writes the run directory; a worker's outcome comes back as a
dict (:meth:`linksim.runner.Workbench.run`) with the ``node`` that ran it.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from linksim.engine import WorkUnit

if TYPE_CHECKING:
    from linksim.config import Scenario
    from linksim.progress import PointReporter
    from linksim.runner import Workbench

__all__ = ["RAY_MISSING", "LocalExecutor", "RayExecutor", "Task", "init_local_ray", "make_executor", "run_task"]

#: the one line a run with ``--executor ray`` prints where Ray is not installed
RAY_MISSING = '--executor ray needs Ray, which is not installed: pip install -e ".[ray]"'


@dataclass(frozen=True)
class Task:
    """One piece of a run: prepare ``scheme`` (``unit`` ``None``), simulate ``unit`` (``chunk``
    ``None``) or chunk ``chunk`` of it."""

    scheme: str
    unit: WorkUnit | None = None
    chunk: int | None = None

    def __str__(self) -> str:
        if self.unit is None:
            return f"prepare {self.scheme}"
        return str(self.unit) + ("" if self.chunk is None else f" chunk {self.chunk}")


def node_name() -> str:
    """The name of the machine a task runs on (the manifest's ``node``)."""
    return socket.gethostname()


class LocalExecutor:
    """Runs each task in this process when :meth:`wait` is called, one at a time and in the order
    submitted: the sequential run, with the per-point progress bars."""

    name = "local"
    slots = 1  #: tasks in flight at once

    def __init__(self) -> None:
        self._queue: deque[Task] = deque()
        self._bench: Workbench | None = None
        self._report: PointReporter | None = None

    def start(self, bench: Workbench, report: PointReporter, settings: dict) -> None:
        """Bind the driver's workbench (``settings`` are those of :func:`run_task`, already applied here)."""
        self._bench, self._report = bench, report

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def submit(self, task: Task) -> None:
        self._queue.append(task)

    def wait(self) -> list[tuple[Task, dict]]:
        """Run the oldest submitted task; its (task, outcome)."""
        task = self._queue.popleft()
        return [(task, {**self._bench.run(task, self._report.point_bar), "node": node_name()})]

    def describe(self) -> dict:
        """The manifest's ``executor`` entry."""
        return {"name": self.name, "nodes": [{"node": node_name(), "cpus": os.cpu_count(),
                                              "gpus": torch.cuda.device_count()}]}

    def close(self) -> None:
        self._queue.clear()


def init_local_ray(ray, cpus: int) -> None:
    """Start a local Ray instance of ``cpus`` CPUs without dashboard, its workers at this process's
    priority: Ray starts them at nice 15, and beside any other job on the machine they would get next to
    no CPU (a test run beside two trainings crawled at 6 % of a core for 15 minutes)."""
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="warning")


class RayExecutor:
    """Runs tasks as Ray tasks (:func:`run_task`), up to ``workers`` at once; Ray retries a task whose
    worker process died (``max_retries``), never one that raised.

    :param address: a cluster to join (``auto``, ``HOST:PORT``); ``None`` starts a local instance of
        ``workers`` x (torch threads) CPUs without dashboard. An instance already started in this
        process (``ray.init``) is used as it is.
    :param workers: tasks in flight at once (default: the instance's CPUs / torch threads).
    :param max_retries: how often a task whose worker died is run again.
    :raises RuntimeError: :data:`RAY_MISSING` where Ray is not installed.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, max_retries: int = 3):
        try:
            import ray
        except ImportError:
            raise RuntimeError(RAY_MISSING) from None
        self._ray, self._threads, self._max_retries = ray, torch.get_num_threads(), max_retries
        self._owned = not ray.is_initialized()
        if self._owned and address is None:
            init_local_ray(ray, (workers or max(1, (os.cpu_count() or 1) // self._threads)) * self._threads)
        elif self._owned:
            ray.init(address=address, logging_level="warning")
        self.slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self._threads)
        self._refs: dict = {}  # object ref -> task

    def start(self, bench: Workbench, report: PointReporter, settings: dict) -> None:
        """Put the scenario in the object store once; ``settings`` go with every task (:func:`run_task`)."""
        self._scenario = self._ray.put(bench.scenario)
        self._settings = settings
        gpus = 1 if bench.context.device.startswith("cuda") else 0
        self._remote = self._ray.remote(run_task).options(num_cpus=self._threads, num_gpus=gpus,
                                                          max_retries=self._max_retries, retry_exceptions=False)

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(self._scenario, self._settings, task)] = task

    def wait(self) -> list[tuple[Task, dict]]:
        """Block until at least one task is done; each done (task, outcome).

        :raises Exception: what a task raised, as raised in the worker (without Ray's traceback text);
            a ``RuntimeError`` naming the task where its worker died more than ``max_retries`` times.
        """
        done, _ = self._ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in done:
            task = self._refs.pop(ref)
            try:
                out.append((task, self._ray.get(ref)))
            except self._ray.exceptions.RayTaskError as err:
                raise err.cause from None
            except self._ray.exceptions.WorkerCrashedError:
                raise RuntimeError(f"{task}: its Ray worker died {self._max_retries + 1} times") from None
        return out

    def describe(self) -> dict:
        """The manifest's ``executor`` entry: the cluster's live nodes with their CPUs and GPUs."""
        nodes = [{"node": n["NodeManagerHostname"], "node_id": n["NodeID"][:12],
                  "cpus": n["Resources"].get("CPU", 0), "gpus": n["Resources"].get("GPU", 0)}
                 for n in self._ray.nodes() if n["Alive"]]
        return {"name": self.name, "workers": self.slots, "torch_threads_per_task": self._threads,
                "ray": self._ray.__version__, "nodes": nodes}

    def close(self) -> None:
        """Cancel what is still in flight; shut down an instance this executor started."""
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owned:
            self._ray.shutdown()


def make_executor(name: str, address: str | None = None, workers: int | None = None):
    """The executor ``name`` (``local`` or ``ray``) of a run; ``address`` and ``workers`` are Ray's.

    :raises RuntimeError: :data:`RAY_MISSING` for ``ray`` where Ray is not installed; ``address`` or
        ``workers`` given for ``local``.
    """
    if name == "local":
        if address is not None or workers is not None:
            raise RuntimeError("--ray-address and --workers need --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, workers)
    raise RuntimeError(f"unknown executor {name!r} (expected local or ray)")


_BENCH: dict = {}  # this worker process's workbench: {key: Workbench}, the latest scenario only


def run_task(scenario: Scenario, settings: dict, task: Task) -> dict:
    """Run ``task`` in a worker process; the workbench (channels, prepared schemes) is built on the
    first task of a scenario and kept for the next ones.

    :param settings: ``compile``, ``cuda_graphs`` (the run's options), ``progress`` (training lines),
        ``models`` (the weight-cache directory every worker must see), ``threads`` (torch threads).
    :output: :meth:`~linksim.runner.Workbench.run`'s outcome with the ``node`` and ``pid`` that ran it.
    """
    from linksim.runner import Workbench

    key = (scenario.digest(), tuple(sorted(settings.items())))
    if key not in _BENCH:
        _BENCH.clear()
        torch.set_num_threads(settings["threads"])
        _BENCH[key] = Workbench(scenario, run_dir=None, progress=settings["progress"], compile=settings["compile"],
                                cuda_graphs=settings["cuda_graphs"], cache_dir=settings["models"], manifest={})
    return {**_BENCH[key].run(task), "node": node_name(), "pid": os.getpid()}
