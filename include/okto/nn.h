/* okto/nn.h: layers, parameters, optimizers and the models okto-train trains.
 *
 * An okto_nn holds a model's parameters and its layers. Layers are declared first (each names
 * its parameters and how they start); the first forward allocates every parameter in one
 * storage (an arena, so an optimizer step is one launch over all of them), together with their
 * gradients and the optimizer's state, and initialises them from the nn's seed, in declaration
 * order (the same seed gives the same model on every device). A forward records into a graph
 * and returns graph-owned tensors (okto_graph_tensor): one graph holds a whole training step,
 *
 *     okto_nn_forward / okto_layer_forward ...   the forward pass and the loss
 *     okto_nn_backward(g, nn, loss, 0)           the gradients of every parameter
 *     okto_nn_update(g, nn, &optim)               clipping and the optimizer step
 *
 * recorded once and replayed. Micro-batches: the forward and okto_nn_backward once per
 * micro-batch (OKTO_ACCUMULATE after the first, each loss scaled by 1 / micro-batches), then
 * one update; each micro-batch's activations are its own tensors, so the lanes run the forward
 * of one beside the backward of another. */
#ifndef OKTO_NN_H
#define OKTO_NN_H

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct okto_nn okto_nn;
typedef struct okto_layer okto_layer;

/* ---- parameters ---------------------------------------------------------------------------- */
/* How a parameter starts. fan_in / fan_out are the layer's (a linear's in and out features, a
 * convolution's C KH KW and Cout KH KW):
 *   ZEROS, ONES;
 *   NORMAL: N(0, scale^2) (scale 0: 0.02, GPT-2's);
 *   UNIFORM_FAN_IN: U(-b, b), b = 1 / sqrt(fan_in) (PyTorch's default for linear and conv
 *     weights and biases);
 *   XAVIER: U(-b, b), b = sqrt(6 / (fan_in + fan_out));
 *   KAIMING: N(0, 2 / fan_in) (ReLU networks). */
#define OKTO_INIT_MAP(X)                                                                         \
    X(ZEROS, "zeros") X(ONES, "ones") X(NORMAL, "normal") X(UNIFORM_FAN_IN, "uniform_fan_in")    \
    X(XAVIER, "xavier") X(KAIMING, "kaiming")
typedef enum okto_init {
#define OKTO__INIT_ENUM(name, str) OKTO_INIT_##name,
    OKTO_INIT_MAP(OKTO__INIT_ENUM)
#undef OKTO__INIT_ENUM
    OKTO_INIT_COUNT
} okto_init;
OKTO_API const char *okto_init_name(okto_init init);

/* dtype: the parameters' (f32; f16 and bf16 keep float32 optimizer state). */
OKTO_API okto_status okto_nn_create(okto_context *ctx, okto_dtype dtype, uint64_t seed,
                                    okto_nn **out);
/* OKTO_EBUSY while a launched graph uses its parameters; NULL is OK. */
OKTO_API okto_status okto_nn_destroy(okto_nn *nn);

/* A parameter outside any layer (a position embedding, say); decay: whether AdamW's weight
 * decay applies to it. *index: its place for okto_nn_param_at, which gives its tensor once the
 * parameters are allocated (okto_nn_allocate, or the first forward). */
OKTO_API okto_status okto_nn_param(okto_nn *nn, const char *name, int rank, const size_t *shape,
                                   okto_init init, float scale, size_t fan_in, size_t fan_out,
                                   int decay, int *index);
/* Allocates and initialises the parameters now (the first forward does it otherwise); no layer
 * or parameter can be added after it. */
OKTO_API okto_status okto_nn_allocate(okto_nn *nn);
OKTO_API int okto_nn_param_count(const okto_nn *nn);
/* Parameter i (in declaration order): its name ("blocks.0.attn.qkv.weight"), the tensor, its
 * gradient (what okto_nn_backward writes); any out pointer may be NULL. */
OKTO_API okto_status okto_nn_param_at(const okto_nn *nn, int i, const char **name,
                                      okto_tensor **param, okto_tensor **grad);
/* Every parameter's gradient in one 1-D tensor (each gradient at its parameter's place, padding
 * between them kept zero): what data-parallel training all-reduces between the backward and the
 * update. The nn's own (do not destroy it); NULL before the parameters are allocated. */
