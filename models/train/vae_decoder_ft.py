"""Fine-tune the VAE decoder of a trained text-to-image checkpoint with its encoder frozen.

The encoder, and so the latent space the UNet was trained in, stays exactly as it was (Stable Diffusion's ft-EMA and
ft-MSE decoders were made the same way), so the new decoder drops into the trained model with nothing else retrained.
The loss is train_t2i.py stage 1's (L1 + L2 + 0.5 * L1 of image gradients) with every pixel weighted by
1 + --object-weight * objectness, where objectness is how strongly a pixel is inked (1 - min(R, G, B), ramped from 0.35
to 0.65): drawn objects are saturated or dark and the backgrounds light tints, so the decoder's capacity goes to the
small objects whose identity was lost (a small house decoded as a banana) rather than to the backgrounds' noise.
Decoded from posterior samples (mean + std * noise), as the UNet's training targets are.

    python3 models/train/vae_decoder_ft.py --ckpt runs/t2i/t2i.pt --data data/world --out runs/vae-dec --minutes 40

Checkpoints (`vae_dec.pt`) every --ckpt-minutes carry the optimizer and the step; after `kill -9` the same command
resumes. The budget is CPU time on the CPU (a busy machine slows the run instead of shortening it), wall time on
CUDA. At the end
`t2i.pt` in --out is the input checkpoint with the new decoder, ready for export_t2i.py.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world_data  # noqa: E402
from sd_model import AutoencoderKL, VAEConfig, config_from_dict  # noqa: E402
from checkpoint import save_atomic  # noqa: E402
from train_t2i import log  # noqa: E402


def objectness(x: torch.Tensor) -> torch.Tensor:
    """x [B, 3, H, W] in [-1, 1] -> [B, 1, H, W] in [0, 1]: 1 on inked (object) pixels, 0 on light backgrounds."""
    ink = 1.0 - (x.min(dim=1, keepdim=True).values + 1.0) / 2.0
    return ((ink - 0.35) / 0.3).clamp(0.0, 1.0)


def recon_loss(rec: torch.Tensor, x: torch.Tensor, object_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """train_t2i.py stage 1's reconstruction terms, per pixel weighted; returns (loss, plain L1 for the log)."""
    w = 1.0 + object_weight * objectness(x)                                      # [B, 1, H, W]
    d = rec - x
    l1 = (w * d.abs()).mean()
    l2 = (w * d.pow(2)).mean()
    gx = (w[..., :, 1:] * ((d[..., :, 1:] - d[..., :, :-1]).abs())).mean()
    gy = (w[..., 1:, :] * ((d[..., 1:, :] - d[..., :-1, :]).abs())).mean()
    return l1 + l2 + 0.5 * (gx + gy), d.abs().mean()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='a t2i.pt checkpoint from train_t2i.py')
    p.add_argument('--data', required=True, help='the world folder it was trained on')
    p.add_argument('--out', required=True)
    p.add_argument('--minutes', type=float, default=40)
    p.add_argument('--max-steps', type=int, default=0)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--object-weight', type=float, default=3.0)
    p.add_argument('--ckpt-minutes', type=float, default=5)
    p.add_argument('--log-seconds', type=float, default=60)
    p.add_argument('--limit', type=int, default=0, help='use only the first N training pictures (smoke runs)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args(argv)
    if a.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: expected a CUDA device, torch sees none')
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    base = torch.load(a.ckpt, map_location='cpu', weights_only=False)
    if 'vae' not in base or 'vae_config' not in base:
        raise SystemExit(f'Expected a train_t2i.py checkpoint with vae and vae_config in {a.ckpt}')
    vae = AutoencoderKL(config_from_dict(VAEConfig, base['vae_config']))
    vae.load_state_dict(base['vae'])
    vae.to(a.device)
    frozen = [vae.encoder, vae.quant_conv]
    for m in frozen:
        m.eval().requires_grad_(False)
    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    path = os.path.join(a.out, 'vae_dec.pt')
    step, spent = 0, 0.0
    if os.path.exists(path):
        ck = torch.load(path, map_location='cpu', weights_only=False)
        vae.load_state_dict(ck['vae'])
        opt.load_state_dict(ck['opt'])                                         # its state follows the params' device
        step, spent = ck['step'], ck['elapsed']
        log(f'resuming {path} at step {step} ({spent / 60:.1f} min spent)')
    train = world_data.load_split(a.data, 'train', cache_dir=os.path.join(a.out, 'cache'), limit=a.limit)
    images = torch.from_numpy(train.images)                                       # [N, 64, 64, 3] uint8
    log(f'decoder fine-tune: {len(train.names)} pictures, batch {a.batch}, lr {a.lr}, object weight '
        f'{a.object_weight}, {a.minutes} CPU min')

    def snapshot() -> dict:
        return {'vae': {k: v.cpu() for k, v in vae.state_dict().items()}, 'opt': opt.state_dict(), 'step': step, 'elapsed': spent + used(),
                'args': vars(a)}

    clock = time.process_time if a.device == 'cpu' else time.time
    t0 = clock()
    used = lambda: clock() - t0  # noqa: E731
    last_ckpt, last_log, acc, n = time.time(), time.time(), torch.zeros(2), 0
    vae.post_quant_conv.train()
    vae.decoder.train()
    while True:
        frac = (spent + used()) / (a.minutes * 60)
        if frac >= 1 or (a.max_steps and step >= a.max_steps):
            break
        lr = a.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g['lr'] = lr
        gen = torch.Generator().manual_seed(a.seed * 1_000_003 + step)             # resumable: a function of the step
        idx = torch.randint(0, images.shape[0], (a.batch,), generator=gen)
        x = images[idx].to(a.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0     # [B, 3, 64, 64]
        with torch.no_grad():
            mean, logvar = vae.encode(x)                                            # [B, 4, 16, 16] x2
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen).to(a.device)
        loss, l1 = recon_loss(vae.decode(z), x, a.object_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        acc += torch.stack([loss.detach(), l1.detach()]).cpu()
        n += 1
        if time.time() - last_log >= a.log_seconds:
            m = (acc / n).tolist()
            log(f'step {step} loss {m[0]:.4f} l1 {m[1]:.4f} lr {lr:.2e} {(spent + used()) / 60:.1f}/{a.minutes} min')
            last_log, acc, n = time.time(), torch.zeros(2), 0
        if time.time() - last_ckpt >= a.ckpt_minutes * 60:
            save_atomic(snapshot(), path)
            last_ckpt = time.time()
    save_atomic(snapshot(), path)
    out = dict(base)
    out['vae'] = {k: v.detach().cpu().clone() for k, v in vae.state_dict().items()}
    out['vae_decoder_finetune'] = {'from': os.path.basename(a.ckpt), 'steps': step, 'args': vars(a)}
    save_atomic(out, os.path.join(a.out, 't2i.pt'))
    log(f'done: {step} steps; {os.path.join(a.out, "t2i.pt")} holds the new decoder (encoder unchanged)')


if __name__ == '__main__':
    main()
