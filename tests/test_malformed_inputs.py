"""Table-driven: malformed scenario values, each refused before any work with one line that names the
file and the key (issue 11's list, and the values a demanding user tries)."""

from __future__ import annotations

import pytest
from conftest import SMALL_SCENARIO

from linksim.config import ConfigError, load_scenario

CASES: list[tuple[str, str]] = [
    # (override, the key the one-line error must name)
    ("seed=-1", "seed"), ("seed=abc", "seed"), ("seed=1.5", "seed"), ("seed=[1]", "seed"),
    ("device=tpu", "device"), ("device=3", "device"),
    ("name=''", "name"), ("name=[a]", "name"),
    ("snr.axis=db", "snr.axis"), ("snr.values=[]", "snr"), ("snr.values=[1, 1]", "snr"),
    ("snr.values=[.nan]", "snr"), ("snr.values=[.inf]", "snr"), ("snr.values=[-.inf]", "snr"),
    ("snr.values=[1e308]", "snr"), ("snr.values=[a]", "snr.values[0]"), ("snr.values=5", "snr"),
    ("snr={start: 0, stop: .inf, step: 1}", "snr"), ("snr={start: 0, stop: 1e12, step: 1}", "snr"),
    ("snr={start: 0, stop: 10, step: 0}", "snr"), ("snr={start: 0, stop: 10, step: -1}", "snr"),
    ("snr.reference_channel_uses=-3", "snr"),
    ("stop.batch_size=0", "stop.batch_size"), ("stop.batch_size=-5", "stop.batch_size"),
    ("stop.batch_size=1.5", "stop.batch_size"), ("stop.batch_size=ten", "stop.batch_size"),
    ("stop.target_errors=-1", "stop.target_errors"), ("stop.max_samples=0", "stop.max_samples"),
    ("stop.max_samples=.inf", "stop.max_samples"), ("stop.confidence=1.5", "stop.confidence"),
    ("stop.confidence=0", "stop.confidence"), ("stop.max_time_s=-1", "stop.max_time_s"),
    ("stop.stop_sweep_below=2", "stop.stop_sweep_below"), ("stop.bogus=1", "stop.bogus"),
    ("channels=[]", "channels"), ("channels=[nowhere]", "channels"), ("channels=[awgn, awgn]", "channels"),
    ("channels=[{name: x, type: warp}]", "channels[0].type"),
    ("channels=[{name: t, type: tdl, params: {model: Z}}]", "channels[0].params.model"),
    ("channels=[{name: t, type: tdl, params: {min_speed: 10, max_speed: 1}}]", "channels[0].params"),
    ("channels=[{name: r, type: rayleigh, params: {coherence_symbols: 0}}]", "channels[0].params.coherence_symbols"),
    ("schemes=[]", "schemes"), ("schemes.ldpc.type=nothing", "schemes[0].type"),
    ("schemes.ldpc.params.k=0", "schemes[0].params.k"), ("schemes.ldpc.params.k=-64", "schemes[0].params.k"),
    ("schemes.ldpc.params.k=64.5", "schemes[0].params.k"), ("schemes.ldpc.params.n=10", "schemes[0].params"),
    ("schemes.ldpc.params.n=100000", "schemes[0].params"),
    ("schemes.ldpc.params.bits_per_symbol=40", "schemes[0].params.bits_per_symbol"),
    ("schemes.ldpc.params.bits_per_symbol=3", "schemes[0].params"),
    ("schemes.ldpc.params.modulation=psk", "schemes[0].params.modulation"),
    ("schemes.ldpc.params.decoder.num_iter=0", "schemes[0].params.decoder.num_iter"),
    ("schemes.ldpc.params.decoder.num_iter=1000000000", "schemes[0].params.decoder.num_iter"),
    ("schemes.ldpc.params.decoder.cn_update=magic", "schemes[0].params.decoder.cn_update"),
    ("schemes.ldpc.params.crc=CRC99", "schemes[0].params.crc"), ("schemes.ldpc.params.colour=1", "schemes[0].params.colour"),
    ("schemes.ldpc.channels=[nowhere]", "schemes[0].channels"), ("schemes.ldpc.name=unc", "schemes"),
    ("schemes.ldpc.stop.batch_size=0", "schemes[0].stop.batch_size"),
    ("outputs.formats=[gif]", "outputs.formats"), ("outputs.plots=[{metric: ber, x: time}]", "outputs.plots[0].x"),
    ("outputs.plots=[{metric: ber, schemes: [nobody]}]", "outputs.plots[0].schemes"),
    ("outputs.root=[a]", "outputs.root"), ("nonsense=1", "nonsense"),
    ("stop.batch_size=true", "stop.batch_size"),
    ("channels=[{name: t, type: tdl, params: {delay_spread: .inf}}]", "channels[0].params.delay_spread"),
    ("channels=[{name: t, type: tdl, params: {delay_spread: 1e9}}]", "channels[0].params.delay_spread"),
    ("schemes.ldpc.params={k: 4000, n: 16000, bits_per_symbol: 2}", "schemes[0].params"),
]


def test_the_table_is_the_size_the_issue_asks_for():
    assert len(CASES) >= 60 and len({c for c, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("override, key", CASES)
def test_malformed_value_is_one_line_naming_file_and_key(write_scenario, override, key):
    path = write_scenario(SMALL_SCENARIO)
    with pytest.raises(ConfigError) as info:
        load_scenario(path, overrides=[override])
    lines = info.value.lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ") and key in lines[0], lines[0]
    assert "Traceback" not in lines[0] and len(lines[0]) < 600
