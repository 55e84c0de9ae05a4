/* lib/nn/nn_internal.h: what the files of lib/nn share (nn.c: parameters and optimizers;
 * layers.c: the layers; models.c: the models okto-train trains). */
#ifndef OKTO_NN_INTERNAL_H
#define OKTO_NN_INTERNAL_H

#include "core.h"
#include "okto/nn.h"

typedef struct okto__nn_param {
    char name[96];
    int rank;
    size_t shape[OKTO_MAX_RANK];
    okto_init init;
    float scale;
    size_t fan_in, fan_out;
    int decay;
    size_t numel, off;                 /* elements, and the first one's place in the arenas */
    okto_tensor *t, *g, *m, *v;        /* views of the arenas, once allocated */
} okto__nn_param;

enum { OKTO__L_LINEAR, OKTO__L_LAYERNORM, OKTO__L_EMBEDDING, OKTO__L_CONV, OKTO__L_MLP,
       OKTO__L_ATTN };

struct okto_layer {
    okto_nn *nn;
    int kind;
    char name[72];
    size_t in, out;                    /* linear: features; conv: channels; others: dim, hidden */
    int act, bias, k, pad, pool, heads, causal;
    unsigned flags;
    int p[4];                          /* parameter indices (weight, bias, ...) */
    okto_layer *sub[4];                /* blocks: their layers */
};

typedef struct okto__nn_model {
    int set;
    okto_model_config cfg;
    okto_layer *layers[64];            /* mlp: linears; cnn: conv blocks + the head */
    int nlayers;
    okto_layer *tok, *lnf;             /* gpt */
    int pos;                           /* gpt: the position embedding's parameter index */
} okto__nn_model;

struct okto_nn {
    okto_context *ctx;
    okto_dtype dtype;
    uint64_t seed;
    okto__nn_param *p;
    int np, pcap;
    okto_layer **layers;
    int nl, lcap;
    int allocated, lr_set;
    size_t total;
    okto_tensor *arena, *garena, *marena, *varena; /* parameters, gradients, optimizer state */
    okto_tensor *sched, *lr;           /* okto_sgd / okto_adamw's float[4], and its element 0 */
    okto_tensor *clip, *clip_scale;    /* okto_clip_grad_norm's {scale, norm}, and the scale */
    okto_tensor *mask;                 /* attention as matmuls: the causal mask, [mask_t, mask_t] */
    size_t mask_t;
    okto__nn_model model;
};

okto_status okto__nn_declare(okto_nn *nn, const char *fn, const char *name, int rank,
                             const size_t *shape, okto_init init, float scale, size_t fan_in,
                             size_t fan_out, int decay, int *index);
okto_status okto__nn_layer(okto_nn *nn, const char *fn, const char *name, int kind,
                           okto_layer **out);
void okto__nn_unlayer(okto_nn *nn, okto_layer *l, int np0);
okto_tensor *okto__nn_p(const okto_nn *nn, int i);
/* t (contiguous) as a value view of another shape with as many elements. */
okto_tensor okto__nn_reshaped(const okto_tensor *t, int rank, const size_t *shape);

#endif
