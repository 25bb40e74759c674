"""Scenario files: validation errors name the file and key, profiles and --set overrides apply."""

from pathlib import Path

import pytest

from linksim.cli import main
from linksim.config import ConfigError, apply_override, load_scenario

BASE = """\
name: t
snr: {axis: ebno, values: [0, 1]}
schemes:
  - {name: a, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}
channels: [awgn]
"""

MALFORMED = [
    # (what is wrong, replacement text, the key path that must be named, a word of the message)
    ("unknown top-level key", BASE + "colour: red\n", "colour", "Extra inputs"),
    ("unknown scheme type", BASE.replace("digital_link", "digtal_link"), "schemes[0].type", "digital_link"),
    ("bad scheme param", BASE.replace("bits_per_symbol: 2", "bits_per_symbol: 3"), "schemes[0].params", "even"),
    ("unknown scheme param", BASE.replace("k: 64,", "k: 64, kk: 1,"), "schemes[0].params.kk", "Extra inputs"),
    ("negative batch", BASE + "stop: {batch_size: -5}\n", "stop.batch_size", "greater than 0"),
    ("bad axis", BASE.replace("axis: ebno", "axis: ebn0"), "snr.axis", "'esno', 'ebno' or 'snr_norm'"),
    ("snr range upside down", BASE.replace("values: [0, 1]", "start: 5, stop: 0, step: 1"), "snr", "below start"),
    ("unknown channel preset", BASE.replace("[awgn]", "[awgm]"), "channels[0]", "valid dictionary"),
    ("bad channel param", BASE.replace("[awgn]", "[{name: t, type: tdl, params: {model: Z}}]"),
     "channels[0].params.model", "'A', 'B'"),
    ("duplicate scheme names", BASE.replace("channels:", "  - {name: a, type: digital_link, params: {k: 64}}\nchannels:"),
     "(top level)", "unique"),
    ("missing schemes", "name: t\nsnr: {values: [0]}\nchannels: [awgn]\n", "schemes", "Field required"),
    ("norm axis without reference", BASE.replace("axis: ebno", "axis: snr_norm"), "snr", "reference_channel_uses"),
    ("LDPC k too large", BASE.replace("k: 64, n: 128", "k: 9000, n: 18000"), "schemes[0].params", "k <= 8448"),
    ("zero half-width target", BASE + "stop: {target_half_width: 0}\n", "stop.target_half_width", "greater than 0"),
    ("infinite half-width target", BASE + "stop: {target_half_width: .inf}\n", "stop.target_half_width",
     "finite number"),
    ("negative half-width target of a scheme", BASE.replace("bits_per_symbol: 2}", "bits_per_symbol: 2}, stop: "
     "{target_half_width: -0.05}"), "schemes[0].stop.target_half_width", "greater than 0"),
    ("zero min_samples", BASE + "stop: {min_samples: 0}\n", "stop.min_samples", "greater than 0"),
]


