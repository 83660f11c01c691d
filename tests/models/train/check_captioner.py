"""Captioner checks: teacher forcing equals the step function, the exported fixture reproduces its parity.json,
beam-1 equals greedy, and training resumes after kill -9. Run by tests/models/train/python.test.ts."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

# a missing package is one line naming it (models/train/needs.py), before the imports that need it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'models', 'train'))
import needs  # noqa: E402
needs.require()

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
TRAIN = os.path.join(ROOT, 'models', 'train')
sys.path.insert(0, TRAIN)
from caption_beam import OnnxStepper, TorchStepper, beam, greedy, load_pixels, log_softmax64  # noqa: E402
from caption_export import export  # noqa: E402
from caption_model import Captioner, CaptionConfig, build_captioner  # noqa: E402

torch.set_num_threads(1)
FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'tiny-captioner')


class FirstThree(torch.nn.Module):
    """An encoder graph as exported before the glimpse was carried: features, h0 and c0 only."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, x):
        return self.graph(x)[:3]


def check(name, cond, detail=''):
    if not cond:
        raise SystemExit(f'FAIL {name}: {detail}')
    print('ok', name)


# 1. teacher forcing (one LSTM call, K captions per image) equals the per-step decoder used by export
for attention in (False, True):
    torch.manual_seed(0)
    cfg = CaptionConfig(vocab_size=20, image_size=(32, 32), channels=(8, 8), feature_dim=12, embed_dim=6,
                        hidden_size=10, num_layers=2, dropout=0.0, attention=attention, attention_dim=5)
    m = Captioner(cfg).eval()
    px = torch.randn(2, 3, 32, 32)                          # [B, 3, H, W]
    ids = torch.randint(1, 20, (4, 5))                      # [B*K, T], K = 2
    with torch.no_grad():
        full = m(px, ids, captions_per_image=2)             # [4, 5, V]
        feats, h, c = m.encode(px)
        feats, h, c = feats.repeat_interleave(2, 0), h.repeat_interleave(2, 1), c.repeat_interleave(2, 1)
        steps = []
        for t in range(5):
            lg, h, c = m.step(ids[:, t], h, c, feats)
            steps.append(lg)
    diff = (full - torch.stack(steps, 1)).abs().max().item()
    check(f'teacher forcing == step loop (attention={attention})', diff < 1e-5, diff)
    shape = tuple(m.encode(px)[0].shape)
    check(f'feature shape (attention={attention})', shape == ((2, 64, 12) if attention else (2, 12)), shape)

# 2. the committed fixture reproduces its parity.json on onnxruntime (guards the search algorithm and the export)
for sub in ('', 'attention', 'glimpse'):
    folder = os.path.join(FIXTURE, sub)
    conf = json.load(open(os.path.join(folder, 'config.json')))
    parity = json.load(open(os.path.join(folder, 'parity.json')))
    vocab = json.load(open(os.path.join(folder, 'vocab.json')))
    check(f'fixture {sub or "plain"} contract keys', all(k in conf for k in (
        'architecture', 'image_size', 'mean', 'std', 'bos_id', 'eos_id', 'pad_id', 'unk_id', 'max_length',
        'beam_size', 'length_penalty', 'hidden_size', 'num_layers')) and len(vocab) == conf['vocab_size'])
    st = OnnxStepper(folder)
    names = ([i.name for i in st.enc.get_inputs()], [o.name for o in st.enc.get_outputs()],
             [i.name for i in st.dec.get_inputs()], [o.name for o in st.dec.get_outputs()])
    # every step graph takes features once per image and `feature_rows`, the image of each hypothesis
    # and the glimpse variant carries its glimpse from step to step
    carried = sub == 'glimpse'
    check(f'fixture {sub or "plain"} graph names', names == (
        ['pixel_values'], ['features', 'h0', 'c0'] + ['context0'] * carried,
        ['input_ids', 'h', 'c'] + ['context'] * carried + ['features', 'feature_rows'],
        ['logits', 'h_out', 'c_out'] + ['context_out'] * carried), names)
    for im in parity['images']:
        px = load_pixels(os.path.join(folder, im['file']), conf['image_size'], conf['mean'], conf['std'])
        check(f'{sub or "plain"}/{im["file"]} pixel sum', abs(float(px.sum(dtype=np.float64)) - im['pixel_values']['sum']) < 1e-3)
        f, h0, c0, ctx0 = st.encode(px)
        lg = st.step(np.array([conf['bos_id']], np.int64), h0, c0, f, ctx0)[0]
        d = np.abs(log_softmax64(lg)[0] - np.array(im['first_step_logprobs'])).max()
        check(f'{sub or "plain"}/{im["file"]} first-step logprobs', d < 1e-4, d)
        g, b = greedy(st, px, conf), beam(st, px, conf, 3)
        check(f'{sub or "plain"}/{im["file"]} greedy', g['ids'] == im['greedy']['ids'] and abs(g['score'] - im['greedy']['score']) < 1e-4, g)
        check(f'{sub or "plain"}/{im["file"]} beam3', b['ids'] == im['beam']['ids'] and abs(b['score'] - im['beam']['score']) < 1e-4, b)
        b1 = beam(st, px, conf, 1)
        check(f'{sub or "plain"}/{im["file"]} beam1 == greedy', b1['ids'] == g['ids'] and abs(b1['score'] - g['score']) < 1e-9)

