/* tools/okto-train.c: trains an MLP with SGD on okto, one graph per training step.
 *
 * A step is recorded once and replayed: per micro-batch (a row range of the batch, taken with
 * okto_tensor_view) it uploads the rows, runs the forward pass (matmul, bias add, ReLU), the
 * fused softmax cross-entropy and the backward pass, accumulating the gradients on the device;
 * then the SGD update. Because every micro-batch touches only its own rows of the activation
 * tensors, okto's region-aware dependencies let micro-batch i's backward run while micro-batch
 * i+1's forward runs on another lane; only the gradient accumulators chain the micro-batches.
 *
 * The batch is uploaded from host staging buffers that the host refills before each launch
 * (okto_upload), rather than keeping the data set on the device and copying rows: a recorded
 * copy has fixed source rows, so shuffling each epoch would need a graph per batch, while the
 * uploads are a few KiB per step and, one per micro-batch into its view, let micro-batch 0
 * compute while the others are still in flight.
 *
 * Exit status: 0 success; 1 an okto failure, --check above its tolerance, or --compare losses
 * that disagree; 2 bad arguments or data. */
#include <okto/okto.h>

#include "train_data.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WIDTHS 16
#define CHECK_TOL 1e-3   /* --check: normwise relative error of each gradient and the loss */
#define WARM_STEPS 9     /* heft's trial takes a graph's first 9 runs (lib/launch.c) */
#define COMPARE_TOL 1e-4 /* --compare: relative difference of any step's loss */

/* ---- options -------------------------------------------------------------------------------- */

typedef struct opts {
    int w[MAX_WIDTHS], nl; /* widths: input first, classes last; nl = 0 until known */
    int layers_set;
    size_t batch;
    int micro, epochs;
    long steps; /* 0 = epochs * steps per epoch */
    double lr;
    unsigned long long seed;
    const char *data;
    int classes; /* 0 = from --layers, the CSV labels, or 2 */
    size_t samples;
    int lanes; /* 0 = okto's automatic rule */
    okto_sched sched;
    int check, json, compare;
    const char *trace, *dump;
} opts;

static const char *usage_text =
    "usage: okto-train [options]\n"
    "Trains a multilayer perceptron with SGD on okto. Each training step is one okto graph,\n"
    "recorded once and replayed; the batch is split into micro-batches that pipeline across\n"
    "lanes.\n"
    "\n"
    "  --layers W0,W1,...,WN  widths, input first, classes last   (default 2,64,64,2)\n"
    "  --batch N              rows per step                        (default 256)\n"
    "  --micro M              micro-batches per step, 1..batch     (default 4)\n"
    "  --epochs E             passes over the data                 (default 10)\n"
    "  --steps S              stop after S steps in all (default: epochs x steps per epoch)\n"
    "  --lr X                 SGD learning rate                    (default 0.5)\n"
    "  --seed S               seeds the data, the weights and the shuffling (default 1)\n"
    "  --data SET             spiral | blobs | PATH.csv            (default spiral)\n"
    "                         CSV: one sample per line, the features then an integer class\n"
    "                         label; '#' lines and a header line are skipped\n"
    "  --classes K            classes (default: last width, the CSV's labels, or 2)\n"
    "  --samples N            size of the built-in data sets       (default 2048)\n"
    "  --sched POLICY         sequential | round-robin | heft      (default: the context's,\n"
    "                         heft unless OKTO_SCHED says otherwise)\n"
    "  --lanes N              compute lanes (default: okto's automatic rule, or OKTO_LANES)\n"
    "  --check                run one step and compare its gradients and loss with a host\n"
    "                         double-precision reference; exit 1 if the normwise relative\n"
    "                         error exceeds 1e-3\n"
    "  --compare              train again under the sequential policy from the same weights\n"
    "                         and batches; print the per-step speedup and whether the losses\n"
    "                         agree (relative 1e-4); exit 1 if they do not\n"
    "  --json                 print the whole run as one JSON document instead of text\n"
    "  --trace PATH           write a Chrome/Perfetto trace of the last step\n"
    "  --dump-weights PATH    write the trained weights and biases as text\n"
    "  --help                 this text\n"
    "\n"
    "Exit status: 0 success, 1 failure (okto error, --check or --compare mismatch), 2 bad\n"
    "arguments or data.\n";

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("okto-train: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(okto-train --help lists the options)\n", stderr);
    return 2;
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < lo || v > hi)
        return usage_error("%s expects an integer in %ld..%ld, not \"%s\"", opt, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_layers(opts *o, const char *s)
{
    const char *p = s;
    o->nl = 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno == ERANGE || v < 1 || v > 65536 || (*end && *end != ','))
            return usage_error("--layers expects comma-separated widths in 1..65536 "
                               "(e.g. 2,64,64,2), not \"%s\"",
                               s);
        if (o->nl == MAX_WIDTHS)
            return usage_error("--layers: at most %d widths", MAX_WIDTHS);
        o->w[o->nl++] = (int)v;
        if (!*end)
            break;
        p = end + 1;
    }
    if (o->nl < 2)
        return usage_error("--layers needs at least 2 widths (input and classes), not \"%s\"", s);
    o->layers_set = 1;
    return 0;
}

