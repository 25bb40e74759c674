"""AESC-I (Dong et al., "Innovative semantic communication system"): a learned image codec that sends
its own decoder with its codes over 5G LDPC (scenarios/aesci_mnist.yaml, aesci_cifar10.yaml).

What you get: PSNR, SSIM, classifier accuracy and the recognition-rate ratio RR (accuracy on the shown
images over accuracy on the originals, with the SINFONY central classifier) vs Es/N0 of AESC-I at
several compression ratios against JPEG (payload over the link) and direct 8-bit pixels over the
same 5G LDPC + QPSK link, over AWGN and slow Rayleigh fading (MNIST Figs. 4-6, CIFAR-10 Figs. 10-12),
plus the decoder's own channel uses charged per session of N images. The script prints PSNR with its
interval, RR, BLER and the share of sessions whose decoder arrived damaged, the Es/N0 each curve
needs for RR 0.9 with its shift against JPEG at the same Cr (Figs. 5-6: where AESC-I stands against
JPEG at one compression ratio), and saves the RR figure at the highest compression ratio (Fig. 5b; CIFAR-10: Fig. 11a).

    python examples/aesci.py                    # MNIST, quick profile: about 40 min on a busy CPU
    python examples/aesci.py --dataset cifar10 --data ~/cifar-10-python.tar.gz
"""

from __future__ import annotations

from _examples_common import CIFAR10_COPY, MNIST_COPY, headline, interval, parser, run, save, synthetic_mnist, table

KINDS = ("aesci", "aesci_jpeg", "aesci_direct")
CR = {"mnist": "cr20", "cifar10": "cr12"}  # the highest compression ratio of each scenario
LEFT_OUT = ["aesci-cr4", "aesci-cr8", "jpeg-cr4", "jpeg-cr8", "aesci-cr20-n1", "aesci-cr20-n100", "aesci-cr20-n10000",
            "aesci-cr20-genie"]


def smoke(out: str) -> list[str]:
    """Synthetic 28 x 28 images, Cr 20 only, AWGN only, one epoch of classifier and codec on 300 images."""
    data = synthetic_mnist(out)
    tiny = (f"data.path={data}", "data.eval_subset=50", "classifier_train.subset=300", "classifier_train.epochs=1")
    return [*(f"scheme_defaults.{kind}.{key}" for kind in KINDS for key in tiny),
            "scheme_defaults.aesci.train.subset=300", "scheme_defaults.aesci.session_images=50",
            "snr.values=[2, 8]", "stop.batch_size=50", "stop.max_samples=50",
            *(f"schemes.{name}.channels=[awgn]" for name in ("aesci-cr20", "jpeg-cr20", "direct")),
            *(f"schemes.{name}.channels=[]" for name in LEFT_OUT)]


def main(argv: list[str] | None = None):
    cli = parser(__doc__, data=f"{CIFAR10_COPY}; {MNIST_COPY}")
    cli.add_argument("--dataset", choices=list(CR), default="mnist", help="MNIST (Figs. 4-8) or CIFAR-10 (Figs. 10-14)")
    args = cli.parse_args(argv)
    if args.smoke and args.dataset != "mnist":
        cli.error("--smoke runs the MNIST scenario on synthetic images")
    result = run(f"aesci_{args.dataset}", args, smoke(args.out) if args.smoke else [], KINDS)
    df = headline(result.results(timing=True))
    df["psnr_db [95 % CI]"] = interval(df, "psnr_db")
    table(df, ["scheme", "channel", "esno_db", "samples", "psnr_db [95 % CI]", "ssim", "rr", "bler",
               "session_failure_rate", "wall_s"])
    cr = CR[args.dataset]
    print(f"\nEs/N0 (dB) for RR 0.9, shift against JPEG at {cr} (positive: needs more SNR than JPEG):")
    print(result.snr_at(0.9, metric="rr", x="esno_db", reference=f"jpeg-{cr}").round(2).to_string(index=False))
    figure = result.plot("rr", x="esno_db", channels=["awgn"], schemes=[f"aesci-{cr}", f"jpeg-{cr}", "direct"],
                         style="paper", title=f"{args.dataset.upper()}, AWGN, {cr.replace('cr', 'Cr ')}")
    save(figure, result, f"aesci_{args.dataset}_rr_awgn")
    return result


if __name__ == "__main__":
    main()
