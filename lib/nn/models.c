/* lib/nn/models.c: the models okto-train trains (mlp, cnn, gpt), built from the layers of
 * layers.c, and their loss. The parameter names are stable: they are the checkpoint's tensor
 * names (okto-train writes safetensors keyed by them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

const char *okto_model_name(okto_model_kind kind)
{
    static const char *const names[] = {
#define OKTO__MODEL_NAME(name, str) str,
        OKTO_MODEL_MAP(OKTO__MODEL_NAME)
#undef OKTO__MODEL_NAME
    };
    return (unsigned)kind < OKTO_MODEL_COUNT ? names[kind] : "?";
}

int okto_model_parse(const char *name)
{
    for (int k = 0; name && k < OKTO_MODEL_COUNT; k++)
        if (strcmp(name, okto_model_name((okto_model_kind)k)) == 0)
            return k;
    return -1;
}

okto_model_config okto_model_default(okto_model_kind kind)
{
    okto_model_config c = {.kind = kind};
    switch (kind) {
    case OKTO_MODEL_MLP:
        c.features = 64, c.classes = 10, c.width_hidden = 128, c.layers = 2;
        break;
    case OKTO_MODEL_CNN:
        c.channels = 1, c.height = 8, c.width = 8, c.classes = 10, c.width_hidden = 32;
        c.layers = 2;
        break;
    default:
        c.classes = 96, c.width_hidden = 128, c.layers = 2, c.heads = 4, c.context = 64;
        break;
    }
    return c;
}

static okto_status bad(okto_nn *nn, const okto_model_config *c, const char *why)
{
    return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_model: %s model: %s",
                      okto_model_name(c->kind), why);
}

okto_status okto_nn_model(okto_nn *nn, const okto_model_config *c)
{
    if (!nn || !c)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL,
                          "okto_nn_model: nn and cfg must not be NULL");
    if (nn->np || nn->nl || nn->model.set)
        return okto__fail(nn->ctx, OKTO_ESTATE,
                          "okto_nn_model: the nn already has layers or parameters");
    if ((unsigned)c->kind >= OKTO_MODEL_COUNT)
        return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_model: kind %d is not an okto_model_kind",
                          (int)c->kind);
    okto__nn_model *m = &nn->model;
    okto_status s = OKTO_OK;
    char name[64];
    if (!c->classes || !c->width_hidden || c->layers < 1 || c->layers > 32)
        return bad(nn, c, "classes and width must be >= 1, layers 1 to 32");
    if (c->kind == OKTO_MODEL_MLP) {
        if (!c->features)
            return bad(nn, c, "features must be >= 1");
        size_t in = c->features;
        for (int i = 0; i < c->layers && s == OKTO_OK; i++) {
            snprintf(name, sizeof name, "fc%d", i);
            s = okto_nn_linear(nn, name, in, c->width_hidden, 1, OKTO_MAP_RELU,
                               &m->layers[m->nlayers++]);
            in = c->width_hidden;
        }
        if (s == OKTO_OK)
            s = okto_nn_linear(nn, "head", in, c->classes, 1, OKTO_ACT_NONE,
                               &m->layers[m->nlayers++]);
    } else if (c->kind == OKTO_MODEL_CNN) {
        size_t ch = c->channels, h = c->height, w = c->width;
        if (!ch || !h || !w)
            return bad(nn, c, "channels, height and width must be >= 1");
        for (int i = 0; i < c->layers && s == OKTO_OK; i++) {
            if (h < 2 || w < 2) {
                s = bad(nn, c, "too many conv blocks: each halves the image (2x2 pooling)");
                break;
            }
            snprintf(name, sizeof name, "conv%d", i);
            size_t out = c->width_hidden << i;
            s = okto_nn_conv_block(nn, name, ch, out, 3, 1, OKTO_MAP_RELU, 2,
                                   &m->layers[m->nlayers++]);
            ch = out, h /= 2, w /= 2;
        }
        if (s == OKTO_OK)
            s = okto_nn_linear(nn, "head", ch * h * w, c->classes, 1, OKTO_ACT_NONE,
                               &m->layers[m->nlayers++]);
    } else {
        size_t C = c->width_hidden;
        if (c->heads < 1 || C % (size_t)c->heads || !c->context)
            return bad(nn, c, "heads must divide the width, context >= 1");
        s = okto_nn_embedding(nn, "tok", c->classes, C, &m->tok);
        if (s == OKTO_OK)
            s = okto__nn_declare(nn, "okto_nn_model", "pos", 2, (size_t[]){c->context, C},
                                 OKTO_INIT_NORMAL, 0.02f, c->context, C, 1, &m->pos);
        for (int i = 0; i < c->layers && s == OKTO_OK; i++) {
            snprintf(name, sizeof name, "blocks.%d.attn", i);
            s = okto_nn_attention_block(nn, name, C, c->heads, 1, &m->layers[m->nlayers++]);
            snprintf(name, sizeof name, "blocks.%d.mlp", i);
            if (s == OKTO_OK)
                s = okto_nn_mlp_block(nn, name, C, 4 * C, OKTO_MAP_GELU_TANH,
                                      OKTO_NN_RESIDUAL | OKTO_NN_PRENORM,
                                      &m->layers[m->nlayers++]);
        }
        if (s == OKTO_OK)
            s = okto_nn_layernorm(nn, "lnf", C, &m->lnf);
    }
    if (s != OKTO_OK) {
        /* nothing half-made: the nn goes back to empty */
        for (int i = 0; i < nn->nl; i++)
            free(nn->layers[i]);
        nn->nl = nn->np = 0;
        memset(m, 0, sizeof *m);
        return s;
    }
    m->cfg = *c;
    m->set = 1;
    return OKTO_OK;
}

