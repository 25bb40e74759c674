"""Optional compilation: the switch, and the eager fallback when compiling fails."""

import warnings

import pytest
import torch

from linksim.accel import compiled, resolve_compile


def test_auto_compiles_on_gpus_only():
    assert resolve_compile("auto", "cuda:0") and not resolve_compile("auto", "cpu")
    assert resolve_compile("on", "cpu") and not resolve_compile("off", "cuda:0")


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
