"""Recognizer checks: scene label round trip, the scene-accuracy rule, and a smoke train + ONNX export.
Run by tests/models/train/python.test.ts."""
import json
import os
import subprocess
import sys
import tempfile

# a missing package is one line naming it (models/train/needs.py), before the imports that need it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
TRAIN = os.path.join(ROOT, 'models', 'train')
sys.path.insert(0, TRAIN)
from recognizer import OUTPUTS, canonical, decode_scene, encode_scene, label_vocab, scene_correct  # noqa: E402

torch.set_num_threads(1)
WORLD = os.path.join(ROOT, 'tests', 'fixtures', 'caption-datasets', 'world-mini')


def check(name, cond, detail=''):
    if not cond:
        raise SystemExit(f'FAIL {name}: {detail}')
    print('ok', name)


scenes = json.load(open(os.path.join(WORLD, 'scenes.json')))
voc = label_vocab(WORLD, scenes)
check('label vocab from manifest', voc['names'][0] == 'none' and 'cat' in voc['names'] and 'circle' in voc['names']
      and voc['colors'][0] == 'none' and 'red' in voc['colors'], voc)
for f, s in scenes.items():
    y = encode_scene(s, voc)
    back = decode_scene(y[0], max(y[1], 0), y[2:5], y[5:8], y[8:11], voc)
    if back != canonical(s):
        check(f'round trip {f}', False, (back, canonical(s)))
check('every fixture scene round-trips', True)

# scene_correct: one wrong attribute in a used slot fails; anything in an unused slot does not matter
s2 = {'axis': 'horizontal', 'objects': [{'name': 'cat', 'color': None, 'size': 'big'},
                                        {'name': 'circle', 'color': 'red', 'size': 'small'}]}
y = torch.tensor([encode_scene(s2, voc)])                    # [1, 11]


def logits_for(yrow, tweak=None):
    yrow = list(yrow)
    if tweak:
        tweak(yrow)
    oh = lambda i, n: torch.nn.functional.one_hot(torch.tensor(i), n).float()  # noqa: E731
    return (oh(yrow[0], 3)[None], oh(max(yrow[1], 0), 2)[None],
            torch.stack([oh(i, len(voc['names'])) for i in yrow[2:5]])[None],
            torch.stack([oh(i, len(voc['colors'])) for i in yrow[5:8]])[None],
            torch.stack([oh(i, 3) for i in yrow[8:11]])[None])


check('exact prediction is correct', bool(scene_correct(logits_for(y[0].tolist()), y)[0]))
check('unused slot ignored', bool(scene_correct(logits_for(y[0].tolist(), lambda r: r.__setitem__(4, 3)), y)[0]))
check('wrong colour fails', not bool(scene_correct(logits_for(y[0].tolist(), lambda r: r.__setitem__(6, 1 if r[6] != 1 else 2)), y)[0]))
check('wrong axis fails', not bool(scene_correct(logits_for(y[0].tolist(), lambda r: r.__setitem__(1, 1 - r[1])), y)[0]))
one = {'axis': None, 'objects': [{'name': 'cat', 'color': None, 'size': 'big'}]}
y1 = torch.tensor([encode_scene(one, voc)])
check('axis ignored for one object', bool(scene_correct(logits_for(y1[0].tolist(), lambda r: r.__setitem__(1, 1)), y1)[0]))

# smoke: trains, exports, reloads with onnxruntime; output names and shapes per config.json
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'rec')
    r = subprocess.run([sys.executable, os.path.join(TRAIN, 'recognizer.py'), '--smoke', '--out', os.path.join(tmp, 'run'),
                        '--export', out], capture_output=True, text=True, timeout=170)
    check('recognizer smoke exits 0', r.returncode == 0, r.stderr[-1500:])
    conf = json.load(open(os.path.join(out, 'config.json')))
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(out, 'recognizer.onnx'), providers=['CPUExecutionProvider'])
    res = sess.run(None, {'pixel_values': np.zeros((2, 3, 64, 64), np.float32)})
    shapes = [tuple(a.shape) for a in res]
    check('recognizer outputs', [o.name for o in sess.get_outputs()] == OUTPUTS == conf['outputs'] and shapes == [
        (2, 3), (2, 2), (2, 3, len(voc['names'])), (2, 3, len(voc['colors'])), (2, 3, 3)], shapes)

    # --init-from: the exported folder (BatchNorms folded into the convolutions) loads back into PyTorch exactly
    from recognizer import Recognizer, freeze_norms, load_exported
    model = Recognizer(conf['labels'], tuple(conf['image_size']), (8, 16, 16, 16))    # the smoke's channels
    load_exported(model, out)
    model.train()
    freeze_norms(model)
    model.fc[-1].p = 0.0                                                   # dropout off, BatchNorms frozen: eval math
    px = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        mine = model(torch.from_numpy(px))
    worst = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(sess.run(None, {'pixel_values': px}), mine))
    check('an exported recognizer loads back for --init-from', worst <= 1e-4, worst)
print('recognizer: all checks passed')
