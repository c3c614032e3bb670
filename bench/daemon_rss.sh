#!/bin/bash
# daemon_rss.sh: the idle `genred watch` daemon's memory with the model loaded, where it goes,
# and its wakeups.
# Usage: bench/daemon_rss.sh [GENRED_BIN] [MODEL]  (default: build/cli/genred, a random seed-cnn)
#   ISOLATE=1 bench/daemon_rss.sh ...  runs the daemon on private copies of its shared libraries
#   (all but the C/C++ runtime), as on a desktop where nothing else maps FFmpeg, TagLib, FFTW or
#   OpenBLAS. Without it, library pages that other processes on this machine also map (a
#   `genred train` next door) cannot be handed back and count in RSS twice over.
# Prints VmRSS/VmHWM once the start-up scan of a 3-track library has been tagged and the daemon
# has been idle long enough to hand memory back (daemon.c, IDLE_RELEASE_S), then the breakdown
# by kind of mapping from /proc/PID/smaps, then the context switches of all its threads over 3 s
# of idleness (target: RSS <= 30 MB, 0 wakeups).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/cli/genred}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
model=${2:-$tmp/m.safetensors}
[ -f "$model" ] || /usr/bin/python3 "$here/tests/nn/make_model.py" --arch seed-cnn --seed 1 "$model" >/dev/null
mkdir -p "$tmp/lib"
for i in 1 2 3; do
  ffmpeg -nostdin -loglevel error -f lavfi -i "sine=frequency=$((200*i)):duration=6" -ar 22050 "$tmp/lib/$i.mp3"
done
printf 'libraries = [ "%s" ];\nstate = { path = "%s/state.db"; };\nhooks = { dir = "%s/none"; };\n' \
  "$tmp/lib" "$tmp" "$tmp" > "$tmp/genred.conf"
if [ "${ISOLATE:-0}" = 1 ]; then
  mkdir "$tmp/so"
  ldd "$bin" | awk '/=> \// {print $3}' |
    grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt)\.so' |
    xargs -I{} cp {} "$tmp/so/"
  export LD_LIBRARY_PATH="$tmp/so"
  sync
  echo "isolated: $(ls "$tmp/so" | wc -l) private library copies"
fi
"$bin" watch --config "$tmp/genred.conf" --model "$model" --log-level debug 2>"$tmp/log" &
pid=$!
# Tagged all three, then the idle hand-back after the last batch (IDLE_RELEASE_S = 10 s).
for _ in $(seq 300); do
  [ "$(grep -c 'info: tagged' "$tmp/log")" -ge 3 ] && break; sleep 0.2; done
n0=$(grep -c 'idle: advised' "$tmp/log" || true)
for _ in $(seq 150); do
  [ "$(grep -c 'idle: advised' "$tmp/log" || true)" -gt "$n0" ] && break; sleep 0.2; done
sleep 1
grep -E 'VmRSS|VmHWM' /proc/$pid/status
# Where it goes: anonymous memory of our own (heap, arenas, model), the libraries' relocated
# data (private dirty pages of file mappings), and library code/read-only data still resident,
# split into pages only this process maps and pages shared with other processes.
awk '
  /^[0-9a-f]+-[0-9a-f]+ / { file = ($6 ~ /^\//) }
  /^Rss:/ { if (!file) anon += $2 }
  /^Pss:/ { pss += $2 }
  /^Private_Dirty:/ { if (file) fdirty += $2 }
  /^Private_Clean:/ { if (file) fpriv += $2 }
  /^Shared_Clean:/ { if (file) fshared += $2 }
  END {
    printf "  anonymous (heap, arenas, model, stacks) %6d kB\n", anon
    printf "  libraries: relocated data (dirty)      %6d kB\n", fdirty
    printf "  libraries: code, only this process     %6d kB\n", fpriv
    printf "  libraries: code, shared with others    %6d kB\n", fshared
    printf "  PSS (shared pages split among users)   %6d kB\n", pss
  }' /proc/$pid/smaps
echo "threads: $(ls /proc/$pid/task | wc -l)"
ctx() { cat /proc/$pid/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
c0=$(ctx); sleep 3; c1=$(ctx)
echo "idle wakeups: $((c1 - c0)) context switches in 3 s"
kill -TERM "$pid"; wait "$pid"; pid=
