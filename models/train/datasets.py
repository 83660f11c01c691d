"""Caption datasets: Flickr8k (token file or Kaggle captions.txt), Flickr30k (results token file or results.csv),
Karpathy-split JSON (dataset_coco.json / dataset_flickr8k.json / dataset_flickr30k.json), and the builtin world
(which is written in Flickr8k's Kaggle format plus compositionalImages.txt and scenes.json).

Preprocessing as in the paper: lower case, punctuation and numbers stripped, whitespace tokens (one-letter tokens
other than "a" dropped: they are left-overs such as the "s" of "dog's"), a minimum-count vocabulary with
<pad> = 0, <bos> = 1, <eos> = 2, <unk> = 3, and a word-frequency report.

    python3 models/train/datasets.py data/world --min-count 1 --report runs/world-words.txt
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import collections
import csv
import json
import os
import re
from dataclasses import dataclass, field

SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>']
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPLITS = ('train', 'val', 'test')


# ---- text ----------------------------------------------------------------------------------------------------------
def tokenize(caption: str) -> list[str]:
    """'A dog's 2 red balls.' -> ['a', 'dog', 'red', 'balls']"""
    text = re.sub(r"[^a-z]+", ' ', caption.lower())          # punctuation, digits, symbols -> space
    return [w for w in text.split() if len(w) > 1 or w == 'a']


def build_vocab(captions, min_count: int = 1) -> tuple[list[str], collections.Counter]:
    """captions: iterable of token lists -> (vocab list, counter). Words ordered by count desc, then alphabetically."""
    counts = collections.Counter(w for toks in captions for w in toks)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return SPECIALS + words, counts


def encode(tokens: list[str], index: dict[str, int]) -> list[int]:
    return [index.get(w, UNK) for w in tokens]


def frequency_report(counts: collections.Counter, vocab: list[str], min_count: int, top: int = 40) -> str:
    total = sum(counts.values())
    kept = set(vocab[len(SPECIALS):])
    covered = sum(n for w, n in counts.items() if w in kept)
    lines = [f'tokens {total}, distinct words {len(counts)}, min count {min_count}: vocabulary {len(vocab)} '
             f'({len(kept)} words + {len(SPECIALS)} specials), coverage {covered / max(total, 1):.4f}, '
             f'dropped {len(counts) - len(kept)} words ({total - covered} tokens -> <unk>)',
             f'top {top}:']
    for w, n in counts.most_common(top):
        lines.append(f'  {w:<16} {n:>8}  {n / max(total, 1):.4f}')
    rare = sorted((w for w in counts if w not in kept), key=lambda w: (counts[w], w))[:20]
    if rare:
        lines.append('some dropped: ' + ' '.join(rare))
    return '\n'.join(lines)


# ---- records ---------------------------------------------------------------------------------------------------------
@dataclass
class ImageRecord:
    file: str                                   # path relative to the dataset's image folder
    captions: list[str] = field(default_factory=list)
    split: str = 'train'                        # train | val | test
    tags: set[str] = field(default_factory=set)  # extra splits, e.g. 'compositional'


@dataclass
class CaptionSet:
    name: str
    image_dir: str
    images: list[ImageRecord]

    def split(self, name: str) -> list[ImageRecord]:
        return [r for r in self.images if r.split == name or name in r.tags]

    def path(self, r: ImageRecord) -> str:
        return os.path.join(self.image_dir, r.file)


def _first(root: str, names: list[str]) -> str | None:
    for n in names:
        p = os.path.join(root, n)
        if os.path.exists(p):
            return p
    return None


