/* tests/test_nn.c: lib/nn against tools/train/refmodel.c (the same models in double with a
 * hand-written backward): for small mlp, cnn and gpt models, one step's loss and every
 * parameter's gradient, |okto - ref| <= 1e-3 max|ref| + 1e-6 per tensor (float32 against
 * double through a whole model). Then: micro-batches give the unsplit batch's gradients and
 * weights; the optimizers against tests/ref's double AdamW and SGD; initialisation; the
 * learning-rate schedule; refusals. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <okto/nn.h>

#include "ref_optim.h"
#include "refmodel.h"
#include "testutil.h"

static okto_context *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = tu_context();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx);
    return 0;
}

static otu_ref_config ref_of(const okto_model_config *c)
{
    otu_ref_config r = {.kind = c->kind == OKTO_MODEL_MLP   ? OTU_REF_MLP
                                : c->kind == OKTO_MODEL_CNN ? OTU_REF_CNN
                                                            : OTU_REF_GPT,
                        .features = c->features,
                        .channels = c->channels,
                        .height = c->height,
                        .width = c->width,
                        .classes = c->classes,
                        .hidden = c->width_hidden,
                        .layers = c->layers,
                        .heads = c->heads,
                        .context = c->context};
    return r;
}

/* the model's inputs for a batch: data (mlp, cnn) or ids (gpt), and labels */
typedef struct batch {
    size_t B, T, nx, nlab;
    float *x;
    int32_t *ids, *labels;
} batch;

static batch make_batch(const okto_model_config *c, size_t B, size_t T, uint64_t seed)
{
    batch b = {.B = B, .T = T};
    uint64_t s = seed;
    if (c->kind == OKTO_MODEL_GPT) {
        b.nx = B * T, b.nlab = B * T;
        b.ids = malloc(b.nx * sizeof *b.ids);
        for (size_t i = 0; i < b.nx; i++)
            b.ids[i] = (int32_t)(tu_rand(&s) % c->classes);
    } else {
        b.nx = B * (c->kind == OKTO_MODEL_MLP ? c->features : c->channels * c->height * c->width);
        b.nlab = B;
        b.x = malloc(b.nx * sizeof *b.x);
        for (size_t i = 0; i < b.nx; i++)
            b.x[i] = tu_uniform(&s, -1, 1);
    }
    b.labels = malloc(b.nlab * sizeof *b.labels);
    for (size_t i = 0; i < b.nlab; i++)
        b.labels[i] = (int32_t)(tu_rand(&s) % c->classes);
    return b;
}

static void batch_free(batch *b)
{
    free(b->x);
    free(b->ids);
    free(b->labels);
}

/* device tensors of rows [r0, r1) of the batch */
static void batch_tensors(const okto_model_config *c, const batch *b, size_t r0, size_t r1,
                          okto_tensor **x, okto_tensor **lab)
{
    size_t n = r1 - r0;
    if (c->kind == OKTO_MODEL_GPT) {
        TU_OK(okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){n, b->T}, x));
        TU_OK(okto_tensor_write(*x, b->ids + r0 * b->T));
        TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){n * b->T}, lab));
        TU_OK(okto_tensor_write(*lab, b->labels + r0 * b->T));
        return;
    }
    size_t f = b->nx / b->B;
    if (c->kind == OKTO_MODEL_MLP)
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){n, f}, x));
    else
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 4,
                                 (size_t[]){n, c->channels, c->height, c->width}, x));
    TU_OK(okto_tensor_write_f32(*x, b->x + r0 * f));
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){n}, lab));
    TU_OK(okto_tensor_write(*lab, b->labels + r0));
}

/* Records forward, loss and backward over the batch in `micro` equal micro-batches. */
static okto_graph *step_graph(okto_nn *nn, const okto_model_config *c, const batch *b, int micro,
                              okto_tensor **loss_out, okto_tensor **inputs)
{
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    okto_tensor *total = NULL;
    for (int m = 0; m < micro; m++) {
        size_t r0 = b->B * (size_t)m / (size_t)micro, r1 = b->B * (size_t)(m + 1) / (size_t)micro;
        okto_tensor *logits, *loss;
        batch_tensors(c, b, r0, r1, &inputs[2 * m], &inputs[2 * m + 1]);
        TU_OK(okto_nn_forward(g, nn, inputs[2 * m], &logits));
        TU_OK(okto_nn_loss(g, nn, logits, inputs[2 * m + 1], 1.0f / (float)micro, &loss));
        TU_OK(okto_nn_backward(g, nn, loss, m ? OKTO_ACCUMULATE : 0));
        if (!total) {
            TU_OK(okto_graph_tensor(g, OKTO_F32, 1, (size_t[]){1}, &total));
            TU_OK(okto_copy(g, total, loss));
        } else {
            TU_OK(okto_zip(g, total, total, loss, OKTO_ZIP_ADD));
        }
    }
    *loss_out = total;
    return g;
}

