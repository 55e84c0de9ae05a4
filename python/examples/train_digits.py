#!/usr/bin/env python3
"""Trains a small MLP (64-128-10) on the 8x8 digits with okto and prints its holdout accuracy.

    python3 python/examples/train_digits.py [--epochs 30] [--hidden 128] [--lr 0.1] ...

The data is the digits CSV that Debian's python3-sklearn ships (1797 images of 8x8 pixels,
0-16, and a label; tools/setup.sh installs it), or --data PATH.csv[.gz] in the same format.

One training step is one okto graph, recorded once and replayed for every batch: upload the
batch (the graph reads the same host arrays each run, so filling them in place is how a new
batch goes in), forward (matmul, bias add with broadcasting, relu), the fused softmax
cross-entropy with int32 labels, the backward products (matmul with transposed operands), the
bias gradients (reduce over axis 0), relu_grad, and SGD (axpy). The backward is written by hand
for now: each layer has forward() and backward() that record ops, so an autograd (or okto.nn)
can take over backward() without changing the training loop.
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np

import okto

DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def load_digits(path):
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
        data = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return (data[:, :-1] / 16.0).astype(np.float32), data[:, -1].astype(np.int32)


# ---- layers: forward and (for now, hand-written) backward record ops into a graph ------------


class Linear:
    """y = x W + b. Holds its parameters and their gradients as okto tensors."""

    def __init__(self, ctx, n_in, n_out, rng):
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)  # He init for relu
        self.w = ctx.tensor(w.astype(np.float32))
        self.b = ctx.zeros(n_out)
        self.dw = ctx.empty((n_in, n_out))
        self.db = ctx.empty(n_out)
        self.ctx = ctx

    def params(self):
        return [(self.w, self.dw), (self.b, self.db)]

    def forward(self, g, x):
        self.x = x
        y = self.ctx.empty((x.shape[0], self.w.shape[1]))
        g.matmul(y, x, self.w)
        g.zip(y, y, self.b, "add")  # b broadcast over the rows
        return y

    def backward(self, g, dy, need_dx=True):
        g.matmul(self.dw, self.x, dy, trans_a=True)  # dW = x^T dy
        g.reduce(self.db, dy, "sum", 0)  # db = sum over rows of dy
        if not need_dx:
            return None
        dx = self.ctx.empty(self.x.shape)
        g.matmul(dx, dy, self.w, trans_b=True)  # dx = dy W^T
        return dx


class ReLU:
    def __init__(self, ctx):
        self.ctx = ctx

    def params(self):
        return []

    def forward(self, g, x):
        self.x = x
        y = self.ctx.empty(x.shape)
        g.map(y, x, "relu")
        return y

    def backward(self, g, dy, need_dx=True):
        dx = self.ctx.empty(dy.shape)
        g.zip(dx, dy, self.x, "relu_grad")  # dy * (x > 0)
        return dx


class MLP:
    def __init__(self, ctx, sizes, rng):
        self.layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Linear(ctx, n_in, n_out, rng))
            if i < len(sizes) - 2:
                self.layers.append(ReLU(ctx))

    def params(self):
        return [p for layer in self.layers for p in layer.params()]

    def forward(self, g, x):
        for layer in self.layers:
            x = layer.forward(g, x)
        return x

    def backward(self, g, dlogits):
        d = dlogits
        for i, layer in reversed(list(enumerate(self.layers))):
            d = layer.backward(g, d, need_dx=i > 0)


class SGD:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self, g):
        for p, dp in self.params:
            g.axpy(p, -self.lr, dp)


# ---- training -------------------------------------------------------------------------------


def train(epochs=30, hidden=128, lr=0.1, batch=64, holdout=0.2, seed=0, data=None,
          sched=None, verbose=True):
    """Trains and returns a dict of results (holdout accuracy, final loss, timings)."""
    say = print if verbose else (lambda *a, **k: None)
    x_all, y_all = load_digits(data)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_all))
    n_test = int(round(len(y_all) * holdout))
    test, train_idx = order[:n_test], order[n_test:]
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_test, y_test = x_all[test], y_all[test]
    classes = int(y_all.max()) + 1

    ctx = okto.Context(sched=sched)
    model = MLP(ctx, [x_all.shape[1], hidden, classes], rng)
    opt = SGD(model.params(), lr)

    # the training step: one graph, recorded once
    xb_host = np.zeros((batch, x_all.shape[1]), np.float32)
    yb_host = np.zeros(batch, np.int32)
    xb, yb = ctx.empty(xb_host.shape), ctx.empty(batch, "i32")
    loss, dlogits = ctx.empty(1), ctx.empty((batch, classes))
    step = okto.Graph(ctx)
    step.upload(xb, xb_host).upload(yb, yb_host)
    logits = model.forward(step, xb)
    step.softmax_xent(loss, dlogits, logits, yb)
    model.backward(step, dlogits)
    opt.step(step)
    loss_host = step.download(loss)

    # evaluation: the forward pass over the whole holdout set
    xt = ctx.tensor(x_test)
    evaluate = okto.Graph(ctx)
    test_logits = evaluate.download(model.forward(evaluate, xt))

    def accuracy():
        evaluate.run()
        return float((test_logits.argmax(axis=1) == y_test).mean())

    say("okto %s on %s: %d train / %d holdout digits, MLP %d-%d-%d, batch %d, lr %g; "
        "one step = %d tasks" % (okto.__version__, ctx.device_name, len(y_train), n_test,
                                 x_all.shape[1], hidden, classes, batch, lr, step.task_count))
    steps_per_epoch = len(y_train) // batch
    t_start = time.perf_counter()
    step_times = []
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(y_train))
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            xb_host[...] = x_train[idx]  # the graph uploads these arrays on every run
            yb_host[...] = y_train[idx]
            t0 = time.perf_counter()
            step.run()
            step_times.append(time.perf_counter() - t0)
            total += float(loss_host[0])
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            say("epoch %3d/%d  loss %.4f  holdout accuracy %5.1f%%"
                % (epoch, epochs, total / steps_per_epoch, 100 * accuracy()))
    seconds = time.perf_counter() - t_start
    acc = accuracy()
    rep = step.report()
    result = {"holdout_accuracy": acc, "holdout": n_test, "loss": total / steps_per_epoch,
              "seconds": seconds, "median_step_ms": 1e3 * float(np.median(step_times)),
              "tasks_per_step": step.task_count, "report": rep}
    say("final: holdout accuracy %.1f%% (%d of %d), loss %.4f; %d epochs in %.2f s, median "
        "step %.2f ms (%s, %d tasks, utilization %.0f%%)"
        % (100 * acc, round(acc * n_test), n_test, result["loss"], epochs, seconds,
           result["median_step_ms"], rep["sched"], rep["tasks"], 100 * rep["utilization"]))
    step.close()
    evaluate.close()
    ctx.close()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", help="a digits CSV (features..., label), optionally gzipped")
    ap.add_argument("--sched", help="sequential, round-robin, heft (default: the context's)")
    ap.add_argument("--min-accuracy", type=float, default=0.95,
                    help="exit 1 below this holdout accuracy (default 0.95)")
    args = ap.parse_args(argv)
    r = train(args.epochs, args.hidden, args.lr, args.batch, args.holdout, args.seed,
              args.data, args.sched)
    return 0 if r["holdout_accuracy"] >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
