"""okto.nn (okto/nn.h): layers against NumPy forwards, one training step of the mlp against a
NumPy forward, backward and AdamW/SGD from the same parameters (float64 references, 1e-4
relative: float32 sums over up to 128 terms), the cnn and gpt models' gradients against
finite differences (h 1e-3, |fd - grad| <= 2e-3 max(1, |fd|) + 5e-4), the schedule,
lifetimes and refusals."""

import math

import numpy as np
import pytest

import okto
import okto.nn as nn
from conftest import make
from test_ops_nd import conv_ref, pool_windows, sm


def close(a, ref, tol=1e-4):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    assert a.shape == ref.shape, (a.shape, ref.shape)
    err = float((np.abs(a - ref) / np.maximum(1, np.abs(ref))).max())
    assert err <= tol, "largest relative error %.3g > %.3g" % (err, tol)


def values(net):
    return {n: p.numpy().astype(np.float64) for n, p, _ in net.params()}


# ---- layers ---------------------------------------------------------------------------------


def test_linear_layernorm_embedding_layers(ctx, rng):
    net = nn.Net(ctx, seed=7)
    lin = net.linear("lin", 5, 3, act="tanh")
    ln = net.layernorm("ln", 3)
    emb = net.embedding("emb", 11, 5)
    net.allocate()
    v = values(net)
    assert list(v) == ["lin.weight", "lin.bias", "ln.weight", "ln.bias", "emb.weight"]
    assert np.abs(v["lin.weight"]).max() <= 1 / math.sqrt(5) and v["ln.weight"].min() == 1
    assert 0.01 < v["emb.weight"].std() < 0.03  # NORMAL(0.02)
    ids_h = np.array([[1, 4, 10], [0, 4, 2]], np.int32)
    g = okto.Graph(ctx)
    e = emb(g, ctx.tensor(ids_h))
    y = ln(g, lin(g, e))
    g.run()
    assert e.shape == (2, 3, 5) and y.shape == (2, 3, 3)
    ref_e = v["emb.weight"][ids_h]
    h = np.tanh(ref_e @ v["lin.weight"] + v["lin.bias"])
    ref = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
    close(e.numpy(), ref_e)
    close(y.numpy(), ref, 1e-3)


def test_conv_block(ctx, rng):
    net = nn.Net(ctx, seed=3)
    blk = net.conv_block("c", 2, 3, k=3, pad=1, act="relu", pool=2)
    x, rx = make(ctx, rng, (2, 2, 6, 5), "f32")
    g = okto.Graph(ctx)
    y = blk(g, x)
    g.run()
    v = values(net)
    c = np.maximum(conv_ref(rx, v["c.weight"], v["c.bias"], (1, 1), (1, 1), (1, 1))[0], 0)
    win, _, _ = pool_windows(c, (2, 2), (2, 2), (0, 0), -np.inf)
    close(y.numpy(), win.max(-1))


def test_mlp_and_attention_blocks_shapes_and_residual(ctx, rng):
    net = nn.Net(ctx, seed=5)
    mlp = net.mlp_block("m", 8, 16, act="gelu_tanh", residual=True, prenorm=True)
    att = net.attention_block("a", 8, heads=2, causal=True)
    x, rx = make(ctx, rng, (2, 5, 8), "f32")
    g = okto.Graph(ctx)
    y = mlp(g, att(g, x))
    g.run()
    assert y.shape == (2, 5, 8)
    names = [n for n, _, _ in net.params()]
    assert names[0].startswith("m.") and any(n.startswith("a.") for n in names)
    # causal: the first position depends on nothing after it
    x2 = rx.copy()
    x2[:, 1:] += 1
    xt2 = ctx.tensor(x2.astype(np.float32))
    g2 = okto.Graph(ctx)
    y2 = mlp(g2, att(g2, xt2))
    g2.run()
    close(y2.numpy()[:, 0], y.numpy()[:, 0], 1e-5)
    assert not np.allclose(y2.numpy()[:, 1:], y.numpy()[:, 1:])


# ---- the mlp: one step against NumPy ------------------------------------------------------


def mlp_step_ref(v, x, lab, optim, steps=1):
    names = ["fc0", "fc1", "head"]
    acts, h = [], x
    for i, n in enumerate(names):
        acts.append(h)
        h = h @ v[n + ".weight"] + v[n + ".bias"]
        if i < 2:
            h = np.maximum(h, 0)
    p = sm(h)
    loss = -np.log(p[np.arange(len(lab)), lab]).mean()
    d = p.copy()
    d[np.arange(len(lab)), lab] -= 1
    d /= len(lab)
    grads = {}
    for i in reversed(range(3)):
        n = names[i]
        grads[n + ".weight"] = acts[i].T @ d
        grads[n + ".bias"] = d.sum(0)
        if i:
            d = (d @ v[n + ".weight"].T) * (acts[i] > 0)
    return loss, grads


