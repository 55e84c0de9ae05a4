#!/usr/bin/env python3
"""Trains okto's digits mlp (or cnn) with okto.nn, as `okto-train --model mlp` does.

    python3 python/examples/train_digits.py [--model mlp|cnn] [--epochs 60] [--seed 1] ...

The data is the digits CSV that Debian's python3-sklearn ships (1797 images of 8x8 pixels,
0-16, and a label; tools/setup.sh installs it). The run is okto-train's, step for step: the
same stratified holdout split (splitmix64, seeded), the same shuffled batches (drop last),
the same model (okto_nn_model, initialised from the seed), AdamW with a cosine schedule to
lr / 10, and accuracy by okto_argmax over the held-out rows; so with the same seed and
settings it prints the same accuracy as `build/tools/okto-train --model mlp --seed 1`.

The training step is a handful of lines: one graph recorded once and replayed, whose uploads
read two host arrays refilled before each run:

    net = okto.nn.model(ctx, "mlp", features=64, classes=10, seed=seed)
    g = okto.Graph(ctx)
    g.upload(x, xb).upload(y, yb)
    loss = net.loss(g, net.forward(g, x), y)
    net.backward(g, loss)
    net.update(g, okto.nn.AdamW(lr=lr, weight_decay=0.01))
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np

import okto
import okto.nn

DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
M64 = (1 << 64) - 1


def load_digits(path=None):
    """(features float32 [n, 64] scaled to [0, 1], labels int32 [n])."""
    if path is None:
        path = DIGITS
        if not os.path.exists(path):
            try:  # sklearn from PyPI ships the same file
                import sklearn.datasets

                path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data",
                                    "digits.csv.gz")
            except ImportError:
                pass
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return data[:, :-1] / np.float32(16), data[:, -1].astype(np.int32)


# ---- okto-train's random stream (tools/train/rng.c: splitmix64), so the runs are the same ---


class Rng:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            x = self.next()
            if x >= threshold:
                return x % n

    def shuffle(self, idx):
        for i in range(len(idx), 1, -1):
            j = self.below(i)
            idx[i - 1], idx[j] = idx[j], idx[i - 1]


def split(labels, classes, holdout, seed):
    """otu_split: class by class, a seeded shuffle, the first round(holdout * m) held out."""
    r = Rng(seed)
    held = np.zeros(len(labels), bool)
    for c in range(classes):
        idx = [int(i) for i in np.flatnonzero(labels == c)]
        r.shuffle(idx)
        held[idx[:int(np.floor(holdout * len(idx) + 0.5))]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def batches(rows, batch, seed):
    """otu_batcher with shuffling and drop-last: an endless stream of batches of rows."""
    r = Rng(seed)
    order = [int(i) for i in rows]
    r.shuffle(order)
    while True:
        for at in range(0, len(order) - batch + 1, batch):
            yield order[at:at + batch]
        r.shuffle(order)


# ---- training -------------------------------------------------------------------------------


def accuracy(ctx, net, x, y, shape):
    """okto_argmax of the logits over the rows (in chunks of 256, as okto-train)."""
    right = 0
    for at in range(0, len(y), 256):
        xs = x[at:at + 256]
        g = okto.Graph(ctx)
        xt = ctx.tensor(xs.reshape((len(xs),) + shape))
        pred = ctx.empty(len(xs), "i32")
        g.argmax(pred, net.forward(g, xt))
        out = g.download(pred)
        g.run()
        right += int((out == y[at:at + 256]).sum())
        g.close()
    return right / len(y)


def train(model="mlp", epochs=None, batch=None, lr=3e-3, weight_decay=None, holdout=0.2,
          seed=1, width=None, layers=None, sched=None, data=None, verbose=True):
    """Trains as okto-train does; returns a dict (holdout accuracy, losses, timings)."""
    say = print if verbose else (lambda *a, **k: None)
    epochs = epochs or (60 if model == "mlp" else 30)
    batch = batch or (32 if model == "mlp" else 16)      # okto-train's defaults
    weight_decay = weight_decay if weight_decay is not None else (0.01 if model == "mlp" else 0.1)
    x_all, y_all = load_digits(data)
    train_rows, hold_rows = split(y_all, 10, holdout, seed)

    ctx = okto.Context(sched=sched)
    shape = (64,) if model == "mlp" else (1, 8, 8)
    over = {"classes": 10}
    if model == "mlp":
        over["features"] = 64
    if width:
        over["width_hidden"] = width
    if layers:
        over["layers"] = layers
    net = okto.nn.model(ctx, model, seed=seed, **over)
    net.allocate()

    # ---- the training step: one graph, recorded once, replayed for every batch
    xb, yb = np.zeros((batch,) + shape, np.float32), np.zeros(batch, np.int32)
    x, y = ctx.empty(xb.shape), ctx.empty(batch, "i32")
    g = okto.Graph(ctx)
    g.upload(x, xb).upload(y, yb)
    loss = net.loss(g, net.forward(g, x), y)
    net.backward(g, loss)
    net.update(g, okto.nn.AdamW(lr=lr, weight_decay=weight_decay))
    loss_host = g.download(loss)

    per_epoch = len(train_rows) // batch
    total = epochs * per_epoch
    say("%s: %d parameters, digits, batch %d, %d steps, sched %s (okto %s on %s)"
        % (model, net.numel, batch, total, ctx.sched.label,
           okto.__version__, ctx.device_name))
    stream = batches(train_rows, batch, seed)
    t0 = time.perf_counter()
    losses, step_ms, acc = [], [], 0.0
    for step in range(total):
        rows = next(stream)
        xb[...] = x_all[rows].reshape(xb.shape)  # the graph uploads these arrays every run
        yb[...] = y_all[rows]
        net.lr = okto.nn.lr_schedule(lr, lr / 10, 0, total, step)
        ts = time.perf_counter()
        g.run()
        step_ms.append(1e3 * (time.perf_counter() - ts))
        losses.append(float(loss_host[0]))
        if (step + 1) % per_epoch == 0:
            epoch = (step + 1) // per_epoch
            acc = accuracy(ctx, net, x_all[hold_rows], y_all[hold_rows], shape)
            if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
                say("epoch %3d  train loss %.4f  holdout accuracy %.2f%%  (%.1f s)"
                    % (epoch, np.mean(losses[-per_epoch:]), 100 * acc,
                       time.perf_counter() - t0))
    result = {"holdout_accuracy": acc, "holdout": len(hold_rows), "steps": total,
              "train_loss": float(np.mean(losses[-per_epoch:])), "losses": losses,
              "seconds": time.perf_counter() - t0,
              "median_step_ms": float(np.median(step_ms)), "tasks_per_step": g.task_count}
    say("final: holdout accuracy %.2f%% (%d of %d), train loss %.4f, %d steps in %.1f s, "
        "median step %.2f ms, %d tasks per step"
        % (100 * acc, round(acc * len(hold_rows)), len(hold_rows), result["train_loss"],
           total, result["seconds"], result["median_step_ms"], g.task_count))
    g.close()
    net.close()
    ctx.close()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--epochs", type=int, help="default: mlp 60, cnn 30 (okto-train's)")
    ap.add_argument("--batch", type=int, help="default: mlp 32, cnn 16")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, help="default: mlp 0.01, cnn 0.1")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--sched", help="sequential, round-robin, heft (default: the context's)")
    ap.add_argument("--data", help="a digits CSV (features..., label), optionally gzipped")
    ap.add_argument("--min-accuracy", type=float, default=0.9,
                    help="exit 1 below this holdout accuracy (default 0.9)")
    a = ap.parse_args(argv)
    r = train(a.model, a.epochs, a.batch, a.lr, a.weight_decay, a.holdout, a.seed, a.width,
              a.layers, a.sched, a.data)
    return 0 if r["holdout_accuracy"] >= a.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
