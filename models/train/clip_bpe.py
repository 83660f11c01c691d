"""Train a small CLIP-format byte-level BPE tokenizer and write the four files of a diffusers `tokenizer/` folder.

The files load with transformers' `CLIPTokenizer.from_pretrained(out_dir)` and with pictalk's
inference/clip.tokenizer.ts. Words are pre-tokenized exactly as transformers' current CLIPTokenizer does (NFC,
whitespace runs to one space, lower case, CLIP's regex), then mapped to GPT-2's byte characters.

Vocabulary layout, as OpenAI's CLIP vocabulary has it: ids 0..255 the byte characters, 256..511 the same with
`</w>`, then one id per merge in merge order, then `<|startoftext|>` and `<|endoftext|>`. So
vocab_size = 512 + merges + 2, and training stops early when no pair occurs at least twice.

    python3 models/train/clip_bpe.py --captions DIR/captions.txt --out DIR/tokenizer --vocab-size 1024 --max-length 32

`captions.txt`: one caption a line; a Flickr8k-style `image,caption` CSV (with that header) or `image#n<TAB>caption`
lines also work.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import collections
import json
import os
import unicodedata
from typing import Iterable

import regex

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
PAD_TOKENS = (EOS, "!")  # SD 1.x pads with <|endoftext|>, SD 2.x with "!"
WORD_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
    r"""[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\p{L}\p{N}]+""",
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (in CLIP's vocabulary order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_ENCODER = bytes_to_unicode()


# Oniguruma's \s, the whitespace of the tokenizers library's `Replace(Regex(r"\s+"), " ")` (Python's `\s` also
# takes U+001C..U+001F, which the current class keeps as symbols)
WHITESPACE = regex.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def normalize(text: str) -> str:
    """The current CLIPTokenizer's normalizer: NFC, each whitespace run to one space, lower case one character at a
    time (no final-sigma rule, as Rust's char::to_lowercase). Control characters and CJK are left as they are."""
    return "".join(ch.lower() for ch in WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)))


# The byte-level pre-tokenizer splits each word again with GPT-2's regex; only the literal special-token words change
# (`<|endoftext|>` becomes `<|`, `endoftext`, `|>`).
BYTE_LEVEL_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|"""
                                   r""" ?[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\p{L}\p{N}]+""")


def pretokenize(text: str) -> list[str]:
    """CLIP's words of `text`, each as byte characters."""
    words = [part for word in WORD_PATTERN.findall(normalize(text)) for part in BYTE_LEVEL_PATTERN.findall(word)]
    return ["".join(BYTE_ENCODER[b] for b in word.encode("utf-8")) for word in words]


