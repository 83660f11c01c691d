"""The text-to-image tokenizer: CLIP-format byte-level BPE files, tokenized with transformers' CLIPTokenizer so that
training, the reference sampler and the TypeScript pipeline agree on every id.

Files (the diffusers `tokenizer/` folder): vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json.
They are trained by `clip_bpe.train_clip_bpe`, the project's CLIP BPE trainer.
Checkpoints carry the files as strings (`read_files` / `write_files`), so a checkpoint alone can be exported.
"""
from __future__ import annotations

import os
import re

import numpy as np

FILES = ('vocab.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json')


def train_tokenizer(texts: list[str], out_dir: str, vocab_size: int, model_max_length: int) -> str:
    """Write the four tokenizer files into out_dir; returns which trainer made them."""
    from clip_bpe import train_clip_bpe
    train_clip_bpe(texts, out_dir, vocab_size=vocab_size, model_max_length=model_max_length)
    return 'clip_bpe'


def load(dir_or_files):
    """A CLIPTokenizer from a folder or from a {filename: text} dict (as stored in checkpoints)."""
    from transformers import CLIPTokenizer
    if isinstance(dir_or_files, dict):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            write_files(dir_or_files, d)
            return CLIPTokenizer.from_pretrained(d)
    return CLIPTokenizer.from_pretrained(dir_or_files)


def encode(tok, texts: list[str], length: int | None = None) -> np.ndarray:
    """Token ids [B, L] int64, padded with the tokenizer's own pad token to model_max_length; longer texts are cut
    to L - 1 ids plus EOS (transformers' truncation; callers that care check `token_lengths` first)."""
    length = length or tok.model_max_length
    out = tok(list(texts), padding='max_length', max_length=length, truncation=True, return_tensors='np')
    return out['input_ids'].astype(np.int64)


def encode_many(tok, texts: list[str], length: int, check: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`encode` for a large caption corpus, fast: plain lower-case word captions (the world's) are tokenized word by
    word from a cache, which CLIP's pre-tokenizer makes exact for such text; a random sample of `check` captions
    is compared with the full tokenizer, and any text with other characters goes through it too.
    Returns the ids [B, L] int64 (as `encode`) and the untruncated lengths [B] with BOS and EOS."""
    plain = re.compile(r'^[a-z]+( [a-z]+)*$')
    words: dict[str, list[int]] = {}
    out = np.full((len(texts), length), tok.pad_token_id, dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    slow = []
    for i, t in enumerate(texts):
        if not plain.match(t):
            slow.append(i)
            continue
        ids = [tok.bos_token_id]
        for w in t.split(' '):
            if w not in words:
                words[w] = tok(w, add_special_tokens=False)['input_ids']
            ids += words[w]
        lengths[i] = len(ids) + 1
        ids = ids[:length - 1] + [tok.eos_token_id]                     # transformers' truncation keeps EOS
        out[i, :len(ids)] = ids
    if slow:
        out[slow] = encode(tok, [texts[i] for i in slow], length)
        lengths[slow] = token_lengths(tok, [texts[i] for i in slow])
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(texts), size=min(check, len(texts)), replace=False)
    ref = encode(tok, [texts[i] for i in sample], length)
    if not np.array_equal(ref, out[sample]) or not np.array_equal(token_lengths(tok, [texts[i] for i in sample]),
                                                                   lengths[sample]):
        raise RuntimeError('encode_many: the word-cache ids differ from CLIPTokenizer on a sample; use encode()')
    return out, lengths


def token_lengths(tok, texts: list[str]) -> np.ndarray:
    """Number of ids per text including BOS and EOS, without padding or truncation."""
    return np.array([len(ids) for ids in tok(list(texts))['input_ids']])


def read_files(d: str) -> dict:
    return {name: open(os.path.join(d, name), encoding='utf-8').read() for name in FILES}


def write_files(files: dict, d: str) -> None:
    os.makedirs(d, exist_ok=True)
    for name in FILES:
        with open(os.path.join(d, name), 'w', encoding='utf-8') as f:
            f.write(files[name])
