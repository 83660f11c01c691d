"""Loads every caption-dataset fixture format and checks records, splits, tokenization and the vocabulary.
Run by tests/models/train/python.test.ts; prints 'ok <name>' per check and exits non-zero on the first failure."""
import os
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'models', 'train'))
from datasets import (BOS, EOS, PAD, SPECIALS, UNK, build_vocab, encode, frequency_report, load_dataset,  # noqa: E402
                      load_images, load_karpathy, read_kaggle_csv, tokenize)

FIX = os.path.join(ROOT, 'tests', 'fixtures', 'caption-datasets')
# the files this check writes, removed when it ends
SCRATCH = tempfile.TemporaryDirectory(prefix='pictalk-datasets-')


def check(name, cond, detail=''):
    if not cond:
        raise SystemExit(f'FAIL {name}: {detail}')
    print('ok', name)


# tokenization: lower case, punctuation and digits gone, one-letter leftovers dropped except "a"
check('tokenize', tokenize("A dog's 2 red, tri-colored balls.") == ['a', 'dog', 'red', 'tri', 'colored', 'balls'],
      tokenize("A dog's 2 red, tri-colored balls."))
vocab, counts = build_vocab([['a', 'dog'], ['a', 'cat'], ['a', 'dog', 'runs']], min_count=2)
check('vocab specials and order', vocab == SPECIALS + ['a', 'dog'] and (PAD, BOS, EOS, UNK) == (0, 1, 2, 3), vocab)
check('encode unknown', encode(['a', 'cat'], {w: i for i, w in enumerate(vocab)}) == [4, UNK])
rep = frequency_report(counts, vocab, 2)
check('frequency report', 'vocabulary 6' in rep and 'coverage 0.7143' in rep and 'some dropped: cat runs' in rep, rep)

for folder, name, n, splits in (('flickr8k-token', 'flickr8k', 4, (2, 1, 1)), ('flickr8k-kaggle', 'flickr8k', 4, None),
                                ('flickr30k-token', 'flickr30k', 3, None), ('flickr30k-csv', 'flickr30k', 3, None),
                                ('karpathy-coco', 'coco', 4, (2, 1, 1))):
    ds = load_dataset(os.path.join(FIX, folder))
    check(f'{folder} loads', ds.name == name and len(ds.images) == n, (ds.name, len(ds.images)))
    check(f'{folder} five or more captions each', all(len(r.captions) >= 5 for r in ds.images))
    check(f'{folder} image files exist', all(os.path.exists(ds.path(r)) for r in ds.images),
          [ds.path(r) for r in ds.images])
    got = tuple(len(ds.split(s)) for s in ('train', 'val', 'test'))
    check(f'{folder} splits', sum(got) == n and (splits is None or got == splits), got)

# both Flickr8k distributions give the same captions for the same image
a = load_dataset(os.path.join(FIX, 'flickr8k-token'))
b = load_dataset(os.path.join(FIX, 'flickr8k-kaggle'))
check('flickr8k token == kaggle captions', {r.file: r.captions for r in a.images} == {r.file: r.captions for r in b.images})
check('flickr8k split files', [r.file for r in a.split('val')] == ['1002674143_1b742ab4b8.jpg'])
# Flickr30k token and csv agree
c = load_dataset(os.path.join(FIX, 'flickr30k-token'))
d = load_dataset(os.path.join(FIX, 'flickr30k-csv'))
check('flickr30k token == csv captions', {r.file: r.captions for r in c.images} == {r.file: r.captions for r in d.images})
# Karpathy: restval counts as train, filepath joins the folder, a sixth sentence is kept
k = load_karpathy(os.path.join(FIX, 'karpathy-coco', 'dataset_coco.json'))
check('karpathy restval -> train', sorted(r.file for r in k.split('train')) == sorted(
    ['train2014/COCO_train2014_000000057870.jpg', 'val2014/COCO_val2014_000000184613.jpg']))
check('karpathy sixth caption', max(len(r.captions) for r in k.images) == 6)
tmp = os.path.join(SCRATCH.name, 'kaggle-captions.txt')
open(tmp, 'w').write('image,caption\nx.jpg,"A dog, a cat ."\nx.jpg,Two dogs , running\n')
check('kaggle csv quoted commas', read_kaggle_csv(tmp) == {'x.jpg': ['A dog, a cat .', 'Two dogs , running']},
      read_kaggle_csv(tmp))

# the builtin world: Kaggle captions.txt + split files + compositionalImages.txt
w = load_dataset(os.path.join(FIX, 'world-mini'))
got = {s: len(w.split(s)) for s in ('train', 'val', 'test', 'compositional')}
check('world splits', got == {'train': 32, 'val': 4, 'test': 4, 'compositional': 2}, got)
check('world five captions', all(len(r.captions) == 5 for r in w.images))
imgs = load_images(w, w.split('test'), (64, 64))
check('world images uint8 [N, 64, 64, 3]', imgs.shape == (4, 64, 64, 3) and imgs.dtype.name == 'uint8', imgs.shape)
small = load_images(a, a.images, (16, 12))
check('resize to [N, H, W, 3]', small.shape == (4, 16, 12, 3), small.shape)

# a malformed token file is an error that says what was expected
bad = os.path.join(SCRATCH.name, 'bad-token')
os.makedirs(bad, exist_ok=True)
open(os.path.join(bad, 'Flickr8k.token.txt'), 'w').write('no tab here\n')
try:
    load_dataset(bad)
    check('malformed token file raises', False)
except ValueError as e:
    check('malformed token file raises', 'expected "image.jpg#N<TAB>caption"' in str(e), e)
print('datasets: all checks passed')
