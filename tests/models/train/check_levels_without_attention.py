"""Checks of a UNet whose top level has no attention (`down_block_types` DownBlock2D there, SDXL style).

Prints `ok <check>` lines and exits non-zero on the first failure.
- the tiny model exports (export_t2i.py's own parity check against PyTorch), with diffusers' block types in its
  config, and onnx_weights.py loads it back by parameter name and matches onnxruntime;
- t2i_share_latents.py rewrites it (its first transformer is one level down) and checks the result to the bit;
- train_t2i.py's --init-from drops the transformers of a level that loses its attention, and refuses a level that
  would gain one;
- a config whose up_block_types do not mirror its down_block_types fails and says so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# a missing package is one line naming it (models/train/needs.py), before the imports that need it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'models', 'train'))
import needs  # noqa: E402
needs.require()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
TRAIN = os.path.join(ROOT, 'models', 'train')
sys.path.insert(0, TRAIN)
import export_t2i  # noqa: E402
import onnx_weights  # noqa: E402
from sample_ddim import T2I  # noqa: E402
from sd_model import NoTransformer, UNet, UNetConfig, config_from_dict  # noqa: E402
from train_t2i import load_unet_weights  # noqa: E402

LEVELS = ['DownBlock2D', 'CrossAttnDownBlock2D']


def ok(name: str) -> None:
    print(f'ok {name}', flush=True)


def main() -> None:
    torch.set_num_threads(1)
    full = export_t2i.random_tiny_ckpt(seed=3)
    ucfg = config_from_dict(UNetConfig, {**full['unet_config'], 'down_block_types': LEVELS})
    assert ucfg.up_block_types == ('CrossAttnUpBlock2D', 'UpBlock2D'), ucfg.up_block_types
    torch.manual_seed(3)
    unet = UNet(ucfg)
    nn.init.normal_(unet.conv_out.weight, std=0.05)
    kinds = [type(b).__name__ for b in unet.down_attns] + [type(b).__name__ for b in unet.up_attns]
    assert kinds == ['NoTransformer', 'Transformer2D', 'Transformer2D', 'Transformer2D', 'NoTransformer', 'NoTransformer'], kinds
    assert not any(k.startswith(('down_attns.0.', 'up_attns.2.', 'up_attns.3.')) for k in unet.state_dict())
    ok('a DownBlock2D level has no transformer and keeps the numbering of the others')

    ckpt = {**full, 'unet_config': {**full['unet_config'], 'down_block_types': LEVELS}, 'unet': unet.state_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, 'sdxl-style')
        export_t2i.export(T2I(ckpt), folder, 'int64')
        config = json.load(open(os.path.join(folder, 'unet', 'config.json'), encoding='utf-8'))
        assert config['down_block_types'] == LEVELS, config
        assert config['up_block_types'] == ['CrossAttnUpBlock2D', 'UpBlock2D'], config
        ok('it exports with diffusers block types, within the exporter\'s parity check')

        loaded = onnx_weights.load_folder(folder)
        assert tuple(loaded['unet_config']['down_block_types']) == tuple(LEVELS), loaded['unet_config']
        diffs = onnx_weights.parity(folder, T2I(loaded))
        assert all(v <= onnx_weights.PARITY_TOLERANCE for v in diffs.values()), diffs
        ok(f'onnx_weights.py loads it back and matches onnxruntime ({diffs["unet"]:.1e} on the UNet)')

        out = subprocess.run([sys.executable, os.path.join(TRAIN, 't2i_share_latents.py'), '--model', folder],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert 'checked to the bit' in out.stdout, out.stdout
        assert json.load(open(os.path.join(folder, 'pictalk.json')))['unet_shared_latents'] is True
        ok('t2i_share_latents.py rewrites it from the first level with attention, to the bit')

        broken = json.load(open(os.path.join(folder, 'unet', 'config.json'), encoding='utf-8'))
        broken['up_block_types'] = ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D']
        json.dump(broken, open(os.path.join(folder, 'unet', 'config.json'), 'w', encoding='utf-8'))
        try:
            onnx_weights.load_folder(folder)
            raise AssertionError('a config whose up_block_types do not mirror down_block_types loaded')
        except onnx_weights.OnnxWeightsError as error:
            assert 'do not mirror' in str(error), error
        ok('up_block_types that do not mirror down_block_types fail')

    target = UNet(ucfg)
    load_unet_weights(target, full['unet'], 'the full tiny model')
    source = full['unet']
    same = all(torch.equal(v, source[k]) for k, v in target.state_dict().items())
    assert same, 'a kept weight changed on the way'
    assert isinstance(target.down_attns[0], NoTransformer)
    try:
        load_unet_weights(UNet(config_from_dict(UNetConfig, full['unet_config'])), unet.state_dict(), 'the tiny model')
        raise AssertionError('a level gained attention from weights that have none')
    except SystemExit as error:
        assert 'missing' in str(error) and 'down_attns.0' in str(error), error
    ok('--init-from drops the transformers of a level that loses attention, and refuses one that gains it')
    print('levels without attention: all checks passed')


if __name__ == '__main__':
    main()
