"""Quantize a text-to-image folder's UNet to int8: convolutions statically (QDQ, per-channel weights, calibrated on the
UNet inputs of sampling runs for training captions), linear layers dynamically.

    python3 models/train/t2i_quantize.py --model models/builtin/text-to-image --data data/world

The UNet is almost all of an image's time. Its convolutions are quantized statically (int8 weights per channel,
uint8 activations calibrated here) and its linear layers dynamically (int8 weights, activations quantized per
call); with VNNI that takes over a third off a step (`npm run bench`). The first and last convolutions, the
attention itself and every normalization stay float. `unet/model.onnx` is replaced by the quantized graph: the
float one would not fit the size budget beside it, and `export_t2i.py` re-creates it from the checkpoint. The PyTorch reference
(`onnx_weights.py`, `sample_ddim.py --onnx`) reads the dequantized weights back, so it runs the same weights.

Refuses (exit 1, folder untouched) when the int8 UNet's noise prediction differs from the float one by more than
--max-error (relative RMS) on held-out inputs (sampling runs for validation captions), and reports how much the
final images move. Whether the images still show what the prompt says is what `npm run eval` judges
(`t2i_all_correct_*` before and after; models/EVAL.md). pictalk.json records the quantization.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import random
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import onnx_weights  # noqa: E402
from datasets import load_dataset  # noqa: E402
from sample_ddim import T2I  # noqa: E402


class OrtUNet:
    """An onnxruntime UNet session called like sd_model.UNet, so the reference sampler can run it."""

    def __init__(self, session, timestep_dtype, cfg):
        self.session, self.timestep_dtype, self.cfg = session, timestep_dtype, cfg

    def __call__(self, sample, timestep, encoder_hidden_states):
        out = self.session.run(None, feed(sample, timestep, encoder_hidden_states, self.timestep_dtype))[0]
        return torch.from_numpy(out)


def feed(sample, timestep, encoder_hidden_states, timestep_dtype) -> dict:
    """One UNet call's tensors as onnxruntime inputs; `timestep_dtype` is the graph's (int64, or float32)."""
    t = np.full([sample.shape[0]], int(timestep.reshape(-1)[0]), timestep_dtype)
    return {'sample': sample.numpy().copy(), 'timestep': t, 'encoder_hidden_states': encoder_hidden_states.numpy().copy()}


def unet_inputs(m: T2I, prompts: list[str], steps: int, guidance: float, timestep_dtype) -> list[dict]:
    """Every UNet call of a reference sampling run per prompt, as onnxruntime feeds."""
    feeds = []
    h = m.unet.register_forward_pre_hook(lambda _mod, args: feeds.append(feed(*args[:3], timestep_dtype)))
    try:
        for i, p in enumerate(prompts):
            m.sample(p, steps=steps, guidance=guidance, seed=i)
    finally:
        h.remove()
    return feeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, help='text-to-image folder in the diffusers ONNX layout (float UNet)')
    ap.add_argument('--data', required=True, help='the world it was trained on (calibration: train captions; '
                                                  'check: validation captions)')
    ap.add_argument('--calibration', type=int, default=16, help='prompts sampled for calibration (20 UNet calls each)')
    ap.add_argument('--check', type=int, default=16, help='held-out prompts sampled for the check')
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--guidance', type=float, default=3.0)
    ap.add_argument('--max-error', type=float, default=0.08,
                    help='largest relative RMS difference of the int8 noise prediction from the float one')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    torch.set_num_threads(1)

    src = os.path.join(a.model, 'unet', 'model.onnx')
    if any(n.op_type in ('DequantizeLinear', 'MatMulInteger') for n in onnx.load(src, load_external_data=False).graph.node):
        raise SystemExit(f'{src} is already quantized: export the float UNet again (export_t2i.py) first')
    ds = load_dataset(a.data)
    rng = random.Random(a.seed)
    captions = lambda split: sorted({c for r in ds.split(split) for c in r.captions})           # noqa: E731
    train, val = captions('train'), captions('val')
    if not train or not val:
        raise SystemExit(f'Expected train and val captions in {a.data}, got {len(train)} and {len(val)}')
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s32 = ort.InferenceSession(src, so, providers=['CPUExecutionProvider'])
    ts_dtype = next(np.float32 if i.type == 'tensor(float)' else np.int64 for i in s32.get_inputs() if i.name == 'timestep')
    m = T2I(onnx_weights.load_folder(a.model))
    calib = unet_inputs(m, rng.sample(train, min(a.calibration, len(train))), a.steps, a.guidance, ts_dtype)
    check_prompts = rng.sample(val, min(a.check, len(val)))
    held_out = unet_inputs(m, check_prompts, a.steps, a.guidance, ts_dtype)
    rng.shuffle(calib)

    pre, out = src + '.pre.tmp', src + '.int8.tmp'
    feeds = iter(calib)

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    quant_pre_process(src, pre, skip_symbolic_shape=True)
    try:
        convs = [n.name for n in onnx.load(pre).graph.node if n.op_type == 'Conv']
        quantize_static(pre, out + '.conv', Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=['Conv'],
                        nodes_to_exclude=[convs[0], convs[-1]],            # conv_in and conv_out stay float
                        calibrate_method=CalibrationMethod.Percentile, extra_options={'CalibPercentile': 99.99})
        # every linear layer (a MatMul with a constant weight): int8 weights, activations quantized per call
        quantize_dynamic(out + '.conv', out, op_types_to_quantize=['MatMul'], weight_type=QuantType.QInt8,
                         per_channel=False)
    finally:
        for path in (pre, out + '.conv'):
            if os.path.exists(path):
                os.remove(path)

    s8 = ort.InferenceSession(out, so, providers=['CPUExecutionProvider'])
    num = den = 0.0
    for f in held_out:
        e32, e8 = s32.run(None, f)[0], s8.run(None, f)[0]
        num, den = num + float(((e8 - e32) ** 2).sum()), den + float((e32 ** 2).sum())
    error = (num / den) ** 0.5
    moved, cfg = [], m.unet.cfg
    for i, p in enumerate(check_prompts[:4]):
        images = []
        for s in (s32, s8):
            m.unet = OrtUNet(s, ts_dtype, cfg)
            images.append(m.sample(p, steps=a.steps, guidance=a.guidance, seed=i)['image'])
        moved.append(float(np.abs(images[1] - images[0]).mean()) * 127.5)
    print(f'int8 UNet: noise prediction relative RMS difference {error:.4f} on {len(held_out)} held-out calls '
          f'(allowed {a.max_error}); final images differ by {np.mean(moved):.2f} of 255 per pixel on average '
          f'({len(moved)} prompts)', flush=True)
    if not error <= a.max_error:
        os.remove(out)
        raise SystemExit(1)
    before = os.path.getsize(src)
    os.replace(out, src)
    extra_path = os.path.join(a.model, 'pictalk.json')
    extra = json.load(open(extra_path)) if os.path.exists(extra_path) else {}
    extra['unet_quantization'] = {
        'method': 'convolutions: onnxruntime quantize_static, QDQ, int8 per-channel weights, uint8 activations '
                  '(percentile 99.99); MatMul: quantize_dynamic, int8 weights, activations quantized per call',
        'quantized': 'Conv except the first and the last; every MatMul with a constant weight (the linear layers)',
        'calibration_prompts': a.calibration,
        'noise_prediction_relative_rms_difference': round(error, 5)}
    with open(extra_path, 'w') as f:
        json.dump(extra, f, indent=2)
        f.write('\n')
    print(f'wrote {src} ({before / 1e6:.2f} MB -> {os.path.getsize(src) / 1e6:.2f} MB) and recorded it in '
          f'{extra_path}', flush=True)


if __name__ == '__main__':
    main()
