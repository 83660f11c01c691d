"""One clear line, not a traceback, when a Python package that the training code needs is missing.

Every script in this folder calls `needs.require()` before its heavy imports; `python3 models/train/needs.py` checks
them all (scripts/setup.sh runs it). The list is requirements.txt beside this file.
"""
from __future__ import annotations

import importlib.util
import os
import sys

# pip name -> module name, where they differ
MODULE = {"pillow": "PIL"}


def packages() -> list[str]:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt"), encoding="utf-8") as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [line for line in lines if line]


def missing() -> list[str]:
    out = []
    for requirement in packages():
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip()
        if importlib.util.find_spec(MODULE.get(name, name)) is None:
            out.append(name)
            continue
        if name == "transformers":  # the CLIP tokenizer the fixtures and references use is transformers 5's
            from importlib.metadata import version
            if int(version("transformers").split(".")[0]) < 5:
                out.append("transformers>=5")
    return out


def require() -> None:
    # onnxruntime's telemetry off unless the caller set it (inference/onnx.backend.ts, quietOnnxruntime): it would
    # queue events for upload under ~/.cache/Microsoft and leave mat-debug-PID.log in the temporary folder
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    gone = missing()
    if gone:
        sys.exit(f"missing Python package{'s' if len(gone) > 1 else ''}: {', '.join(gone)} "
                 f"(run scripts/setup.sh, or: python3 -m pip install {' '.join(repr(g) if '>' in g else g for g in gone)})")


if __name__ == "__main__":
    require()
    print("needs: every Python package of models/train/requirements.txt is present")
