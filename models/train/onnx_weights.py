"""Load the PyTorch modules of sd_model.py straight from an exported diffusers ONNX folder (models/README.md).

    python3 models/train/onnx_weights.py models/builtin/text-to-image            # load, report, check parity
    python3 models/train/onnx_weights.py models/builtin/text-to-image --ckpt data/ckpt/t2i-ema.pt   # + cross-check

The shipped folder holds no PyTorch checkpoint (it would not fit the size budget), so the reference sampler
(sample_ddim.py --onnx DIR) rebuilds the networks from the component config.json files export_t2i.py writes and
copies every weight out of the graphs' initializers, by parameter name.

What torch.onnx.export (TorchScript, do_constant_folding) does to the names, and how each is undone here:
- most initializers keep their state_dict name under the export wrapper's attribute: `m.unet...` -> `unet...`;
- a Linear's weight is folded into its transpose and renamed `onnx::MatMul_N`: its consumer is the MatMul node
  named after the module scope (`/m/layers.0/fc1/MatMul`), so the weight is `layers.0.fc1.weight` = init.T;
- a GroupNorm becomes InstanceNormalization over the groups followed by `Mul` and `Add` with [C, 1, 1]
  initializers (`onnx::Mul_N`, `onnx::Add_N`) named `/<scope>/Mul` and `/<scope>/Add`: weight and bias;
- what is left are constants of the graph (the InstanceNormalization's unit scale and zero bias, shapes, ...).
Every parameter must be filled exactly once with exactly its shape, or this fails and names what is wrong.
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
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_tokenizer  # noqa: E402
from sd_model import (AutoencoderKL, ScheduleConfig, TextConfig, TextEncoder, UNet, UNetConfig,  # noqa: E402
                      VAEConfig)

PARITY_TOLERANCE = 1e-4
QUANTIZED_TOLERANCE = 0.08    # a quantized graph (int8 arithmetic): relative RMS difference, as t2i_quantize.py holds


class OnnxWeightsError(ValueError):
    pass


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise OnnxWeightsError(f'expected a config file at {path}, found none')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------------------
# component configs: the diffusers / transformers keys export_t2i.py writes -> sd_model dataclasses

def _pick(d: dict, keys: dict, where: str) -> dict:
    """{dataclass field: d[json key]} for every json key; a missing key fails (no silent defaults)."""
    missing = [k for k in keys if k not in d]
    if missing:
        raise OnnxWeightsError(f'{where}: expected keys {sorted(missing)}, found only {sorted(d)}')
    return {field: (tuple(d[k]) if isinstance(d[k], list) else d[k]) for k, field in keys.items()}


def text_config(d: dict, where: str = 'text_encoder/config.json') -> TextConfig:
    keys = ['vocab_size', 'max_position_embeddings', 'hidden_size', 'num_hidden_layers', 'num_attention_heads',
            'intermediate_size', 'bos_token_id', 'eos_token_id', 'pad_token_id']
    return TextConfig(**_pick(d, {k: k for k in keys}, where))


def unet_config(d: dict, time_embed_dim: int = 0, where: str = 'unet/config.json') -> UNetConfig:
    keys = ['sample_size', 'in_channels', 'out_channels', 'block_out_channels', 'layers_per_block',
            'attention_head_dim', 'cross_attention_dim', 'norm_num_groups', 'ff_mult', 'down_block_types']
    try:
        cfg = UNetConfig(**_pick(d, {k: k for k in keys}, where), time_embed_dim=time_embed_dim)
    except ValueError as e:
        raise OnnxWeightsError(f'{where}: {e}') from None
    if tuple(d.get('up_block_types', ())) != cfg.up_block_types:
        raise OnnxWeightsError(f'{where}: up_block_types {d.get("up_block_types")} do not mirror down_block_types '
                               f'{list(cfg.down_block_types)} (expected {list(cfg.up_block_types)})')
    return cfg


def vae_config(d: dict, where: str = 'vae_decoder/config.json') -> VAEConfig:
    keys = {'in_channels': 'in_channels', 'latent_channels': 'latent_channels',
            'block_out_channels': 'block_out_channels', 'layers_per_block': 'layers_per_block',
            'norm_num_groups': 'norm_num_groups', 'sample_size': 'sample_size', 'scaling_factor': 'scaling_factor',
            'mid_block_add_attention': 'mid_attention'}
    return VAEConfig(**_pick(d, keys, where))


def schedule_config(d: dict, where: str = 'scheduler/scheduler_config.json') -> ScheduleConfig:
    keys = ['num_train_timesteps', 'beta_start', 'beta_end', 'beta_schedule']
    return ScheduleConfig(**_pick(d, {k: k for k in keys}, where))


# ------------------------------------------------------------------------------------------------------------
# initializers -> state_dict

def read_initializers(path: str):
    """(name -> array, the graph's nodes in order) of one graph."""
    import onnx
    from onnx import numpy_helper
    if not os.path.isfile(path):
        raise OnnxWeightsError(f'expected an ONNX graph at {path}, found none')
    model = onnx.load(path)                                            # external data is read from beside it
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return dequantized(inits, list(model.graph.node)), list(model.graph.node)


def dequantized(inits: dict, nodes: list) -> dict:
    """The float weights of a quantized graph (t2i_quantize.py), as the initializers they replaced.

    Static (QDQ): int8 values, scale and zero point feed a DequantizeLinear; the float weight takes that node's
    output name, less onnxruntime's `_DequantizeLinear_Output` suffix (`m.conv_in.weight`). Dynamic: a
    MatMulInteger reads `W_quantized` beside `W_scale` and `W_zero_point`; the float weight keeps the quantized
    name, so the MatMulInteger stands where the MatMul stood (`map_initializers`). The int8 parts are dropped."""
    out = dict(inits)
    for node in nodes:
        name = node.input[1] if node.op_type == 'MatMulInteger' and len(node.input) > 1 else ''
        base = name.removesuffix('_quantized')
        if name in inits and f'{base}_scale' in inits:
            zero = inits.get(f'{base}_zero_point', np.zeros((), np.int8)).astype(np.float32)
            out[name] = (inits[name].astype(np.float32) - zero) * inits[f'{base}_scale'].astype(np.float32)
            out.pop(f'{base}_scale')
            out.pop(f'{base}_zero_point', None)
    for node in nodes:
        if node.op_type != 'DequantizeLinear' or not all(i in inits for i in node.input):
            continue
        q, scale = inits[node.input[0]].astype(np.float32), inits[node.input[1]].astype(np.float32)
        zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
        if scale.ndim == 1 and q.ndim > 1:                             # per channel along `axis`
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        out[node.output[0].removesuffix('_DequantizeLinear_Output')] = (q - zero) * scale
        for name in node.input:
            out.pop(name, None)
    return out


def identity_aliases(inits: dict, nodes: list) -> dict:
    """{alias: initializer}: the exporter stores equal initializers once (e.g. LayerNorms still at their ones/zeros
    init) and gives the others their names back through Identity nodes."""
    return {node.output[0]: node.input[0] for node in nodes
            if node.op_type == 'Identity' and len(node.input) == 1 and node.input[0] in inits}


def call_order(module: nn.Module, forward) -> list[str]:
    """Names of the Linear and GroupNorm submodules in the order `forward()` calls them (one traced pass)."""
    names = {id(mod): name for name, mod in module.named_modules()}
    order: list[str] = []
    hooks = [mod.register_forward_pre_hook(lambda mod, _args: order.append(names[id(mod)]))
             for mod in module.modules() if isinstance(mod, (nn.Linear, nn.GroupNorm))]
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hooks:
            h.remove()
    return order


def _scope_path(node_name: str, root: nn.Module, wrapper: str) -> str:
    """'/m/layers.0/fc1/MatMul' -> 'layers.0.fc1' relative to `root` (the export wrapper's attribute dropped)."""
    scope = [p for p in node_name.split('/') if p][:-1]
    if scope and scope[0] == wrapper and not hasattr(root, wrapper):
        scope = scope[1:]
    return '.'.join(scope)


def map_initializers(module: nn.Module, inits: dict, nodes: list, order: list[str], wrapper: str = 'm') -> tuple[dict, list]:
    """{parameter name: tensor} recovered from the initializers, and the names of the unused ones (constants).

    Named initializers map by name. Folded ones (`onnx::MatMul_N`, `onnx::Mul_N`, `onnx::Add_N`) map by order: the
    k-th folded Linear weight in graph order belongs to the k-th Linear call of the forward pass whose weight has no
    named initializer, and likewise for GroupNorm. Node scopes cannot be used alone: the exporter drops the index of
    a ModuleDict inside a ModuleList (`/decoder/resnets.0/norm1/Mul` for every up block). Where a scope names a
    module still to fill, the scope decides; a scope naming any other module is an error."""
    params = dict(module.state_dict())
    modules = dict(module.named_modules())
    found: dict[str, tuple[str, np.ndarray]] = {}
    aliases = identity_aliases(inits, nodes)
    inits = {**inits, **{alias: inits[source] for alias, source in aliases.items()}}

    def put(param: str, source: str, value: np.ndarray) -> None:
        if param in found:
            raise OnnxWeightsError(f'parameter {param} found twice: in initializers {found[param][0]} and {source}')
        want = tuple(params[param].shape)
        if tuple(value.shape) != want:
            raise OnnxWeightsError(f'parameter {param}: expected shape {list(want)}, initializer {source} has '
                                   f'{list(value.shape)}')
        found[param] = (source, value)

    prefix = wrapper + '.'
    for name, value in inits.items():
        plain = name[len(prefix):] if name.startswith(prefix) else name
        if plain in params:
            put(plain, name, value)

    # the folded ones, in graph order: (kind, initializer name, node)
    folded = []
    for node in nodes:
        for index, name in enumerate(node.input):
            value = inits.get(name)
            plain = name[len(prefix):] if name.startswith(prefix) else name
            if value is None or plain in params:
                continue
            if node.op_type in ('MatMul', 'MatMulInteger') and index == 1 and value.ndim == 2:
                folded.append(('linear', name, node))
            elif node.op_type in ('Mul', 'Add') and value.ndim == 3 and value.shape[1:] == (1, 1):
                folded.append(('norm_' + node.op_type, name, node))
    linears = [n for n in order if isinstance(modules[n], nn.Linear) and f'{n}.weight' not in found]
    norms = [n for n in order if isinstance(modules[n], nn.GroupNorm) and f'{n}.weight' not in found]
    pending = {'linear': linears, 'norm_Mul': list(norms), 'norm_Add': list(norms)}
    for kind, name, node in folded:
        queue = pending[kind]
        if not queue:
            raise OnnxWeightsError(f'initializer {name} ({node.op_type} {node.name}) has no {kind} module left to fill')
        scoped = _scope_path(node.name, module, wrapper)
        if scoped in queue:                             # a scope that names a module still to fill decides
            path = scoped                               # (a graph rewritten by a tool may list nodes in another order)
            queue.remove(scoped)
        else:
            path = queue.pop(0)
            if scoped in modules:
                raise OnnxWeightsError(f'initializer {name}: graph order says {path}, the node scope {node.name} says {scoped}')
        value = inits[name]
        if kind == 'linear':
            put(f'{path}.weight', name, np.ascontiguousarray(value.T))   # MatMul(x, W.T)
        else:
            put(f'{path}.{"weight" if kind == "norm_Mul" else "bias"}', name, value.reshape(-1))
    left = {k: v for k, v in pending.items() if v}
    if left:
        raise OnnxWeightsError(f'modules without a folded initializer: {left}')
    placed = {aliases.get(src, src) for src, _ in found.values()}
    unused = [n for n in inits if n not in placed and n not in aliases]
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, (_, v) in found.items()}, unused