def learn_merges(word_counts: dict[str, int], num_tokens: int, min_frequency: int = 2) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: the smallest pair, for determinism)
    until the merges have made `num_tokens` distinct new symbols (two merges may make the same symbol)."""
    words = [(list(word[:-1]) + [word[-1] + "</w>"], count) for word, count in sorted(word_counts.items())]
    pair_counts: collections.Counter[tuple[str, str]] = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for index, (symbols, count) in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += count
            where[pair].add(index)
    merges: list[tuple[str, str]] = []
    made: set[str] = set()
    while len(made) < num_tokens and pair_counts:
        best = min(pair_counts.items(), key=lambda item: (-item[1], item[0]))
        if best[1] < min_frequency:
            break
        pair = best[0]
        merges.append(pair)
        made.add(pair[0] + pair[1])
        for index in sorted(where.pop(pair, ())):
            symbols, count = words[index]
            for old in zip(symbols, symbols[1:]):  # take the word's pairs out, merge, put them back
                pair_counts[old] -= count
                if pair_counts[old] <= 0:
                    del pair_counts[old]
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[index] = (merged, count)
            for new in zip(merged, merged[1:]):
                pair_counts[new] += count
                where[new].add(index)
        pair_counts.pop(pair, None)
    return merges


def train_clip_bpe(texts: Iterable[str], out_dir: str, vocab_size: int = 2048, model_max_length: int = 77,
                   pad_token: str = EOS) -> dict:
    """Learn merges from `texts` and write vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json.

    Returns a summary: the vocabulary size written (at most `vocab_size`), the merge count and the file paths.
    """
    if vocab_size < 514:
        raise ValueError(f"Expected vocab_size of at least 514 (512 byte symbols and 2 special tokens), got {vocab_size}")
    if not 2 <= model_max_length <= 4096:
        raise ValueError(f"Expected model_max_length from 2 to 4096, got {model_max_length}")
    if pad_token not in PAD_TOKENS:
        raise ValueError(f"Expected pad_token to be one of {PAD_TOKENS}, got {pad_token!r}")
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update(pretokenize(text))
    if not counts:
        raise ValueError("Expected some text to train on, got none")
    merges = learn_merges(counts, vocab_size - 514)

    symbols = list(BYTE_ENCODER.values())
    # a symbol made by two merges gets one id, as the tokenizers library's trainer does
    vocab_list = list(dict.fromkeys(symbols + [s + "</w>" for s in symbols] + ["".join(pair) for pair in merges])) + [BOS, EOS]
    vocab = {token: i for i, token in enumerate(vocab_list)}

    os.makedirs(out_dir, exist_ok=True)
    special = {"content": None, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    bos, eos = dict(special, content=BOS), dict(special, content=EOS)
    files = {
        "vocab.json": json.dumps(vocab, ensure_ascii=False),
        "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        "special_tokens_map.json": json.dumps({"bos_token": bos, "eos_token": eos, "pad_token": pad_token, "unk_token": eos}, indent=2),
        "tokenizer_config.json": json.dumps({
            "tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length,
            "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token,
            "add_prefix_space": False, "do_lower_case": True, "errors": "replace", "clean_up_tokenization_spaces": True,
        }, indent=2),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = os.path.join(out_dir, name)
        with open(paths[name], "w", encoding="utf-8") as handle:
            handle.write(text)
    # reload what was written before reporting success
    check = ClipBpe(out_dir)
    sample = next(iter(counts))
    if any(token not in check.vocab for token in check.bpe(sample)):
        raise AssertionError(f"the written files do not reproduce the word {sample!r}")
    return {"vocab_size": len(vocab), "merges": len(merges), "files": paths}


class ClipBpe:
    """A small reader of the written files that encodes like CLIPTokenizer (no transformers needed at train time)."""

    def __init__(self, tokenizer_dir: str):
        with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
            self.vocab: dict[str, int] = json.load(f)
        with open(os.path.join(tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().strip().split("\n")[1:49152 - 256 - 2 + 1]
        self.ranks = {tuple(line.split()): i for i, line in enumerate(lines)}
        with open(os.path.join(tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.model_max_length = int(config["model_max_length"])
        with open(os.path.join(tokenizer_dir, "special_tokens_map.json"), encoding="utf-8") as f:
            named = {**{k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in config}, **json.load(f)}
        pad = named.get("pad_token", EOS)
        pad = pad["content"] if isinstance(pad, dict) else pad
        self.pad_id = self.vocab[pad]
        self.bos_id, self.eos_id = self.vocab[BOS], self.vocab[EOS]
        # transformers 5 splits special tokens out before the normalizer runs, or after it for a token marked
        # `normalized`; a later name sets the flag of a token it shares (a plain string is not normalized)
        flags: dict[str, bool] = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            value = named.get(key)
            if isinstance(value, dict):
                flags[value["content"]] = bool(value.get("normalized", False))
            elif isinstance(value, str):
                flags[value] = False

        def alternation(tokens: list[str]) -> "regex.Pattern[str] | None":
            tokens = sorted(tokens, key=len, reverse=True)
            return regex.compile("|".join(regex.escape(t) for t in tokens)) if tokens else None
        self.raw_special = alternation([t for t, n in flags.items() if not n])
        self.normalized_special = alternation([normalize(t) for t, n in flags.items() if n])

    def bpe(self, word: str) -> list[str]:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            pairs = list(zip(symbols, symbols[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def _split(self, text: str, special: "regex.Pattern[str] | None") -> list[tuple[str, bool]]:
        if special is None:
            return [(text, False)]
        pieces, start = [], 0
        for match in special.finditer(text):
            pieces += [(text[start:match.start()], False), (match.group(), True)]
            start = match.end()
        return pieces + [(text[start:], False)]

    def encode(self, text: str) -> tuple[list[int], int]:
        """Ids padded to model_max_length, and the length before padding (bos and eos included)."""
        ids: list[int] = []
        for raw, raw_special in self._split(text, self.raw_special):
            if raw_special:
                ids.append(self.vocab[raw])
                continue
            for piece, special in self._split(normalize(raw), self.normalized_special):
                if special:
                    ids.append(self.vocab[piece])
                    continue
                ids += [self.vocab.get(t, self.eos_id) for word in pretokenize(piece) for t in self.bpe(word)]
        ids = [self.bos_id] + ids[: self.model_max_length - 2] + [self.eos_id]
        return ids + [self.pad_id] * (self.model_max_length - len(ids)), len(ids)


def read_captions(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if lines and lines[0].strip().lower() == "image,caption":
        return [line.split(",", 1)[1] for line in lines[1:] if "," in line]
    return [line.split("\t", 1)[1] if "\t" in line else line for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a CLIP-format BPE tokenizer from captions.")
    parser.add_argument("--captions", required=True, help="captions.txt: one caption a line (or image,caption CSV)")
    parser.add_argument("--out", required=True, help="the tokenizer/ folder to write")
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--max-length", type=int, default=77)
    parser.add_argument("--pad-token", default=EOS, choices=PAD_TOKENS)
    args = parser.parse_args()
    summary = train_clip_bpe(read_captions(args.captions), args.out, vocab_size=args.vocab_size,
                             model_max_length=args.max_length, pad_token=args.pad_token)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