/* 0 = go on, 2 = bad arguments, -1 = --help shown. */
static int parse_args(int argc, char **argv, opts *o)
{
    static const char *valued[] = {"--layers", "--batch", "--micro", "--epochs",      "--steps",
                                   "--lr",     "--seed",  "--data",  "--classes",     "--samples",
                                   "--sched",  "--lanes", "--trace", "--dump-weights"};
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i], name[64];
        const char *val = NULL;
        if (strncmp(arg, "--", 2) != 0)
            return usage_error("unexpected argument \"%s\"", arg);
        char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof name)
            return usage_error("unknown option \"%s\"", arg);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        int takes = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            takes |= strcmp(name, valued[k]) == 0;
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage_error("%s needs a value", name);
        } else if (eq) {
            return usage_error("%s takes no value", name);
        }
        long v;
        int rc = 0;
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(name, "--layers")) {
            rc = parse_layers(o, val);
        } else if (!strcmp(name, "--batch")) {
            if (!(rc = parse_long(name, val, 1, 1L << 24, &v)))
                o->batch = (size_t)v;
        } else if (!strcmp(name, "--micro")) {
            if (!(rc = parse_long(name, val, 1, 4096, &v)))
                o->micro = (int)v;
        } else if (!strcmp(name, "--epochs")) {
            if (!(rc = parse_long(name, val, 1, 1000000, &v)))
                o->epochs = (int)v;
        } else if (!strcmp(name, "--steps")) {
            if (!(rc = parse_long(name, val, 1, 1L << 30, &v)))
                o->steps = v;
        } else if (!strcmp(name, "--seed")) {
            if (!(rc = parse_long(name, val, 0, 0x7fffffffL, &v)))
                o->seed = (unsigned long long)v;
        } else if (!strcmp(name, "--classes")) {
            if (!(rc = parse_long(name, val, 2, 65536, &v)))
                o->classes = (int)v;
        } else if (!strcmp(name, "--samples")) {
            if (!(rc = parse_long(name, val, 1, 1L << 24, &v)))
                o->samples = (size_t)v;
        } else if (!strcmp(name, "--lanes")) {
            if (!(rc = parse_long(name, val, 1, OKTO_MAX_COMPUTE_LANES, &v)))
                o->lanes = (int)v;
        } else if (!strcmp(name, "--lr")) {
            char *end;
            errno = 0;
            double d = strtod(val, &end);
            if (end == val || *end || errno == ERANGE || !isfinite(d) || d <= 0 || d > 1e6)
                return usage_error("--lr expects a positive number, not \"%s\"", val);
            o->lr = d;
        } else if (!strcmp(name, "--data")) {
            o->data = val;
        } else if (!strcmp(name, "--sched")) {
            if (!strcmp(val, "sequential"))
                o->sched = OKTO_SCHED_SEQUENTIAL;
            else if (!strcmp(val, "round-robin"))
                o->sched = OKTO_SCHED_ROUND_ROBIN;
            else if (!strcmp(val, "heft"))
                o->sched = OKTO_SCHED_HEFT;
            else
                return usage_error("--sched expects sequential, round-robin or heft, not \"%s\"",
                                   val);
        } else if (!strcmp(name, "--trace")) {
            o->trace = val;
        } else if (!strcmp(name, "--dump-weights")) {
            o->dump = val;
        } else if (!strcmp(name, "--check")) {
            o->check = 1;
        } else if (!strcmp(name, "--compare")) {
            o->compare = 1;
        } else if (!strcmp(name, "--json")) {
            o->json = 1;
        } else {
            return usage_error("unknown option \"%s\"", arg);
        }
        if (rc)
            return rc;
    }
    if ((size_t)o->micro > o->batch)
        return usage_error("--micro %d is more than --batch %zu: every micro-batch needs a row",
                           o->micro, o->batch);
    if (o->check && o->compare)
        return usage_error("--check and --compare do not go together");
    return 0;
}

/* Loads or makes the data and settles the widths and the class count; 0 or 2. */
static int load_data(opts *o, train_data *d)
{
    int classes = o->classes ? o->classes : o->layers_set ? o->w[o->nl - 1] : 0;
    const char *set = o->data;
    if (!strcmp(set, "spiral") || !strcmp(set, "blobs")) {
        if (!classes)
            classes = 2;
        if (classes < 2)
            return usage_error("--layers: the last width is the class count and must be >= 2");
        if (o->samples < (size_t)classes)
            return usage_error("--samples %zu is fewer than the %d classes", o->samples, classes);
        int features = o->layers_set ? o->w[0] : 2;
        if (!strcmp(set, "spiral")) {
            if (features != 2)
                return usage_error("--data spiral has 2 features but --layers starts with %d",
                                   features);
            if (train_data_spiral(d, o->samples, classes, o->seed) != 0)
                return usage_error("out of memory for %zu samples", o->samples);
        } else if (train_data_blobs(d, o->samples, (size_t)features, classes, o->seed) != 0) {
            return usage_error("out of memory for %zu samples", o->samples);
        }
    } else {
        char err[512];
        if (train_data_csv(d, set, classes, err, sizeof err) != 0) {
            fprintf(stderr, "okto-train: %s\n", err);
            return 2;
        }
        classes = d->classes;
        if (classes < 2) {
            train_data_free(d); /* main frees the data only after a successful load */
            return usage_error("%s: %d class; training needs at least 2", set, classes);
        }
    }
    if (!o->layers_set) {
        o->nl = 4;
        o->w[0] = (int)d->features;
        o->w[1] = o->w[2] = 64;
        o->w[3] = classes;
    }
    if ((size_t)o->w[0] != d->features) {
        size_t features = d->features;
        train_data_free(d);
        return usage_error("--layers starts with %d but the data has %zu features", o->w[0],
                           features);
    }
    if (o->w[o->nl - 1] != classes) {
        train_data_free(d);
        return usage_error("--layers ends with %d but there are %d classes", o->w[o->nl - 1],
                           classes);
    }
    return 0;
}

/* ---- the device network and its step graph ---------------------------------------------- */

/* Layers are numbered 1..L (L = nl - 1); index 0 of the per-layer arrays is unused except
 * that the input X plays the part of A[0]. Per micro-batch i, v[i] is the view of rows
 * [r0[i], r0[i] + rn[i]) of a batch-sized tensor. */
