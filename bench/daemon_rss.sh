#!/bin/bash
# daemon_rss.sh: the idle `genred watch` daemon's memory with the model loaded, and its wakeups.
# Usage: bench/daemon_rss.sh [GENRED_BIN] [MODEL]  (default: build/cli/genred, a random seed-cnn)
# Prints VmRSS/VmHWM after the start-up scan of a 3-track library has been tagged, and the
# context switches of all its threads over 3 s of idleness (target: RSS <= 30 MB, 0 wakeups).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/cli/genred}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
model=${2:-$tmp/m.safetensors}
[ -f "$model" ] || /usr/bin/python3 "$here/tests/nn/make_model.py" --arch seed-cnn --seed 1 "$model" >/dev/null
mkdir -p "$tmp/lib"
for i in 1 2 3; do
  ffmpeg -nostdin -loglevel error -f lavfi -i "sine=frequency=$((200*i)):duration=6" -ar 22050 "$tmp/lib/$i.mp3"
done
printf 'libraries = [ "%s" ];\nstate = { path = "%s/state.db"; };\nhooks = { dir = "%s/none"; };\n' \
  "$tmp/lib" "$tmp" "$tmp" > "$tmp/genred.conf"
"$bin" watch --config "$tmp/genred.conf" --model "$model" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q "tagged .*3.mp3\|tagged .*[123].mp3" "$tmp/log" 2>/dev/null && \
  [ "$(grep -c '^genred: info: tagged' "$tmp/log")" -ge 3 ] && break; sleep 0.2; done
sleep 3  # past the debounce of our own tag writes
ctx() { cat /proc/$pid/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
c0=$(ctx); sleep 3; c1=$(ctx)
grep -E 'VmRSS|VmHWM' /proc/$pid/status
echo "threads: $(ls /proc/$pid/task | wc -l)"
echo "idle wakeups: $((c1 - c0)) context switches in 3 s"
kill -TERM "$pid"; wait "$pid"