def test_mlp_step_matches_numpy_adamw_and_sgd(ctx, rng):
    xh = rng.uniform(0, 1, (9, 12)).astype(np.float32)
    lab = rng.integers(0, 4, 9).astype(np.int32)
    for optim in (nn.AdamW(lr=0.01, weight_decay=0.1), nn.SGD(lr=0.05, momentum=0.9)):
        net = nn.model(ctx, "mlp", features=12, classes=4, width_hidden=7, seed=11)
        v0 = values(net)
        x, y = ctx.tensor(xh), ctx.tensor(lab)
        g = okto.Graph(ctx)
        loss = net.loss(g, net.forward(g, x), y)
        net.backward(g, loss)
        net.update(g, optim)
        lossv = g.download(loss)
        net.lr = optim.lr
        g.run()
        rloss, rg = mlp_step_ref(v0, xh.astype(np.float64), lab, optim)
        close(lossv, [rloss])
        for n, _, gr in net.params():
            close(gr.numpy(), rg[n])
        v1 = values(net)
        for n in v0:
            w, gr = v0[n], rg[n]
            if optim.kind == okto.OPTIM.ADAMW:
                decay = optim.weight_decay if n.endswith("weight") else 0.0
                m, vv = 0.1 * gr, 0.001 * gr ** 2
                want = w * (1 - optim.lr * decay) - optim.lr / 0.1 * m / (
                    np.sqrt(vv) / math.sqrt(0.001) + optim.eps)
            else:  # first step: the momentum buffer is the gradient (+ L2)
                want = w - optim.lr * (gr + optim.weight_decay * w)
            close(v1[n], want, 1e-4)
        assert net.steps == 1
        m, vstate = net.state(0)
        assert m.shape == v0["fc0.weight"].shape
        g.close()
        net.close()


# ---- cnn and gpt gradients against finite differences ------------------------------------------


# ReLU and max pooling have kinks a step of 1e-2 may cross; 1e-3 keeps the float32 rounding
# of a loss near 1.6 (1e-7) at 1e-4 of the difference.
H, TOL = 1e-3, 2e-3


def fd_check(ctx, rng, net, g, loss, max_params=4):
    lossv = g.download(loss)
    g.run()
    params = net.params()
    chosen = [params[i] for i in rng.choice(len(params), size=min(max_params, len(params)),
                                            replace=False)]
    for name, p, gr in chosen:
        base, grad = p.numpy(), gr.numpy().reshape(-1)
        flat = base.reshape(-1)
        # the largest-gradient element and a random one
        picks = {int(np.abs(grad).argmax()), int(rng.integers(flat.size))}
        for i in picks:
            vals = []
            for sgn in (1, -1):
                pert = flat.copy()
                pert[i] += sgn * H
                p.write(pert.reshape(base.shape))
                g.run()
                vals.append(float(lossv[0]))
            fd = (vals[0] - vals[1]) / (2 * H)
            assert abs(fd - grad[i]) <= TOL * max(1, abs(fd)) + 5e-4, (name, i, fd, grad[i])
        p.write(base)


def test_cnn_gradients(ctx, rng):
    net = nn.model(ctx, "cnn", channels=1, height=8, width=8, classes=5, width_hidden=4,
                   seed=2)
    x, _ = make(ctx, rng, (3, 1, 8, 8), "f32", 0, 1)
    y = ctx.tensor(np.array([0, 3, 4], np.int32))
    g = okto.Graph(ctx)
    logits = net.forward(g, x)
    assert logits.shape == (3, 5)
    loss = net.loss(g, logits, y)
    net.backward(g, loss)
    fd_check(ctx, rng, net, g, loss)


def test_gpt_gradients_and_initial_loss(ctx, rng):
    V, T = 13, 6
    net = nn.model(ctx, "gpt", classes=V, width_hidden=16, layers=1, heads=2, context=T,
                   seed=4)
    ids = ctx.tensor(rng.integers(0, V, (2, T)).astype(np.int32))
    tgt = ctx.tensor(rng.integers(0, V, (2, T)).astype(np.int32))
    g = okto.Graph(ctx)
    logits = net.forward(g, ids)
    assert logits.shape == (2, T, V)
    loss = net.loss(g, logits, tgt)
    net.backward(g, loss)
    lossv = g.download(loss)
    g.run()
    assert abs(lossv[0] - math.log(V)) < 0.1  # small initial weights: near uniform
    fd_check(ctx, rng, net, g, loss)


