#!/usr/bin/env bash
# gpu_bench: the CUDA backend beside the CPU, same run, same model (random weights cost what
# trained ones do):
#   1. bench/gpu_bench: CNN windows/s alone and mel+CNN tracks/s from decoded audio, for
#      batches of 1, 16, 64, 256 tracks (6 windows each), CPU and GPU
#   2. end to end: `genred classify --device cpu|cuda --batch B` over N generated 3-minute
#      tracks, tracks/s, beside bench/decode_only (the decode-only ceiling)
# Prints "no GPU: skipped" and exits 0 on a machine without a usable GPU.
# Usage: bash bench/gpu_bench.sh [N] [BUILD_DIR]   (env: JOBS, SECONDS (per point), MODEL)
set -euo pipefail
N=${1:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-$ROOT/build}
JOBS=${JOBS:-$(nproc)}
SECONDS_PER_POINT=${SECONDS:-2}
GENRED=$BUILD/cli/genred
GPU_BENCH=$BUILD/bench/gpu_bench
DECODE_ONLY=$BUILD/bench/decode_only
PY=${PYTHON:-/usr/bin/python3}
for f in "$GENRED" "$GPU_BENCH" "$DECODE_ONLY"; do
  [ -x "$f" ] || { echo "gpu_bench: $f missing; build first: cmake --build $BUILD" >&2; exit 2; }
done
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if [ -z "${MODEL:-}" ]; then
  MODEL=$T/seed.safetensors
  "$PY" "$ROOT/tests/nn/make_model.py" --arch seed-cnn --seed 1 "$MODEL" >/dev/null
fi
echo "== $(date -u +%F) $(nproc) cores, JOBS=$JOBS"
rc=0
"$GPU_BENCH" "$MODEL" "$SECONDS_PER_POINT" || rc=$?
if [ "$rc" = 77 ]; then exit 0; fi   # gpu_bench printed "no GPU: skipped (...)"
[ "$rc" = 0 ] || exit "$rc"

echo "== end to end: $N tracks of 3 min (mp3), genred classify, JOBS=$JOBS"
mkdir -p "$T/lib"
for i in $(seq 1 "$N"); do
  sox -n -r 44100 -c 2 "$T/lib/t$i.mp3" synth 180 sine $((100 + i * 13))-$((2000 + i * 17)) \
      pinknoise tremolo 0.$((i % 9 + 1)) 60 vol 0.5 2>/dev/null &
  if (( i % JOBS == 0 )); then wait; fi
done
wait
# wall seconds of one command, its output dropped; its errors shown, and the script stopped,
# when it fails (set -e sees the failed substitution)
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; return 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
s=$(seconds "$DECODE_ONLY" --jobs "$JOBS" "$T"/lib/*.mp3)
dec=$(awk -v n="$N" -v s="$s" 'BEGIN { print n / s }')
printf "%-24s %8.1f tracks/s\n" "decode only" "$dec"
# the fixed cost inside each run below (model load, and on the GPU the CUDA context and the
# cuDNN/cuBLAS/cuFFT handles): one track, so the per-track rates can be read net of it
for dev in cpu cuda; do
  s=$(seconds "$GENRED" classify --device "$dev" --model "$MODEL" "$T/lib/t1.mp3")
  printf "%-24s %8.2f s\n" "one track, $dev" "$s"
done
for dev in cpu cuda; do
  for b in 1 16 64 256; do
    s=$(seconds "$GENRED" classify --device "$dev" --model "$MODEL" --jobs "$JOBS" --batch "$b" \
        "$T"/lib/*.mp3)
    r=$(awk -v n="$N" -v s="$s" 'BEGIN { print n / s }')
    printf "%-24s %8.1f tracks/s  (%.2f of decode only)\n" "classify $dev batch $b" "$r" \
        "$(awk -v r="$r" -v d="$dec" 'BEGIN { print r / d }')"
  done
done
