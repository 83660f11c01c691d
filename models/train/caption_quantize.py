"""Quantize a captioner folder's CNN encoder to int8 (static, QDQ, per-channel weights), calibrated on training images.

    python3 models/train/caption_quantize.py --captioner models/builtin/captioner --data data/world

The convolutions of the encoder are almost all of a caption's arithmetic that does not shrink with batching; in int8
with VNNI they take less than half the time. Each ReLU after a convolution is quantized with it: the quantizer drops
the ReLU and gives the convolution's output the ReLU's scale with zero point 0, so the uint8 output is already clipped
at zero. Quantizing the convolutions alone left a dequantize-requantize pass between every convolution and its ReLU
(two roundings, and a pass over the largest activations): the features were twice as far from the float graph's and
the encoder about 15% slower (models/EVAL.md, "One rounding per convolution"). Writes `encoder.int8.onnx` beside
`encoder.onnx` (which stays: the float graph is the export's contract and what the PyTorch checks compare with) and
sets `encoder_file` in config.json, so the pipeline loads the int8 graph. It refuses (exit 1) when the int8 encoder
changes the greedy caption's words on more than --max-changed of --check held-out images (validation split), and
reports the largest feature difference. A changed wording can still state the same scene ("a small red circle" / "a
little red circle"): whether the meaning holds is what `npm run eval` measures (`caption_exact` with and without the
int8 encoder; models/EVAL.md). Remove `encoder_file` from config.json to go back to the float encoder."""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from caption_beam import step_feeds  # noqa: E402
from datasets import load_dataset  # noqa: E402


def pixels(path: str, conf: dict) -> np.ndarray:
    from PIL import Image
    im = Image.open(path).convert('RGB')
    H, W = conf['image_size']
    if im.size != (W, H):
        im = im.resize((W, H), Image.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    return ((a - np.array(conf['mean'], np.float32)) / np.array(conf['std'], np.float32)).transpose(2, 0, 1)[None]


def greedy(enc, dec, px: np.ndarray, conf: dict) -> list[int]:
    feats, h, c, *glimpse = enc.run(None, {'pixel_values': px})       # the carried glimpse, where there is one
    ids, token = [], conf['bos_id']
    for _ in range(conf['max_length']):
        logits, h, c, *glimpse = dec.run(None, step_feeds(dec, np.array([token], np.int64), h, c, feats, *glimpse))
        token = int(logits[0].argmax())
        if token == conf['eos_id']:
            break
        ids.append(token)
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--captioner', required=True, help='captioner folder (encoder.onnx, decoder_step.onnx, config.json)')
    ap.add_argument('--data', required=True, help='the dataset it was trained on (calibration: train split; check: val split)')
    ap.add_argument('--calibration', type=int, default=256)
    ap.add_argument('--check', type=int, default=300)
    ap.add_argument('--max-changed', type=float, default=0.15,
                    help='largest share of check captions whose words may change (synonyms and word order included)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    conf_path = os.path.join(a.captioner, 'config.json')
    conf = json.load(open(conf_path))
    ds = load_dataset(a.data)
    rng = random.Random(a.seed)
    train = rng.sample(ds.split('train'), min(a.calibration, len(ds.split('train'))))
    check = ds.split('val')[: a.check]
    if not train or not check:
        raise SystemExit(f'Expected train and val images in {a.data}, got {len(train)} and {len(check)}')

    src = os.path.join(a.captioner, 'encoder.onnx')
    pre = os.path.join(a.captioner, 'encoder.pre.tmp.onnx')
    out = os.path.join(a.captioner, 'encoder.int8.onnx')
    feeds = iter([{'pixel_values': pixels(ds.path(r), conf)} for r in train])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    quant_pre_process(src, pre, skip_symbolic_shape=True)
    try:
        quantize_static(pre, out + '.tmp', Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=['Conv', 'Relu'])
    finally:
        os.remove(pre)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    enc32 = ort.InferenceSession(src, so, providers=['CPUExecutionProvider'])
    enc8 = ort.InferenceSession(out + '.tmp', so, providers=['CPUExecutionProvider'])
    dec = ort.InferenceSession(os.path.join(a.captioner, 'decoder_step.onnx'), so, providers=['CPUExecutionProvider'])
    changed, worst = 0, 0.0
    for r in check:
        px = pixels(ds.path(r), conf)
        worst = max(worst, float(np.abs(enc32.run(None, {'pixel_values': px})[0] - enc8.run(None, {'pixel_values': px})[0]).max()))
        changed += greedy(enc32, dec, px, conf) != greedy(enc8, dec, px, conf)
    share = changed / len(check)
    print(f'int8 encoder: largest feature difference {worst:.4f}; greedy captions changed on {changed} of {len(check)} '
          f'validation images ({share:.1%}, allowed {a.max_changed:.1%})', flush=True)
    if share > a.max_changed:
        os.remove(out + '.tmp')
        raise SystemExit(1)
    os.replace(out + '.tmp', out)
    conf['encoder_file'] = 'encoder.int8.onnx'
    with open(conf_path, 'w') as f:
        json.dump(conf, f, indent=2)
        f.write('\n')
    print(f'wrote {out} and set encoder_file in {conf_path}', flush=True)


if __name__ == '__main__':
    main()
