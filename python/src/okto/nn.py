"""okto.nn: layers, parameters, optimizers and models over okto/nn.h.

    import okto, okto.nn as nn
    ctx = okto.Context()
    net = nn.model(ctx, "mlp", features=64, classes=10, seed=1)   # okto_nn_model
    x, y = ctx.empty((32, 64)), ctx.empty(32, "i32")
    g = okto.Graph(ctx)
    g.upload(x, xb); g.upload(y, yb)                  # host arrays refilled before each run
    logits = net.forward(g, x)                        # graph-owned tensors
    loss = net.loss(g, logits, y)
    net.backward(g, loss)
    net.update(g, nn.AdamW(lr=3e-3))                  # one launch over every parameter
    lossv = g.download(loss)
    for step in range(steps):
        net.lr = nn.lr_schedule(3e-3, 3e-4, 0, steps, step)
        g.run()

A Net holds its parameters in one arena (parameters, gradients, optimizer state), declared
by its layers and initialised from its seed in declaration order on the first forward (or
allocate()). Its parameter and gradient tensors belong to it: they raise okto.InvalidState
after close(). Tensors a forward returns belong to the graph they were recorded into. A
graph that recorded a Net's forward, backward or update keeps the Net alive.
"""

import numbers
import weakref

from ._core import Context, Graph, Tensor, _int_arg, _invalidate, _shape_arg
from ._enums import INIT, MAP, MODEL, OPTIM
from ._errors import InvalidArgument, check
from ._okto_ffi import ffi, lib

__all__ = ["Net", "Layer", "Optim", "AdamW", "SGD", "model", "model_config", "lr_schedule",
           "INIT", "OPTIM", "MODEL"]


def _act(act):
    if act is None or act == "none":
        return lib.OKTO_ACT_NONE
    return int(MAP.of(act))


def _size(name, v):
    v = _int_arg(name, v, -2**62, 2**62)
    if v < 1:
        raise InvalidArgument("%s must be >= 1, not %d" % (name, v))
    return v


def _name(name):
    if not isinstance(name, str):
        raise InvalidArgument("a layer or parameter name is a str, not %r" % (name,))
    return name.encode()


class Layer:
    """A layer declared in a Net (linear, layernorm, embedding, conv_block, mlp_block,
    attention_block); forward(graph, x) records it and returns its graph-owned output."""

    def __init__(self, net, ptr, kind, name):
        self._net, self._p, self.kind, self.name = net, ptr, kind, name

    def forward(self, graph, x):
        net = self._net
        net._ptr  # a closed net's layers are gone too
        out = ffi.new("okto_tensor **")
        check(lib.okto_layer_forward(graph._ptr, self._p, graph._t(x, "x"), out))
        graph._keep[id(net)] = net
        return graph._owned_tensor(out[0])

    __call__ = forward

    def __repr__(self):
        return "<okto.nn.Layer %s %r>" % (self.kind, self.name)


class Optim:
    """okto_optim: kind ('adamw' or 'sgd') and its settings, PyTorch's defaults unless given
    (okto_optim_default): lr, momentum, nesterov (SGD), beta1, beta2, eps (AdamW),
    weight_decay, clip_norm (> 0: the gradients' global L2 norm is clipped to it)."""

    _FIELDS = ("lr", "momentum", "nesterov", "beta1", "beta2", "eps", "weight_decay",
               "clip_norm")

    def __init__(self, kind="adamw", **settings):
        self.kind = OPTIM.of(kind)
        d = lib.okto_optim_default(self.kind)
        for f in self._FIELDS:
            v = getattr(d, f)
            setattr(self, f, float("%.7g" % v) if isinstance(v, float) else v)
        self.nesterov = bool(self.nesterov)
        for k, v in settings.items():
            if k not in self._FIELDS:
                raise InvalidArgument("Optim: unknown setting %r (it takes %s)"
                                      % (k, ", ".join(self._FIELDS)))
            setattr(self, k, v)

    def _c(self):
        o = ffi.new("okto_optim *")
        o.kind = self.kind
        for f in self._FIELDS:
            v = getattr(self, f)
            if f == "nesterov":
                o.nesterov = 1 if v else 0
            else:
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise InvalidArgument("Optim.%s must be a number, not %r" % (f, v))
                setattr(o, f, float(v))
        return o

    def __repr__(self):
        return "Optim(%r, %s)" % (self.kind.label, ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self._FIELDS))


