#!/usr/bin/env python3
"""tools/torch-compare.py: okto-train's training step against PyTorch's on this machine's CPU.

For each model (mlp, cnn, gpt) the same step in both: the same layers and shapes as
lib/nn/models.c, the same batch, AdamW, forward + cross-entropy + backward + update. okto's
step time is okto-train's own (--json "step_ms", the median over its steps, evaluation
excluded); PyTorch's is the median of as many steps timed the same way, after a warm-up.
The two alternate (okto, torch, okto, torch, ...) `--rounds` times, so drift on a shared machine
hits both; the table gives the medians and the ratio torch / okto (> 1: okto is faster).

PyTorch is optional and only this script uses it (pip install torch); okto never depends on it.

    python3 tools/torch-compare.py [--okto-train build/tools/okto-train] [--models mlp,cnn,gpt]
                                   [--steps 60] [--rounds 3] [--threads 2] [--json]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def torch_models(torch):
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self, features=64, width=128, layers=2, classes=10):
            super().__init__()
            mods, d = [], features
            for _ in range(layers):
                mods += [nn.Linear(d, width), nn.ReLU()]
                d = width
            mods.append(nn.Linear(d, classes))
            self.net = nn.Sequential(*mods)

        def forward(self, x):
            return self.net(x)

    class CNN(nn.Module):
        def __init__(self, channels=1, hw=8, width=32, layers=2, classes=10):
            super().__init__()
            mods, c, s = [], channels, hw
            for i in range(layers):
                out = width << i
                mods += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
                c, s = out, s // 2
            self.features = nn.Sequential(*mods)
            self.head = nn.Linear(c * s * s, classes)

        def forward(self, x):
            return self.head(self.features(x).flatten(1))

    class Block(nn.Module):
        def __init__(self, C, heads):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.out = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
            self.heads = heads

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            shape = (B, T, self.heads, C // self.heads)
            q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
            o = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(o.transpose(1, 2).reshape(B, T, C))
            return x + self.out(nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, vocab=86, width=128, layers=2, heads=4, context=64):
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Parameter(torch.zeros(context, width))
            self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
            self.lnf = nn.LayerNorm(width)

        def forward(self, ids):
            x = self.tok(ids) + self.pos[: ids.shape[1]]
            for b in self.blocks:
                x = b(x)
            return self.lnf(x) @ self.tok.weight.t()  # tied, as okto's

    return MLP, CNN, GPT


def torch_step_ms(torch, kind, steps, batch):
    MLP, CNN, GPT = torch_models(torch)
    g = torch.Generator().manual_seed(0)
    if kind == "mlp":
        model, x = MLP(), torch.rand(batch, 64, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
    elif kind == "cnn":
        model, x = CNN(), torch.rand(batch, 1, 8, 8, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
    else:
        model = GPT()
        x = torch.randint(0, 86, (batch, 64), generator=g)
        y = torch.randint(0, 86, (batch * 64,), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y)
        loss.backward()
        opt.step()
        if i >= 5:  # warm-up: allocator and kernel selection
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def okto_step_ms(train, kind, steps, batch):
    args = [train, "--model", kind, "--steps", str(steps), "--batch", str(batch), "--json",
            "--progress", "off", "--holdout", "0.2"]
    if kind == "gpt":
        args += ["--eval-every", str(steps + 1)]
    else:
        args += ["--epochs", "1000"]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("okto-train failed (%d): %s" % (out.returncode, out.stderr.strip()))
    return json.loads(out.stdout)["final"]["step_ms"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--okto-train", default="build/tools/okto-train")
    p.add_argument("--models", default="mlp,cnn,gpt")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("torch-compare: PyTorch is not installed (pip install torch); okto does not "
                 "need it, only this comparison does")
    torch.set_num_threads(a.threads)
    batches = {"mlp": 32, "cnn": 16, "gpt": 32}
    rows = []
    for kind in a.models.split(","):
        okto, tor = [], []
        for _ in range(a.rounds):
            okto.append(okto_step_ms(a.okto_train, kind, a.steps, batches[kind]))
            tor.append(torch_step_ms(torch, kind, a.steps, batches[kind]))
        o, t = statistics.median(okto), statistics.median(tor)
        rows.append({"model": kind, "batch": batches[kind], "okto_step_ms": o,
                     "torch_step_ms": t, "torch_over_okto": t / o,
                     "okto_runs": okto, "torch_runs": tor})
    if a.json:
        print(json.dumps({"torch": torch.__version__, "threads": a.threads, "rows": rows},
                         indent=1))
        return
    print("PyTorch %s, %d threads; medians of %d interleaved rounds of %d steps"
          % (torch.__version__, a.threads, a.rounds, a.steps))
    print("%-5s %6s %14s %14s %10s" % ("model", "batch", "okto ms/step", "torch ms/step",
                                       "torch/okto"))
    for r in rows:
        print("%-5s %6d %14.3f %14.3f %10.2f" % (r["model"], r["batch"], r["okto_step_ms"],
                                                 r["torch_step_ms"], r["torch_over_okto"]))


if __name__ == "__main__":
    main()
