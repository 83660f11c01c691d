"""The builtin world's captioner: the paper's CNN-LSTM (caption_model.py) with two world-specific parts, each with its
structure in its layers, so that a colour seen on some shapes and a shape seen in some colours are described right
the first time they meet (green triangle, blue heart; models/EVAL.md, "Two stages").

- `FactorizedCNN`, the backbone `factorized`: a colour-blind shape stream beside a shape-blind colour stream.
- `WorldCaptioner`, a config with `colour_words`: each cell's features are F/2 shape features (from the shape stream
  only) and F/2 colour features (from the colour stream only). The LSTM, its initial state and the attention read the
  shape half; the colour words are told apart by the colour half alone, through an output layer of their own, and the
  colour-blind words (the shapes) get nothing from it. The LSTM gives all colour words one score: "a colour now";
  which colour is read from the glimpse of the step after it, the one its shape word is read from, so a colour and
  its shape come from the same place.

`check_world_config` refuses the settings that do not go together, naming them; `build_captioner` calls it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from caption_model import CaptionConfig, Captioner, conv_block


def check_world_config(cfg: CaptionConfig) -> None:
    if cfg.fine_grid and not (cfg.backbone == 'factorized' and cfg.attention and len(cfg.channels) >= 2):
        raise SystemExit('Expected --fine-grid with --backbone factorized, --attention and two or more --channels')
    if cfg.colour_words and not (cfg.backbone == 'factorized' and cfg.attention):
        raise SystemExit('Expected --colour-words with --backbone factorized and --attention')
    if cfg.colour_blind_words and not cfg.colour_words:
        raise SystemExit('Expected --colour-blind-words with --colour-words')
    both = set(cfg.colour_words) & set(cfg.colour_blind_words)
    if both:
        raise SystemExit(f'Expected no word both in --colour-words and --colour-blind-words, got ids {sorted(both)}')


class FactorizedCNN(nn.Module):
    """A colour-blind shape stream beside a shape-blind colour stream.

    - Shape: the scratch CNN reads one channel, ink = 1 - min(R, G, B), which is about the same for every named
      colour (0.80-0.96) and low on light backgrounds; a random gain in training hides what little colour it keeps.
    - Colour: 1x1 convolutions only (each pixel on its own, no shape), average- and max-pooled to the shape grid.
    Output: both concatenated per cell, [B, C + 2 * colour_channels, h, w]; the first `shape_channels` are shape.

    With `fine_grid` the cells are those of the last block's input, twice as fine per side: each cell holds the
    last block's output (upsampled, what the object is), the block before it (where in the coarse cell its ink
    lies) and the colour pooled over that smaller cell, so two objects that share a coarse cell keep their colours
    apart. Output [B, C_last + C_before + 2 * colour_channels, 2h, 2w].
    """

    def __init__(self, cfg: CaptionConfig):
        super().__init__()
        blocks, cin = [], 1
        for c in cfg.channels:
            blocks.append(conv_block(cin, c))
            cin = c
        self.shape = nn.Sequential(*blocks)
        k = cfg.colour_channels
        self.colour = nn.Sequential(nn.Conv2d(3, 2 * k, 1), nn.ReLU(inplace=True), nn.Conv2d(2 * k, k, 1),
                                    nn.ReLU(inplace=True))
        self.fine = cfg.fine_grid
        self.pool = 2 ** (len(cfg.channels) - (1 if self.fine else 0))
        self.register_buffer('mean', torch.tensor(cfg.mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(cfg.std).view(1, 3, 1, 1))
        self.gain = cfg.ink_gain
        self.shape_channels = cin + (cfg.channels[-2] if self.fine else 0)
        self.out_channels = self.shape_channels + 2 * k
        H, W = cfg.image_size
        self.cells = (H // self.pool) * (W // self.pool)

    def forward(self, x):  # x [B, 3, H, W] normalised -> [B, C + 2k, H/2^n, W/2^n]
        rgb = x * self.std + self.mean                               # back to 0..1
        ink = 1.0 - rgb.min(dim=1, keepdim=True).values              # [B, 1, H, W]
        if self.training and self.gain > 0:
            ink = ink * (1.0 + self.gain * (2 * torch.rand(x.shape[0], 1, 1, 1, device=x.device) - 1))
        s = (ink - 0.5) / 0.25
        if self.fine:
            before = self.shape[:-1](s)                              # [B, C_before, 2h, 2w]
            last = F.interpolate(self.shape[-1](before), scale_factor=2.0, mode='nearest')
            s = torch.cat([last, before], 1)
        else:
            s = self.shape(s)
        c = self.colour(x)
        return torch.cat([s, F.avg_pool2d(c, self.pool), F.max_pool2d(c, self.pool)], 1)


class SplitLinear(nn.Module):
    """Two linear maps side by side: the first `split` inputs -> the first `out_first` outputs, the rest -> the rest.
    A block-diagonal layer: no input of one side reaches an output of the other."""

    def __init__(self, split: int, fan_in: int, out_first: int, out_features: int):
        super().__init__()
        self.split = split
        self.first = nn.Linear(split, out_first)
        self.second = nn.Linear(fan_in - split, out_features - out_first)

    def forward(self, x):
        return torch.cat([self.first(x[..., : self.split]), self.second(x[..., self.split:])], -1)


class ColourWordHead(nn.Module):
    """The output layer of the colour-word decoder: logits [..., V] from the LSTM's output, the colour features of
    this step's glimpse and those of the next step's.

    - `words`: the LSTM's scores, one row per word that is not a colour word and one row shared by every colour word:
      "a colour now".
    - `colours`: this glimpse's colour features -> a score for each word that may use colour (not a colour word, not
      colour-blind: the emoji names); the colour-blind words read a constant zero.
    - `choose`: which colour, from the colour features of the next step's glimpse, the one the shape word after the
      colour is read from: a colour word scores "a colour now" + log q(colour | next glimpse), so that
      p(colour) = p(a colour now) * q(colour), and a colour is taken from the object its shape is.
    Each vocabulary id picks its rows by index (`word_row`, `colour_row`, `choice_row`): structure, not masked weights.
    """

    def __init__(self, hidden: int, colour_features: int, vocab_size: int, colour_words, colour_blind_words):
        super().__init__()
        colour, blind = sorted(set(colour_words)), set(colour_blind_words)
        plain = [v for v in range(vocab_size) if v not in colour]
        speaking = [v for v in plain if v not in blind]
        word_row = torch.empty(vocab_size, dtype=torch.long)
        word_row[plain] = torch.arange(len(plain))
        word_row[colour] = len(plain)                             # "a colour now": one score for them all
        colour_row = torch.full((vocab_size,), len(speaking), dtype=torch.long)   # len(...): the zero column
        colour_row[speaking] = torch.arange(len(speaking))
        choice_row = torch.full((vocab_size,), len(colour), dtype=torch.long)
        choice_row[colour] = torch.arange(len(colour))
        self.register_buffer('word_row', word_row, persistent=False)
        self.register_buffer('colour_row', colour_row, persistent=False)
        self.register_buffer('choice_row', choice_row, persistent=False)
        self.words = nn.Linear(hidden, len(plain) + 1)
        self.colours = nn.Linear(colour_features, len(speaking))
        self.choose = nn.Linear(colour_features, len(colour))

    def forward(self, out, colour_now, colour_next):
        """out [..., Hd] (after dropout), colour features of this glimpse and of the next [..., F - F/2] -> [..., V]."""
        words = self.words(out).index_select(-1, self.word_row)
        colours = F.pad(self.colours(colour_now), (0, 1)).index_select(-1, self.colour_row)
        choice = F.pad(F.log_softmax(self.choose(colour_next), -1), (0, 1)).index_select(-1, self.choice_row)
        return words + colours + choice


class WorldCaptioner(Captioner):
    """The attention CNN-LSTM over the factorized backbone, with the colour words chosen by the colour features
    alone (module docstring). Each cell's feature is [shape half | colour half]; `read_dim` is the shape half. The
    colour words are read as one word (the first's embedding), so which colour was said changes nothing after it, and
    the next step's glimpse, which picks the colour, is the same whichever colour it picks."""

    reads_ahead = True

    def __init__(self, cfg: CaptionConfig):
        super().__init__(cfg)
        colour = sorted(set(cfg.colour_words))
        input_row = torch.arange(cfg.vocab_size)
        input_row[colour] = colour[0]
        self.register_buffer('input_row', input_row, persistent=False)

    def decoder_reads(self) -> int:
        return self.cfg.feature_dim // 2

    def projection(self, fan_in: int) -> nn.Module:
        # the shape stream's channels -> the shape half, the colour stream's -> the colour half
        return SplitLinear(self.cnn.shape_channels, fan_in, self.cfg.feature_dim // 2, self.cfg.feature_dim)

    def output_layer(self) -> nn.Module:
        cfg = self.cfg
        return ColourWordHead(cfg.hidden_size, cfg.feature_dim - cfg.feature_dim // 2, cfg.vocab_size,
                              cfg.colour_words, cfg.colour_blind_words)

    def inputs(self, input_ids):
        return self.input_row[input_ids]

    def logits(self, out, ctx, next_ctx=None):
        half = self.read_dim
        return self.head(self.drop(out), ctx[..., half:], next_ctx[..., half:])
