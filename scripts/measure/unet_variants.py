"""One UNet call of the builtin text-to-image folder, in Python onnxruntime with one thread, for the shipped int8 graph
and variants, measured alternately (scripts/BENCH.md): denormals flushed to zero, free dimensions fixed, and the float
graph of the same weights (exported here from the int8 graph's dequantized weights into a temporary folder).

    python3 scripts/measure/unet_variants.py [--batch 2] [--rounds 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np  # noqa: E402
import unet_setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=30)
    a = ap.parse_args()
    folder, unet, session = unet_setup.FOLDER, unet_setup.UNET, unet_setup.session
    import onnx_weights
    from export_t2i import export
    from sample_ddim import T2I
    with tempfile.TemporaryDirectory() as tmp:
        export(T2I(onnx_weights.load_folder(folder)), os.path.join(tmp, 'float'))
        variants = {
            'int8 (shipped)': session(unet),
            'int8, denormals as zero': session(unet, {'session.set_denormal_as_zero': '1'}),
            'int8, height and width fixed': session(unet, dims={'height': 16, 'width': 16}),
            'float32, same weights': session(os.path.join(tmp, 'float', 'unet', 'model.onnx')),
        }
        feeds = unet_setup.feed(a.batch)
        for s in variants.values():
            for _ in range(5):
                s.run(None, feeds)
        times = {k: [] for k in variants}
        for _ in range(a.rounds):
            for k, s in variants.items():
                t = time.perf_counter()
                s.run(None, feeds)
                times[k].append((time.perf_counter() - t) * 1000)
    for k, v in times.items():
        print(f'{k}: batch {a.batch}, p50 {np.median(v):.2f} ms, min {min(v):.2f} ms')


if __name__ == '__main__':
    main()