# 3. export fails loudly on a vocabulary that does not match, and writes nothing
with tempfile.TemporaryDirectory() as tmp:
    m = Captioner(CaptionConfig(vocab_size=9, image_size=(16, 16), channels=(4,), feature_dim=4, embed_dim=4, hidden_size=4))
    try:
        export(m, ['w'] * 8, os.path.join(tmp, 'cap'))
        check('export vocab mismatch raises', False)
    except SystemExit as e:
        check('export vocab mismatch raises', 'Expected a vocabulary of 9 words' in str(e) and not os.path.exists(os.path.join(tmp, 'cap')), e)

# 4. kill -9 in the middle of training, then the same command resumes from the checkpoint and finishes
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'run')
    cmd = [sys.executable, os.path.join(TRAIN, 'train_caption.py'), '--smoke', '--out', out, '--max-steps', '400',
           '--save-seconds', '0', '--export', '']
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = os.path.join(out, 'ckpt.pt')
    t0 = time.time()
    while not os.path.exists(ck) and time.time() - t0 < 90 and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    step_killed = torch.load(ck, weights_only=False)['state']['step']
    check('checkpoint written before kill', 0 < step_killed < 400, step_killed)
    # --smoke implies --fresh; resume runs the same settings without it
    cmd2 = [sys.executable, os.path.join(TRAIN, 'train_caption.py'), '--data',
            os.path.join(ROOT, 'tests', 'fixtures', 'caption-datasets', 'world-mini'), '--out', out,
            '--max-steps', str(step_killed + 5), '--batch-size', '8']
    r = subprocess.run(cmd2, capture_output=True, text=True, timeout=120)
    check('resume exits 0', r.returncode == 0, r.stderr[-1500:])
    check('resume continues from the checkpoint', f'resumed at step {step_killed}' in r.stdout, r.stdout[-800:])
    final = torch.load(ck, weights_only=False)
    check('resumed run keeps the model config', list(final['model_config']['channels']) == [8, 16, 16, 16] and
          final['state']['step'] == step_killed + 5, (final['model_config']['channels'], final['state']['step']))
# 5. the evaluation's parser bridge: the world's own references parse to their drawn scenes, a wrong one does not
from caption_eval import parse_with_world  # noqa: E402
from datasets import load_dataset  # noqa: E402
world = os.path.join(ROOT, 'tests', 'fixtures', 'caption-datasets', 'world-mini')
ds, scenes = load_dataset(world), json.load(open(os.path.join(world, 'scenes.json')))
items = [{'caption': c, 'scene': scenes[r.file]} for r in ds.split('test') for c in r.captions]
res = parse_with_world(items + [{'caption': items[0]['caption'], 'scene': scenes[ds.split('train')[0].file]},
                                {'caption': 'a a a', 'scene': scenes[ds.split('train')[0].file]}])
check('world parser bridge', all(p['equal'] for p in res[:-2]) and not res[-2]['equal'] and res[-1]['parsed'] is None,
      res)
