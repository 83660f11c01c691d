#!/usr/bin/env bash
# What the tests and the bench need beyond npm: opusinfo (Debian's opus-tools) to check the Ogg Opus files the voice
# pipeline writes, and the Python packages of models/train/requirements.txt (CPU builds of PyTorch, onnx and
# onnxruntime, transformers 5 for the CLIP tokenizer, regex, numpy, pillow) for the training code's checks, the smoke
# runs, the tokenizer fixtures and the bench's PyTorch reference.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if ! command -v opusinfo >/dev/null 2>&1; then
  $SUDO apt-get install -y --no-install-recommends opus-tools \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends opus-tools; }
fi
if ! python3 models/train/needs.py >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
fi
python3 models/train/needs.py
echo "setup: opusinfo and the Python packages are present"
