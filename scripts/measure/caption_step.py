"""One decoder step of captioner folders against each other: Python onnxruntime, one thread, the step a batched beam
search makes (IMAGES images, BEAM hypotheses each, every image's features once), folder after folder in each round
(scripts/BENCH.md, "The round of the carried glimpse"). A folder whose step carries its glimpse gets `context`.

    python3 scripts/measure/caption_step.py OLD_FOLDER models/builtin/captioner [--images 1 8] [--beam 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np  # noqa: E402

import unet_setup  # noqa: E402  (median_ms)
from caption_beam import OnnxStepper  # noqa: E402


def step_feeds(stepper: OnnxStepper, conf: dict, images: int, beam: int, rng) -> dict:
    """The feeds of one step: random pictures through the folder's own encoder, each image's state repeated per beam."""
    H, W = conf['image_size']
    feats, h0, c0, ctx0 = stepper.encode(rng.standard_normal((images, 3, H, W), dtype=np.float32))
    rows = np.repeat(np.arange(images, dtype=np.int64), beam)
    feeds = {'input_ids': rng.integers(4, conf['vocab_size'], len(rows)).astype(np.int64), 'h': h0[:, rows],
             'c': c0[:, rows], 'features': feats, 'feature_rows': rows}
    if ctx0 is not None:
        feeds['context'] = ctx0[rows]
    return feeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('folders', nargs='+')
    ap.add_argument('--images', type=int, nargs='+', default=[1, 8])
    ap.add_argument('--beam', type=int, default=3)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--calls', type=int, default=300)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    steppers = {f: (OnnxStepper(f), json.load(open(os.path.join(f, 'config.json')))) for f in a.folders}
    for r in range(a.rounds):
        for images in a.images:
            times = []
            for folder, (stepper, conf) in steppers.items():
                feeds = step_feeds(stepper, conf, images, a.beam, rng)
                times.append(f'{folder} {unet_setup.median_ms(lambda: stepper.dec.run(None, feeds), a.calls):.3f} ms')
            print(f'round {r}, {images} image(s) x beam {a.beam}: ' + ', '.join(times), flush=True)


if __name__ == '__main__':
    main()
