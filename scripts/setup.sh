#!/usr/bin/env bash
# What the tests need beyond npm: opusinfo (Debian's opus-tools) to check the Ogg Opus files the voice pipeline
# writes, and PyTorch, onnx and onnxruntime (CPU builds) for the Python training code's checks and smoke run.
# Safe to run again: it installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if ! command -v opusinfo >/dev/null 2>&1; then
  $SUDO apt-get install -y --no-install-recommends opus-tools \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends opus-tools; }
fi
if ! python3 -c 'import torch, onnx, onnxruntime, numpy, PIL' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check torch onnx onnxruntime numpy pillow
fi
echo "setup: opusinfo and the Python training dependencies are present"