# 6. --shared-input-words: the words share one input row in the checkpoint and in the exported graph; outputs stay
#    distinct; an unknown word is refused by name
import onnxruntime as ort  # noqa: E402
with tempfile.TemporaryDirectory() as tmp:
    out, exp = os.path.join(tmp, 'run'), os.path.join(tmp, 'cap')
    base = [sys.executable, os.path.join(TRAIN, 'train_caption.py'), '--smoke', '--out', out, '--max-steps', '30',
            '--export', exp]
    r = subprocess.run(base + ['--shared-input-words', 'red', 'blue', 'green'], capture_output=True, text=True, timeout=180)
    check('shared-input run exits 0', r.returncode == 0, r.stderr[-1500:])
    ck = torch.load(os.path.join(out, 'ckpt.pt'), weights_only=False)
    ids = [ck['vocab'].index(w) for w in ('red', 'blue', 'green')]
    emb = ck['model']['embed.weight']
    check('shared words have one input row in the checkpoint', all(torch.equal(emb[ids[0]], emb[i]) for i in ids[1:]))
    sess = ort.InferenceSession(os.path.join(exp, 'decoder_step.onnx'), providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(0)
    fixed = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
             for i in sess.get_inputs() if i.name not in ('input_ids', 'feature_rows')}
    fixed['feature_rows'] = np.zeros(1, np.int64)                      # the one hypothesis reads image 0
    logits = [sess.run(None, {**fixed, 'input_ids': np.array([i], np.int64)})[0] for i in ids]
    other = sess.run(None, {**fixed, 'input_ids': np.array([ck['vocab'].index('a')], np.int64)})[0]
    check('the exported decoder reads shared words as one', all(np.array_equal(logits[0], x) for x in logits[1:]) and
          not np.array_equal(logits[0], other))
    r = subprocess.run(base + ['--shared-input-words', 'red', 'nosuchword'], capture_output=True, text=True, timeout=120)
    check('an unknown shared word is refused by name', r.returncode != 0 and 'unknown nosuchword' in r.stderr, r.stderr[-500:])
# 7. --backbone factorized: the shape stream sees only ink, so a recoloured object with the same darkest channel gives
#    the same shape features; the colour stream tells the two apart; the export reproduces PyTorch
torch.manual_seed(0)
cfg = CaptionConfig(vocab_size=20, image_size=(32, 32), channels=(8, 8), feature_dim=12, embed_dim=6, hidden_size=10,
                    dropout=0.0, backbone='factorized', colour_channels=4)
m = build_captioner(cfg).eval()
mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
canvas = torch.full((2, 3, 32, 32), 0.93)                        # a light background
canvas[0, :, 8:20, 10:22] = torch.tensor([220, 35, 35]).view(3, 1, 1) / 255    # a red square
canvas[1, :, 8:20, 10:22] = torch.tensor([35, 160, 55]).view(3, 1, 1) / 255    # the same square, green
with torch.no_grad():
    shape = m.cnn.shape(((1 - canvas.min(1, keepdim=True).values) - 0.5) / 0.25)
    grid = m.cnn((canvas - mean) / std)
check('factorized: a recoloured object gives the same shape features', torch.allclose(shape[0], shape[1], atol=1e-6))
check('factorized: the colour stream tells the colours apart',
      not torch.allclose(grid[0, shape.shape[1]:], grid[1, shape.shape[1]:], atol=1e-4))
check('factorized: the encoder grid holds both streams', grid.shape[1] == 8 + 2 * 4, grid.shape)
with tempfile.TemporaryDirectory() as tmp:
    export(m, ['<pad>', '<bos>', '<eos>', '<unk>'] + [f'w{i}' for i in range(16)], os.path.join(tmp, 'cap'))
    conf = json.load(open(os.path.join(tmp, 'cap', 'config.json')))
    check('factorized: exported and checked against PyTorch', conf['architecture'] == 'cnn-lstm', conf)
# 7b. --fine-grid: two objects in one coarse cell but in different fine cells keep their own colours (the coarse
#     grid mixes them); the shape part stays colour-blind
cfg_f = CaptionConfig(**{**cfg.to_dict(), 'attention': True, 'fine_grid': True})
mf = build_captioner(cfg_f).eval()
mf.cnn.load_state_dict(m.cnn.state_dict())
m_att = build_captioner(CaptionConfig(**{**cfg.to_dict(), 'attention': True})).eval()
m_att.cnn.load_state_dict(m.cnn.state_dict())
pair = torch.full((3, 3, 32, 32), 0.93)
pair[:2, :, 0:2, 0:2] = torch.tensor([220, 35, 35]).view(3, 1, 1) / 255        # red: fine cell (0, 0), 2x2 pixels
pair[0, :, 2:4, 2:4] = torch.tensor([35, 160, 55]).view(3, 1, 1) / 255         # green: fine cell (1, 1), same coarse cell
pair[2, :, 0:2, 0:2] = torch.tensor([35, 160, 55]).view(3, 1, 1) / 255         # the red object's place, in green
with torch.no_grad():
    gf, gc = mf.cnn((pair - mean) / std), m_att.cnn((pair - mean) / std)
