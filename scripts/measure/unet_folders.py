"""One UNet call of several text-to-image folders, onnxruntime against PyTorch eager on the same weights, in rounds
that alternate the folders and the two sides (scripts/BENCH.md, "The round of the top level without attention").

    taskset -c 1 python3 scripts/measure/unet_folders.py models/builtin/text-to-image OTHER_FOLDER [--rounds 8]

Each folder's `unet/model.onnx` runs in Python onnxruntime with one thread, as the pipeline feeds it with guidance
(one latent, two text rows when the folder shares its latents); PyTorch runs the weights that
models/train/onnx_weights.py reads back from the same folder, at batch 2, with one thread. Prints each round and the
medians (ms per call) and the ratio PyTorch / onnxruntime per folder.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from unet_setup import median_ms  # noqa: E402  (five untimed calls, then the median of the timed ones)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('folders', nargs='+')
    ap.add_argument('--rounds', type=int, default=8)
    a = ap.parse_args()
    import onnxruntime as ort
    import onnx_weights
    from sample_ddim import T2I
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sides = []
    for folder in a.folders:
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.log_severity_level = 3
        session = ort.InferenceSession(os.path.join(folder, 'unet', 'model.onnx'), so, providers=['CPUExecutionProvider'])
        extra_path = os.path.join(folder, 'pictalk.json')
        shared = os.path.exists(extra_path) and json.load(open(extra_path)).get('unet_shared_latents') is True
        model = T2I(onnx_weights.load_folder(folder))
        cfg, text = model.unet.cfg, model.text.cfg
        side = cfg.sample_size
        latent = rng.standard_normal((1, cfg.in_channels, side, side), dtype=np.float32)
        states = rng.standard_normal((2, text.max_position_embeddings, text.hidden_size), dtype=np.float32)
        rows = 1 if shared else 2
        feed = {'sample': np.repeat(latent, rows, 0), 'timestep': np.full((rows,), 500, np.int64),
                'encoder_hidden_states': states}
        if 'float' in session.get_inputs()[1].type:
            feed['timestep'] = feed['timestep'].astype(np.float32)
        args = (torch.from_numpy(np.repeat(latent, 2, 0)), torch.tensor([500, 500]), torch.from_numpy(states))
        sides.append((folder, lambda s=session, f=feed: s.run(None, f), lambda u=model.unet, x=args: u(*x)))
    results = {folder: [] for folder, _, _ in sides}
    with torch.no_grad():
        for r in range(a.rounds):
            line = []
            for folder, ort_call, pt_call in sides:
                o, p = median_ms(ort_call, 30), median_ms(pt_call, 10)
                results[folder].append((o, p))
                line.append(f'{os.path.basename(os.path.normpath(folder))}: onnxruntime {o:.2f} PyTorch {p:.2f} ratio {p / o:.2f}')
            print(f'round {r + 1}: ' + ' | '.join(line), flush=True)
    for folder, pairs in results.items():
        o, p = statistics.median(x[0] for x in pairs), statistics.median(x[1] for x in pairs)
        ratios = sorted(x[1] / x[0] for x in pairs)
        print(f'{folder}: onnxruntime {o:.2f} ms, PyTorch {p:.2f} ms, ratio {p / o:.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})')


if __name__ == '__main__':
    main()
