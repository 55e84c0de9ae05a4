/* tools/okto-conform.c: runs every op of the conformance table on seeded inputs and writes the
 * inputs, the outputs and the gradients to one safetensors file, for tools/torch-conformance.py
 * to compare with PyTorch on the CPU (okto itself never depends on torch).
 *
 *     okto-conform OUT.safetensors | --run-only | --list
 *
 * Each case names an op with odd shapes (some inputs strided: a transposed view of a stored
 * tensor). For case C the file holds C.in0.. (the inputs as the op saw them, logically), C.out
 * (the op's main output) and, when the case has float inputs, C.r (a random cotangent) and
 * C.grad0.. (okto_backward of sum(out * r) with respect to each float input, in input order).
 * The metadata key "cases" lists the case names; "C" holds the case's attributes (what the
 * Python side needs to call the same op: flags, strides, paddings) as a short string.
 * --run-only runs every case and writes nothing (the test suite's check that each records and
 * runs, also from a read-only folder such as the GPU kit). */
#include <okto/okto.h>

#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_IN = 4 };

enum init { INIT_NORMAL, INIT_POSITIVE, INIT_AWAY, INIT_LABELS, INIT_IDS };

typedef struct input {
    int rank;
    size_t shape[4];
    enum init init;
    int classes;    /* INIT_LABELS / INIT_IDS: values in [0, classes) */
    int transposed; /* stored with its last two dimensions swapped, passed as a view */
} input;

typedef struct conf_case conf_case;
typedef okto_status (*record_fn)(okto_graph *g, okto_tensor *out, okto_tensor **in,
                                 const conf_case *c);

struct conf_case {
    const char *name;
    const char *attrs; /* for the Python side: op name and its arguments */
    int nin;
    input in[MAX_IN];
    int out_rank;
    size_t out_shape[4];
    okto_dtype out_dtype;
    record_fn record;
    int iarg[8];
    float farg;
};

/* ---- the ops, one record function per op family ---------------------------------------- */
static okto_status rec_matmul(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_matmul(g, o, in[0], in[1], (unsigned)c->iarg[0]);
}
static okto_status rec_map(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_map(g, o, in[0], (okto_map_op)c->iarg[0]);
}
static okto_status rec_zip(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_zip(g, o, in[0], in[1], (okto_zip_op)c->iarg[0]);
}
static okto_status rec_reduce(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_reduce(g, o, in[0], (okto_reduce_op)c->iarg[0], c->iarg[1]);
}
static okto_status rec_softmax(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return c->iarg[0] ? okto_log_softmax(g, o, in[0]) : okto_softmax(g, o, in[0]);
}
static okto_status rec_layernorm(okto_graph *g, okto_tensor *o, okto_tensor **in,
                                 const conf_case *c)
{
    return okto_layernorm(g, o, NULL, NULL, in[0], in[1], in[2], c->farg);
}
static okto_status rec_rmsnorm(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_rmsnorm(g, o, NULL, in[0], in[1], c->farg);
}
static okto_status rec_xent(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    return okto_cross_entropy(g, o, NULL, in[0], in[1], c->iarg[0]);
}
static okto_status rec_embedding(okto_graph *g, okto_tensor *o, okto_tensor **in,
                                 const conf_case *c)
{
    (void)c;
    return okto_embedding(g, o, in[0], in[1]);
}
static okto_status rec_attention(okto_graph *g, okto_tensor *o, okto_tensor **in,
                                 const conf_case *c)
{
    return okto_attention(g, o, NULL, in[0], in[1], in[2], 0.0f, c->iarg[0]);
}
static okto_status rec_conv(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    const int *a = c->iarg;
    return okto_conv2d(g, o, in[0], in[1], in[2], a[0], a[1], a[2], a[3], a[4], a[5]);
}
static okto_status rec_maxpool(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    const int *a = c->iarg;
    return okto_max_pool2d(g, o, NULL, in[0], a[0], a[1], a[2], a[3], a[4], a[5]);
}
static okto_status rec_avgpool(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    const int *a = c->iarg;
    return okto_avg_pool2d(g, o, in[0], a[0], a[1], a[2], a[3], a[4], a[5]);
}
static okto_status rec_gap(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    (void)c;
    return okto_global_avg_pool2d(g, o, in[0]);
}
static okto_status rec_argmax(okto_graph *g, okto_tensor *o, okto_tensor **in, const conf_case *c)
{
    (void)c;
    return okto_argmax(g, o, in[0]);
}

