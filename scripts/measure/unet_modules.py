"""Where one UNet call goes, module by module, in onnxruntime (the shipped int8 graph) and in PyTorch eager (the same
weights read back by models/train/onnx_weights.py), both with one thread, at the same batch (scripts/BENCH.md).

onnxruntime's side is its profile grouped by the module scope in each node's name (`/m/down_attns.0/...`); nodes
that the graph optimizer made or merged without a scope are `(unscoped)`. PyTorch's side is forward hooks around each
module. Both are scaled to the median time of a plain call, measured in rounds that alternate the two (this host's
speed moves by a third within minutes, so two totals measured a minute apart are not comparable). The last line says
what the two calls would take without the attention blocks at the top resolution.

    python3 scripts/measure/unet_modules.py [--batch 2] [--calls 40]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import torch  # noqa: E402

import unet_setup  # noqa: E402
from unet_setup import FOLDER, median_ms  # noqa: E402

SCOPE = re.compile(r'/m/([a-z_0-9]+(?:\.\d+)?)/')


def onnxruntime_modules(feed: dict, calls: int) -> tuple[object, dict[str, float]]:
    """A plain call, and each module's share of a profiled call."""
    plain = unet_setup.session(config=unet_setup.NO_SPINNING)
    with tempfile.TemporaryDirectory() as tmp:
        profiled = unet_setup.session(config=unet_setup.NO_SPINNING, profile_prefix=os.path.join(tmp, 'unet'))
        for _ in range(calls):
            profiled.run(None, feed)
        with open(profiled.end_profiling()) as f:
            events = json.load(f)
    spent = collections.Counter()
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            scope = SCOPE.search(e['name'])
            spent[scope.group(1) if scope else '(unscoped)'] += e['dur']
    profiled_total = sum(spent.values())
    return (lambda: plain.run(None, feed)), {name: us / profiled_total for name, us in spent.items()}


def pytorch_modules(feed: dict, calls: int) -> tuple[object, dict[str, float]]:
    """A plain call, and each module's share of a hooked call (`(between modules)`: the rest)."""
    import onnx_weights
    from sample_ddim import T2I
    torch.set_num_threads(1)
    unet = T2I(onnx_weights.load_folder(FOLDER)).unet
    args = (torch.from_numpy(feed['sample']), torch.from_numpy(feed['timestep']), torch.from_numpy(feed['encoder_hidden_states']))
    with torch.inference_mode():
        spent, started = collections.Counter(), {}
        hooks = []
        for name, child in unet.named_children():
            parts = list(enumerate(child)) if isinstance(child, torch.nn.ModuleList) else [(None, child)]
            for i, module in parts:
                key = name if i is None else f'{name}.{i}'
                hooks.append(module.register_forward_pre_hook(lambda m, x, key=key: started.__setitem__(key, time.perf_counter())))
                hooks.append(module.register_forward_hook(
                    lambda m, x, y, key=key: spent.__setitem__(key, spent[key] + time.perf_counter() - started[key])))
        for _ in range(5):
            unet(*args)
        spent.clear()
        start = time.perf_counter()
        for _ in range(calls):
            unet(*args)
        hooked = time.perf_counter() - start
        for hook in hooks:
            hook.remove()
    modules = {name: s / hooked for name, s in spent.items()}
    modules['(between modules)'] = max(0.0, 1 - sum(modules.values()))

    def call() -> None:
        with torch.inference_mode():
            unet(*args)
    return call, modules


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--calls', type=int, default=40)
    ap.add_argument('--rounds', type=int, default=6)
    a = ap.parse_args()
    feed = unet_setup.feed(a.batch)
    ort_call, ort_share = onnxruntime_modules(feed, a.calls)
    pt_call, pt_share = pytorch_modules(feed, a.calls)
    ort_times, pt_times = [], []
    for r in range(a.rounds):
        pair = [(ort_call, ort_times), (pt_call, pt_times)]
        for call, times in (pair if r % 2 == 0 else pair[::-1]):
            times.append(median_ms(call, a.calls))
    ort_total, pt_total = statistics.median(ort_times), statistics.median(pt_times)
    ratios = sorted(p / o for o, p in zip(ort_times, pt_times))
    ort_ms = {name: share * ort_total for name, share in ort_share.items()}
    pt_ms = {name: share * pt_total for name, share in pt_share.items()}
    print(f'one UNet call at batch {a.batch}, one thread, median of {a.rounds} alternating rounds: onnxruntime int8 {ort_total:.2f} ms, '
          f'PyTorch float {pt_total:.2f} ms, ratio {pt_total / ort_total:.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})')
    print(f'{"module":20s} {"onnxruntime ms":>15s} {"PyTorch ms":>11s} {"ratio":>6s}')
    for name in sorted(set(ort_ms) | set(pt_ms)):
        o, p = ort_ms.get(name), pt_ms.get(name)
        ratio = f'{p / o:6.2f}' if o and p else '     -'
        print(f'{name:20s} {o if o is not None else float("nan"):15.3f} {p if p is not None else float("nan"):11.3f} {ratio}')
    top = unet_setup.top_attention_blocks()
    if not top:
        return                                                         # the top level has no attention already
    o = ort_total - sum(ort_ms.get(n, 0.0) for n in top)
    p = pt_total - sum(pt_ms.get(n, 0.0) for n in top)
    print(f'without {", ".join(top)}: onnxruntime {o:.2f} ms, PyTorch {p:.2f} ms, ratio {p / o:.2f}')


if __name__ == '__main__':
    main()
