"""Where one UNet call of the builtin text-to-image folder goes: onnxruntime's profile of the shipped int8 graph,
`--calls` calls at batch 2 with one thread, summed per operator type (scripts/BENCH.md). Profiling adds its own cost to
each operator, so read the shares, not the totals.

    python3 scripts/measure/unet_profile.py [--calls 40]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()

import unet_setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--calls', type=int, default=40)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        session = unet_setup.session(profile_prefix=os.path.join(tmp, 'unet'))
        feed = unet_setup.feed(2)
        for _ in range(a.calls):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    time, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            time[e['args']['op_name']] += e['dur']
            count[e['args']['op_name']] += 1
    total = sum(time.values())
    for op, us in time.most_common(15):
        print(f'{op:28s} {us / a.calls / 1000:7.3f} ms a call  {100 * us / total:5.1f}%  {count[op] / a.calls:4.0f} nodes')
    print(f'all operators: {total / a.calls / 1000:.2f} ms a call (profiled)')


if __name__ == '__main__':
    main()
