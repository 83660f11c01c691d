"""What the UNet measurements of this folder share: the builtin text-to-image folder, a one-thread onnxruntime session
of a UNet graph, a UNet feed of random latents and text states at a given batch (timestep 500), the transformer blocks
at the top resolution, and the median of timed calls. Import it after `needs.require()`.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FOLDER = os.path.join(ROOT, 'models', 'builtin', 'text-to-image')
UNET = os.path.join(FOLDER, 'unet', 'model.onnx')
# onnxruntime's idle pool threads spin unless told not to; the bot tells them not to (inference/onnx.backend.ts)
NO_SPINNING = {'session.intra_op.allow_spinning': '0'}


def session(path: str = UNET, config: dict | None = None, dims: dict | None = None,
            profile_prefix: str | None = None) -> ort.InferenceSession:
    """One intra-op and one inter-op thread on the CPU; `config` session entries, `dims` free dimensions fixed."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    for name, size in (dims or {}).items():
        so.add_free_dimension_override_by_name(name, size)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def feed(batch: int) -> dict:
    """sample [batch, 4, 16, 16], timestep [batch] and encoder_hidden_states [batch, 32, 128], from seed 0."""
    rng = np.random.default_rng(0)
    return {'sample': rng.standard_normal((batch, 4, 16, 16), dtype=np.float32),
            'timestep': np.full((batch,), 500, np.int64),
            'encoder_hidden_states': rng.standard_normal((batch, 32, 128), dtype=np.float32)}


def top_attention_blocks() -> list[str]:
    """The transformer blocks at the top resolution: the first down block's and the last up block's (none when the
    top level is a DownBlock2D, as in the shipped folder since the round of the top level without attention)."""
    config = json.load(open(os.path.join(FOLDER, 'unet', 'config.json')))
    if not config.get('down_block_types', ['CrossAttnDownBlock2D'])[0].startswith('CrossAttn'):
        return []
    levels, per_down = len(config['block_out_channels']), config['layers_per_block']
    per_up = per_down + 1
    return [f'down_attns.{i}' for i in range(per_down)] + [f'up_attns.{i}' for i in range((levels - 1) * per_up, levels * per_up)]


def median_ms(call, calls: int) -> float:
    """The median of `calls` timed calls after five untimed ones, in milliseconds."""
    for _ in range(5):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
