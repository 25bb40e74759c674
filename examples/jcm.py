"""JCM (Bo, Duan, Shao, Tao, "Joint coding-modulation for digital semantic communications via
variational autoencoder", IEEE TCOM 2024) on CIFAR-10 (scenarios/jcm_cifar10.yaml).

What you get: PSNR (the paper's per-channel convention and the 8-bit one) and classification accuracy
vs SNR of JCM (a VAE that picks QAM points) against its Analog upper bound and the Uniform and NN
(separate quantisation + Gray QAM) baselines on the same encoder and decoders (Figs. 2, 4, 5), the
entropy of the points sent (Figs. 6-7), HEVC-intra + 5G LDPC at the same 128 channel uses, and the
AWGN-trained models over Rayleigh and TDL-A. The script prints PSNR with its interval, accuracy and
entropy, how far each digital method stays below the Analog bound at each SNR and how far JCM is
ahead of Uniform and NN (the paper's Fig. 2 comparison), and saves the Fig. 2 16-QAM figure.

    python examples/jcm.py --data ~/cifar-10-python.tar.gz   # quick: width 1/8, 1,000 images, about 10 min
    python examples/jcm.py --profile cpu --data ...          # width 1/4, 10,000 images: 3-4 h of 2 CPU cores
"""

from __future__ import annotations

from _examples_common import CIFAR10_COPY, headline, interval, parser, run, save, synthetic_cifar, table

KINDS = ("jcm", "image_digital")
SMOKE = [*synthetic_cifar(KINDS, images=16),
         "scheme_defaults.jcm.width=0.0625", "scheme_defaults.jcm.snr_db=[0, 12]",
         "scheme_defaults.jcm.train={epochs: 1, batch_size: 16, subset: 64}",
         "scheme_defaults.jcm.quantizer={images: 32, steps: 20}", "schemes.analog-2d-n128.params.train.epochs=1",
         "snr.values=[0, 12]", "stop.batch_size=16", "stop.max_samples=16",
         *(f"schemes.{name}.channels=[awgn]" for name in ("analog-2d-n128", "jcm-qam16-n128", "uniform-qam16-n128",
                                                            "hevc-ldpc-r1_24")),
         "schemes.nn-qam16-n128.channels=[]"]
FIGURE = ["analog-2d-n128", "jcm-qam16-n128", "nn-qam16-n128", "uniform-qam16-n128"]


def main(argv: list[str] | None = None):
    args = parser(__doc__, data=CIFAR10_COPY).parse_args(argv)
    result = run("jcm_cifar10", args, list(SMOKE) if args.smoke else [], KINDS)
    df = headline(result.results(timing=True))
    df["psnr_db [95 % CI]"] = interval(df, "psnr_db")
    table(df, ["scheme", "channel", "esno_db", "samples", "psnr_paper_db", "psnr_db [95 % CI]", "accuracy",
               "occupancy_entropy_bits", "wall_s"])
    awgn = df[(df["channel"] == "awgn") & df["scheme"].isin(FIGURE)]
    for metric in ("psnr_paper_db", "accuracy"):
        curves = awgn.pivot(index="esno_db", columns="scheme", values=metric)
        print(f"\nAWGN, 16-QAM, n = 128: {metric} of each method minus the Analog 2D bound (JCM minus the others):")
        gaps = curves.drop(columns="analog-2d-n128").sub(curves["analog-2d-n128"], axis=0).add_suffix(" - analog")
        for other in ("uniform-qam16-n128", "nn-qam16-n128"):
            if other in curves:
                gaps[f"jcm - {other}"] = curves["jcm-qam16-n128"] - curves[other]
        print(gaps.round(3).to_string())
    figure = result.plot("psnr_paper_db", x="esno_db", channels=["awgn"], schemes=FIGURE, style="paper",
                         title="Fig. 2: CIFAR-10, AWGN, 16-QAM, n = 128")
    save(figure, result, "jcm_fig2_qam16_psnr")
    return result


if __name__ == "__main__":
    main()
