"""The builtin text-to-image model: Stable Diffusion's three networks at toy size, in plain PyTorch.

- `AutoencoderKL`: diffusers' AutoencoderKL semantics (encoder -> mean/logvar through quant_conv, sample,
  post_quant_conv -> decoder). 64x64 RGB in [-1, 1] <-> latents [B, 4, 16, 16] (f = 2^(len(blocks)-1) = 4).
  `scaling_factor` (1 / std of the latents, measured after training) lives in its config, as in diffusers.
- `TextEncoder`: CLIPTextModel semantics (token + learned position embeddings, pre-LN transformer layers with a
  causal mask, quick-GELU MLP, final LN; pooler_output = hidden state at the first EOS token).
- `UNet`: UNet2DConditionModel semantics (sinusoidal timestep -> MLP embedding, ResNet blocks that add it,
  a cross-attention transformer on the text states at each level whose block type says so (`down_block_types`:
  CrossAttnDownBlock2D or DownBlock2D, the up path mirrored) and in the middle, skips, epsilon output).
- `NoiseSchedule`: SD 1.x scaled-linear betas 0.00085..0.012 over 1000 steps.

Every config is a dataclass that the checkpoints store as a dict (`asdict`), nanoGPT style.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------------
# configs

@dataclass
class VAEConfig:
    in_channels: int = 3
    latent_channels: int = 4
    block_out_channels: tuple = (16, 32, 64)   # 3 levels -> f = 4: 64x64 -> 16x16
    layers_per_block: int = 1
    norm_num_groups: int = 8
    mid_attention: bool = True                 # diffusers' UNetMidBlock2D has one single-head attention
    sample_size: int = 64
    scaling_factor: float = 1.0                # set to 1/std(latents) after stage 1


@dataclass
class TextConfig:
    vocab_size: int = 1000
    max_position_embeddings: int = 32          # = tokenizer model_max_length
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    bos_token_id: int = 0
    eos_token_id: int = 1
    pad_token_id: int = 1


@dataclass
class UNetConfig:
    sample_size: int = 16
    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: tuple = (64, 96, 96)   # latents 16x16 -> 8x8 -> 4x4
    layers_per_block: int = 1
    attention_head_dim: int = 32               # channels per head (heads = channels / this)
    cross_attention_dim: int = 128             # = TextConfig.hidden_size
    norm_num_groups: int = 16
    ff_mult: int = 2                           # GEGLU width = ff_mult * channels (SD: 4)
    time_embed_dim: int = 0                    # 0 -> 4 * block_out_channels[0], as diffusers
    # diffusers' names, one per level from the top resolution down; the up path mirrors them (CrossAttnUpBlock2D /
    # UpBlock2D). A level of DownBlock2D has no transformer (SDXL's top level): attention only where it pays.
    # Empty: a transformer at every level (the checkpoints from before the key).
    down_block_types: tuple = ()

    def __post_init__(self):
        if not self.down_block_types:
            self.down_block_types = ('CrossAttnDownBlock2D',) * len(self.block_out_channels)
        if len(self.down_block_types) != len(self.block_out_channels):
            raise ValueError(f'UNetConfig: {len(self.down_block_types)} down_block_types for '
                             f'{len(self.block_out_channels)} levels of block_out_channels')
        unknown = set(self.down_block_types) - set(DOWN_TO_UP)
        if unknown:
            raise ValueError(f'UNetConfig: down_block_types {sorted(unknown)} (expected {sorted(DOWN_TO_UP)})')

    @property
    def attention_levels(self) -> tuple:
        return tuple(t == 'CrossAttnDownBlock2D' for t in self.down_block_types)

    @property
    def up_block_types(self) -> tuple:
        return tuple(DOWN_TO_UP[t] for t in reversed(self.down_block_types))


DOWN_TO_UP = {'CrossAttnDownBlock2D': 'CrossAttnUpBlock2D', 'DownBlock2D': 'UpBlock2D'}


@dataclass
class ScheduleConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = 'scaled_linear'


def config_from_dict(cls, d: dict):
    """Rebuild a config dataclass from a checkpoint dict (lists back to tuples, unknown keys refused)."""
    names = {f for f in cls.__dataclass_fields__}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f'{cls.__name__}: unknown keys {sorted(unknown)} (expected a subset of {sorted(names)})')
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ----------------------------------------------------------------------------------------------------------------
# shared blocks

class ResnetBlock(nn.Module):
    """diffusers ResnetBlock2D: norm-silu-conv, (+ time embedding), norm-silu-conv, 1x1 shortcut when C changes."""

    def __init__(self, cin: int, cout: int, groups: int, temb_dim: int = 0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, cout) if temb_dim else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb=None):                                   # x [B, Cin, H, W], temb [B, T]
        h = self.conv1(F.silu(self.norm1(x)))                          # [B, Cout, H, W]
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


def multi_head(q, k, v, heads: int, causal: bool = False):
    """softmax(q k^T / sqrt(d)) v per head: q [B, N, C], k and v [B, M, C] -> [B, N, C]"""
    B, N, C = q.shape
    split = lambda t: t.reshape(B, t.shape[1], heads, C // heads).transpose(1, 2)   # noqa: E731  [B, h, ., d]
    o = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)   # [B, h, N, d]
    return o.transpose(1, 2).reshape(B, N, C)


class FusedAttention(torch.autograd.Function):
    """`multi_head`, exported as onnxruntime's com.microsoft.MultiHeadAttention (CPU and CUDA kernels): one node
    in place of the reshapes, transposes, two MatMuls and the Softmax of the plain formula. Only used while
    exporting: training and the reference sampler run `multi_head` itself."""

    @staticmethod
    def forward(ctx, q, k, v, heads: int):
        return multi_head(q, k, v, heads)

    @staticmethod
    def symbolic(g, q, k, v, heads: int):
        return g.op('com.microsoft::MultiHeadAttention', q, k, v, num_heads_i=heads).setType(q.type())


def attention(q, k, v, heads: int):
    """q [B, N, C], k and v [B, M, C] -> [B, N, C]"""
    return FusedAttention.apply(q, k, v, heads) if torch.onnx.is_in_onnx_export() else multi_head(q, k, v, heads)


class Attention(nn.Module):
    """Multi-head attention; `context` None -> self-attention. Keys/values may come from another width (text)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, out_bias: bool = True,
                 qkv_bias: bool = False):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_out = nn.Linear(dim, dim, bias=out_bias)

    def forward(self, x, context=None, causal: bool = False):         # x [B, N, C], context [B, M, Cc]
        context = x if context is None else context
        return self.to_out(multi_head(self.to_q(x), self.to_k(context), self.to_v(context), self.heads, causal))


