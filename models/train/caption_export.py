"""Export a captioner checkpoint to the `captioner/` folder contract of models/README.md, then reload and check it.

    python3 models/train/caption_export.py --checkpoint runs/captioner/ckpt.pt --out models/builtin/captioner

Writes config.json, vocab.json, encoder.onnx, decoder_step.onnx (opset 17, dynamic batch; a captioner that reads the
next step's glimpse carries it from step to step: models/README.md, "The carried glimpse") into a temporary folder,
reloads both graphs in onnxruntime, compares them with PyTorch on a batch of 3 (fails above 1e-4 max abs
difference) and only then moves the folder into place.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import shutil
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caption_beam import step_feeds  # noqa: E402
from caption_model import Captioner, CaptionConfig, build_captioner  # noqa: E402

OPSET = 17
TOLERANCE = 1e-4


def carries_context(m: Captioner) -> bool:
    """Whether the export carries the glimpse from step to step (`CarriedStepGraph`, the encoder's `context0`)."""
    return bool(m.cfg.attention and m.reads_ahead)


class EncoderGraph(nn.Module):
    def __init__(self, m: Captioner):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):                   # [B, 3, H, W]
        feats, h0, c0 = self.m.encode(pixel_values)    # [B, F] | [B, N, F], h0, c0 [L, B, Hd]
        if self.m.cfg.attention:                       # each cell's attention key rides along: [B, N, F + A]
            feats = torch.cat([feats, self.m.keys(feats)], 2)
        if carries_context(self.m):                    # the first step's glimpse, carried from there on
            return feats, h0, c0, self.m.context(feats, h0[-1])[0]
        return feats, h0, c0


class DecoderStepGraph(nn.Module):
    def __init__(self, m: Captioner):
        super().__init__()
        self.m = m

    def forward(self, input_ids, h, c, features, feature_rows):
        """[B] int64, [L, B, Hd] x2, features one row per image ([I, F]; with attention [I, N, F + A]) and
        feature_rows [B] int64, the image of each hypothesis (the beams of one image share its features, which are
        sent once per image instead of once per beam) -> logits [B, V], h_out, c_out."""
        return self.m.step(input_ids, h, c, features.index_select(0, feature_rows))


class CarriedStepGraph(nn.Module):
    """The decoder step of a `reads_ahead` captioner (models/README.md, "The carried glimpse"): the glimpse the step
    reads comes in as `context` [B, F] (the encoder's `context0`, then the last step's `context_out`), so each step
    attends once, not twice. The keys and the features are taken apart per image before they are gathered per
    hypothesis, so no [B, N, F + A] copy is made and sliced."""

    def __init__(self, m: Captioner):
        super().__init__()
        self.m = m

    def forward(self, input_ids, h, c, context, features, feature_rows):
        """[B] int64, [L, B, Hd] x2, [B, F], [I, N, F + A], [B] int64 -> logits [B, V], h_out, c_out, context_out."""
        Fd = self.m.cfg.feature_dim
        keys = features[..., Fd:].index_select(0, feature_rows)      # [B, N, A]
        feats = features[..., :Fd].index_select(0, feature_rows)     # [B, N, F]
        return self.m.step_from(input_ids, h, c, context, feats, keys)


def folder_config(cfg: CaptionConfig, num_positions: int | None) -> dict:
    """config.json: the README contract keys first, then what helps a reader check shapes."""
    return {
        'architecture': 'cnn-lstm-attention' if cfg.attention else 'cnn-lstm',
        'image_size': list(cfg.image_size),
        'mean': list(cfg.mean),
        'std': list(cfg.std),
        'bos_id': cfg.bos_id, 'eos_id': cfg.eos_id, 'pad_id': cfg.pad_id, 'unk_id': cfg.unk_id,
        'max_length': cfg.max_length,
        'beam_size': cfg.beam_size,
        'length_penalty': cfg.length_penalty,
        'hidden_size': cfg.hidden_size,
        'num_layers': cfg.num_layers,
        'feature_dim': cfg.feature_dim,
        'num_positions': num_positions,               # N of features [B, N, F + A]; null without attention
        'attention_dim': cfg.attention_dim if cfg.attention else None,   # A: each cell's attention key, after F
        'vocab_size': cfg.vocab_size,
        'backbone': cfg.backbone,
        'preprocessing': 'RGB (alpha over white), bilinear resize to image_size only if it differs, /255, (x-mean)/std, [B,3,H,W]',
        'opset': OPSET,
    }


