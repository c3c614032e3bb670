#!/usr/bin/env bash
# Builds genred from scratch with -Werror and runs the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-test}
rm -rf "$BUILD"
cmake -S . -B "$BUILD" -DGENRED_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"
