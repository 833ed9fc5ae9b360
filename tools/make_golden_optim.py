#!/usr/bin/python3
"""Golden values for coca::optim::Adafactor and coca::train losses.

Run with Debian's python3-torch 1.13 (no other dependency):
    /usr/bin/python3 tools/make_golden_optim.py [--reference-dir /work/shared/reference]
Writes (committed; tests never run Python):
    tests/data/golden/adafactor.json      independent float64 Adafactor reference
    tests/data/golden/coca_losses.json    open_clip tiny CoCa features/logits/losses
Format: JSON {"version": 1, "generator": ..., ...}; a tensor is
{"dtype": "float64"|"float32"|"int64", "shape": [...], "data": [row-major values]}.

python3-torch 1.13 has no Adafactor, so reference_adafactor() below is written from the
paper (Shazeer & Stern 2018, arXiv 1804.04235) on purpose in a different form than the C++
code: row/column SUMS (Alg. 4) and an explicit bias-corrected moving average.
"""
import argparse
import json
import math
import os
import struct

import torch

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "tests", "data", "golden")


def tensor_json(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.float64:
        data = [float(x) for x in t.reshape(-1).tolist()]
        dtype = "float64"
    elif t.dtype == torch.float32:
        # 9 significant digits round-trip a float32 exactly.
        data = [float("%.9g" % x) for x in t.reshape(-1).tolist()]
        dtype = "float32"
    elif t.dtype == torch.int64:
        data = [int(x) for x in t.reshape(-1).tolist()]
        dtype = "int64"
    else:
        raise ValueError(t.dtype)
    return {"dtype": dtype, "shape": list(t.shape), "data": data}


# ---------------------------------------------------------------- Adafactor reference
def rms(x):
    return math.sqrt(float((x * x).mean()))


def second_moment(state, g, t, o):
    """Returns V_hat_t (paper Alg. 4 for factored matrices, Alg. 5 otherwise)."""
    g2 = g * g + o["eps1"]  # G_t^2 + eps1 1 1^T
    if o["beta2_schedule"] == "pow":
        # paper §7.2: beta2_hat_t = 1 - t^(-0.8); no bias correction needed (beta_1 = 0)
        b = 1.0 - t ** o["decay_rate"]
        scale = 1.0
    else:
        # constant beta2 with Adam-style bias correction: EMA / (1 - beta2^t) (paper §7.1)
        b = o["beta2"]
        scale = 1.0 / (1.0 - b ** t)
    factored = g.dim() >= 2 and g.shape[-1] >= o["min_dim"] and g.shape[-2] >= o["min_dim"]
    if factored:
        # Alg. 4: R_t = b R + (1-b) (G^2+eps1) 1_m (row SUMS); C_t = b C + (1-b) 1_n^T (...)
        state["R"] = b * state.get("R", torch.zeros(g.shape[:-1], dtype=g.dtype)) + (1 - b) * g2.sum(-1)
        state["C"] = b * state.get("C", torch.zeros(g.shape[:-2] + g.shape[-1:], dtype=g.dtype)) + (1 - b) * g2.sum(-2)
        R = state["R"] * scale
        C = state["C"] * scale
        # V_hat = R C / (1_n^T R), per leading (batch) index
        return R.unsqueeze(-1) * C.unsqueeze(-2) / R.sum(-1)[..., None, None]
    state["V"] = b * state.get("V", torch.zeros_like(g)) + (1 - b) * g2  # Alg. 5
    return state["V"] * scale


def reference_adafactor(params, grads_per_step, o):
    """params: dict name -> float64 tensor; grads_per_step: list of dicts. Returns the
    parameters after every step."""
    x = {k: v.clone() for k, v in params.items()}
    states = {k: {} for k in params}
    out = []
    for step, grads in enumerate(grads_per_step):
        t = step + 1
        for k in x:
            g = grads[k]
            v_hat = second_moment(states[k], g, t, o)
            u = g / v_hat.sqrt()  # U_t = G_t / sqrt(V_hat_t)
            if o["clip_threshold"] > 0:  # paper §6: U_hat = U / max(1, RMS(U)/d)
                u = u / max(1.0, rms(u) / o["clip_threshold"])
            if o["beta1"] > 0:  # momentum on the clipped update (CoCa uses beta1 = 0.9)
                m = states[k].get("M", torch.zeros_like(g))
                m = o["beta1"] * m + (1 - o["beta1"]) * u
                states[k]["M"] = m
                u = m
            # alpha_t = max(eps2, RMS(X_{t-1})) rho_t  (paper Alg. 4 line 7) when relative
            alpha = o["lr"] * (max(o["eps2"], rms(x[k])) if o["relative_step"] else 1.0)
            # decoupled weight decay uses rho_t (not alpha_t), then X_t = X - alpha_t U
            x[k] = x[k] * (1 - o["lr"] * o["weight_decay"]) - alpha * u
        out.append({k: v.clone() for k, v in x.items()})
    return out


def make_adafactor():
    gen = torch.Generator().manual_seed(1234)
    shapes = {"matrix": [6, 5], "vector": [7], "tensor3": [3, 4, 5], "scalar": []}
    params = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in shapes.items()}
    steps = 5
    grads = []
    for s in range(steps):
        # different scales per step and per element, so clipping and factoring matter
        grads.append({k: torch.randn(shp, generator=gen, dtype=torch.float64) * (0.5 + s)
                      * (1 + torch.rand(shp, generator=gen, dtype=torch.float64) * 3)
                      for k, shp in shapes.items()})
    option_sets = {
        "momentum_constant_beta2": dict(lr=0.01, beta1=0.9, beta2=0.999, beta2_schedule="constant",
                                        decay_rate=-0.8, eps1=1e-30, eps2=1e-3, clip_threshold=1.0,
                                        weight_decay=0.1, min_dim=3, relative_step=False),
        "no_momentum_pow_relative": dict(lr=0.05, beta1=0.0, beta2=0.999, beta2_schedule="pow",
                                         decay_rate=-0.8, eps1=1e-30, eps2=1e-3, clip_threshold=0.8,
                                         weight_decay=0.0, min_dim=5, relative_step=True),
    }
    cases = {}
    for name, o in option_sets.items():
        traj = reference_adafactor(params, grads, o)
        cases[name] = {
            "options": o,
            "expected": [{k: tensor_json(v) for k, v in step.items()} for step in traj],
        }
    return {
        "version": VERSION,
        "generator": "tools/make_golden_optim.py (float64 reference from arXiv 1804.04235)",
        "steps": steps,
        "params": {k: tensor_json(v) for k, v in params.items()},
        "grads": [{k: tensor_json(v) for k, v in g.items()} for g in grads],
        "cases": cases,
    }


