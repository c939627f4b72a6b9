#!/usr/bin/env bash
# What `npm run bench:compare` needs beyond `npm install` (Debian/Ubuntu, as root or with sudo):
#  - libopenblas0-pthread: the BLAS our wasm matmuls call through koffi when present, and the BLAS
#    Debian's PyTorch then uses too (it registers itself as libblas.so.3; without it PyTorch gets
#    the slow reference BLAS and the comparison flatters us);
#  - python3-torch: the PyTorch reference (bench/reference_torch.py). Large (~1 GB with deps).
set -euo pipefail
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends libopenblas0-pthread python3-torch
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