class RowAttention(Attention):
    """`Attention` for token rows: x [B*N, C] (flattened over the batch), context [B, M, Cc] -> [B*N, C]. Queries,
    keys and values are projected from [B, ., C] views (no bias: a plain MatMul each), the output projection
    from rows (one GEMM with its bias). Same parameters as `Attention`."""

    def forward(self, x, context, batch):
        C = self.to_q.out_features
        q = self.to_q(x.reshape(batch, -1, C))                             # [B, N, C]
        o = attention(q, self.to_k(context), self.to_v(context), self.heads)   # [B, N, C]
        return self.to_out(o.reshape(-1, C))


# ----------------------------------------------------------------------------------------------------------------
# the KL autoencoder

class VAEMidBlock(nn.Module):
    def __init__(self, c: int, groups: int, attention: bool):
        super().__init__()
        self.res1 = ResnetBlock(c, c, groups)
        self.norm = nn.GroupNorm(groups, c, eps=1e-6) if attention else None
        self.attn = Attention(c, 1, qkv_bias=True) if attention else None
        self.res2 = ResnetBlock(c, c, groups)

    def forward(self, x):                                              # [B, C, h, w]
        x = self.res1(x)
        if self.attn is not None:
            B, C, H, W = x.shape
            t = self.norm(x).flatten(2).transpose(1, 2)                # [B, h*w, C]
            x = x + self.attn(t).transpose(1, 2).reshape(B, C, H, W)
        return self.res2(x)


class VAEEncoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, g = cfg.block_out_channels, cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch[0]
        for i, c in enumerate(ch):
            blocks = nn.ModuleList()
            for _ in range(cfg.layers_per_block):
                blocks.append(ResnetBlock(cin, c, g))
                cin = c
            # diffusers Downsample2D in the VAE: pad (0,1,0,1) then a stride-2 conv without padding
            down = nn.Conv2d(c, c, 3, stride=2) if i < len(ch) - 1 else None
            self.down.append(nn.ModuleDict({'resnets': blocks, **({'downsample': down} if down else {})}))
        self.mid = VAEMidBlock(cin, g, cfg.mid_attention)
        self.norm_out = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x):                                              # [B, 3, H, W]
        h = self.conv_in(x)                                            # [B, C0, H, W]
        for blk in self.down:
            for r in blk['resnets']:
                h = r(h)
            if 'downsample' in blk:
                h = blk['downsample'](F.pad(h, (0, 1, 0, 1)))          # [B, C, H/2, W/2]
        h = self.mid(h)                                                # [B, C, H/f, W/f]
        return self.conv_out(F.silu(self.norm_out(h)))                 # [B, 2*4, H/f, W/f]


class VAEDecoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, g = tuple(reversed(cfg.block_out_channels)), cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.mid = VAEMidBlock(ch[0], g, cfg.mid_attention)
        self.up = nn.ModuleList()
        cin = ch[0]
        for i, c in enumerate(ch):
            blocks = nn.ModuleList()
            for _ in range(cfg.layers_per_block + 1):                  # diffusers: one more resnet going up
                blocks.append(ResnetBlock(cin, c, g))
                cin = c
            up = nn.Conv2d(c, c, 3, padding=1) if i < len(ch) - 1 else None
            self.up.append(nn.ModuleDict({'resnets': blocks, **({'upsample': up} if up else {})}))
        self.norm_out = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, cfg.in_channels, 3, padding=1)

    def forward(self, z):                                              # [B, 4, h, w]
        h = self.mid(self.conv_in(z))                                  # [B, Cl, h, w]
        for blk in self.up:
            for r in blk['resnets']:
                h = r(h)
            if 'upsample' in blk:
                h = blk['upsample'](F.interpolate(h, scale_factor=2.0, mode='nearest'))   # [B, C, 2h, 2w]
        return self.conv_out(F.silu(self.norm_out(h)))                 # [B, 3, H, W], about [-1, 1]


class AutoencoderKL(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = VAEEncoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)
        self.decoder = VAEDecoder(cfg)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.cfg.block_out_channels) - 1)

    def encode(self, x):                                               # [B, 3, H, W] in [-1, 1]
        moments = self.quant_conv(self.encoder(x))                     # [B, 8, H/f, W/f]
        mean, logvar = moments.chunk(2, dim=1)                         # [B, 4, H/f, W/f] each
        return mean, logvar.clamp(-30.0, 20.0)                         # clamp as diffusers' DiagonalGaussian

    def decode(self, z):                                               # [B, 4, h, w], unscaled latents
        return self.decoder(self.post_quant_conv(z))                   # [B, 3, f*h, f*w]

    def forward(self, x, sample: bool = True):
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return self.decode(z), mean, logvar


# ----------------------------------------------------------------------------------------------------------------
# the CLIP-style text encoder

class CLIPLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        d = cfg.hidden_size
        self.layer_norm1 = nn.LayerNorm(d)
        self.self_attn = Attention(d, cfg.num_attention_heads, qkv_bias=True)
        self.layer_norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, d)

    def forward(self, x):                                              # [B, L, D]
        x = x + self.self_attn(self.layer_norm1(x), causal=True)      # CLIP's causal mask
        h = self.fc1(self.layer_norm2(x))                              # [B, L, 4D]
        return x + self.fc2(h * torch.sigmoid(1.702 * h))              # quick_gelu, as CLIP


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embedding = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.layers = nn.ModuleList(CLIPLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.01)

    def forward(self, input_ids):                                      # [B, L] int32 or int64
        ids = input_ids.long()
        B, L = ids.shape
        pos = torch.arange(L, device=ids.device)                       # [L]
        x = self.token_embedding(ids) + self.position_embedding(pos)[None]   # [B, L, D]
        for layer in self.layers:
            x = layer(x)
        x = self.final_layer_norm(x)                                   # last_hidden_state [B, L, D]
        # pooler_output: the state at the first EOS (CLIP; the pad token may be EOS too, hence "first")
        eos_pos = (ids == self.cfg.eos_token_id).int().argmax(dim=-1)  # [B]
        pooled = x[torch.arange(B, device=ids.device), eos_pos]        # [B, D]
        return x, pooled


