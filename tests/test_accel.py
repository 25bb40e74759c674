"""Optional accelerations: the switches, CUDA-graph replay of training steps, and the eager
fallbacks when compiling or capturing fails.

The CUDA-graph dispatch is tested on CPUs with a stand-in for ``torch.cuda``'s graph API (a
"captured" step is recorded without running and runs again on each replay, reading the static
index buffer as a real graph would); the real capture is tested where a GPU is present.
"""

import contextlib
import warnings

import pytest
import torch

from linksim.accel import CapturedStep, compiled, resolve_compile, resolve_cuda_graphs
from linksim.training import TrainParams, train


def test_auto_compiles_and_captures_on_gpus_only():
    assert resolve_compile("auto", "cuda:0") and not resolve_compile("auto", "cpu")
    assert resolve_compile("on", "cpu") and not resolve_compile("off", "cuda:0")
    assert resolve_cuda_graphs("auto", "cuda:0") and not resolve_cuda_graphs("auto", "cpu")
    assert not resolve_cuda_graphs("off", "cuda:0")


def test_a_failing_compile_falls_back_to_eager_once(monkeypatch):
    def broken_compile(fn, **kwargs):
        def fail(*args, **kw):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    calls = []

    def double(x):
        calls.append(x)
        return 2 * x

    fn = compiled(double)
    with pytest.warns(RuntimeWarning, match="torch.compile failed for .*double.*no C\\+\\+ compiler"):
        assert fn(3) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # eager from then on, without a second warning
        assert fn(4) == 8
    assert calls == [3, 4]


class _FakeCuda:
    """Stand-in for the parts of ``torch.cuda`` that :class:`CapturedStep` uses."""

    def __init__(self, fail_capture: bool = False):
        self.capturing, self.fail_capture, self.registered = False, fail_capture, []
        fake = self

        class Graph:
            def register_generator_state(self, generator):
                fake.registered.append(generator)

            def replay(self):
                fake.replayed()

        self.Graph = Graph

    def install(self, monkeypatch, fn_for_replay):
        self.replayed = fn_for_replay
        stream = type("Stream", (), {"wait_stream": lambda self, other: None})
        monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: stream())
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: stream())
        monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "CUDAGraph", self.Graph)
        monkeypatch.setattr(torch.cuda, "graph", self.graph)

    @contextlib.contextmanager
    def graph(self, g):
        if self.fail_capture:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.capturing = True
        try:
            yield
        finally:
            self.capturing = False


def test_a_captured_step_warms_up_then_replays_full_batches_with_fresh_indices(monkeypatch):
    fake, seen, eager = _FakeCuda(), [], []

    def fn(idx):  # the step's effect: remember which indices it trained on (nothing while capturing)
        if not fake.capturing:
            seen.append(idx.tolist())

    step = CapturedStep(fn, generators=("rng",), warmup=2)
    fake.install(monkeypatch, lambda: fn(step._static_idx))
    batches = [torch.arange(i, i + 3) for i in range(0, 15, 3)] + [torch.tensor([99])]
    for i, b in enumerate(batches):
        step(b)
        eager.append(step.captured)
    assert seen == [b.tolist() for b in batches]  # every batch trained once, in order, partial one eagerly
    assert eager == [False, False, True, True, True, True] and fake.registered == ["rng"]


def test_a_failing_capture_warns_once_and_stays_eager(monkeypatch):
    fake, seen = _FakeCuda(fail_capture=True), []
    step = CapturedStep(lambda idx: seen.append(idx.tolist()), warmup=1)
    fake.install(monkeypatch, lambda: pytest.fail("replayed a graph that was never captured"))
    step(torch.tensor([0, 1]))
    with pytest.warns(RuntimeWarning, match="CUDA graph capture of .*failed; running eagerly.*not permitted"):
        step(torch.tensor([2, 3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(torch.tensor([4, 5]))
    assert seen == [[0, 1], [2, 3], [4, 5]] and not step.captured


def test_a_disabled_captured_step_is_the_eager_step():
    seen = []
    step = CapturedStep(lambda idx: seen.append(idx.tolist()), enabled=False)
    for i in range(5):
        step(torch.tensor([i]))
    assert seen == [[0], [1], [2], [3], [4]] and not step.captured


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cuda_graph_training_learns_like_eager_training(optimizer):
    """Same weights, data and seed: the graphed loop's loss per epoch equals the eager loop's."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(640, 8, generator=gen)
    y = (x[:, :2].sum(-1) > 0).long()
    params = TrainParams(epochs=3, batch_size=64, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-2,
                         schedule={"milestones": [2]})

    def run(cuda_graph):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 2)).cuda()

        def step(inputs, labels, rng):  # draws noise from the loop's generator, as the schemes do
            logits = model(inputs + 0.1 * torch.randn(inputs.shape, generator=rng, device=inputs.device))
            return torch.nn.functional.cross_entropy(logits, labels), {"accuracy": logits.argmax(-1) == labels}

        return train(model, step, x.cuda(), y.cuda(), params, seed=2, cuda_graph=cuda_graph)

    eager, graphed = run(False), run(True)
    assert [h["loss"] for h in graphed] == pytest.approx([h["loss"] for h in eager], rel=1e-3)
    assert graphed[-1]["accuracy"] > 0.8