def load_into(module: nn.Module, onnx_path: str, forward, required: list[str] | None = None, wrapper: str = 'm') -> dict:
    """Copy a graph's weights into `module`; `forward()` runs the computation the graph holds (for the call order).
    `required`: the parameter names that must come from this graph (default: all of them). Fails on a missing
    parameter, a shape mismatch, a parameter found twice, or a leftover initializer that looks like a weight."""
    inits, nodes = read_initializers(onnx_path)
    state, unused = map_initializers(module, inits, nodes, call_order(module, forward), wrapper)
    required = list(module.state_dict()) if required is None else required
    missing = [k for k in required if k not in state]
    extra = [k for k in state if k not in required]
    if missing or extra:
        raise OnnxWeightsError(f'{onnx_path}: no initializer for {len(missing)} of {len(required)} parameters, e.g. '
                               f'{missing[:8]} (unplaced initializers: {unused[:8]}); unexpected: {extra[:8]}')
    # a float initializer left over that varies like a weight would be a weight this loader failed to place
    big = [n for n in unused if inits[n].dtype == np.float32 and inits[n].size >= 64
           and not np.all(inits[n] == inits[n].flat[0])]
    if big:
        raise OnnxWeightsError(f'{onnx_path}: initializers that look like weights were not placed: '
                               f'{[(n, list(inits[n].shape)) for n in big[:8]]}')
    with torch.no_grad():
        own = module.state_dict()
        for k, v in state.items():
            own[k].copy_(v)
    return {'graph': onnx_path, 'initializers': len(inits), 'loaded': len(state), 'constants': len(unused),
            'quantized': any(n.op_type in ('DequantizeLinear', 'MatMulInteger') for n in nodes)}