@pytest.mark.parametrize(("what", "text", "key", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_scenario_is_refused_naming_file_and_key(write_scenario, capsys, what, text, key, message):
    path = write_scenario(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{path}: {key}:")]
    assert lines, err
    assert any(message in line for line in lines), err


def test_yaml_syntax_error_names_the_line(write_scenario, capsys):
    path = write_scenario("name: t\nsnr: {axis: ebno\n")
    assert main(["validate", str(path)]) == 2
    assert f"{path}: line" in capsys.readouterr().err


def test_every_problem_is_reported_at_once(write_scenario):
    path = write_scenario(BASE.replace("bits_per_symbol: 2", "bits_per_symbol: 3") + "colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert len(err.value.lines) == 2


def test_profile_and_set_overrides(write_scenario):
    path = write_scenario()
    sc = load_scenario(path, profile="quick", overrides=["schemes.ldpc.params.k=32", "snr.values=[5]", "channel=tdl-a-ls"])
    assert sc.stop.max_samples == 100 and sc.stop.batch_size == 100
    assert sc.schemes[0].params["k"] == 32
    assert sc.snr.points() == [5.0]
    assert [(c.name, c.type, c.params) for c in sc.channels] == [("tdl-a-ls", "tdl", {"model": "A", "csi": "ls"})]


def test_unknown_profile_and_bad_set_are_user_errors(write_scenario):
    path = write_scenario()
    with pytest.raises(ConfigError, match=r"profiles.slow: no such profile \(expected one of: quick\)"):
        load_scenario(path, profile="slow")
    with pytest.raises(ConfigError, match="no item named 'nope'"):
        load_scenario(path, overrides=["schemes.nope.params.k=1"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_scenario(path, overrides=["seed"])


def test_apply_override_parses_yaml_values_and_does_not_mutate():
    data = {"schemes": [{"name": "a", "params": {"k": 1}}], "stop": {}}
    out = apply_override(data, "schemes.0.params.k=2")
    out = apply_override(out, "stop.max_time_s=1.5")
    assert out["schemes"][0]["params"]["k"] == 2 and out["stop"]["max_time_s"] == 1.5
    assert data["schemes"][0]["params"]["k"] == 1


def test_snr_range_and_per_scheme_overrides(write_scenario):
    sc = load_scenario(write_scenario(BASE.replace("values: [0, 1]", "start: -1, stop: 1, step: 0.5").replace(
        "bits_per_symbol: 2}", "bits_per_symbol: 2}, stop: {max_samples: 7}, snr: {values: [9]}")))
    assert sc.snr.points() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert sc.snr_points(sc.schemes[0]) == [9.0]
    assert sc.stop_for(sc.schemes[0]).max_samples == 7 and sc.stop.max_samples == 100_000


def test_digest_ignores_outputs_but_not_physics(write_scenario):
    path = write_scenario()
    a = load_scenario(path)
    assert a.digest() == load_scenario(path, overrides=["outputs.root=elsewhere"]).digest()
    assert a.digest() == load_scenario(path, overrides=["schemes.ldpc.label=LDPC 1/2"]).digest()
    assert a.digest() != load_scenario(path, overrides=["seed=12"]).digest()


def test_digest_of_committed_results_is_unchanged_by_newer_unset_stop_keys(write_scenario):
    """target_half_width and min_samples came after these runs: while unset they stay out of the digest,
    so ``--resume`` still finds the committed runs; set, they change it."""
    import json

    root = Path(__file__).resolve().parent.parent
    manifest = json.loads((root / "results/ldpc_qam/quick/manifest.json").read_text())
    assert load_scenario(root / "scenarios/ldpc_qam.yaml", "quick").digest() == manifest["scenario_digest"]
    path = write_scenario(BASE)
    plain = load_scenario(path).digest()
    assert load_scenario(path, overrides=["stop.target_half_width=0.05"]).digest() != plain
    assert load_scenario(path, overrides=["schemes.a.stop.min_samples=500"]).digest() != plain
    assert load_scenario(path, overrides=["train_precision=bfloat16"]).digest() != plain


def test_scheme_defaults_apply_under_each_schemes_params(write_scenario):
    text = BASE.replace("params: {k: 64, n: 128, bits_per_symbol: 2}}", "params: {n: 128}}\n  - {name: b, type: digital_link}")
    text += "scheme_defaults:\n  digital_link: {k: 64, bits_per_symbol: 2}\n"
    sc = load_scenario(write_scenario(text), overrides=["scheme_defaults.digital_link.k=32"])
    assert sc.schemes[0].params == {"k": 32, "bits_per_symbol": 2, "n": 128}
    assert sc.schemes[1].params == {"k": 32, "bits_per_symbol": 2}


def test_baseline_presets_are_referenced_by_name(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "baselines" / "ldpc-qpsk-half.yaml").write_text(
        "type: digital_link\nlabel: LDPC 1/2 QPSK\nparams: {k: 64, n: 128, bits_per_symbol: 2}\n")
    text = BASE.replace("{name: a, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}",
                        "{name: a, baseline: ldpc-qpsk-half, params: {k: 32}}")
    path = tmp_path / "scenarios" / "s.yaml"
    path.write_text(text)
    sc = load_scenario(path)
    spec = sc.schemes[0]
    assert (spec.type, spec.label, spec.baseline) == ("digital_link", "LDPC 1/2 QPSK", "ldpc-qpsk-half")
    assert spec.params == {"k": 32, "n": 128, "bits_per_symbol": 2}
    path.write_text(text.replace("ldpc-qpsk-half", "ldpc-qpsk-halve"))
    with pytest.raises(ConfigError, match=r"schemes\[0\].baseline: expected one of ldpc-qpsk-half .*'ldpc-qpsk-halve'"):
        load_scenario(path)


def test_profiles_patch_named_list_items(write_scenario):
    text = BASE + "profiles:\n  quick:\n    schemes: [{name: a, params: {k: 32}}, {name: z, type: digital_link, params: {k: 8}}]\n"
    sc = load_scenario(write_scenario(text), profile="quick")
    assert [s.name for s in sc.schemes] == ["a", "z"]
    assert sc.schemes[0].params == {"k": 32, "n": 128, "bits_per_symbol": 2} and sc.schemes[0].type == "digital_link"


def test_a_profile_may_switch_an_snr_grid_between_its_forms(write_scenario):
    text = BASE.replace("values: [0, 1]", "start: 0, stop: 10, step: 1")
    text += "profiles:\n  quick:\n    snr: {values: [3, 7]}\n    schemes: [{name: a, snr: {start: 1, stop: 2, step: 1}}]\n"
    text = text.replace("bits_per_symbol: 2}}", "bits_per_symbol: 2}, snr: {values: [5]}}")
    sc = load_scenario(write_scenario(text), profile="quick")
    assert sc.snr.points() == [3.0, 7.0] and sc.snr.axis == "ebno"
    assert sc.snr_points(sc.schemes[0]) == [1.0, 2.0]


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_shipped_scenario_and_profile_loads(path):
    """The committed scenario files (and each of their profiles) stay valid as the code moves on."""
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    for profile in scenario.profiles:
        assert load_scenario(path, profile=profile).name == path.stem


def test_values_that_used_to_pass_or_crash_later_are_refused_up_front(write_scenario):
    from conftest import SMALL_SCENARIO

    cases = {
        "stop: {batch_size: 100,": ("stop: {batch_size: true,", "batch_size"),
        "max_samples: 300}": ("max_samples: 1.5}", "max_samples"),
        "channels: [awgn, rayleigh]": ("channels: [{name: t, type: tdl, params: {min_speed: 5, max_speed: 1}}]",
                                       "max_speed must be at least min_speed"),
    }
    for old, (new, words) in cases.items():
        with pytest.raises(ConfigError) as err:
            load_scenario(write_scenario(SMALL_SCENARIO.replace(old, new)))
        assert len(err.value.lines) == 1 and words in err.value.lines[0], err.value.lines
    tdl_inf = SMALL_SCENARIO.replace("channels: [awgn, rayleigh]",
                                     "channels: [{name: t, type: tdl, params: {delay_spread: .inf}}]")
    with pytest.raises(ConfigError, match="delay_spread"):
        load_scenario(write_scenario(tdl_inf))


def test_an_alias_bomb_gives_short_error_lines(write_scenario):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
               for i in range(1, 9)]  # 9^9 leaves once expanded
    text = "\n".join(levels) + "\nname: bomb\nsnr: {values: *a8}\nschemes: []\nchannels: [awgn]\n"
    with pytest.raises(ConfigError) as err:
        load_scenario(write_scenario(text))
    assert all(len(line) < 600 for line in err.value.lines) and len(err.value.lines) < 40  # not 9^9 leaves


def test_max_units_must_be_positive(capsys):
    from linksim.cli import main

    with pytest.raises(SystemExit) as code:
        main(["run", "scenarios/ldpc_qam.yaml", "--max-units", "-1"])
    assert code.value.code == 2 and "expected at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("content, expected", [
    (b"\x00\xff\xfe binary", "byte 1: expected a UTF-8 text (YAML) file, found byte 0xff"),
    ("name: x\nseed: 1\n".encode("utf-16"), "expected a UTF-8 text (YAML) file"),
    (b"name: x\n\x00", "byte 8: expected a YAML text file, found a NUL byte"),
])
def test_binary_or_non_utf8_scenario_files_are_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert len(info.value.lines) == 1 and info.value.lines[0].startswith(f"{path}: ")
    assert expected in info.value.lines[0]


@pytest.mark.parametrize("assignment", ["snr.values=[1, 2", "seed={a: 1", "stop.max_samples=: :"])
def test_malformed_set_yaml_is_a_one_line_error_naming_the_override(write_scenario, assignment):
    path = write_scenario()
    with pytest.raises(ConfigError) as info:
        load_scenario(path, overrides=[assignment])
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(f"{path}: --set {assignment!r}: the value is not valid YAML")


def test_swapping_the_channel_keeps_the_schemes_and_figures_that_named_the_old_one(write_scenario):
    """The what-if of the brief, --set channel=tdl-a, on a file whose schemes and figures name its
    channels: restricted schemes run on the new channel, figures lose the names, left-out schemes stay out."""
    from conftest import SMALL_SCENARIO

    text = SMALL_SCENARIO.replace(
        "  - {name: unc, type: digital_link, params: {k: 128, bits_per_symbol: 4}}\n",
        "  - {name: unc, type: digital_link, params: {k: 128, bits_per_symbol: 4}, channels: [awgn]}\n"
        "  - {name: spare, type: digital_link, params: {k: 128, bits_per_symbol: 2}, channels: []}\n"
    ) + """\
outputs:
  plots:
    - {metric: ber, channels: [awgn, rayleigh], schemes: [ldpc, unc]}
    - {metric: bler, channels: [rayleigh]}
  examples: []
"""
    path = write_scenario(text)
    swapped = load_scenario(path, overrides=["channel=tdl-a"])
    assert [c.name for c in swapped.channels] == ["tdl-a"]
    assert {s.name: s.channels for s in swapped.schemes} == {"ldpc": None, "unc": None, "spare": []}
    assert swapped.outputs.plots == []  # figures left without any of their channels are not drawn
    kept = load_scenario(path, overrides=["channels=[awgn]"])
    assert [(p.metric, p.channels) for p in kept.outputs.plots] == [("ber", ["awgn"])]
    # a name that is in neither the file nor the overrides is still an error, in the file or in an override
    with pytest.raises(ConfigError, match=r"schemes\[0\].channels names no channel of this scenario: nowhere"):
        load_scenario(path, overrides=["schemes.ldpc.channels=[nowhere]"])
    with pytest.raises(ConfigError, match=r"outputs.plots\[1\].channels names no channel of this scenario: rayleih"):
        load_scenario(write_scenario(text.replace("channels: [rayleigh]}", "channels: [rayleih]}"), name="typo"),
                      overrides=["channel=tdl-a"])


def test_an_override_changes_one_place_even_where_the_file_shares_an_anchor(write_scenario):
    from conftest import SMALL_SCENARIO

    text = SMALL_SCENARIO.replace(
        "  - {name: ldpc, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}\n"
        "  - {name: unc, type: digital_link, params: {k: 128, bits_per_symbol: 4}}\n",
        "  - {name: ldpc, type: digital_link, params: &p {k: 64, n: 128, bits_per_symbol: 2}}\n"
        "  - {name: ldpc2, type: digital_link, params: *p}\n")
    s = load_scenario(write_scenario(text), overrides=["schemes.ldpc2.params.k=32"])
    assert [x.params["k"] for x in s.schemes] == [64, 32]
