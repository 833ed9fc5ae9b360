#!/usr/bin/python3
"""open_clip's CoCa training step on this machine: the reference for `coca bench step`.

Builds issue #9's two configurations with open_clip's own CoCa class (the source tree of
open_clip v2.32.0 given by --open-clip-src; nothing is installed or copied), then times
forward + CoCaLoss(caption 2, contrastive 1) + backward + torch.optim.AdamW.step on random
images and tokens, like configs/bench/*_open_clip.yaml with `coca bench step`.

  git -C <open_clip mirror> archive v2.32.0 src/open_clip | tar -x -C /tmp/oc
  /usr/bin/python3 tools/bench_open_clip_reference.py --open-clip-src /tmp/oc/src --config small

Run it with Debian's /usr/bin/python3 (python3-torch 1.13, python3-regex, python3-tqdm). open_clip's
tokenizer module imports ftfy, which Debian 12 does not package; the step never tokenizes,
so when ftfy is missing a one-function stand-in is put on sys.path for the import only.
Prints median/min/max ms per step, samples/s and peak RSS (MiB).
"""
import argparse
import os
import sys
import tempfile


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--open-clip-src", required=True,
                   help="folder holding open_clip/ (v2.32.0's src/)")
    p.add_argument("--config", choices=["small", "vit_b_32"], default="small")
    p.add_argument("--batch", type=int, default=0, help="0 = the config's (32 / 8)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    return p.parse_args()


ARGS = parse_args()
# The same thread environment `coca` sets for itself, before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))

import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

try:
    import ftfy  # noqa: F401
except ImportError:
    stub_dir = tempfile.mkdtemp(prefix="ftfy_stub_")
    with open(os.path.join(stub_dir, "ftfy.py"), "w") as f:
        f.write("def fix_text(text, **kwargs):\n    return text\n")
    sys.path.insert(0, stub_dir)
sys.path.insert(0, ARGS.open_clip_src)
import open_clip  # noqa: E402

CONFIGS = {
    # Issue #9's "small" CoCa (= configs/bench/small_open_clip.yaml).
    "small": dict(
        batch=32,
        embed_dim=256,
        vision_cfg=dict(image_size=64, patch_size=8, width=256, layers=6, head_width=64,
                        attentional_pool=True, attn_pooler_queries=64, attn_pooler_heads=8,
                        output_tokens=True),
        text_cfg=dict(context_length=32, vocab_size=1000, width=256, heads=4, layers=6,
                      embed_cls=True, output_tokens=True),
        multimodal_cfg=dict(context_length=32, vocab_size=1000, width=256, heads=4, layers=6,
                            attn_pooler_heads=8),
    ),
    # open_clip's model_configs/coca_ViT-B-32.json (= configs/bench/vit_b_32_open_clip.yaml).
    "vit_b_32": dict(
        batch=8,
        embed_dim=512,
        vision_cfg=dict(image_size=224, patch_size=32, width=768, layers=12,
                        attentional_pool=True, attn_pooler_heads=8, output_tokens=True),
        text_cfg=dict(context_length=76, vocab_size=49408, width=512, heads=8, layers=12,
                      embed_cls=True, output_tokens=True),
        multimodal_cfg=dict(context_length=76, vocab_size=49408, width=512, heads=8,
                            layers=12, attn_pooler_heads=8),
    ),
}


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    cfg = dict(CONFIGS[ARGS.config])
    batch = ARGS.batch or cfg.pop("batch")
    cfg.pop("batch", None)
    model = open_clip.CoCa(**cfg)
    model.train()
    loss_fn = open_clip.CoCaLoss(caption_loss_weight=2.0, clip_loss_weight=1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.2)
    size = cfg["vision_cfg"]["image_size"]
    ctx = cfg["text_cfg"]["context_length"]
    vocab = cfg["text_cfg"]["vocab_size"]
    images = torch.randn(batch, 3, size, size)
    text = torch.randint(1, vocab, (batch, ctx))

    times = []
    for i in range(ARGS.warmup + ARGS.steps):
        t0 = time.perf_counter()
        out = model(images, text)
        con, cap = loss_fn(out["image_features"], out["text_features"], out["logits"],
                           out["labels"], out["logit_scale"])
        opt.zero_grad(set_to_none=True)
        (con + cap).backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1e3
        if i >= ARGS.warmup:
            times.append(dt)
    params = sum(p.numel() for p in model.parameters())
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    med = statistics.median(times)
    print(f"open_clip {open_clip.__version__} CoCa '{ARGS.config}': {params:,} parameters, "
          f"batch {batch}, {ARGS.threads} threads, torch {torch.__version__}")
    print(f"ms/step median {med:.1f} (min {min(times):.1f}, max {max(times):.1f}) over "
          f"{len(times)} steps; {batch * 1e3 / med:.2f} samples/s; peak RSS {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
