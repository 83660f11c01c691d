#!/usr/bin/env bash
# What the tests and the bench need beyond npm: opusinfo (Debian's opus-tools) to check the Ogg Opus files the voice
# pipeline writes, PostgreSQL (Debian's postgresql, for the store's tests), and the Python packages of models/train/requirements.txt (CPU builds of PyTorch, onnx and
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
# PostgreSQL's binaries for the store's tests, which start private servers themselves (tests/helpers/postgres.server.ts):
# no cluster is created and no service is started here.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/pictalk.conf >/dev/null
  $SUDO apt-get install -y --no-install-recommends postgresql \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends postgresql; }
fi
if ! python3 models/train/needs.py >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
fi
python3 models/train/needs.py
echo "setup: opusinfo, PostgreSQL and the Python packages are present"
