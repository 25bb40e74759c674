"""VSCC (Feng, Xu, Hu, Yu, Duan, "Variational source-channel coding for semantic communication"):
the channel-matched VAE against the plain VAE and the AE (scenarios/vscc.yaml).

What you get: PSNR / SSIM vs test SNR of VSCC (channel-matched KL with constant d), the VAE and the AE
on one ResNet + attention autoencoder sending analog reals, with resampled latents and Algorithm 2's
min / max band over draws (Figs. 7-9: TV vs FV, the d sweep, VSCC vs VAE vs AE), over AWGN and
Rayleigh, beside HEVC-intra + 5G LDPC and + capacity at the same channel uses. The script prints PSNR
with its interval and band and SSIM, VSCC's lead over the VAE and the AE at each test SNR (Fig. 9's
comparison), and saves the Fig. 9 (b) figure with its band. The quick and cpu profiles run on CIFAR-10
at 32 x 32 with the paper's k/n; the full profile needs a local Mini-ImageNet copy (--data).

    python examples/vscc.py --data ~/cifar-10-python.tar.gz   # quick: five 2-epoch models, 15 min
    python examples/vscc.py --profile full --data ~/mini-imagenet   # the paper's recipe: for a GPU
"""

from __future__ import annotations

import pandas as pd
from _examples_common import CIFAR10_COPY, headline, interval, parser, run, save, synthetic_cifar, table

KINDS = ("vscc", "image_digital")
SMOKE = [*synthetic_cifar(KINDS, images=20),
         "scheme_defaults.vscc.draws=2", "scheme_defaults.vscc.train.epochs=1", "scheme_defaults.vscc.train.subset=200",
         "scheme_defaults.vscc.train.validation=40", "scheme_defaults.vscc.train.batch_size=32",
         "snr.values=[5, 15]", "stop.batch_size=20", "stop.max_samples=20",
         *(f"schemes.{name}.channels=[awgn]" for name in ("hevc-ldpc", "vscc-s5-d5", "ae-s5")),
         *(f"schemes.{name}.channels=[]" for name in ("hevc-capacity", "vscc-s5-d5-tv", "vae-s5", "vscc-s5-d2",
                                                      "vscc-s5-d10"))]
FIGURE = ["vscc-s5-d5", "vae-s5", "ae-s5", "hevc-ldpc", "hevc-capacity"]


def main(argv: list[str] | None = None):
    args = parser(__doc__, data=f"quick, cpu: {CIFAR10_COPY}; full: the Mini-ImageNet folder "
                                           "(linksim.data.load_mini_imagenet says how to lay it out)").parse_args(argv)
    result = run("vscc", args, list(SMOKE) if args.smoke else [], KINDS)
    df = headline(result.results(timing=True))
    df["psnr_db [95 % CI]"] = interval(df, "psnr_db")
    table(df, ["scheme", "channel", "esno_db", "samples", "psnr_db [95 % CI]", "psnr_db_lo", "psnr_db_hi", "ssim",
               "wall_s"])
    awgn = df[df["channel"] == "awgn"]
    lead = {}
    for metric in ("psnr_db", "ssim"):
        curves = awgn.pivot(index="esno_db", columns="scheme", values=metric)
        for other in ("vae-s5", "ae-s5"):
            if {"vscc-s5-d5", other} <= set(curves):
                lead[f"{metric}: vscc-d5 - {other}"] = curves["vscc-s5-d5"] - curves[other]
    print("\nAWGN, models trained at 5 dB (FV): VSCC d = 5 ahead of the VAE and the AE by")
    print(pd.DataFrame(lead).round(3).to_string())
    figure = result.plot("psnr_db", x="esno_db", channels=["awgn"], schemes=FIGURE, band=("psnr_db_lo", "psnr_db_hi"),
                         style="paper", title="Fig. 9 (b): trained at 5 dB, VSCC d=5 vs VAE vs AE (FV)")
    save(figure, result, "vscc_fig9_psnr")
    return result


if __name__ == "__main__":
    main()
