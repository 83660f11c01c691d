"""Checks of models/train/onnx_weights.py on the tiny random-weight folder (tests/fixtures/tiny-sd).

Prints `ok <check>` lines and exits non-zero on the first failure.
- the loaded PyTorch networks match onnxruntime on the same inputs within 1e-4;
- sample_ddim's DDIM loop on the loaded weights reproduces the fixture's parity arrays (made by PyTorch on the
  original weights) from the same initial latents;
- a graph with a weight of the wrong shape, or without a weight, fails loudly and names the parameter.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

# a missing package is one line naming it (models/train/needs.py), before the imports that need it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import onnx_weights  # noqa: E402
from sample_ddim import T2I  # noqa: E402

TINY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny-sd')
PARITY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny-sd-parity')


def ok(name: str) -> None:
    print(f'ok {name}', flush=True)


def expect_failure(folder: str, needle: str) -> str:
    try:
        onnx_weights.load_folder(folder)
    except onnx_weights.OnnxWeightsError as error:
        assert needle in str(error), f'expected {needle!r} in the error, got {error}'
        return str(error)
    raise AssertionError(f'expected load_folder({folder}) to fail with {needle!r}, it loaded')


def edited_copy(tmp: str, edit) -> str:
    """A copy of the tiny folder whose unet/model.onnx went through `edit(model)`."""
    import onnx
    out = os.path.join(tmp, f'case-{len(os.listdir(tmp))}')
    shutil.copytree(TINY, out)
    path = os.path.join(out, 'unet', 'model.onnx')
    model = onnx.load(path)
    edit(model)
    onnx.save(model, path)
    return out


def main() -> None:
    torch.set_num_threads(1)
    ckpt = onnx_weights.load_folder(TINY)
    m = T2I(ckpt)
    report = ckpt['onnx_report']
    assert report['unet']['loaded'] == len(m.unet.state_dict()), report
    diffs = onnx_weights.parity(TINY, m)
    assert all(v <= onnx_weights.PARITY_TOLERANCE for v in diffs.values()), diffs
    ok(f'loaded networks match onnxruntime ({", ".join(f"{k} {v:.1e}" for k, v in diffs.items())})')

    settings = json.load(open(os.path.join(PARITY, 'parity.json'), encoding='utf-8'))
    r = m.sample(settings['prompt'], steps=settings['steps'], guidance=settings['guidance'],
                 latents=torch.from_numpy(np.load(os.path.join(PARITY, 'initial_latents.npy'))),
                 negative_prompt=settings['negative_prompt'])
    assert r['timesteps'] == settings['timesteps'], r['timesteps']
    assert np.array_equal(r['input_ids'], np.load(os.path.join(PARITY, 'input_ids.npy')).astype(np.int64))
    d_lat = float(np.abs(r['latents'] - np.load(os.path.join(PARITY, 'latents.npy'))).max())
    d_img = float(np.abs(r['image'] - np.load(os.path.join(PARITY, 'image.npy'))).max())
    assert d_lat <= 1e-4 and d_img <= 1e-4, (d_lat, d_img)
    ok(f'DDIM on the ONNX weights reproduces the parity arrays (latents {d_lat:.1e}, image {d_img:.1e})')

    out = subprocess.run([sys.executable, os.path.join(ROOT, 'models', 'train', 'sample_ddim.py'), '--onnx', TINY,
                          '--prompt', settings['prompt'], '--steps', '2', '--json'],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['weights'] == {'onnx': TINY} and result['timings_ms']['total'] > 0, result
    ok('sample_ddim.py --onnx runs and reports its weights')

    with tempfile.TemporaryDirectory() as tmp:
        from onnx import TensorProto, helper, numpy_helper

        def reshape_folded_matmul(model):
            for i, init in enumerate(model.graph.initializer):
                if init.name.startswith('onnx::MatMul'):
                    a = numpy_helper.to_array(init)
                    model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a[:, :-1]), init.name))
                    return
            raise AssertionError('no folded MatMul weight in the tiny UNet')
        error = expect_failure(edited_copy(tmp, reshape_folded_matmul), 'expected shape')
        ok(f'a weight of the wrong shape fails: {error[:100]}')

        def drop_conv_weight(model):
            names = [i.name for i in model.graph.initializer]
            del model.graph.initializer[names.index('m.conv_in.weight')]
            # the Conv now reads a graph input of that name, as an export with that weight left out would
            model.graph.input.append(helper.make_tensor_value_info('m.conv_in.weight', TensorProto.FLOAT, None))
        error = expect_failure(edited_copy(tmp, drop_conv_weight), 'conv_in.weight')
        ok(f'a missing weight fails and is named: {error[:100]}')

        def drop_config_key(folder):
            path = os.path.join(folder, 'unet', 'config.json')
            cfg = json.load(open(path, encoding='utf-8'))
            del cfg['cross_attention_dim']
            json.dump(cfg, open(path, 'w', encoding='utf-8'))
            return folder
        error = expect_failure(drop_config_key(edited_copy(tmp, lambda model: None)), 'cross_attention_dim')
        ok('a config without a key fails and names it')

        # a UNet quantized as t2i_quantize.py does (int8 QDQ convolutions, dynamic int8 MatMuls): the weights load
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
        q = edited_copy(tmp, lambda model: None)
        path = os.path.join(q, 'unet', 'model.onnx')
        uc, L, D = m.unet.cfg, m.text.cfg.max_position_embeddings, m.text.cfg.hidden_size
        g = np.random.default_rng(0)
        ts_dtype = np.float32 if json.load(open(os.path.join(TINY, 'unet', 'config.json')))['timestep_dtype'] == 'float32' else np.int64
        feeds = iter([{'sample': g.standard_normal((2, uc.in_channels, 8, 8)).astype(np.float32),
                       'timestep': np.array([500, 20], ts_dtype),
                       'encoder_hidden_states': g.standard_normal((2, L, D)).astype(np.float32)} for _ in range(4)])

        class Reader(CalibrationDataReader):
            def get_next(self):
                return next(feeds, None)
        quantize_static(path, path + '.q', Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=['Conv'])
        quantize_dynamic(path + '.q', path, op_types_to_quantize=['MatMul'], weight_type=QuantType.QInt8)
        os.remove(path + '.q')
        import onnx
        ops = {n.op_type for n in onnx.load(path).graph.node}
        assert {'DequantizeLinear', 'MatMulInteger'} <= ops, ops
        loaded = onnx_weights.load_folder(q)
        assert loaded['onnx_report']['unet']['quantized'], loaded['onnx_report']
        step = max(float((loaded['unet'][k] - ckpt['unet'][k]).abs().max()) for k in ckpt['unet'])
        worst = max(float(w.abs().max()) for w in ckpt['unet'].values())
        assert 0 < step <= worst / 254 + 1e-6, (step, worst)
        ok(f'a quantized UNet loads its dequantized weights (within {step:.1e} of the float ones)')
    print('onnx weights: all checks passed')


if __name__ == '__main__':
    main()