def export(model: Captioner, vocab: list[str], out: str, seed: int = 0) -> dict:
    """Writes the folder atomically; returns {'max_abs_diff': float, ...}. Raises SystemExit above TOLERANCE."""
    cfg = model.cfg
    if len(vocab) != cfg.vocab_size:
        raise SystemExit(f'Expected a vocabulary of {cfg.vocab_size} words (model vocab_size), got {len(vocab)}')
    model = model.eval().cpu()
    H, W = cfg.image_size
    g = torch.Generator().manual_seed(seed)
    px = torch.randn(3, 3, H, W, generator=g)                           # [3, 3, H, W]
    carried = carries_context(model)
    with torch.no_grad():
        feats, h0, c0 = model.encode(px)
        ids = torch.tensor([cfg.bos_id, 4 % cfg.vocab_size, cfg.eos_id], dtype=torch.long)  # [3]
        logits, h1, c1 = model.step(ids, h0, c0, feats)
        encoded = EncoderGraph(model)(px)
        feats = encoded[0]                                              # the graphs' layout: keys after the cells
        ctx0 = encoded[3] if carried else None                          # the first glimpse
        ctx1 = model.context(feats, h1[-1])[0] if carried else None     # the second step's
    num_positions = feats.shape[1] if feats.dim() == 3 else None

    tmp = out.rstrip('/') + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    feat_axes = {0: 'batch'}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                                 # LSTM batch-size note: h/c are inputs here
        # each wrapper in eval mode: the export puts a module back in the mode it found it in, and the model with it
        glimpse = ['context0'] if carried else []
        torch.onnx.export(EncoderGraph(model).eval(), (px,), os.path.join(tmp, 'encoder.onnx'),
                          input_names=['pixel_values'], output_names=['features', 'h0', 'c0', *glimpse],
                          dynamic_axes={'pixel_values': {0: 'batch'}, 'features': feat_axes,
                                        'h0': {1: 'batch'}, 'c0': {1: 'batch'}, **{n: {0: 'batch'} for n in glimpse}},
                          opset_version=OPSET, dynamo=False)
        step_axes = {'input_ids': {0: 'batch'}, 'h': {1: 'batch'}, 'c': {1: 'batch'}, 'features': {0: 'images'},
                     'logits': {0: 'batch'}, 'h_out': {1: 'batch'}, 'c_out': {1: 'batch'}, 'feature_rows': {0: 'batch'}}
        if carried:
            torch.onnx.export(CarriedStepGraph(model).eval(), (ids, h0, c0, ctx0, feats, torch.arange(3)),
                              os.path.join(tmp, 'decoder_step.onnx'),
                              input_names=['input_ids', 'h', 'c', 'context', 'features', 'feature_rows'],
                              output_names=['logits', 'h_out', 'c_out', 'context_out'],
                              dynamic_axes={**step_axes, 'context': {0: 'batch'}, 'context_out': {0: 'batch'}},
                              opset_version=OPSET, dynamo=False)
        else:
            torch.onnx.export(DecoderStepGraph(model).eval(), (ids, h0, c0, feats, torch.arange(3)),
                              os.path.join(tmp, 'decoder_step.onnx'),
                              input_names=['input_ids', 'h', 'c', 'features', 'feature_rows'],
                              output_names=['logits', 'h_out', 'c_out'], dynamic_axes=step_axes,
                              opset_version=OPSET, dynamo=False)
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
        json.dump(folder_config(cfg, num_positions), f, indent=2)
    with open(os.path.join(tmp, 'vocab.json'), 'w') as f:
        json.dump(vocab, f)

    # reload what was written and compare with PyTorch, at batch 3 (the traced size) and batch 2 (dynamic batch)
    import onnx
    import onnxruntime as ort
    for name in ('encoder.onnx', 'decoder_step.onnx'):
        onnx.checker.check_model(os.path.join(tmp, name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    enc = ort.InferenceSession(os.path.join(tmp, 'encoder.onnx'), so, providers=['CPUExecutionProvider'])
    dec = ort.InferenceSession(os.path.join(tmp, 'decoder_step.onnx'), so, providers=['CPUExecutionProvider'])
    diffs = {}
    for B in (3, 2):
        e = enc.run(None, {'pixel_values': px[:B].numpy()})
        d = dec.run(None, step_feeds(dec, ids[:B].numpy(), h0[:, :B].numpy(), c0[:, :B].numpy(), feats[:B].numpy(),
                                     ctx0[:B].numpy() if carried else None))
        pairs = [('features', e[0], feats[:B]), ('h0', e[1], h0[:, :B]), ('c0', e[2], c0[:, :B]),
                 ('logits', d[0], logits[:B]), ('h_out', d[1], h1[:, :B]), ('c_out', d[2], c1[:, :B])]
        if carried:
            pairs += [('context0', e[3], ctx0[:B]), ('context_out', d[3], ctx1[:B])]
        for n, a, b in pairs:
            if a.shape != tuple(b.shape):
                raise SystemExit(f'{n}: expected shape {tuple(b.shape)} from onnxruntime, got {a.shape}')
            diffs[f'{n}@{B}'] = float(np.abs(a - b.numpy()).max())
    # rows (2, 0) read images 2 and 0
    rows = [2, 0]
    d = dec.run(None, {'input_ids': ids[rows].numpy(), 'h': h0[:, rows].numpy(), 'c': c0[:, rows].numpy(),
                       'features': feats.numpy(), 'feature_rows': np.array(rows, np.int64),
                       **({'context': ctx0[rows].numpy()} if carried else {})})
    diffs['logits@rows'] = float(np.abs(d[0] - logits[rows].numpy()).max())
    worst = max(diffs.values())
    print(f'export check: max abs difference onnxruntime vs PyTorch = {worst:.3e} (tolerance {TOLERANCE:g})')
    if not worst <= TOLERANCE:
        raise SystemExit(f'Expected ONNX outputs within {TOLERANCE} of PyTorch, got {worst:.3e}: {diffs}')
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return {'max_abs_diff': worst, 'diffs': diffs}


def load_checkpoint(path: str) -> tuple[Captioner, list[str], dict]:
    ck = torch.load(path, map_location='cpu', weights_only=False)
    cfg = CaptionConfig.from_dict(ck['model_config'])
    model = build_captioner(cfg)
    model.load_state_dict(ck['model'])
    return model.eval(), ck['vocab'], ck


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--beam-size', type=int, help='override beam_size in config.json')
    ap.add_argument('--max-length', type=int, help='override max_length in config.json')
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, vocab, _ = load_checkpoint(args.checkpoint)
    if args.beam_size:
        model.cfg.beam_size = args.beam_size
    if args.max_length:
        model.cfg.max_length = args.max_length
    export(model, vocab, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
