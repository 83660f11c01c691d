"""What two processes on this machine's two cores can give over one, with nothing of pictalk around them: the shipped
int8 UNet called in a loop (Python onnxruntime, one thread, batch 10 as a worker's merged draft steps), one process
alone and then two at once, their order swapped from round to round (scripts/BENCH.md). The ratio of UNet calls a
second, two processes over one, is the ceiling of `cluster_imagine_scaling_w2_w1` on this host: a cluster worker
spends about 95% of its CPU inside such calls.

    python3 scripts/measure/two_process_ceiling.py [--rounds 6] [--seconds 8]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
import needs  # noqa: E402
needs.require()



def loop(start: float, seconds: float, batch: int, out) -> None:
    import unet_setup
    session = unet_setup.session(config=unet_setup.NO_SPINNING)
    feed = unet_setup.feed(batch)
    for _ in range(3):
        session.run(None, feed)
    while time.time() < start:                       # every process of a level starts timing at the same moment
        time.sleep(0.001)
    calls = 0
    while time.time() < start + seconds:
        session.run(None, feed)
        calls += 1
    out.put(calls / seconds)


def level(processes: int, seconds: float, batch: int) -> float:
    out = mp.Queue()
    start = time.time() + 3.0                        # room to load the session in each process
    workers = [mp.Process(target=loop, args=(start, seconds, batch, out)) for _ in range(processes)]
    for w in workers:
        w.start()
    rates = [out.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=6)
    ap.add_argument('--seconds', type=float, default=8.0)
    ap.add_argument('--batch', type=int, default=10)
    a = ap.parse_args()
    ratios = []
    for r in range(a.rounds):
        if r % 2 == 0:
            one = level(1, a.seconds, a.batch)
            two = level(2, a.seconds, a.batch)
        else:
            two = level(2, a.seconds, a.batch)
            one = level(1, a.seconds, a.batch)
        ratios.append(two / one)
        print(f'round {r + 1}: one process {one:.2f}, two {two:.2f} calls/s; ratio {two / one:.2f}', flush=True)
    print(f'two processes over one: median {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})')


if __name__ == '__main__':
    main()