static void check_against_ref(okto_model_config c, size_t B, size_t T)
{
    okto_nn *nn;
    TU_OK(okto_nn_create(ctx, OKTO_F32, 1234, &nn));
    TU_OK(okto_nn_model(nn, &c));
    TU_OK(okto_nn_allocate(nn));
    otu_ref_config rc = ref_of(&c);
    int n = okto_nn_param_count(nn);
    assert_int_equal(n, otu_ref_params(&rc, NULL));
    size_t numel[512];
    otu_ref_params(&rc, numel);
    double **p = calloc((size_t)n, sizeof *p), **gr = calloc((size_t)n, sizeof *gr);
    for (int i = 0; i < n; i++) {
        okto_tensor *t;
        const char *name;
        TU_OK(okto_nn_param_at(nn, i, &name, &t, NULL));
        if (okto_tensor_numel(t) != numel[i])
            fail_msg("%s: parameter %d (%s) has %zu elements, the reference %zu",
                     okto_model_name(c.kind), i, name, okto_tensor_numel(t), numel[i]);
        float *v = tu_read(t);
        p[i] = malloc(numel[i] * sizeof **p);
        gr[i] = malloc(numel[i] * sizeof **gr);
        for (size_t e = 0; e < numel[i]; e++)
            p[i][e] = v[e];
        free(v);
    }
    batch b = make_batch(&c, B, T, 99);
    double want = otu_ref_step(&rc, (const double *const *)p, gr, b.x, b.ids, b.labels, B, T);
    okto_tensor *loss, *in[2];
    okto_graph *g = step_graph(nn, &c, &b, 1, &loss, in);
    TU_OK(okto_graph_run(g));
    float got;
    TU_OK(okto_tensor_read_f32(loss, &got));
    if (fabs(got - want) > 1e-4 * (1 + fabs(want)))
        fail_msg("%s: loss %.7g, reference %.7g", okto_model_name(c.kind), got, want);
    for (int i = 0; i < n; i++) {
        okto_tensor *gt;
        const char *name;
        TU_OK(okto_nn_param_at(nn, i, &name, NULL, &gt));
        float *v = tu_read(gt);
        double mx = 0, err = 0;
        size_t at = 0;
        for (size_t e = 0; e < numel[i]; e++)
            mx = fmax(mx, fabs(gr[i][e]));
        for (size_t e = 0; e < numel[i]; e++)
            if (fabs(v[e] - gr[i][e]) > err)
                err = fabs(v[e] - gr[i][e]), at = e;
        if (err > 1e-3 * mx + 1e-6)
            fail_msg("%s: gradient of %s element %zu: okto %.7g, reference %.7g (largest %.3g)",
                     okto_model_name(c.kind), name, at, v[at], gr[i][at], mx);
        free(v);
        free(p[i]);
        free(gr[i]);
    }
    free(p);
    free(gr);
    batch_free(&b);
    okto_tensor_destroy(in[0]);
    okto_tensor_destroy(in[1]);
    TU_OK(okto_graph_destroy(g));
    TU_OK(okto_nn_destroy(nn));
}

static void mlp_matches_reference(void **state)
{
    (void)state;
    okto_model_config c = okto_model_default(OKTO_MODEL_MLP);
    c.features = 13, c.width_hidden = 17, c.layers = 2, c.classes = 5;
    check_against_ref(c, 11, 1);
}

static void cnn_matches_reference(void **state)
{
    (void)state;
    okto_model_config c = okto_model_default(OKTO_MODEL_CNN);
    c.channels = 2, c.height = 8, c.width = 6, c.width_hidden = 3, c.layers = 2, c.classes = 4;
    check_against_ref(c, 5, 1);
}

static void gpt_matches_reference(void **state)
{
    (void)state;
    okto_model_config c = okto_model_default(OKTO_MODEL_GPT);
    c.classes = 11, c.width_hidden = 16, c.layers = 2, c.heads = 2, c.context = 9;
    check_against_ref(c, 3, 7);
}