typedef struct family {
    okto_tensor *t, **v;
} family;

typedef struct net {
    okto_context *ctx;
    okto_graph *g;
    int nl, L, m;
    const int *w;
    size_t B, *r0, *rn;
    family X, Y, loss; /* inputs, labels (B x 1), per-micro-batch losses (m x 1) */
    family Z[MAX_WIDTHS], P[MAX_WIDTHS]; /* x W, + b: P[L] are the logits */
    family A[MAX_WIDTHS];                /* ReLU(P), hidden layers */
    family G[MAX_WIDTHS];                /* d loss / d P, scaled to the whole batch's mean */
    family dA[MAX_WIDTHS];               /* d loss / d A, hidden layers */
    family dbp[MAX_WIDTHS];              /* bias gradient of micro-batch i (m x width) */
    okto_tensor *W[MAX_WIDTHS], *b[MAX_WIDTHS], *dW[MAX_WIDTHS], *db[MAX_WIDTHS];
    float *xh, *lossh, *logith; /* host staging: batch in, losses and logits out */
    int32_t *yh;                /* the batch's labels */
} net;

static int okto_fail(const net *n, const char *what, okto_status s)
{
    fprintf(stderr, "okto-train: %s: %s\n", what, okto_status_str(s));
    const char *detail = okto_last_error(n ? n->ctx : NULL);
    if (detail && *detail)
        fprintf(stderr, "okto-train:   %s\n", detail);
    return -1;
}

