"""DeepJSCC (Bourtsoulatze, Kurka, Gunduz, IEEE TCCN 2019) on CIFAR-10 against HEVC-intra + 5G LDPC
(scenarios/deepjscc_cifar10.yaml).

What you get: PSNR / SSIM vs test SNR of DeepJSCC models trained at one SNR each (the paper's
mismatch curves: rho 1/12 and 1/6, AWGN and slow Rayleigh fading without CSI), against
HEVC-intra (the codec inside BPG) + 5G LDPC with the best MCS per point and HEVC-intra at capacity, on
the same test images and channel uses. The script prints PSNR with its 95 % interval, the Es/N0 each
curve needs for 25 dB PSNR, how many dB of PSNR DeepJSCC (trained at 7 dB) is ahead of HEVC + LDPC at
each SNR (graceful degradation against the digital cliff effect), and saves the AWGN rho 1/12
figure in the paper's layout.

    python examples/deepjscc.py --data ~/cifar-10-python.tar.gz   # quick: 4 two-epoch models, about 3 min
    python examples/deepjscc.py --profile cpu --data ...          # about 2 h of 2 CPU cores
"""

from __future__ import annotations

from _examples_common import CIFAR10_COPY, headline, interval, parser, run, save, synthetic_cifar, table

KINDS = ("deepjscc", "image_digital")
SMOKE = [*synthetic_cifar(KINDS, images=20),
         "scheme_defaults.deepjscc.train={epochs: 1, subset: 200, validation: 40, batch_size: 32}",
         "snr.values=[1, 13]", "stop.batch_size=20", "stop.max_samples=20",
         *(f"schemes.{name}.channels=[]" for name in ("djscc-r1_12-awgn1", "djscc-r1_12-awgn13", "djscc-r1_12-ray7",
                                                      "hevc-capacity-r1_12"))]
FIGURE = ["djscc-r1_12-awgn1", "djscc-r1_12-awgn4", "djscc-r1_12-awgn7", "djscc-r1_12-awgn13", "djscc-r1_12-awgn19",
          "hevc-ldpc-r1_12", "hevc-capacity-r1_12"]


def main(argv: list[str] | None = None):
    args = parser(__doc__, data=CIFAR10_COPY).parse_args(argv)
    result = run("deepjscc_cifar10", args, list(SMOKE) if args.smoke else [], KINDS)
    df = headline(result.results(timing=True))
    df["psnr_db [95 % CI]"] = interval(df, "psnr_db")
    table(df, ["scheme", "channel", "esno_db", "samples", "psnr_db [95 % CI]", "ssim", "wall_s"])
    print("\nEs/N0 (dB) for 25 dB PSNR:")
    print(result.snr_at(25.0, metric="psnr_db", x="esno_db").round(2).to_string(index=False))
    awgn = df[df["channel"] == "awgn"].pivot(index="esno_db", columns="scheme", values="psnr_db")
    print("\nAWGN, rho 1/12: PSNR (dB) of DeepJSCC trained at 7 dB minus HEVC-intra + 5G LDPC, best MCS:")
    print((awgn["djscc-r1_12-awgn7"] - awgn["hevc-ldpc-r1_12"]).round(2).rename("djscc_over_hevc_ldpc_db").to_string())
    figure = result.plot("psnr_db", x="esno_db", channels=["awgn"], schemes=FIGURE, style="paper",
                         title="CIFAR-10, AWGN, rho 1/12")
    save(figure, result, "deepjscc_psnr_awgn_r1_12")
    return result


if __name__ == "__main__":
    main()
