"""5G LDPC links: BER / BLER waterfalls and what fading costs (scenarios/ldpc_qam.yaml).

What you get: BER and BLER vs Eb/N0 of 5G LDPC (k = 512, n = 1024) with QPSK and 16-QAM and of uncoded
16-QAM, over AWGN, Rayleigh block fading and 3GPP TDL-A with perfect CSI and with LS + LMMSE; the exact
Gray-QAM BER of the uncoded link and the Shannon limits ride along as columns. The script prints
the BLER table with its 95 % intervals, the Eb/N0 each coded curve needs for BLER 1e-2 on every
channel (the textbook "fading costs x dB" comparison) and saves the AWGN BLER waterfalls.

    python examples/ldpc_qam.py                 # quick profile: about a minute on one CPU core
    python examples/ldpc_qam.py --profile none  # as written: 1 dB steps, up to 20,000 codewords per point
"""

from __future__ import annotations

from _examples_common import interval, parser, run, save, table

SCHEMES = ("ldpc-qpsk", "ldpc-16qam", "uncoded-16qam")
SMOKE = ["snr.start=1", "snr.stop=4", "snr.step=3", "stop.batch_size=100", "stop.max_samples=100",
         "schemes.uncoded-16qam.stop.max_samples=2000",  # per scheme: the figures name every channel
         *(f"schemes.{name}.channels=[awgn, rayleigh]" for name in SCHEMES)]


def main(argv: list[str] | None = None):
    args = parser(__doc__).parse_args(argv)
    result = run("ldpc_qam", args, SMOKE if args.smoke else [])
    df = result.results(timing=True)
    df["bler [95 % CI]"] = interval(df, "bler", 4)
    table(df, ["scheme", "channel", "ebno_db", "samples", "bler [95 % CI]", "ber", "stop_reason", "wall_s"])
    coded = df[df["scheme"] != "uncoded-16qam"]
    need = result.snr_at(1e-2, metric="bler", x="ebno_db").merge(coded[["scheme", "channel"]].drop_duplicates())
    print("\nEb/N0 (dB) for BLER 1e-2 (NaN: not reached inside the grid):")
    print(need.pivot(index="scheme", columns="channel", values="ebno_db_at_target").round(2).to_string())
    figure = result.plot("bler", x="ebno_db", channels=["awgn"], style="paper", title="5G LDPC (512, 1024), AWGN")
    save(figure, result, "ldpc_qam_bler_awgn")
    return result


if __name__ == "__main__":
    main()
