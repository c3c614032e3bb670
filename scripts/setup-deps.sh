#!/usr/bin/env bash
# Installs the Debian 12 packages genred needs to build, run and test. Idempotent.
# GENRED_BROWSER_TEST=0 leaves out what only the browser test needs (chromium, node, npm, and
# puppeteer-core from npm): scripts/demo.sh does.
set -euo pipefail
PKGS=(
  cmake pkg-config gcc g++ make
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  libtag1-dev libfftw3-dev libopenblas-dev libjansson-dev nettle-dev libcairo2-dev
  libconfig-dev libsqlite3-dev libsystemd-dev
  ffmpeg sox libsox-fmt-all wavpack mpd mpc
  python3 python3-numpy python3-scipy python3-mutagen
  libmicrohttpd-dev
)
# The browser test drives Debian's chromium with puppeteer-core from npm (tests/web). A nodejs
# from elsewhere (NodeSource) carries its own npm and conflicts with Debian's.
BROWSER=${GENRED_BROWSER_TEST:-1}
if [ "$BROWSER" != 0 ]; then
  PKGS+=(chromium nodejs)
  command -v npm >/dev/null || PKGS+=(npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# puppeteer-core as pinned in tests/web/package-lock.json; never a browser download.
web="$(dirname "$0")/../tests/web"
if [ "$BROWSER" != 0 ] && [ -f "$web/package-lock.json" ] &&
   [ ! "$web/node_modules/.package-lock.json" -nt "$web/package-lock.json" ]; then
  (cd "$web" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
