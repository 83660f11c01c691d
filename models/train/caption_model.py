"""The paper's captioner: a CNN encoder and an LSTM decoder (Mathew, Lal, Ganesh 2025, section on captioning).

Encoder: conv+BN+ReLU blocks from scratch (or a VGG16 / Xception-like backbone when its weights file is given),
then the grid is flattened into a fully connected layer (VGG's fc6 way: keeps where things are, which the world's
left/right/above/below captions need) -> image feature F. The feature sets the LSTM's initial state (h0, c0 = tanh(Linear(F))) and is
also concatenated with the word embedding at every step ("merge" + "inject"). With `attention=True` the encoder keeps
the spatial grid [B, N, F] and each step attends over it (Show, Attend and Tell, Xu et al. 2015, soft attention with
the beta gate of their section 4.2.1).

The decoder is written as one `step()` so the exported `decoder_step.onnx` and the training loop share the same code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class CaptionConfig:
    vocab_size: int = 64
    image_size: tuple[int, int] = (64, 64)       # (H, W)
    channels: tuple[int, ...] = (32, 64, 128, 192)  # one conv block per entry, each halves H and W
    feature_dim: int = 256                        # F
    embed_dim: int = 128                          # E
    hidden_size: int = 256                        # LSTM hidden
    num_layers: int = 1
    dropout: float = 0.3
    attention: bool = False
    attention_dim: int = 128
    backbone: str = 'scratch'                     # scratch | vgg16 | xception
    factorized: bool = False                      # two streams: shape from ink only, colour per pixel only
    colour_channels: int = 16                     # the colour stream's width (factorized only)
    ink_gain: float = 0.15                        # training-time random gain on the ink map (factorized only)
    split_proj: bool = False                      # factorized + attention: shape -> first half of F, colour -> second
    colour_words: tuple[int, ...] = ()            # split_proj: ids of the words only the colour half chooses
    colour_blind_words: tuple[int, ...] = ()      # colour_words: ids of the words no colour feature reaches
    fine_grid: bool = False                       # factorized + attention: cells 2x finer per side (see FactorizedCNN)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3
    max_length: int = 20                          # generated tokens, <eos> included
    beam_size: int = 3
    length_penalty: float = 1.0

    @staticmethod
    def from_dict(d: dict) -> 'CaptionConfig':
        known = {f for f in CaptionConfig.__dataclass_fields__}
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return CaptionConfig(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def conv_block(cin: int, cout: int) -> nn.Sequential:
    # two 3x3 conv+BN+ReLU then 2x2 max pool: the VGG pattern at toy size
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ScratchCNN(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        blocks, cin = [], 3
        for c in channels:
            blocks.append(conv_block(cin, c))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = cin

    def forward(self, x):  # x [B, 3, H, W] -> [B, C, H/2^k, W/2^k]
        return self.blocks(x)


def build_backbone(cfg: CaptionConfig, weights_path: str | None) -> tuple[nn.Module, int, int]:
    """Returns (module mapping [B,3,H,W] -> [B,C,h,w], C, h*w). Pretrained backbones need torchvision and a
    local weights file (nothing is downloaded)."""
    H, W = cfg.image_size
    if cfg.backbone == 'scratch':
        m = ScratchCNN(cfg.channels)
        k = 2 ** len(cfg.channels)
        if H % k or W % k:
            raise SystemExit(f'Expected image_size divisible by {k} ({len(cfg.channels)} pooling blocks), got {H}x{W}')
        return m, m.out_channels, (H // k) * (W // k)
    try:
        import torchvision  # noqa: F401  (only the pretrained backbones need it)
        from torchvision import models as tvm
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise SystemExit(f'backbone {cfg.backbone!r} needs torchvision (pip install torchvision), got {e}')
    if cfg.backbone == 'vgg16':
        net = tvm.vgg16(weights=None)
        if weights_path:
            net.load_state_dict(torch.load(weights_path, map_location='cpu'))
        return net.features, 512, (H // 32) * (W // 32)        # 224x224 -> [B, 512, 7, 7]
    if cfg.backbone == 'xception':
        # torchvision has no Xception; its closest depthwise-separable relative there is Inception v3 (299x299).
        net = tvm.inception_v3(weights=None, aux_logits=True, init_weights=False)
        if weights_path:
            net.load_state_dict(torch.load(weights_path, map_location='cpu'))
        body = nn.Sequential(*[m for n, m in net.named_children()
                               if n not in ('AuxLogits', 'avgpool', 'dropout', 'fc')])
        return body, 2048, 64                                    # 299x299 -> [B, 2048, 8, 8]
    raise SystemExit(f'Expected --backbone scratch | vgg16 | xception, got {cfg.backbone!r}')


class FactorizedCNN(nn.Module):
    """A colour-blind shape stream beside a shape-blind colour stream, so that a colour seen on some shapes and a
    shape seen in some colours make sense together the first time they meet (green triangle, blue heart).

    - Shape: the scratch CNN reads one channel, ink = 1 - min(R, G, B), which is about the same for every named
      colour (0.80-0.96) and low on light backgrounds; a random gain in training hides what little colour it keeps.
    - Colour: 1x1 convolutions only (each pixel on its own, no shape), average- and max-pooled to the shape grid.
    Output: both concatenated per cell, [B, C + 2 * colour_channels, h, w].

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


