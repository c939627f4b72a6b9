#!/usr/bin/env bash
# CI machine set-up before `npm ci`: OpenBLAS, so test/engine/blas.test.ts exercises the system-BLAS
# matmul path (without it those cases are skipped and only the wasm fallback runs). PyTorch is not
# installed here: the PyTorch comparison (bench/setup.sh, npm run bench:compare) is optional.
set -euo pipefail
if ! command -v apt-get >/dev/null; then
  echo ".ci/setup.sh: no apt-get; skipping OpenBLAS (the BLAS tests will be skipped)"
  exit 0
fi
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libopenblas0-pthread
