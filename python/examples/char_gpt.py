#!/usr/bin/env python3
"""Trains a tiny character-level GPT (okto.nn.model "gpt") on the licence texts of
/usr/share/common-licenses for a few hundred steps, then generates text from a prompt.

    python3 python/examples/char_gpt.py [--steps 300] [--prompt "The "] [--tokens 200] ...

The vocabulary is every character of the text (sorted by code point; the rarest beyond
--vocab become one fallback id). One training step is one okto graph recorded once: the
batch's ids and targets are uploaded from two host arrays refilled before each run, then the
model's forward, the cross-entropy, the backward and AdamW with clipping; the learning rate
follows a warm-up + cosine schedule on the device. Generation records one more graph, the
forward over a window of `context` ids (padded after the text; causal attention ignores the
padding), and samples each next character on the host.
"""

import argparse
import collections
import os
import sys
import time

import numpy as np

import okto
import okto.nn

LICENSES = "/usr/share/common-licenses"


def load_text(path=LICENSES, max_chars=400_000):
    if os.path.isdir(path):
        parts = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, encoding="utf-8", errors="replace") as f:
                    parts.append(f.read())
        text = "\n".join(parts)
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    return text[:max_chars]


class Vocab:
    """Characters <-> ids: the `size - 1` commonest characters sorted by code point, and one
    fallback id for the rest (when there are more)."""

    def __init__(self, text, size=96):
        counts = collections.Counter(text)
        keep = [c for c, _ in counts.most_common()]
        self.fallback = None
        if len(keep) > size:
            keep = keep[:size - 1]
            self.fallback = size - 1
        self.chars = sorted(keep)
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.size = len(self.chars) + (self.fallback is not None)

    def encode(self, s):
        fb = self.fallback if self.fallback is not None else 0
        return np.array([self.index.get(c, fb) for c in s], np.int32)

    def decode(self, ids):
        return "".join(self.chars[i] if i < len(self.chars) else "?" for i in ids)


def train(steps=300, batch=16, context=32, width=64, layers=2, heads=4, lr=3e-3, seed=1,
          prompt="The ", tokens=200, temperature=0.8, data=LICENSES, verbose=True):
    say = print if verbose else (lambda *a, **k: None)
    text = load_text(data)
    vocab = Vocab(text)
    ids_all = vocab.encode(text)
    rng = np.random.default_rng(seed)

    ctx = okto.Context()
    net = okto.nn.model(ctx, "gpt", seed=seed, classes=vocab.size, width_hidden=width,
                        layers=layers, heads=heads, context=context)

    # ---- one training step, recorded once
    xb = np.zeros((batch, context), np.int32)
    yb = np.zeros((batch, context), np.int32)
    x, y = ctx.empty(xb.shape, "i32"), ctx.empty(yb.shape, "i32")
    g = okto.Graph(ctx)
    g.upload(x, xb).upload(y, yb)
    loss = net.loss(g, net.forward(g, x), y)
    net.backward(g, loss)
    net.update(g, okto.nn.AdamW(lr=lr, weight_decay=0.01, clip_norm=1.0))
    loss_host = g.download(loss)

    say("gpt: %d parameters, %d characters of text, vocabulary %d, batch %d x %d, %d steps"
        % (net.numel, len(ids_all), vocab.size, batch, context, steps))
    warmup = max(1, steps // 10)
    losses, t0 = [], time.perf_counter()
    for step in range(steps):
        starts = rng.integers(0, len(ids_all) - context - 1, batch)
        for b, s in enumerate(starts):
            xb[b] = ids_all[s:s + context]
            yb[b] = ids_all[s + 1:s + context + 1]
        net.lr = okto.nn.lr_schedule(lr, lr / 10, warmup, steps, step)
        g.run()
        losses.append(float(loss_host[0]))
        if step == 0 or (step + 1) % max(1, steps // 5) == 0:
            say("step %5d  loss %.4f  (%.1f s)" % (step + 1, np.mean(losses[-20:]),
                                                  time.perf_counter() - t0))
    g.close()

    # ---- generation: the forward over a window of `context` ids
    win = np.zeros((1, context), np.int32)
    w = ctx.empty(win.shape, "i32")
    gen = okto.Graph(ctx)
    gen.upload(w, win)
    logits = gen.download(net.forward(gen, w))
    seq = list(vocab.encode(prompt)) or [0]
    for _ in range(tokens):
        have = min(len(seq), context)
        win[...] = 0
        win[0, :have] = seq[-have:]
        gen.run()
        row = logits[0, have - 1].astype(np.float64)
        if temperature <= 0:
            nxt = int(row.argmax())
        else:
            p = np.exp((row - row.max()) / temperature)
            nxt = int(rng.choice(len(p), p=p / p.sum()))
        seq.append(nxt)
    out = vocab.decode(seq)
    say("generated:\n" + out)
    gen.close()
    result = {"first_loss": losses[0], "final_loss": float(np.mean(losses[-20:])),
              "uniform_loss": float(np.log(vocab.size)), "text": out,
              "seconds": time.perf_counter() - t0}
    net.close()
    ctx.close()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompt", default="The ")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--data", default=LICENSES, help="a text file or a directory of them")
    a = ap.parse_args(argv)
    r = train(a.steps, a.batch, a.context, a.width, a.layers, a.heads, a.lr, a.seed, a.prompt,
              a.tokens, a.temperature, a.data)
    return 0 if r["final_loss"] < r["first_loss"] else 1


if __name__ == "__main__":
    sys.exit(main())
