#!/usr/bin/python3
"""An independent PyTorch check of how fast the demo's image encoder can learn shape.

Trains a plain ViT of the coca_demo size (64 px, patch 8, width 128, 4 layers, 4 heads, MLP
512, one-query attention pool, LayerNorm, linear head) from scratch as a 28-way
"<colour> <shape>" classifier on the demo's WebDataset shards, with AdamW, 5% warm-up +
cosine decay and label smoothing 0.1 (configs/finetune/demo_probe.yaml's optimiser, schedule and
smoothing, but from random weights and without its EMA), and prints top-1 on the held-out images
that hold one shape group. `--stem conv-bn|conv-gn|conv-ln|conv-none` swaps the patch embedding for a
convolutional stem. It shares no code with coca; it exists so the README's statement "a tiny ViT learns
shape slowly at this compute" rests on more than our own implementation.

Needs Debian's python3-torch, python3-numpy and python3-pil (run it with /usr/bin/python3):
  /usr/bin/python3 tools/reference_vit_classifier.py data/demo --steps 600
  /usr/bin/python3 tools/reference_vit_classifier.py data/demo --steps 600 --single-group-train
  /usr/bin/python3 tools/reference_vit_classifier.py data/demo --steps 600 --stem conv-bn
"""
import argparse
import glob
import io
import math
import os
import tarfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def load_shards(paths):
    """Images as normalised [N, 3, H, W], the first label id, and whether it is the only one."""
    images, first, single = [], [], []
    for path in paths:
        samples = {}
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.rsplit(".", 1)
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
        for key in sorted(samples):
            s = samples[key]
            images.append(np.array(Image.open(io.BytesIO(s["png"])).convert("RGB")))
            ids = [int(x) for x in s["cls"].decode().split()]
            first.append(ids[0])
            single.append(len(ids) == 1)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD, torch.tensor(first), torch.tensor(single)


class Block(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel (ConvNeXt's LayerNorm2d)."""

    def __init__(self, channels):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def make_norm(norm, channels):
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        return nn.GroupNorm(8, channels)
    if norm == "ln":
        return ChannelLayerNorm(channels)
    return nn.Identity()


def conv_stem(width, patch, norm):
    """Xiao et al. 2021 ("Early convolutions help transformers see better"): log2(patch) 3x3
    stride-2 convolutions, each with a norm and ReLU, then a 1x1 projection to the width."""
    layers, cin, cout = [], 3, width // (patch // 2)
    while patch > 1:
        layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                   make_norm(norm, cout), nn.ReLU()]
        cin, cout, patch = cout, cout * 2, patch // 2
    return nn.Sequential(*layers, nn.Conv2d(cin, width, 1))


class ViTClassifier(nn.Module):
    def __init__(self, classes, image=64, patch=8, width=128, layers=4, heads=4, mlp=512,
                 stem="patch"):
        super().__init__()
        self.patch = (nn.Conv2d(3, width, patch, patch) if stem == "patch"
                      else conv_stem(width, patch, stem.split("-")[1]))
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2, width) * width**-0.5)
        self.ln_pre, self.ln_post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[Block(width, heads, mlp) for _ in range(layers)])
        self.query = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pool = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_pool = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.ln_post(self.blocks(self.ln_pre(self.patch(x).flatten(2).transpose(1, 2) + self.pos)))
        q = self.query.expand(x.shape[0], -1, -1)
        return self.head(self.ln_pool(self.pool(q, x, x, need_weights=False)[0][:, 0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="directory with train-*.tar, val-00000.tar, classes.txt")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single-group-train", action="store_true",
                    help="train only on images with one shape group (a clean label)")
    ap.add_argument("--stem", choices=["patch", "conv-bn", "conv-gn", "conv-ln", "conv-none"], default="patch",
                    help="patch embedding (the paper's ViT) or a convolutional stem")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    x, y, single = load_shards(sorted(glob.glob(os.path.join(args.data, "train-*.tar"))))
    if args.single_group_train:
        x, y = x[single], y[single]
    xv, yv, sv = load_shards([os.path.join(args.data, "val-00000.tar")])
    xv, yv = xv[sv][:500], yv[sv][:500]  # what coca eval scores zero-shot on
    with open(os.path.join(args.data, "classes.txt")) as f:
        classes = sum(1 for line in f if line.strip())

    model = ViTClassifier(classes, stem=args.stem)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warm = max(1, int(0.05 * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    print(f"{len(x)} training images, {len(xv)} held-out single-group images", flush=True)
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x), (args.batch,), generator=gen)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx], label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps:
            model.eval()
            with torch.no_grad():
                top1 = (model(xv).argmax(1) == yv).float().mean().item()
            model.train()
            print(f"step {step} loss {loss.item():.3f} held-out top-1 {top1:.3f} "
                  f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