def AdamW(**settings):
    """Optim('adamw', ...): PyTorch's AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01)."""
    return Optim("adamw", **settings)


def SGD(**settings):
    """Optim('sgd', ...): PyTorch's SGD (lr 0.01, momentum 0.9)."""
    return Optim("sgd", **settings)


def lr_schedule(lr, min_lr, warmup, total, step):
    """okto_lr_schedule: linear warm-up over `warmup` steps to lr, then cosine decay to min_lr
    at `total`; the rate of step `step` (0-based)."""
    return float(lib.okto_lr_schedule(float(lr), float(min_lr),
                                      _int_arg("warmup", warmup, 0, 2**62),
                                      _int_arg("total", total, 0, 2**62),
                                      _int_arg("step", step, 0, 2**62)))


class Net:
    """okto_nn: a model's parameters and layers. Net(ctx, dtype='f32', seed=1).

    Declare layers (linear, layernorm, embedding, conv_block, mlp_block, attention_block) or
    free parameters (param), or a whole model with okto.nn.model(); then record forward,
    loss, backward and update into a graph and replay it."""

    _kind = "okto.nn.Net"

    def __init__(self, ctx, dtype="f32", seed=1):
        from ._core import as_dtype

        if not isinstance(ctx, Context):
            raise InvalidArgument("Net's first argument is an okto.Context, not %r" % (ctx,))
        seed = _int_arg("seed", seed, 0, 2**64 - 1)
        out = ffi.new("okto_nn **")
        check(lib.okto_nn_create(ctx._ptr, as_dtype(dtype), seed, out))
        self._h = out[0]
        self._ctx = ctx
        self._refs = []  # weak references to the tensors that are views of the arena
        self._layers = []
        self.config = None  # model(): the okto_model_config as a dict

    # ---- lifetime
    @property
    def _ptr(self):
        if self._h == ffi.NULL:
            from ._errors import InvalidState

            raise InvalidState("this okto.nn.Net is closed")
        return self._h

    @property
    def closed(self):
        return self._h == ffi.NULL

    def close(self):
        """Frees the parameters and layers (okto.Busy, intact, while a launched graph uses
        them); the Net's parameter tensors are closed with it."""
        h = self._h
        if h == ffi.NULL:
            return
        check(lib.okto_nn_destroy(h))
        self._h = ffi.NULL
        _invalidate(self._refs)
        self._refs = []

    def __enter__(self):
        self._ptr
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        h = getattr(self, "_h", ffi.NULL)
        if h != ffi.NULL:
            try:
                lib.okto_nn_destroy(h)
            except Exception:
                pass
            self._h = ffi.NULL

    def __repr__(self):
        if self.closed:
            return "<okto.nn.Net closed>"
        return "<okto.nn.Net %d parameters (%d elements), %d layers>" % (
            self.param_count, self.numel if self.param_count else 0, len(self._layers))

    # ---- parameters
    def param(self, name, shape, init="normal", scale=0.0, fan_in=0, fan_out=0, decay=True):
        """A parameter outside any layer (okto_nn_param); returns its index for params()."""
        shape = _shape_arg(shape)
        idx = ffi.new("int *")
        check(lib.okto_nn_param(self._ptr, _name(name), len(shape), ffi.new("size_t[]", shape),
                                INIT.of(init), float(scale), _int_arg("fan_in", fan_in, 0, 2**62),
                                _int_arg("fan_out", fan_out, 0, 2**62), 1 if decay else 0, idx))
        return int(idx[0])

    def allocate(self):
        """Allocates and initialises the parameters now (the first forward does otherwise)."""
        check(lib.okto_nn_allocate(self._ptr))
        return self

    @property
    def param_count(self):
        return lib.okto_nn_param_count(self._ptr)

    @property
    def numel(self):
        """Total parameter elements."""
        return int(lib.okto_nn_numel(self._ptr))

    def _arena(self, ptr):
        t = Tensor._wrap(ptr, self._ctx, base=self)
        t._owned = False
        self._refs.append(weakref.ref(t))
        return t

    def param_at(self, i):
        """(name, parameter, gradient) of parameter i, once allocated."""
        i = _int_arg("index", i)
        name = ffi.new("const char **")
        p = ffi.new("okto_tensor **")
        gr = ffi.new("okto_tensor **")
        check(lib.okto_nn_param_at(self._ptr, i, name, p, gr))
        return ffi.string(name[0]).decode(), self._arena(p[0]), self._arena(gr[0])

    def params(self):
        """Every parameter as (name, tensor, gradient), in declaration order (allocates)."""
        self.allocate()
        return [self.param_at(i) for i in range(self.param_count)]

    def named_parameters(self):
        """{name: tensor}."""
        return {n: p for n, p, _ in self.params()}

    def state(self, i):
        """Parameter i's optimizer state (m, v): AdamW's moments, or SGD's momentum in m."""
        i = _int_arg("index", i)
        m = ffi.new("okto_tensor **")
        v = ffi.new("okto_tensor **")
        check(lib.okto_nn_param_state(self._ptr, i, m, v))
        return (self._arena(m[0]) if m[0] != ffi.NULL else None,
                self._arena(v[0]) if v[0] != ffi.NULL else None)

    # ---- layers
    def _layer(self, kind, name, fn, *args):
        out = ffi.new("okto_layer **")
        check(fn(self._ptr, _name(name), *args, out))
        layer = Layer(self, out[0], kind, name)
        self._layers.append(layer)
        return layer

    def linear(self, name, n_in, n_out, bias=True, act=None):
        """y = x W + b over the last dimension; act None or a MAP name applied after."""
        return self._layer("linear", name, lib.okto_nn_linear, _size("n_in", n_in),
                           _size("n_out", n_out), 1 if bias else 0, _act(act))

    def layernorm(self, name, dim):
        return self._layer("layernorm", name, lib.okto_nn_layernorm, _size("dim", dim))

    def embedding(self, name, vocab, dim):
        """ids (i32, any shape) -> rows of a [vocab, dim] table."""
        return self._layer("embedding", name, lib.okto_nn_embedding, _size("vocab", vocab),
                           _size("dim", dim))

    def conv_block(self, name, cin, cout, k=3, pad=1, act="relu", pool=2):
        """k x k convolution (stride 1, padding pad) + act + pool x pool max pooling (1:
        none) over x [N, cin, H, W]."""
        return self._layer("conv_block", name, lib.okto_nn_conv_block, _size("cin", cin),
                           _size("cout", cout), _int_arg("k", k), _int_arg("pad", pad),
                           _act(act), _int_arg("pool", pool))

    def mlp_block(self, name, dim, hidden, act="gelu_tanh", residual=False, prenorm=False):
        """proj(act(fc(x))), a transformer's MLP (prenorm: layernorm first; residual: + x)."""
        flags = (lib.OKTO_NN_RESIDUAL if residual else 0) | (lib.OKTO_NN_PRENORM if prenorm
                                                              else 0)
        return self._layer("mlp_block", name, lib.okto_nn_mlp_block, _size("dim", dim),
                           _size("hidden", hidden), _act(act), flags)

    def attention_block(self, name, dim, heads, causal=True):
        """x + proj(attention(qkv(layernorm(x)))) over x [B, T, dim]."""
        return self._layer("attention_block", name, lib.okto_nn_attention_block,
                           _size("dim", dim), _int_arg("heads", heads), 1 if causal else 0)

    @property
    def layers(self):
        return list(self._layers)

    # ---- recording
    def _rec(self, graph):
        if not isinstance(graph, Graph):
            raise InvalidArgument("expected an okto.Graph, not %r" % (graph,))
        graph._keep[id(self)] = self
        return graph._ptr

    def forward(self, graph, x):
        """The model's forward (okto.nn.model) over x: its graph-owned logits."""
        gp = self._rec(graph)
        out = ffi.new("okto_tensor **")
        check(lib.okto_nn_forward(gp, self._ptr, graph._t(x, "x"), out))
        return graph._owned_tensor(out[0])

    __call__ = forward

    def loss(self, graph, logits, labels, scale=1.0):
        """Mean cross-entropy of logits against i32 labels, times scale: a graph-owned
        one-element f32 tensor."""
        gp = self._rec(graph)
        out = ffi.new("okto_tensor **")
        check(lib.okto_nn_loss(gp, self._ptr, graph._t(logits, "logits"),
                               graph._t(labels, "labels"), float(scale), out))
        return graph._owned_tensor(out[0])

    def backward(self, graph, loss, accumulate=False):
        """Gradients of sum(loss) into every parameter's gradient (added with accumulate: the
        micro-batches after the first)."""
        gp = self._rec(graph)
        check(lib.okto_nn_backward(gp, self._ptr, graph._t(loss, "loss"),
                                   lib.OKTO_ACCUMULATE if accumulate else 0))
        return self

    def update(self, graph, optim=None):
        """One optimizer step over every parameter (default: AdamW's defaults)."""
        if optim is None:
            optim = AdamW()
        if not isinstance(optim, Optim):
            raise InvalidArgument("update takes an okto.nn.Optim, not %r" % (optim,))
        o = optim._c()
        gp = self._rec(graph)
        check(lib.okto_nn_update(gp, self._ptr, o))
        return self

    # ---- rate and steps (on the device)
    @property
    def lr(self):
        return getattr(self, "_lr", None)

    @lr.setter
    def lr(self, value):
        """The rate of the next runs' steps (a blocking write; not while a graph runs)."""
        check(lib.okto_nn_set_lr(self._ptr, float(value)))
        self._lr = float(value)

    def set_lr(self, value):
        self.lr = value
        return self

    @property
    def steps(self):
        """Optimizer steps taken (read from the device); settable (resuming)."""
        out = ffi.new("long *")
        check(lib.okto_nn_steps(self._ptr, out))
        return int(out[0])

    @steps.setter
    def steps(self, value):
        check(lib.okto_nn_set_steps(self._ptr, _int_arg("steps", value, 0, 2**62)))


