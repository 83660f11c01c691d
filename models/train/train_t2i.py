"""Train the builtin text-to-image model on a Flickr8k-format folder (the drawn world), in two stages.

    # CPU (about 2.5 hours on 2 cores)
    nice -n 10 python3 models/train/train_t2i.py --data data/world --out runs/t2i --threads 2 \
        --vae-minutes 30 --unet-minutes 110 --unet-down-block-types DownBlock2D CrossAttnDownBlock2D CrossAttnDownBlock2D
    # GPU (about 8 minutes)
    python3 models/train/train_t2i.py --data data/world --out runs/t2i-gpu --device cuda --batch 256 \
        --vae-batch 128 --lr 8e-4 --vae-minutes 2 --unet-minutes 5 --ckpt-minutes 1

Stage 1 (`vae.pt`): the KL autoencoder on pictures in [-1, 1]; loss = L1 + L2 + 0.5 * L1 of image gradients
(keeps the thin edges of shapes) + kl_weight * KL. At the end the latent std is measured and 1/std stored as
`scaling_factor` in the VAE config, as diffusers does.
Stage 2 (`t2i.pt`): the VAE frozen, its posteriors cached for all training pictures; the text encoder and the UNet
trained jointly on epsilon-MSE with SD 1.x's noise schedule, one of the five captions drawn per picture per step,
10% of captions replaced by "" so classifier-free guidance works, AdamW with warm-up and cosine decay over the time
budget, EMA of both networks (exported by default).

Checkpoints are written atomically (tmp file + os.replace) every --ckpt-minutes and carry every config, the
tokenizer files and the optimizer state: after `kill -9`, the same command resumes where the last one stopped
(the time budget counts the time already spent). A stage whose checkpoint says done is skipped.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, replace

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import save_atomic  # noqa: E402
import sd_tokenizer  # noqa: E402
import world_data  # noqa: E402
from sd_model import (DOWN_TO_UP, AutoencoderKL, NoiseSchedule, NoTransformer, ScheduleConfig, TextConfig,  # noqa: E402
                      TextEncoder, UNet, UNetConfig, VAEConfig, config_from_dict, count_params)


def log(msg: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def lr_at(base: float, step: int, frac: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine from base to base/10 over the time budget (frac 0..1)."""
    w = min(1.0, (step + 1) / warmup)
    return base * w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def to_pixels(u8: torch.Tensor) -> torch.Tensor:                 # [B, H, W, 3] uint8 -> [B, 3, H, W] in [-1, 1]
    return u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class Budget:
    """Wall time of one stage, carried across restarts through the checkpoint."""

    def __init__(self, minutes: float, spent: float = 0.0):
        self.limit, self.spent, self.t0 = minutes * 60, spent, time.time()

    @property
    def elapsed(self) -> float:
        return self.spent + time.time() - self.t0

    @property
    def frac(self) -> float:
        return self.elapsed / max(self.limit, 1e-9)


# --------------------------------------------------------------------------------------------------------------
# stage 1: the autoencoder

