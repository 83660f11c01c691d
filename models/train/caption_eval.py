"""Semantic accuracy of an exported captioner on the builtin world: caption each test image on the ONNX graphs
(greedy and beam), parse the caption with the world's own parser (models/world/parser.ts, run through tsx) and
compare with the drawn scene from scenes.json. Also reports exact match against any of the five references.

    python3 models/train/caption_eval.py --captioner models/builtin/captioner --data data/world --limit 1000

Prints one JSON object: per split and search, {images, parsed_equal, parsed_none, exact_match}.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, HERE)
from caption_beam import OnnxStepper, beam, decode, greedy, load_pixels  # noqa: E402
from datasets import load_dataset  # noqa: E402

# Reads [{caption, scene}] on stdin; writes [{parsed: sceneKey | null, equal: bool}] using the world's parser.
PARSE_TS = """
import { parseCaption } from './models/world/parser.js';
import { canonicalScene, sceneKey } from './models/world/scene.js';
let text = '';
process.stdin.on('data', (d) => { text += d; });
process.stdin.on('end', () => {
  const items = JSON.parse(text);
  const out = items.map(({ caption, scene }) => {
    const parsed = parseCaption(caption);
    const key = parsed === null ? null : sceneKey(parsed);
    return { parsed: key, equal: key !== null && key === sceneKey(canonicalScene(scene)) };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def parse_with_world(items: list[dict]) -> list[dict]:
    tsx = os.path.join(ROOT, 'node_modules', '.bin', 'tsx')
    res = subprocess.run([tsx, '--input-type=module', '-e', PARSE_TS], input=json.dumps(items), capture_output=True,
                         text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f'world parser failed: {res.stderr[-2000:]}')
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--captioner', default='models/builtin/captioner')
    ap.add_argument('--data', default='data/world')
    ap.add_argument('--splits', nargs='+', default=['test', 'compositional'])
    ap.add_argument('--limit', type=int, default=1000, help='images per split')
    ap.add_argument('--beam', type=int, default=None, help='beam size (default: config beam_size)')
    ap.add_argument('--out', default=None, help='also write the captions and results here (JSON)')
    args = ap.parse_args()
    conf = json.load(open(os.path.join(args.captioner, 'config.json')))
    vocab = json.load(open(os.path.join(args.captioner, 'vocab.json')))
    stepper = OnnxStepper(args.captioner)
    ds = load_dataset(args.data)
    scenes = json.load(open(os.path.join(args.data, 'scenes.json')))
    k = args.beam or conf['beam_size']
    summary, rows = {}, []
    for split in args.splits:
        recs = ds.split(split)[: args.limit]
        for name, fn in (('greedy', lambda px: greedy(stepper, px, conf)), (f'beam{k}', lambda px: beam(stepper, px, conf, k))):
            items, exact = [], 0
            for r in recs:
                px = load_pixels(ds.path(r), conf['image_size'], conf['mean'], conf['std'])
                cap = decode(fn(px)['ids'], vocab)
                refs = {' '.join(c.lower().split()) for c in r.captions}
                exact += cap in refs
                items.append({'caption': cap, 'scene': scenes[r.file], 'file': r.file})
            parsed = parse_with_world([{'caption': i['caption'], 'scene': i['scene']} for i in items])
            n = max(len(items), 1)
            summary[f'{split}/{name}'] = {'images': len(items),
                                          'parsed_equal': sum(p['equal'] for p in parsed) / n,
                                          'parsed_none': sum(p['parsed'] is None for p in parsed) / n,
                                          'exact_match': exact / n}
            rows += [{'split': split, 'search': name, 'file': i['file'], 'caption': i['caption'], **p}
                     for i, p in zip(items, parsed)]
            print(split, name, json.dumps(summary[f'{split}/{name}']), flush=True)
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({'summary': summary, 'captions': rows}, f, indent=1)


if __name__ == '__main__':
    main()