/* ---- the table ---------------------------------------------------------------------------- */
#define IN2(a, b, init) {2, {a, b}, init, 0, 0}
#define IN2T(a, b, init) {2, {a, b}, init, 0, 1}
#define IN1(a, init) {1, {a}, init, 0, 0}
#define IN3(a, b, c, init) {3, {a, b, c}, init, 0, 0}
#define IN4(a, b, c, d, init) {4, {a, b, c, d}, init, 0, 0}
#define MAPCASE(op, init)                                                                      \
    {"map_" #op, "map " #op, 1, {IN2T(7, 13, init)}, 2, {7, 13}, OKTO_F32, rec_map,             \
     {OKTO_MAP_##op}, 0}
#define ZIPCASE(op, init)                                                                      \
    {"zip_" #op, "zip " #op, 2, {IN2(7, 13, INIT_NORMAL), IN2(1, 13, init)}, 2, {7, 13},       \
     OKTO_F32, rec_zip, {OKTO_ZIP_##op}, 0}

static const conf_case cases[] = {
    {"matmul", "matmul 0", 2, {IN2(37, 19, INIT_NORMAL), IN2(19, 23, INIT_NORMAL)}, 2, {37, 23},
     OKTO_F32, rec_matmul, {0}, 0},
    {"matmul_ta_tb", "matmul 3", 2, {IN2(19, 37, INIT_NORMAL), IN2(23, 19, INIT_NORMAL)}, 2,
     {37, 23}, OKTO_F32, rec_matmul, {OKTO_TRANS_A | OKTO_TRANS_B}, 0},
    {"matmul_strided", "matmul 0", 2, {IN2T(37, 19, INIT_NORMAL), IN2(19, 23, INIT_NORMAL)}, 2,
     {37, 23}, OKTO_F32, rec_matmul, {0}, 0},
    {"matmul_batched", "matmul 0", 2, {IN3(3, 13, 7, INIT_NORMAL), IN2(7, 5, INIT_NORMAL)}, 3,
     {3, 13, 5}, OKTO_F32, rec_matmul, {0}, 0},
    MAPCASE(RELU, INIT_AWAY), MAPCASE(GELU_TANH, INIT_NORMAL), MAPCASE(GELU_ERF, INIT_NORMAL),
    MAPCASE(SILU, INIT_NORMAL), MAPCASE(SIGMOID, INIT_NORMAL), MAPCASE(TANH, INIT_NORMAL),
    MAPCASE(EXP, INIT_NORMAL), MAPCASE(LOG, INIT_POSITIVE), MAPCASE(NEG, INIT_NORMAL),
    MAPCASE(SQRT, INIT_POSITIVE), MAPCASE(ABS, INIT_AWAY), MAPCASE(SQUARE, INIT_NORMAL),
    MAPCASE(RSQRT, INIT_POSITIVE),
    ZIPCASE(ADD, INIT_NORMAL), ZIPCASE(SUB, INIT_NORMAL), ZIPCASE(MUL, INIT_NORMAL),
    ZIPCASE(DIV, INIT_AWAY), ZIPCASE(MAX, INIT_NORMAL), ZIPCASE(MIN, INIT_NORMAL),
    {"reduce_sum_axis1", "reduce sum 1", 1, {IN3(7, 13, 5, INIT_NORMAL)}, 3, {7, 1, 5}, OKTO_F32,
     rec_reduce, {OKTO_REDUCE_SUM, 1}, 0},
    {"reduce_mean_last", "reduce mean -1", 1, {IN3(7, 13, 5, INIT_NORMAL)}, 3, {7, 13, 1},
     OKTO_F32, rec_reduce, {OKTO_REDUCE_MEAN, -1}, 0},
    {"reduce_max_axis0", "reduce max 0", 1, {IN3(7, 13, 5, INIT_NORMAL)}, 3, {1, 13, 5},
     OKTO_F32, rec_reduce, {OKTO_REDUCE_MAX, 0}, 0},
    {"softmax", "softmax", 1, {IN2(9, 31, INIT_NORMAL)}, 2, {9, 31}, OKTO_F32, rec_softmax, {0},
     0},
    {"log_softmax", "log_softmax", 1, {IN2T(9, 31, INIT_NORMAL)}, 2, {9, 31}, OKTO_F32,
     rec_softmax, {1}, 0},
    {"layernorm", "layernorm 1e-5", 3,
     {IN2(6, 33, INIT_NORMAL), IN1(33, INIT_NORMAL), IN1(33, INIT_NORMAL)}, 2, {6, 33},
     OKTO_F32, rec_layernorm, {0}, 1e-5f},
    {"rmsnorm", "rmsnorm 1e-5", 2, {IN2(6, 33, INIT_NORMAL), IN1(33, INIT_NORMAL)}, 2, {6, 33},
     OKTO_F32, rec_rmsnorm, {0}, 1e-5f},
    {"cross_entropy", "cross_entropy -100", 2,
     {IN2(17, 11, INIT_NORMAL), {1, {17}, INIT_LABELS, 11, 0}}, 1, {1}, OKTO_F32, rec_xent,
     {-100}, 0},
    {"embedding", "embedding", 2, {IN2(29, 12, INIT_NORMAL), {2, {5, 7}, INIT_IDS, 29, 0}}, 3,
     {5, 7, 12}, OKTO_F32, rec_embedding, {0}, 0},
    {"attention", "attention 0", 3,
     {IN4(2, 3, 17, 16, INIT_NORMAL), IN4(2, 3, 19, 16, INIT_NORMAL),
      IN4(2, 3, 19, 16, INIT_NORMAL)},
     4, {2, 3, 17, 16}, OKTO_F32, rec_attention, {0}, 0},
    {"attention_causal", "attention 1", 3,
     {IN4(2, 3, 17, 16, INIT_NORMAL), IN4(2, 3, 17, 16, INIT_NORMAL),
      IN4(2, 3, 17, 16, INIT_NORMAL)},
     4, {2, 3, 17, 16}, OKTO_F32, rec_attention, {1}, 0},
    {"conv2d", "conv2d 2 2 1 1 1 1", 3,
     {IN4(2, 3, 9, 11, INIT_NORMAL), IN4(5, 3, 3, 3, INIT_NORMAL), IN1(5, INIT_NORMAL)}, 4,
     {2, 5, 5, 6}, OKTO_F32, rec_conv, {2, 2, 1, 1, 1, 1}, 0},
    {"conv2d_dilated", "conv2d 1 1 2 2 2 2", 3,
     {IN4(2, 3, 9, 11, INIT_NORMAL), IN4(4, 3, 3, 3, INIT_NORMAL), IN1(4, INIT_NORMAL)}, 4,
     {2, 4, 9, 11}, OKTO_F32, rec_conv, {1, 1, 2, 2, 2, 2}, 0},
    {"max_pool2d", "max_pool2d 3 3 2 2 1 1", 1, {IN4(2, 3, 9, 11, INIT_NORMAL)}, 4, {2, 3, 5, 6},
     OKTO_F32, rec_maxpool, {3, 3, 2, 2, 1, 1}, 0},
    {"avg_pool2d", "avg_pool2d 3 3 2 2 1 1", 1, {IN4(2, 3, 9, 11, INIT_NORMAL)}, 4,
     {2, 3, 5, 6}, OKTO_F32, rec_avgpool, {3, 3, 2, 2, 1, 1}, 0},
    {"global_avg_pool2d", "global_avg_pool2d", 1, {IN4(2, 3, 9, 11, INIT_NORMAL)}, 4,
     {2, 3, 1, 1}, OKTO_F32, rec_gap, {0}, 0},
    {"argmax", "argmax", 1, {IN2(9, 31, INIT_NORMAL)}, 1, {9}, OKTO_I32, rec_argmax, {0}, 0},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ---- host side ---------------------------------------------------------------------------- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float normal(void)
{
    double u = uniform() + 1e-12, v = uniform();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static size_t numel(int rank, const size_t *shape)
{
    size_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

static void fill(const input *in, void *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (in->init) {
        case INIT_NORMAL: ((float *)data)[i] = normal(); break;
        case INIT_POSITIVE: ((float *)data)[i] = 0.1f + 2.0f * (float)uniform(); break;
        case INIT_AWAY: { /* |x| >= 0.2: away from kinks and poles, so the references agree */
            float v = 0.2f + 1.8f * (float)uniform();
            ((float *)data)[i] = uniform() < 0.5 ? -v : v;
            break;
        }
        case INIT_LABELS:
        case INIT_IDS: ((int32_t *)data)[i] = (int32_t)(uniform() * in->classes); break;
        }
    }
}

typedef struct blob {
    char name[96];
    otu_dtype dt;
    int rank;
    int64_t shape[4];
    void *data;
} blob;

static blob *blobs;
static int nblobs;

static void *add_blob(const char *case_name, const char *what, otu_dtype dt, int rank,
                      const size_t *shape)
{
    blobs = realloc(blobs, sizeof *blobs * (size_t)(nblobs + 1));
    if (!blobs) {
        fprintf(stderr, "okto-conform: out of memory\n");
        exit(1);
    }
    blob *b = &blobs[nblobs++];
    snprintf(b->name, sizeof b->name, "%s.%s", case_name, what);
    b->dt = dt;
    b->rank = rank;
    for (int d = 0; d < rank; d++)
        b->shape[d] = (int64_t)shape[d];
    b->data = calloc(numel(rank, shape), 4);
    if (!b->data) {
        fprintf(stderr, "okto-conform: out of memory\n");
        exit(1);
    }
    return b->data;
}

#define TRY(call)                                                                              \
    do {                                                                                       \
        okto_status s_ = (call);                                                               \
        if (s_ != OKTO_OK) {                                                                   \
            fprintf(stderr, "okto-conform: %s: %s: %s: %s\n", c->name, #call,                   \
                    okto_status_str(s_), okto_last_error(ctx));                                \
            goto out;                                                                          \
        }                                                                                      \
    } while (0)

static int run_case(okto_context *ctx, const conf_case *c)
{
    int ok = 0;
    okto_graph *g = NULL;
    okto_tensor *store[MAX_IN] = {0}, *view[MAX_IN] = {0}, *in[MAX_IN] = {0};
    okto_tensor *out = NULL, *r = NULL, *prod = NULL, *loss = NULL, *grads[MAX_IN] = {0};
    const okto_tensor *params[MAX_IN];
    okto_tensor *pgrads[MAX_IN];
    int nparams = 0, param_of[MAX_IN];

    TRY(okto_graph_create(ctx, &g));
    for (int i = 0; i < c->nin; i++) {
        const input *ip = &c->in[i];
        int isint = ip->init == INIT_LABELS || ip->init == INIT_IDS;
        size_t n = numel(ip->rank, ip->shape), sshape[4];
        memcpy(sshape, ip->shape, sizeof sshape);
        if (ip->transposed) {
            sshape[ip->rank - 2] = ip->shape[ip->rank - 1];
            sshape[ip->rank - 1] = ip->shape[ip->rank - 2];
        }
        char what[16];
        snprintf(what, sizeof what, "in%d", i);
        void *logical = add_blob(c->name, what, isint ? OTU_I32 : OTU_F32, ip->rank, ip->shape);
        void *stored = malloc(n * 4);
        if (!stored)
            goto out;
        fill(ip, stored, n);
        if (ip->transposed) { /* logical[.., a, b] = stored[.., b, a] */
            size_t rows = sshape[ip->rank - 2], cols = sshape[ip->rank - 1];
            for (size_t m = 0; m < n / (rows * cols); m++)
                for (size_t a = 0; a < cols; a++)
                    for (size_t b = 0; b < rows; b++)
                        ((float *)logical)[m * rows * cols + a * rows + b] =
                            ((float *)stored)[m * rows * cols + b * cols + a];
        } else {
            memcpy(logical, stored, n * 4);
        }
        okto_status s = okto_tensor_create(ctx, isint ? OKTO_I32 : OKTO_F32, ip->rank, sshape,
                                           &store[i]);
        if (s == OKTO_OK)
            s = okto_tensor_write(store[i], stored);
        free(stored);
        TRY(s);
        in[i] = store[i];
        if (ip->transposed) {
            TRY(okto_tensor_transpose(store[i], ip->rank - 2, ip->rank - 1, &view[i]));
            in[i] = view[i];
        }
        if (!isint) {
            TRY(okto_tensor_set_requires_grad(store[i], 1));
            TRY(okto_tensor_create(ctx, OKTO_F32, ip->rank, ip->shape, &grads[i]));
            param_of[nparams] = i;
            params[nparams] = in[i];
            pgrads[nparams++] = grads[i];
        }
    }
    TRY(okto_tensor_create(ctx, c->out_dtype, c->out_rank, c->out_shape, &out));
    TRY(c->record(g, out, in, c));
    if (nparams > 0 && c->out_dtype == OKTO_F32) {
        const size_t one = 1;
        float *rh = add_blob(c->name, "r", OTU_F32, c->out_rank, c->out_shape);
        input rin = {0};
        fill(&rin, rh, numel(c->out_rank, c->out_shape));
        TRY(okto_tensor_create(ctx, OKTO_F32, c->out_rank, c->out_shape, &r));
        TRY(okto_tensor_write_f32(r, rh));
        TRY(okto_graph_tensor(g, OKTO_F32, c->out_rank, c->out_shape, &prod));
        TRY(okto_tensor_create(ctx, OKTO_F32, 1, &one, &loss));
        TRY(okto_zip(g, prod, out, r, OKTO_ZIP_MUL));
        TRY(okto_reduce_all(g, loss, prod, OKTO_REDUCE_SUM));
        TRY(okto_backward(g, loss, nparams, params, pgrads, 0));
    } else {
        nparams = 0;
    }
    TRY(okto_graph_run(g));
    void *oh = add_blob(c->name, "out", c->out_dtype == OKTO_I32 ? OTU_I32 : OTU_F32,
                        c->out_rank, c->out_shape);
    TRY(okto_tensor_read(out, oh));
    for (int p = 0; p < nparams; p++) {
        const input *ip = &c->in[param_of[p]];
        char what[16];
        snprintf(what, sizeof what, "grad%d", param_of[p]);
        TRY(okto_tensor_read(grads[param_of[p]],
                             add_blob(c->name, what, OTU_F32, ip->rank, ip->shape)));
    }
    ok = 1;
out:
    okto_graph_destroy(g);
    for (int i = 0; i < MAX_IN; i++) {
        okto_tensor_destroy(view[i]);
        okto_tensor_destroy(store[i]);
        okto_tensor_destroy(grads[i]);
    }
    okto_tensor_destroy(out);
    okto_tensor_destroy(r);
    okto_tensor_destroy(loss);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < NCASES; i++)
            printf("%s\t%s\n", cases[i].name, cases[i].attrs);
        return 0;
    }
    int write = !(argc == 2 && strcmp(argv[1], "--run-only") == 0);
    if (argc != 2 || (write && argv[1][0] == '-')) {
        fprintf(stderr, "usage: okto-conform OUT.safetensors | --run-only | --list\n");
        return 2;
    }
    okto_context *ctx;
    if (okto_context_create(NULL, &ctx) != OKTO_OK) {
        fprintf(stderr, "okto-conform: %s\n", okto_last_error(NULL));
        return 1;
    }
    int failed = 0;
    char names[4096] = "";
    for (int i = 0; i < NCASES; i++) {
        if (!run_case(ctx, &cases[i])) {
            failed++;
            continue;
        }
        strncat(names, cases[i].name, sizeof names - strlen(names) - 2);
        strncat(names, ",", sizeof names - strlen(names) - 1);
    }
    okto_context_destroy(ctx);

    otu_st_writer *w = NULL;
    char err[256];
    int rc = write ? otu_st_writer_create(&w) : 0;
    for (int i = 0; write && rc == 0 && i < nblobs; i++)
        rc = otu_st_writer_add(w, blobs[i].name, blobs[i].dt, blobs[i].rank, blobs[i].shape,
                               blobs[i].data, err, sizeof err);
    if (write && rc == 0)
        rc = otu_st_writer_meta(w, "cases", names, err, sizeof err);
    for (int i = 0; write && rc == 0 && i < NCASES; i++)
        rc = otu_st_writer_meta(w, cases[i].name, cases[i].attrs, err, sizeof err);
    if (write && rc == 0)
        rc = otu_st_writer_write(w, argv[1], err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "okto-conform: %s\n", err);
    otu_st_writer_destroy(w);
    for (int i = 0; i < nblobs; i++)
        free(blobs[i].data);
    free(blobs);
    printf("okto-conform: %d cases %s%s, %d failed\n", NCASES - failed,
           write ? "written to " : "run", write ? argv[1] : "", failed);
    return rc != 0 || failed ? 1 : 0;
}