def train_vae(a, images: torch.Tensor, dev: str, amp) -> dict:
    path = os.path.join(a.out, 'vae.pt')
    ck = torch.load(path, map_location='cpu', weights_only=False) if os.path.exists(path) else None
    if ck and ck.get('done'):
        log(f'stage 1: {path} is done (scaling_factor {ck["vae_config"]["scaling_factor"]:.4f}), skipping')
        return ck
    cfg = config_from_dict(VAEConfig, ck['vae_config']) if ck else VAEConfig(
        block_out_channels=tuple(a.vae_channels), sample_size=images.shape[1])
    vae = AutoencoderKL(cfg).to(dev)
    opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, weight_decay=0.0)
    step, spent = 0, 0.0
    if ck:
        vae.load_state_dict(ck['vae'])
        opt.load_state_dict(ck['opt'])
        step, spent = ck['step'], ck['elapsed']
        log(f'stage 1: resuming {path} at step {step} ({spent / 60:.1f} min spent)')
    log(f'stage 1: VAE {count_params(vae) / 1e6:.2f}M params, {cfg.block_out_channels}, batch {a.vae_batch}, '
        f'{a.vae_minutes} min')
    budget = Budget(a.vae_minutes, spent)
    g = torch.Generator(device=dev).manual_seed(a.seed * 1000 + step)
    last_ckpt, t_log, n_log, acc = time.time(), time.time(), 0, 0.0

    def snapshot(done: bool) -> dict:
        return {'kind': 'vae', 'vae_config': asdict(cfg), 'vae': {k: v.cpu() for k, v in vae.state_dict().items()},
                'opt': opt.state_dict(), 'step': step, 'elapsed': budget.elapsed, 'done': done, 'args': vars(a)}

    vae.train()
    while budget.frac < 1.0 and step < a.max_steps:
        for grp in opt.param_groups:
            grp['lr'] = lr_at(a.vae_lr, step, budget.frac, 200)
        idx = torch.randint(0, images.shape[0], (a.vae_batch,), device=dev, generator=g)
        x = to_pixels(images[idx])                                                  # [B, 3, 64, 64]
        with amp():
            rec, mean, logvar = vae(x)                                              # [B, 3, 64, 64], [B, 4, 16, 16] x2
        rec, mean, logvar = rec.float(), mean.float(), logvar.float()
        l1, l2 = (rec - x).abs().mean(), (rec - x).pow(2).mean()
        gx = ((rec[..., :, 1:] - rec[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])).abs().mean()
        gy = ((rec[..., 1:, :] - rec[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])).abs().mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        loss = l1 + l2 + 0.5 * (gx + gy) + a.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        acc = acc + torch.stack([loss, l1, l2, kl]).detach()                        # on the device: no sync
        n_log += 1
        if time.time() - t_log >= a.log_seconds:
            m = (acc / n_log).tolist()
            log(f'vae step {step} loss {m[0]:.4f} l1 {m[1]:.4f} l2 {m[2]:.5f} kl {m[3]:.2f} '
                f'{n_log / (time.time() - t_log):.2f} steps/s {budget.elapsed / 60:.1f}/{a.vae_minutes} min')
            t_log, n_log, acc = time.time(), 0, 0.0
        if time.time() - last_ckpt >= a.ckpt_minutes * 60:
            save_atomic(snapshot(False), path)
            last_ckpt = time.time()

    # scaling factor: 1 / std of sampled latents over up to 4096 training pictures (diffusers' recipe)
    vae.eval()
    zs = []
    with torch.no_grad():
        for i in range(0, min(4096, images.shape[0]), 256):
            mean, logvar = vae.encode(to_pixels(images[i:i + 256]))
            zs.append((mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)).float().cpu())
    z = torch.cat(zs)
    cfg.scaling_factor = float(1.0 / z.std())
    ck = snapshot(True)
    save_atomic(ck, path)
    log(f'stage 1 done: {step} steps, latent mean {z.mean():.3f} std {z.std():.3f} -> scaling_factor '
        f'{cfg.scaling_factor:.4f}')
    return ck


# --------------------------------------------------------------------------------------------------------------
# stage 2: text encoder + UNet

@torch.no_grad()
def encode_posteriors(vae: AutoencoderKL, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, ...]:
    means, stds = [], []
    for i in range(0, images.shape[0], batch):
        mean, logvar = vae.encode(to_pixels(images[i:i + batch]))                   # [b, 4, 16, 16] x2
        means.append(mean.float())
        stds.append(torch.exp(0.5 * logvar).float())
    return torch.cat(means), torch.cat(stds)                                        # [N, 4, 16, 16] x2


