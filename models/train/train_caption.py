"""Train the captioner: Adam, cross-entropy with teacher forcing over all five captions of each image.

    nice -n 10 python3 models/train/train_caption.py --data data/world --out runs/captioner --minutes 80 --threads 1
    python3 models/train/train_caption.py --smoke            # a few steps on the fixture world, export, reload

Resumable: `out/ckpt.pt` (model, optimizer, step, data order, RNG, elapsed time, model config, vocabulary) is
written atomically every --save-seconds and at the end; running the same command again continues where a kill -9
left off (the --minutes budget counts CPU time across resumes). `out/best.pt` keeps the lowest validation loss.
Horizontal flips are not used as augmentation: they would swap "left" and "right".
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checkpoint import save_atomic as atomic_save  # noqa: E402
from caption_model import CaptionConfig, build_captioner, count_params  # noqa: E402
from datasets import BOS, EOS, PAD, build_vocab, encode, frequency_report, load_dataset, load_images, tokenize  # noqa: E402

SMOKE_DATA = os.path.join(HERE, '..', '..', 'tests', 'fixtures', 'caption-datasets', 'world-mini')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', help='dataset folder (Flickr8k / Flickr30k / world) or Karpathy .json')
    ap.add_argument('--out', default='runs/captioner')
    ap.add_argument('--fresh', action='store_true', help='ignore an existing checkpoint in --out')
    ap.add_argument('--smoke', action='store_true', help='tiny run on the fixture world, then export and reload')
    # budget
    ap.add_argument('--minutes', type=float, default=0,
                    help='training budget in minutes across resumes (0 = none): CPU minutes of this process with '
                         '--device cpu (a busy machine slows the run instead of shortening it), wall minutes on cuda')
    ap.add_argument('--max-steps', type=int, default=0)
    # data
    ap.add_argument('--image-size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                    help='default 64 64 for scratch and factorized, 224 224 for vgg16')
    ap.add_argument('--min-count', type=int, default=1)
    ap.add_argument('--max-words', type=int, default=29, help='captions longer than this are cut')
    ap.add_argument('--captions-per-image', type=int, default=5)
    ap.add_argument('--batch-size', type=int, default=32, help='images per step (x captions-per-image sequences)')
    ap.add_argument('--val-images', type=int, default=500)
    ap.add_argument('--cache', default=None, help='folder for decoded-image .npy caches (default: --out)')
    # model
    ap.add_argument('--backbone', default='scratch', choices=['scratch', 'factorized', 'vgg16'],
                    help='scratch: conv blocks from scratch; factorized: the world\'s two streams, shapes from a '
                         'colour-blind ink map, colours per pixel (caption_world.py); vgg16: VGG16\'s convolutions, '
                         'from --backbone-weights')
    ap.add_argument('--backbone-weights', default=None, help='local VGG16 state dict (torchvision layout: the whole model or its features) for --backbone vgg16')
    ap.add_argument('--channels', type=int, nargs='+', default=[32, 64, 96, 128])
    ap.add_argument('--feature-dim', type=int, default=256)
    ap.add_argument('--embed-dim', type=int, default=64)
    ap.add_argument('--hidden-size', type=int, default=256)
    ap.add_argument('--num-layers', type=int, default=1)
    ap.add_argument('--dropout', type=float, default=0.2)
    ap.add_argument('--attention', action='store_true')
    ap.add_argument('--colour-channels', type=int, default=16, help='width of the factorized backbone\'s colour stream')
    ap.add_argument('--shared-input-words', nargs='*', default=[], metavar='WORD',
                    help='words the decoder reads as one (they share the first one\'s input embedding; outputs stay '
                         'distinct): with the colour words, the word after a colour cannot lean on which colour it '
                         'was, so a shape seen only with other colours still follows (unseen colour-shape '
                         'combinations). The export copies the shared row to each word, so the graph is unchanged')
    ap.add_argument('--max-length', type=int, default=30, help='generation limit (tokens, <eos> included)')
    ap.add_argument('--beam-size', type=int, default=3)
    # optimisation
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--min-lr', type=float, default=1e-4, help='cosine decay to this over the budget')
    ap.add_argument('--weight-decay', type=float, default=0.0)
    ap.add_argument('--clip', type=float, default=5.0)
    ap.add_argument('--patience', type=int, default=0, help='stop after this many evals without val improvement (0 = off)')
    ap.add_argument('--eval-every', type=int, default=200)
    ap.add_argument('--log-every', type=int, default=20)
    ap.add_argument('--save-seconds', type=float, default=120)
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--init-from', default=None,
                    help='start from an exported captioner/ folder (its model and vocabulary; BatchNorm stays frozen, '
                         'as the export folded it into the convolutions) or a checkpoint .pt of this script')
    ap.add_argument('--encoder-from', default=None,
                    help='start the CNN from this checkpoint .pt of this script or captioner/ folder (same CNN '
                         'settings); the rest starts fresh. Stage 2 of the builtin recipe: the encoder a factorized '
                         'run learned, under an attention decoder')
    ap.add_argument('--freeze-encoder', action='store_true',
                    help='keep the CNN as it is (needs --encoder-from): its grid is computed once per image '
                         '(cached in --out), and only the projection and decoder train')
    ap.add_argument('--fine-grid', action='store_true',
                    help='with --backbone factorized --attention: attend over cells twice as fine per side (the last conv '
                         'block\'s input grid), each with the colour of that smaller cell; the CNN\'s weights are '
                         'the same, so a coarse run\'s encoder is read by --encoder-from as it is')
    ap.add_argument('--colour-words', nargs='*', default=[], metavar='WORD',
                    help='with --backbone factorized --attention: each cell\'s features are a shape half and a colour '
                         'half; these words are told apart by the colour half alone (the LSTM gives them one score), '
                         'through an output layer of their own; the LSTM, its initial state and the attention read '
                         'only the shape half (caption_world.py)')
    ap.add_argument('--colour-blind-words', nargs='*', default=[], metavar='WORD',
                    help='with --colour-words: no colour feature reaches these words\' scores, so a shape word '
                         'never depends on the colour it was seen in (other words, the emoji names, may use colour)')
    ap.add_argument('--export', default=None, help='export the best checkpoint to this captioner/ folder at the end')
    args = ap.parse_args(argv)
    if args.smoke:
        args.data = args.data or SMOKE_DATA
        args.out = args.out if args.out != 'runs/captioner' else os.path.join('runs', 'captioner-smoke')
        args.fresh, args.max_steps, args.batch_size, args.eval_every, args.log_every = True, 30, 8, 15, 5
        args.channels, args.feature_dim, args.hidden_size, args.embed_dim = [8, 16, 16, 16], 32, 32, 16
        args.export = os.path.join(args.out, 'captioner') if args.export is None else args.export
    if not args.data:
        ap.error('--data is required (or --smoke)')
    if args.freeze_encoder and not args.encoder_from:
        ap.error('--freeze-encoder needs --encoder-from (the encoder to keep)')
    if args.image_size is None:
        args.image_size = {'scratch': [64, 64], 'factorized': [64, 64], 'vgg16': [224, 224]}[args.backbone]
    if args.backbone in ('scratch', 'factorized'):
        args.mean, args.std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    else:                                      # ImageNet statistics for the pretrained backbones
        args.mean, args.std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    return args


def log(out: str, rec: dict) -> None:
    print(' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in rec.items()), flush=True)
    with open(os.path.join(out, 'log.jsonl'), 'a') as f:
        f.write(json.dumps(rec) + '\n')


class Split:
    """Images as uint8 [N, H, W, 3] plus token ids [N, K, T] (K captions per image, padded with <pad>)."""

    def __init__(self, ds, records, vocab_index, args, cache_name):
        cache = os.path.join(args.cache or args.out, f'{cache_name}-{args.image_size[0]}x{args.image_size[1]}.npy')
        self.images = torch.from_numpy(load_images(ds, records, tuple(args.image_size), cache))  # [N, H, W, 3]
        K, T = args.captions_per_image, args.max_words + 1
        ids = np.full((len(records), K, T + 1), PAD, np.int64)     # <bos> w1..wn <eos> <pad>...
        for i, r in enumerate(records):
            caps = [tokenize(c) for c in r.captions] or [[]]
            for k in range(K):
                toks = encode(caps[k % len(caps)][: args.max_words], vocab_index)   # fewer than K: repeat
                seq = [BOS] + toks + [EOS]
                ids[i, k, : len(seq)] = seq
        self.ids = torch.from_numpy(ids)                            # [N, K, T+1]
        self.files = [r.file for r in records]
        self.grid = None                                            # --freeze-encoder: the CNN's outputs [N, C, h, w]

    def __len__(self):
        return self.images.shape[0]

    def batch(self, idx, mean, std, device):
        if self.grid is not None:                                   # a frozen encoder's cached grid
            x = self.grid[idx.to(self.grid.device)].to(device).float()
        else:
            x = self.images[idx.to(self.images.device)].to(device).permute(0, 3, 1, 2).float() / 255.0  # [B,3,H,W]
            x = (x - mean) / std
        seq = self.ids[idx]                                         # [B, K, T+1]
        L = int((seq != PAD).sum(-1).max())                         # trim to the longest caption in the batch
        seq = seq[:, :, :L].reshape(-1, L).to(device)               # [B*K, L]
        return x, seq[:, :-1], seq[:, 1:]                           # inputs, targets [B*K, L-1]


def load_captioner(path: str):
    """(model, vocabulary) of an exported captioner/ folder or a checkpoint .pt of this script."""
    if os.path.isdir(path):
        from caption_onnx_weights import load_folder
        return load_folder(path)
    from caption_export import load_checkpoint
    model, vocab, _ = load_checkpoint(path)
    return model, vocab


def load_encoder(path: str, model) -> None:
    """Copy the CNN of a checkpoint or exported folder into `model` (--encoder-from)."""
    src, _ = load_captioner(path)
    try:
        model.cnn.load_state_dict(src.cnn.state_dict())
    except RuntimeError as e:
        raise SystemExit(f'Expected --encoder-from {path} to have this run\'s encoder (--backbone, --channels, '
                         f'--colour-channels as there), got: {str(e).splitlines()[0]}')
    print(f'encoder from {path}', flush=True)


def encoder_grid(cnn, split, name: str, out: str, mean, std, device):
    """The frozen CNN's outputs for every image of a split, float16 [N, C, h, w]; cached in `out` under a key of
    the CNN's weights, so a resume reads them back instead of recomputing."""
    key = [len(split), list(split.images.shape[1:3]), bool(getattr(cnn, 'fine', False))]
    key += [round(float(t.double().abs().sum()), 6) for t in cnn.state_dict().values()]
    path = os.path.join(out, f'encoder-{name}.pt')
    if os.path.exists(path):
        saved = torch.load(path, map_location='cpu', weights_only=False)
        if saved['key'] == key:
            return saved['grid'].to(device)
    started, outs = time.time(), []
    with torch.no_grad():
        for s in range(0, len(split), 32):                     # small batches: several times faster on CPU
            x = split.images[s: s + 32].to(device).permute(0, 3, 1, 2).float() / 255.0
            outs.append(cnn((x - mean) / std).half())
    grid = torch.cat(outs)
    atomic_save({'key': key, 'grid': grid.cpu()}, path)
    print(f'encoded {len(split)} {name} images with the frozen encoder ({time.time() - started:.0f} s)', flush=True)
    return grid