#define TRY(n, call)                                                                               \
    do {                                                                                           \
        okto_status s_ = (call);                                                                   \
        if (s_ != OKTO_OK)                                                                         \
            return okto_fail((n), #call, s_);                                                      \
    } while (0)

/* A batch-sized tensor (or, with rows_per == 1, one row per micro-batch) and its views. */
static int family_make_of(net *n, family *f, okto_dtype dt, size_t cols, int one_row_each)
{
    size_t rows = one_row_each ? (size_t)n->m : n->B;
    TRY(n, okto_tensor_create(n->ctx, dt, 2, (size_t[]){rows, cols}, &f->t));
    f->v = calloc((size_t)n->m, sizeof *f->v);
    if (!f->v)
        return okto_fail(n, "calloc", OKTO_ENOMEM);
    for (int i = 0; i < n->m; i++) {
        size_t r0 = one_row_each ? (size_t)i : n->r0[i], rn = one_row_each ? 1 : n->rn[i];
        TRY(n, okto_tensor_view(f->t, r0, rn, &f->v[i]));
    }
    return 0;
}

static int family_make(net *n, family *f, size_t cols, int one_row_each)
{
    return family_make_of(n, f, OKTO_F32, cols, one_row_each);
}

static void family_free(const net *n, family *f)
{
    if (f->v)
        for (int i = 0; i < n->m; i++)
            okto_tensor_destroy(f->v[i]);
    free(f->v);
    okto_tensor_destroy(f->t);
    memset(f, 0, sizeof *f);
}

static void net_free(net *n)
{
    okto_graph_destroy(n->g);
    family_free(n, &n->X);
    family_free(n, &n->Y);
    family_free(n, &n->loss);
    for (int l = 1; l <= n->L; l++) {
        family_free(n, &n->Z[l]);
        family_free(n, &n->P[l]);
        family_free(n, &n->A[l]);
        family_free(n, &n->G[l]);
        family_free(n, &n->dA[l]);
        family_free(n, &n->dbp[l]);
        okto_tensor_destroy(n->W[l]);
        okto_tensor_destroy(n->b[l]);
        okto_tensor_destroy(n->dW[l]);
        okto_tensor_destroy(n->db[l]);
    }
    free(n->r0);
    free(n->rn);
    free(n->xh);
    free(n->yh);
    free(n->lossh);
    free(n->logith);
    okto_context_destroy(n->ctx);
    memset(n, 0, sizeof *n);
}

/* Records one training step: see the top of this file. */
static int record_step(net *n, float lr)
{
    okto_graph *g = n->g;
    int L = n->L;
    for (int i = 0; i < n->m; i++) {
        size_t r0 = n->r0[i];
        TRY(n, okto_upload(g, n->X.v[i], n->xh + r0 * (size_t)n->w[0]));
        TRY(n, okto_upload(g, n->Y.v[i], n->yh + r0));
        /* forward */
        okto_tensor *in = n->X.v[i];
        for (int l = 1; l <= L; l++) {
            TRY(n, okto_matmul(g, n->Z[l].v[i], in, n->W[l], 0));
            TRY(n, okto_zip(g, n->P[l].v[i], n->Z[l].v[i], n->b[l], OKTO_ZIP_ADD));
            if (l < L) {
                TRY(n, okto_map(g, n->A[l].v[i], n->P[l].v[i], OKTO_MAP_RELU));
                in = n->A[l].v[i];
            }
        }
        /* loss; softmax_xent divides the gradient by this micro-batch's rows, the scale
         * makes it the whole batch's mean so that the micro-batches' sums are the gradient
         * of the unsplit batch */
        TRY(n, okto_softmax_xent(g, n->loss.v[i], n->G[L].v[i], n->P[L].v[i], n->Y.v[i]));
        if (n->m > 1)
            TRY(n, okto_scale(g, n->G[L].v[i], (float)((double)n->rn[i] / (double)n->B)));
        TRY(n, okto_download(g, n->logith + r0 * (size_t)n->w[L], n->P[L].v[i]));
        /* backward: micro-batch 0 writes the gradients, the others accumulate into them */
        for (int l = L; l >= 1; l--) {
            okto_tensor *gi = n->G[l].v[i], *ai = l > 1 ? n->A[l - 1].v[i] : n->X.v[i];
            TRY(n, okto_matmul(g, n->dW[l], ai, gi, OKTO_TRANS_A | (i ? OKTO_ACCUMULATE : 0)));
            if (i == 0) {
                TRY(n, okto_reduce(g, n->db[l], gi, OKTO_REDUCE_SUM, 0));
            } else {
                TRY(n, okto_reduce(g, n->dbp[l].v[i], gi, OKTO_REDUCE_SUM, 0));
                TRY(n, okto_axpy(g, n->db[l], 1.0f, n->dbp[l].v[i]));
            }
            if (l > 1) {
                TRY(n, okto_matmul(g, n->dA[l - 1].v[i], gi, n->W[l], OKTO_TRANS_B));
                TRY(n, okto_zip(g, n->G[l - 1].v[i], n->dA[l - 1].v[i], n->P[l - 1].v[i],
                                OKTO_ZIP_RELU_GRAD));
            }
        }
    }
    TRY(n, okto_download(g, n->lossh, n->loss.t));
    for (int l = 1; l <= L; l++) {
        TRY(n, okto_axpy(g, n->W[l], -lr, n->dW[l]));
        TRY(n, okto_axpy(g, n->b[l], -lr, n->db[l]));
    }
    return 0;
}

static int net_create(net *n, const opts *o)
{
    memset(n, 0, sizeof *n);
    okto_config cfg;
    okto_config_init(&cfg);
    if (o->lanes)
        cfg.compute_lanes = o->lanes;
    okto_status s = okto_context_create(&cfg, &n->ctx);
    if (s != OKTO_OK)
        return okto_fail(NULL, "okto_context_create", s);
    n->nl = o->nl;
    n->L = o->nl - 1;
    n->w = o->w;
    n->B = o->batch;
    n->m = o->micro;
    n->r0 = calloc((size_t)n->m, sizeof *n->r0);
    n->rn = calloc((size_t)n->m, sizeof *n->rn);
    size_t nc = (size_t)o->w[n->L];
    n->xh = calloc(n->B * (size_t)o->w[0], sizeof *n->xh);
    n->yh = calloc(n->B, sizeof *n->yh);
    n->lossh = calloc((size_t)n->m, sizeof *n->lossh);
    n->logith = calloc(n->B * nc, sizeof *n->logith);
    if (!n->r0 || !n->rn || !n->xh || !n->yh || !n->lossh || !n->logith)
        return okto_fail(n, "calloc", OKTO_ENOMEM);
    /* Micro-batch rows: as even as possible, the first B % m one row larger. */
    for (int i = 0, r = 0; i < n->m; i++) {
        n->rn[i] = n->B / (size_t)n->m + ((size_t)i < n->B % (size_t)n->m);
        n->r0[i] = (size_t)r;
        r += (int)n->rn[i];
    }
    if (family_make(n, &n->X, (size_t)o->w[0], 0) || family_make_of(n, &n->Y, OKTO_I32, 1, 0) ||
        family_make(n, &n->loss, 1, 1))
        return -1;
    for (int l = 1; l <= n->L; l++) {
        size_t wi = (size_t)o->w[l - 1], wo = (size_t)o->w[l];
        if (family_make(n, &n->Z[l], wo, 0) || family_make(n, &n->P[l], wo, 0) ||
            family_make(n, &n->G[l], wo, 0) || family_make(n, &n->dbp[l], wo, 1))
            return -1;
        if (l < n->L && (family_make(n, &n->A[l], wo, 0) || family_make(n, &n->dA[l], wo, 0)))
            return -1;
        TRY(n, okto_tensor_create_2d(n->ctx, wi, wo, &n->W[l]));
        TRY(n, okto_tensor_create_2d(n->ctx, 1, wo, &n->b[l]));
        TRY(n, okto_tensor_create_2d(n->ctx, wi, wo, &n->dW[l]));
        TRY(n, okto_tensor_create_2d(n->ctx, 1, wo, &n->db[l]));
    }
    TRY(n, okto_graph_create(n->ctx, &n->g));
    if (o->sched != OKTO_SCHED_AUTO)
        TRY(n, okto_graph_set_sched(n->g, o->sched));
    return record_step(n, (float)o->lr);
}

/* Host copies of the parameters, layer l at index l - 1 (the layout train_ref uses). */
typedef struct params {
    int L;
    float *W[MAX_WIDTHS], *b[MAX_WIDTHS];
} params;

static void params_free(params *p)
{
    for (int l = 0; l < p->L; l++) {
        free(p->W[l]);
        free(p->b[l]);
    }
    memset(p, 0, sizeof *p);
}

static int params_alloc(params *p, const int *w, int nl)
{
    memset(p, 0, sizeof *p);
    p->L = nl - 1;
    for (int l = 0; l < p->L; l++) {
        p->W[l] = calloc((size_t)w[l] * (size_t)w[l + 1], sizeof(float));
        p->b[l] = calloc((size_t)w[l + 1], sizeof(float));
        if (!p->W[l] || !p->b[l]) {
            params_free(p);
            return -1;
        }
    }
    return 0;
}

/* He initialisation: N(0, 2 / fan_in) weights, zero biases. */
static void params_init(params *p, const int *w, unsigned long long seed)
{
    train_rng r;
    train_rng_seed(&r, seed * 7919u + 17u);
    for (int l = 0; l < p->L; l++) {
        double sd = sqrt(2.0 / w[l]);
        for (size_t i = 0; i < (size_t)w[l] * (size_t)w[l + 1]; i++)
            p->W[l][i] = (float)(sd * train_rng_gauss(&r));
    }
}

static int params_to_device(net *n, const params *p)
{
    for (int l = 1; l <= n->L; l++) {
        TRY(n, okto_tensor_write(n->W[l], p->W[l - 1]));
        TRY(n, okto_tensor_write(n->b[l], p->b[l - 1]));
    }
    return 0;
}

static int params_from_device(net *n, params *p)
{
    for (int l = 1; l <= n->L; l++) {
        TRY(n, okto_tensor_read(n->W[l], p->W[l - 1]));
        TRY(n, okto_tensor_read(n->b[l], p->b[l - 1]));
    }
    return 0;
}

/* ---- training --------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct epoch_stats {
    long steps;
    double loss, accuracy, seconds, step_ms, span_ms, utilization;
} epoch_stats;

typedef struct run_result {
    okto_sched sched;
    long nsteps;
    double *step_loss, *step_ms; /* nsteps each */
    int nepochs;
    epoch_stats *ep;
    okto_report last; /* the report of the last step */
    okto_lane_report lane[OKTO_MAX_COMPUTE_LANES + OKTO_MAX_COPY_LANES]; /* and its lanes */
    double median_ms; /* of the steps after the warm-up (see WARM_STEPS) */
} run_result;