def _read_list(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def _group(pairs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = collections.OrderedDict()
    for img, cap in pairs:
        out.setdefault(img, []).append(cap)
    return out


def read_token_file(path: str) -> dict[str, list[str]]:
    """Flickr8k.token.txt / results_20130124.token: 'img.jpg#0<TAB>caption' per line."""
    pairs = []
    with open(path, encoding='utf-8') as f:
        for n, ln in enumerate(f, 1):
            ln = ln.rstrip('\n')
            if not ln.strip():
                continue
            if '\t' not in ln or '#' not in ln.split('\t', 1)[0]:
                raise ValueError(f'{path}:{n}: expected "image.jpg#N<TAB>caption", got {ln[:80]!r}')
            key, cap = ln.split('\t', 1)
            pairs.append((key.rsplit('#', 1)[0], cap.strip()))
    return _group(pairs)


def read_kaggle_csv(path: str) -> dict[str, list[str]]:
    """Kaggle Flickr8k captions.txt: CSV with header 'image,caption' (captions may be quoted and hold commas)."""
    with open(path, encoding='utf-8', newline='') as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if not header or [h.strip() for h in header[:2]] != ['image', 'caption']:
            raise ValueError(f'{path}: expected the header "image,caption", got {header!r}')
        return _group((r[0].strip(), ','.join(r[1:]).strip()) for r in rows if r)


def read_results_csv(path: str) -> dict[str, list[str]]:
    """Flickr30k results.csv: 'image_name| comment_number| comment' with '|' separators (spaces around them)."""
    pairs = []
    with open(path, encoding='utf-8') as f:
        header = f.readline()
        if '|' not in header:
            raise ValueError(f'{path}: expected a header "image_name| comment_number| comment", got {header[:80]!r}')
        for ln in f:
            parts = [p.strip() for p in ln.rstrip('\n').split('|')]
            if len(parts) >= 3 and parts[0]:
                pairs.append((parts[0], '|'.join(parts[2:])))
    return _group(pairs)


def _assign_splits(caps: dict[str, list[str]], root: str, lists: dict[str, list[str]], image_dir: str,
                   name: str) -> CaptionSet:
    """Splits from list files when present; otherwise a deterministic 80/10/10 split of the sorted names."""
    split_of = {}
    for split, names in lists.items():
        for n in names:
            split_of[n] = split
    files = list(caps)
    if not split_of:
        s = sorted(files)
        n_val = n_test = max(1, len(s) // 10) if len(s) >= 3 else 0
        for i, f in enumerate(s):
            split_of[f] = 'test' if i >= len(s) - n_test else 'val' if i >= len(s) - n_test - n_val else 'train'
    comp = set(_read_list(_first(root, ['compositionalImages.txt'])))
    # the world's compositional images are in no Flickr split list: they form a split of their own
    images = [ImageRecord(f, caps[f], split_of.get(f, 'compositional' if f in comp else 'unused'),
                          {'compositional'} if f in comp else set()) for f in files]
    return CaptionSet(name, image_dir, [r for r in images if r.split != 'unused' or r.tags])


def load_flickr8k(root: str) -> CaptionSet:
    """Both common distributions: Flickr8k_text/Flickr8k.token.txt (+ Flickr_8k.*Images.txt) with
    Flicker8k_Dataset/, or Kaggle's captions.txt with Images/. The builtin world uses the Kaggle form."""
    token = _first(root, ['Flickr8k.token.txt', 'Flickr8k_text/Flickr8k.token.txt'])
    kaggle = _first(root, ['captions.txt'])
    if token:
        caps = read_token_file(token)
    elif kaggle:
        caps = read_kaggle_csv(kaggle)
    else:
        raise FileNotFoundError(f'{root}: expected Flickr8k.token.txt or captions.txt, found neither')
    text_dir = os.path.dirname(token or kaggle)
    lists = {}
    for split, stem in (('train', 'train'), ('val', 'dev'), ('test', 'test')):
        p = _first(text_dir, [f'Flickr_8k.{stem}Images.txt']) or _first(root, [f'Flickr_8k.{stem}Images.txt'])
        if p:
            lists[split] = _read_list(p)
    image_dir = _first(root, ['Images', 'Flicker8k_Dataset', 'Flickr8k_Dataset']) or root
    return _assign_splits(caps, root, lists, image_dir, 'flickr8k')


def load_flickr30k(root: str) -> CaptionSet:
    """results_20130124.token (or results.csv); splits from a Karpathy JSON beside it when present."""
    token = _first(root, ['results_20130124.token', 'flickr30k/results_20130124.token'])
    res_csv = _first(root, ['results.csv', 'flickr30k_images/results.csv'])
    if token:
        caps = read_token_file(token)
    elif res_csv:
        caps = read_results_csv(res_csv)
    else:
        raise FileNotFoundError(f'{root}: expected results_20130124.token or results.csv, found neither')
    image_dir = _first(root, ['flickr30k_images/flickr30k_images', 'flickr30k_images', 'Images']) or root
    lists: dict[str, list[str]] = {}
    kj = _first(root, ['dataset_flickr30k.json'])
    if kj:
        for im in json.load(open(kj))['images']:
            lists.setdefault({'restval': 'train'}.get(im['split'], im['split']), []).append(im['filename'])
    return _assign_splits(caps, root, lists, image_dir, 'flickr30k')


def load_karpathy(json_path: str, image_root: str | None = None) -> CaptionSet:
    """Karpathy split JSON: images[].{filename, filepath?, split, sentences[].raw}. COCO keeps images under
    filepath (train2014/val2014); 'restval' counts as train."""
    data = json.load(open(json_path))
    root = image_root or os.path.dirname(os.path.abspath(json_path))
    images = []
    for im in data['images']:
        if 'filename' not in im or 'sentences' not in im or 'split' not in im:
            raise ValueError(f'{json_path}: expected images[] with filename, split and sentences, got keys {sorted(im)}')
        file = os.path.join(im.get('filepath', ''), im['filename'])
        caps = [s.get('raw') or ' '.join(s['tokens']) for s in im['sentences']]
        images.append(ImageRecord(file, caps, {'restval': 'train'}.get(im['split'], im['split'])))
    return CaptionSet(data.get('dataset', 'karpathy'), root, images)


def load_dataset(path: str) -> CaptionSet:
    """Detects the format from the files present (a folder, or a Karpathy .json file)."""
    if path.endswith('.json'):
        return load_karpathy(path)
    if _first(path, ['dataset_coco.json', 'dataset_flickr8k.json']) and not _first(
            path, ['captions.txt', 'Flickr8k.token.txt', 'results_20130124.token', 'results.csv']):
        return load_karpathy(_first(path, ['dataset_coco.json', 'dataset_flickr8k.json']))
    if _first(path, ['results_20130124.token', 'results.csv', 'flickr30k_images/results.csv']):
        return load_flickr30k(path)
    return load_flickr8k(path)


# ---- tensors for training --------------------------------------------------------------------------------------------
def load_images(ds: CaptionSet, records: list[ImageRecord], size: tuple[int, int], cache: str | None = None):
    """-> uint8 numpy [N, H, W, 3], resized with bilinear filtering when needed (alpha over white);
    cached as .npy when `cache` is given (keyed by the caller)."""
    import numpy as np
    from PIL import Image
    if cache and os.path.exists(cache):
        arr = np.load(cache)
        if arr.shape[0] == len(records):
            return arr
    H, W = size
    arr = np.zeros((len(records), H, W, 3), np.uint8)
    for i, r in enumerate(records):
        im = Image.open(ds.path(r))
        if im.mode in ('RGBA', 'LA', 'P'):
            im = Image.alpha_composite(Image.new('RGBA', im.size, (255, 255, 255, 255)), im.convert('RGBA'))
        im = im.convert('RGB')
        if im.size != (W, H):
            im = im.resize((W, H), Image.BILINEAR)
        arr[i] = np.asarray(im)
    if cache:
        os.makedirs(os.path.dirname(cache) or '.', exist_ok=True)
        np.save(cache + '.tmp.npy', arr)
        os.replace(cache + '.tmp.npy', cache)
    return arr


def main():
    ap = argparse.ArgumentParser(description='Load a caption dataset and print its word-frequency report.')
    ap.add_argument('path')
    ap.add_argument('--min-count', type=int, default=5)
    ap.add_argument('--report', help='also write the report to this file')
    args = ap.parse_args()
    ds = load_dataset(args.path)
    train = ds.split('train')
    vocab, counts = build_vocab((tokenize(c) for r in train for c in r.captions), args.min_count)
    head = (f'{ds.name}: {len(ds.images)} images, '
            + ', '.join(f'{s} {len(ds.split(s))}' for s in SPLITS + ('compositional',))
            + f', captions {sum(len(r.captions) for r in ds.images)}')
    text = head + '\n' + frequency_report(counts, vocab, args.min_count)
    print(text)
    if args.report:
        with open(args.report, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