static okto_status bad_input(okto_nn *nn, const char *want, const okto_tensor *x)
{
    return okto__fail(nn->ctx, OKTO_EINVAL, "okto_nn_forward: the %s model takes %s; x is %s",
                      okto_model_name(nn->model.cfg.kind), want, OKTO__DESC(x));
}

okto_status okto_nn_forward(okto_graph *g, okto_nn *nn, const okto_tensor *x, okto_tensor **logits)
{
    if (!logits)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL,
                          "okto_nn_forward: logits must not be NULL");
    *logits = NULL;
    if (!g || !nn || !x)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL,
                          "okto_nn_forward: g, nn and x must not be NULL");
    okto__nn_model *m = &nn->model;
    if (!m->set)
        return okto__fail(nn->ctx, OKTO_ESTATE,
                          "okto_nn_forward: the nn has no model (okto_nn_model)");
    const okto_model_config *c = &m->cfg;
    char want[96];
    okto_status s = nn->allocated ? OKTO_OK : okto_nn_allocate(nn);
    okto_tensor *h = (okto_tensor *)x, hv;
    if (s != OKTO_OK)
        return s;
    if (c->kind == OKTO_MODEL_MLP || c->kind == OKTO_MODEL_CNN) {
        size_t feat = c->kind == OKTO_MODEL_MLP ? c->features : c->channels * c->height * c->width;
        snprintf(want, sizeof want, "%s[B, %zu] data", okto_dtype_name(nn->dtype), feat);
        if (x->dtype != nn->dtype || x->rank < 2 || okto_tensor_numel(x) % feat ||
            (c->kind == OKTO_MODEL_MLP && (x->rank != 2 || x->shape[1] != feat)))
            return bad_input(nn, want, x);
        size_t B = okto_tensor_numel(x) / feat;
        if (c->kind == OKTO_MODEL_CNN) {
            if (!okto__contiguous(x))
                return bad_input(nn, "contiguous images", x);
            hv = okto__nn_reshaped(x, 4, (size_t[]){B, c->channels, c->height, c->width});
            h = &hv;
        }
        for (int i = 0; i < m->nlayers && s == OKTO_OK; i++) {
            okto_layer *l = m->layers[i];
            if (l->kind == OKTO__L_LINEAR && h->rank == 4) { /* flatten the last conv block */
                hv = okto__nn_reshaped(h, 2, (size_t[]){B, okto_tensor_numel(h) / B});
                h = &hv;
            }
            s = okto_layer_forward(g, l, h, &h);
        }
        if (s == OKTO_OK)
            *logits = h;
        return s;
    }
    /* gpt */
    snprintf(want, sizeof want, "i32 ids [B, T] with T <= %zu", c->context);
    if (x->dtype != OKTO_I32 || x->rank != 2 || x->shape[1] > c->context)
        return bad_input(nn, want, x);
    size_t B = x->shape[0], T = x->shape[1], C = c->width_hidden;
    okto_tensor *e, *lg;
    s = okto_layer_forward(g, m->tok, x, &e);
    if (s == OKTO_OK)
        s = okto_graph_tensor(g, nn->dtype, 3, (size_t[]){B, T, C}, &h);
    if (s == OKTO_OK) {
        okto_tensor pos = *okto__nn_p(nn, m->pos);
        pos.heap = 0;
        pos.shape[0] = T; /* the first T positions */
        s = okto_zip(g, h, e, &pos, OKTO_ZIP_ADD);
    }
    for (int i = 0; i < m->nlayers && s == OKTO_OK; i++)
        s = okto_layer_forward(g, m->layers[i], h, &h);
    if (s == OKTO_OK)
        s = okto_layer_forward(g, m->lnf, h, &h);
    if (s == OKTO_OK)
        s = okto_graph_tensor(g, nn->dtype, 3, (size_t[]){B, T, c->classes}, &lg);
    if (s == OKTO_OK) {
        /* the output projection is the token table, transposed (a view: no copy) */
        okto_tensor table = *okto__nn_p(nn, m->tok->p[0]), tt, h2, l2;
        table.heap = 0;
        okto__view_swap(&table, 0, 1, &tt);
        okto__view_2d(h, &h2);
        okto__view_2d(lg, &l2);
        s = okto_matmul(g, &l2, &h2, &tt, 0);
    }
    if (s == OKTO_OK)
        *logits = lg;
    return s;
}

okto_status okto_nn_loss(okto_graph *g, okto_nn *nn, const okto_tensor *logits,
                         const okto_tensor *labels, float scale, okto_tensor **loss)
{
    if (!loss)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL, "okto_nn_loss: loss must not be NULL");
    *loss = NULL;
    if (!g || !nn || !logits || !labels)
        return okto__fail(nn ? nn->ctx : NULL, OKTO_EINVAL,
                          "okto_nn_loss: g, nn, logits and labels must not be NULL");
    okto_tensor *l;
    okto_status s = okto_graph_tensor(g, OKTO_F32, 1, (size_t[]){1}, &l);
    if (s == OKTO_OK)
        s = okto_cross_entropy(g, l, NULL, logits, labels, OKTO_IGNORE_NONE);
    if (s == OKTO_OK && scale != 1.0f) {
        okto_tensor *ls;
        if ((s = okto_graph_tensor(g, OKTO_F32, 1, (size_t[]){1}, &ls)) == OKTO_OK &&
            (s = okto_zip_scalar(g, ls, l, scale, OKTO_ZIP_MUL)) == OKTO_OK)
            l = ls;
    }
    if (s == OKTO_OK)
        *loss = l;
    return s;
}
