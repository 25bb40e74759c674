"""SINFONY (Beck et al., "Semantic Information Recovery in Wireless Networks"): task-oriented feature
transmission against classic digital communication (scenarios/sinfony_mnist.yaml, sinfony_cifar10.yaml).

What you get: classification error rate vs rate-normalised SNR of the four-agent SINFONY designs
(central, perfect comm., AWGN, AWGN + training, Tx/Rx with N_Tx channel uses; MNIST Figs. 4 and 6,
CIFAR-10 Fig. 5) and, on MNIST, the Fig. 7 baselines: float16 features + Huffman + 5G LDPC + BPSK or
16-QAM, Huffman-coded pixels, and the analog "semantic" AE. The script prints the error rates with
their 95 % intervals, the rate-normalised SNR at which each curve comes within one point of the
perfect-communication error rate, with its shift against the digital BPSK R 1/4 baseline (Fig. 7:
how much SNR SINFONY saves against classic digital communication), and saves the Fig. 7 (CIFAR-10:
Fig. 5) figure.

    python examples/sinfony.py                            # MNIST, quick profile: about 6 min on a CPU core
    python examples/sinfony.py --dataset cifar10 --data ~/cifar-10-python.tar.gz
"""

from __future__ import annotations

from _examples_common import CIFAR10_COPY, MNIST_COPY, interval, parser, run, save, synthetic_mnist, table

FIGURE = {"mnist": ["perfect", "central", "txrx14", "txrx56", "digital-bpsk-r14", "digital-16qam-r14",
                    "pixels-bpsk-r14", "analog-ae"],
          "cifar10": ["central", "perfect", "awgn", "awgn-trained", "txrx64", "txrx16"]}
LEFT_OUT = ["central", "awgn", "awgn-trained", "txrx56", "txrx7", "txrx4", "txrx2", "digital-bpsk-r12",
            "digital-16qam-r14", "pixels-bpsk-r14", "analog-ae"]


def smoke(out: str) -> list[str]:
    """Synthetic 28 x 28 images; perfect comm., Tx/Rx N_Tx = 14 and the digital BPSK baseline; one epoch."""
    data = synthetic_mnist(out)
    return [f"scheme_defaults.{kind}.{key}" for kind in ("sinfony", "sinfony_digital")  # the same cached model
            for key in (f"data.path={data}", "data.eval_subset=100", "train.subset=300", "train.epochs=1",
                        "train.batch_size=32")] + [
        "snr.start=0", "snr.stop=8", "snr.step=8", "stop.batch_size=100", "stop.max_samples=100",
        "schemes.digital-bpsk-r14.snr={start: 14, stop: 16, step: 2}", "schemes.digital-bpsk-r14.stop.max_samples=100",
        *(f"schemes.{name}.channels=[]" for name in LEFT_OUT)]


def main(argv: list[str] | None = None):
    cli = parser(__doc__, data=f"{CIFAR10_COPY}; {MNIST_COPY}")
    cli.add_argument("--dataset", choices=["mnist", "cifar10"], default="mnist",
                     help="MNIST (Figs. 4, 6, 7) or CIFAR-10 (Fig. 5)")
    args = cli.parse_args(argv)
    if args.smoke and args.dataset != "mnist":
        cli.error("--smoke runs the MNIST scenario on synthetic images")
    kinds = ("sinfony", "sinfony_digital", "sinfony_analog_ae") if args.dataset == "mnist" else ("sinfony",)
    result = run(f"sinfony_{args.dataset}", args, smoke(args.out) if args.smoke else [], kinds)
    df = result.results(timing=True)
    df["error rate [95 % CI]"] = interval(df, "error_rate", 4)
    table(df, ["scheme", "snr_norm_db", "esno_db", "samples", "error rate [95 % CI]", "wall_s"])
    floor = df.loc[df["scheme"] == "perfect", "error_rate"].min()
    reference = "digital-bpsk-r14" if "digital-bpsk-r14" in set(df["scheme"]) else None
    print(f"\nrate-normalised SNR (dB) at which each curve reaches perfect comm. + 1 point "
          f"({100 * (floor + 0.01):.2f} % error){', shift against ' + reference if reference else ''}:")
    print(result.snr_at(floor + 0.01, metric="error_rate", x="snr_norm_db", reference=reference).round(2)
          .to_string(index=False))
    fig = "Fig. 7: SINFONY vs classic digital and analog AE" if args.dataset == "mnist" else "Fig. 5: CIFAR-10"
    figure = result.plot("error_rate", x="snr_norm_db", schemes=FIGURE[args.dataset], style="paper", title=fig)
    save(figure, result, f"sinfony_{args.dataset}_error_rate")
    return result


if __name__ == "__main__":
    main()
