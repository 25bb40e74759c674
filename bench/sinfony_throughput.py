"""SINFONY training and evaluation throughput: linksim's batched model against a per-agent reference.

The reference, kept here, is SINFONY written the straightforward way: four separate ResNet14
feature extractors and four Tx layer pairs called one after the other, the shared Rx applied per
agent. linksim's model (:class:`linksim.models.Sinfony`) runs the four agents as one network
(grouped convolutions, batched per-agent dense layers). Both have the same parameter count (checked)
and train the same way: SGD with momentum, cross-entropy plus L2 on the conv kernels, the AWGN channel
at a training SNR drawn per image (MNIST sizes, N_Tx = 14, random images: throughput only).

Prints training images/s at batch 64 and 512 and evaluation images/s (2,000 images per call; linksim
evaluates them in chunks on a CPU, as its scheme does) for each model (and for
linksim's model under ``torch.compile`` and, on a GPU, with the whole training step replayed as a CUDA
graph, :class:`linksim.accel.CapturedStep`), then ``ratio=<x>``: linksim's default path (on a GPU
compiled and graphed, as ``--compile auto --cuda-graphs auto``; eager on a CPU) over the reference,
training at batch 64.

It also trains copies of linksim's model eagerly, compiled (and graphed, on a GPU) for 200 steps from
the same weights and seed on a small memorisation task and prints the losses: neither may change the
learning curve.

    python bench/sinfony_throughput.py [--device cpu] [--min-time 5]
"""

from __future__ import annotations

import argparse
import copy
import math

import torch
import torch.nn.functional as F
from _common import environment, pick_device, rate
from torch import nn

from linksim.accel import CapturedStep, compiled, resolve_compile, resolve_cuda_graphs
from linksim.data.quadrants import split_quadrants
from linksim.layers import Dense, PreActResNet, inference_chunk, preferred_memory_format
from linksim.models import Sinfony, conv_kernels, count_parameters

N_TX, N_RX, AGENTS = 14, 56, 4


class PerAgentSinfony(nn.Module):
    """SINFONY (MNIST, N_Tx = 14) with one module call per agent: ``images [B, 1, 28, 28]`` and a
    channel function on ``[B, N_Tx]`` real symbols -> logits ``[B, 10]``."""

    def __init__(self):
        super().__init__()
        self.resnets = nn.ModuleList(PreActResNet(1, 2, 14) for _ in range(AGENTS))
        self.tx = nn.ModuleList(nn.Sequential(Dense(56, N_TX, relu=True), Dense(N_TX, N_TX)) for _ in range(AGENTS))
        self.rx = Dense(N_TX, N_RX, relu=True)
        self.classifier = Dense(N_RX, 10)

    def forward(self, images, channel_fn):
        tiles = split_quadrants(images)
        received = []
        for a in range(AGENTS):
            x = self.tx[a](self.resnets[a](tiles[:, a : a + 1]).squeeze(1))
            x = x * math.sqrt(N_TX) / x.norm(dim=-1, keepdim=True)
            received.append(self.rx(channel_fn(x)))
        return self.classifier(torch.stack(received).mean(dim=0))


def awgn_per_image(snr_db: torch.Tensor):
    """Real AWGN with SNR = 1/sigma^2 per image: ``x [B, ..., n] -> x + sigma n``."""
    sigma = 10 ** (-snr_db / 20)

    def channel(x):
        return x + sigma.view(-1, *([1] * (x.dim() - 1))) * torch.randn_like(x)

    return channel