/* Four micro-batches of a batch give its gradients (each loss scaled by 1/4) and, after one
 * AdamW step, its weights. */
static void micro_batches_match_the_batch(void **state)
{
    (void)state;
    okto_model_config c = okto_model_default(OKTO_MODEL_GPT);
    c.classes = 9, c.width_hidden = 16, c.layers = 1, c.heads = 2, c.context = 8;
    okto_optim o = okto_optim_default(OKTO_OPTIM_ADAMW);
    o.clip_norm = 1.0f;
    float *weights[2] = {0}, *grads[2] = {0};
    size_t total = 0;
    batch b = make_batch(&c, 8, 8, 7);
    for (int run = 0; run < 2; run++) {
        int micro = run ? 4 : 1;
        okto_nn *nn;
        TU_OK(okto_nn_create(ctx, OKTO_F32, 5, &nn));
        TU_OK(okto_nn_model(nn, &c));
        okto_tensor *loss, *in[8];
        okto_graph *g = step_graph(nn, &c, &b, micro, &loss, in);
        /* gradients first, then a graph with the update */
        TU_OK(okto_graph_run(g));
        total = okto_nn_numel(nn);
        grads[run] = malloc(total * sizeof(float));
        weights[run] = malloc(total * sizeof(float));
        size_t at = 0;
        for (int i = 0; i < okto_nn_param_count(nn); i++) {
            okto_tensor *gt;
            TU_OK(okto_nn_param_at(nn, i, NULL, NULL, &gt));
            float *v = tu_read(gt);
            memcpy(grads[run] + at, v, okto_tensor_numel(gt) * sizeof(float));
            at += okto_tensor_numel(gt);
            free(v);
        }
        okto_graph *u;
        TU_OK(okto_graph_create(ctx, &u));
        TU_OK(okto_nn_update(u, nn, &o));
        TU_OK(okto_graph_run(u));
        at = 0;
        for (int i = 0; i < okto_nn_param_count(nn); i++) {
            okto_tensor *pt;
            TU_OK(okto_nn_param_at(nn, i, NULL, &pt, NULL));
            float *v = tu_read(pt);
            memcpy(weights[run] + at, v, okto_tensor_numel(pt) * sizeof(float));
            at += okto_tensor_numel(pt);
            free(v);
        }
        long steps;
        TU_OK(okto_nn_steps(nn, &steps));
        assert_int_equal(steps, 1);
        for (int i = 0; i < 2 * micro; i++)
            okto_tensor_destroy(in[i]);
        TU_OK(okto_graph_destroy(u));
        TU_OK(okto_graph_destroy(g));
        TU_OK(okto_nn_destroy(nn));
    }
    for (size_t i = 0; i < total; i++) {
        if (fabsf(grads[0][i] - grads[1][i]) > 1e-5f * (1 + fabsf(grads[0][i])))
            fail_msg("gradient element %zu: batch %.8g, 4 micro-batches %.8g", i, grads[0][i],
                     grads[1][i]);
        /* AdamW's first step moves a weight by lr g / (|g| + eps), whose slope in g is at most
         * lr / eps: where a gradient is rounding noise around 0 (|g| ~ 1e-10, seen with the host
         * lane's OpenBLAS summing in another order than the device), the two runs' gradient
         * difference moves the weights apart by up to that much */
        float wtol =
            1e-5f * (1 + fabsf(weights[0][i])) + o.lr * fabsf(grads[0][i] - grads[1][i]) / o.eps;
        if (fabsf(weights[0][i] - weights[1][i]) > wtol)
            fail_msg("weight element %zu after a step: batch %.8g, 4 micro-batches %.8g "
                     "(gradients %.8g, %.8g; bound %.3g)",
                     i, weights[0][i], weights[1][i], grads[0][i], grads[1][i], wtol);
    }
    for (int r = 0; r < 2; r++)
        free(weights[r]), free(grads[r]);
    batch_free(&b);
}

