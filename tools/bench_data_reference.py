#!/usr/bin/python3
# Reference for `coca bench data` (issue #5): writes 512 photo-like 256x256 JPEGs as a
# WebDataset shard and times a torchvision+PIL DataLoader doing the same per-image work as
# coca's training pipeline (decode, RandomResizedCrop(224, scale 0.9-1, bicubic), ToTensor,
# Normalize; tokenisation not included). An existing shard and bench.yaml in the folder are
# reused. Run with Debian's python3-torch/torchvision:
#   /usr/bin/python3 tools/bench_data_reference.py /tmp/jpg
#   build/src/cli/coca bench data -c /tmp/jpg/bench.yaml --batches 7
import io, os, sys, tarfile, time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/jpg"
os.makedirs(out, exist_ok=True)
shard = os.path.join(out, "photos-00000.tar")
rng = np.random.default_rng(0)
write = not os.path.exists(shard)  # an existing shard is reused (same files for both sides)
with (tarfile.open(shard, "w") if write else open(os.devnull, "rb")) as tar:
    for i in range(512 if write else 0):
        y, x = np.mgrid[0:256, 0:256]
        base = np.stack([(x + i) % 256, (y * 2 + i) % 256, ((x + y) // 2) % 256], -1).astype(np.float32)
        base += rng.normal(0, 12, base.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        for name, payload in ((f"{i:06d}.jpg", buf.getvalue()), (f"{i:06d}.txt", f"photo number {i}".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
spm = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "demo", "spm.model")
config = os.path.join(out, "bench.yaml")
with (open(config, "w") if not os.path.exists(config) else open(os.devnull, "w")) as f:
    f.write(f"""include: [preset:coca_demo]
model: {{vision: {{image_size: 224, patch_size: 16}}, text: {{vocab_size: 128}}}}
data:
  sources: [{{name: photos, type: webdataset, path: {shard}, text: caption}}]
  tokenizer: {{type: sentencepiece, path: {os.path.abspath(spm)}}}
  train_transform: {{image_size: 224, scale_min: 0.9, scale_max: 1.0}}
train: {{batch_size: 64}}
""")

with tarfile.open(shard) as tar:
    data = [tar.extractfile(m).read() for m in sorted(tar.getmembers(), key=lambda m: m.name)
            if m.name.endswith(".jpg")]
tf = T.Compose([T.RandomResizedCrop(224, scale=(0.9, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                T.ToTensor(),
                T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


class Photos(torch.utils.data.Dataset):
    def __len__(self):
        return len(data)

    def __getitem__(self, i):
        return tf(Image.open(io.BytesIO(data[i])).convert("RGB"))


for workers in (0, 2):
    it = iter(torch.utils.data.DataLoader(Photos(), batch_size=64, num_workers=workers))
    next(it)  # warm-up batch
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for batch in it:
        n += batch.shape[0]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    # CPU time of this process only: with workers > 0 the decoding runs in child processes.
    cpu_note = f"; {cpu:.2f} CPU-s = {n / cpu:.1f} images per CPU-second" if workers == 0 else ""
    print(f"torchvision+PIL num_workers={workers}: {n} images in {dt:.2f} s = {n / dt:.1f} images/s"
          + cpu_note)
