#!/bin/sh
# K-fold cross-validation of a training recipe over the shared GTZAN train + valid lists, as
# ../shared/data/README.md suggests for tuning: each genre's clip numbers are cut into K
# contiguous blocks (GTZAN numbers an artist's clips together, so a block keeps most artists
# whole, but an artist can straddle a boundary: optimistic against the artist-disjoint valid),
# an excerpt and a clip of the same number stay together. Each fold is scored by a model
# trained on the other folds with no valid set (the last epoch kept, as for the shipped file).
# Prints each fold and the pooled figures (recall per genre over all files, then their mean).
# Skips (exit 77) without ../shared/data.
# usage: bench/train_cv.sh GENRED OUTDIR [K] [-- genred train options]
# e.g.   bench/train_cv.sh build/cli/genred /tmp/cv5 5
set -u
genred=$1 out=$2
shift 2
k=5
if [ $# -gt 0 ] && [ "$1" != "--" ]; then k=$1; shift; fi
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
data="$here/../shared/data/gtzan"
py=${PYTHON:-python3}
[ -f "$data/train.txt" ] || { echo "skip: $data missing (no shared data in this clone)"; exit 77; }
mkdir -p "$out"
"$py" - "$data" "$out" "$k" <<'EOF' || exit 1
import collections, re, sys
data, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [l for f in ("train.txt", "valid.txt") for l in open(f"{data}/{f}").read().split()]
by = collections.defaultdict(lambda: collections.defaultdict(list))
for l in lines:
    by[l.split("/")[-2]][int(re.search(r"\.(\d+)\.[^.]+$", l).group(1))].append(l)
folds = [[] for _ in range(k)]
for g in sorted(by):
    ids = sorted(by[g])
    for j, i in enumerate(ids):
        folds[j * k // len(ids)] += by[g][i]
for f in range(k):
    open(f"{out}/fold{f}.txt", "w").write("\n".join(folds[f]) + "\n")
    rest = [l for j in range(k) if j != f for l in folds[j]]
    open(f"{out}/train{f}.txt", "w").write("\n".join(rest) + "\n")
EOF
f=0
while [ $f -lt "$k" ]; do
    "$genred" train --data "$data" --train-list "$out/train$f.txt" -o "$out/m$f.safetensors" -q \
        "$@" > "$out/train$f.log" 2>&1 || { cat "$out/train$f.log"; echo "FAIL: fold $f training"; exit 1; }
    "$genred" eval --data "$data" --list "$out/fold$f.txt" --model "$out/m$f.safetensors" --json \
        > "$out/eval$f.log" 2>&1 || { cat "$out/eval$f.log"; echo "FAIL: fold $f eval"; exit 1; }
    f=$((f + 1))
done
"$py" - "$out" "$k" <<'EOF'
import collections, json, sys
out, k = sys.argv[1], int(sys.argv[2])
right, count = collections.Counter(), collections.Counter()
for f in range(k):
    j = json.loads(open(f"{out}/eval{f}.log").read().strip().split("\n")[-1])
    print(f"fold {f}: {j['n']} files, accuracy {j['accuracy']:.3f}, balanced {j['balanced_accuracy']:.3f}")
    for g, v in j["per_genre"].items():
        if v["count"]:
            right[g] += round(v["recall"] * v["count"])
            count[g] += v["count"]
rec = {g: right[g] / count[g] for g in count}
n = sum(count.values())
print(f"pooled: {n} files, accuracy {sum(right.values()) / n:.3f}, "
      f"balanced {sum(rec.values()) / len(rec):.3f} over {len(rec)} genres")
print("recall: " + ", ".join(f"{g} {rec[g]:.2f} ({count[g]})" for g in sorted(rec)))
EOF
