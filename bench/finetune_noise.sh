#!/bin/bash
# Noise robustness before and after `genred finetune` (issue: noise-augmented fine-tuning).
# Fine-tunes MODEL on the shared data's train list (the epoch is chosen on a held-out part of
# train, so valid stays unseen), then evaluates both models on the valid list: clean, and with
# white and pink noise at 10 and 0 dB SNR. Prints one table; the fine-tuned model is left in
# $OUT (default /tmp/genred-finetuned.safetensors). The default MODEL is the train-only
# reference: the shipped models/genred.safetensors was trained on valid too.
# usage: bench/finetune_noise.sh [GENRED] [MODEL] [extra finetune flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
genred=${1:-$here/build/cli/genred}
model=${2:-$here/models/genred-train-only.safetensors}
shift $(( $# < 2 ? $# : 2 ))
data=${GENRED_DATA:-$here/../shared/data/gtzan}
out=${OUT:-/tmp/genred-finetuned.safetensors}
if [ ! -f "$data/train.txt" ] || [ ! -f "$data/valid.txt" ]; then
    echo "finetune_noise: no shared data at $data (set GENRED_DATA): skipped"
    exit 0
fi
t0=$(date +%s.%N)
"$genred" finetune --data "$data" --list "$data/train.txt" --from "$model" -o "$out" -q "$@"
t1=$(date +%s.%N)
echo "fine-tuned in $(echo "$t1 - $t0" | bc) s: $out"
fig() { # model, extra eval flags -> "acc bal"
    "$genred" eval --data "$data" --list "$data/valid.txt" --model "$1" --json "${@:2}" |
        tail -1 | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.3f %.3f" % (d["accuracy"], d["balanced_accuracy"]))'
}
printf '%-18s %-15s %-15s %s\n' "valid (143 files)" "before acc/bal" "after acc/bal" "gain acc"
for cond in clean "white 10" "pink 10" "white 0" "pink 0"; do
    flags=()
    if [ "$cond" != clean ]; then set -- $cond; flags=(--noise "$1" --noise-snr "$2"); fi
    read -r ba bb < <(fig "$model" "${flags[@]}")
    read -r aa ab < <(fig "$out" "${flags[@]}")
    printf '%-18s %-15s %-15s %+.1f points\n' "$cond" "$ba / $bb" "$aa / $ab" \
        "$(echo "($aa - $ba) * 100" | bc -l)"
done
