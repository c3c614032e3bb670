#!/usr/bin/env bash
# device_bundle: pack a build's GPU checks for a machine that has a GPU and the CUDA 13 runtime
# libraries but not this machine's Debian libraries (FFmpeg, TagLib, OpenBLAS, sox...), e.g. a
# lent GPU machine without package access. Writes OUT_DIR/ with the binaries, the non-system
# shared libraries they need (xz-compressed), sox with its flac/mp3 plugins, and run.sh, which
# unpacks them under /tmp and runs the CUDA tests, compute-sanitizer and bench/gpu_bench.sh.
# The CUDA libraries are not packed (cuBLAS with cuBLASLt is 580 MB): run.sh finds the target's own.
# Usage: bash scripts/device_bundle.sh BUILD_DIR [OUT_DIR (.device-bundle)]: keep OUT_DIR inside
# the source tree (git ignores .device-bundle) so that it travels with it; there: bash
# OUT_DIR/run.sh (as root: it puts sox's plugins where sox looks for them)
set -euo pipefail
BUILD=$(cd "$1" && pwd); OUT=${2:-$(cd "$(dirname "$0")/.." && pwd)/.device-bundle}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bins=(cli/genred bench/gpu_bench bench/decode_only tests/cuda/cuda_test_parity
      tests/cuda/cuda_test_fallback)
rm -rf "$OUT"; mkdir -p "$OUT/b/cli" "$OUT/b/bench" "$OUT/b/tests/cuda"
for b in "${bins[@]}"; do cp "$BUILD/$b" "$OUT/b/$b"; done
SOXFMT=/usr/lib/x86_64-linux-gnu/sox
L=$(mktemp -d)/devlib; mkdir -p "$L/soxfmt"
cp "$(command -v sox)" "$L/"
cp "$SOXFMT"/libsox_fmt_{flac,mp3}.so "$L/soxfmt/"
# every library ldd resolves, except glibc's and the CUDA toolkit's (matched by path, not by
# name: libicudata contains "cuda")
for f in "${bins[@]/#/$BUILD/}" "$L/sox" "$L"/soxfmt/*.so; do ldd "$f"; done | awk '$3 ~ /^\// {print $3}' |
  sort -u | grep -v -E '/cuda[^/]*/|/(libc|libm|libdl|libpthread|librt)\.so|/ld-linux' |
  while read -r lib; do cp -L "$lib" "$L/"; done
tar cJf "$OUT/devlib.tar.xz" -C "$(dirname "$L")" devlib
rm -rf "$(dirname "$L")"
cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# made by scripts/device_bundle.sh; run from anywhere
D=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$D/@ROOT_FROM_OUT@" && pwd); B=$D/b
L=/tmp/genred-devlib/devlib
mkdir -p /tmp/genred-devlib && tar xJf "$D/devlib.tar.xz" -C /tmp/genred-devlib
# sox looks for its format plugins in its compiled-in folder only
mkdir -p /usr/lib/x86_64-linux-gnu/sox && cp "$L"/soxfmt/*.so /usr/lib/x86_64-linux-gnu/sox/
CUD=$(for n in libcudart.so.13 libcublas.so.13 libcufft.so.12 libcudnn.so.9; do
        find / -xdev -name "$n" 2>/dev/null | head -1 | xargs -r dirname; done | sort -u | paste -sd:)
export LD_LIBRARY_PATH=$L:$CUD PATH=$L:$PATH PYTHON=${PYTHON:-$(command -v python3)}
OUT=${OUT:-/tmp}; mkdir -p "$OUT"; cd "$ROOT"
nvidia-smi -L
echo "== cuda_parity"; $B/tests/cuda/cuda_test_parity "$PYTHON" tests/nn/make_model.py; echo "rc=$?"
echo "== cuda_fallback"; $B/tests/cuda/cuda_test_fallback 2>/dev/null; echo "rc=$?"
echo "== cuda_cli"; "$PYTHON" tests/cuda/cli_device.py $B/cli/genred; echo "rc=$?"
echo "== compute-sanitizer memcheck (cuda_parity)"
compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
    $B/tests/cuda/cuda_test_parity "$PYTHON" tests/nn/make_model.py > "$OUT/memcheck.log" 2>&1
echo "rc=$?"; grep -E "ERROR SUMMARY|LEAK SUMMARY" "$OUT/memcheck.log"
echo "== bench/gpu_bench.sh"; bash bench/gpu_bench.sh "${N:-96}" "$B"
RUN
# the source tree from OUT_DIR, however deep OUT_DIR sits in it
sed -i "s|@ROOT_FROM_OUT@|$(realpath --relative-to="$OUT" "$ROOT")|" "$OUT/run.sh"
chmod +x "$OUT/run.sh"
du -sh "$OUT"
