"""What a UNet without self-attention at the top resolution would gain against PyTorch, before anyone retrains one
(scripts/BENCH.md, "The round of the bounds").

The float attention is about as fast in onnxruntime as in PyTorch, so it pulls the ratio of the two down. This takes
the shipped int8 graph and bypasses the self-attention (`attn1`) of the transformer blocks at the top resolution
(each block's `t + attn1(norm1(t))` becomes `t`; the nodes left without a consumer are dropped), skips the same
`attn1` in PyTorch eager on the same weights (models/train/onnx_weights.py), and times one call of each of the four
at the same batch with one thread, in rounds that alternate them. The outputs are not a model anyone should ship:
only the times are read.

    python3 scripts/measure/unet_without_self_attention.py [--batch 2] [--calls 60] [--rounds 4]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import onnx  # noqa: E402
import torch  # noqa: E402

import unet_setup  # noqa: E402
from unet_setup import FOLDER, UNET, median_ms  # noqa: E402


def graph_without_self_attention(blocks: list[str], path: str) -> int:
    """Write the shipped graph with each block's first residual add bypassed; returns the graph's node count."""
    model = onnx.load(UNET)
    graph = model.graph
    for block in blocks:
        summed, residual = f'/m/{block}/Add_output_0', f'/m/{block}/proj_in/Gemm_output_0'
        adds = [n for n in graph.node if list(n.output) == [summed]]
        if len(adds) != 1 or residual not in adds[0].input:
            raise SystemExit(f'expected {summed} to be {residual} plus the self-attention in the shipped graph')
        for node in graph.node:
            for k, name in enumerate(node.input):
                if name == summed:
                    node.input[k] = residual
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.save(model, path)
    return len(graph.node)


class NoSelfAttention(torch.nn.Module):
    """Stands in for a block's `attn1`: adds nothing to the residual."""

    def forward(self, x, context, batch):
        return torch.zeros((), dtype=x.dtype)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--calls', type=int, default=60)
    ap.add_argument('--rounds', type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    blocks = unet_setup.top_attention_blocks()
    if not blocks:
        raise SystemExit(f'{FOLDER}: the UNet has no attention at its top level; nothing to bypass')
    feed = unet_setup.feed(a.batch)
    with tempfile.TemporaryDirectory() as tmp:
        bypassed = os.path.join(tmp, 'unet.onnx')
        nodes = graph_without_self_attention(blocks, bypassed)
        shipped_session, bypassed_session = unet_setup.session(UNET, unet_setup.NO_SPINNING), unet_setup.session(bypassed, unet_setup.NO_SPINNING)
    import onnx_weights
    from sample_ddim import T2I
    unet = T2I(onnx_weights.load_folder(FOLDER)).unet.eval()
    without = copy.deepcopy(unet)
    for block in blocks:
        kind, index = block.split('.')
        getattr(without, kind)[int(index)].attn1 = NoSelfAttention()
    args = {name: torch.from_numpy(value) for name, value in feed.items()}
    print(f'one UNet call at batch {a.batch}, one thread; self-attention bypassed in {", ".join(blocks)} ({nodes} nodes left)')
    ratios = []
    with torch.inference_mode():
        for r in range(a.rounds):
            ort_full = median_ms(lambda: shipped_session.run(None, feed), a.calls)
            ort_cut = median_ms(lambda: bypassed_session.run(None, feed), a.calls)
            pt_full = median_ms(lambda: unet(**args), max(10, a.calls // 3))
            pt_cut = median_ms(lambda: without(**args), max(10, a.calls // 3))
            ratios.append((pt_full / ort_full, pt_cut / ort_cut))
            print(f'round {r + 1}: onnxruntime {ort_full:.2f} -> {ort_cut:.2f} ms, PyTorch {pt_full:.2f} -> {pt_cut:.2f} ms, '
                  f'ratio {pt_full / ort_full:.2f} -> {pt_cut / ort_cut:.2f}', flush=True)
    full, cut = statistics.median(r[0] for r in ratios), statistics.median(r[1] for r in ratios)
    print(f'median ratio {full:.2f} -> {cut:.2f} ({100 * (cut / full - 1):+.0f}%)')


if __name__ == '__main__':
    main()