# ---- schedule, optimizer settings ----------------------------------------------------------


def test_lr_schedule():
    lr, lo, warm, total = 1e-3, 1e-4, 10, 110
    for step in (0, 5, 9, 10, 60, 109, 110):
        if step < warm:
            want = lr * (step + 1) / warm
        else:
            t = (step - warm) / (total - warm)
            want = lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * min(t, 1)))
        assert nn.lr_schedule(lr, lo, warm, total, step) == pytest.approx(want, rel=1e-5), step


def test_optim_defaults_and_refusals():
    a, s = nn.AdamW(), nn.SGD(nesterov=True)
    assert (a.lr, a.beta1, a.beta2, a.eps, a.weight_decay) == (1e-3, 0.9, 0.999, 1e-8, 0.01)
    assert (s.lr, s.momentum, s.nesterov) == (0.01, 0.9, True)
    with pytest.raises(okto.InvalidArgument, match="unknown setting 'betas'"):
        nn.AdamW(betas=(0.9, 0.99))
    with pytest.raises(okto.InvalidArgument, match="OPTIM"):
        nn.Optim("lamb")


# ---- lifetimes and errors -----------------------------------------------------------------


def test_graph_keeps_the_net_and_close_invalidates_its_tensors(ctx, rng):
    import gc

    net = nn.model(ctx, "mlp", features=4, classes=3, width_hidden=5, layers=1)
    x = ctx.tensor(rng.uniform(0, 1, (2, 4)).astype(np.float32))
    g = okto.Graph(ctx)
    out = g.download(net.forward(g, x))
    name, p, gr = net.param_at(0)
    del net
    gc.collect()
    g.run()  # the graph holds the net
    assert out.shape == (2, 3) and np.isfinite(out).all()
    net = g._keep[[k for k, o in g._keep.items() if isinstance(o, nn.Net)][0]]
    g.launch()
    with pytest.raises(okto.Busy):
        net.close()
    g.wait()
    net.close()
    with pytest.raises(okto.InvalidState):
        p.numpy()
    with pytest.raises(okto.InvalidState):
        net.params()
    g.run()  # the recorded work still has its storage
    g.close()


def test_model_errors_carry_the_c_message(ctx):
    with pytest.raises(okto.InvalidArgument, match="MODEL"):
        nn.model(ctx, "resnet")
    with pytest.raises(okto.InvalidArgument, match="unknown setting 'hidden'"):
        nn.model(ctx, "mlp", hidden=3)
    with pytest.raises(okto.InvalidArgument, match="okto_nn_model"):
        nn.model(ctx, "gpt", classes=10, width_hidden=10, heads=3)  # 10 not divisible by 3
    net = nn.model(ctx, "mlp", features=4, classes=3)
    g = okto.Graph(ctx)
    with pytest.raises(okto.InvalidArgument, match="okto_nn_forward|okto_nn_linear|x"):
        net.forward(g, ctx.zeros((2, 5)))  # 5 features for a 4-feature model
    net.allocate()
    with pytest.raises(okto.InvalidState, match="allocated"):
        net.linear("late", 2, 2)
    with pytest.raises(okto.InvalidArgument, match="okto.nn.Optim"):
        net.update(g, "adamw")
    with pytest.raises(okto.InvalidArgument):
        nn.Net("ctx")


def test_graph_owned_outputs_keep_their_graph(ctx, rng):
    import gc

    net = nn.model(ctx, "mlp", features=4, classes=3, width_hidden=5, layers=1)
    x = ctx.tensor(rng.uniform(0, 1, (2, 4)).astype(np.float32))
    g = okto.Graph(ctx)
    logits = net.forward(g, x)
    g.launch()
    del g, net  # the launched graph is held until wait; the output holds the graph
    gc.collect()
    okto.wait_all()
    assert logits.numpy().shape == (2, 3)
    logits.close()  # a graph-owned tensor: close() drops the Python side only
    with pytest.raises(okto.InvalidState):
        logits.numpy()


def test_out_of_range_ints_are_okto_errors(ctx):
    with pytest.raises(okto.InvalidArgument, match="seed"):
        nn.Net(ctx, seed=-1)
    with pytest.raises(okto.InvalidArgument, match="layers"):
        nn.model(ctx, "mlp", features=4, classes=2, layers=2**40)
    with pytest.raises(okto.InvalidArgument, match="n_in"):
        nn.Net(ctx).linear("l", 0, 3)
    with pytest.raises(okto.InvalidArgument, match="step"):
        nn.lr_schedule(1e-3, 1e-4, 0, 10, -1)
