#!/usr/bin/python3
"""Golden outputs of open_clip's eval preprocessing for tests/data/image_transform_test.cpp.

Writes small "photo-like" test images (smooth gradients + noise + sharp edges) as PNG and
JPEG, then runs torchvision on PIL images exactly as open_clip's eval transform does:
Resize(S, interpolation=BICUBIC) -> CenterCrop(S) -> ToTensor (-> Normalize, left out: it
is affine and tested separately). The uint8 result (ToTensor * 255, exact) is written as a
PNG, lossless, so the C++ test needs no tensor reader:

  tests/data/golden/images/<name>.<png|jpg>            input
  tests/data/golden/images/<name>.<png|jpg>.eval<S>.png expected S x S crop
  tests/data/golden/images/manifest.txt                 one "input S expected" per line

Run: /usr/bin/python3 tools/make_golden_images.py (python3-pil + python3-torchvision).
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                   "golden", "images")
SIZES = [64, 33]  # 33: odd margins, exercising CenterCrop's round-half-to-even
SHAPES = {"grad97x131": (97, 131), "grad256x200": (256, 200), "grad40x300": (40, 300),
          "grad50x50": (50, 50)}  # (height, width)


def photo_like(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):  # smooth gradients and a low-frequency wave
        a, b, f = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.02, 0.1)
        img[..., c] = 128 + 60 * (a * x / w + b * y / h) + 40 * np.sin(f * (x + 2 * y) + c)
    # sharp-edged rectangle and disc
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    img[y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform(0, 255, 3)
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), min(h, w) / 4
    img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 12, img.shape)  # sensor-like noise
    img[::7, :, :] = 255 - img[::7, :, :]  # a few one-pixel lines (aliasing-prone)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = []
    for i, (name, (h, w)) in enumerate(sorted(SHAPES.items())):
        rgb = Image.fromarray(photo_like(h, w, 1000 + i), "RGB")
        inputs = [name + ".png", name + ".jpg"]
        rgb.save(os.path.join(OUT, inputs[0]))
        rgb.save(os.path.join(OUT, inputs[1]), quality=90)
        for fname in inputs:
            # Reopen from disk so the JPEG case includes PIL's decode of the file.
            img = Image.open(os.path.join(OUT, fname)).convert("RGB")
            for s in SIZES:
                t = transforms.Compose([
                    transforms.Resize(s, interpolation=transforms.InterpolationMode.BICUBIC),
                    transforms.CenterCrop(s),
                    transforms.ToTensor(),
                ])(img)
                out = (t * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
                expected = "%s.eval%d.png" % (fname, s)
                Image.fromarray(out, "RGB").save(os.path.join(OUT, expected))
                lines.append("%s %d %s" % (fname, s, expected))
    # Grayscale and RGBA inputs: PIL's convert("RGB") replicates gray, drops alpha.
    gray = Image.fromarray(photo_like(45, 70, 7)[..., 1], "L")
    gray.save(os.path.join(OUT, "gray45x70.png"))
    rgba = np.concatenate([photo_like(30, 20, 8), np.full((30, 20, 1), 77, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba30x20.png"))
    for fname in ["gray45x70.png", "rgba30x20.png"]:
        conv = Image.open(os.path.join(OUT, fname)).convert("RGB")
        expected = fname + ".rgb.png"
        conv.save(os.path.join(OUT, expected))
        lines.append("%s 0 %s" % (fname, expected))
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("# input size expected (size 0: decode + convert('RGB') only); "
                "torchvision %s, Pillow %s\n" % (torchvision.__version__, Image.__version__))
        f.write("\n".join(lines) + "\n")
    print("wrote %d golden pairs to %s" % (len(lines), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