@torch.no_grad()
def ema_update(ema: dict, model: torch.nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * weights, in one fused call per list (hundreds of small tensors on a GPU)."""
    sd = model.state_dict()
    keys = [k for k, v in sd.items() if v.dtype.is_floating_point]
    torch._foreach_lerp_([ema[k] for k in keys], [sd[k] for k in keys], 1.0 - decay)


def load_unet_weights(unet: UNet, state: dict, source: str) -> None:
    """The init's UNet weights into `unet`. A level the init had attention at and `unet` has not
    (--unet-down-block-types DownBlock2D there) drops that transformer's weights; nothing else may be missing or
    left over."""
    mine = unet.state_dict()
    dropped = {k for k in state if k not in mine and k.split('.')[0] in ('down_attns', 'up_attns')
               and isinstance(unet.get_submodule('.'.join(k.split('.')[:2])), NoTransformer)}
    missing = unet.load_state_dict({k: v for k, v in state.items() if k not in dropped}, strict=False)
    if missing.missing_keys or missing.unexpected_keys:
        raise SystemExit(f'--init-from {source}: the UNet does not fit: missing {missing.missing_keys[:6]}, '
                         f'unexpected {missing.unexpected_keys[:6]} (a level can lose its attention, not gain it)')
    if dropped:
        blocks = sorted({'.'.join(k.split('.')[:2]) for k in dropped})
        log(f'stage 2: dropped the transformers of {", ".join(blocks)} ({len(dropped)} tensors) from {source}')


def load_init(path: str) -> dict:
    """--init-from: a t2i.pt, or an exported diffusers ONNX folder (its weights read back by onnx_weights.py; a
    quantized UNet comes back dequantized)."""
    if os.path.isdir(path):
        import onnx_weights
        ck = onnx_weights.load_folder(path)
        ck['step'] = 'an unknown number of'
        return ck
    return torch.load(path, map_location='cpu', weights_only=False)


def train_unet(a, vae_ck: dict, images: torch.Tensor, ids: torch.Tensor, empty_ids: torch.Tensor,
               tok_files: dict, dev: str, amp, init: dict | None = None) -> dict:
    path = os.path.join(a.out, 't2i.pt')
    ck = torch.load(path, map_location='cpu', weights_only=False) if os.path.exists(path) else None
    if ck and ck.get('done'):
        log(f'stage 2: {path} is done, skipping')
        return ck
    vcfg = config_from_dict(VAEConfig, vae_ck['vae_config'])
    vae = AutoencoderKL(vcfg).to(dev).eval().requires_grad_(False)
    vae.load_state_dict(vae_ck['vae'])
    tok = sd_tokenizer.load(tok_files)
    L = ids.shape[-1]
    if ck or init:
        src = ck or init
        tcfg, ucfg = config_from_dict(TextConfig, src['text_config']), config_from_dict(UNetConfig, src['unet_config'])
        if init and not ck and a.unet_down_block_types:
            try:
                ucfg = replace(ucfg, down_block_types=tuple(a.unet_down_block_types))
            except ValueError as e:
                raise SystemExit(f'--unet-down-block-types: {e} (the UNet of {a.init_from})') from None
    else:
        tcfg = TextConfig(vocab_size=len(tok), max_position_embeddings=L, hidden_size=a.text_width,
                          num_hidden_layers=a.text_layers, num_attention_heads=max(1, a.text_width // 32),
                          intermediate_size=4 * a.text_width, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        ucfg = UNetConfig(sample_size=images.shape[1] // vae.factor, in_channels=vcfg.latent_channels,
                          out_channels=vcfg.latent_channels, block_out_channels=tuple(a.unet_channels),
                          cross_attention_dim=a.text_width, down_block_types=tuple(a.unet_down_block_types or ()))
    text, unet = TextEncoder(tcfg).to(dev), UNet(ucfg).to(dev)
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    step, spent = 0, 0.0
    if init and not ck:                          # --init-from: continue from an earlier run's (EMA) weights
        text.load_state_dict(init['text'])
        load_unet_weights(unet, init['unet'], a.init_from)
        log(f'stage 2: starting from {a.init_from} ({init.get("step", "?")} steps, UNet levels {ucfg.down_block_types})')
    if ck:
        text.load_state_dict(ck['text_raw'])
        unet.load_state_dict(ck['unet_raw'])
        opt.load_state_dict(ck['opt'])
        step, spent = ck['step'], ck['elapsed']
        log(f'stage 2: resuming {path} at step {step} ({spent / 60:.1f} min spent)')
    ema = {'text': {k: v.detach().clone() for k, v in text.state_dict().items()},
           'unet': {k: v.detach().clone() for k, v in unet.state_dict().items()}}
    if ck:
        ema = {n: {k: v.to(dev) for k, v in ck[n].items()} for n in ('text', 'unet')}
    log(f'stage 2: text encoder {count_params(text) / 1e6:.2f}M, UNet {count_params(unet) / 1e6:.2f}M '
        f'{ucfg.block_out_channels}, L {L}, vocab {tcfg.vocab_size}, batch {a.batch}, lr {a.lr}, {a.unet_minutes} min')

    t_enc = time.time()
    means, stds = encode_posteriors(vae, images)                                    # [N, 4, 16, 16] x2
    sf = vcfg.scaling_factor
    log(f'stage 2: cached {means.shape[0]} posteriors in {time.time() - t_enc:.0f}s, '
        f'scaled latent std {(means * sf).std():.3f}')
    sched = NoiseSchedule()
    ac = sched.alphas_cumprod.to(dev)                                               # [1000]
    budget = Budget(a.unet_minutes, spent)
    g = torch.Generator(device=dev).manual_seed(a.seed * 1000 + 7 + step)
    N = means.shape[0]
    last_ckpt, t_log, n_log, acc = time.time(), time.time(), 0, 0.0

    def snapshot(done: bool) -> dict:
        cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}              # noqa: E731
        return {'kind': 't2i', 'vae_config': asdict(vcfg), 'text_config': asdict(tcfg),
                'unet_config': asdict(ucfg), 'schedule_config': asdict(ScheduleConfig()),
                'vae': vae_ck['vae'], 'text': cpu(ema['text']), 'unet': cpu(ema['unet']),
                'text_raw': cpu(text.state_dict()), 'unet_raw': cpu(unet.state_dict()),
                'tokenizer': tok_files, 'opt': opt.state_dict(), 'step': step, 'elapsed': budget.elapsed,
                'done': done, 'args': vars(a)}

    text.train()
    unet.train()
    while budget.frac < 1.0 and step < a.max_steps:
        for grp in opt.param_groups:
            grp['lr'] = lr_at(a.lr, step, budget.frac, 300)
        B = a.batch
        idx = torch.randint(0, N, (B,), device=dev, generator=g)                    # pictures
        cap = torch.randint(0, ids.shape[1], (B,), device=dev, generator=g)         # one of the 5 captions
        tok_ids = ids[idx, cap]                                                     # [B, L]
        drop = torch.rand(B, device=dev, generator=g) < a.uncond_prob               # classifier-free guidance
        tok_ids = torch.where(drop[:, None], empty_ids[None], tok_ids)
        z = (means[idx] + stds[idx] * torch.randn(means[idx].shape, device=dev, generator=g)) * sf   # [B, 4, h, w]
        noise = torch.randn(z.shape, device=dev, generator=g)
        t = torch.randint(0, sched.cfg.num_train_timesteps, (B,), device=dev, generator=g)
        at = ac[t].view(-1, 1, 1, 1)
        x_t = at.sqrt() * z + (1 - at).sqrt() * noise
        with amp():
            ctx, _ = text(tok_ids)                                                  # [B, L, D]
            eps = unet(x_t, t, ctx)                                                 # [B, 4, h, w]
        loss = F.mse_loss(eps.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(a.ema_decay, (1 + step) / (10 + step))
        ema_update(ema['text'], text, decay)
        ema_update(ema['unet'], unet, decay)
        acc = acc + loss.detach()
        n_log += 1
        if time.time() - t_log >= a.log_seconds:
            log(f'unet step {step} loss {float(acc) / n_log:.4f} lr {opt.param_groups[0]["lr"]:.2e} '
                f'{n_log / (time.time() - t_log):.2f} steps/s {budget.elapsed / 60:.1f}/{a.unet_minutes} min')
            t_log, n_log, acc = time.time(), 0, 0.0
        if time.time() - last_ckpt >= a.ckpt_minutes * 60:
            save_atomic(snapshot(False), path)
            last_ckpt = time.time()
    ck = snapshot(True)
    save_atomic(ck, path)
    log(f'stage 2 done: {step} steps in {budget.elapsed / 60:.1f} min -> {path}')
    return ck


def sample_grid(ck: dict, prompts: list[str], truth: np.ndarray, path: str, steps: int = 20,
                guidance: float = 5.0) -> None:
    """Rows of (drawn truth, generated) pairs for eyeballing; the PyTorch reference sampler on the EMA weights."""
    from PIL import Image
    from sample_ddim import T2I
    m = T2I(ck, 'cpu')
    tiles = []
    for i, p in enumerate(prompts):
        img = m.sample(p, steps=steps, guidance=guidance, seed=i)['image'][0]       # [3, H, W]
        gen = (np.clip(img.transpose(1, 2, 0) / 2 + 0.5, 0, 1) * 255).round().astype(np.uint8)
        tiles.append(np.concatenate([truth[i], gen], axis=1))                       # [H, 2W, 3]
    Image.fromarray(np.concatenate(tiles, axis=0)).resize(
        (tiles[0].shape[1] * 2, tiles[0].shape[0] * len(tiles) * 2), Image.NEAREST).save(path)
    with open(path + '.txt', 'w') as f:
        f.write('\n'.join(prompts) + '\n')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True, help='Flickr8k-format folder')
    p.add_argument('--out', required=True)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--stage', default='all', choices=['all', 'vae', 'unet'])
    p.add_argument('--minutes', type=float, default=10.0, help='time budget per stage (default of the two below)')
    p.add_argument('--vae-minutes', type=float)
    p.add_argument('--unet-minutes', type=float)
    p.add_argument('--max-steps', type=int, default=10 ** 9, help='per stage, for smoke tests')
    p.add_argument('--batch', type=int, default=32, help='stage 2 batch')
    p.add_argument('--vae-batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=4e-4, help='stage 2 peak learning rate')
    p.add_argument('--vae-lr', type=float, default=1e-3)
    p.add_argument('--kl-weight', type=float, default=1e-5)
    p.add_argument('--uncond-prob', type=float, default=0.1)
    p.add_argument('--ema-decay', type=float, default=0.999)
    p.add_argument('--vae-channels', type=int, nargs='+', default=[16, 32, 64])
    p.add_argument('--unet-channels', type=int, nargs='+', default=[64, 96, 96])
    p.add_argument('--text-width', type=int, default=128)
    p.add_argument('--text-layers', type=int, default=4)
    p.add_argument('--vocab-size', type=int, default=1024)
    p.add_argument('--max-length', type=int, default=32, help='tokenizer model_max_length = text positions')
    p.add_argument('--init-from', default=None,
                   help='continue training from a t2i.pt (its EMA text encoder and UNet, its VAE and tokenizer) or from '
                        'an exported diffusers ONNX folder such as models/builtin/text-to-image')
    p.add_argument('--unet-down-block-types', nargs='+', default=None, choices=sorted(DOWN_TO_UP),
                   help='one per level from the top resolution down (default: CrossAttnDownBlock2D at every level); '
                        'with --init-from, a level may lose its attention (DownBlock2D), its transformers dropped')
    p.add_argument('--limit', type=int, default=0, help='use only the first N training pictures')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--ckpt-minutes', type=float, default=2.0)
    p.add_argument('--log-seconds', type=float, default=30.0)
    p.add_argument('--grid', type=int, default=8, help='validation prompts drawn into samples.png at the end (0: none)')
    a = p.parse_args()
    a.vae_minutes = a.minutes if a.vae_minutes is None else a.vae_minutes
    a.unet_minutes = a.minutes if a.unet_minutes is None else a.unet_minutes
    if a.unet_down_block_types and not a.init_from and len(a.unet_down_block_types) != len(a.unet_channels):
        p.error(f'--unet-down-block-types: expected one per level of --unet-channels ({len(a.unet_channels)}), '
                f'got {len(a.unet_down_block_types)}')

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = a.device
    if dev == 'cuda':
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda: expected a CUDA device, torch sees none')
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    # bf16 autocast on CUDA (no loss scaling needed; losses and the optimizer stay float32); plain float32 on CPU
    use_bf16 = dev == 'cuda' and torch.cuda.is_bf16_supported()
    amp = (lambda: torch.autocast('cuda', dtype=torch.bfloat16)) if use_bf16 else (lambda: torch.autocast(dev, enabled=False))
    os.makedirs(a.out, exist_ok=True)
    log(f'device {dev}{" (bf16 autocast)" if use_bf16 else ""}, threads {a.threads}, out {a.out}')

    # data: every training picture in memory (on the device), every caption tokenized once
    t0 = time.time()
    train = world_data.load_split(a.data, 'train', cache_dir=os.path.join(a.out, 'cache'), limit=a.limit)
    log(f'data: {len(train.names)} training pictures {train.images.shape[1:]} in {time.time() - t0:.0f}s')
    tok_dir = os.path.join(a.out, 'tokenizer')
    # --init-from: the earlier run's tokenizer and VAE are kept as they are (the weights depend on them)
    init = load_init(a.init_from) if a.init_from else None
    if init is not None and not os.path.exists(os.path.join(tok_dir, 'tokenizer_config.json')):
        sd_tokenizer.write_files(init['tokenizer'], tok_dir)
    if init is not None and not os.path.exists(os.path.join(a.out, 'vae.pt')):
        save_atomic({'kind': 'vae', 'vae_config': init['vae_config'], 'vae': init['vae'], 'done': True,
                     'step': 0, 'elapsed': 0.0}, os.path.join(a.out, 'vae.pt'))
    if not os.path.exists(os.path.join(tok_dir, 'tokenizer_config.json')):
        all_caps = world_data.read_captions(a.data)
        texts = [c for caps in all_caps.values() for c in caps]
        made_by = sd_tokenizer.train_tokenizer(texts, tok_dir, a.vocab_size, a.max_length)
        log(f'tokenizer: trained by {made_by} on {len(texts)} captions -> {tok_dir}')
    tok_files = sd_tokenizer.read_files(tok_dir)
    tok = sd_tokenizer.load(tok_dir)
    L = tok.model_max_length
    flat = [c for caps in train.captions for c in caps[:5]]
    if any(len(caps) < 5 for caps in train.captions):
        raise SystemExit(f'{a.data}: expected five captions per picture')
    ids_np, lengths = sd_tokenizer.encode_many(tok, flat, L)                                          # [N*5, L], [N*5]
    if lengths.max() > L:
        raise SystemExit(f'captions need up to {lengths.max()} tokens with BOS/EOS, the tokenizer holds {L}: '
                         f'raise --max-length and delete {tok_dir}')
    log(f'tokenizer: vocab {len(tok)}, longest caption {lengths.max()} tokens of {L}, pad {tok.pad_token!r}')
    ids = torch.from_numpy(ids_np).view(len(train.names), 5, L).to(dev)                             # [N, 5, L]
    empty_ids = torch.from_numpy(sd_tokenizer.encode(tok, [''], L))[0].to(dev)                        # [L]
    images = torch.from_numpy(train.images).to(dev)                                                   # [N, 64, 64, 3]

    vae_ck = train_vae(a, images, dev, amp)
    if a.stage == 'vae':
        return
    ck = train_unet(a, vae_ck, images, ids, empty_ids, tok_files, dev, amp, init)
    if a.grid:
        val = world_data.load_split(a.data, 'val', limit=a.grid)
        torch.set_num_threads(a.threads)
        sample_grid(ck, [c[0] for c in val.captions], val.images, os.path.join(a.out, 'samples.png'))
        log(f'samples: {os.path.join(a.out, "samples.png")} (left: drawn, right: generated; prompts in .txt)')


if __name__ == '__main__':
    main()
