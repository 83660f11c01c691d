"""Build a tiny safety checker with the inputs and outputs of diffusers' exported one, for tests.

    python3 models/train/tiny_safety_checker.py --out tests/fixtures/tiny-safety

Writes, into a temporary folder first:
- `safety_checker/model.onnx`: inputs `clip_input` float32 [N, 3, H, W] (CLIP-preprocessed pixels) and `images`
  float32 [N, H, W, 3] (the decoded images in [0, 1]); outputs `out_images` (the images, flagged ones blacked out,
  as diffusers' StableDiffusionSafetyChecker does) and `has_nsfw_concepts` bool [N]. The names, dtypes and dynamic
  axes are those of diffusers' `convert_stable_diffusion_checkpoint_to_onnx.py`. Instead of CLIP and concept
  embeddings it has one steerable rule: an image is flagged when the mean of its red channel in `clip_input` exceeds
  the mean of its blue channel by more than `--threshold` (normalised units; the default -0.12 splits the 32 x 32
  pictures that tests/fixtures/tiny-sd draws for the tests' prompt about in half, so both outcomes are exercised).
- `feature_extractor/preprocessor_config.json`: a CLIPImageProcessor config (shortest edge 24, centre crop 20 x 20,
  CLIP's mean and std), small so that resizing and cropping both do something to the 32 x 32 test images.
- `reference/`: a deterministic 40 x 28 test picture (`picture.png`) and what transformers' CLIPImageProcessor makes
  of it with that config (`clip_input.npy`, float32 [1, 3, 20, 20]), so the TypeScript preprocessing can be checked
  against the reference implementation.

Then it reloads the graph in onnxruntime, compares it with PyTorch on a flagged and an unflagged input, and only then
moves the folder into place.
"""
from __future__ import annotations

import needs  # a missing package is one line naming it, before the imports that need it
needs.require()

import argparse
import json
import os
import shutil
import tempfile

import numpy as np
import torch
import torch.nn as nn

OPSET = 17
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PREPROCESSOR = {
    'crop_size': {'height': 20, 'width': 20},
    'do_center_crop': True,
    'do_convert_rgb': True,
    'do_normalize': True,
    'do_rescale': True,
    'do_resize': True,
    'image_mean': CLIP_MEAN,
    'image_processor_type': 'CLIPImageProcessor',
    'image_std': CLIP_STD,
    'resample': 3,
    'rescale_factor': 1 / 255,
    'size': {'shortest_edge': 24},
}


class TinySafetyChecker(nn.Module):
    def __init__(self, threshold: float):
        super().__init__()
        self.register_buffer('threshold', torch.tensor(threshold, dtype=torch.float32))

    def forward(self, clip_input, images):                        # [N, 3, H, W], [N, h, w, 3]
        red = clip_input[:, 0].mean(dim=(1, 2))                   # [N]
        blue = clip_input[:, 2].mean(dim=(1, 2))                  # [N]
        has_nsfw_concepts = (red - blue) > self.threshold         # [N] bool
        keep = (~has_nsfw_concepts).to(images.dtype).reshape(-1, 1, 1, 1)
        return images * keep, has_nsfw_concepts                   # [N, h, w, 3], [N]


def reference_picture() -> np.ndarray:
    """A 40 x 28 RGB picture with gradients and a square, uint8 [H, W, 3]: the same on every machine."""
    h, w = 28, 40
    y, x = np.mgrid[0:h, 0:w]
    picture = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 32 * 8], axis=-1).astype(np.uint8)
    picture[8:18, 14:26] = [250, 40, 30]
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--threshold', type=float, default=-0.12)
    args = parser.parse_args()

    from PIL import Image
    from transformers import CLIPImageProcessor
    import onnxruntime as ort

    tmp = tempfile.mkdtemp(prefix='tiny-safety-')
    os.makedirs(os.path.join(tmp, 'safety_checker'))
    os.makedirs(os.path.join(tmp, 'feature_extractor'))
    os.makedirs(os.path.join(tmp, 'reference'))

    model = TinySafetyChecker(args.threshold).eval()
    graph = os.path.join(tmp, 'safety_checker', 'model.onnx')
    torch.onnx.export(
        model, (torch.zeros(1, 3, 20, 20), torch.zeros(1, 32, 32, 3)), graph,
        input_names=['clip_input', 'images'], output_names=['out_images', 'has_nsfw_concepts'],
        dynamic_axes={
            'clip_input': {0: 'batch', 1: 'channels', 2: 'height', 3: 'width'},
            'images': {0: 'batch', 1: 'height', 2: 'width', 3: 'channels'},
        },
        opset_version=OPSET, dynamo=False,
    )
    with open(os.path.join(tmp, 'safety_checker', 'config.json'), 'w') as f:
        json.dump({'_class_name': 'TinySafetyChecker', 'threshold': args.threshold,
                   'rule': 'mean(clip_input red) - mean(clip_input blue) > threshold'}, f, indent=2)
    with open(os.path.join(tmp, 'feature_extractor', 'preprocessor_config.json'), 'w') as f:
        json.dump(PREPROCESSOR, f, indent=2)

    # the reference preprocessing, by transformers itself
    picture = reference_picture()
    Image.fromarray(picture).save(os.path.join(tmp, 'reference', 'picture.png'))
    processor = CLIPImageProcessor.from_pretrained(os.path.join(tmp, 'feature_extractor'))
    clip_input = processor(Image.fromarray(picture), return_tensors='np').pixel_values.astype(np.float32)
    assert clip_input.shape == (1, 3, 20, 20), clip_input.shape
    np.save(os.path.join(tmp, 'reference', 'clip_input.npy'), clip_input)

    # reload and compare: one flagged (reddish) and one clean (bluish) input
    session = ort.InferenceSession(graph, providers=['CPUExecutionProvider'])
    red = np.zeros((1, 3, 20, 20), np.float32)
    red[:, 0] = 1.0
    blue = np.zeros((1, 3, 20, 20), np.float32)
    blue[:, 2] = 1.0
    clip = np.concatenate([red, blue])
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    out_images, flags = session.run(None, {'clip_input': clip, 'images': images})
    want_images, want_flags = model(torch.from_numpy(clip), torch.from_numpy(images))
    assert flags.dtype == np.bool_ and flags.tolist() == [True, False], flags
    assert flags.tolist() == want_flags.tolist()
    assert np.abs(out_images - want_images.numpy()).max() <= 1e-6
    assert np.all(out_images[0] == 0) and np.allclose(out_images[1], images[1])

    if os.path.exists(args.out):
        for name in ('safety_checker', 'feature_extractor', 'reference'):
            shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    for name in ('safety_checker', 'feature_extractor', 'reference'):
        shutil.move(os.path.join(tmp, name), os.path.join(args.out, name))
    shutil.rmtree(tmp)
    print(f'wrote {args.out}: safety_checker/model.onnx (threshold {args.threshold}), feature_extractor/, reference/')


if __name__ == '__main__':
    main()
