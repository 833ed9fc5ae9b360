#!/usr/bin/python3
"""Turns a run's metrics.jsonl (written by `coca train`) into PNG curves.

Usage: /usr/bin/python3 tools/plot_metrics.py runs/<run> [--out runs/<run>/plots]

Writes into <run>/plots/ (or --out):
  loss.png        loss terms per logged step (total, contrastive, captioning, running mean)
  lr.png          learning rate and the learned temperature (logit scale)
  throughput.png  training samples/s and the gradient norm
  eval.png        periodic eval metrics ("eval" records) over steps, when the run has any;
                  otherwise the final eval_results.json of the run as a bar chart
Records are JSON lines {"step": N, "kind": "train" | "eval" | "skip", <name>: value, ...}
(src/train/metrics.cpp). Uses Debian's python3-matplotlib (Agg backend, no display);
exits with status 3 and a one-line message when matplotlib is missing.
"""
import argparse
import json
import os
import sys


UNBOUNDED = {"cider"}  # eval metrics that are not fractions in [0, 1]


def load(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{n}: not JSON ({e})")
    return records


def series(records, kind, name):
    xs, ys = [], []
    for r in records:
        if r.get("kind") == kind and r.get(name) is not None:
            xs.append(r["step"])
            ys.append(r[name])
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=None, help="output folder (default <run_dir>/plots)")
    args = ap.parse_args()
    metrics = os.path.join(args.run_dir, "metrics.jsonl")
    if not os.path.isfile(metrics):
        sys.exit(f"plot_metrics: no {metrics}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_metrics: matplotlib is missing (Debian: apt-get install python3-matplotlib); "
              "no plots written", file=sys.stderr)
        sys.exit(3)

    records = load(metrics)
    out = args.out or os.path.join(args.run_dir, "plots")
    os.makedirs(out, exist_ok=True)
    run = os.path.basename(os.path.normpath(args.run_dir))
    written = []

    def save(fig, name):
        path = os.path.join(out, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # Loss terms.
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, style in [("loss", "-"), ("loss_contrastive", "-"), ("loss_caption", "-"),
                        ("loss_avg", "--")]:
        xs, ys = series(records, "train", name)
        if xs:
            ax.plot(xs, ys, style, label=name)
    xs, ys = series(records, "skip", "loss")
    if xs:
        ax.plot(xs, [0] * len(xs), "rx", label="skipped step")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(f"{run}: loss terms")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, "loss.png")

    # Learning rate and temperature.
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys = series(records, "train", "lr")
    ax.plot(xs, ys, color="tab:blue", label="lr")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate", color="tab:blue")
    ax.grid(True, alpha=0.3)
    xs, ys = series(records, "train", "logit_scale")
    if xs:
        ax2 = ax.twinx()
        ax2.plot(xs, ys, color="tab:red", label="logit scale")
        ax2.set_ylabel("logit scale (1 / temperature)", color="tab:red")
    ax.set_title(f"{run}: learning rate (first group) and logit scale")
    save(fig, "lr.png")

    # Throughput and gradient norm.
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys = series(records, "train", "samples_per_s")
    ax.plot(xs, ys, color="tab:green")
    ax.set_xlabel("step")
    ax.set_ylabel("samples/s (between log lines)", color="tab:green")
    ax.grid(True, alpha=0.3)
    xs, ys = series(records, "train", "grad_norm")
    if xs:
        ax2 = ax.twinx()
        ax2.plot(xs, ys, color="tab:gray", alpha=0.7)
        ax2.set_ylabel("gradient norm (before clipping)", color="tab:gray")
    ax.set_title(f"{run}: throughput")
    save(fig, "throughput.png")

    # Eval metrics: periodic eval records, else the final eval_results.json.
    evals = [r for r in records if r.get("kind") == "eval"]
    final = os.path.join(args.run_dir, "eval_results.json")
    skip = {"step", "kind"}
    if evals:
        names = [k for k in evals[-1] if k not in skip and not k.endswith(("_images", "_texts"))]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax2 = None
        for name in names:
            xs, ys = series(records, "eval", name)
            if not xs:
                continue
            if name in UNBOUNDED:  # CIDEr-D is 0..10, the rest are fractions: its own axis
                ax2 = ax2 or ax.twinx()
                ax2.plot(xs, ys, "s--", color="black", label=name)
                ax2.set_ylabel(", ".join(n for n in names if n in UNBOUNDED))
            else:
                ax.plot(xs, ys, "o-", label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy / recall / BLEU (fraction)")
        ax.set_title(f"{run}: eval metrics")
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if ax2:
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, fontsize=7, ncol=2)
        save(fig, "eval.png")
    elif os.path.isfile(final):
        with open(final, encoding="utf-8") as f:
            res = json.load(f)
        m = res.get("metrics", res)
        items = [(k, v) for k, v in m.items()
                 if isinstance(v, (int, float)) and not k.endswith(("_images", "_texts"))]
        if items:
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.bar([k for k, _ in items], [v for _, v in items], color="tab:purple")
            for i, (_, v) in enumerate(items):
                ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
            ax.set_title(f"{run}: final eval ({os.path.basename(final)})")
            ax.tick_params(axis="x", rotation=45, labelsize=7)
            save(fig, "eval.png")

    for path in written:
        print(path)


if __name__ == "__main__":
    main()