# ------------------------------------------------------------------------------------------------------------
# the whole folder

def _vae_parts(vae: AutoencoderKL) -> tuple[list[str], list[str]]:
    names = list(vae.state_dict())
    dec = [k for k in names if k.startswith(('decoder.', 'post_quant_conv.'))]
    enc = [k for k in names if k.startswith(('encoder.', 'quant_conv.'))]
    return dec, enc


def load_folder(folder: str) -> dict:
    """A checkpoint-shaped dict (what sample_ddim.T2I takes) built from the ONNX folder, plus a load report."""
    folder = os.path.abspath(folder)
    t0 = time.perf_counter()
    tc = text_config(_read_json(os.path.join(folder, 'text_encoder', 'config.json')))
    text = TextEncoder(tc)
    L = tc.max_position_embeddings
    ids = torch.full((1, L), tc.eos_token_id, dtype=torch.int64)
    report = {'text_encoder': load_into(text, os.path.join(folder, 'text_encoder', 'model.onnx'), lambda: text(ids))}

    unet_json = _read_json(os.path.join(folder, 'unet', 'config.json'))
    unet_path = os.path.join(folder, 'unet', 'model.onnx')
    # time_embed_dim is not a diffusers config key: read it off the first time-embedding layer's bias
    inits, _ = read_initializers(unet_path)
    temb = next((v.shape[0] for k, v in inits.items() if k in ('m.time_embedding.0.bias', 'time_embedding.0.bias')), 0)
    uc = unet_config(unet_json, time_embed_dim=int(temb))
    unet = UNet(uc)
    hw = uc.sample_size
    report['unet'] = load_into(unet, unet_path, lambda: unet(torch.zeros(1, uc.in_channels, hw, hw), torch.tensor([500]),
                                                             torch.zeros(1, L, uc.cross_attention_dim)))

    vc = vae_config(_read_json(os.path.join(folder, 'vae_decoder', 'config.json')))
    vae = AutoencoderKL(vc)
    dec, enc = _vae_parts(vae)
    lh = vc.sample_size // vae.factor
    report['vae_decoder'] = load_into(vae, os.path.join(folder, 'vae_decoder', 'model.onnx'),
                                      lambda: vae.decode(torch.zeros(1, vc.latent_channels, lh, lh)), dec)
    enc_path = os.path.join(folder, 'vae_encoder', 'model.onnx')
    if os.path.isfile(enc_path):                                        # optional in the layout
        report['vae_encoder'] = load_into(vae, enc_path, lambda: vae.encode(torch.zeros(1, vc.in_channels, vc.sample_size,
                                                                                           vc.sample_size)), enc)
    else:
        report['vae_encoder'] = None                                    # encoder left untrained; sampling never uses it

    sc = schedule_config(_read_json(os.path.join(folder, 'scheduler', 'scheduler_config.json')))
    from dataclasses import asdict
    ckpt = {'kind': 'onnx', 'source': folder,
            'text_config': asdict(tc), 'unet_config': asdict(uc), 'vae_config': asdict(vc),
            'schedule_config': asdict(sc), 'text': text.state_dict(), 'unet': unet.state_dict(),
            'vae': vae.state_dict(), 'tokenizer': sd_tokenizer.read_files(os.path.join(folder, 'tokenizer'))}
    report['load_ms'] = (time.perf_counter() - t0) * 1000
    ckpt['onnx_report'] = report
    return ckpt


