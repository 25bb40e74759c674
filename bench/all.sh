#!/usr/bin/env bash
# Run every benchmark on one device and keep each one's output: bash bench/all.sh OUTDIR [auto|cpu|cuda:0]
# The end-to-end benchmark runs the quick profile here; the full profile is
#   python bench/sinfony_end_to_end.py --device cuda:0     (cold: trains 9 models; long on a CPU)
set -euo pipefail
out=${1:?usage: bash bench/all.sh OUTDIR [device]}
device=${2:-auto}
mkdir -p "$out"
cd "$(dirname "$0")"
for bench in ldpc_decoder link_throughput sinfony_throughput compile_cpu training_precision encode_once sweep_memory; do
    python "$bench.py" --device "$device" 2>&1 | tee "$out/$bench.txt"
done
python sinfony_end_to_end.py --profile quick --device "$device" 2>&1 | tee "$out/sinfony_end_to_end_quick.txt"
if python -c "import ray" 2>/dev/null; then  # the Ray executor against local (an optional extra)
    workers="1 2"; [ "$(nproc)" -ge 8 ] && workers="1 2 4 8"
    python scaling.py --workers $workers 2>&1 | tee "$out/scaling.txt"
fi
grep -H "^ratio=" "$out"/*.txt
