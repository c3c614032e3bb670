#!/usr/bin/env bash
# tag_bench: how close `genred tag` comes to decoding alone.
# Generates N (default 20) 3-minute music-like mp3 tracks in a temp dir, then times, on the
# same files and the same number of threads (JOBS, default: cores):
#   1. genred tag --dry-run (decode + mel + CNN + tag decision; writes nothing)
#   2. ffmpeg decoding only the same six 4 s windows (one process per track, six -ss/-t
#      inputs, -ac 1 -ar 22050 to f32le, JOBS processes at a time)
#   3. bench/decode_only: genred's own decode_windows on JOBS threads, nothing else
# and prints tracks/s and CPU time per track for each, and the ratios. CPU time is the steadier
# number on a machine shared with other work.
# Each is run REPEAT times (default 2), best time kept. Target: tag <= 1.3x decode-only.
# Usage: bash bench/tag_bench.sh [N] [BUILD_DIR]   (env: JOBS, REPEAT, MODEL)
set -euo pipefail
N=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-$ROOT/build}
JOBS=${JOBS:-$(nproc)}
REPEAT=${REPEAT:-2}
GENRED=$BUILD/cli/genred
DECODE_ONLY=$BUILD/bench/decode_only
PY=/usr/bin/python3
for f in "$GENRED" "$DECODE_ONLY"; do
  [ -x "$f" ] || { echo "tag_bench: $f missing; build first: cmake --build $BUILD" >&2; exit 2; }
done
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if [ -z "${MODEL:-}" ]; then
  MODEL=$T/seed.safetensors # random weights cost exactly what trained ones do
  "$PY" "$ROOT/tests/nn/make_model.py" --arch seed-cnn --seed 1 "$MODEL" >/dev/null
fi

echo "tag_bench: generating $N 3-minute mp3 tracks in $T ..."
L=$T/layers; mkdir -p "$L" "$T/lib"
sox -n -r 44100 -c 2 "$L/1.wav" synth 180 pluck C3 pluck E4 tremolo 3 60
sox -n -r 44100 -c 2 "$L/2.wav" synth 180 square G2 gain -10 tremolo 1.5 80
sox -n -r 44100 -c 2 "$L/3.wav" synth 180 sawtooth 300-900 gain -14
sox -n -r 44100 -c 2 "$L/4.wav" synth 180 pinknoise gain -22
sox -m "$L"/1.wav "$L"/2.wav "$L"/3.wav "$L"/4.wav "$T/base.wav" gain -n -3
rm -rf "$L"
seq 1 "$N" | xargs -P "$JOBS" -I{} sh -c \
  'ffmpeg -nostdin -v error -y -i "$1/base.wav" -af "asetrate=44100*(1+$2/200),aresample=44100,atrim=0:180,volume=0.$((90-$2))" -c:a libmp3lame -b:a 192k "$1/lib/track$(printf %03d $2).mp3"' _ "$T" {}
FILES=("$T"/lib/*.mp3)

# ffmpeg command per track: the six DESIGN.md §2 windows, from the track's length.
: > "$T/ffmpeg.cmds"
for f in "${FILES[@]}"; do
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")
  "$PY" - "$f" "$dur" >> "$T/ffmpeg.cmds" <<'PYEOF'
import sys, shlex
f, dur = sys.argv[1], float(sys.argv[2])
sr, w = 22050, 88200
n = int(dur * sr)
args = ["ffmpeg", "-nostdin", "-v", "error"]
for i in range(6):
    s = (n - w) * (2 * i + 1) // 12
    args += ["-ss", "%.6f" % (s / sr), "-t", "4", "-i", f]
args += ["-filter_complex", "".join("[%d:a]" % i for i in range(6)) + "concat=n=6:v=0:a=1[a]",
         "-map", "[a]", "-ac", "1", "-ar", "22050", "-f", "f32le", "-y", "/dev/null"]
print(" ".join(shlex.quote(a) for a in args))
PYEOF
done

best() { # "WALL CPU" (seconds; CPU = user + sys of it and its children) of the fastest of REPEAT runs
  local b="" cpu="" out
  for _ in $(seq 1 "$REPEAT"); do
    out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null; } 2>&1 | tail -1 )
    read -r w u s <<< "$out"
    if [ -z "$b" ] || awk -v e="$w" -v b="$b" 'BEGIN { exit !(e < b) }'; then
      b=$w; cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
    fi
  done
  echo "$b $cpu"
}
run_ffmpeg() { xargs -P "$JOBS" -I{} sh -c '{}' < "$T/ffmpeg.cmds"; }
run_decode() { "$DECODE_ONLY" --jobs "$JOBS" "${FILES[@]}"; }
run_tag() { "$GENRED" tag --dry-run --quiet --jobs "$JOBS" --model "$MODEL" "$T/lib"; }

echo "tag_bench: $N tracks, $JOBS threads, best of $REPEAT, $(nproc) cores"
read -r t_ff c_ff <<< "$(best run_ffmpeg)"
read -r t_dec c_dec <<< "$(best run_decode)"
read -r t_tag c_tag <<< "$(best run_tag)"
rate() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.2f", n / t }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", 1000 * t / n }'; }
printf '%-36s %8s %10s %16s\n' "" "wall" "tracks/s" "CPU ms/track"
printf '%-36s %7.3fs %10s %16s\n' "ffmpeg, six windows only" "$t_ff" "$(rate "$t_ff")" "$(ms "$c_ff")"
printf '%-36s %7.3fs %10s %16s\n' "decode_only (genred decode_windows)" "$t_dec" "$(rate "$t_dec")" "$(ms "$c_dec")"
printf '%-36s %7.3fs %10s %16s\n' "genred tag --dry-run" "$t_tag" "$(rate "$t_tag")" "$(ms "$c_tag")"
echo "ratio tag / ffmpeg decode-only:  wall $(div "$t_tag" "$t_ff"), CPU $(div "$c_tag" "$c_ff")   (target <= 1.30)"
echo "ratio tag / genred decode-only:  wall $(div "$t_tag" "$t_dec"), CPU $(div "$c_tag" "$c_dec")"
