"""The paper's captioner: a CNN encoder and an LSTM decoder (Mathew, Lal, Ganesh 2025, section on captioning).

Encoder: conv+BN+ReLU blocks from scratch (or torchvision's VGG16 features from a local weights file),
then the grid is flattened into a fully connected layer (VGG's fc6 way: keeps where things are, which the world's
left/right/above/below captions need) -> image feature F. The feature sets the LSTM's initial state (h0, c0 = tanh(Linear(F))) and is
also concatenated with the word embedding at every step ("merge" + "inject"). With `attention=True` the encoder keeps
the spatial grid [B, N, F] and each step attends over it (Show, Attend and Tell, Xu et al. 2015, soft attention with
the beta gate of their section 4.2.1).

The decoder is written as one `step()` so the exported `decoder_step.onnx` and the training loop share the same code.
The builtin world's variant (a factorized encoder, colour words chosen by the colour features alone) is a subclass in
caption_world.py; `build_captioner(cfg)` gives whichever a config describes.
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
    backbone: str = 'scratch'                     # scratch | vgg16 | factorized (caption_world.py)
    # the world's settings (caption_world.py): the factorized backbone's colour stream, its ink gain and finer grid;
    # the colour-word decoder's words
    colour_channels: int = 16                     # the colour stream's width
    ink_gain: float = 0.15                        # training-time random gain on the ink map
    fine_grid: bool = False                       # with attention: cells 2x finer per side (see FactorizedCNN)
    colour_words: tuple[int, ...] = ()            # ids of the words only the colour features choose
    colour_blind_words: tuple[int, ...] = ()      # ids of the words no colour feature reaches
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
        if d.get('factorized'):                   # a checkpoint of before the factorized encoder was a backbone
            d = {**d, 'backbone': 'factorized'}
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


# VGG16's convolutional part (Simonyan and Zisserman 2015, configuration D): 3x3 convolutions, "M" a 2x2 max pool
VGG16 = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M')


def vgg16_features() -> nn.Sequential:
    """VGG16's `features`, laid out module for module as torchvision's, so that its state dict loads as it is."""
    layers, cin = [], 3
    for v in VGG16:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


def load_vgg16(features: nn.Sequential, path: str) -> None:
    """Load the convolutions of a local VGG16 state dict: torchvision's whole model (`features.*` keys, the
    classifier's are ignored) or its `features` alone. Nothing is downloaded."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    if any(k.startswith('features.') for k in state):
        state = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    try:
        features.load_state_dict(state)
    except RuntimeError as e:
        raise SystemExit(f'Expected --backbone-weights {path} to hold VGG16 (torchvision layout), got: '
                         f'{str(e).splitlines()[0]}')


