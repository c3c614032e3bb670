#!/usr/bin/env bash
# Builds genred from scratch with -Werror and runs the whole ctest suite; then builds again
# with ASan/UBSan and runs the tests that feed bad or hostile input through every module
# (SANITIZE=0 skips that second pass).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-test}
JOBS=$(nproc)
rm -rf "$BUILD"
cmake -S . -B "$BUILD" -DGENRED_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS"

if [ "${SANITIZE:-1}" != 0 ]; then
  rm -rf "$BUILD-asan"
  cmake -S . -B "$BUILD-asan" -DGENRED_WERROR=ON -DGENRED_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  cmake --build "$BUILD-asan" -j"$JOBS"
  ctest --test-dir "$BUILD-asan" --output-on-failure -j"$JOBS" \
    -R '^(common_text|decode_bad|decode_short|decode_two_hours|features_mel_edges|nn_model|nn_grad|tagger_bad_inputs|tagger_policy|tagger_corpus|plot_errors|pipeline_check|cli_bad_inputs|cli_end_to_end|hooks_run|state_db|config_load|train_augment|train_finetune|web_api|web_daemon)$'
fi
