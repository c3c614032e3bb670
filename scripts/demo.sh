#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a tagged demo library: installs the build and
# runtime packages (scripts/setup-deps.sh) plus drascula-music (free game music, the demo
# library), builds genred in build/, and runs `genred tag` with no path, which tags a copy of
# that music in ${XDG_CACHE_HOME:-~/.cache}/genred/demo-library (never your own files).
# Extra arguments go to `genred tag` (e.g. --dry-run, or your own folder).
set -euo pipefail
cd "$(dirname "$0")/.."
GENRED_BROWSER_TEST=0 bash scripts/setup-deps.sh # no chromium: that is for the tests
if ! dpkg-query -W -f='${Status}' drascula-music 2>/dev/null | grep -q 'install ok installed'; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  # drascula-music is in Debian's main archive; apt-get update first on a fresh machine.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends drascula-music
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
MODEL_ARGS=()
if [ -z "${GENRED_MODEL:-}" ] && [ ! -f models/genred.safetensors ] &&
   [ ! -f /usr/local/share/genred/genred.safetensors ]; then
  # No trained model in this checkout: use a random-weight one so the whole path still runs.
  echo "demo: models/genred.safetensors not found; using a random-weight model (genres are noise)"
  mkdir -p build/demo
  /usr/bin/python3 tests/nn/make_model.py --arch seed-cnn --seed 1 build/demo/random.safetensors
  MODEL_ARGS=(--model build/demo/random.safetensors)
fi
exec build/cli/genred tag "${MODEL_ARGS[@]}" "$@"
