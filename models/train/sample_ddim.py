"""The PyTorch reference sampler: DDIM (eta 0) with classifier-free guidance on a text-to-image checkpoint.

    python3 models/train/sample_ddim.py --ckpt runs/t2i/t2i.pt --prompt "a big red circle" --steps 20 \
        --guidance 7.5 --seed 0 --png out.png
    python3 models/train/sample_ddim.py --ckpt ... --prompt ... --steps 20 --threads 1 --repeat 5 --json
    python3 models/train/sample_ddim.py --onnx models/builtin/text-to-image --prompt ... --json   # shipped weights

Timesteps are diffusers DDIMScheduler's with SD 1.x's config (timestep_spacing "leading", steps_offset 1,
set_alpha_to_one false): for 10 steps 901, 801, ..., 1. Classifier-free guidance as diffusers: one batch of
[unconditional (negative prompt, default ""), conditional], eps = eps_u + g * (eps_c - eps_u); g <= 1 runs the
conditional branch only. Initial latents are torch.randn(seed) [1, 4, h, w] or read from --latents FILE.npy.
With --json it prints {"timings_ms": {...}, ...} (median over --repeat runs after one warm-up).

With --serve it loads the weights, makes one warm-up image, prints {"ready": true, "load_ms": ...} and then answers
each line "run N" on stdin with one JSON line {"runs_ms": [...]} (N more images, each timed as --repeat times it), so
that a benchmark can time its own images and these in turn, in the same minutes (scripts/bench.ts); it exits at the
end of its input or on "quit".
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_tokenizer  # noqa: E402
from sd_model import (AutoencoderKL, NoiseSchedule, ScheduleConfig, TextConfig, TextEncoder, UNet,  # noqa: E402
                      UNetConfig, VAEConfig, config_from_dict)


class T2I:
    """The three networks, the tokenizer and the schedule of one checkpoint, in eval mode."""

    def __init__(self, ckpt: dict, device: str = 'cpu', use_ema: bool = True):
        self.vae = AutoencoderKL(config_from_dict(VAEConfig, ckpt['vae_config']))
        self.text = TextEncoder(config_from_dict(TextConfig, ckpt['text_config']))
        self.unet = UNet(config_from_dict(UNetConfig, ckpt['unet_config']))
        # 'text'/'unet' hold the weights to ship (the EMA in training checkpoints); '*_raw' the optimizer's own
        raw = not use_ema and 'unet_raw' in ckpt
        self.vae.load_state_dict(ckpt['vae'])
        self.text.load_state_dict(ckpt['text_raw' if raw else 'text'])
        self.unet.load_state_dict(ckpt['unet_raw' if raw else 'unet'])
        for m in (self.vae, self.text, self.unet):
            m.to(device).eval().requires_grad_(False)
        self.tokenizer_files = ckpt['tokenizer']
        self.tok = sd_tokenizer.load(self.tokenizer_files)
        self.schedule = NoiseSchedule(config_from_dict(ScheduleConfig, ckpt.get('schedule_config', {})))
        self.device = device

    @classmethod
    def load(cls, path: str, device: str = 'cpu', use_ema: bool = True) -> 'T2I':
        return cls(torch.load(path, map_location='cpu', weights_only=False), device, use_ema)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.cfg.scaling_factor)

    def input_ids(self, prompts: list[str]) -> torch.Tensor:
        return torch.from_numpy(sd_tokenizer.encode(self.tok, prompts, self.text.cfg.max_position_embeddings))

    @torch.no_grad()
    def sample(self, prompt: str, steps: int = 20, guidance: float = 7.5, latents: torch.Tensor | None = None,
               seed: int = 0, negative_prompt: str = '', trace: bool = False) -> dict:
        timings = {}
        t0 = time.perf_counter()
        cfg_on = guidance > 1.0
        # encode prompt: [uncond, cond] as diffusers
        ids = self.input_ids([negative_prompt, prompt] if cfg_on else [prompt]).to(self.device)    # [2|1, L]
        ctx, _ = self.text(ids)                                                                   # [2|1, L, D]
        timings['encode'] = (time.perf_counter() - t0) * 1000
        # initial latents: DDIM's init_noise_sigma is 1
        f = self.vae.factor
        h = w = self.vae.cfg.sample_size // f
        if latents is None:
            g = torch.Generator().manual_seed(seed)
            latents = torch.randn(1, self.unet.cfg.in_channels, h, w, generator=g)
        x = latents.float().to(self.device)                                                      # [1, 4, h, w]
        timesteps = self.schedule.ddim_timesteps(steps)
        xs = [x.cpu().numpy()]
        t1 = time.perf_counter()
        # denoise
        for t in timesteps:
            inp = torch.cat([x, x]) if cfg_on else x
            eps = self.unet(inp, torch.tensor([t], device=self.device), ctx)                     # [2|1, 4, h, w]
            if cfg_on:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            x, _ = self.schedule.ddim_step(eps, t, x, steps)
            if trace:
                xs.append(x.cpu().numpy())
        timings['denoise'] = (time.perf_counter() - t1) * 1000
        timings['per_step'] = timings['denoise'] / steps
        # decode
        t2 = time.perf_counter()
        image = self.vae.decode(x / self.scaling_factor)                                        # [1, 3, H, W] ~[-1, 1]
        timings['decode'] = (time.perf_counter() - t2) * 1000
        timings['total'] = (time.perf_counter() - t0) * 1000
        return {'input_ids': ids.cpu().numpy(), 'timesteps': timesteps, 'latents': x.cpu().numpy(),
                'image': image.cpu().numpy(), 'trace': np.stack(xs) if trace else None, 'timings_ms': timings}


def to_png(image: np.ndarray, path: str, upscale: int = 1) -> None:
    """image [1, 3, H, W] in [-1, 1] -> PNG, as diffusers' postprocess ((x / 2 + 0.5).clamp(0, 1), round)."""
    from PIL import Image
    a = np.clip(image[0].transpose(1, 2, 0) / 2 + 0.5, 0, 1)
    im = Image.fromarray((a * 255).round().astype(np.uint8))
    if upscale > 1:
        im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
    im.save(path)


