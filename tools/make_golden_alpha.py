#!/usr/bin/python3
"""Writes the transparent PNGs of tests/data/golden/alpha/ (flatten_image tests) with PIL.

rgba_3x2.png: RGBA pixels (row-major) opaque red, transparent green, half-transparent
black (alpha 128), opaque (10,20,30), transparent (200,100,50), opaque blue.
la_40x20.png: grey 100 with alpha 255 everywhere (gray+alpha, 40 wide, 20 high).
Run: /usr/bin/python3 tools/make_golden_alpha.py
"""
import os

from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden", "alpha")
os.makedirs(out, exist_ok=True)
im = Image.new("RGBA", (3, 2))
im.putdata([(255, 0, 0, 255), (0, 255, 0, 0), (0, 0, 0, 128),
            (10, 20, 30, 255), (200, 100, 50, 0), (0, 0, 255, 255)])
im.save(os.path.join(out, "rgba_3x2.png"))
Image.new("LA", (40, 20), (100, 255)).save(os.path.join(out, "la_40x20.png"))
