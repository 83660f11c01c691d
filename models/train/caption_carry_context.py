"""Give an exported captioner folder the carried glimpse (models/README.md, "The carried glimpse"), in place.

    python3 models/train/caption_carry_context.py --captioner models/builtin/captioner

A captioner that reads the next step's glimpse (caption_world.py, `reads_ahead`) attends twice in each decoder step:
once from h, for the word it reads, and once from h_out, for the colour it chooses. The second glimpse is the next
step's first, so `caption_export.py` now exports graphs that carry it: the decoder step takes `context` and gives
`context_out`, and the encoder gives the first step's as `context0`. This script makes the same layout from a folder
exported before, without its training checkpoint, by editing the graphs:

- decoder_step.onnx: the first glimpse becomes the input `context`, the second is also the output `context_out`, and
  the nodes only the first needed are dropped. The keys and the features are cut per image before they are gathered
  per hypothesis (the export gathered [hypotheses, cells, F + A] and cut that).
- every encoder graph of the folder (encoder.onnx and config.json's `encoder_file`): the decoder's second attention,
  over each image's own features and h0, gives `context0`. Nothing else in the graph changes, so `features` stay the
  same bit for bit, and domain.json's `encoder_sha256` is brought up to date after that is checked.

It checks before it writes: each encoder's features, h0 and c0 equal the old graph's exactly, and six decoder steps
over random images, with the hypotheses reordered between steps as a beam search does, give the old graphs' logits,
h and c within 1e-5. A folder that already carries the glimpse is left as it is.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_graph import session, topological

TOLERANCE = 1e-5


def producers(g: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in g.node for o in n.output}


def depends_on(g: onnx.GraphProto, name: str, source: str) -> bool:
    """Whether tensor `name` is computed from tensor `source`."""
    made = producers(g)
    seen, todo = set(), [name]
    while todo:
        t = todo.pop()
        if t == source:
            return True
        if t in seen or t not in made:
            continue
        seen.add(t)
        todo.extend(i for i in made[t].input if i)
    return False


def prune_and_sort(g: onnx.GraphProto) -> None:
    """Drop the nodes no output needs and the initializers no node reads; order the rest topologically."""
    nodes = list(g.node)
    live, keep, changed = {o.name for o in g.output}, set(), True
    while changed:
        changed = False
        for i, n in enumerate(nodes):
            if i not in keep and any(o in live for o in n.output):
                keep.add(i)
                live.update(x for x in n.input if x)
                changed = True
    ordered = topological([n for i, n in enumerate(nodes) if i in keep], g)
    del g.node[:]
    g.node.extend(ordered)
    used = {x for n in g.node for x in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)


def carry_decoder(model: onnx.ModelProto, feature_dim: int) -> onnx.ModelProto:
    """The decoder step with the glimpse carried (module docstring)."""
    g = model.graph
    # the two glimpses: sigmoid(att_gate(h_top)) * context, the first from h, the second from h_out
    made = producers(g)
    gated = [n for n in g.node if n.op_type == 'Mul' and any(i in made and made[i].op_type == 'Sigmoid' for i in n.input)]
    first = [n for n in gated if not depends_on(g, n.output[0], 'h_out')]
    second = [n for n in gated if depends_on(g, n.output[0], 'h_out')]
    if len(first) != 1 or len(second) != 1:
        raise SystemExit(f'Expected one gated glimpse from h and one from h_out in the decoder step, got {len(first)} '
                         f'and {len(second)}: not a captioner that reads the next step\'s glimpse')
    for n in g.node:
        for k, x in enumerate(n.input):
            if x == first[0].output[0]:
                n.input[k] = 'context'
    g.input.insert(3, helper.make_tensor_value_info('context', TensorProto.FLOAT, ['batch', feature_dim]))
    g.node.append(helper.make_node('Identity', [second[0].output[0]], ['context_out'], name='context_out'))
    g.output.append(helper.make_tensor_value_info('context_out', TensorProto.FLOAT, ['batch', feature_dim]))

    # the keys and the features cut per image, then gathered per hypothesis
    gathers = [n for n in g.node if n.op_type == 'Gather' and list(n.input) == ['features', 'feature_rows']]
    if len(gathers) != 1:
        raise SystemExit(f'Expected one gather of `features` by `feature_rows` in the decoder step, got {len(gathers)}')
    rows = gathers[0].output[0]
    consumers = [n for n in g.node if rows in n.input]
    added = []

    def const(name: str, value: int) -> str:
        g.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
        return name

    cells = ''
    for n in consumers:
        if n.op_type == 'Slice' and n.input[0] == rows:        # the keys: cut per image, then gathered
            cut = n.output[0] + '.per_image'
            added.append(helper.make_node('Slice', ['features', *n.input[1:]], [cut], name=n.name + '.per_image'))
            added.append(helper.make_node('Gather', [cut, 'feature_rows'], [n.output[0]], name=n.name + '.rows', axis=0))
            g.node.remove(n)
        elif n.op_type == 'MatMul' and n.input[1] == rows:     # alpha @ the cells' features (not the keys after them)
            if not cells:
                cells = 'features.cells.rows'
                added.append(helper.make_node('Slice', ['features', const('cells.start', 0), const('cells.end', feature_dim),
                                                        const('cells.axis', 2)], ['features.cells'], name='features.cells'))
                added.append(helper.make_node('Gather', ['features.cells', 'feature_rows'], [cells], name=cells, axis=0))
            n.input[1] = cells
        else:
            raise SystemExit(f'Expected the gathered features to be read by a Slice (the keys) and MatMuls (the '
                             f'glimpses), got {n.op_type} {n.name}')
    g.node.extend(added)
    prune_and_sort(g)
    return model


def add_glimpse(encoder: onnx.ModelProto, decoder: onnx.ModelProto, feature_dim: int) -> onnx.ModelProto:
    """The encoder with `context0`: the carried decoder's second attention over each image's features and h0."""
    from onnx.utils import Extractor
    part = Extractor(decoder).extract_model(['features', 'feature_rows', 'h_out'], ['context_out'])
    g = encoder.graph
    prefix = 'context0/'
    outer = {'features': 'features', 'h_out': 'h0', 'feature_rows': prefix + 'rows', 'context_out': 'context0', '': ''}

    def name(x: str) -> str:
        return outer.get(x, prefix + x)

    def const(n: str, value: int) -> str:
        g.initializer.append(numpy_helper.from_array(np.array(value, np.int64), prefix + n))
        return prefix + n
    # each image reads its own features: rows 0 .. batch - 1
    g.node.append(helper.make_node('Shape', ['features'], [prefix + 'shape'], name=prefix + 'shape', start=0, end=1))
    g.node.append(helper.make_node('Squeeze', [prefix + 'shape'], [prefix + 'batch'], name=prefix + 'batch'))
    g.node.append(helper.make_node('Range', [const('zero', 0), prefix + 'batch', const('one', 1)], [prefix + 'rows'],
                                   name=prefix + 'rows'))
    for t in part.graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = name(t.name)
        g.initializer.append(copy)
    for n in part.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = prefix + n.name
        del copy.input[:]
        copy.input.extend(name(x) for x in n.input)
        del copy.output[:]
        copy.output.extend(name(x) for x in n.output)
        g.node.append(copy)
    g.output.append(helper.make_tensor_value_info('context0', TensorProto.FLOAT, ['batch', feature_dim]))
    prune_and_sort(g)
    return encoder


def check(old_enc, new_enc, old_dec, new_dec, conf: dict, label: str) -> float:
    """Encoder outputs equal, six reordered decoder steps within TOLERANCE; returns the largest difference."""
    rng = np.random.default_rng(0)
    H, W = conf['image_size']
    px = rng.standard_normal((3, 3, H, W)).astype(np.float32)
    f_old, h_old, c_old = old_enc.run(['features', 'h0', 'c0'], {'pixel_values': px})
    f, h, c, ctx = new_enc.run(['features', 'h0', 'c0', 'context0'], {'pixel_values': px})
    if not (np.array_equal(f, f_old) and np.array_equal(h, h_old) and np.array_equal(c, c_old)):
        raise SystemExit(f'Expected {label} to give the same features, h0 and c0 as before')
    worst, ho, co = 0.0, h_old, c_old
    image_rows = np.arange(3, dtype=np.int64)
    # the rows each step keeps, in their new order (3 hypotheses, then 3, 4, 4, 2, 3), as a beam search reorders them
    for order in ([0, 1, 2], [2, 2, 0, 1], [1, 0, 3, 3], [3, 2], [1, 0, 1], [2, 0, 1]):
        ids = rng.integers(4, conf['vocab_size'], len(image_rows)).astype(np.int64)
        before = old_dec.run(['logits', 'h_out', 'c_out'], {'input_ids': ids, 'h': ho, 'c': co, 'features': f,
                                                               'feature_rows': image_rows})
        after = new_dec.run(['logits', 'h_out', 'c_out', 'context_out'], {
            'input_ids': ids, 'h': h, 'c': c, 'context': ctx, 'features': f, 'feature_rows': image_rows})
        worst = max([worst] + [float(np.abs(x - y).max()) for x, y in zip(before, after[:3])])
        rows = np.array(order, np.int64)
        image_rows = image_rows[rows]
        ho, co = before[1][:, rows], before[2][:, rows]
        h, c, ctx = after[1][:, rows], after[2][:, rows], after[3][rows]
    if not worst <= TOLERANCE:
        raise SystemExit(f'Expected {label} with the carried glimpse within {TOLERANCE} of the old graphs, got {worst:.3e}')
    return worst


def sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--captioner', required=True, help='an exported captioner folder (config.json, decoder_step.onnx, ...)')
    a = ap.parse_args()
    conf_path = os.path.join(a.captioner, 'config.json')
    conf = json.load(open(conf_path))
    dec_path = os.path.join(a.captioner, 'decoder_step.onnx')
    old_dec_model = onnx.load(dec_path)
    if any(i.name == 'context' for i in old_dec_model.graph.input):
        print(f'{a.captioner} already carries the glimpse; nothing to do')
        return
    if conf.get('attention_dim') is None:
        raise SystemExit(f'Expected a captioner with attention in {a.captioner}, its config.json has no attention_dim')
    feature_dim = int(conf['feature_dim'])
    new_dec_model = carry_decoder(onnx.load(dec_path), feature_dim)
    onnx.checker.check_model(new_dec_model)
    old_dec, new_dec = session(old_dec_model), session(new_dec_model)
    encoders = ['encoder.onnx'] + ([conf['encoder_file']] if conf.get('encoder_file', 'encoder.onnx') != 'encoder.onnx' else [])
    written = {'decoder_step.onnx': new_dec_model}
    for file in encoders:
        old = onnx.load(os.path.join(a.captioner, file))
        new = add_glimpse(onnx.load(os.path.join(a.captioner, file)), new_dec_model, feature_dim)
        onnx.checker.check_model(new)
        worst = check(session(old), session(new), old_dec, new_dec, conf, file)
        print(f'{file} + decoder_step.onnx: the same features, h0 and c0; six reordered steps within {worst:.2e} '
              f'of the old graphs', flush=True)
        written[file] = new
    for file, model in written.items():
        path = os.path.join(a.captioner, file)
        onnx.save(model, path + '.tmp')
        os.replace(path + '.tmp', path)
    domain_path = os.path.join(a.captioner, 'domain.json')
    if os.path.exists(domain_path):
        text = open(domain_path).read()
        domain = json.loads(text)
        if domain.get('encoder_file') in written:       # its features are the same (checked above), its bytes are not
            text = text.replace(domain['encoder_sha256'], sha256(os.path.join(a.captioner, domain['encoder_file'])))
            with open(domain_path + '.tmp', 'w') as f:
                f.write(text)
            os.replace(domain_path + '.tmp', domain_path)
    print(f'wrote {", ".join(written)} in {a.captioner}' + (' and brought domain.json up to date' if os.path.exists(domain_path) else ''))


if __name__ == '__main__':
    sys.exit(main())