def serve(m: T2I, prompt: str, kw: dict, load_ms: float) -> None:
    """One warm-up image, then "run N" lines on stdin, each answered with the N images' times on one JSON line."""
    m.sample(prompt, **kw)
    print(json.dumps({'ready': True, 'load_ms': load_ms}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ['quit']:
            break
        if len(words) != 2 or words[0] != 'run' or not words[1].isdigit() or int(words[1]) < 1:
            print(json.dumps({'error': f'expected "run N" (N >= 1) or "quit", got {line.strip()!r}'}), flush=True)
            continue
        runs = [m.sample(prompt, **kw)['timings_ms'] for _ in range(int(words[1]))]
        print(json.dumps({'runs_ms': [r['total'] for r in runs],
                          'timings_ms': {k: [r[k] for r in runs] for k in runs[0]}}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument('--ckpt', help='a training checkpoint (t2i.pt)')
    weights.add_argument('--onnx', help='an exported diffusers ONNX folder: its weights are read by onnx_weights.py')
    p.add_argument('--prompt', required=True)
    p.add_argument('--negative-prompt', default='')
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--guidance', type=float, default=7.5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--latents', help='initial latents [1, 4, h, w] float32 .npy (overrides --seed)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--repeat', type=int, default=1, help='timed runs after one warm-up (for benchmarks)')
    p.add_argument('--no-ema', action='store_true')
    p.add_argument('--png', help='write the image here')
    p.add_argument('--upscale', type=int, default=1)
    p.add_argument('--out-npy', help='write the final latents here')
    p.add_argument('--json', action='store_true', help='print timings and settings as one JSON object')
    p.add_argument('--serve', action='store_true', help='answer "run N" lines on stdin with one JSON line each')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t_load = time.perf_counter()
    if a.onnx:
        import onnx_weights                                                                   # the shipped folder
        m = T2I(onnx_weights.load_folder(a.onnx), a.device)
    else:
        m = T2I.load(a.ckpt, a.device, use_ema=not a.no_ema)
    load_ms = (time.perf_counter() - t_load) * 1000
    lat = torch.from_numpy(np.load(a.latents)) if a.latents else None
    kw = dict(steps=a.steps, guidance=a.guidance, latents=lat, seed=a.seed, negative_prompt=a.negative_prompt)
    if a.serve:
        serve(m, a.prompt, kw, load_ms)
        return
    runs = []
    if a.repeat > 1:
        m.sample(a.prompt, **kw)                                                                  # warm-up
    for _ in range(a.repeat):
        runs.append(m.sample(a.prompt, **kw))
    r = runs[-1]
    if a.png:
        to_png(r['image'], a.png, a.upscale)
    if a.out_npy:
        np.save(a.out_npy, r['latents'])
    med = {k: float(np.median([x['timings_ms'][k] for x in runs])) for k in r['timings_ms']}
    if a.json:
        print(json.dumps({'prompt': a.prompt, 'steps': a.steps, 'guidance': a.guidance, 'seed': a.seed,
                          'threads': a.threads, 'device': a.device, 'repeat': a.repeat, 'load_ms': load_ms,
                          'weights': {'onnx': a.onnx} if a.onnx else {'ckpt': a.ckpt},
                          'timings_ms': med, 'runs_ms': [x['timings_ms']['total'] for x in runs],
                          'timesteps': r['timesteps']}))
    else:
        print(f"{a.steps} steps, guidance {a.guidance}: total {med['total']:.0f} ms "
              f"(encode {med['encode']:.1f}, {med['per_step']:.1f}/step, decode {med['decode']:.1f})")


if __name__ == '__main__':
    main()
