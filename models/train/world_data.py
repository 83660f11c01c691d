"""Read a Flickr8k-format folder (the builtin world, or Flickr8k itself) for text-to-image training.

    DIR/Images/*.png|jpg                    the pictures (the world: 64x64 RGB)
    DIR/captions.txt                        CSV with header "image,caption", five rows per image
    DIR/Flickr_8k.{train,dev,test}Images.txt  one file name per line
    DIR/compositionalImages.txt             (world only) held-out combinations
    DIR/scenes.json                         (world only) {file: {axis, objects: [{name, color, size, box}]}}

`load_split` decodes every picture once into one uint8 array [N, H, W, 3] (30000 world pictures are 370 MB) and
caches it as .npy under a cache folder, so training draws batches by indexing, on CPU or straight on the GPU.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np

SPLIT_FILES = {'train': 'Flickr_8k.trainImages.txt', 'val': 'Flickr_8k.devImages.txt',
               'test': 'Flickr_8k.testImages.txt', 'compositional': 'compositionalImages.txt'}


@dataclass
class Split:
    names: list[str]                 # [N] file names
    images: np.ndarray               # [N, H, W, 3] uint8
    captions: list[list[str]]        # [N][5] raw caption text


def read_captions(root: str) -> dict[str, list[str]]:
    path = os.path.join(root, 'captions.txt')
    with open(path, encoding='utf-8', newline='') as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ['image', 'caption']:
        raise ValueError(f'{path}: expected a CSV with header "image,caption", got {rows[0] if rows else "nothing"}')
    out: dict[str, list[str]] = {}
    for r in rows[1:]:
        if len(r) >= 2:
            out.setdefault(r[0], []).append(' '.join(r[1].strip().split()))
    return out


def read_names(root: str, split: str) -> list[str]:
    if split not in SPLIT_FILES:
        raise ValueError(f'split: expected one of {sorted(SPLIT_FILES)}, got {split!r}')
    with open(os.path.join(root, SPLIT_FILES[split]), encoding='utf-8') as f:
        return [ln.strip() for ln in f if ln.strip()]


def read_scenes(root: str) -> dict:
    path = os.path.join(root, 'scenes.json')
    return json.load(open(path, encoding='utf-8')) if os.path.exists(path) else {}


def load_split(root: str, split: str, cache_dir: str | None = None, size: int = 64, limit: int = 0) -> Split:
    """Pictures (resized to size x size if they differ) and captions of one split, in split-file order."""
    from PIL import Image
    names = read_names(root, split)[:limit or None]
    caps = read_captions(root)
    missing = [n for n in names if n not in caps]
    if missing:
        raise ValueError(f'{root}: {len(missing)} pictures of split {split} have no caption (first: {missing[0]})')
    cache = None
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        cache = os.path.join(cache_dir, f'{split}-{len(names)}-{size}.npy')
    if cache and os.path.exists(cache):
        images = np.load(cache)
    else:
        images = np.empty((len(names), size, size, 3), dtype=np.uint8)
        for i, n in enumerate(names):
            im = Image.open(os.path.join(root, 'Images', n)).convert('RGB')
            if im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            images[i] = np.asarray(im)
        if cache:
            tmp = cache + '.tmp.npy'
            np.save(tmp, images)
            os.replace(tmp, cache)
    return Split(names, images, [caps[n] for n in names])