sc, sf = 8, mf.cnn.shape_channels
check('fine grid: cells twice as fine, both shape blocks and the colour stream', tuple(gf.shape) == (3, 8 + 8 + 8, 16, 16)
      and tuple(gc.shape) == (3, 16, 8, 8), (gf.shape, gc.shape))
check('fine grid: a neighbour in the same coarse cell leaves a fine cell\'s colour as it was',
      torch.allclose(gf[0, sf:, 0, 0], gf[1, sf:, 0, 0], atol=1e-6) and
      not torch.allclose(gc[0, sc:, 0, 0], gc[1, sc:, 0, 0], atol=1e-4))
check('fine grid: the shape features are colour-blind, the colour features are not',
      torch.allclose(gf[1, :sf], gf[2, :sf], atol=1e-6) and not torch.allclose(gf[1, sf:, 0, 0], gf[2, sf:, 0, 0], atol=1e-4))
with tempfile.TemporaryDirectory() as tmp:
    export(mf, ['<pad>', '<bos>', '<eos>', '<unk>'] + [f'w{i}' for i in range(16)], os.path.join(tmp, 'cap'))
    conf = json.load(open(os.path.join(tmp, 'cap', 'config.json')))
    check('fine grid: exported and checked against PyTorch', conf['num_positions'] == 256, conf['num_positions'])
