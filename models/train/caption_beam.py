"""Greedy and beam search over the captioner, on PyTorch or on the exported ONNX graphs.

This is the reference the TypeScript search must match (tests/fixtures/tiny-captioner/parity.json is made here).
The algorithm, exactly:

* preprocessing: decode to RGB (alpha flattened onto white), resize to `image_size` with bilinear filtering only when
  the size differs, scale to 0..1, `(x - mean) / std` per channel, layout [1, 3, H, W] float32.
* log-probabilities: `log_softmax` of the float32 logits computed in float64 (`x - max - log(sum(exp(x - max)))`).
* greedy: from `<bos>`, take the argmax (lowest id on ties) until `<eos>` or `max_length` generated tokens.
  score = sum(logp of generated tokens, `<eos>` included) / count(generated tokens).
* beam (Show, Attend and Tell style, shrinking beam): start with one hypothesis `[<bos>]`, sum 0. Each step,
  every live hypothesis proposes every token; candidates are ranked by `sum + logp` descending, ties by
  (live hypothesis index, token id) ascending, and the best `k - finished` are kept, where `finished` counts the
  hypotheses already ended. A kept candidate whose token is `<eos>` is finished; the rest stay live in rank order.
  Stop when none is live or `max_length` tokens were generated (live ones are then finished as they are).
  Each finished hypothesis gets `sum / len ** length_penalty` (len = generated tokens, `<eos>` included); the best
  wins, earliest finished on ties. Its tokens exclude `<bos>` and `<eos>`.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import math
import os

import numpy as np


# ---- preprocessing ---------------------------------------------------------------------------------------------
def load_pixels(path: str, image_size, mean, std) -> np.ndarray:
    """PNG/JPEG path -> float32 [1, 3, H, W], the exact preprocessing documented above."""
    from PIL import Image
    im = Image.open(path)
    if im.mode in ('RGBA', 'LA', 'P'):
        im = im.convert('RGBA')
        bg = Image.new('RGBA', im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    im = im.convert('RGB')
    H, W = image_size
    if im.size != (W, H):
        im = im.resize((W, H), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32) / 255.0            # [H, W, 3]
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)     # [1, 3, H, W]


def log_softmax64(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)                            # [B, V]
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


# ---- backends: both map numpy -> numpy ---------------------------------------------------------------------------
class TorchStepper:
    def __init__(self, model):
        import torch
        self.torch, self.model = torch, model.eval()

    def encode(self, pixels):
        """-> features, h0, c0 and the carried glimpse (None: PyTorch's step computes its glimpse itself)."""
        with self.torch.no_grad():
            return [t.numpy() for t in self.model.encode(self.torch.from_numpy(pixels))] + [None]

    def step(self, ids, h, c, feats, ctx=None):
        t = self.torch
        with t.no_grad():
            out = self.model.step(t.from_numpy(ids), t.from_numpy(h), t.from_numpy(c), t.from_numpy(feats))
        return [o.numpy() for o in out] + [None]


def carries_context(session) -> bool:
    """Whether a decoder-step graph carries the glimpse (an input `context`; models/README.md)."""
    return any(i.name == 'context' for i in session.get_inputs())


def step_feeds(dec, ids, h, c, feats, ctx=None) -> dict:
    """The decoder step's inputs for hypotheses whose features are `feats` row by row: the graph takes features
    once per image and `feature_rows`, the image of each row, so each row is given as its own image here. `ctx`:
    the carried glimpse, for a graph that takes one."""
    feeds = {'input_ids': ids.astype(np.int64), 'h': h, 'c': c, 'features': feats,
             'feature_rows': np.arange(feats.shape[0], dtype=np.int64)}
    if carries_context(dec):
        if ctx is None:
            raise SystemExit('Expected the carried glimpse (`context`) for this decoder step, got none')
        feeds['context'] = ctx
    return feeds


class OnnxStepper:
    def __init__(self, folder: str):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.enc = ort.InferenceSession(os.path.join(folder, 'encoder.onnx'), so, providers=['CPUExecutionProvider'])
        self.dec = ort.InferenceSession(os.path.join(folder, 'decoder_step.onnx'), so,
                                        providers=['CPUExecutionProvider'])
        self.carried = carries_context(self.dec)

    def encode(self, pixels):
        """-> features, h0, c0 and the first glimpse where the decoder carries it (else None)."""
        if self.carried:
            return self.enc.run(['features', 'h0', 'c0', 'context0'], {'pixel_values': pixels})
        return self.enc.run(['features', 'h0', 'c0'], {'pixel_values': pixels}) + [None]

    def step(self, ids, h, c, feats, ctx=None):
        """-> logits, h_out, c_out and the next glimpse where the decoder carries it (else None)."""
        if self.carried:
            return self.dec.run(['logits', 'h_out', 'c_out', 'context_out'], step_feeds(self.dec, ids, h, c, feats, ctx))
        return self.dec.run(['logits', 'h_out', 'c_out'], step_feeds(self.dec, ids, h, c, feats)) + [None]


# ---- search ------------------------------------------------------------------------------------------------------
def greedy(stepper, pixels, cfg: dict):
    feats, h, c, ctx = stepper.encode(pixels)
    tok, ids, total, margin = cfg['bos_id'], [], 0.0, math.inf
    for _ in range(cfg['max_length']):
        logits, h, c, ctx = stepper.step(np.array([tok], np.int64), h, c, feats, ctx)
        lp = log_softmax64(logits)[0]
        tok = int(np.argmax(lp))                               # first max = lowest id on ties
        margin = min(margin, float(lp[tok] - np.partition(lp, -2)[-2]))
        total += float(lp[tok])
        ids.append(tok)
        if tok == cfg['eos_id']:
            break
    words = [i for i in ids if i != cfg['eos_id']]
    # margin: smallest gap between the chosen and the runner-up log-probability (how safe parity is)
    return {'ids': words, 'score': total / len(ids), 'sum_logprob': total, 'length': len(ids), 'margin': margin}


def beam(stepper, pixels, cfg: dict, k: int | None = None, length_penalty: float | None = None):
    k = k or cfg['beam_size']
    alpha = cfg['length_penalty'] if length_penalty is None else length_penalty
    bos, eos = cfg['bos_id'], cfg['eos_id']
    feats, h, c, ctx = stepper.encode(pixels)                  # batch 1
    live = [([], 0.0)]                                         # (generated ids, sum logp)
    finished = []                                              # (generated ids incl. eos, sum logp)
    margin = math.inf                                          # smallest gap between last kept and first dropped
    for t in range(cfg['max_length']):
        n = len(live)
        last = np.array([ids[-1] if ids else bos for ids, _ in live], np.int64)  # [n]
        logits, h2, c2, ctx2 = stepper.step(last, h, c, feats, ctx)            # feats [n, F] or [n, N, F]
        lp = log_softmax64(logits)                                              # [n, V]
        cand = np.array([s for _, s in live])[:, None] + lp                     # [n, V]
        flat = cand.reshape(-1)
        ranked = np.lexsort((np.arange(flat.size), -flat))                     # by score desc, then index asc
        order = ranked[: k - len(finished)]
        if len(ranked) > len(order):
            margin = min(margin, float(flat[order[-1]] - flat[ranked[len(order)]]))
        new_live, keep_rows = [], []
        for j in order:
            b, tok = divmod(int(j), lp.shape[1])
            ids = live[b][0] + [tok]
            if tok == eos:
                finished.append((ids, float(flat[j])))
            else:
                new_live.append((ids, float(flat[j])))
                keep_rows.append(b)
        if not new_live or len(finished) >= k:
            live = new_live
            break
        rows = np.array(keep_rows)
        live, h, c, feats = new_live, h2[:, rows], c2[:, rows], feats[rows]
        ctx = None if ctx2 is None else ctx2[rows]
    finished.extend(live if len(finished) < k else [])        # max_length reached: unfinished ones count as they are
    best, best_norm = None, -math.inf
    for ids, s in finished:
        norm = s / (len(ids) ** alpha)
        if norm > best_norm:
            best, best_norm = (ids, s), norm
    ids, s = best
    return {'ids': [i for i in ids if i != eos], 'score': best_norm, 'sum_logprob': s, 'length': len(ids),
            'margin': margin}


def decode(ids, vocab):
    return ' '.join(vocab[i] for i in ids)


def main():
    ap = argparse.ArgumentParser(description='Caption images with an exported captioner/ folder (ONNX) or a checkpoint.')
    ap.add_argument('images', nargs='+')
    ap.add_argument('--captioner', help='captioner/ folder (ONNX)')
    ap.add_argument('--checkpoint', help='training checkpoint (.pt) instead of ONNX')
    ap.add_argument('--beam', type=int, default=None, help='beam size; 1 = greedy (default: config beam_size)')
    args = ap.parse_args()
    if args.captioner:
        cfg = json.load(open(os.path.join(args.captioner, 'config.json')))
        vocab = json.load(open(os.path.join(args.captioner, 'vocab.json')))
        stepper = OnnxStepper(args.captioner)
    elif args.checkpoint:
        from caption_export import load_checkpoint
        model, vocab, ck = load_checkpoint(args.checkpoint)
        mc = model.cfg
        cfg, vocab, stepper = mc.to_dict(), ck['vocab'], TorchStepper(model)
    else:
        raise SystemExit('Expected --captioner FOLDER or --checkpoint FILE, got neither')
    for p in args.images:
        px = load_pixels(p, cfg['image_size'], cfg['mean'], cfg['std'])
        k = args.beam if args.beam is not None else cfg['beam_size']
        r = greedy(stepper, px, cfg) if k == 1 else beam(stepper, px, cfg, k)
        print(f'{p}\t{decode(r["ids"], vocab)}\t{r["score"]:.4f}')


if __name__ == '__main__':
    main()
