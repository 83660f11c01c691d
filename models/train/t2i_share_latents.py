"""Let the builtin UNet graph take each latent once when classifier-free guidance pairs it with several texts.

    python3 models/train/t2i_share_latents.py --model models/builtin/text-to-image

With guidance every latent goes into the UNet twice, once with the negative text and once with the prompt, and
everything the UNet computes before its first cross-attention reads only the latent and the timestep: the time
embedding, `conv_in`, the first ResNet block and the first transformer block's self-attention. This rewrites the
graph so that `sample` and `timestep` may have fewer rows than `encoder_hidden_states`: m latents, k = r * m text
rows, text row j paired with latent j mod m (diffusers' layout: all negative rows, then all prompt rows). That part
runs on the m latents, its results are gathered to the k rows where the text comes in, and the rest of the graph is
unchanged. Fed as before (m = k) it computes exactly what it did; fed each latent once it computes the same numbers
with that part done once per latent (about 3% of a step at batch 2 and 8% at batch 10 on the project's machine).

Run after t2i_quantize.py (the quantizer calibrates the standard graph); the script checks that the rewritten graph
gives the original's output to the bit, fed both ways, and records `unet_shared_latents` in pictalk.json, which the
pipeline reads (inference/text-to-image.pipeline.ts). A graph that is already rewritten is left alone. It relies on
the layer names of this project's export (models/train/sd_model.py through export_t2i.py) and refuses other graphs.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import collections
import json
import os
import re

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_graph import session, topological

MARK = 'shared_latents/'        # every node and tensor this script adds starts with it
FIRST_BLOCK = re.compile(r'^/m/down_attns\.\d+/norm1/LayerNormalization$')   # a transformer's self-attention input


def folder_shapes(folder: str) -> dict:
    """The latent's channels and side and the text's length and width, from the folder's configs."""
    config = json.load(open(os.path.join(folder, 'unet', 'config.json')))
    tokenizer = json.load(open(os.path.join(folder, 'tokenizer', 'tokenizer_config.json')))
    size = config.get('sample_size', 16)
    return {'channels': config.get('in_channels', 4), 'side': size[0] if isinstance(size, list) else size,
            'text_length': tokenizer.get('model_max_length', 77), 'text_width': config['cross_attention_dim']}


def feeds(m: int, k: int, seed: int, ts_dtype, shapes: dict) -> dict:
    """m latents with a timestep each, k = r * m text rows; the same numbers for the same seed."""
    rng = np.random.default_rng(seed)
    c, side = shapes['channels'], shapes['side']
    return {'sample': rng.standard_normal((m, c, side, side), dtype=np.float32),
            'timestep': rng.integers(1, 999, m).astype(ts_dtype),
            'encoder_hidden_states': rng.standard_normal((k, shapes['text_length'], shapes['text_width']), dtype=np.float32)}


def expanded(f: dict) -> dict:
    """The same call with every latent repeated for its text rows (the graph's standard input)."""
    k, m = f['encoder_hidden_states'].shape[0], f['sample'].shape[0]
    index = np.arange(k) % m
    return {'sample': f['sample'][index], 'timestep': f['timestep'][index], 'encoder_hidden_states': f['encoder_hidden_states']}


