#!/bin/sh
# genred train + genred eval end to end on a generated folder library (labels = folder names):
# training prints per-epoch lines and writes a model; eval of that model prints the table and
# a JSON last line whose figures are checked with python; a bad option is a usage error (2).
# usage: test_cli.sh GENRED GEN_LIBRARY_SH PYTHON
set -u
genred=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") gen=$2 py=$3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
sh "$gen" "$tmp/lib" folders || exit $?
cd "$tmp/lib" && ls bass/*.flac bells/*.flac noise/*.flac | awk 'NR % 4 != 0' > "$tmp/train.txt"
ls bass/*.flac bells/*.flac noise/*.flac | awk 'NR % 4 == 0' > "$tmp/valid.txt"
cd "$tmp" || exit 1
"$genred" train --data lib --frobnicate -o m.safetensors >/dev/null 2>err.txt
[ $? -eq 2 ] || { echo "FAIL: unknown option is not a usage error"; exit 1; }
head -n 1 err.txt | grep -qx "genred train: unrecognized option '--frobnicate'" ||
    { cat err.txt; echo "FAIL: the first line does not name the unknown option"; exit 1; }
"$genred" train --data lib -o m.safetensors --lr >/dev/null 2>err.txt
[ $? -eq 2 ] && head -n 1 err.txt | grep -qx "genred train: option '--lr' requires an argument" ||
    { cat err.txt; echo "FAIL: a missing value is not named as such"; exit 1; }
"$genred" train --data lib --train-list train.txt --valid-list valid.txt --fcn-channels 8,16 \
    --epochs 10 --steps-per-epoch 8 --batch 16 --lr 0.003 --seed 2 -o m.safetensors > train.log 2>&1
rc=$?
cat train.log
[ $rc -eq 0 ] || { echo "FAIL: genred train exited $rc"; exit 1; }
[ -s m.safetensors ] || { echo "FAIL: no model written"; exit 1; }
[ "$(grep -c '^epoch' train.log)" -eq 10 ] || { echo "FAIL: expected 10 epoch lines"; exit 1; }
"$genred" eval --data lib --list valid.txt --model m.safetensors --json --confusion c.svg > eval.log 2>&1
rc=$?
cat eval.log
[ $rc -eq 0 ] || { echo "FAIL: genred eval exited $rc"; exit 1; }
grep -q '^confusion (rows: true' eval.log || { echo "FAIL: no confusion table"; exit 1; }
[ -s c.svg ] || { echo "FAIL: no confusion picture"; exit 1; }
tail -n 1 eval.log | "$py" -c '
import json, sys
j = json.loads(sys.stdin.read())
assert j["n"] == 6, j["n"]
assert set(j["per_genre"]) == {"bass", "bells", "noise"}, j["per_genre"]
assert sum(g["count"] for g in j["per_genre"].values()) == 6
assert j["accuracy"] >= 0.8, "accuracy %.3f, chance 0.33" % j["accuracy"]
assert 0 <= j["balanced_accuracy"] <= 1
print("json ok", j["accuracy"], j["balanced_accuracy"])
' || { echo "FAIL: eval JSON"; exit 1; }
# the same library with SGD + momentum instead of AdamW: learns it too, and says so; its
# training files come as two lists that share a line (used once, with a warning)
n=$(wc -l < train.txt)
head -n $((n / 2)) train.txt > ta.txt
tail -n +$((n / 2)) train.txt > tb.txt
"$genred" train --data lib --train-list ta.txt --train-list tb.txt --valid-list valid.txt \
    --fcn-channels 8,16 \
    --epochs 10 --steps-per-epoch 8 --batch 16 --sgd-momentum 0.9 --lr 0.02 \
    --weight-decay 0.0005 --seed 2 -o sgd.safetensors > sgd.log 2>&1 ||
    { cat sgd.log; echo "FAIL: genred train with SGD"; exit 1; }
grep -q "^train $n files" sgd.log || { cat sgd.log; echo "FAIL: two lists: expected $n files"; exit 1; }
grep -q "1 files listed more than once" sgd.log ||
    { cat sgd.log; echo "FAIL: no warning for the repeated line"; exit 1; }
"$genred" eval --data lib --list valid.txt --model sgd.safetensors --json 2>&1 | tail -n 1 |
    "$py" -c '
import json, struct, sys
j = json.loads(sys.stdin.read())
assert j["accuracy"] >= 0.8, "sgd: accuracy %.3f, chance 0.33" % j["accuracy"]
f = open("sgd.safetensors", "rb")
meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]
assert "optimizer=sgd momentum=0.9 " in meta["train_settings"], meta["train_settings"]
assert meta["command"].startswith("genred train --data lib --train-list ta.txt "), meta["command"]
tl = meta["train_list"].split(" + ")
assert [p.rsplit("/", 1)[-1] for p in tl] == ["ta.txt", "tb.txt"], meta["train_list"]
print("sgd ok", j["accuracy"])
' || { cat sgd.log; echo "FAIL: SGD model"; exit 1; }
echo ok