# ---------------------------------------------------------------- open_clip loss fixture
def read_safetensors(path, names):
    """Minimal safetensors reader: 8-byte little-endian header size, JSON header, data."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name in names:
            info = header[name]
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            buf = bytearray(f.read(end - begin))
            out[name] = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]).reshape(info["shape"]).clone()
    return out


def make_losses(reference_dir):
    path = os.path.join(reference_dir, "open_clip_tiny", "coca_tiny_s0.io.safetensors")
    names = ["fwd.image_features", "fwd.text_features", "fwd.logits", "fwd.logit_scale",
             "input.text", "loss.contrastive", "loss.caption"]
    t = read_safetensors(path, names)
    return {
        "version": VERSION,
        "generator": "tools/make_golden_optim.py from open_clip_tiny/coca_tiny_s0.io.safetensors "
                     "(open_clip v2.32.0 CoCa tiny, seed 0)",
        "doc": "loss.contrastive = 1.0 * (CE(logits_per_image) + CE(logits_per_text)) / 2; "
               "loss.caption = 2.0 * CE(logits, text[:, 1:], ignore_index=0); pad_id = 0",
        "lambda_con": 1.0,
        "lambda_cap": 2.0,
        "pad_id": 0,
        "tensors": {k: tensor_json(v) for k, v in t.items()},
    }


def write(name, obj):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes)" % (os.path.normpath(path), os.path.getsize(path)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-dir", default=os.environ.get("COCA_REFERENCE_DIR", "/work/shared/reference"))
    args = ap.parse_args()
    write("adafactor.json", make_adafactor())
    write("coca_losses.json", make_losses(args.reference_dir))


if __name__ == "__main__":
    main()
