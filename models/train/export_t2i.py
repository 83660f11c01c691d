"""Export a text-to-image checkpoint into the diffusers ONNX layout (models/README.md), then reload and check it.

    python3 models/train/export_t2i.py --ckpt runs/t2i/t2i.pt --out models/builtin/text-to-image
    python3 models/train/export_t2i.py --random-tiny --out tests/fixtures/tiny-sd \
        --parity-out tests/fixtures/tiny-sd-parity

Writes model_index.json, scheduler/scheduler_config.json (PNDMScheduler, SD 1.x config), tokenizer/ (CLIP BPE),
text_encoder/, unet/, vae_decoder/, vae_encoder/ (each model.onnx + config.json; opset 17, dynamic batch, dynamic
h/w for unet and vae) into a temporary folder, reloads every graph in onnxruntime, compares it with PyTorch on random
inputs (fails above 1e-3 max abs difference), and only then moves the folder into place.

`vae_encoder` returns the posterior MEAN as latent_sample (deterministic; unscaled, multiply by scaling_factor).
`--random-tiny` builds a seeded random-weight miniature with a float32 timestep (real exports differ on this:
the TypeScript pipeline must read the dtype from the session), and `--parity-out` writes DDIM reference arrays
made by sample_ddim.py's PyTorch sampler on the same weights.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import asdict

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_tokenizer  # noqa: E402
from sample_ddim import T2I  # noqa: E402
from sd_model import (AutoencoderKL, ScheduleConfig, TextConfig, TextEncoder, UNet, UNetConfig,  # noqa: E402
                      VAEConfig, count_params)

OPSET = 17
TOLERANCE = 1e-3
DIFFUSERS_VERSION = '0.30.0'     # written into the configs as diffusers does; the layout is unchanged since 0.14


class TextGraph(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):                                      # [B, L] int32
        return self.m(input_ids)                                       # [B, L, D], [B, D]


class UNetGraph(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sample, timestep, encoder_hidden_states):       # [B, 4, h, w], [B]|[1], [B, L, D]
        return self.m(sample, timestep, encoder_hidden_states)         # [B, 4, h, w]


class VAEDecoderGraph(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, latent_sample):                                  # [B, 4, h, w] unscaled
        return self.m.decode(latent_sample)                            # [B, 3, f*h, f*w] ~[-1, 1]


class VAEEncoderGraph(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sample):                                         # [B, 3, H, W] in [-1, 1]
        return self.m.encode(sample)[0]                                # posterior mean [B, 4, H/f, W/f]


# ------------------------------------------------------------------------------------------------------------
# component configs (diffusers / transformers names, so a reader of a real export finds the same keys)

def vae_json(cfg: VAEConfig) -> dict:
    n = len(cfg.block_out_channels)
    return {'_class_name': 'AutoencoderKL', '_diffusers_version': DIFFUSERS_VERSION,
            'in_channels': cfg.in_channels, 'out_channels': cfg.in_channels,
            'latent_channels': cfg.latent_channels, 'block_out_channels': list(cfg.block_out_channels),
            'down_block_types': ['DownEncoderBlock2D'] * n, 'up_block_types': ['UpDecoderBlock2D'] * n,
            'layers_per_block': cfg.layers_per_block, 'norm_num_groups': cfg.norm_num_groups,
            'act_fn': 'silu', 'sample_size': cfg.sample_size, 'scaling_factor': cfg.scaling_factor,
            'mid_block_add_attention': cfg.mid_attention}


def unet_json(cfg: UNetConfig, timestep_dtype: str) -> dict:
    return {'_class_name': 'UNet2DConditionModel', '_diffusers_version': DIFFUSERS_VERSION,
            'sample_size': cfg.sample_size, 'in_channels': cfg.in_channels, 'out_channels': cfg.out_channels,
            'block_out_channels': list(cfg.block_out_channels), 'layers_per_block': cfg.layers_per_block,
            'down_block_types': list(cfg.down_block_types), 'mid_block_type': 'UNetMidBlock2DCrossAttn',
            'up_block_types': list(cfg.up_block_types), 'cross_attention_dim': cfg.cross_attention_dim,
            'attention_head_dim': cfg.attention_head_dim, 'norm_num_groups': cfg.norm_num_groups,
            'flip_sin_to_cos': True, 'freq_shift': 0, 'act_fn': 'silu', 'ff_mult': cfg.ff_mult,
            'prediction_type': 'epsilon', 'timestep_dtype': timestep_dtype}


def text_json(cfg: TextConfig) -> dict:
    return {'architectures': ['CLIPTextModel'], 'model_type': 'clip_text_model', 'hidden_act': 'quick_gelu',
            'vocab_size': cfg.vocab_size, 'hidden_size': cfg.hidden_size,
            'intermediate_size': cfg.intermediate_size, 'num_hidden_layers': cfg.num_hidden_layers,
            'num_attention_heads': cfg.num_attention_heads,
            'max_position_embeddings': cfg.max_position_embeddings, 'layer_norm_eps': 1e-5,
            'bos_token_id': cfg.bos_token_id, 'eos_token_id': cfg.eos_token_id, 'pad_token_id': cfg.pad_token_id,
            'projection_dim': cfg.hidden_size, 'torch_dtype': 'float32'}


def scheduler_json(cfg: ScheduleConfig) -> dict:
    return {'_class_name': 'PNDMScheduler', '_diffusers_version': DIFFUSERS_VERSION,
            'beta_start': cfg.beta_start, 'beta_end': cfg.beta_end, 'beta_schedule': cfg.beta_schedule,
            'num_train_timesteps': cfg.num_train_timesteps, 'steps_offset': 1, 'skip_prk_steps': True,
            'set_alpha_to_one': False, 'clip_sample': False, 'trained_betas': None}


MODEL_INDEX = {
    '_class_name': 'OnnxStableDiffusionPipeline', '_diffusers_version': DIFFUSERS_VERSION,
    'feature_extractor': [None, None], 'requires_safety_checker': False, 'safety_checker': [None, None],
    'scheduler': ['diffusers', 'PNDMScheduler'], 'text_encoder': ['diffusers', 'OnnxRuntimeModel'],
    'tokenizer': ['transformers', 'CLIPTokenizer'], 'unet': ['diffusers', 'OnnxRuntimeModel'],
    'vae_decoder': ['diffusers', 'OnnxRuntimeModel'], 'vae_encoder': ['diffusers', 'OnnxRuntimeModel'],
}


def dump(obj, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


# ------------------------------------------------------------------------------------------------------------
# export and check

def onnx_export(module, args, path, inputs, outputs, dynamic) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)


def check(path: str, module, feeds: dict, name: str) -> float:
    """Reload `path` in onnxruntime, run it and PyTorch on the same feeds; the max abs difference over outputs."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = sess.run(None, feeds)
    with torch.no_grad():
        want = module(*[torch.from_numpy(v) for v in feeds.values()])
    want = want if isinstance(want, tuple) else (want,)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    shapes = ', '.join(f'{o.name} {list(g.shape)}' for o, g in zip(sess.get_outputs(), got))
    print(f'  {name:13s} max |onnx - torch| = {diff:.2e}   ({shapes})')
    if not diff <= TOLERANCE:
        raise SystemExit(f'{name}: ONNX output differs from PyTorch by {diff:.3e} (expected <= {TOLERANCE})')
    return diff