static void run_result_free(run_result *r)
{
    free(r->step_loss);
    free(r->step_ms);
    free(r->ep);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, long n)
{
    if (n <= 0)
        return 0.0;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c)
        return v[0];
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* Fills the staging buffers with rows idx[(first + k) % N], k < B. */
static void fill_batch(net *n, const train_data *d, const size_t *idx, size_t first)
{
    size_t f = d->features;
    for (size_t k = 0; k < n->B; k++) {
        size_t s = idx[(first + k) % d->n];
        memcpy(n->xh + k * f, d->x + s * f, f * sizeof *n->xh);
        n->yh[k] = (int32_t)d->y[s];
    }
}

static double step_loss_of(const net *n)
{
    double loss = 0.0;
    for (int i = 0; i < n->m; i++)
        loss += n->lossh[i] * (double)n->rn[i] / (double)n->B;
    return loss;
}

static size_t step_hits(const net *n)
{
    size_t hits = 0, nc = (size_t)n->w[n->L];
    for (size_t r = 0; r < n->B; r++) {
        const float *z = n->logith + r * nc;
        size_t arg = 0;
        for (size_t j = 1; j < nc; j++)
            if (z[j] > z[arg])
                arg = j;
        hits += (int32_t)arg == n->yh[r];
    }
    return hits;
}

static void print_epoch(const opts *o, int e, int epochs, const epoch_stats *s, okto_sched sched)
{
    if (o->json)
        return;
    printf("epoch %*d/%d  loss %.4f  acc %5.1f%%  %7.3f s  step %7.2f ms  util %3.0f%%  (%s)\n",
           epochs >= 10 ? 2 : 1, e, epochs, s->loss, 100.0 * s->accuracy, s->seconds, s->step_ms,
           100.0 * s->utilization, okto_sched_name(sched));
    fflush(stdout);
}

/* Trains for total steps from the weights on the device; batches come from a shuffle stream
 * seeded with o->seed, so two runs see the same batches. */
static int train(net *n, const opts *o, const train_data *d, long total, long per_epoch,
                 run_result *r)
{
    memset(r, 0, sizeof *r);
    r->nepochs = (int)((total + per_epoch - 1) / per_epoch);
    r->step_loss = calloc((size_t)total, sizeof *r->step_loss);
    r->step_ms = calloc((size_t)total, sizeof *r->step_ms);
    r->ep = calloc((size_t)r->nepochs, sizeof *r->ep);
    size_t *idx = malloc(d->n * sizeof *idx);
    if (!r->step_loss || !r->step_ms || !r->ep || !idx) {
        free(idx);
        return okto_fail(n, "calloc", OKTO_ENOMEM);
    }
    for (size_t i = 0; i < d->n; i++)
        idx[i] = i;
    train_rng shuffle;
    train_rng_seed(&shuffle, o->seed * 104729u + 3u);
    long step = 0;
    int rc = 0;
    for (int e = 0; e < r->nepochs && rc == 0; e++) {
        epoch_stats *s = &r->ep[e];
        size_t hits = 0, seen = 0;
        double t0 = now_ms();
        train_shuffle(&shuffle, idx, d->n);
        for (long k = 0; k < per_epoch && step < total; k++, step++) {
            fill_batch(n, d, idx, (size_t)k * n->B);
            double a = now_ms();
            okto_status st = okto_graph_run(n->g);
            double b = now_ms();
            if (st != OKTO_OK) {
                rc = okto_fail(n, "okto_graph_run (a training step)", st);
                break;
            }
            okto_report rep;
            if ((st = okto_graph_report(n->g, &rep)) != OKTO_OK) {
                rc = okto_fail(n, "okto_graph_report", st);
                break;
            }
            r->last = rep;
            for (int l = 0; l < rep.lanes; l++)
                okto_graph_report_lane(n->g, l, &r->lane[l]);
            r->step_loss[step] = step_loss_of(n);
            r->step_ms[step] = b - a;
            s->steps++;
            s->loss += r->step_loss[step];
            s->step_ms += b - a;
            s->span_ms += rep.span_ms;
            s->utilization += rep.utilization;
            hits += step_hits(n);
            seen += n->B;
            if (!isfinite(r->step_loss[step])) {
                fprintf(stderr, "okto-train: step %ld: the loss is %g; lower --lr?\n", step + 1,
                        r->step_loss[step]);
                rc = -1;
                break;
            }
        }
        s->seconds = (now_ms() - t0) / 1e3;
        if (s->steps) {
            s->loss /= (double)s->steps;
            s->step_ms /= (double)s->steps;
            s->span_ms /= (double)s->steps;
            s->utilization /= (double)s->steps;
            s->accuracy = (double)hits / (double)seen;
        }
        if (rc == 0)
            print_epoch(o, e + 1, r->nepochs, s, r->last.sched);
    }
    r->nsteps = step;
    r->sched = r->last.sched;
    /* the first steps plan, learn and (heft) time the heft plan against the sequential one:
     * leave them out of the median when there are steps enough, else only the first */
    long warm = step > 2 * WARM_STEPS ? WARM_STEPS : 1;
    r->median_ms = step > warm ? median(r->step_ms + warm, step - warm) : step ? r->step_ms[0] : 0;
    free(idx);
    return rc;
}

