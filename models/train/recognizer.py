"""The independent recognizer: reads a 64x64 world image and predicts its canonical scene.

Trained ONLY on drawn ground truth (scenes.json of the world's train split, plus every image of the `--extra`
worlds); evaluation uses it to judge generated images, so it must never see one. A judge has to know every
combination it judges: `--extra` takes a world drawn at another seed with `--split compositional`, so the
combinations held out of the captioner's and text-to-image model's training are known to the judge as drawn
pictures (never as generated ones, and never from an evaluation seed). Heads: object count (1-3), axis
(horizontal | vertical, ignored for one object), and per slot (ordered left -> right or top -> bottom, as in the canonical scene) object name, colour ("none" for
emoji and empty slots) and size ("none" for empty slots).

    npm run world -- --out data/world-judge --count 8000 --seed 2 --split compositional
    nice -n 10 python3 models/train/recognizer.py --data data/world --extra data/world-judge --out runs/recognizer \\
        --minutes 40 --export models/builtin/recognizer
    python3 models/train/recognizer.py --smoke

Export: recognizer.onnx (pixel_values float32 [B, 3, H, W] normalised -> count_logits [B, 3], axis_logits [B, 2],
name_logits [B, S, names], color_logits [B, S, colors], size_logits [B, S, sizes]) and config.json with the label
vocabularies, image size and normalisation. Reloaded and compared with PyTorch (max abs difference <= 1e-4).
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import math
import os
import shutil
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checkpoint import save_atomic as atomic_save  # noqa: E402
from caption_model import conv_block  # noqa: E402
from datasets import load_dataset, load_images  # noqa: E402

SLOTS = 3
AXES = ['horizontal', 'vertical']
SIZES = ['none', 'small', 'big']
OUTPUTS = ['count_logits', 'axis_logits', 'name_logits', 'color_logits', 'size_logits']
SMOKE_DATA = os.path.join(HERE, '..', '..', 'tests', 'fixtures', 'caption-datasets', 'world-mini')


def label_vocab(root: str, scenes: dict) -> dict:
    """Names and colours from the world's manifest.json when present, else from the scenes themselves."""
    mpath = os.path.join(root, 'manifest.json')
    if os.path.exists(mpath):
        v = json.load(open(mpath))['vocabulary']
        names, colors = list(v['shapes']) + list(v['emoji']), list(v['colors'])
    else:
        objs = [o for s in scenes.values() for o in s['objects']]
        names = sorted({o['name'] for o in objs})
        colors = sorted({o['color'] for o in objs if o['color']})
    return {'names': ['none'] + names, 'colors': ['none'] + colors, 'sizes': SIZES, 'axes': AXES,
            'counts': [1, 2, 3], 'slots': SLOTS}


def encode_scene(scene: dict, voc: dict) -> list[int]:
    """-> [count-1, axis, name x3, color x3, size x3]; axis -1 (ignored) for one object."""
    objs = scene['objects']
    if not 1 <= len(objs) <= SLOTS:
        raise ValueError(f'Expected one to {SLOTS} objects, got {len(objs)}')
    axis = AXES.index(scene['axis']) if len(objs) > 1 else -1
    names = [voc['names'].index(o['name']) for o in objs] + [0] * (SLOTS - len(objs))
    colors = [voc['colors'].index(o['color'] or 'none') for o in objs] + [0] * (SLOTS - len(objs))
    sizes = [SIZES.index(o['size']) for o in objs] + [0] * (SLOTS - len(objs))
    return [len(objs) - 1, axis] + names + colors + sizes


def decode_scene(count_i: int, axis_i: int, names, colors, sizes, voc: dict) -> dict:
    """Predicted indices -> canonical scene {axis, objects: [{name, color, size}]} (axis null for one object)."""
    n = count_i + 1
    objs = [{'name': voc['names'][names[k]], 'color': None if colors[k] == 0 else voc['colors'][colors[k]],
             'size': SIZES[sizes[k]]} for k in range(n)]
    return {'axis': AXES[axis_i] if n > 1 else None, 'objects': objs}


def canonical(scene: dict) -> dict:
    n = len(scene['objects'])
    return {'axis': scene['axis'] if n > 1 else None,
            'objects': [{'name': o['name'], 'color': o['color'], 'size': o['size']} for o in scene['objects']]}