/* okto_nn_update against tests/ref's AdamW and SGD on a hand-made parameter and gradient. */
static void optimizers_match_reference(void **state)
{
    (void)state;
    for (int kind = 0; kind < OKTO_OPTIM_COUNT; kind++) {
        okto_nn *nn;
        int idx[2];
        TU_OK(okto_nn_create(ctx, OKTO_F32, 3, &nn));
        TU_OK(okto_nn_param(nn, "w", 2, (size_t[]){3, 5}, OKTO_INIT_NORMAL, 1.0f, 3, 5, 1,
                            &idx[0]));
        TU_OK(okto_nn_param(nn, "b", 1, (size_t[]){5}, OKTO_INIT_NORMAL, 1.0f, 3, 5, 0, &idx[1]));
        TU_OK(okto_nn_allocate(nn));
        okto_optim o = okto_optim_default((okto_optim_kind)kind);
        o.weight_decay = 0.1f;
        double p[2][15], m[2][15] = {{0}}, v[2][15] = {{0}}, gd[2][15];
        size_t n[2] = {15, 5};
        okto_tensor *pt[2], *gt[2];
        for (int i = 0; i < 2; i++) {
            TU_OK(okto_nn_param_at(nn, idx[i], NULL, &pt[i], &gt[i]));
            float *pv = tu_read(pt[i]), gv[15];
            tu_fill_random(gv, n[i], 40 + (uint64_t)i, -1, 1);
            TU_OK(okto_tensor_write_f32(gt[i], gv));
            for (size_t e = 0; e < n[i]; e++)
                p[i][e] = pv[e], gd[i][e] = gv[e];
            free(pv);
        }
        okto_graph *g;
        TU_OK(okto_graph_create(ctx, &g));
        TU_OK(okto_nn_update(g, nn, &o));
        for (int step = 1; step <= 3; step++) {
            TU_OK(okto_graph_run(g));
            for (int i = 0; i < 2; i++) {
                double wd = kind == OKTO_OPTIM_SGD || i == 0 ? o.weight_decay : 0;
                if (kind == OKTO_OPTIM_ADAMW)
                    ref_adamw(p[i], gd[i], m[i], v[i], n[i], o.lr, step, o.beta1, o.beta2, o.eps,
                              wd, 1.0);
                else
                    ref_sgd(p[i], gd[i], m[i], n[i], o.lr, o.momentum, wd, 0, 1.0);
            }
        }
        for (int i = 0; i < 2; i++) {
            float *pv = tu_read(pt[i]);
            for (size_t e = 0; e < n[i]; e++)
                if (fabs(pv[e] - p[i][e]) > 1e-5 * (1 + fabs(p[i][e])))
                    fail_msg("%s, parameter %d element %zu after 3 steps: okto %.8g, ref %.8g",
                             kind ? "adamw" : "sgd", i, e, pv[e], p[i][e]);
            free(pv);
        }
        TU_OK(okto_graph_destroy(g));
        TU_OK(okto_nn_destroy(nn));
    }
}

/* Seeded and named initialisation: the same seed gives the same values, the bounds and spreads
 * are each scheme's. */
static void initialisation(void **state)
{
    (void)state;
    struct {
        okto_init init;
        double lo, hi, sd;
    } rows[] = {
        {OKTO_INIT_ZEROS, 0, 0, 0},
        {OKTO_INIT_ONES, 1, 1, 0},
        {OKTO_INIT_UNIFORM_FAN_IN, -1 / sqrt(100.0), 1 / sqrt(100.0), 1 / sqrt(300.0)},
        {OKTO_INIT_XAVIER, -sqrt(6.0 / 300), sqrt(6.0 / 300), sqrt(2.0 / 300)},
        {OKTO_INIT_NORMAL, -1, 1, 0.02},
        {OKTO_INIT_KAIMING, -1, 1, sqrt(2.0 / 100)},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        float *vals[2];
        for (int k = 0; k < 2; k++) {
            okto_nn *nn;
            int idx;
            okto_tensor *t;
            TU_OK(okto_nn_create(ctx, OKTO_F32, 77, &nn));
            TU_OK(okto_nn_param(nn, "p", 2, (size_t[]){100, 200}, rows[r].init, 0, 100, 200, 1,
                                &idx));
            TU_OK(okto_nn_param_at(nn, idx, NULL, NULL, NULL));
            TU_OK(okto_nn_allocate(nn));
            TU_OK(okto_nn_param_at(nn, idx, NULL, &t, NULL));
            vals[k] = tu_read(t);
            TU_OK(okto_nn_destroy(nn));
        }
        double sum = 0, sq = 0;
        for (int i = 0; i < 20000; i++) {
            float x = vals[0][i];
            assert_true(x == vals[1][i]);
            if (rows[r].sd == 0 || rows[r].init != OKTO_INIT_NORMAL) {
                if (rows[r].init != OKTO_INIT_KAIMING && (x < rows[r].lo - 1e-7 || x > rows[r].hi + 1e-7))
                    fail_msg("%s: %g outside [%g, %g]", okto_init_name(rows[r].init), x,
                             rows[r].lo, rows[r].hi);
            }
            sum += x, sq += x * x;
        }
        double mean = sum / 20000, sd = sqrt(sq / 20000 - mean * mean);
        if (fabs(sd - rows[r].sd) > 0.05 * rows[r].sd + 1e-9)
            fail_msg("%s: standard deviation %g, expected %g", okto_init_name(rows[r].init), sd,
                     rows[r].sd);
        free(vals[0]);
        free(vals[1]);
    }
}