def build_backbone(cfg: CaptionConfig, weights_path: str | None) -> tuple[nn.Module, int, int]:
    """Returns (module mapping [B,3,H,W] -> [B,C,h,w], C, h*w). A pretrained backbone reads a local weights file
    (nothing is downloaded)."""
    H, W = cfg.image_size
    if cfg.backbone in ('scratch', 'factorized'):
        k = 2 ** len(cfg.channels)
        if H % k or W % k:
            raise SystemExit(f'Expected image_size divisible by {k} ({len(cfg.channels)} pooling blocks), got {H}x{W}')
        if cfg.backbone == 'factorized':
            from caption_world import FactorizedCNN
            m = FactorizedCNN(cfg)
            return m, m.out_channels, m.cells
        m = ScratchCNN(cfg.channels)
        return m, m.out_channels, (H // k) * (W // k)
    if cfg.backbone == 'vgg16':
        net = vgg16_features()
        if weights_path:
            load_vgg16(net, weights_path)
        if H % 32 or W % 32:
            raise SystemExit(f'Expected image_size divisible by 32 for vgg16 (five pooling blocks), got {H}x{W}')
        return net, 512, (H // 32) * (W // 32)                # 224x224 -> [B, 512, 7, 7]
    raise SystemExit(f'Expected --backbone scratch | vgg16 | factorized, got {cfg.backbone!r}')


class Captioner(nn.Module):
    """The paper's CNN-LSTM, plain or with soft attention. A subclass may narrow what the decoder reads of each
    feature (`read_dim`: the LSTM's input, its initial state and the attention keys read the first `read_dim` of the
    F features) and give its own projection and output layer; caption_world.py's does."""

    def __init__(self, cfg: CaptionConfig, backbone_weights: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.cnn, cnn_out, cells = build_backbone(cfg, backbone_weights)
        Fd, Hd, L = cfg.feature_dim, cfg.hidden_size, cfg.num_layers
        Fr = self.read_dim = self.decoder_reads()
        if cfg.attention:
            self.proj = nn.Sequential(self.projection(cnn_out), nn.ReLU(inplace=True))    # per location -> F
            self.pos = nn.Parameter(torch.zeros(cells, Fd))    # [N, F] learned: where each cell is
        else:
            self.proj = nn.Sequential(self.projection(cnn_out * cells), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))
        self.init_h = nn.Linear(Fr, L * Hd)
        self.init_c = nn.Linear(Fr, L * Hd)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTM(cfg.embed_dim + Fr, Hd, num_layers=L, batch_first=True,
                            dropout=cfg.dropout if L > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = self.output_layer()
        if cfg.attention:
            A = cfg.attention_dim
            self.att_f = nn.Linear(Fr, A)
            self.att_h = nn.Linear(Hd, A)
            self.att_v = nn.Linear(A, 1)
            self.att_gate = nn.Linear(Hd, Fd)          # beta = sigmoid(f_beta(h)), SAT 4.2.1

    # ---- what a subclass may shape ------------------------------------------------------------------------------
    def decoder_reads(self) -> int:
        """How many of the F features the decoder reads (all of them here)."""
        return self.cfg.feature_dim

    def projection(self, fan_in: int) -> nn.Module:
        """The CNN's grid (per cell with attention, flattened without) -> F."""
        return nn.Linear(fan_in, self.cfg.feature_dim)

    def output_layer(self) -> nn.Module:
        return nn.Linear(self.cfg.hidden_size, self.cfg.vocab_size)

    # with attention, whether `logits` also reads the next step's glimpse (the features the next word is read from)
    reads_ahead = False

    def logits(self, out, ctx, next_ctx=None):
        """The LSTM's output [..., Hd], the attended features [..., F] (and, with `reads_ahead`, the next step's
        [..., F]) -> logits [..., V]."""
        return self.head(self.drop(out))

    def inputs(self, input_ids):
        """The embedding row each input word reads (its own here)."""
        return input_ids

    def read(self, x):
        """The part of features [..., F] the decoder reads."""
        return x if self.read_dim == self.cfg.feature_dim else x[..., : self.read_dim]

    def keys(self, feats):
        """Each cell's attention key [B, N, A]: the same for every step, so the export computes it in the encoder."""
        return self.att_f(self.read(feats))

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
        pooled = self.read(pooled)
        h0 = torch.tanh(self.init_h(pooled)).view(B, L, Hd).transpose(0, 1).contiguous()  # [L, B, Hd]
        c0 = torch.tanh(self.init_c(pooled)).view(B, L, Hd).transpose(0, 1).contiguous()  # [L, B, Hd]
        return feats, h0, c0

    # ---- decoder -------------------------------------------------------------------------------------------------
    def context(self, feats, h_top, keys=None):
        """feats [B, F] or [B, N, F], h_top [B, Hd] -> context [B, F] (and alpha [B, N] with attention).
        keys: `keys(feats)`, when the caller computes it once for many steps. feats may also carry each cell's key
        after its F features ([B, N, F + A], the exported layout); the context is then read from the first F."""
        if not self.cfg.attention:
            return feats, None
        Fd = self.cfg.feature_dim
        if keys is None:
            keys = feats[..., Fd:] if feats.shape[-1] > Fd else self.keys(feats)
        e = self.att_v(torch.tanh(keys + self.att_h(h_top).unsqueeze(1))).squeeze(2)  # [B, N]
        alpha = F.softmax(e, dim=1)                    # [B, N]
        # one matrix product over the cells, no [B, N, F] temporary; a packed layout's keys are dropped after it
        ctx = torch.matmul(alpha.unsqueeze(1), feats).squeeze(1)[:, :Fd]   # [B, F]
        return torch.sigmoid(self.att_gate(h_top)) * ctx, alpha

    def step(self, input_ids, h, c, feats, keys=None):
        """One decoder step: input_ids [B] int64, h/c [L, B, Hd], feats (keys: `keys(feats)`, or None to read them
        from a packed feats or compute them here) -> logits [B, V], h_out, c_out."""
        ctx, _ = self.context(feats, h[-1], keys)      # [B, F]
        return self.step_from(input_ids, h, c, ctx, feats, keys)[:3]

    def step_from(self, input_ids, h, c, ctx, feats, keys=None):
        """`step` given the glimpse it reads (`context(feats, h[-1], keys)[0]`) -> logits, h_out, c_out and, with
        `reads_ahead`, the next step's glimpse (else None). With `reads_ahead` the next step's glimpse is this step's
        second one, so the exported graph carries it from step to step instead of computing it twice."""
        emb = self.embed(self.inputs(input_ids))       # [B, E]
        x = torch.cat([emb, self.read(ctx)], dim=1).unsqueeze(1)  # [B, 1, E+F']
        out, (h2, c2) = self.lstm(x, (h, c))           # out [B, 1, Hd]
        next_ctx = self.context(feats, h2[-1], keys)[0] if self.reads_ahead else None
        return self.logits(out[:, 0], ctx, next_ctx), h2, c2, next_ctx   # [B, V], ..., [B, F]

    def forward(self, pixel_values, input_ids, captions_per_image: int = 1):
        """Teacher forcing. pixel_values [B, 3, H, W]; input_ids [B*K, T] (<bos> w1 .. wn, padded), K captions
        per image -> logits [B*K, T, V]."""
        feats, h, c = self.encode(pixel_values)
        K = captions_per_image
        if K > 1:                                      # one encoder pass per image, K captions each
            feats = feats.repeat_interleave(K, 0)
            h, c = h.repeat_interleave(K, 1), c.repeat_interleave(K, 1)
        emb = self.drop(self.embed(self.inputs(input_ids)))   # [BK, T, E]
        if not self.cfg.attention:
            T = input_ids.shape[1]
            x = torch.cat([emb, self.read(feats).unsqueeze(1).expand(-1, T, -1)], 2)  # [BK, T, E+F']
            out, _ = self.lstm(x, (h, c))              # [BK, T, Hd], same weights as step()
            return self.logits(out, feats.unsqueeze(1).expand(-1, T, -1))   # [BK, T, V]
        outs, ctxs = [], []
        keys = self.keys(feats)                        # [BK, N, A]: the same for every step
        for t in range(input_ids.shape[1]):
            ctx, _ = self.context(feats, h[-1], keys)  # [BK, F]
            x = torch.cat([emb[:, t], self.read(ctx)], 1).unsqueeze(1)
            out, (h, c) = self.lstm(x, (h, c))
            outs.append(out[:, 0])
            ctxs.append(ctx)
        ctx = torch.stack(ctxs, 1)                     # [BK, T, F]
        next_ctx = None
        if self.reads_ahead:                           # step t + 1's glimpse, for each t
            next_ctx = torch.cat([ctx[:, 1:], self.context(feats, h[-1], keys)[0].unsqueeze(1)], 1)
        return self.logits(torch.stack(outs, 1), ctx, next_ctx)   # [BK, T, V]


def build_captioner(cfg: CaptionConfig, backbone_weights: str | None = None) -> Captioner:
    """The captioner a config describes: the paper's CNN-LSTM, or with `colour_words` the world's colour-word
    variant (caption_world.py). Settings that do not go together are refused here, by name."""
    if cfg.backbone == 'factorized' or cfg.fine_grid or cfg.colour_words or cfg.colour_blind_words:
        from caption_world import WorldCaptioner, check_world_config
        check_world_config(cfg)
        if cfg.colour_words:
            return WorldCaptioner(cfg)
    return Captioner(cfg, backbone_weights)


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