# The sampling defaults written into pictalk.json for a trained model: the best of a sweep over scheduler x guidance
# x steps on a tuning seed (models/EVAL.md, "Choosing the defaults"). A small model over-saturates at SD's 7.5.
# Chosen on the tuning seed 555 (models/EVAL.md, "Fewer steps, more candidates"): DDIM, 10 steps, guidance 3; five
# candidates per image ranked by the captioner on their drafts at 0.4 of the steps (when the bot has a captioner).
# With ranking, ten DDIM steps judge as well as twenty Euler ancestral ones, and the steps saved pay for more
# candidates, which is what raises the pair prompts.
SAMPLING_DEFAULTS = {'scheduler': 'ddim', 'steps': 10, 'guidance': 3.0, 'candidates': 5, 'rank_at': 0.4}


def export(m: T2I, out: str, timestep_dtype: str = 'int64', seed: int = 0, defaults: dict | None = None) -> dict:
    """Write the layout to a temporary sibling of `out`, verify every graph, then replace `out`."""
    if timestep_dtype not in ('int64', 'float32'):
        raise ValueError(f'timestep_dtype: expected int64 or float32, got {timestep_dtype!r}')
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
    try:
        tc, uc, vc = m.text.cfg, m.unet.cfg, m.vae.cfg
        L, D, f = tc.max_position_embeddings, tc.hidden_size, m.vae.factor
        h = w = vc.sample_size // f
        g = np.random.default_rng(seed)
        # the folder's JSON files
        dump(MODEL_INDEX, os.path.join(tmp, 'model_index.json'))
        if defaults:
            dump({'name': 'pictalk-builtin-t2i', **defaults}, os.path.join(tmp, 'pictalk.json'))
        dump(scheduler_json(m.schedule.cfg), os.path.join(tmp, 'scheduler', 'scheduler_config.json'))
        sd_tokenizer.write_files(m.tokenizer_files, os.path.join(tmp, 'tokenizer'))
        dump(text_json(tc), os.path.join(tmp, 'text_encoder', 'config.json'))
        dump(unet_json(uc, timestep_dtype), os.path.join(tmp, 'unet', 'config.json'))
        dump(vae_json(vc), os.path.join(tmp, 'vae_decoder', 'config.json'))
        dump(vae_json(vc), os.path.join(tmp, 'vae_encoder', 'config.json'))

        # graphs: export with batch 1, check with batch 2 (and another h/w) so the dynamic axes are exercised
        ids = torch.full((1, L), tc.eos_token_id, dtype=torch.int32)
        ids[0, 0] = tc.bos_token_id
        text_g = TextGraph(m.text)
        p = os.path.join(tmp, 'text_encoder', 'model.onnx')
        onnx_export(text_g, (ids,), p, ['input_ids'], ['last_hidden_state', 'pooler_output'],
                    {'input_ids': {0: 'batch'}, 'last_hidden_state': {0: 'batch'}, 'pooler_output': {0: 'batch'}})
        rid = g.integers(0, tc.vocab_size, (2, L)).astype(np.int32)
        rid[:, 0] = tc.bos_token_id
        rid[0, 5:] = tc.eos_token_id
        rid[1, L - 1] = tc.eos_token_id
        diffs = {'text_encoder': check(p, text_g, {'input_ids': rid}, 'text_encoder')}

        ts_dtype = torch.int64 if timestep_dtype == 'int64' else torch.float32
        unet_g = UNetGraph(m.unet)
        p = os.path.join(tmp, 'unet', 'model.onnx')
        onnx_export(unet_g, (torch.randn(1, uc.in_channels, h, w), torch.tensor([500], dtype=ts_dtype),
                             torch.randn(1, L, D)), p,
                    ['sample', 'timestep', 'encoder_hidden_states'], ['out_sample'],
                    {'sample': {0: 'batch', 2: 'height', 3: 'width'}, 'timestep': {0: 'timestep_batch'},
                     'encoder_hidden_states': {0: 'batch', 1: 'sequence'}, 'out_sample': {0: 'batch', 2: 'height', 3: 'width'}})
        feeds = {'sample': g.standard_normal((2, uc.in_channels, h, w)).astype(np.float32),
                 'timestep': np.array([981, 1], dtype=np.int64 if timestep_dtype == 'int64' else np.float32),
                 'encoder_hidden_states': g.standard_normal((2, L, D)).astype(np.float32)}
        diffs['unet'] = check(p, unet_g, feeds, 'unet')
        feeds = {'sample': g.standard_normal((1, uc.in_channels, 2 * h, h)).astype(np.float32),
                 'timestep': np.array([301], dtype=feeds['timestep'].dtype),
                 'encoder_hidden_states': g.standard_normal((1, L, D)).astype(np.float32)}
        diffs['unet'] = max(diffs['unet'], check(p, unet_g, feeds, 'unet (2h x w)'))

        dec_g = VAEDecoderGraph(m.vae)
        p = os.path.join(tmp, 'vae_decoder', 'model.onnx')
        onnx_export(dec_g, (torch.randn(1, vc.latent_channels, h, w),), p, ['latent_sample'], ['sample'],
                    {'latent_sample': {0: 'batch', 2: 'height', 3: 'width'},
                     'sample': {0: 'batch', 2: 'height', 3: 'width'}})
        lat = (g.standard_normal((2, vc.latent_channels, h, 2 * w)) / vc.scaling_factor).astype(np.float32)
        diffs['vae_decoder'] = check(p, dec_g, {'latent_sample': lat}, 'vae_decoder')

        enc_g = VAEEncoderGraph(m.vae)
        p = os.path.join(tmp, 'vae_encoder', 'model.onnx')
        onnx_export(enc_g, (torch.randn(1, vc.in_channels, f * h, f * w),), p, ['sample'], ['latent_sample'],
                    {'sample': {0: 'batch', 2: 'height', 3: 'width'},
                     'latent_sample': {0: 'batch', 2: 'height', 3: 'width'}})
        img = g.uniform(-1, 1, (2, vc.in_channels, f * h, f * w)).astype(np.float32)
        diffs['vae_encoder'] = check(p, enc_g, {'sample': img}, 'vae_encoder')

        if os.path.exists(out):
            for keep in ('README.md',):                                # hand-written notes survive a re-export
                if os.path.exists(os.path.join(out, keep)):
                    shutil.copy2(os.path.join(out, keep), os.path.join(tmp, keep))
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sizes = {c: os.path.getsize(os.path.join(out, c, 'model.onnx'))
             for c in ('text_encoder', 'unet', 'vae_decoder', 'vae_encoder')}
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print('  sizes: ' + ', '.join(f'{c} {s / 1e6:.2f} MB' for c, s in sizes.items()) + f'; folder total {total / 1e6:.2f} MB')
    return {'max_abs_diff': diffs, 'bytes': sizes, 'total_bytes': total}


