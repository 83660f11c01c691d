"""Make the tiny random-weight captioner fixture (tests/fixtures/tiny-captioner/) and its parity.json.

    python3 models/train/caption_fixture.py --out tests/fixtures/tiny-captioner

writes the plain CNN-LSTM at the root of --out, the attention variant (features [B, N, F + A]: the cells, then their attention keys; its step graph reads them once
per image through `feature_rows`) in --out/attention/, and in --out/glimpse/ the attention variant that also attends
after the LSTM, as the builtin captioner does (`reads_ahead`), so its export carries the glimpse from step to step
(decoder input `context`, outputs `context_out`; the encoder's `context0`; models/README.md). `--variant` makes one.

Deterministic: fixed seed, fixed vocabulary, two small PNGs drawn here at the model's image_size (so no resize
happens on either side). parity.json holds, per image, the preprocessed pixel statistics, the first encoder
outputs and first-step logits, and the greedy and beam-3 results of caption_beam.py run on the exported ONNX graphs
(and cross-checked against PyTorch).
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caption_beam import OnnxStepper, TorchStepper, beam, greedy, load_pixels, log_softmax64  # noqa: E402
from caption_export import export  # noqa: E402
from caption_model import Captioner, CaptionConfig, init_weights  # noqa: E402

VOCAB = ['<pad>', '<bos>', '<eos>', '<unk>', 'a', 'the', 'small', 'big', 'red', 'green', 'blue', 'yellow',
         'circle', 'square', 'triangle', 'cat', 'dog', 'star', 'to', 'left', 'right', 'of', 'above', 'below',
         'and', 'next', 'on']


CAPTIONS = ['a small red circle to the left of a green triangle', 'a blue square above a small green triangle']


def draw_images(folder: str, size: tuple[int, int]) -> list[str]:
    from PIL import Image, ImageDraw
    H, W = size
    names = []
    specs = [((255, 255, 255), 'ellipse', (220, 40, 40), (3, 10, 13, 20)),     # red circle on the left
             ((240, 240, 230), 'rectangle', (40, 60, 220), (14, 4, 28, 18))]   # blue square, top right
    for i, (bg, shape, col, box) in enumerate(specs):
        im = Image.new('RGB', (W, H), bg)
        d = ImageDraw.Draw(im)
        getattr(d, shape)(box, fill=col)
        d.polygon([(W - 10, H - 2), (W - 2, H - 2), (W - 6, H - 10)], fill=(30, 160, 60))  # a green triangle
        name = f'image-{i}.png'
        im.save(os.path.join(folder, name))
        names.append(name)
    return names


class GlimpseCaptioner(Captioner):
    """The attention captioner that attends again after the LSTM, for the next step (its words are read as the base
    class reads them): what the export carries from step to step."""
    reads_ahead = True


def make(out: str, attention: bool, seed: int = 1234, train_steps: int = 15, glimpse: bool = False) -> dict:
    torch.manual_seed(seed)
    cfg = CaptionConfig(vocab_size=len(VOCAB), image_size=(32, 32), channels=(8, 16), feature_dim=16, embed_dim=8,
                        hidden_size=16, num_layers=2, dropout=0.0, attention=attention, attention_dim=8,
                        mean=(0.5, 0.45, 0.4), std=(0.25, 0.25, 0.3), max_length=8, beam_size=3, length_penalty=1.0)
    model = GlimpseCaptioner(cfg) if glimpse else Captioner(cfg)
    init_weights(model, seed)
    os.makedirs(out, exist_ok=True)
    names = draw_images(out, cfg.image_size)
    pixels = [load_pixels(os.path.join(out, n), cfg.image_size, cfg.mean, cfg.std) for n in names]
    # a few Adam steps towards one caption per image: random weights alone give near-uniform, repetitive output;
    # part-trained weights give captions that end with <eos>, beams that differ from greedy, and clear margins
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.from_numpy(np.concatenate(pixels))                                  # [2, 3, H, W]
    seqs = [[VOCAB.index(w) for w in c.split()] for c in CAPTIONS]
    T = max(len(s) for s in seqs) + 1
    inp = torch.tensor([[cfg.bos_id] + s + [0] * (T - 1 - len(s)) for s in seqs])  # [2, T]
    tgt = torch.tensor([s + [cfg.eos_id] + [0] * (T - 1 - len(s)) for s in seqs])  # [2, T]
    model.train()
    for _ in range(train_steps):
        loss = torch.nn.functional.cross_entropy(model(x, inp).transpose(1, 2), tgt, ignore_index=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    images_tmp = {n: open(os.path.join(out, n), 'rb').read() for n in names}
    report = export(model.eval(), VOCAB, out)                                     # replaces the folder
    for n, b in images_tmp.items():
        open(os.path.join(out, n), 'wb').write(b)
    conf = json.load(open(os.path.join(out, 'config.json')))
    onnx_s, torch_s = OnnxStepper(out), TorchStepper(model)
    images = []
    for name in names:
        px = load_pixels(os.path.join(out, name), conf['image_size'], conf['mean'], conf['std'])  # [1, 3, H, W]
        feats, h0, c0, ctx0 = onnx_s.encode(px)
        logits0 = onnx_s.step(np.array([conf['bos_id']], np.int64), h0, c0, feats, ctx0)[0]
        entry = {'file': name,
                 'pixel_values': {'shape': list(px.shape), 'sum': float(px.sum(dtype=np.float64)),
                                  'first': px.reshape(-1)[:8].tolist()},
                 'features_first': feats.reshape(-1)[:8].tolist(),
                 'h0_first': h0.reshape(-1)[:8].tolist(),
                 'first_step_logprobs': log_softmax64(logits0)[0].tolist()}
        for label, fn in (('greedy', lambda s: greedy(s, px, conf)), ('beam', lambda s: beam(s, px, conf, 3))):
            r, rt = fn(onnx_s), fn(torch_s)
            if r['ids'] != rt['ids'] or abs(r['score'] - rt['score']) > 1e-4:
                raise SystemExit(f'{label} on {name}: ONNX {r} and PyTorch {rt} disagree')
            entry[label] = {'ids': r['ids'], 'tokens': [VOCAB[i] for i in r['ids']], 'score': r['score'],
                            'sum_logprob': r['sum_logprob'], 'length': r['length'], 'margin': r['margin'],
                            'ended_with_eos': None}
            entry[label]['ended_with_eos'] = r['length'] > len(r['ids'])
        entry['beam']['beam_size'] = 3
        entry['beam']['length_penalty'] = conf['length_penalty']
        images.append(entry)
    parity = {'made_by': 'models/train/caption_fixture.py --variant ' + ('glimpse' if glimpse else 'attention' if attention else 'plain'),
              'seed': seed, 'train_steps': train_steps, 'tolerance': {'logprob': 1e-4, 'score': 1e-4},
              'export_max_abs_diff': report['max_abs_diff'], 'images': images}
    with open(os.path.join(out, 'parity.json'), 'w') as f:
        json.dump(parity, f, indent=2)
    return parity


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--train-steps', type=int, default=15, help='15 gives <eos> and max_length endings, beam != greedy')
    ap.add_argument('--variant', choices=['plain', 'attention', 'glimpse'], action='append',
                    help='make only this variant (repeatable; default: all three)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    readme = os.path.join(args.out, 'README.md')
    kept = open(readme).read() if os.path.exists(readme) else None      # export replaces the folder
    # seeds picked so that every image's beam-3 differs from greedy or ends differently, with margins >= 0.005
    variants = (('plain', False, False, args.out, 5), ('attention', True, False, os.path.join(args.out, 'attention'), 1234),
                ('glimpse', True, True, os.path.join(args.out, 'glimpse'), 99))
    for name, attention, glimpse, out, seed in variants:
        if args.variant and name not in args.variant:
            continue
        p = make(out, attention, seed=seed, train_steps=args.train_steps, glimpse=glimpse)
        for im in p['images']:
            print(out, im['file'], 'greedy', im['greedy']['tokens'], f"{im['greedy']['score']:.4f}",
                  '| beam', im['beam']['tokens'], f"{im['beam']['score']:.4f}")
    if kept is not None:
        open(readme, 'w').write(kept)


if __name__ == '__main__':
    main()