class Captioner(nn.Module):
    def __init__(self, cfg: CaptionConfig, backbone_weights: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.cnn, cnn_out, cells = build_backbone(cfg, backbone_weights)
        if cfg.factorized:
            if cfg.backbone != 'scratch':
                raise SystemExit('Expected --factorized with the scratch backbone only')
            self.cnn = FactorizedCNN(cfg)
            cnn_out = self.cnn.out_channels
            if cfg.fine_grid:
                if not cfg.attention or len(cfg.channels) < 2:
                    raise SystemExit('Expected --fine-grid with --factorized --attention and two or more --channels')
                cells *= 4
        elif cfg.fine_grid:
            raise SystemExit('Expected --fine-grid with --factorized --attention only')
        Fd, Hd, L = cfg.feature_dim, cfg.hidden_size, cfg.num_layers
        if cfg.attention:
            self.proj = nn.Sequential(nn.Linear(cnn_out, Fd), nn.ReLU(inplace=True))     # per location -> F
            self.pos = nn.Parameter(torch.zeros(cells, Fd))    # [N, F] learned: where each cell is
        else:
            fan_in = cnn_out * cells
            self.proj = nn.Sequential(nn.Linear(fan_in, Fd), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))
        if cfg.split_proj:
            if not (cfg.factorized and cfg.attention):
                raise SystemExit('Expected --split-proj with --factorized --attention only')
            # block-diagonal projection: each cell's feature keeps the shape stream (first half) apart from the
            # colour stream (second half), so a colour never enters the features a shape word is read from
            mask = torch.zeros(Fd, cnn_out)
            mask[: Fd // 2, : self.cnn.shape_channels] = 1
            mask[Fd // 2:, self.cnn.shape_channels:] = 1
            self.register_buffer('proj_mask', mask, persistent=False)
        self.init_h = nn.Linear(Fd, L * Hd)
        self.init_c = nn.Linear(Fd, L * Hd)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTM(cfg.embed_dim + Fd, Hd, num_layers=L, batch_first=True,
                            dropout=cfg.dropout if L > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(Hd, cfg.vocab_size)
        if cfg.colour_blind_words and not cfg.colour_words:
            raise SystemExit('Expected --colour-blind-words with --colour-words')
        if cfg.colour_words:
            if not cfg.split_proj:
                raise SystemExit('Expected --colour-words with --split-proj')
            # the colour half of the context reaches the words through this layer only, added to their logits, and
            # never the colour-blind words: the LSTM, its initial state and the attention read the shape half only
            self.colour_head = nn.Linear(Fd - Fd // 2, cfg.vocab_size)
            rows = torch.ones(cfg.vocab_size, 1)
            rows[list(cfg.colour_blind_words)] = 0
            self.register_buffer('colour_rows', rows, persistent=False)
        if cfg.attention:
            A = cfg.attention_dim
            self.att_f = nn.Linear(Fd, A)
            self.att_h = nn.Linear(Hd, A)
            self.att_v = nn.Linear(A, 1)
            self.att_gate = nn.Linear(Hd, Fd)          # beta = sigmoid(f_beta(h)), SAT 4.2.1
        self.apply_masks()

    def apply_masks(self) -> None:
        """Zero the weights --split-proj and --colour-words keep out (at init; the trainer, after every step)."""
        cfg = self.cfg
        with torch.no_grad():
            if cfg.split_proj:
                self.proj[0].weight.mul_(self.proj_mask)
            if cfg.colour_words:
                half = cfg.feature_dim // 2
                self.lstm.weight_ih_l0[:, cfg.embed_dim + half:] = 0    # the LSTM reads no colour
                self.init_h.weight[:, half:] = 0
                self.init_c.weight[:, half:] = 0
                self.att_f.weight[:, half:] = 0                         # nor where to look
                self.colour_head.weight.mul_(self.colour_rows)          # and the colour half no colour-blind word
                self.colour_head.bias.mul_(self.colour_rows[:, 0])
                cw = list(cfg.colour_words)                             # the LSTM says "a colour now", one score
                self.head.weight[cw] = self.head.weight[cw].mean(0)     # for all: which one is the colour half's
                self.head.bias[cw] = self.head.bias[cw].mean()

    def colour_logits(self, ctx):
        """ctx [..., F] -> the colour half's share of the logits [..., V] (zero for the colour-blind words)."""
        return self.colour_head(ctx[..., self.cfg.feature_dim // 2:])

    # ---- encoder -------------------------------------------------------------------------------------------------
    def encode(self, pixel_values):
        """pixel_values [B, 3, H, W] (normalised) -> features [B, F] or [B, N, F], h0, c0 [layers, B, hidden]."""
        B = pixel_values.shape[0]
        g = self.cnn(pixel_values)                     # [B, C, h, w]
        if self.cfg.attention:
            grid = g.flatten(2).transpose(1, 2)        # [B, N, C], N = h*w
            feats = self.proj(grid) + self.pos         # [B, N, F]
            pooled = feats.mean(1)                     # [B, F]
        else:
            flat = g.flatten(1)                        # [B, C*h*w]
            feats = self.proj(flat)                    # [B, F]
            pooled = feats
        L, Hd = self.cfg.num_layers, self.cfg.hidden_size
        h0 = torch.tanh(self.init_h(pooled)).view(B, L, Hd).transpose(0, 1).contiguous()  # [L, B, Hd]
        c0 = torch.tanh(self.init_c(pooled)).view(B, L, Hd).transpose(0, 1).contiguous()  # [L, B, Hd]
        return feats, h0, c0

    # ---- decoder -------------------------------------------------------------------------------------------------
    def context(self, feats, h_top, keys=None):
        """feats [B, F] or [B, N, F], h_top [B, Hd] -> context [B, F] (and alpha [B, N] with attention).
        keys: att_f(feats), when the caller computes it once for many steps. feats may also carry each cell's key
        after its F features ([B, N, F + A], the exported layout); the context is then read from the first F."""
        if not self.cfg.attention:
            return feats, None
        Fd = self.cfg.feature_dim
        if keys is None:
            keys = feats[..., Fd:] if feats.shape[-1] > Fd else self.att_f(feats)
        e = self.att_v(torch.tanh(keys + self.att_h(h_top).unsqueeze(1))).squeeze(2)  # [B, N]
        alpha = F.softmax(e, dim=1)                    # [B, N]
        # one matrix product over the cells, no [B, N, F] temporary; a packed layout's keys are dropped after it
        ctx = torch.matmul(alpha.unsqueeze(1), feats).squeeze(1)[:, :Fd]   # [B, F]
        return torch.sigmoid(self.att_gate(h_top)) * ctx, alpha

    def step(self, input_ids, h, c, feats, keys=None):
        """One decoder step: input_ids [B] int64, h/c [L, B, Hd], feats (keys: att_f(feats), or None to read them
        from a packed feats or compute them here) -> logits [B, V], h_out, c_out."""
        emb = self.embed(input_ids)                    # [B, E]
        ctx, _ = self.context(feats, h[-1], keys)      # [B, F]
        x = torch.cat([emb, ctx], dim=1).unsqueeze(1)  # [B, 1, E+F]
        out, (h2, c2) = self.lstm(x, (h, c))           # out [B, 1, Hd]
        logits = self.head(self.drop(out[:, 0]))       # [B, V]
        if self.cfg.colour_words:
            logits = logits + self.colour_logits(ctx)
        return logits, h2, c2

    def forward(self, pixel_values, input_ids, captions_per_image: int = 1):
        """Teacher forcing. pixel_values [B, 3, H, W]; input_ids [B*K, T] (<bos> w1 .. wn, padded), K captions
        per image -> logits [B*K, T, V]."""
        feats, h, c = self.encode(pixel_values)
        K = captions_per_image
        if K > 1:                                      # one encoder pass per image, K captions each
            feats = feats.repeat_interleave(K, 0)
            h, c = h.repeat_interleave(K, 1), c.repeat_interleave(K, 1)
        emb = self.drop(self.embed(input_ids))         # [BK, T, E]
        if not self.cfg.attention:
            T = input_ids.shape[1]
            x = torch.cat([emb, feats.unsqueeze(1).expand(-1, T, -1)], 2)  # [BK, T, E+F]
            out, _ = self.lstm(x, (h, c))              # [BK, T, Hd], same weights as step()
            return self.head(self.drop(out))           # [BK, T, V]
        outs, ctxs = [], []
        keys = self.att_f(feats)                       # [BK, N, A]: the same for every step
        for t in range(input_ids.shape[1]):
            ctx, _ = self.context(feats, h[-1], keys)  # [BK, F]
            x = torch.cat([emb[:, t], ctx], 1).unsqueeze(1)
            out, (h, c) = self.lstm(x, (h, c))
            outs.append(out[:, 0])
            ctxs.append(ctx)
        logits = self.head(self.drop(torch.stack(outs, 1)))  # [BK, T, V]
        if self.cfg.colour_words:
            logits = logits + self.colour_logits(torch.stack(ctxs, 1))
        return logits


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def init_weights(m: Captioner, seed: int) -> None:
    """Deterministic random init (used by the tiny fixture): the default inits, under a fixed seed, plus
    non-trivial BN statistics so the exported eval-mode graph really exercises them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(1 + torch.rand(mod.num_features, generator=g) * 0.5)
                mod.weight.copy_(1 + torch.randn(mod.num_features, generator=g) * 0.1)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
        if m.cfg.attention:
            m.pos.copy_(torch.randn(m.pos.shape, generator=g) * 0.5)
        for p in m.parameters():
            if p.dim() >= 2 and p is not getattr(m, 'pos', None):
                bound = 1 / math.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound * 1.5)
