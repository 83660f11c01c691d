"""The two other kinds of `vae_encoder/model.onnx` that real exports ship, made from a pictalk encoder (which
returns the posterior mean as `latent_sample`), so the TypeScript pipeline's handling of each is tested:

- `--kind moments`: optimum's layout, output `latent_parameters` [B, 2C, h, w] = mean and log-variance (the
  quant_conv output before pictalk's graph slices the mean off). pictalk samples it with its own seeded noise.
- `--kind sampling`: diffusers' converter layout (convert_stable_diffusion_checkpoint_to_onnx.py exports
  `encode(sample).latent_dist.sample()`): mean + std * RandomNormalLike, drawn inside the graph from
  onnxruntime's own unseeded generator. pictalk detects it (two encodings of one probe differ) and refuses it.

    python3 models/train/vae_encoder_variants.py --kind moments \
        --encoder tests/fixtures/tiny-sd/vae_encoder/model.onnx --out tests/fixtures/vae-encoders/moments.onnx

Reloads what it wrote in onnxruntime and checks it against the source encoder before it reports success.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import sys

import numpy as np
import onnx
from onnx import helper


def moments(model: onnx.ModelProto) -> onnx.ModelProto:
    """Expose the Slice's input (quant_conv's [B, 2C, h, w]) as the graph output `latent_parameters`."""
    graph = model.graph
    out = graph.output[0].name
    slice_node = next(n for n in graph.node if out in n.output)
    assert slice_node.op_type == 'Slice', f'expected the mean to come from a Slice, got {slice_node.op_type}'
    params = slice_node.input[0]
    graph.node.remove(slice_node)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info('latent_parameters', onnx.TensorProto.FLOAT, ['batch', None, 'height', 'width']))
    graph.node.append(helper.make_node('Identity', [params], ['latent_parameters']))
    return model


def sampling(model: onnx.ModelProto, std: float) -> onnx.ModelProto:
    """latent_sample = mean + std * RandomNormalLike(mean), the draw left to onnxruntime as in diffusers' export."""
    graph = model.graph
    out = graph.output[0].name
    producer = next(n for n in graph.node if out in n.output)
    producer.output[list(producer.output).index(out)] = 'posterior_mean'
    graph.node.extend([
        helper.make_node('RandomNormalLike', ['posterior_mean'], ['eps'], dtype=onnx.TensorProto.FLOAT),
        helper.make_node('Constant', [], ['std'], value=helper.make_tensor('std', onnx.TensorProto.FLOAT, [], [std])),
        helper.make_node('Mul', ['eps', 'std'], ['scaled_eps']),
        helper.make_node('Add', ['posterior_mean', 'scaled_eps'], [out]),
    ])
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--kind', choices=['moments', 'sampling'], required=True)
    parser.add_argument('--encoder', required=True, help='a pictalk vae_encoder/model.onnx (posterior mean out)')
    parser.add_argument('--out', required=True)
    parser.add_argument('--std', type=float, default=0.1, help='sampling: the std of the in-graph draw')
    args = parser.parse_args()

    import onnxruntime as ort
    model = onnx.load(args.encoder)
    variant = moments(model) if args.kind == 'moments' else sampling(model, args.std)
    onnx.checker.check_model(variant)
    onnx.save(variant, args.out)

    # reload and check against the source: the mean must be the same, the extra part must behave as described
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    mean = ort.InferenceSession(args.encoder, providers=['CPUExecutionProvider']).run(None, {'sample': x})[0]
    sess = ort.InferenceSession(args.out, providers=['CPUExecutionProvider'])
    got = sess.run(None, {'sample': x})[0]
    c = mean.shape[1]
    if args.kind == 'moments':
        diff = float(np.abs(got[:, :c] - mean).max())
        ok = got.shape[1] == 2 * c and diff <= 1e-6
        print(f'{args.out}: latent_parameters {list(got.shape)}, mean part max abs difference {diff:.2e}')
    else:
        again = sess.run(None, {'sample': x})[0]
        spread = float((got - mean).std())
        ok = not np.array_equal(got, again) and abs(spread - args.std) < 0.05 * args.std + 0.01
        print(f'{args.out}: latent_sample {list(got.shape)}, std around the mean {spread:.4f}, two runs differ: {not np.array_equal(got, again)}')
    if not ok:
        print('check failed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