def rewrite(model: onnx.ModelProto, shapes: dict) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    nodes = list(g.node)
    producer = {o: n for n in nodes for o in n.output}
    added: list[onnx.NodeProto] = []
    consts: set[str] = set()
    outputs: set[str] = set()

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        """A node named after its one output, made once."""
        if output not in outputs:
            outputs.add(output)
            added.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def const(name: str, value) -> str:
        name = MARK + name
        if name not in consts:
            consts.add(name)
            g.initializer.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    # m and k, and the index that pairs text row j with latent j mod m
    m_rows = node('Gather', [node('Shape', ['sample'], MARK + 'sample_shape'), const('zero', [0])], MARK + 'latents')
    k_rows = node('Gather', [node('Shape', ['encoder_hidden_states'], MARK + 'text_shape'), const('zero', [0])], MARK + 'text_rows')
    rows = node('Range', [const('zero_scalar', 0), node('Squeeze', [k_rows], MARK + 'k'), const('one_scalar', 1)], MARK + 'rows')
    index = node('Mod', [rows, m_rows], MARK + 'index')

    # the first transformer's self-attention (at the top level, or at the first level with attention when the top
    # one has none: DownBlock2D) takes its batch from the text (context.shape[0]); before the text comes in, that
    # batch is the latents'
    norm1 = next((n for n in nodes if FIRST_BLOCK.match(n.name)), None)
    if norm1 is None:
        raise SystemExit('Expected a node /m/down_attns.N/norm1/LayerNormalization (the export of models/train/sd_model.py); '
                         'this graph is not one this script knows how to rewrite')
    reshapes = [n for n in nodes if n.op_type == 'Reshape' and n.input[0] == norm1.output[0]]
    if len(reshapes) != 1 or producer[reshapes[0].input[1]].op_type != 'Concat':
        raise SystemExit(f'Expected one Reshape of {norm1.output[0]} by a Concat of the batch, found {len(reshapes)}')
    batch_shape = producer[reshapes[0].input[1]]
    reshapes[0].input[1] = node('Concat', [m_rows, *batch_shape.input[1:]], MARK + 'self_attention_shape', axis=0)

    # the part that reads no text: nodes that depend on the latent or the timestep and not on the text
    everything = topological(nodes + added, g)

    def reach(sources: list[str]) -> set[str]:
        tensors, found = set(sources), set()
        for n in everything:
            if any(x in tensors for x in n.input):
                found.add(n.name)
                tensors.update(n.output)
        return found
    shared = reach(['sample', 'timestep']) - reach(['encoder_hidden_states'])
    made = {o: n for n in everything for o in n.output}
    cut: dict[str, list[onnx.NodeProto]] = {}
    for n in everything:
        for x in n.input:
            # (the index itself reads the number of latents: it is not one of the crossings)
            if n.name not in shared and not n.name.startswith(MARK) and x in made and made[x].name in shared:
                cut.setdefault(x, []).append(n)
    if not cut:
        raise SystemExit('Found no part of the graph that reads the latent and not the text')

    # the shape of everything the shared part makes, at 3 latents: latent rows (3) or token rows (3*h*w)
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    inside = [o for n in everything if n.name in shared for o in n.output]
    del probe.graph.output[:]
    probe.graph.output.extend([onnx.ValueInfoProto(name=name) for name in inside])
    del probe.graph.node[:]
    probe.graph.node.extend(everything)
    ts_dtype = timestep_dtype(g)
    probe_feed = expanded(feeds(3, 3, 0, ts_dtype, shapes))
    values = {**probe_feed, **dict(zip(inside, session(probe).run(None, probe_feed)))}

    def tag(name: str) -> str:
        return MARK + name.strip('/').replace('/', '.')

    gathered: dict[str, str] = {}

    def gather(name: str) -> str:
        if name not in gathered:
            shape = values[name].shape
            if shape and shape[0] == 3:
                gathered[name] = node('Gather', [name, index], tag(name) + '.rows', axis=0)
            elif len(shape) == 2 and shape[0] % 3 == 0:                  # token rows [m*h*w, C]
                width = shape[1]
                per_latent = node('Concat', [m_rows, const('minus_one', [-1]), const(f'width{width}', [width])],
                                  MARK + f'tokens{width}_shape', axis=0)
                tokens = node('Reshape', [name, per_latent], tag(name) + '.per_latent')
                picked = node('Gather', [tokens, index], tag(name) + '.picked', axis=0)
                gathered[name] = node('Reshape', [picked, const(f'token_rows{width}', [-1, width])], tag(name) + '.rows')
            else:
                raise SystemExit(f'Expected {name} to have a row per latent or per token, it has shape {list(shape)}')
        return gathered[name]

    rebuilt: dict[str, str] = {}

    def shape_chain(name: str) -> str:
        """An int64 tensor the shared part computes from Shape nodes, computed again over the gathered tensors."""
        if name not in rebuilt:
            n = made[name]
            if n.op_type == 'Shape' and not n.attribute and values[n.input[0]].shape[0] == 3:
                # a tensor with a row per latent: the same shape with k rows, without gathering the rows
                rest = node('Shape', [n.input[0]], tag(name) + '.rest', start=1)
                rebuilt[name] = node('Concat', [k_rows, rest], tag(name) + '.rows', axis=0)
            elif n.op_type == 'Shape':
                rebuilt[name] = node('Shape', [gather(n.input[0])], tag(name) + '.rows')
            else:
                inputs = [shape_chain(x) if x in made and made[x].name in shared else x for x in n.input]
                copy = helper.make_node(n.op_type, inputs, [tag(name) + '.rows'], name=tag(name) + '.rows')
                copy.attribute.extend(n.attribute)
                added.append(copy)
                rebuilt[name] = copy.output[0]
        return rebuilt[name]

    for name, outside in cut.items():
        replacement = shape_chain(name) if values[name].dtype == np.int64 else gather(name)
        for n in outside:
            n.input[:] = [replacement if x == name else x for x in n.input]

    del g.node[:]
    g.node.extend(topological(everything + [n for n in added if n.name not in {e.name for e in everything}], g))
    for i in g.input:
        if i.name in ('sample', 'timestep'):
            i.type.tensor_type.shape.dim[0].dim_param = 'latents'
    onnx.checker.check_model(model)
    return model


def timestep_dtype(g: onnx.GraphProto):
    return np.float32 if next(i for i in g.input if i.name == 'timestep').type.tensor_type.elem_type == TensorProto.FLOAT else np.int64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, help='text-to-image folder (its unet/model.onnx is rewritten in place)')
    a = ap.parse_args()
    path = os.path.join(a.model, 'unet', 'model.onnx')
    shapes = folder_shapes(a.model)
    extra_path = os.path.join(a.model, 'pictalk.json')
    extra = json.load(open(extra_path)) if os.path.exists(extra_path) else {}
    original = onnx.load(path)
    if any(n.name.startswith(MARK) for n in original.graph.node):
        print(f'{path} already takes each latent once; left as it is')
    else:
        shared = rewrite(original, shapes)
        ts_dtype = timestep_dtype(original.graph)
        before, after = session(original), session(shared)
        for seed, (m, k) in enumerate([(1, 1), (1, 2), (3, 6), (5, 10), (2, 6), (4, 4)]):
            f = feeds(m, k, seed, ts_dtype, shapes)
            want = before.run(None, expanded(f))[0]
            for name, got in (('once', after.run(None, f)[0]), ('repeated', after.run(None, expanded(f))[0])):
                if not np.array_equal(want, got):
                    raise SystemExit(f'The rewritten UNet differs from the original at {m} latents and {k} text rows fed '
                                     f'{name}: largest difference {float(np.abs(want - got).max())}; nothing written')
        tmp = path + '.shared.tmp'
        onnx.save(shared, tmp)
        os.replace(tmp, path)
        print(f'wrote {path}: the layers before the first cross-attention run once per latent '
              f'(checked to the bit against the original graph at 6 shapes)')
    extra['unet_shared_latents'] = True
    with open(extra_path, 'w') as f:
        json.dump(extra, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