/* ---- --check ---------------------------------------------------------------------------- */

typedef struct check_result {
    double loss_dev, loss_ref, max_rel;
    char worst[32];
} check_result;

static double normwise(const float *dev, const double *ref, size_t count)
{
    double diff = 0.0, mag = 0.0;
    for (size_t i = 0; i < count; i++) {
        diff = fmax(diff, fabs((double)dev[i] - ref[i]));
        mag = fmax(mag, fabs(ref[i]));
    }
    return mag > 0 ? diff / mag : diff;
}

/* Runs one step from p0 and compares the gradients on the device with the host reference. */
static int run_check(net *n, const opts *o, const train_data *d, const params *p0, check_result *c)
{
    memset(c, 0, sizeof *c);
    size_t *idx = malloc(d->n * sizeof *idx);
    int *labels = malloc(n->B * sizeof *labels);
    double *dW[MAX_WIDTHS] = {0}, *db[MAX_WIDTHS] = {0};
    float *gw = NULL, *gb = NULL;
    int rc = -1;
    if (!idx || !labels)
        goto done;
    for (size_t i = 0; i < d->n; i++)
        idx[i] = i;
    train_rng shuffle;
    train_rng_seed(&shuffle, o->seed * 104729u + 3u);
    train_shuffle(&shuffle, idx, d->n);
    fill_batch(n, d, idx, 0);
    okto_status st = okto_graph_run(n->g);
    if (st != OKTO_OK) {
        okto_fail(n, "okto_graph_run (the checked step)", st);
        goto done;
    }
    for (size_t r = 0; r < n->B; r++)
        labels[r] = (int)n->yh[r];
    for (int l = 0; l < n->L; l++) {
        dW[l] = malloc((size_t)n->w[l] * (size_t)n->w[l + 1] * sizeof **dW);
        db[l] = malloc((size_t)n->w[l + 1] * sizeof **db);
        if (!dW[l] || !db[l])
            goto done;
    }
    train_ref ref = {n->nl, n->w};
    c->loss_ref = train_ref_step(&ref, (const float *const *)p0->W, (const float *const *)p0->b,
                                 n->xh, labels, n->B, dW, db, NULL);
    c->loss_dev = step_loss_of(n);
    c->max_rel = fabs(c->loss_dev - c->loss_ref) / fmax(fabs(c->loss_ref), 1e-30);
    snprintf(c->worst, sizeof c->worst, "loss");
    for (int l = 1; l <= n->L && rc == -1; l++) {
        size_t nw = (size_t)n->w[l - 1] * (size_t)n->w[l], nb = (size_t)n->w[l];
        free(gw);
        free(gb);
        gw = malloc(nw * sizeof *gw);
        gb = malloc(nb * sizeof *gb);
        if (!gw || !gb)
            break;
        if ((st = okto_tensor_read(n->dW[l], gw)) != OKTO_OK ||
            (st = okto_tensor_read(n->db[l], gb)) != OKTO_OK) {
            okto_fail(n, "okto_tensor_read (a gradient)", st);
            break;
        }
        double ew = normwise(gw, dW[l - 1], nw), eb = normwise(gb, db[l - 1], nb);
        if (ew > c->max_rel) {
            c->max_rel = ew;
            snprintf(c->worst, sizeof c->worst, "dW%d", l);
        }
        if (eb > c->max_rel) {
            c->max_rel = eb;
            snprintf(c->worst, sizeof c->worst, "db%d", l);
        }
        if (l == n->L)
            rc = 0;
    }
done:
    for (int l = 0; l < n->L; l++) {
        free(dW[l]);
        free(db[l]);
    }
    free(gw);
    free(gb);
    free(idx);
    free(labels);
    return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity. */
static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

static void json_report(FILE *f, const okto_report *r, const okto_lane_report *lane)
{
    fprintf(f, "{\"sched\": \"%s\", \"tasks\": %d, \"lanes\": %d, \"span_ms\": ",
            okto_sched_name(r->sched), r->tasks, r->lanes);
    json_num(f, r->span_ms);
    fputs(", \"busy_ms\": ", f);
    json_num(f, r->busy_ms);
    fputs(", \"utilization\": ", f);
    json_num(f, r->utilization);
    fputs(", \"host_ms\": ", f);
    json_num(f, r->host_ms);
    fputs(", \"lane\": [", f);
    for (int l = 0; l < r->lanes; l++) {
        fprintf(f, "%s{\"busy_ms\": ", l ? ", " : "");
        json_num(f, lane[l].busy_ms);
        fprintf(f, ", \"tasks\": %d, \"copy\": %s}", lane[l].tasks,
                lane[l].is_copy ? "true" : "false");
    }
    fputs("]}", f);
}

static void json_run(FILE *f, const run_result *r)
{
    fprintf(f,
            "{\"sched\": \"%s\", \"steps\": %ld, \"median_step_ms\": ", okto_sched_name(r->sched),
            r->nsteps);
    json_num(f, r->median_ms);
    fputs(",\n    \"epochs\": [", f);
    for (int e = 0; e < r->nepochs; e++) {
        const epoch_stats *s = &r->ep[e];
        fprintf(f, "%s\n      {\"epoch\": %d, \"steps\": %ld, \"loss\": ", e ? "," : "", e + 1,
                s->steps);
        json_num(f, s->loss);
        fputs(", \"accuracy\": ", f);
        json_num(f, s->accuracy);
        fputs(", \"seconds\": ", f);
        json_num(f, s->seconds);
        fputs(", \"step_ms\": ", f);
        json_num(f, s->step_ms);
        fputs(", \"span_ms\": ", f);
        json_num(f, s->span_ms);
        fputs(", \"utilization\": ", f);
        json_num(f, s->utilization);
        fputc('}', f);
    }
    fputs("],\n    \"step_losses\": [", f);
    for (long k = 0; k < r->nsteps; k++) {
        fputs(k ? ", " : "", f);
        json_num(f, r->step_loss[k]);
    }
    fputs("],\n    \"step_ms\": [", f);
    for (long k = 0; k < r->nsteps; k++) {
        fputs(k ? ", " : "", f);
        json_num(f, r->step_ms[k]);
    }
    fputs("],\n    \"last_step\": ", f);
    json_report(f, &r->last, r->lane);
    fputc('}', f);
}

static int dump_weights(const char *path, const params *p, const int *w)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "okto-train: cannot open \"%s\" for writing: %s\n", path, strerror(errno));
        return -1;
    }
    for (int l = 0; l < p->L; l++) {
        size_t nw = (size_t)w[l] * (size_t)w[l + 1];
        fprintf(f, "W%d %d %d\n", l + 1, w[l], w[l + 1]);
        for (size_t i = 0; i < nw; i++)
            fprintf(f, "%.9g%c", p->W[l][i], (i + 1) % (size_t)w[l + 1] ? ' ' : '\n');
        fprintf(f, "b%d 1 %d\n", l + 1, w[l + 1]);
        for (int i = 0; i < w[l + 1]; i++)
            fprintf(f, "%.9g%c", p->b[l][i], i + 1 < w[l + 1] ? ' ' : '\n');
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "okto-train: writing \"%s\" failed\n", path);
        return -1;
    }
    return 0;
}

