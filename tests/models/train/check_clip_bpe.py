"""The training code's CLIP tokenizer (models/train/clip_bpe.py: its normalizer, pre-tokenizer and ClipBpe reader)
gives transformers 5's ids on the parity fixture, so the builtin text encoder is trained on the ids the TypeScript
tokenizer and diffusers give at inference. Needs only the `regex` package (no transformers).

    python3 tests/models/train/check_clip_bpe.py
"""
from __future__ import annotations

import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))

from clip_bpe import ClipBpe  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "clip-tokenizer")


def main() -> None:
    with open(os.path.join(FIXTURE, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    for name, expected in cases["tokenizers"].items():
        tokenizer = ClipBpe(os.path.join(FIXTURE, name))
        for index, prompt in enumerate(cases["prompts"]):
            want = expected["results"][index]
            ids, length = tokenizer.encode(prompt)
            if ids != want["ids"] or length != want["length"]:
                sys.exit(f"clip_bpe: {name} prompt {index} {prompt!r}: got {ids[:length]}, transformers gives {want['ids'][:want['length']]}")
        print(f"ok {name}: {len(cases['prompts'])} prompts give transformers' ids")
    print("clip_bpe: all checks passed")


if __name__ == "__main__":
    main()
