"""Separated digital image transmission: JPEG / HEVC-intra + 5G LDPC + QAM on CIFAR-10
(scenarios/image_digital_cifar10.yaml), the classical baseline every learned image JSCC paper plots.

What you get: PSNR / SSIM of what the receiver shows vs Es/N0 at bandwidth ratios 1/6 and 1/12, over
AWGN and Rayleigh block fading, for HEVC-intra (the codec inside BPG) and JPEG, each with the best of
8 MCS per point (the "BPG + LDPC" envelope of the DeepJSCC papers) and at AWGN capacity ("BPG +
capacity"). The script prints PSNR with its 95 % interval and the MCS chosen, what HEVC gains over JPEG
and both lose to capacity at each SNR, the Es/N0 each curve needs for 25 dB, and saves the AWGN PSNR figure.

    python examples/image_codec.py --data ~/cifar-10-python.tar.gz   # quick: 100 images, about 6 min
    python examples/image_codec.py --profile none --data ...         # as written, 10,000 images: hours, use a GPU
"""

from __future__ import annotations

from _examples_common import CIFAR10_COPY, headline, interval, parser, run, save, synthetic_cifar, table

SMOKE = [*synthetic_cifar(("image_digital",), images=20), "snr.values=[0, 10]", "stop.batch_size=20",
         "stop.max_samples=20", "schemes.hevc-r1_12.channels=[awgn]", "schemes.jpeg-r1_12.channels=[awgn]",
         *(f"schemes.{name}.channels=[]" for name in ("hevc-r1_6", "jpeg-r1_6", "hevc-capacity-r1_6",
                                                      "hevc-capacity-r1_12"))]


def main(argv: list[str] | None = None):
    args = parser(__doc__, data=CIFAR10_COPY).parse_args(argv)
    result = run("image_digital_cifar10", args, SMOKE if args.smoke else [], ("image_digital",))
    everything = result.results(timing=True)  # a row per point and one per MCS (config) beside it
    df = headline(everything)
    df["psnr_db [95 % CI]"] = interval(df, "psnr_db")
    table(df, ["scheme", "channel", "esno_db", "samples", "psnr_db [95 % CI]", "ssim", "best_mcs", "wall_s"])
    awgn = df[df["channel"] == "awgn"]
    psnr = awgn.pivot(index="esno_db", columns="scheme", values="psnr_db")
    capacity = headline(everything, "capacity").query("channel == 'awgn'").pivot(index="esno_db", columns="scheme",
                                                                                 values="psnr_db")
    for ratio in ("1_6", "1_12"):
        if {f"hevc-r{ratio}", f"jpeg-r{ratio}"} <= set(psnr) and f"jpeg-r{ratio}" in capacity:
            print(f"\nAWGN, rho {ratio.replace('_', '/')}: PSNR (dB) of HEVC-intra over JPEG, both + LDPC, best MCS; "
                  "and JPEG + LDPC below JPEG + capacity:")
            gain = (psnr[f"hevc-r{ratio}"] - psnr[f"jpeg-r{ratio}"]).rename("hevc_over_jpeg_db")
            loss = (capacity[f"jpeg-r{ratio}"] - psnr[f"jpeg-r{ratio}"]).rename("capacity_over_ldpc_db")
            print(gain.to_frame().join(loss).round(2).to_string())
    print("\nEs/N0 (dB) for 25 dB PSNR:")
    print(result.snr_at(25.0, metric="psnr_db", x="esno_db").round(2).to_string(index=False))
    figure = result.plot("psnr_db", x="esno_db", channels=["awgn"], style="paper",
                         title="CIFAR-10, AWGN: image codec + 5G LDPC, best MCS")
    save(figure, result, "image_codec_psnr_awgn")
    return result


if __name__ == "__main__":
    main()