OKTO_API okto_tensor *okto_nn_grad_arena(const okto_nn *nn);
/* Total parameter elements. */
OKTO_API size_t okto_nn_numel(const okto_nn *nn);
/* Parameter i's optimizer state (float32, its shape): AdamW's first and second moments, or
 * SGD's momentum buffer in m (v unused). What a checkpoint saves to resume training. */
OKTO_API okto_status okto_nn_param_state(const okto_nn *nn, int i, okto_tensor **m,
                                         okto_tensor **v);

/* ---- layers -------------------------------------------------------------------------------- */
/* Activations a layer may apply (NONE, or a row of okto_map_op). */
#define OKTO_ACT_NONE (-1)

/* y = x W + b over the last dimension (x [..., in] -> y [..., out]); W [in, out] (UNIFORM_FAN_IN),
 * b [out] (UNIFORM_FAN_IN, or none); act: OKTO_ACT_NONE or an okto_map_op applied after. */
OKTO_API okto_status okto_nn_linear(okto_nn *nn, const char *name, size_t in, size_t out,
                                    int bias, int act, okto_layer **layer);
/* Layer normalisation over the last dimension (weight ONES, bias ZEROS, eps 1e-5). */
OKTO_API okto_status okto_nn_layernorm(okto_nn *nn, const char *name, size_t dim,
                                       okto_layer **layer);
/* ids (i32, any shape) -> rows of a [vocab, dim] table (NORMAL 0.02): y has ids' shape + [dim]. */
OKTO_API okto_status okto_nn_embedding(okto_nn *nn, const char *name, size_t vocab, size_t dim,
                                       okto_layer **layer);
/* Convolution (k x k, stride 1, padding pad) + act + max pooling (pool x pool, stride pool; 1:
 * none) over x [N, cin, H, W]. */
OKTO_API okto_status okto_nn_conv_block(okto_nn *nn, const char *name, size_t cin, size_t cout,
                                        int k, int pad, int act, int pool, okto_layer **layer);
/* proj(act(fc(x))) over x [..., dim], fc dim -> hidden, proj hidden -> dim: a transformer's
 * MLP; with OKTO_NN_PRENORM the input is layer-normalised first, with OKTO_NN_RESIDUAL x is
 * added to the result. */
enum { OKTO_NN_RESIDUAL = 1u << 0, OKTO_NN_PRENORM = 1u << 1 };
OKTO_API okto_status okto_nn_mlp_block(okto_nn *nn, const char *name, size_t dim, size_t hidden,
                                       int act, unsigned flags, okto_layer **layer);
/* A pre-norm causal self-attention block: x + proj(attention(qkv(layernorm(x)))) over
 * x [B, T, dim] with `heads` heads of dim / heads; causal masks future positions. */
OKTO_API okto_status okto_nn_attention_block(okto_nn *nn, const char *name, size_t dim,
                                             int heads, int causal, okto_layer **layer);
/* Records the layer over x; *y is a graph-owned tensor. */
OKTO_API okto_status okto_layer_forward(okto_graph *g, okto_layer *layer, const okto_tensor *x,
                                        okto_tensor **y);

/* ---- gradients and optimizers ---------------------------------------------------------------- */
/* The gradients of sum(loss) into every parameter's gradient tensor (okto_backward), or added to
 * them with OKTO_ACCUMULATE. */
OKTO_API okto_status okto_nn_backward(okto_graph *g, okto_nn *nn, const okto_tensor *loss,
                                      unsigned flags);

#define OKTO_OPTIM_MAP(X) X(SGD, "sgd") X(ADAMW, "adamw")
typedef enum okto_optim_kind {
#define OKTO__OPTIM_ENUM(name, str) OKTO_OPTIM_##name,
    OKTO_OPTIM_MAP(OKTO__OPTIM_ENUM)
#undef OKTO__OPTIM_ENUM
    OKTO_OPTIM_COUNT
} okto_optim_kind;

typedef struct okto_optim {
    okto_optim_kind kind;
    float lr;            /* the rate okto_nn_set_lr starts from */
    float momentum;      /* SGD */
    int nesterov;        /* SGD */
    float beta1, beta2;  /* AdamW */
    float eps;           /* AdamW */
    float weight_decay;  /* SGD: L2 on every parameter; AdamW: decoupled, on decay parameters */
    float clip_norm;     /* > 0: gradients scaled to at most this global L2 norm */
} okto_optim;
/* PyTorch's defaults: SGD lr 0.01 momentum 0.9; AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8,
 * weight decay 0.01; no clipping. */
