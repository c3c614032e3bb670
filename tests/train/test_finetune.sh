#!/bin/sh
# genred finetune end to end on a generated folder library: a small model is trained, then
# fine-tuned with the default noise augmentation for a few epochs: the training loss must fall,
# the new model carries its provenance, and `genred eval --noise-snr` scores both models on
# noisy copies (seeded: the same figures twice). Then --retag: a daemon run tags a second
# library with the first model; finetune --retag must re-tag exactly those files with the new
# model (GENRED_MODEL read back with mutagen), and leave a file tagged by another model alone.
# With the shipped model, --labels-from-tags maps a tagged library's spellings onto its labels
# and skips (and counts) the genres it does not know.
# usage: test_finetune.sh GENRED GEN_LIBRARY_SH PYTHON SHIPPED_MODEL
set -u
genred=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") gen=$2 py=$3 shipped=$4
"$py" -c 'import mutagen' 2>/dev/null || { echo "skip: python3-mutagen missing"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'kill $dpid 2>/dev/null; rm -rf "$tmp"' EXIT
dpid=
export XDG_CACHE_HOME="$tmp/cache" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state"
sh "$gen" "$tmp/lib" folders || exit $?
cd "$tmp/lib" && ls bass/*.flac bells/*.flac noise/*.flac | awk 'NR % 4 != 0' > "$tmp/train.txt"
ls bass/*.flac bells/*.flac noise/*.flac | awk 'NR % 4 == 0' > "$tmp/valid.txt"
cd "$tmp" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
"$genred" train --data lib --train-list train.txt --valid-list valid.txt --fcn-channels 8,16 \
    --epochs 4 --steps-per-epoch 6 --batch 16 --lr 0.003 --seed 2 -o m.safetensors -q ||
    fail "genred train"
"$genred" finetune --data lib --list train.txt --valid-list valid.txt --from m.safetensors \
    --epochs 6 --steps-per-epoch 8 --batch 16 --lr 0.002 --frobnicate -o f.safetensors \
    >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option is not a usage error"
"$genred" train --data lib --from m.safetensors -o x.safetensors >/dev/null 2>&1
[ $? -eq 2 ] || fail "--from accepted by genred train"
"$genred" finetune --data lib --list train.txt --valid-list valid.txt --from m.safetensors \
    --epochs 8 --steps-per-epoch 10 --batch 16 --lr 0.004 --patience 0 --distill 0 -o f.safetensors \
    > ft.log 2>&1
rc=$?
cat ft.log
[ $rc -eq 0 ] || fail "genred finetune exited $rc"
grep -q '^before fine-tuning, valid clean' ft.log || fail "no starting figures"
[ "$(grep -c '^epoch' ft.log)" -eq 8 ] || fail "expected 8 epoch lines"
"$py" - ft.log m.safetensors f.safetensors <<'PY' || fail "loss or metadata"
import hashlib, json, re, struct, sys
log, m, f = sys.argv[1:]
loss = [float(x) for x in re.findall(r"^epoch +\d+ +loss ([0-9.]+)", open(log).read(), re.M)]
assert len(loss) == 8, loss
# every other batch is augmented, so single epochs are noisy: compare the ends
assert sum(loss[-3:]) < 0.8 * sum(loss[:3]), "loss did not fall: %s" % loss
def meta(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n])["__metadata__"], hashlib.sha256(b).hexdigest()[:12]
mm, mid = meta(m)
fm, fid = meta(f)
assert fm["finetuned_from"].startswith(mid + " ("), fm["finetuned_from"]
assert fm["labels"] == mm["labels"], (fm["labels"], mm["labels"])
assert "noise=0.5@0-20dB" in fm["train_settings"] and "alternate=1" in fm["train_settings"], fm["train_settings"]
assert "valid_noisy_balanced_accuracy" in fm, sorted(fm)
assert fid != mid
print("loss", loss[0], "->", loss[-1], "; from", mid, "to", fid)
PY
# noisy evaluation: announced, seeded (same JSON twice), and different from clean
for m in m f; do
    "$genred" eval --data lib --list valid.txt --model $m.safetensors --json > c.$m 2>&1 ||
        fail "eval $m"
    "$genred" eval --data lib --list valid.txt --model $m.safetensors --json \
        --noise-snr -5 --noise pink > n.$m 2>&1 || fail "noisy eval $m"
    "$genred" eval --data lib --list valid.txt --model $m.safetensors --json \
        --noise-snr -5 --noise pink > n2.$m 2>&1 || fail "noisy eval $m"
    grep -q '^pink noise at -5 dB SNR' n.$m || fail "noise not announced"
    cmp -s n.$m n2.$m || fail "noisy eval is not reproducible"
    echo "$m clean: $(tail -n 1 c.$m | cut -c1-60)"
    echo "$m noisy: $(tail -n 1 n.$m | cut -c1-60)"
done
"$genred" eval --data lib --list valid.txt --noise-snr loud >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --noise-snr is not a usage error"
# noise strong enough to matter: the clean and noisy scores of the starting model differ
"$py" - c.m n.m <<'PY' || fail "noise changed nothing"
import json, sys
c, n = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:])
assert c["n"] == n["n"] == 6
assert c != n, "identical figures with -5 dB pink noise"
PY

# --retag: a daemon run tags lib2 with m, a third file carries another model's tag
mkdir lib2
cp lib/bass/bass.00.flac lib/bells/bells.01.flac lib/noise/noise.02.flac lib2/
"$genred" watch --model m.safetensors --state st.db --debounce-ms 50 lib2 2> watch.log &
dpid=$!
"$py" - lib2 <<'PY' || { cat watch.log; fail "the daemon did not tag lib2"; }
import glob, sys, time, mutagen
for _ in range(300):
    if all("genred_model" in (mutagen.File(p).tags or {}) for p in glob.glob(sys.argv[1] + "/*.flac")):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
kill -TERM $dpid; wait $dpid; dpid=
cp lib/bass/bass.03.flac lib2/other.flac
"$py" -c 'import mutagen,sys; f=mutagen.File(sys.argv[1]); f["GENRE"]="Bass"; f["GENRED_CONFIDENCE"]="0.5"; f["GENRED_MODEL"]="0123456789ab"; f.save()' lib2/other.flac
"$genred" finetune --data lib --list train.txt --valid-list valid.txt --from m.safetensors \
    --epochs 2 --steps-per-epoch 4 --batch 16 --seed 3 -o g.safetensors --retag \
    --state st.db -q > retag.log 2>&1
rc=$?
cat retag.log
[ $rc -eq 0 ] || fail "finetune --retag exited $rc"
grep -q '^retag: 3 files in' retag.log || fail "retag did not find the 3 files"
"$py" - lib2 m.safetensors g.safetensors <<'PY' || fail "retag tags"
import glob, hashlib, sys, mutagen
lib, m, g = sys.argv[1:]
mid, gid = (hashlib.sha256(open(p, "rb").read()).hexdigest()[:12] for p in (m, g))
for p in sorted(glob.glob(lib + "/*.flac")):
    got = mutagen.File(p)["GENRED_MODEL"][0]
    want = "0123456789ab" if p.endswith("other.flac") else gid
    assert got == want, (p, got, want)
print("retagged with", gid, "(was", mid + ")")
PY
# the new results went into the database the files came from (not the user's own)
"$py" - st.db g.safetensors <<'PY' || fail "retag results not in st.db"
import hashlib, sqlite3, sys
gid = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()[:12]
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM tracks WHERE model = ? AND CAST(path AS TEXT) LIKE '%/lib2/%'", (gid,)).fetchone()
assert rows == (3,), rows
PY
[ ! -e "$tmp/state/genred/state.db" ] || fail "retag wrote to the default state database"

# a sample memory budget smaller than the data: augmentation draws from some windows only
mkdir -p long/bass long/bells long/noise
for i in 0 1 2 3 4 5; do
    sox -q -n -r 22050 -c 1 long/bass/b$i.flac synth 5 square $((55 + i * 5)) gain -6
    sox -q -n -r 22050 -c 1 long/bells/s$i.flac synth 5 sine $((1200 + i * 40)) gain -6
    sox -q -n -r 22050 -c 1 long/noise/n$i.flac synth 5 pinknoise highpass 1500 gain -8
done
"$genred" finetune --data long --from m.safetensors --valid-fraction 0 --sample-memory 16 \
    --noise-prob 1 --mix-prob 1 --epochs 1 --steps-per-epoch 3 --batch 8 -o b.safetensors \
    > budget.log 2>&1
rc=$?
cat budget.log
[ $rc -eq 0 ] || fail "finetune under a sample budget exited $rc"
grep -q '^waveform augmentation on 5 of the 6 windows of each file' budget.log ||
    fail "the sample budget was not applied"

# --labels-from-tags onto the shipped model's labels: "Hip Hop"/"hip-hop"/"HipHop" -> hiphop,
# "Classical" -> classical, the 10 tagged "Noise Rock" files are not a GTZAN genre
sh "$gen" "$tmp/tagged" tags || exit $?
"$genred" finetune --labels-from-tags "$tmp/tagged" --from "$shipped" -o t.safetensors \
    --epochs 1 --steps-per-epoch 2 --batch 8 --valid-fraction 0.3 > tags.log 2>&1
rc=$?
cat tags.log
[ $rc -eq 0 ] || fail "finetune --labels-from-tags exited $rc"
grep -q '^10 files skipped: their genre is not one of the model' tags.log ||
    fail "unknown genres not counted"
grep -q '^train 1[0-9] files, valid [0-9]* files, 10 labels' tags.log || fail "wrong set sizes"
echo ok