static void lr_schedule(void **state)
{
    (void)state;
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 10, 110, 0), 0.1f, 1e-6);
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 10, 110, 9), 1.0f, 1e-6);
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 10, 110, 10), 1.0f, 1e-6);
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 10, 110, 60), 0.55f, 1e-6);
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 10, 110, 110), 0.1f, 1e-6);
    assert_float_equal(okto_lr_schedule(1.0f, 0.1f, 0, 0, 5), 1.0f, 1e-6);
}

static void refusals(void **state)
{
    (void)state;
    okto_nn *nn;
    okto_layer *l;
    int idx;
    TU_OK(okto_nn_create(ctx, OKTO_F32, 1, &nn));
    assert_int_equal(okto_nn_linear(nn, "a", 0, 3, 1, OKTO_ACT_NONE, &l), OKTO_EINVAL);
    assert_null(l);
    assert_int_equal(okto_nn_linear(nn, "a", 3, 3, 1, 99, &l), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "act 99"));
    assert_int_equal(okto_nn_attention_block(nn, "at", 10, 3, 1, &l), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "heads >= 1 must divide dim"));
    assert_int_equal(okto_nn_param_count(nn), 0);
    TU_OK(okto_nn_linear(nn, "a", 3, 4, 1, OKTO_MAP_RELU, &l));
    okto_layer *dup;
    assert_int_equal(okto_nn_linear(nn, "a", 3, 4, 1, OKTO_ACT_NONE, &dup), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "\"a.weight\" exists"));
    assert_null(dup);
    assert_int_equal(okto_nn_param_count(nn), 2);
    okto_tensor *t;
    assert_int_equal(okto_nn_param_at(nn, 0, NULL, &t, NULL), OKTO_ESTATE);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    okto_tensor *x = tu_tensor(ctx, 2, 5, NULL), *y;
    assert_int_equal(okto_layer_forward(g, l, x, &y), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "takes [..., 3] of f32; x is f32[2,5]"));
    assert_int_equal(okto_nn_param(nn, "late", 1, (size_t[]){2}, OKTO_INIT_ZEROS, 0, 1, 1, 0,
                                   &idx),
                     OKTO_ESTATE);
    assert_non_null(strstr(okto_last_error(ctx), "allocated"));
    okto_tensor *lg;
    assert_int_equal(okto_nn_forward(g, nn, x, &lg), OKTO_ESTATE);
    assert_non_null(strstr(okto_last_error(ctx), "has no model"));
    okto_optim o = okto_optim_default(OKTO_OPTIM_ADAMW);
    o.beta1 = 1.0f;
    assert_int_equal(okto_nn_update(g, nn, &o), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "betas in [0, 1)"));
    assert_int_equal(okto_tensor_destroy(x), OKTO_OK);
    TU_OK(okto_graph_destroy(g));
    TU_OK(okto_nn_destroy(nn));
    /* a model of impossible shape leaves the nn empty */
    TU_OK(okto_nn_create(ctx, OKTO_F32, 1, &nn));
    okto_model_config c = okto_model_default(OKTO_MODEL_CNN);
    c.layers = 5;
    assert_int_equal(okto_nn_model(nn, &c), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "too many conv blocks"));
    assert_int_equal(okto_nn_param_count(nn), 0);
    c.layers = 2;
    TU_OK(okto_nn_model(nn, &c));
    TU_OK(okto_nn_destroy(nn));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mlp_matches_reference),
        cmocka_unit_test(cnn_matches_reference),
        cmocka_unit_test(gpt_matches_reference),
        cmocka_unit_test(micro_batches_match_the_batch),
        cmocka_unit_test(optimizers_match_reference),
        cmocka_unit_test(initialisation),
        cmocka_unit_test(lr_schedule),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