def evaluate(model, split, args, mean, std, device, limit, remap):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, min(len(split), limit), 64):
            idx = torch.arange(s, min(s + 64, len(split), limit))
            x, inp, tgt = split.batch(idx, mean, std, device)
            logits = model(x, remap[inp], args.captions_per_image)  # [B*K, L-1, V]
            total += F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD, reduction='sum').item()
            count += int((tgt != PAD).sum())
    model.train()
    return total / max(count, 1)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path, best_path = os.path.join(args.out, 'ckpt.pt'), os.path.join(args.out, 'best.pt')
    if args.fresh:
        for p in (ckpt_path, best_path, os.path.join(args.out, 'log.jsonl')):
            if os.path.exists(p):
                os.remove(p)
    resume = torch.load(ckpt_path, map_location='cpu', weights_only=False) if os.path.exists(ckpt_path) else None

    # data and vocabulary (the vocabulary comes from the checkpoint on resume, so ids never shift)
    ds = load_dataset(args.data)
    train_recs, val_recs = ds.split('train'), ds.split('val')
    if not train_recs:
        raise SystemExit(f'Expected training images in {args.data}, got none')
    init_model = None
    if resume:
        vocab = resume['vocab']
    elif args.init_from:
        init_model, vocab = load_captioner(args.init_from)
        print(f'starting from {args.init_from} ({count_params(init_model) / 1e6:.2f}M params, vocabulary {len(vocab)})', flush=True)
    else:
        vocab, counts = build_vocab((tokenize(c) for r in train_recs for c in r.captions), args.min_count)
        report = frequency_report(counts, vocab, args.min_count)
        with open(os.path.join(args.out, 'words.txt'), 'w') as f:
            f.write(report + '\n')
        print(report.split('\n')[0], flush=True)
    index = {w: i for i, w in enumerate(vocab)}
    missing = [w for w in args.shared_input_words if w not in index]
    if missing:
        raise SystemExit(f'Expected every --shared-input-words word in the vocabulary, got unknown {", ".join(missing)}')
    shared = [index[w] for w in args.shared_input_words]
    unknown = [w for w in args.colour_words + args.colour_blind_words if w not in index]
    if unknown:
        raise SystemExit(f'Expected every --colour-words and --colour-blind-words word in the vocabulary, got unknown '
                         f'{", ".join(unknown)}')
    remap = torch.arange(len(vocab), device=device)               # input id -> the id whose embedding it reads
    if shared:
        remap[shared[1:]] = shared[0]
    train = Split(ds, train_recs, index, args, 'train')
    val = Split(ds, val_recs[: args.val_images], index, args, 'val') if val_recs else None
    if device.type == 'cuda':                                      # keep the uint8 images on the GPU: no copies
        for sp in (train, val):
            if sp is not None:
                sp.images = sp.images.to(device)

    # model
    if resume:
        cfg = CaptionConfig.from_dict(resume['model_config'])
    elif init_model is not None:
        cfg = init_model.cfg
    else:
        cfg = CaptionConfig(vocab_size=len(vocab), image_size=tuple(args.image_size), channels=tuple(args.channels),
                            feature_dim=args.feature_dim, embed_dim=args.embed_dim, hidden_size=args.hidden_size,
                            num_layers=args.num_layers, dropout=args.dropout, attention=args.attention,
                            colour_channels=args.colour_channels, fine_grid=args.fine_grid,
                            colour_words=tuple(index[w] for w in args.colour_words),
                            colour_blind_words=tuple(index[w] for w in args.colour_blind_words),
                            backbone=args.backbone,
                            mean=tuple(args.mean), std=tuple(args.std), max_length=args.max_length,
                            beam_size=args.beam_size)
    torch.manual_seed(args.seed)
    model = build_captioner(cfg, None if resume else args.backbone_weights).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    state = {'step': 0, 'epoch': 0, 'pos': 0, 'elapsed': 0.0, 'best_val': math.inf, 'bad_evals': 0,
             'frozen_bn': bool(init_model is not None and os.path.isdir(args.init_from))}
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
    if args.encoder_from and not resume:
        load_encoder(args.encoder_from, model)
    if resume:
        model.load_state_dict(resume['model'])
        opt.load_state_dict(resume['optimizer'])
        state = resume['state']
        torch.set_rng_state(resume['rng']['torch'])
        random.setstate(resume['rng']['python'])
        print(f"resumed at step {state['step']} (epoch {state['epoch']}, {state['elapsed'] / 60:.1f} min)", flush=True)
    def tie(start: bool = False) -> None:
        # the shared words' rows all become the first's (at a fresh start: their mean), so the model as saved and
        # exported reads them as training did
        if len(shared) > 1:
            with torch.no_grad():
                w = model.embed.weight
                if start:
                    w[shared[0]] = w[shared].mean(0)
                w[shared[1:]] = w[shared[0]].clone()
    if not resume:
        tie(start=True)
    print(f'model {count_params(model) / 1e6:.2f}M params, vocab {len(vocab)}, train {len(train)} images, '
          f'val {len(val) if val else 0}, device {device}, threads {args.threads}', flush=True)
    mean = torch.tensor(cfg.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=device).view(1, 3, 1, 1)
    frozen = None
    if args.freeze_encoder:
        # the CNN runs once per image, here; training then reads its grid (model.cnn is an identity meanwhile)
        frozen = model.cnn.eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        for sp, name in ((train, 'train'), (val, 'val')):
            if sp is not None:
                sp.grid = encoder_grid(frozen, sp, name, args.out, mean, std, device)
        model.cnn = torch.nn.Identity()

    def model_state():
        if frozen is None:
            return model.state_dict()
        model.cnn = frozen                                         # the checkpoint holds the whole captioner
        sd = model.state_dict()
        model.cnn = torch.nn.Identity()
        return sd

    def checkpoint(path):
        tie()
        atomic_save({'model': model_state(), 'optimizer': opt.state_dict(), 'model_config': cfg.to_dict(),
                     'vocab': vocab, 'state': dict(state), 'args': vars(args),
                     'rng': {'torch': torch.get_rng_state(), 'python': random.getstate()}}, path)

    def budget_fraction():
        fr = []
        if args.minutes:
            fr.append(state['elapsed'] / (args.minutes * 60))
        if args.max_steps:
            fr.append(state['step'] / args.max_steps)
        return max(fr) if fr else 0.0

    # train (BatchNorm of a folder start stays in eval mode: its statistics were folded away at export)
    bn_frozen = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)] if state.get('frozen_bn') else []
    if bn_frozen:
        for m in bn_frozen:
            m.weight.requires_grad_(False)      # the scale is 1; the bias carries the folded conv bias and learns

    def train_mode():
        model.train()
        for m in bn_frozen:
            m.eval()
    train_mode()
    # the budget clock: CPU time on CPU (a busy machine slows the run instead of cutting it), wall time on CUDA
    clock = time.process_time if device.type == 'cpu' else time.time
    started, last_save, last_log = clock(), time.time(), time.time()
    base_elapsed, tokens = state['elapsed'], 0
    stop = ''
    while not stop:
        # the epoch's order is a function of (seed, epoch), so a resume continues the same order at `pos`
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed * 1000 + state['epoch']))
        while state['pos'] + args.batch_size <= len(train):
            frac = budget_fraction()
            if frac >= 1:
                stop = 'budget'
                break
            lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(frac, 1.0)))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = order[state['pos']: state['pos'] + args.batch_size]
            x, inp, tgt = train.batch(idx, mean, std, device)          # [B,3,H,W], [B*K, L-1] x2
            inp = remap[inp]
            logits = model(x, inp, args.captions_per_image)           # [B*K, L-1, V]
            loss = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            state['step'] += 1
            state['pos'] += args.batch_size
            tokens += int((tgt != PAD).sum())
            state['elapsed'] = base_elapsed + clock() - started
            if state['step'] % args.log_every == 0:
                now = time.time()
                log(args.out, {'step': state['step'], 'epoch': state['epoch'] + state['pos'] / len(train),
                               'loss': loss.item(), 'lr': lr, 'tok_s': tokens / max(now - last_log, 1e-9),
                               'min': state['elapsed'] / 60})
                tokens, last_log = 0, now
            if val is not None and state['step'] % args.eval_every == 0:
                vl = evaluate(model, val, args, mean, std, device, args.val_images, remap)
                improved = vl < state['best_val']
                state['best_val'] = min(vl, state['best_val'])
                state['bad_evals'] = 0 if improved else state['bad_evals'] + 1
                train_mode()
                log(args.out, {'step': state['step'], 'val_loss': vl, 'best': state['best_val']})
                if improved:
                    checkpoint(best_path)
                if args.patience and state['bad_evals'] >= args.patience:
                    stop = 'early stopping'
                    break
            if time.time() - last_save > args.save_seconds:
                checkpoint(ckpt_path)
                last_save = time.time()
        if not stop:
            state['epoch'], state['pos'] = state['epoch'] + 1, 0
    if val is not None:
        vl = evaluate(model, val, args, mean, std, device, args.val_images, remap)
        if vl < state['best_val'] or not os.path.exists(best_path):
            state['best_val'] = min(vl, state['best_val'])
            checkpoint(best_path)
        log(args.out, {'step': state['step'], 'val_loss': vl, 'best': state['best_val']})
    checkpoint(ckpt_path)
    print(f"stopped ({stop}) at step {state['step']}, {state['elapsed'] / 60:.1f} min", flush=True)

    if args.export:
        from caption_export import export, load_checkpoint
        m, v, _ = load_checkpoint(best_path if os.path.exists(best_path) else ckpt_path)
        export(m, v, args.export)
        print(f'exported {args.export}', flush=True)
        if args.smoke:
            smoke_check(args.export, ds, val_recs or train_recs)


def smoke_check(folder, ds, records):
    """Reload the export and caption two images with greedy and beam search on ONNX."""
    from caption_beam import OnnxStepper, beam, decode, greedy, load_pixels
    conf = json.load(open(os.path.join(folder, 'config.json')))
    vocab = json.load(open(os.path.join(folder, 'vocab.json')))
    st = OnnxStepper(folder)
    for r in records[:2]:
        px = load_pixels(ds.path(r), conf['image_size'], conf['mean'], conf['std'])
        g, b = greedy(st, px, conf), beam(st, px, conf)
        print(f'{r.file}: greedy "{decode(g["ids"], vocab)}" | beam "{decode(b["ids"], vocab)}"', flush=True)
    print('smoke ok', flush=True)


if __name__ == '__main__':
    main()
