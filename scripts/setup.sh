#!/usr/bin/env bash
# What the tests and the bench need beyond npm: opusinfo (Debian's opus-tools) to check the Ogg Opus files the voice
# pipeline writes, PostgreSQL and Redis (Debian's postgresql and redis-server, which the tests start as private
# servers), scikit-image's sample photographs (Debian's python3-skimage, for `npm run eval`), and the Python packages
# of models/train/requirements.txt (CPU builds of PyTorch, onnx and onnxruntime, transformers 5 for the CLIP
# tokenizer, regex, numpy, pillow) for the training code's checks, the smoke runs, the tokenizer fixtures and the
# bench's PyTorch reference.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if ! command -v opusinfo >/dev/null 2>&1; then
  $SUDO apt-get install -y --no-install-recommends opus-tools \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends opus-tools; }
fi
# PostgreSQL's and Redis's binaries for the tests, which start private servers themselves (tests/helpers/): no
# PostgreSQL cluster is created, and neither package's service is started (policy-rc.d refuses it during the install).
apt_install() {
  local refuse=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    refuse=1
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  local status=0
  if ! $SUDO apt-get install -y --no-install-recommends "$@"; then
    if ! { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "$@"; }; then status=1; fi
  fi
  if [ -n "$refuse" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  return $status
}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/pictalk.conf >/dev/null
  apt_install postgresql
fi
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
# scikit-image's sample photographs, on which `npm run eval` measures the captioner's out-of-domain check
# (models/eval/ood.images.ts reads them from the package's data folder; the unit tests use tests/fixtures/photos/)
if [ ! -f /usr/lib/python3/dist-packages/skimage/data/astronaut.png ]; then
  apt_install python3-skimage
fi
if ! python3 models/train/needs.py >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
  PIP_FLAGS=(--quiet --disable-pip-version-check)
  # Debian's own python3 is "externally managed" (PEP 668): its pip installs only when told it may, into /usr/local
  # (or the user's site-packages when not root), which leaves the packages that dpkg installed alone
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    PIP_FLAGS+=(--break-system-packages)
    if [ "$(id -u)" -ne 0 ]; then PIP_FLAGS+=(--user); fi
  fi
  python3 -m pip install "${PIP_FLAGS[@]}" -r models/train/requirements.txt
fi
python3 models/train/needs.py
echo "setup: opusinfo, PostgreSQL, Redis, scikit-image's sample photographs and the Python packages are present"
