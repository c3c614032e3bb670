#!/bin/sh
# Trains one setting with several seeds on the shared GTZAN lists and prints each seed's best
# and last-5-epoch valid balanced accuracy and their means: the figure models/TRAINING.md
# quotes; with --ema also the raw weights of the same runs. Skips (exit 77) without
# ../shared/data.
# usage: bench/train_seeds.sh GENRED OUTDIR "SEEDS" [parallel jobs] -- [genred train options]
# e.g.   bench/train_seeds.sh build/cli/genred /tmp/seeds "1 2 3" 3 -- --epochs 30
set -u
genred=$1 out=$2 seeds=$3 jobs=$4
shift 4
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
data="$here/../shared/data/gtzan"
[ -f "$data/train.txt" ] || { echo "skip: $data missing (no shared data in this clone)"; exit 77; }
mkdir -p "$out"
n=0
for s in $seeds; do
    "$genred" train --data "$data" --train-list "$data/train.txt" --valid-list "$data/valid.txt" \
        --seed "$s" -o "$out/seed$s.safetensors" "$@" > "$out/seed$s.log" 2>&1 &
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then wait; n=0; fi
done
wait
for s in $seeds; do
    grep '^trained' "$out/seed$s.log" | sed "s/^/seed $s: /"
done
grep -h '^trained' "$out"/seed*.log | sed -n 's/.*balanced \([0-9.]*\) (mean of the last 5 epochs \([0-9.]*\)).*/\1 \2/p' |
    awk '{b += $1; l += $2; n++} END {if (n) printf "mean over %d seeds: best-epoch balanced %.3f, last-5-epoch balanced %.3f\n", n, b / n, l / n}'
# with --ema the same runs also scored their raw (not averaged) weights: the paired comparison
grep -h '^trained' "$out"/seed*.log | sed -n 's/.*raw weights: best epoch [0-9]* balanced \([0-9.]*\), last 5 epochs \([0-9.]*\).*/\1 \2/p' |
    awk '{b += $1; l += $2; n++} END {if (n) printf "raw weights of the same runs, mean over %d seeds: best-epoch balanced %.3f, last-5-epoch balanced %.3f\n", n, b / n, l / n}'
