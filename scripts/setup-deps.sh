#!/usr/bin/env bash
# Installs the Debian 12 packages genred needs to build, run and test. Idempotent.
set -euo pipefail
PKGS=(
  cmake pkg-config gcc g++ make
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  libtag1-dev libfftw3-dev libopenblas-dev libjansson-dev nettle-dev libcairo2-dev
  libconfig-dev libsqlite3-dev libsystemd-dev
  ffmpeg sox libsox-fmt-all wavpack mpd mpc
  python3 python3-numpy python3-scipy python3-mutagen
)
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