# ----------------------------------------------------------------------------------------------------------------
# the conditional UNet

class Transformer2D(nn.Module):
    """diffusers Transformer2DModel with one BasicTransformerBlock: self-attn, cross-attn on text, GEGLU MLP."""

    def __init__(self, c: int, head_dim: int, context_dim: int, groups: int, ff_mult: int):
        super().__init__()
        heads = max(1, c // head_dim)
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.proj_in = nn.Linear(c, c)
        self.norm1 = nn.LayerNorm(c)
        self.attn1 = RowAttention(c, heads)
        self.norm2 = nn.LayerNorm(c)
        self.attn2 = RowAttention(c, heads, context_dim)
        self.norm3 = nn.LayerNorm(c)
        self.ff_in = nn.Linear(c, 2 * ff_mult * c)                     # GEGLU: value and gate
        self.ff_out = nn.Linear(ff_mult * c, c)
        self.proj_out = nn.Linear(c, c)

    def forward(self, x, context):                                     # x [B, C, h, w], context [B, L, D]
        # Tokens are rows [B*h*w, C] from proj_in to proj_out: in ONNX each linear is one GEMM with its bias, and
        # the only shapes computed at run time are the batch (for attention) and x's own (to go back).
        B, C = context.shape[0], self.proj_in.in_features
        hw = self.norm(x).permute(0, 2, 3, 1)                          # [B, h, w, C]
        t = self.proj_in(hw.reshape(-1, C))                            # [B*h*w, C]
        y = self.norm1(t)
        t = t + self.attn1(y, y.reshape(B, -1, C), B)
        t = t + self.attn2(self.norm2(t), context, B)                  # queries: pixels; keys/values: tokens
        a, gate = self.ff_in(self.norm3(t)).split(self.ff_out.in_features, dim=-1)      # GEGLU value and gate
        t = t + self.ff_out(a * F.gelu(gate))
        return x + self.proj_out(t).reshape(hw.shape).permute(0, 3, 1, 2)


class NoTransformer(nn.Module):
    """The place of a transformer at a level without attention (DownBlock2D / UpBlock2D): no weights, the block's
    numbering (`down_attns.N`, `up_attns.N`) stays that of the levels."""

    def forward(self, x, context):
        return x


def timestep_embedding(t, dim: int):
    """diffusers Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0): [B] float -> [B, dim] (cos, sin)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]                            # [B, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)       # [B, dim]


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch, g, hd, cd = cfg.block_out_channels, cfg.norm_num_groups, cfg.attention_head_dim, cfg.cross_attention_dim
        temb = cfg.time_embed_dim or 4 * ch[0]
        self.time_embedding = nn.Sequential(nn.Linear(ch[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)

        self.down_resnets, self.down_attns, self.downsamplers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        skips = [ch[0]]
        cin = ch[0]
        for i, c in enumerate(ch):
            for _ in range(cfg.layers_per_block):
                self.down_resnets.append(ResnetBlock(cin, c, g, temb))
                self.down_attns.append(Transformer2D(c, hd, cd, g, cfg.ff_mult) if cfg.attention_levels[i]
                                       else NoTransformer())
                cin = c
                skips.append(c)
            if i < len(ch) - 1:
                self.downsamplers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)

        self.mid_res1 = ResnetBlock(cin, cin, g, temb)
        self.mid_attn = Transformer2D(cin, hd, cd, g, cfg.ff_mult)
        self.mid_res2 = ResnetBlock(cin, cin, g, temb)

        self.up_resnets, self.up_attns, self.upsamplers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(reversed(ch)):
            for _ in range(cfg.layers_per_block + 1):
                self.up_resnets.append(ResnetBlock(cin + skips.pop(), c, g, temb))
                self.up_attns.append(Transformer2D(c, hd, cd, g, cfg.ff_mult)
                                     if cfg.attention_levels[len(ch) - 1 - i] else NoTransformer())
                cin = c
            if i < len(ch) - 1:
                self.upsamplers.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample, timestep, encoder_hidden_states):
        # sample [B, 4, h, w]; timestep [B] or [1] or [] (int64 or float); encoder_hidden_states [B, L, D]
        B = sample.shape[0]
        t = timestep.reshape(-1).float().expand(B)                     # [B]
        emb = self.time_embedding(timestep_embedding(t, self.cfg.block_out_channels[0]))   # [B, T]
        ctx = encoder_hidden_states

        h = self.conv_in(sample)                                       # [B, C0, h, w]
        skips = [h]
        n, L = 0, self.cfg.layers_per_block
        for i in range(len(self.cfg.block_out_channels)):
            for _ in range(L):
                h = self.down_attns[n](self.down_resnets[n](h, emb), ctx)
                skips.append(h)
                n += 1
            if i < len(self.downsamplers):
                h = self.downsamplers[i](h)                            # [B, C, h/2, w/2]
                skips.append(h)

        h = self.mid_res2(self.mid_attn(self.mid_res1(h, emb), ctx), emb)   # [B, Cmax, h/4, w/4]

        n = 0
        for i in range(len(self.cfg.block_out_channels)):
            for _ in range(L + 1):
                h = torch.cat([h, skips.pop()], dim=1)                 # [B, C + Cskip, ., .]
                h = self.up_attns[n](self.up_resnets[n](h, emb), ctx)
                n += 1
            if i < len(self.upsamplers):
                h = self.upsamplers[i](F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.conv_out(F.silu(self.norm_out(h)))                 # epsilon [B, 4, h, w]


# ----------------------------------------------------------------------------------------------------------------
# noise schedule (SD 1.x) and the DDIM step

class NoiseSchedule:
    def __init__(self, cfg: ScheduleConfig = ScheduleConfig()):
        if cfg.beta_schedule != 'scaled_linear':
            raise ValueError(f'beta_schedule: expected scaled_linear, got {cfg.beta_schedule!r}')
        self.cfg = cfg
        betas = torch.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, cfg.num_train_timesteps,
                               dtype=torch.float32) ** 2                # as diffusers (float32)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)        # [1000]

    def add_noise(self, x0, noise, t):                                 # [B, C, h, w] x2, t [B] int64
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def ddim_timesteps(self, steps: int, steps_offset: int = 1) -> list[int]:
        """diffusers DDIMScheduler.set_timesteps with timestep_spacing 'leading' (SD 1.x: steps_offset 1)."""
        n = self.cfg.num_train_timesteps
        if not 1 <= steps <= n:
            raise ValueError(f'steps: expected an integer from 1 to {n}, got {steps!r}')
        ratio = n // steps
        return [int(i * ratio) + steps_offset for i in reversed(range(steps))]

    def ddim_step(self, eps, t: int, x, steps: int):
        """One DDIM step, eta 0, set_alpha_to_one False (final alpha = alphas_cumprod[0]), no clipping."""
        ac = self.alphas_cumprod
        prev = t - self.cfg.num_train_timesteps // steps
        a_t = ac[t].item()
        a_prev = ac[prev].item() if prev >= 0 else ac[0].item()
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5                # predicted clean latents
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps, x0


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


if __name__ == '__main__':                                             # print sizes of the default configs
    for name, m in [('vae', AutoencoderKL(VAEConfig())), ('text', TextEncoder(TextConfig())),
                    ('unet', UNet(UNetConfig()))]:
        print(f'{name}: {count_params(m) / 1e6:.2f}M params')
    u = UNet(UNetConfig())
    print(u(torch.randn(2, 4, 16, 16), torch.tensor([10, 500]), torch.randn(2, 32, 128)).shape)
    v = AutoencoderKL(VAEConfig())
    print(v(torch.randn(2, 3, 64, 64))[0].shape, v.encode(torch.randn(2, 3, 64, 64))[0].shape)