_CONFIG_FIELDS = ("features", "channels", "height", "width", "classes", "width_hidden",
                  "layers", "heads", "context")


def model_config(kind, **overrides):
    """okto_model_default(kind) as a dict, with overrides (features, channels, height, width,
    classes, width_hidden, layers, heads, context)."""
    kind = MODEL.of(kind)
    c = lib.okto_model_default(kind)
    cfg = {"kind": kind.label}
    for f in _CONFIG_FIELDS:
        cfg[f] = int(getattr(c, f))
    for k, v in overrides.items():
        if k not in _CONFIG_FIELDS:
            raise InvalidArgument("model: unknown setting %r (it takes %s)"
                                  % (k, ", ".join(_CONFIG_FIELDS)))
        cfg[k] = _int_arg(k, v, 0, 2**31 - 1 if k in ("layers", "heads") else 2**62)
    return cfg


def model(ctx, kind, seed=1, dtype="f32", **overrides):
    """A Net with okto's model `kind` ('mlp', 'cnn', 'gpt') declared (okto_nn_model), from
    okto_model_default(kind) with overrides; see okto/nn.h for what each kind is."""
    cfg = model_config(kind, **overrides)
    c = ffi.new("okto_model_config *")
    c.kind = MODEL.of(kind)
    for f in _CONFIG_FIELDS:
        if cfg[f] < 0:
            raise InvalidArgument("model: %s must be >= 0, not %d" % (f, cfg[f]))
        setattr(c, f, cfg[f])
    net = Net(ctx, dtype, seed)
    try:
        check(lib.okto_nn_model(net._ptr, c))
    except BaseException:
        net.close()
        raise
    net.config = cfg
    return net