def train_step(model, forward, batch: int, device: str, graph: bool = False):
    """One SGD step on ``batch`` of 4,096 random images; returns the step function (with ``graph``,
    captured in a CUDA graph after 3 warm-up steps, as ``linksim.training`` does)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    kernels = conv_kernels(model)
    images = torch.rand(4096, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (4096,), device=device)

    def one_step(idx):
        snr_db = torch.empty(len(idx), device=device).uniform_(-4, 6)
        logits = forward(images[idx], awgn_per_image(snr_db))
        loss = F.cross_entropy(logits, labels[idx]) + 1e-4 * sum(w.square().sum() for w in kernels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    run = CapturedStep(one_step, enabled=graph)
    calls = 0

    def step():
        nonlocal calls
        start = calls * batch % (len(labels) - batch + 1)
        calls += 1
        run(torch.arange(start, start + batch, device=device))

    return step


def eval_step(forward, batch: int, device: str, chunk: int | None):
    """Classify ``batch`` random images at 2 dB, ``chunk`` images per forward pass (``None``: all)."""
    images = torch.rand(batch, 1, 28, 28, device=device)
    step_size = chunk or batch

    @torch.no_grad()
    def step():
        return torch.cat([forward(images[i : i + step_size], awgn_per_image(torch.full((len(images[i : i + step_size]),), 2.0,
                                                                                       device=device))).argmax(-1)
                          for i in range(0, batch, step_size)])

    return step


def learning_curve(model: nn.Module, compile_model: bool, graph: bool, device: str, steps: int) -> list[float]:
    """Loss per step of ``steps`` SGD steps (batch 64) memorising 640 random images' random labels, from
    ``model``'s weights (a copy) and a fixed seed: the compiled and graphed paths must learn like the
    eager one (the compiler draws the channel noise from another generator, so the curves agree within
    noise, not exactly)."""
    model = copy.deepcopy(model).train()
    forward = compiled(model, dynamic=False) if compile_model else model
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(640, 1, 28, 28, generator=gen).to(device)
    labels = torch.randint(0, 10, (640,), generator=gen).to(device)  # to be memorised: learnt slowly
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    last_loss = torch.zeros((), device=device)
    torch.manual_seed(6)

    def one_step(idx):
        logits = forward(images[idx], awgn_per_image(torch.full((64,), 6.0, device=device)))
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last_loss.copy_(loss.detach())

    run = CapturedStep(one_step, enabled=graph)
    losses = []
    for i in range(steps):
        run(torch.arange(i * 64, (i + 1) * 64, device=device) % len(labels))
        losses.append(float(last_loss))
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--min-time", type=float, default=5.0)
    ap.add_argument("--eval-batch", type=int, default=2000)
    args = ap.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    print(environment(device))
    ours = Sinfony(in_channels=1, image_size=28, units_per_stage=2, base_width=14, n_tx=N_TX, n_rx=N_RX)
    ours.to(device, memory_format=preferred_memory_format(device))  # as the sinfony scheme does
    ref = PerAgentSinfony().to(device)
    assert count_parameters(ours) == count_parameters(ref), (count_parameters(ours), count_parameters(ref))
    print(f"parameters: {count_parameters(ours):,} (both)")
    fast = compiled(ours, dynamic=False)
    paths = {  # name: (model, forward, CUDA graph)
        "per-agent reference": (ref, ref, False),
        "linksim, eager": (ours, ours, False),
        "linksim, torch.compile": (ours, fast, False),
    }
    if device.startswith("cuda"):
        paths["linksim, CUDA graph"] = (ours, ours, True)
        paths["linksim, compile + graph"] = (ours, fast, True)
    default = {(True, True): "linksim, compile + graph", (True, False): "linksim, torch.compile",
               (False, False): "linksim, eager"}[resolve_compile("auto", device), resolve_cuda_graphs("auto", device)]
    results: dict[tuple[str, str], float] = {}
    for name, (model, forward, graph) in paths.items():
        for batch in (64, 512):
            model.train()
            results[(name, f"train {batch}")] = rate(train_step(model, forward, batch, device, graph), batch, device,
                                                     args.min_time, warmup=5)
        model.eval()
        chunk = None if model is ref else inference_chunk(device)  # linksim's evaluation path chunks on a CPU
        results[(name, "eval")] = rate(eval_step(forward, args.eval_batch, device, chunk), args.eval_batch, device,
                                       args.min_time, warmup=2)
        print(f"  {name:24s} " + "  ".join(f"{k} {v:9.0f} img/s" for (n, k), v in results.items() if n == name),
              flush=True)
    ref64 = results[("per-agent reference", "train 64")]
    for (name, kind), value in results.items():
        if name != "per-agent reference":
            print(f"  {name:24s} {kind:10s} ratio {value / results[('per-agent reference', kind)]:5.2f}")
    steps, block = 200, 25
    for label, compile_model, graph in (("eager", False, False), ("compiled", True, False), ("graphed", False, True),
                                        ("compiled + graphed", True, True)):
        if graph and not device.startswith("cuda"):
            continue
        losses = learning_curve(ours, compile_model, graph, device, steps)
        means = [sum(losses[i : i + block]) / block for i in range(0, steps, block)]
        print(f"learning curve, {label:18s} (mean loss per {block} steps): " + " ".join(f"{v:.3f}" for v in means))
    print(f"default path on this device: {default}")
    print(f"ratio={results[(default, 'train 64')] / ref64:.2f}")


if __name__ == "__main__":
    main()