static void device_name(const net *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(okto_context_device(n->ctx), CL_DEVICE_NAME, len, buf, NULL) != CL_SUCCESS)
        snprintf(buf, len, "?");
    buf[len - 1] = '\0';
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts o = {.batch = 256,
              .micro = 4,
              .epochs = 10,
              .lr = 0.5,
              .seed = 1,
              .data = "spiral",
              .samples = 2048};
    o.nl = 4;
    o.w[0] = 2, o.w[1] = 64, o.w[2] = 64, o.w[3] = 2;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    train_data d;
    if ((rc = load_data(&o, &d)) != 0)
        return rc;
    if ((size_t)o.batch > d.n && !o.check)
        fprintf(stderr,
                "okto-train: note: --batch %zu is more than the %zu samples; batches "
                "repeat samples\n",
                o.batch, d.n);

    net n;
    params p0 = {0}, pt = {0};
    run_result main_run = {0}, seq_run = {0};
    check_result chk = {0};
    int failed = 0, have_check = 0, have_compare = 0;
    double max_loss_diff = 0.0;
    char dev[256] = "";
    rc = 1;
    if (params_alloc(&p0, o.w, o.nl) != 0 || params_alloc(&pt, o.w, o.nl) != 0) {
        fprintf(stderr, "okto-train: out of memory\n");
        goto out_data;
    }
    params_init(&p0, o.w, o.seed);
    if (net_create(&n, &o) != 0 || params_to_device(&n, &p0) != 0)
        goto out;
    device_name(&n, dev, sizeof dev);

    long per_epoch = (long)((d.n + o.batch - 1) / o.batch);
    long total = o.check ? 1 : o.steps ? o.steps : (long)o.epochs * per_epoch;
    int tasks = okto_graph_task_count(n.g);
    char widths[MAX_WIDTHS * 8] = "";
    for (int l = 0; l < o.nl; l++)
        snprintf(widths + strlen(widths), sizeof widths - strlen(widths), "%s%d", l ? "," : "",
                 o.w[l]);
    if (!o.json) {
        printf("okto-train: %s: %zu samples, %zu features, %d classes; layers %s; batch %zu in "
               "%d micro-batch%s; lr %g; seed %llu\n",
               o.data, d.n, d.features, o.w[o.nl - 1], widths, o.batch, o.micro,
               o.micro > 1 ? "es" : "", o.lr, o.seed);
        printf("okto-train: %s, %d lanes (%d compute, %d copy); one step = %d tasks, %ld "
               "step%s per epoch\n",
               dev, okto_context_lane_count(n.ctx), okto_context_compute_lanes(n.ctx),
               okto_context_copy_lanes(n.ctx), tasks, per_epoch, per_epoch > 1 ? "s" : "");
        fflush(stdout);
    }

    if (o.check) {
        if (run_check(&n, &o, &d, &p0, &chk) != 0)
            goto out;
        have_check = 1;
        failed = !(chk.max_rel <= CHECK_TOL);
        if (!o.json)
            printf("check: loss %.6f (host %.6f); largest relative error %.3g (%s); tolerance "
                   "%.0e: %s\n",
                   chk.loss_dev, chk.loss_ref, chk.max_rel, chk.worst, CHECK_TOL,
                   failed ? "FAILED" : "ok");
    } else {
        if (train(&n, &o, &d, total, per_epoch, &main_run) != 0)
            goto out;
        if (o.trace) {
            okto_status st = okto_graph_trace(n.g, o.trace);
            if (st != OKTO_OK) {
                okto_fail(&n, "okto_graph_trace", st);
                goto out;
            }
        }
        if (params_from_device(&n, &pt) != 0)
            goto out;
        if (o.dump && dump_weights(o.dump, &pt, o.w) != 0)
            goto out;
        if (o.compare) {
            if (params_to_device(&n, &p0) != 0)
                goto out;
            okto_status st = okto_graph_set_sched(n.g, OKTO_SCHED_SEQUENTIAL);
            if (st != OKTO_OK) {
                okto_fail(&n, "okto_graph_set_sched", st);
                goto out;
            }
            if (!o.json)
                printf("compare: the same %ld steps under sequential\n", total);
            if (train(&n, &o, &d, total, per_epoch, &seq_run) != 0)
                goto out;
            have_compare = 1;
            for (long k = 0; k < total; k++) {
                double a = main_run.step_loss[k], b = seq_run.step_loss[k];
                double rel = fabs(a - b) / fmax(fabs(b), 1e-6);
                if (!(rel <= max_loss_diff))
                    max_loss_diff = isnan(rel) ? INFINITY : fmax(max_loss_diff, rel);
            }
            failed = !(max_loss_diff <= COMPARE_TOL);
        }
    }

    /* Accuracy of the trained weights on the whole data set: a host evaluation. */
    size_t hits = 0;
    double final_loss = NAN;
    if (!o.check) {
        train_ref ref = {o.nl, o.w};
        final_loss = train_ref_step(&ref, (const float *const *)pt.W, (const float *const *)pt.b,
                                    d.x, d.y, d.n, NULL, NULL, &hits);
    }
    double final_acc = (double)hits / (double)d.n;
    double speedup =
        have_compare && main_run.median_ms > 0 ? seq_run.median_ms / main_run.median_ms : 0.0;

    if (o.json) {
        FILE *f = stdout;
        fputs("{\"data\": {\"source\": ", f);
        json_string(f, o.data);
        fprintf(f, ", \"samples\": %zu, \"features\": %zu, \"classes\": %d},\n", d.n, d.features,
                o.w[o.nl - 1]);
        fprintf(f, " \"layers\": [%s], \"batch\": %zu, \"micro\": %d, \"lr\": ", widths, o.batch,
                o.micro);
        json_num(f, o.lr);
        fprintf(f, ", \"seed\": %llu, \"steps_per_epoch\": %ld,\n \"device\": ", o.seed, per_epoch);
        json_string(f, dev);
        fprintf(f,
                ", \"lanes\": %d, \"compute_lanes\": %d, \"copy_lanes\": %d, "
                "\"tasks_per_step\": %d",
                okto_context_lane_count(n.ctx), okto_context_compute_lanes(n.ctx), okto_context_copy_lanes(n.ctx),
                tasks);
        if (have_check) {
            fputs(",\n \"check\": {\"loss\": ", f);
            json_num(f, chk.loss_dev);
            fputs(", \"loss_host\": ", f);
            json_num(f, chk.loss_ref);
            fputs(", \"max_rel_error\": ", f);
            json_num(f, chk.max_rel);
            fprintf(f, ", \"worst\": \"%s\", \"tolerance\": %g, \"ok\": %s}", chk.worst, CHECK_TOL,
                    failed ? "false" : "true");
        } else {
            fputs(",\n \"run\": ", f);
            json_run(f, &main_run);
            fputs(",\n \"final\": {\"accuracy\": ", f);
            json_num(f, final_acc);
            fputs(", \"loss\": ", f);
            json_num(f, final_loss);
            fputc('}', f);
        }
        if (have_compare) {
            fputs(",\n \"compare\": {\"sequential\": ", f);
            json_run(f, &seq_run);
            fputs(",\n  \"speedup\": ", f);
            json_num(f, speedup);
            fputs(", \"max_loss_rel_diff\": ", f);
            json_num(f, max_loss_diff);
            fprintf(f, ", \"tolerance\": %g, \"agree\": %s}", COMPARE_TOL,
                    failed ? "false" : "true");
        }
        fputs("}\n", f);
    } else if (!o.check) {
        const okto_report *r = &main_run.last;
        printf("final: accuracy %.1f%% on all %zu samples, loss %.4f; median step %.2f ms\n",
               100.0 * final_acc, d.n, final_loss, main_run.median_ms);
        printf("last step: %s, %d tasks, span %.2f ms, busy %.2f ms, utilization %.0f%%; lanes",
               okto_sched_name(r->sched), r->tasks, r->span_ms, r->busy_ms, 100.0 * r->utilization);
        for (int l = 0; l < r->lanes; l++)
            printf(" %s%d %.2f ms/%d", main_run.lane[l].is_copy ? "copy" : "c", l,
                   main_run.lane[l].busy_ms, main_run.lane[l].tasks);
        printf("\n");
        if (have_compare) {
            /* the policy asked for (heft by default), and the plan it kept if that differs */
            okto_sched asked = o.sched != OKTO_SCHED_AUTO ? o.sched : okto_context_sched(n.ctx);
            char label[64];
            snprintf(label, sizeof label, "%s%s%s", okto_sched_name(asked),
                     asked != main_run.sched ? " (kept the plan of " : "",
                     asked != main_run.sched ? okto_sched_name(main_run.sched) : "");
            if (asked != main_run.sched)
                strcat(label, ")");
            printf("compare: sequential %.2f ms/step, %s %.2f ms/step: speedup %.2fx; losses "
                   "%s (largest relative difference %.2g, tolerance %.0e)\n",
                   seq_run.median_ms, label, main_run.median_ms, speedup,
                   failed ? "DIFFER" : "agree", max_loss_diff, COMPARE_TOL);
        }
        if (o.trace)
            printf("trace of the last step: %s\n", o.trace);
    }
    rc = failed ? 1 : 0;
out:
    net_free(&n);
    run_result_free(&main_run);
    run_result_free(&seq_run);
out_data:
    params_free(&p0);
    params_free(&pt);
    train_data_free(&d);
    return rc;
}