# ------------------------------------------------------------------------------------------------------------
# parity: the PyTorch modules on the loaded weights against onnxruntime on the same inputs

def parity(folder: str, m, seed: int = 0, threads: int = 1) -> dict:
    """Max |torch - onnxruntime| per graph on random inputs; `m` is a sample_ddim.T2I built from `folder`."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    g = np.random.default_rng(seed)
    tc, uc, vc = m.text.cfg, m.unet.cfg, m.vae.cfg
    L, D, f = tc.max_position_embeddings, tc.hidden_size, m.vae.factor
    h = w = vc.sample_size // f
    ids = m.input_ids(['', 'a big red circle to the left of a small cat'])            # [2, L] int64

    def run(name: str, feeds: dict):
        sess = ort.InferenceSession(os.path.join(folder, name, 'model.onnx'), opts, providers=['CPUExecutionProvider'])
        dtypes = {'tensor(int32)': np.int32, 'tensor(int64)': np.int64, 'tensor(float)': np.float32}
        feeds = {i.name: feeds[i.name].astype(dtypes[i.type]) for i in sess.get_inputs()}   # dtypes from the session
        return sess.run(None, feeds)

    out = {}
    with torch.no_grad():
        want = m.text(ids)
        got = run('text_encoder', {'input_ids': ids.numpy()})
        out['text_encoder'] = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(got, want))
        sample = g.standard_normal((2, uc.in_channels, h, w)).astype(np.float32)
        ts = np.array([981, 1], dtype=np.int64)
        ctx = want[0].numpy()
        got = run('unet', {'sample': sample, 'timestep': ts, 'encoder_hidden_states': ctx})[0]
        ref = m.unet(torch.from_numpy(sample), torch.from_numpy(ts), torch.from_numpy(ctx)).numpy()
        out['unet'] = float(np.abs(got - ref).max())
        out['unet_relative_rms'] = float(np.sqrt(((got - ref) ** 2).sum() / (ref ** 2).sum()))
        lat = (g.standard_normal((1, vc.latent_channels, h, w)) / vc.scaling_factor).astype(np.float32)
        got = run('vae_decoder', {'latent_sample': lat})[0]
        out['vae_decoder'] = float(np.abs(got - m.vae.decode(torch.from_numpy(lat)).numpy()).max())
    return out


def cross_check(ckpt_path: str, loaded: dict) -> dict:
    """Max |param difference| per network between a full training checkpoint and the weights read from ONNX."""
    full = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    result = {}
    for key in ('text', 'unet', 'vae'):
        a, b = full[key], loaded[key]
        names = list(b) if key != 'vae' or loaded['onnx_report']['vae_encoder'] else \
            [k for k in b if k.startswith(('decoder.', 'post_quant_conv.'))]
        if set(a) != set(b):
            raise OnnxWeightsError(f'{key}: parameter names differ: only in checkpoint {sorted(set(a) - set(b))[:5]}, '
                                   f'only from ONNX {sorted(set(b) - set(a))[:5]}')
        result[key] = max(float((a[k].float() - b[k].float()).abs().max()) for k in names)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', help='a diffusers ONNX text-to-image folder (e.g. models/builtin/text-to-image)')
    p.add_argument('--ckpt', help='a training checkpoint of the same model: its weights must equal the loaded ones')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', action='store_true')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from sample_ddim import T2I
    ckpt = load_folder(a.folder)
    m = T2I(ckpt)
    diffs = parity(a.folder, m, threads=a.threads)
    result = {'report': ckpt['onnx_report'], 'parity_max_abs_diff': diffs}
    if a.ckpt:
        result['ckpt_max_abs_param_diff'] = cross_check(a.ckpt, ckpt)
    quantized = ckpt['onnx_report']['unet'].get('quantized', False)
    held = {k: v for k, v in diffs.items() if k != 'unet_relative_rms' and not (quantized and k == 'unet')}
    if quantized:
        held['unet_relative_rms'] = diffs['unet_relative_rms'] / QUANTIZED_TOLERANCE * PARITY_TOLERANCE
    bad = {k: v for k, v in held.items() if not v <= PARITY_TOLERANCE}
    # int8 weights are the checkpoint's rounded to their channel's step (max |w| / 127): within half of it
    if a.ckpt and any(v > (0.01 if quantized and k == 'unet' else 0) for k, v in result['ckpt_max_abs_param_diff'].items()):
        bad['ckpt'] = result['ckpt_max_abs_param_diff']
    if a.json:
        print(json.dumps(result))
    else:
        for k, r in ckpt['onnx_report'].items():
            if isinstance(r, dict):
                print(f'  {k:12s} {r["loaded"]} parameters from {r["initializers"]} initializers ({r["constants"]} constants)')
        print('  parity max |torch - onnxruntime|: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
        if a.ckpt:
            print('  checkpoint max |param diff|: ' + ', '.join(f'{k} {v:.1e}' for k, v in result['ckpt_max_abs_param_diff'].items()))
    if bad:
        raise SystemExit(f'parity failed (tolerance {PARITY_TOLERANCE}, a quantized UNet {QUANTIZED_TOLERANCE} '
                         f'relative RMS, checkpoint must match exactly, a quantized UNet within 0.01): {bad}')
    print('onnx weights ok', file=sys.stderr)


if __name__ == '__main__':
    main()
