"""One way to write a checkpoint: a temporary file beside it, flushed to disk, then renamed over it, so a kill -9 at any
moment leaves either the old checkpoint or the new one, never half of one."""
from __future__ import annotations

import os

import torch


def save_atomic(obj, path: str) -> None:
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