OKTO_API okto_optim okto_optim_default(okto_optim_kind kind);

/* Records one optimizer step over every parameter from its gradient (a non-finite gradient norm
 * skips the step when clipping). The learning rate lives on the device; okto_nn_set_lr changes
 * it between runs. */
OKTO_API okto_status okto_nn_update(okto_graph *g, okto_nn *nn, const okto_optim *opt);
/* The rate of the next runs' steps (a blocking write: not while a graph using it runs). */
OKTO_API okto_status okto_nn_set_lr(okto_nn *nn, float lr);
/* Steps the optimizer has taken (read from the device), and setting it (resuming from a
 * checkpoint: AdamW's bias corrections depend on it). */
OKTO_API okto_status okto_nn_steps(okto_nn *nn, long *out);
OKTO_API okto_status okto_nn_set_steps(okto_nn *nn, long steps);

/* Linear warm-up over `warmup` steps to lr, then cosine decay to min_lr at `total`:
 * the rate of step `step` (0-based). */
OKTO_API float okto_lr_schedule(float lr, float min_lr, long warmup, long total, long step);

/* ---- models ---------------------------------------------------------------------------------- */
/* mlp: x [B, features] -> hidden layers (ReLU) -> [B, classes];
 * cnn: x [B, channels, height, width] -> conv blocks (3x3, ReLU, 2x2 max pool) -> linear ->
 *      [B, classes];
 * gpt: ids [B, T] (T <= context) -> token + position embedding -> blocks (pre-norm causal
 *      self-attention + MLP) -> layernorm -> logits [B, T, vocab] (the output projection shares
 *      the token embedding's table). */
#define OKTO_MODEL_MAP(X) X(MLP, "mlp") X(CNN, "cnn") X(GPT, "gpt")
typedef enum okto_model_kind {
#define OKTO__MODEL_ENUM(name, str) OKTO_MODEL_##name,
    OKTO_MODEL_MAP(OKTO__MODEL_ENUM)
#undef OKTO__MODEL_ENUM
    OKTO_MODEL_COUNT
} okto_model_kind;
OKTO_API const char *okto_model_name(okto_model_kind kind);
/* "mlp" -> OKTO_MODEL_MLP; -1 if unknown. */
OKTO_API int okto_model_parse(const char *name);

typedef struct okto_model_config {
    okto_model_kind kind;
    size_t features;          /* mlp: input features */
    size_t channels, height, width; /* cnn: input images */
    size_t classes;           /* mlp, cnn: outputs; gpt: vocabulary size */
    size_t width_hidden;      /* mlp: hidden width; cnn: first conv's channels (doubled per
                                 block); gpt: embedding width */
    int layers;               /* mlp: hidden layers; cnn: conv blocks; gpt: transformer blocks */
    int heads;                /* gpt */
    size_t context;           /* gpt: longest sequence */
} okto_model_config;
/* The defaults of a kind (mlp 64-128-128-10, cnn 1x8x8 16/32 channels, gpt 2 x 4 heads x 128 wide,
 * context 64); features, classes and the like still have to fit the data. */
OKTO_API okto_model_config okto_model_default(okto_model_kind kind);

/* Declares the model's layers in nn (which must be fresh). */
OKTO_API okto_status okto_nn_model(okto_nn *nn, const okto_model_config *cfg);
/* Records the model's forward over x (mlp, cnn: f32 data; gpt: i32 ids): *logits graph-owned. */
OKTO_API okto_status okto_nn_forward(okto_graph *g, okto_nn *nn, const okto_tensor *x,
                                     okto_tensor **logits);
/* The mean cross-entropy of logits against i32 labels (one per row of logits), scaled by scale
 * (1, or 1 / micro-batches): *loss a graph-owned one-element f32 tensor. */
OKTO_API okto_status okto_nn_loss(okto_graph *g, okto_nn *nn, const okto_tensor *logits,
                                  const okto_tensor *labels, float scale, okto_tensor **loss);

#ifdef __cplusplus
}
#endif
#endif