class Recognizer(nn.Module):
    def __init__(self, voc: dict, image_size=(64, 64), channels=(32, 64, 96, 128), hidden=256, dropout=0.2):
        super().__init__()
        blocks, cin = [], 3
        for c in channels:
            blocks.append(conv_block(cin, c))
            cin = c
        self.cnn = nn.Sequential(*blocks)
        k = 2 ** len(channels)
        cells = (image_size[0] // k) * (image_size[1] // k)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * cells, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.n_names, self.n_colors = len(voc['names']), len(voc['colors'])
        self.count = nn.Linear(hidden, 3)
        self.axis = nn.Linear(hidden, 2)
        self.slots = nn.Linear(hidden, SLOTS * (self.n_names + self.n_colors + len(SIZES)))

    def forward(self, pixel_values):                    # [B, 3, H, W]
        h = self.fc(self.cnn(pixel_values))             # [B, hidden]
        s = self.slots(h).view(-1, SLOTS, self.n_names + self.n_colors + len(SIZES))  # [B, S, names+colors+sizes]
        nn_, nc = self.n_names, self.n_colors
        return (self.count(h), self.axis(h),            # [B, 3], [B, 2]
                s[:, :, :nn_], s[:, :, nn_:nn_ + nc], s[:, :, nn_ + nc:])  # [B, S, names], [B, S, colors], [B, S, 3]


def loss_fn(out, y):
    """y [B, 11] from encode_scene; empty slots are trained to predict 'none'."""
    count, axis, names, colors, sizes = out
    l = F.cross_entropy(count, y[:, 0]) + F.cross_entropy(axis, y[:, 1], ignore_index=-1)
    l = l + F.cross_entropy(names.reshape(-1, names.shape[-1]), y[:, 2:5].reshape(-1))
    l = l + F.cross_entropy(colors.reshape(-1, colors.shape[-1]), y[:, 5:8].reshape(-1))
    return l + F.cross_entropy(sizes.reshape(-1, sizes.shape[-1]), y[:, 8:11].reshape(-1))


def scene_correct(out, y) -> torch.Tensor:
    """[B] bool: the predicted canonical scene equals the drawn one (count, axis if >1, every used slot)."""
    count, axis, names, colors, sizes = (o.argmax(-1) for o in out)
    ok = count == y[:, 0]
    ok &= (axis == y[:, 1]) | (y[:, 1] < 0)
    used = torch.arange(SLOTS, device=y.device)[None, :] <= y[:, :1]                               # [B, S]
    slot_ok = (names == y[:, 2:5]) & (colors == y[:, 5:8]) & (sizes == y[:, 8:11])  # [B, S]
    return ok & (slot_ok | ~used).all(1)


class SceneSet:
    def __init__(self, ds, records, scenes, voc, image_size, cache):
        self.images = torch.from_numpy(load_images(ds, records, image_size, cache))     # [N, H, W, 3] uint8
        self.y = torch.tensor([encode_scene(scenes[r.file], voc) for r in records])       # [N, 11]

    def __len__(self):
        return len(self.y)

    def extend(self, other: 'SceneSet') -> 'SceneSet':
        self.images, self.y = torch.cat([self.images, other.images]), torch.cat([self.y, other.y])
        return self

    def batch(self, idx, mean, std):
        x = self.images[idx].permute(0, 3, 1, 2).float() / 255.0                         # [B, 3, H, W]
        return (x - mean) / std, self.y[idx]


def accuracy(model, data: SceneSet, mean, std) -> float:
    modes = {m: m.training for m in model.modules()}                 # frozen BatchNorms stay in eval mode
    model.eval()
    right = 0
    with torch.no_grad():
        for s in range(0, len(data), 256):
            x, y = data.batch(torch.arange(s, min(s + 256, len(data))), mean.cpu(), std.cpu())
            x, y = x.to(mean.device), y.to(mean.device)
            right += int(scene_correct(model(x), y).sum())
    for m, training in modes.items():
        m.train(training)
    return right / max(len(data), 1)


def load_exported(model: Recognizer, folder: str) -> None:
    """Start from an exported recognizer/ folder. The export folded each BatchNorm into the convolution before it
    (a bias appears), so the convolutions take the folded weights and each BatchNorm becomes the identity plus
    that bias; train with the BatchNorms in eval mode (`freeze_norms`) so they stay so."""
    import onnx
    from onnx import numpy_helper
    path = os.path.join(folder, 'recognizer.onnx')
    if not os.path.isfile(path):
        raise SystemExit(f'--init-from: expected an exported recognizer at {path}, found none')
    graph = onnx.load(path).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    convs = [m for m in model.cnn.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.cnn.modules() if isinstance(m, nn.BatchNorm2d)]
    folded = [n for n in graph.node if n.op_type == 'Conv']
    shapes = [tuple(inits[n.input[1]].shape) for n in folded]
    if shapes != [tuple(c.weight.shape) for c in convs]:
        raise SystemExit(f'{path}: expected convolutions {[tuple(c.weight.shape) for c in convs]} (--channels), '
                         f'the graph has {shapes}')
    with torch.no_grad():
        for conv, norm, node in zip(convs, norms, folded):
            conv.weight.copy_(inits[node.input[1]])
            norm.weight.fill_(1.0)
            norm.bias.copy_(inits[node.input[2]])
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        for name, p in model.named_parameters():
            if not name.startswith('cnn.'):
                p.copy_(inits[name])


def freeze_norms(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def export(model: Recognizer, conf: dict, out: str) -> float:
    model = model.eval()
    H, W = conf['image_size']
    px = torch.randn(3, 3, H, W, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(px)
    tmp = out.rstrip('/') + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (px,), os.path.join(tmp, 'recognizer.onnx'), input_names=['pixel_values'],
                          output_names=OUTPUTS, dynamic_axes={n: {0: 'batch'} for n in ['pixel_values'] + OUTPUTS},
                          opset_version=17, dynamo=False)
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
        json.dump(conf, f, indent=2)
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(tmp, 'recognizer.onnx'), providers=['CPUExecutionProvider'])
    got = sess.run(OUTPUTS, {'pixel_values': px[:2].numpy()})                            # batch 2: dynamic batch
    worst = max(float(np.abs(g - r[:2].numpy()).max()) for g, r in zip(got, ref))
    print(f'export check: max abs difference onnxruntime vs PyTorch = {worst:.3e} (tolerance 1e-4)', flush=True)
    if not worst <= 1e-4:
        raise SystemExit(f'Expected ONNX outputs within 1e-4 of PyTorch, got {worst:.3e}')
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data')
    ap.add_argument('--extra', action='append', default=[], metavar='DIR',
                    help='another world folder (same vocabulary) whose images, every split, are added to training')
    ap.add_argument('--out', default='runs/recognizer')
    ap.add_argument('--export', default=None, help='write the recognizer/ folder here at the end')
    ap.add_argument('--minutes', type=float, default=40, help='budget across resumes: CPU minutes of this process '
                    'on cpu (a busy machine slows the run instead of shortening it), wall minutes on cuda')
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--max-steps', type=int, default=0)
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--channels', type=int, nargs='+', default=[32, 64, 96, 128])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--fresh', action='store_true')
    ap.add_argument('--init-from', default=None, metavar='DIR',
                    help='start from an exported recognizer/ folder (its BatchNorms stay frozen)')
    ap.add_argument('--target', type=float, default=0.98, help='scene accuracy the test split must reach')
    ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--cache', default=None, help='folder holding train-64x64.npy (default --out; the captioner '
                                                 'run folder shares its decoded images)')
    args = ap.parse_args(argv)
    if args.smoke:
        args.data, args.out, args.max_steps, args.channels, args.fresh = SMOKE_DATA, 'runs/recognizer-smoke', 20, [8, 16, 16, 16], True
        args.export, args.target, args.batch_size = args.export or 'runs/recognizer-smoke/recognizer', 0.0, 16
    if not args.data:
        ap.error('--data is required (or --smoke)')
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    os.makedirs(args.out, exist_ok=True)
    ds = load_dataset(args.data)
    scenes = json.load(open(os.path.join(args.data, 'scenes.json')))
    voc = label_vocab(args.data, scenes)
    size = (64, 64)
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    dev = torch.device(args.device)
    mt, st = torch.tensor(mean, device=dev).view(1, 3, 1, 1), torch.tensor(std, device=dev).view(1, 3, 1, 1)
    cache = args.cache or args.out
    train = SceneSet(ds, ds.split('train'), scenes, voc, size, os.path.join(cache, 'train-64x64.npy'))
    test = SceneSet(ds, ds.split('test'), scenes, voc, size, os.path.join(args.out, 'test-64x64.npy'))
    for i, extra in enumerate(args.extra):
        eds = load_dataset(extra)
        escenes = json.load(open(os.path.join(extra, 'scenes.json')))
        if label_vocab(extra, escenes) != voc:
            raise SystemExit(f'Expected {extra} to share the vocabulary of {args.data}')
        recs = list({r.file: r for name in ('train', 'val', 'test', 'compositional') for r in eds.split(name)}.values())
        train.extend(SceneSet(eds, recs, escenes, voc, size, os.path.join(args.out, f'extra{i}-{len(recs)}-64x64.npy')))
        print(f'training on {len(recs)} more images from {extra} ({len(train)} in all)', flush=True)
    comp_recs = ds.split('compositional')
    comp = SceneSet(ds, comp_recs, scenes, voc, size, os.path.join(args.out, 'comp-64x64.npy')) if comp_recs else None
    model = Recognizer(voc, size, tuple(args.channels)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ck = os.path.join(args.out, 'ckpt.pt')
    state = {'step': 0, 'epoch': 0, 'pos': 0, 'elapsed': 0.0}
    if os.path.exists(ck) and not args.fresh:
        saved = torch.load(ck, weights_only=False, map_location=dev)
        model.load_state_dict(saved['model'])
        opt.load_state_dict(saved['optimizer'])
        state = saved['state']
        print(f"resumed at step {state['step']}", flush=True)
    elif args.init_from:
        load_exported(model, args.init_from)
        print(f'starting from {args.init_from}: test scene accuracy {accuracy(model, test, mt, st):.4f}', flush=True)
    if args.init_from:
        freeze_norms(model)

    def done():
        return (args.max_steps and state['step'] >= args.max_steps) or \
            (args.minutes and state['elapsed'] >= args.minutes * 60)

    clock = time.process_time if args.device == 'cpu' else time.time                  # CPU seconds, or wall on cuda
    started, base, last_save = clock(), state['elapsed'], time.time()
    while not done():
        # the order is a function of the epoch, so a resume continues it at `pos`
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(state['epoch']))
        for s in range(state.get('pos', 0), len(train) - args.batch_size + 1, args.batch_size):
            frac = min(1.0, max(state['elapsed'] / (args.minutes * 60) if args.minutes else 0,
                                state['step'] / args.max_steps if args.max_steps else 0))
            for g in opt.param_groups:
                g['lr'] = 1e-5 + 0.5 * (args.lr - 1e-5) * (1 + math.cos(math.pi * frac))
            x, y = train.batch(order[s: s + args.batch_size], mt.cpu(), st.cpu())
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state['step'] += 1
            state['pos'] = s + args.batch_size
            state['elapsed'] = base + clock() - started
            if state['step'] % 50 == 0 or args.smoke:
                print(f"step={state['step']} epoch={state['epoch']} loss={loss.item():.4f} "
                      f"min={state['elapsed'] / 60:.1f}", flush=True)
            if time.time() - last_save > 120:
                atomic_save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'state': dict(state),
                             'vocab': voc}, ck)
                last_save = time.time()
            if done():
                break
        else:
            state['epoch'], state['pos'] = state['epoch'] + 1, 0
            print(f"epoch {state['epoch']}: test scene accuracy {accuracy(model, test, mt, st):.4f}", flush=True)
    atomic_save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'state': dict(state), 'vocab': voc}, ck)
    acc = accuracy(model, test, mt, st)
    comp_acc = accuracy(model, comp, mt, st) if comp else None                 # JSON has no NaN
    report = {'test_scene_accuracy': acc, 'compositional_scene_accuracy': comp_acc, 'test_images': len(test),
              'compositional_images': len(comp) if comp else 0, 'steps': state['step'], 'minutes': state['elapsed'] / 60}
    print(json.dumps(report), flush=True)
    with open(os.path.join(args.out, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    if acc < args.target:
        raise SystemExit(f'Expected test scene accuracy >= {args.target}, got {acc:.4f}: not exported')
    if args.export:
        conf = {'architecture': 'cnn-scene-recognizer', 'image_size': list(size), 'mean': mean, 'std': std,
                'preprocessing': 'RGB (alpha over white), bilinear resize to image_size only if it differs, /255, '
                                 '(x-mean)/std, [B,3,H,W]',
                'inputs': ['pixel_values'], 'outputs': OUTPUTS, 'labels': voc,
                'decoding': 'count = counts[argmax count_logits]; axis = axes[argmax axis_logits] (null when count '
                            'is 1); for slot k < count: name = names[argmax], color = colors[argmax] (none -> null), '
                            'size = sizes[argmax]; slots are ordered left->right (horizontal) or top->bottom',
                'trained_on': 'drawn world images only (scenes.json of the train split'
                              + ''.join(f', every image of {os.path.basename(os.path.normpath(e))}' for e in args.extra) + ')',
                'test_scene_accuracy': acc, 'compositional_scene_accuracy': comp_acc}
        export(model.cpu(), conf, args.export)
        print(f'exported {args.export}', flush=True)


if __name__ == '__main__':
    main()