# 7b'. --backbone vgg16 reads a VGG16 state dict in torchvision's layout (its classifier ignored), and exports
with tempfile.TemporaryDirectory() as tmp:
    from caption_model import vgg16_features  # noqa: E402
    torch.manual_seed(1)
    ref = vgg16_features()
    weights = {f'features.{k}': v for k, v in ref.state_dict().items()}
    weights['classifier.0.weight'] = torch.zeros(2, 2)
    torch.save(weights, os.path.join(tmp, 'vgg16.pth'))
    cfg_v = CaptionConfig(vocab_size=20, image_size=(32, 32), feature_dim=12, embed_dim=6, hidden_size=10,
                          dropout=0.0, backbone='vgg16', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    mv = build_captioner(cfg_v, os.path.join(tmp, 'vgg16.pth')).eval()
    check('vgg16: the weights file is read', all(torch.equal(a, b) for a, b in
                                                 zip(ref.state_dict().values(), mv.cnn.state_dict().values())))
    export(mv, ['<pad>', '<bos>', '<eos>', '<unk>'] + [f'w{i}' for i in range(16)], os.path.join(tmp, 'cap'))
    check('vgg16: exported and checked against PyTorch',
          json.load(open(os.path.join(tmp, 'cap', 'config.json')))['backbone'] == 'vgg16')
    torch.save({'features.0.weight': torch.zeros(1)}, os.path.join(tmp, 'bad.pth'))
    try:
        build_captioner(cfg_v, os.path.join(tmp, 'bad.pth'))
        refused = ''
    except SystemExit as e:
        refused = str(e)
    check('vgg16: a weights file of another network is refused by name', 'bad.pth' in refused and 'VGG16' in refused, refused)
# 7c. settings that do not go together are refused by name, before any training
for bad, name in (({'colour_words': (5, 6)}, '--colour-words'), ({'fine_grid': True}, '--fine-grid'),
                  ({'attention': True, 'colour_blind_words': (7,)}, '--colour-blind-words'),
                  ({'attention': True, 'colour_words': (5, 6), 'colour_blind_words': (6,)}, '--colour-blind-words')):
    try:
        build_captioner(CaptionConfig(**{**cfg.to_dict(), **bad}))
        refused = ''
    except SystemExit as e:
        refused = str(e)
    check(f'refused: {bad}', name in refused, refused)
# 8. the two-stage recipe: --encoder-from a factorized run, --freeze-encoder keeps its CNN bit for bit while the
#    attention decoder trains on the cached grid, the colour-word decoder keeps shape and colour apart in its layers,
#    the export reproduces PyTorch; a resume reads the cache back; an encoder of other settings is refused
with tempfile.TemporaryDirectory() as tmp:
    s1, s2 = os.path.join(tmp, 's1'), os.path.join(tmp, 's2')
    base = [sys.executable, os.path.join(TRAIN, 'train_caption.py'), '--smoke', '--backbone', 'factorized']
    r = subprocess.run(base + ['--out', s1, '--export', ''], capture_output=True, text=True, timeout=180)
    check('stage 1 exits 0', r.returncode == 0, r.stderr[-1500:])
    colours, blind = ['red', 'green', 'blue'], ['circle', 'square', 'triangle']
    stage2 = base + ['--out', s2, '--attention', '--encoder-from', os.path.join(s1, 'ckpt.pt'),
                     '--freeze-encoder', '--export', os.path.join(tmp, 'cap'), '--colour-words', *colours,
                     '--colour-blind-words', *blind]
    r = subprocess.run(stage2, capture_output=True, text=True, timeout=180)
    check('stage 2 exits 0 and exports', r.returncode == 0 and 'exported' in r.stdout and
          'encoded' in r.stdout, (r.stdout[-800:], r.stderr[-1500:]))
    one = torch.load(os.path.join(s1, 'ckpt.pt'), weights_only=False)['model']
    two = torch.load(os.path.join(s2, 'ckpt.pt'), weights_only=False)
    cnn = [k for k in one if k.startswith('cnn.')]
    check('frozen encoder: the CNN is the stage 1 CNN, bit for bit',
          len(cnn) > 10 and all(torch.equal(one[k], two['model'][k]) for k in cnn))
    check('stage 2 trained its own projection and decoder', 'proj.0.first.weight' in two['model'] and
          two['model_config']['attention'] and 'head.words.weight' in two['model'] and 'head.weight' in one)
    first, second, c = two['model']['proj.0.first.weight'], two['model']['proj.0.second.weight'], two['model_config']['channels'][-1]
    F_ = two['model_config']['feature_dim']
    check('split projection: the shape channels make the shape half, the colour channels the colour half',
          tuple(first.shape) == (F_ // 2, c) and tuple(second.shape) == (F_ - F_ // 2, 2 * 16), (first.shape, second.shape))
    from caption_export import load_checkpoint  # noqa: E402
    m, vocab, _ = load_checkpoint(os.path.join(s2, 'ckpt.pt'))
    # the export carries the glimpse (models/README.md, "The carried glimpse"): the same scores as PyTorch's step,
    # step after step, with rows reordered between steps as a beam search does
    onnx_s, torch_s = OnnxStepper(os.path.join(tmp, 'cap')), TorchStepper(m)
    check('colour words: the decoder step carries the glimpse',
          [i.name for i in onnx_s.dec.get_inputs()] == ['input_ids', 'h', 'c', 'context', 'features', 'feature_rows']
          and [o.name for o in onnx_s.dec.get_outputs()] == ['logits', 'h_out', 'c_out', 'context_out']
          and [o.name for o in onnx_s.enc.get_outputs()] == ['features', 'h0', 'c0', 'context0'])
    torch.manual_seed(1)
    px = torch.randn(3, 3, 64, 64).numpy()
    (fo, ho, co, xo), (ft, ht, ct, _) = onnx_s.encode(px), torch_s.encode(px)
    worst = 0.0
    for t, rows in enumerate(([0, 1, 2], [2, 2, 0], [1, 0, 2], [0, 0, 1])):
        ids_t = np.array([4 + t, 5 + t, 6], np.int64)
        lo, ho, co, xo = onnx_s.step(ids_t, ho, co, fo, xo)
        lt, ht, ct, _ = torch_s.step(ids_t, ht, ct, ft)
        worst = max(worst, float(np.abs(lo - lt).max()))
        ho, co, xo, fo = ho[:, rows], co[:, rows], xo[rows], fo[rows]
        ht, ct, ft = ht[:, rows], ct[:, rows], ft[rows]
    check('colour words: the carried glimpse scores as PyTorch over reordered steps', worst < 1e-4, worst)
    # a folder exported before the glimpse was carried (the step attends twice, the encoder has no context0) gets the
    # carried layout from caption_carry_context.py, with the same scores
    from caption_export import DecoderStepGraph, EncoderGraph  # noqa: E402
    old = os.path.join(tmp, 'old')
    shutil.copytree(os.path.join(tmp, 'cap'), old)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        px1 = torch.randn(2, 3, 64, 64)
        f1 = EncoderGraph(m)(px1)
        torch.onnx.export(FirstThree(EncoderGraph(m)).eval(), (px1,), os.path.join(old, 'encoder.onnx'), input_names=['pixel_values'],
                          output_names=['features', 'h0', 'c0'], opset_version=17, dynamo=False,
                          dynamic_axes={'pixel_values': {0: 'batch'}, 'features': {0: 'batch'}, 'h0': {1: 'batch'}, 'c0': {1: 'batch'}})
        ids3 = torch.tensor([1, 4, 5])
        torch.onnx.export(DecoderStepGraph(m).eval(), (ids3[:2], f1[1], f1[2], f1[0], torch.arange(2)), os.path.join(old, 'decoder_step.onnx'),
                          input_names=['input_ids', 'h', 'c', 'features', 'feature_rows'], output_names=['logits', 'h_out', 'c_out'],
                          opset_version=17, dynamo=False,
                          dynamic_axes={'input_ids': {0: 'batch'}, 'h': {1: 'batch'}, 'c': {1: 'batch'}, 'features': {0: 'images'},
                                        'feature_rows': {0: 'batch'}, 'logits': {0: 'batch'}, 'h_out': {1: 'batch'}, 'c_out': {1: 'batch'}})
    conf_old = json.load(open(os.path.join(old, 'config.json')))
    conf_old.pop('encoder_file', None)
    json.dump(conf_old, open(os.path.join(old, 'config.json'), 'w'))
    check('an older export attends twice', OnnxStepper(old).encode(px)[3] is None)
    r = subprocess.run([sys.executable, os.path.join(TRAIN, 'caption_carry_context.py'), '--captioner', old],
                       capture_output=True, text=True, timeout=120)
    check('caption_carry_context.py converts it', r.returncode == 0 and 'within' in r.stdout, (r.stdout, r.stderr[-1500:]))
    converted = OnnxStepper(old)
    (fo, ho, co, xo), (ft, ht, ct, _) = converted.encode(px), torch_s.encode(px)
    worst = 0.0
    for t, rows in enumerate(([0, 1, 2], [2, 2, 0], [1, 0, 2])):
        ids_t = np.array([4 + t, 5, 6 + t], np.int64)
        lo, ho, co, xo = converted.step(ids_t, ho, co, fo, xo)
        lt, ht, ct, _ = torch_s.step(ids_t, ht, ct, ft)
        worst = max(worst, float(np.abs(lo - lt).max()))
        ho, co, xo, fo = ho[:, rows], co[:, rows], xo[rows], fo[rows]
        ht, ct, ft = ht[:, rows], ct[:, rows], ft[rows]
    check('the converted folder carries the glimpse and scores as PyTorch', xo is not None and worst < 1e-4, worst)
    r = subprocess.run([sys.executable, os.path.join(TRAIN, 'caption_carry_context.py'), '--captioner', old],
                       capture_output=True, text=True, timeout=120)
    check('a second conversion leaves the folder as it is', r.returncode == 0 and 'already carries' in r.stdout, r.stdout)
    torch.manual_seed(0)
    px, ids = torch.randn(2, 3, 64, 64), torch.randint(4, len(vocab), (4, 6))
    with torch.no_grad():
        full = m(px, ids, captions_per_image=2)
        f, h, c = m.encode(px)
        f, h, c = f.repeat_interleave(2, 0), h.repeat_interleave(2, 1), c.repeat_interleave(2, 1)
        steps, h1, c1 = [], h, c
        for t in range(ids.shape[1]):
            lg, h1, c1 = m.step(ids[:, t], h1, c1, f)
            steps.append(lg)
        check('colour words: teacher forcing == step loop', torch.allclose(full, torch.stack(steps, 1), atol=1e-5))
        half = m.cfg.feature_dim // 2
        recoloured = f.clone()
        recoloured[..., half:] += torch.randn_like(recoloured[..., half:])
        a_, ha, ca = m.step(ids[:, 0], h, c, f)
        b_, hb, cb = m.step(ids[:, 0], h, c, recoloured)
        cw = [vocab.index(w) for w in colours]
        # which colour: read from the next step's glimpse, the one the shape word after it is read from
        glimpse, _ = m.context(f, ha[-1])
        q = torch.log_softmax(m.head.choose(glimpse[..., half:]), -1)
        chosen = a_[:, cw] - a_[:, cw[:1]]
        said = [m.step(torch.full_like(ids[:, 0], i), h, c, f) for i in cw]
        for layer in (m.head.colours, m.head.choose):
            layer.weight.zero_()
            layer.bias.zero_()
        plain, _, _ = m.step(ids[:, 0], h, c, f)                  # the LSTM's scores alone
    moved = {vocab[i] for i in torch.nonzero((a_ - b_).abs().max(0).values > 1e-6).flatten().tolist()}
    check('colour words: other colour features move the colour words, never the colour-blind ones',
          set(colours) <= moved and not moved & set(blind), moved)
    check('colour words: the LSTM reads no colour feature', torch.equal(ha, hb) and torch.equal(ca, cb))
    check('colour words: the colour is chosen at the next glimpse', torch.allclose(chosen, q - q[:, :1], atol=1e-5),
          (chosen - (q - q[:, :1])).abs().max())
    check('colour words: read as one word, so which colour was said changes nothing after it',
          all(torch.equal(said[0][k], x[k]) for x in said[1:] for k in range(3)))
    check('colour words: the LSTM gives them one score', all(torch.equal(plain[:, cw[0]], plain[:, i]) for i in cw[1:])
          and not torch.equal(plain[:, cw[0]], plain[:, vocab.index('a')]))
    # --smoke starts fresh; the same settings without it resume, and read the cached grid back
    resume = [a for a in stage2 if a not in ('--smoke', '--export', os.path.join(tmp, 'cap'))]
    resume += ['--data', os.path.join(ROOT, 'tests', 'fixtures', 'caption-datasets', 'world-mini'), '--channels',
               '8', '16', '16', '16', '--feature-dim', '32', '--hidden-size', '32', '--embed-dim', '16',
               '--batch-size', '8', '--max-steps', str(two['state']['step'] + 4)]
    r = subprocess.run(resume, capture_output=True, text=True, timeout=180)
    check('stage 2 resumes from its cache', r.returncode == 0 and f"resumed at step {two['state']['step']}" in r.stdout and
          'encoded' not in r.stdout, (r.stdout[-800:], r.stderr[-1500:]))
    r = subprocess.run(stage2 + ['--colour-channels', '8'], capture_output=True, text=True,
                       timeout=180)
    check('an encoder of other settings is refused', r.returncode != 0 and '--encoder-from' in r.stderr,
          r.stderr[-500:])
    # --fine-grid reads the same stage 1 CNN, attends over 4x the cells, and splits its projection at the shape
    # channels of both blocks it reads
    fine = [a if a != s2 else os.path.join(tmp, 's2-fine') for a in stage2 if a not in ('--export', os.path.join(tmp, 'cap'))]
    r = subprocess.run(fine + ['--fine-grid', '--export', os.path.join(tmp, 'cap-fine')], capture_output=True,
                       text=True, timeout=180)
    check('fine grid: stage 2 exits 0 and exports', r.returncode == 0 and 'exported' in r.stdout, r.stderr[-1500:])
    coarse_n = json.load(open(os.path.join(tmp, 'cap', 'config.json')))['num_positions']
    fine_n = json.load(open(os.path.join(tmp, 'cap-fine', 'config.json')))['num_positions']
    check('fine grid: four times the cells', fine_n == 4 * coarse_n, (coarse_n, fine_n))
    three = torch.load(os.path.join(tmp, 's2-fine', 'ckpt.pt'), weights_only=False)
    check('fine grid: the CNN is the stage 1 CNN, bit for bit', all(torch.equal(one[k], three['model'][k]) for k in cnn))
    W, ch = three['model']['proj.0.first.weight'], three['model_config']['channels']
    check('fine grid: the split projection reads both shape blocks into the shape half', W.shape[1] == ch[-1] + ch[-2],
          W.shape)
print('captioner: all checks passed')