# ------------------------------------------------------------------------------------------------------------
# the random-weight miniature and its parity arrays

TINY_PROMPT = 'a small red circle to the left of a big cat'
TINY_CAPTIONS = [
    'a small red circle to the left of a big cat', 'a big blue square above a tiny green triangle',
    'there is a large yellow star below a small dog', 'a little purple heart and a big orange circle',
    'a big cat right of a small red square', 'a tiny green circle on its own', 'just a big dog',
]


def random_tiny_ckpt(seed: int = 0) -> dict:
    """A seeded, random-weight checkpoint in the real format, small enough for a test fixture (~0.5 MB)."""
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as d:
        sd_tokenizer.train_tokenizer(TINY_CAPTIONS * 2, d, vocab_size=600, model_max_length=16)   # BPE merges need pairs seen twice
        files = sd_tokenizer.read_files(d)
        tok = sd_tokenizer.load(d)
    vc = VAEConfig(block_out_channels=(8, 16, 16), norm_num_groups=4, sample_size=32, scaling_factor=0.5)
    tc = TextConfig(vocab_size=len(tok), max_position_embeddings=16, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64, bos_token_id=tok.bos_token_id,
                    eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    uc = UNetConfig(sample_size=8, block_out_channels=(8, 16), attention_head_dim=8, cross_attention_dim=32,
                    norm_num_groups=4)
    vae, text, unet = AutoencoderKL(vc), TextEncoder(tc), UNet(uc)
    nn.init.normal_(unet.conv_out.weight, std=0.05)          # the zero init would make every output 0
    for mod in (vae, text, unet):
        print(f'  {type(mod).__name__}: {count_params(mod)} params')
    return {'vae_config': asdict(vc), 'text_config': asdict(tc), 'unet_config': asdict(uc),
            'schedule_config': asdict(ScheduleConfig()), 'vae': vae.state_dict(), 'text': text.state_dict(),
            'unet': unet.state_dict(), 'tokenizer': files}


def write_parity(m: T2I, onnx_dir: str, out: str, steps: int = 4, guidance: float = 7.5, prompt: str = TINY_PROMPT) -> None:
    os.makedirs(out, exist_ok=True)
    h = m.vae.cfg.sample_size // m.vae.factor
    latents = np.random.default_rng(1234).standard_normal((1, m.unet.cfg.in_channels, h, h)).astype(np.float32)
    r = m.sample(prompt, steps=steps, guidance=guidance, latents=torch.from_numpy(latents), trace=True)
    with torch.no_grad():
        ctx, pooled = m.text(torch.from_numpy(r['input_ids']))
    np.save(os.path.join(out, 'initial_latents.npy'), latents)                       # [1, 4, h, w]
    np.save(os.path.join(out, 'input_ids.npy'), r['input_ids'].astype(np.int32))     # [2, L]: "", prompt
    np.save(os.path.join(out, 'text_embeddings.npy'), ctx.numpy())                   # [2, L, D]
    np.save(os.path.join(out, 'latents_trace.npy'), r['trace'])                       # [steps+1, 1, 4, h, w]
    np.save(os.path.join(out, 'latents.npy'), r['latents'])                          # [1, 4, h, w] final
    np.save(os.path.join(out, 'image.npy'), r['image'])                              # [1, 3, H, W] in ~[-1, 1]
    # the same denoising loop on the exported ONNX graphs, as the TypeScript pipeline will run it
    diff = onnx_ddim_diff(onnx_dir, prompt, latents, r)
    print(f'  parity: ONNX DDIM loop vs PyTorch reference, max |diff| latents {diff[0]:.2e}, image {diff[1]:.2e}')
    if not max(diff) <= TOLERANCE:
        raise SystemExit(f'parity: ONNX and PyTorch DDIM loops differ by {max(diff):.3e} (expected <= {TOLERANCE})')
    dump({'prompt': prompt, 'negative_prompt': '', 'scheduler': 'ddim', 'eta': 0.0, 'steps': steps,
          'guidance': guidance, 'timesteps': r['timesteps'], 'scaling_factor': m.scaling_factor,
          'input_ids_rows': ['negative_prompt', 'prompt'],
          'image_postprocess': 'png = round(clamp(image / 2 + 0.5, 0, 1) * 255)'},
         os.path.join(out, 'parity.json'))


def onnx_ddim_diff(folder: str, prompt: str, latents: np.ndarray, ref: dict) -> tuple[float, float]:
    """Run tokenizer -> text_encoder -> DDIM over unet -> vae_decoder from the exported folder alone (NumPy DDIM,
    dtypes read from the sessions) and compare the final latents and image with the PyTorch reference `ref`."""
    import onnxruntime as ort
    sess = {c: ort.InferenceSession(os.path.join(folder, c, 'model.onnx'), providers=['CPUExecutionProvider'])
            for c in ('text_encoder', 'unet', 'vae_decoder')}
    tok = sd_tokenizer.load(os.path.join(folder, 'tokenizer'))
    vae_cfg = json.load(open(os.path.join(folder, 'vae_decoder', 'config.json')))
    sch = json.load(open(os.path.join(folder, 'scheduler', 'scheduler_config.json')))
    ids = sd_tokenizer.encode(tok, ['', prompt]).astype(np.int32)                      # [2, L]
    ctx = sess['text_encoder'].run(None, {'input_ids': ids})[0]                        # [2, L, D]
    betas = np.linspace(sch['beta_start'] ** 0.5, sch['beta_end'] ** 0.5, sch['num_train_timesteps'],
                        dtype=np.float32) ** 2
    ac = np.cumprod(1.0 - betas, dtype=np.float32)
    ts_type = sess['unet'].get_inputs()[1].type                                        # tensor(int64) | tensor(float)
    x = latents.copy()
    steps = len(ref['timesteps'])
    for t in ref['timesteps']:
        t_in = np.array([t], dtype=np.int64 if 'int64' in ts_type else np.float32)
        eps = sess['unet'].run(None, {'sample': np.concatenate([x, x]), 'timestep': t_in,
                                      'encoder_hidden_states': ctx})[0]
        eps = eps[:1] + 7.5 * (eps[1:] - eps[:1])
        prev = t - sch['num_train_timesteps'] // steps
        a_t, a_p = ac[t], ac[prev] if prev >= 0 else ac[0]
        x0 = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        x = (np.sqrt(a_p) * x0 + np.sqrt(1 - a_p) * eps).astype(np.float32)
    img = sess['vae_decoder'].run(None, {'latent_sample': x / np.float32(vae_cfg['scaling_factor'])})[0]
    return float(np.abs(x - ref['latents']).max()), float(np.abs(img - ref['image']).max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', help='a t2i.pt checkpoint from train_t2i.py')
    p.add_argument('--random-tiny', action='store_true', help='export a seeded random-weight miniature instead')
    p.add_argument('--out', required=True)
    p.add_argument('--parity-out', help='also write DDIM parity arrays here')
    p.add_argument('--timestep-dtype', choices=['int64', 'float32'], help='default: int64, float32 for --random-tiny')
    p.add_argument('--no-ema', action='store_true', help='export the raw weights, not the EMA')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if bool(a.ckpt) == a.random_tiny:
        p.error('give exactly one of --ckpt and --random-tiny')
    ckpt = random_tiny_ckpt() if a.random_tiny else torch.load(a.ckpt, map_location='cpu', weights_only=False)
    if not a.random_tiny and 'unet' not in ckpt:
        raise SystemExit(f'{a.ckpt}: expected a text-to-image checkpoint with a trained unet, '
                         f'got keys {sorted(ckpt)} (a stage-1 VAE checkpoint?)')
    m = T2I(ckpt, 'cpu', use_ema=not a.no_ema)
    print(f'exporting {a.ckpt or "a random tiny model"} to {a.out}'
          + (f" (decoder fine-tuned for {ckpt['vae_decoder_finetune']['steps']} steps)" if 'vae_decoder_finetune' in ckpt else ''))
    export(m, a.out, a.timestep_dtype or ('float32' if a.random_tiny else 'int64'),
           defaults=None if a.random_tiny else SAMPLING_DEFAULTS)
    if a.parity_out:
        write_parity(m, a.out, a.parity_out)
        print(f'parity arrays in {a.parity_out}')


if __name__ == '__main__':
    main()
