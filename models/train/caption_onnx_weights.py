"""Read an exported captioner/ folder (encoder.onnx, decoder_step.onnx, config.json, vocab.json) back into the
PyTorch `Captioner`, so a shipped captioner can be fine-tuned (`train_caption.py --init-from FOLDER`) when its
training checkpoint is gone.

The export folds every BatchNorm into the convolution before it (eval mode). The folded weights go into the conv,
the folded bias into the BatchNorm's bias, and the BatchNorm becomes the identity (weight 1, mean 0, var 1 - eps);
`frozen_batchnorm()` lists those layers, which must stay in eval mode while fine-tuning. ONNX orders the LSTM gates
i, o, f, c; PyTorch i, f, g, o.
"""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from caption_model import CaptionConfig, Captioner


def _initializers(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise SystemExit(f'Expected {path} (an exported captioner folder), it is missing')
    return {t.name: numpy_helper.to_array(t).copy() for t in onnx.load(path).graph.initializer}


def _conv_inits(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of every Conv node, in graph order."""
    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    return [(init[n.input[1]], init[n.input[2]]) for n in model.graph.node if n.op_type == 'Conv']


def _gates_onnx_to_torch(a: np.ndarray, hidden: int) -> np.ndarray:
    i, o, f, c = (a[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, f, c, o], 0)


def load_folder(folder: str) -> tuple[Captioner, list[str]]:
    conf = json.load(open(os.path.join(folder, 'config.json')))
    vocab = json.load(open(os.path.join(folder, 'vocab.json')))
    if conf.get('backbone', 'scratch') != 'scratch' or conf.get('num_positions'):
        raise SystemExit('Expected a from-scratch captioner without attention; pretrained backbones and the attention variant are not read back')
    enc = _initializers(os.path.join(folder, 'encoder.onnx'))
    dec = _initializers(os.path.join(folder, 'decoder_step.onnx'))
    convs = _conv_inits(os.path.join(folder, 'encoder.onnx'))
    channels = tuple(int(w.shape[0]) for w, _ in convs[1::2])
    cfg = CaptionConfig(
        vocab_size=len(vocab), image_size=tuple(conf['image_size']), channels=channels,
        feature_dim=int(enc['m.proj.0.weight'].shape[0]), embed_dim=int(dec['m.embed.weight'].shape[1]),
        hidden_size=int(conf['hidden_size']), num_layers=int(conf['num_layers']), attention=False,
        mean=tuple(conf['mean']), std=tuple(conf['std']), max_length=int(conf['max_length']),
        beam_size=int(conf['beam_size']), length_penalty=float(conf.get('length_penalty', 1.0)))
    model = Captioner(cfg)
    state = model.state_dict()
    state['proj.0.weight'], state['proj.0.bias'] = map(torch.from_numpy, (enc['m.proj.0.weight'], enc['m.proj.0.bias']))
    for name in ('init_h', 'init_c'):
        state[f'{name}.weight'], state[f'{name}.bias'] = torch.from_numpy(enc[f'm.{name}.weight']), torch.from_numpy(enc[f'm.{name}.bias'])
    conv_modules = [m for m in model.cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    bn_modules = [m for m in model.cnn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if len(conv_modules) != len(convs) or len(bn_modules) != len(convs):
        raise SystemExit(f'Expected {len(conv_modules)} convolutions in the encoder, found {len(convs)}')
    with torch.no_grad():
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise SystemExit(f'Expected {folder} to hold the plain from-scratch CNN-LSTM (a factorized or attention '
                             f'export is not read back; start from its checkpoint .pt instead), got: '
                             f'{str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}')
        for conv, bn, (w, b) in zip(conv_modules, bn_modules, convs):
            conv.weight.copy_(torch.from_numpy(w))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        model.embed.weight.copy_(torch.from_numpy(dec['m.embed.weight']))
        model.head.weight.copy_(torch.from_numpy(dec['m.head.weight']))
        model.head.bias.copy_(torch.from_numpy(dec['m.head.bias']))
        lstm_inits = sorted((k for k in dec if k.startswith('onnx::LSTM')), key=lambda k: int(k.rsplit('_', 1)[1]))
        W, R, B = (dec[k] for k in lstm_inits[:3])                      # [1, 4H, in], [1, 4H, H], [1, 8H]
        H = cfg.hidden_size
        model.lstm.weight_ih_l0.copy_(torch.from_numpy(_gates_onnx_to_torch(W[0], H)))
        model.lstm.weight_hh_l0.copy_(torch.from_numpy(_gates_onnx_to_torch(R[0], H)))
        model.lstm.bias_ih_l0.copy_(torch.from_numpy(_gates_onnx_to_torch(B[0][:4 * H], H)))
        model.lstm.bias_hh_l0.copy_(torch.from_numpy(_gates_onnx_to_torch(B[0][4 * H:], H)))
    return model.eval(), vocab


def frozen_batchnorm(model: Captioner) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
