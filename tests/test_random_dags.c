/* tests/test_random_dags.c: a property test of the whole engine. Seeded random DAGs of ops on
 * random views of a few tensors -- row ranges, column slices, transposed blocks, 1-D runs of a
 * reshape that start and end mid-row -- fill, scale, axpy, copy (also between disjoint views
 * of one tensor), two order-sensitive user kernels on contiguous views, uploads and downloads
 * on the copy lane -- are run under every registered policy (heft twice: the second run may be re-planned
 * from measured costs) from the same initial data. Every run must give
 * bit-identical tensors and downloaded snapshots, and match a host simulation of the ops in
 * recorded order.
 *
 * Tolerance against the host simulation: |device - host| <= 1e-5 * max(1, M), where M is the
 * largest magnitude any value reached in the simulation of that DAG. The device may contract
 * a*x + b into one fma (OpenCL C allows it; the host C code does not), which differs by at most
 * half an ulp per op; ~40 ops of coefficients <= 1.5 keep that below 40 * 2^-24 * M * 1.5 <
 * 4e-6 * M. A misordered op changes values by O(M), far above the bound. The comparison across
 * policies is exact (memcmp): the same kernels on the same device must give the same bits.
 * Every policy runs twice over: on a graph with the optimizer (lib/engine/optimize.c) off and
 * on one recorded the same way with it on; all runs must give the same bits.
 *
 * OKTO_TEST_DAGS=n runs n DAGs instead of 240 (seeds 1..n); OKTO_TEST_SEED=s runs only seed
 * s. A failure prints the seed and the DAG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h" /* okto__graph_set_fuse */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kernels_src =
    /* x = x * a + b over n floats: order-sensitive with everything that touches x */
    "__kernel void affine(__global float *x, ulong xo, float a, float b, int n)\n"
    "{ int i = get_global_id(0); if (i < n) x[xo + i] = x[xo + i] * a + b; }\n"
    /* y = y + a * (x - y): reads x, reads and writes y */
    "__kernel void lerp(__global float *y, ulong yo, __global const float *x, ulong xo, float a,\n"
    "                   int n)\n"
    "{ int i = get_global_id(0); if (i < n) y[yo + i] = y[yo + i] + a * (x[xo + i] - y[yo + i]); }\n";

typedef struct engine {
    const char *name;
    okto_context *ctx;
    okto_kernel *affine, *lerp;
} engine;

static engine engines[2];

static int setup(void **state)
{
    (void)state;
    /* A: 4 compute lanes (big ops split in 4) and the default copy lane. B: 2 compute lanes and
     * no copy lane, so uploads and downloads share the compute lanes. */
    engines[0].name = "4 compute + copy lane";
    engines[0].ctx = tu_context_with(4, OKTO_SCHED_AUTO);
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.compute_lanes = 2;
    cfg.copy_lanes = 0;
    engines[1].name = "2 compute, no copy lane";
    okto_status s = okto_context_create(&cfg, &engines[1].ctx);
    if (s != OKTO_OK)
        fail_msg("okto_context_create: %s: %s", okto_status_str(s), okto_last_error(NULL));
    for (int e = 0; e < 2; e++) {
        TU_OK(okto_kernel_create(engines[e].ctx, kernels_src, "affine", &engines[e].affine));
        TU_OK(okto_kernel_create(engines[e].ctx, kernels_src, "lerp", &engines[e].lerp));
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        okto_kernel_destroy(engines[e].affine);
        okto_kernel_destroy(engines[e].lerp);
        okto_context_destroy(engines[e].ctx);
    }
    return 0;
}

/* ---- the DAG ------------------------------------------------------------------------- */

enum { OP_FILL, OP_SCALE, OP_AXPY, OP_COPY, OP_AFFINE, OP_LERP, OP_UPLOAD, OP_DOWNLOAD, NOPS };
static const char *op_names[] = {"fill", "scale", "axpy", "copy", "affine", "lerp", "upload",
                                 "download"};

#define MAXT 4
#define MAXOPS 40

/* Where an op acts on a [rows, cols] tensor: a view of one of these kinds, all with a logical
 * shape [nr, nc] (row-major) whose element (i, j) is the tensor's flat element
 * off + i * s0 + j * s1:
 *   V_ROWS  rows [r0, r0 + nr), every column (the micro-batch pattern);
 *   V_COLS  rows [r0, r0 + nr), columns [c0, c0 + nc): a column slice, strided;
 *   V_TRANS the transpose of rows [r0, r0 + nc), columns [c0, c0 + nr): strided both ways;
 *   V_FLAT  a 1-D run of nr elements from flat element f0 of the tensor reshaped to 1-D, that
 *           need not start or end on a row (its region then covers whole rows). */
enum { V_ROWS, V_COLS, V_TRANS, V_FLAT, NVIEWS };
static const char *view_names[] = {"rows", "cols", "trans", "flat"};

typedef struct vw {
    int kind;
    size_t r0, c0, nr, nc, f0;
} vw;

typedef struct op {
    int kind;
    int dst, src;        /* tensors: dst is written (or read, for download); src is read */
    vw dv, sv;           /* their views, of one logical shape */
    float a, b;
    float *host;         /* upload source / download slot: n floats */
} op;

typedef struct dag {
    uint64_t seed;
    int nt, nops, big;
    size_t rows[MAXT], cols;
    op ops[MAXOPS];
} dag;

static size_t pick(uint64_t *r, size_t n) { return (size_t)(tu_rand(r) % n); }

static size_t vw_count(const vw *v) { return v->kind == V_FLAT ? v->nr : v->nr * v->nc; }

/* Flat index (in the tensor) of the view's k-th element in row-major order. */
static size_t vw_index(const vw *v, size_t cols, size_t k)
{
    switch (v->kind) {
    case V_FLAT: return v->f0 + k;
    case V_TRANS: { /* logical (i, j) is tensor (r0 + j, c0 + i) */
        size_t i = k / v->nc, j = k % v->nc;
        return (v->r0 + j) * cols + v->c0 + i;
    }
    default: { /* V_ROWS (c0 = 0, nc = cols) and V_COLS */
        size_t i = k / v->nc, j = k % v->nc;
        return (v->r0 + i) * cols + v->c0 + j;
    }
    }
}

/* A count in [1, n], sometimes n itself, sometimes small. */
static size_t pick_len(uint64_t *r, size_t n)
{
    switch (pick(r, 4)) {
    case 0: return n;
    case 1: return 1 + pick(r, n < 4 ? n : 4);
    default: return 1 + pick(r, n);
    }
}

/* A view of a tensor of rows x cols. contiguous: only kinds a user kernel or a host transfer
 * takes (rows, flat). */
static vw pick_view(uint64_t *r, size_t rows, size_t cols, int contiguous)
{
    vw v = {0};
    v.kind = contiguous ? (pick(r, 2) ? V_ROWS : V_FLAT) : (int)pick(r, NVIEWS);
    if (v.kind == V_TRANS && (rows < 2 || cols < 2))
        v.kind = V_COLS;
    switch (v.kind) {
    case V_ROWS:
        v.nr = pick_len(r, rows), v.r0 = pick(r, rows - v.nr + 1), v.nc = cols;
        break;
    case V_COLS:
        v.nr = pick_len(r, rows), v.r0 = pick(r, rows - v.nr + 1);
        v.nc = pick_len(r, cols), v.c0 = pick(r, cols - v.nc + 1);
        break;
    case V_TRANS: /* [nr, nc] = the transpose of an nc x nr block */
        v.nc = pick_len(r, rows), v.r0 = pick(r, rows - v.nc + 1);
        v.nr = pick_len(r, cols), v.c0 = pick(r, cols - v.nr + 1);
        break;
    default:
        v.nr = pick_len(r, rows * cols), v.f0 = pick(r, rows * cols - v.nr + 1);
        v.nc = 1;
        break;
    }
    return v;
}

/* A view of the other tensor with the same logical shape as v, if one fits. */
static int match_view(uint64_t *r, const vw *v, size_t rows, size_t cols, int contiguous, vw *out)
{
    for (int tries = 0; tries < 8; tries++) {
        vw w = {0};
        w.kind = v->kind == V_FLAT ? V_FLAT : contiguous ? V_ROWS : (int)pick(r, NVIEWS - 1);
        w.nr = v->nr, w.nc = v->nc;
        if (w.kind == V_FLAT) {
            if (v->nr > rows * cols)
                continue;
            w.f0 = pick(r, rows * cols - w.nr + 1);
        } else if (w.kind == V_ROWS) {
            if (w.nr > rows || w.nc != cols)
                continue;
            w.r0 = pick(r, rows - w.nr + 1);
        } else if (w.kind == V_COLS) {
            if (w.nr > rows || w.nc > cols)
                continue;
            w.r0 = pick(r, rows - w.nr + 1), w.c0 = pick(r, cols - w.nc + 1);
        } else {
            if (w.nc > rows || w.nr > cols)
                continue;
            w.r0 = pick(r, rows - w.nc + 1), w.c0 = pick(r, cols - w.nr + 1);
        }
        *out = w;
        return 1;
    }
    return 0;
}

/* Two views of one tensor touch no element in common, and okto can tell: two flat runs (their
 * ranges), or two views whose boxes are exact (rows, columns, transposed blocks). A flat run
 * that starts mid-row beside a box shares rows with it, which okto's alias check refuses. */
static int disjoint(const vw *a, const vw *b, size_t cols)
{
    if ((a->kind == V_FLAT) != (b->kind == V_FLAT))
        return 0;
    size_t na = vw_count(a), nb = vw_count(b);
    char *seen = calloc(1, 1 << 20);
    int ok = 1;
    for (size_t k = 0; k < na; k++)
        seen[vw_index(a, cols, k) >> 3] |= (char)(1 << (vw_index(a, cols, k) & 7));
    for (size_t k = 0; k < nb && ok; k++)
        ok = !(seen[vw_index(b, cols, k) >> 3] & (1 << (vw_index(b, cols, k) & 7)));
    free(seen);
    return ok;
}

static void make_dag(dag *d, uint64_t seed)
{
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 7;
    memset(d, 0, sizeof *d);
    d->seed = seed;
    d->big = seed % 8 == 3; /* every 8th DAG: big tensors, so ops split into parts */
    d->nt = 3 + (int)pick(&r, 2);
    d->cols = d->big ? 128 : 1 + pick(&r, 9);
    for (int t = 0; t < d->nt; t++)
        d->rows[t] = d->big ? 1024 + pick(&r, 3073) : 8 + pick(&r, 73);
    d->nops = 10 + (int)pick(&r, MAXOPS - 10 + 1);
    for (int i = 0; i < d->nops; i++) {
        op *o = &d->ops[i];
        o->kind = (int)pick(&r, NOPS);
        int contiguous = o->kind >= OP_AFFINE; /* user kernels and host transfers */
        int two = o->kind == OP_AXPY || o->kind == OP_COPY || o->kind == OP_LERP;
        o->dst = (int)pick(&r, (size_t)d->nt);
        o->dv = pick_view(&r, d->rows[o->dst], d->cols, contiguous);
        o->a = tu_uniform(&r, -1.5f, 1.5f);
        o->b = tu_uniform(&r, -1.0f, 1.0f);
        if (two) {
            if (o->kind == OP_LERP)
                o->a = tu_uniform(&r, 0.0f, 1.0f);
            if (o->kind == OP_AXPY)
                o->a = tu_uniform(&r, -0.75f, 0.75f);
            /* a source of the same logical shape: on another tensor, or on the same one where
             * it touches nothing the destination does (copy and axpy refuse an overlap, and
             * for the kernels the result would depend on the work-item order) */
            int found = 0;
            for (int tries = 0; tries < 12 && !found; tries++) {
                o->src = (int)pick(&r, (size_t)d->nt);
                found = match_view(&r, &o->dv, d->rows[o->src], d->cols, contiguous, &o->sv) &&
                        (o->src != o->dst || disjoint(&o->dv, &o->sv, d->cols));
                if (!found && tries % 3 == 2) /* a smaller destination fits more often */
                    o->dv = pick_view(&r, d->rows[o->dst], d->cols, contiguous);
            }
            if (!found) { /* one row of each, on two tensors */
                o->src = (o->dst + 1) % d->nt;
                o->dv = (vw){V_ROWS, 0, 0, 1, d->cols, 0};
                o->sv = (vw){V_ROWS, 0, 0, 1, d->cols, 0};
            }
        }
        if (o->kind == OP_UPLOAD || o->kind == OP_DOWNLOAD) {
            size_t n = vw_count(&o->dv);
            o->host = malloc(n * sizeof(float));
            if (o->kind == OP_UPLOAD)
                tu_fill_random(o->host, n, seed * 1000 + (uint64_t)i, -2, 2);
        }
    }
}

static void free_dag(dag *d)
{
    for (int i = 0; i < d->nops; i++)
        free(d->ops[i].host);
}

static int vw_describe(const vw *v, char *buf, size_t n)
{
    if (v->kind == V_FLAT)
        return snprintf(buf, n, "flat[%zu,%zu)", v->f0, v->f0 + v->nr);
    return snprintf(buf, n, "%s r%zu c%zu %zux%zu", view_names[v->kind], v->r0, v->c0, v->nr,
                    v->nc);
}

static void describe(const dag *d, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "seed %llu: %d tensors of %zu cols, rows",
                                (unsigned long long)d->seed, d->nt, d->cols);
    for (int t = 0; t < d->nt && k < n; t++)
        k += (size_t)snprintf(buf + k, n - k, " %zu", d->rows[t]);
    for (int i = 0; i < d->nops && k < n; i++) {
        const op *o = &d->ops[i];
        k += (size_t)snprintf(buf + k, n - k, "\n  op %d: %s t%d ", i, op_names[o->kind], o->dst);
        if (k < n)
            k += (size_t)vw_describe(&o->dv, buf + k, n - k);
        if (k < n && (o->kind == OP_AXPY || o->kind == OP_COPY || o->kind == OP_LERP)) {
            k += (size_t)snprintf(buf + k, n - k, " <- t%d ", o->src);
            if (k < n)
                k += (size_t)vw_describe(&o->sv, buf + k, n - k);
        }
        if (k < n)
            k += (size_t)snprintf(buf + k, n - k, " a=%g b=%g", (double)o->a, (double)o->b);
    }
}

/* ---- the host simulation: ops in recorded order, in float --------------------------- */

typedef struct result {
    float *t[MAXT];      /* final tensors */
    float *snap;         /* every download, concatenated */
    size_t nsnap;
} result;

static size_t snap_size(const dag *d)
{
    size_t n = 0;
    for (int i = 0; i < d->nops; i++)
        if (d->ops[i].kind == OP_DOWNLOAD)
            n += vw_count(&d->ops[i].dv);
    return n;
}

static void result_alloc(const dag *d, result *res)
{
    for (int t = 0; t < d->nt; t++)
        res->t[t] = malloc(d->rows[t] * d->cols * sizeof(float));
    res->nsnap = snap_size(d);
    res->snap = malloc((res->nsnap ? res->nsnap : 1) * sizeof(float));
}

static void result_free(const dag *d, result *res)
{
    for (int t = 0; t < d->nt; t++)
        free(res->t[t]);
    free(res->snap);
}

static void initial_data(const dag *d, int t, float *x)
{
    tu_fill_random(x, d->rows[t] * d->cols, d->seed * 100 + (uint64_t)t, -2, 2);
}

static float track(float v, double *m)
{
    if (fabs((double)v) > *m)
        *m = fabs((double)v);
    return v;
}

/* Returns M, the largest magnitude any value reached. */
static double simulate(const dag *d, result *res)
{
    double m = 0;
    size_t c = d->cols, snap = 0;
    for (int t = 0; t < d->nt; t++) {
        initial_data(d, t, res->t[t]);
        for (size_t i = 0; i < d->rows[t] * c; i++)
            track(res->t[t][i], &m);
    }
    for (int i = 0; i < d->nops; i++) {
        const op *o = &d->ops[i];
        float *yt = res->t[o->dst];
        const float *xt = (o->kind == OP_AXPY || o->kind == OP_COPY || o->kind == OP_LERP)
                              ? res->t[o->src]
                              : NULL;
        size_t n = vw_count(&o->dv);
        for (size_t j = 0; j < n; j++) {
            float *y = &yt[vw_index(&o->dv, c, j)];
            float x = xt ? xt[vw_index(&o->sv, c, j)] : 0;
            switch (o->kind) {
            case OP_FILL: *y = track(o->a, &m); break;
            case OP_SCALE: *y = track(*y * o->a, &m); break;
            case OP_AXPY: {
                float p = o->a * x;
                *y = track(*y + p, &m);
                track(p, &m);
                break;
            }
            case OP_COPY: *y = x; break;
            case OP_AFFINE: {
                float p = *y * o->a;
                *y = track(p + o->b, &m);
                track(p, &m);
                break;
            }
            case OP_LERP: {
                float diff = track(x - *y, &m), p = track(o->a * diff, &m);
                *y = track(*y + p, &m);
                break;
            }
            case OP_UPLOAD: *y = track(o->host[j], &m); break;
            case OP_DOWNLOAD: res->snap[snap++] = *y; break;
            }
        }
    }
    return m;
}

/* ---- recording and running ------------------------------------------------------------ */

/* The okto view for v: built with the public view calls (slice, transpose, reshape). */
static okto_tensor *view(okto_tensor *t, const vw *v)
{
    okto_tensor *a = NULL, *b = NULL;
    switch (v->kind) {
    case V_ROWS: TU_OK(okto_tensor_view(t, v->r0, v->nr, &a)); return a;
    case V_COLS:
        TU_OK(okto_tensor_view(t, v->r0, v->nr, &a));
        TU_OK(okto_tensor_slice(a, 1, v->c0, v->nc, &b));
        break;
    case V_TRANS:
        TU_OK(okto_tensor_view(t, v->r0, v->nc, &b));
        TU_OK(okto_tensor_slice(b, 1, v->c0, v->nr, &a));
        okto_tensor_destroy(b);
        TU_OK(okto_tensor_transpose(a, 0, 1, &b));
        break;
    default:
        TU_OK(okto_tensor_reshape(t, 1, (size_t[]){okto_tensor_numel(t)}, &a));
        TU_OK(okto_tensor_slice(a, 0, v->f0, v->nr, &b));
        break;
    }
    okto_tensor_destroy(a);
    return b;
}

static okto_graph *record(const dag *d, const engine *e, okto_tensor **ts)
{
    size_t wg_max = 0;
    clGetDeviceInfo(okto_context_device(e->ctx), CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg_max,
                    &wg_max, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(e->ctx, &g));
    for (int i = 0; i < d->nops; i++) {
        const op *o = &d->ops[i];
        okto_tensor *y = view(ts[o->dst], &o->dv);
        okto_tensor *x = NULL;
        if (o->kind == OP_AXPY || o->kind == OP_COPY || o->kind == OP_LERP)
            x = view(ts[o->src], &o->sv);
        int n = (int)vw_count(&o->dv);
        /* user kernels: the global size rounded up to whole work-groups of 64 (the kernels
         * guard i < n). PoCL compiles one specialization per work-group size and, with no
         * local size given, picks local = global for small grids: one compile per distinct
         * size, which made a cold kernel cache cost most of this test's time. */
        size_t global = ((size_t)n + 63) / 64 * 64, local = 64;
        const size_t *lp = wg_max >= 64 ? &local : NULL;
        switch (o->kind) {
        case OP_FILL: TU_OK(okto_fill(g, y, o->a)); break;
        case OP_SCALE: TU_OK(okto_scale(g, y, o->a)); break;
        case OP_AXPY: TU_OK(okto_axpy(g, y, o->a, x)); break;
        case OP_COPY: TU_OK(okto_copy(g, y, x)); break;
        case OP_AFFINE: {
            okto_arg args[] = {OKTO_RW(y), OKTO_VALUE(&o->a), OKTO_VALUE(&o->b),
                               OKTO_VALUE(&n)};
            TU_OK(okto_launch(g, e->affine, 1, &global, lp, 4, args));
            break;
        }
        case OP_LERP: {
            okto_arg args[] = {OKTO_RW(y), OKTO_R(x), OKTO_VALUE(&o->a), OKTO_VALUE(&n)};
            TU_OK(okto_launch(g, e->lerp, 1, &global, lp, 4, args));
            break;
        }
        case OP_UPLOAD: TU_OK(okto_upload(g, y, o->host)); break;
        case OP_DOWNLOAD: TU_OK(okto_download(g, o->host, y)); break;
        }
        /* the graph keeps the storage alive: views may go at once */
        TU_OK(okto_tensor_destroy(y));
        TU_OK(okto_tensor_destroy(x));
    }
    return g;
}

static void run_once(const dag *d, okto_graph *g, okto_tensor **ts, okto_sched s, result *res)
{
    float *init = malloc(4096 * 128 * sizeof *init);
    for (int t = 0; t < d->nt; t++) {
        initial_data(d, t, init);
        TU_OK(okto_tensor_write(ts[t], init));
    }
    free(init);
    for (int i = 0; i < d->nops; i++)
        if (d->ops[i].kind == OP_DOWNLOAD)
            memset(d->ops[i].host, 0xff, vw_count(&d->ops[i].dv) * sizeof(float));
    TU_OK(okto_graph_set_sched(g, s));
    TU_OK(okto_graph_run(g));
    for (int t = 0; t < d->nt; t++)
        TU_OK(okto_tensor_read(ts[t], res->t[t]));
    size_t k = 0;
    for (int i = 0; i < d->nops; i++)
        if (d->ops[i].kind == OP_DOWNLOAD) {
            size_t n = vw_count(&d->ops[i].dv);
            memcpy(res->snap + k, d->ops[i].host, n * sizeof(float));
            k += n;
        }
}

/* The largest |device - host| / max(1, M) seen, and how many values were not bit-equal to the
 * host: printed at the end, to show how much of the tolerance is used. */
static double worst_rel;
static size_t inexact;

static void note_err(float got, float want, double m)
{
    double e = fabs((double)got - (double)want) / fmax(1.0, m);
    if (got != want)
        inexact++;
    if (e > worst_rel)
        worst_rel = e;
}

static int check_dag(uint64_t seed, int *ntasks_out)
{
    dag d;
    make_dag(&d, seed);
    const engine *e = &engines[seed % 2];
    okto_tensor *ts[MAXT];
    for (int t = 0; t < d.nt; t++)
        TU_OK(okto_tensor_create_2d(e->ctx, d.rows[t], d.cols, &ts[t]));
    okto_graph *g = record(&d, e, ts), *gopt = record(&d, e, ts);
    okto__graph_set_fuse(g, 0);
    okto__graph_set_fuse(gopt, OKTO__FUSE_ALL);
    *ntasks_out = okto_graph_task_count(g);

    /* every registered policy, sequential first; heft twice (its second run may be re-planned
     * from measured costs) */
    enum { NPOL = OKTO_SCHED_COUNT, NRUNS = 2 * NPOL };
    result want, got[NRUNS];
    result_alloc(&d, &want);
    double m = simulate(&d, &want);
    double tol = 1e-5 * fmax(1.0, m);
    okto_sched runs[NRUNS];
    for (int s = 1; s < OKTO_SCHED_COUNT; s++)
        runs[s - 1] = runs[NPOL + s - 1] = (okto_sched)s;
    runs[NPOL - 1] = runs[NRUNS - 1] = OKTO_SCHED_HEFT;
    char why[256] = "";
    int made = 0;
    for (int r = 0; r < NRUNS && !why[0]; r++) {
        result_alloc(&d, &got[r]);
        made = r + 1;
        run_once(&d, r < NPOL ? g : gopt, ts, runs[r], &got[r]);
        /* against the host simulation */
        for (int t = 0; t < d.nt && !why[0]; t++)
            for (size_t i = 0; i < d.rows[t] * d.cols; i++)
                if (note_err(got[r].t[t][i], want.t[t][i], m), !(fabs((double)got[r].t[t][i] - (double)want.t[t][i]) <= tol)) {
                    snprintf(why, sizeof why,
                             "%s run %d: tensor %d element %zu (row %zu) is %.9g, host says "
                             "%.9g (tolerance %.3g)",
                             okto_sched_name(runs[r]), r, t, i, i / d.cols,
                             (double)got[r].t[t][i], (double)want.t[t][i], tol);
                    break;
                }
        for (size_t i = 0; i < want.nsnap && !why[0]; i++)
            if (!(fabs((double)got[r].snap[i] - (double)want.snap[i]) <= tol))
                snprintf(why, sizeof why,
                         "%s run %d: downloaded value %zu is %.9g, host says %.9g",
                         okto_sched_name(runs[r]), r, i, (double)got[r].snap[i],
                         (double)want.snap[i]);
        /* bit-identical to the sequential run */
        if (r > 0 && !why[0]) {
            for (int t = 0; t < d.nt && !why[0]; t++)
                if (memcmp(got[r].t[t], got[0].t[t], d.rows[t] * d.cols * sizeof(float)))
                    snprintf(why, sizeof why, "%s run %d: tensor %d differs from sequential",
                             okto_sched_name(runs[r]), r, t);
            if (!why[0] && memcmp(got[r].snap, got[0].snap, want.nsnap * sizeof(float)))
                snprintf(why, sizeof why, "%s run %d: downloads differ from sequential",
                         okto_sched_name(runs[r]), r);
        }
        if (why[0]) {
            char desc[8192];
            describe(&d, desc, sizeof desc);
            /* stdio, not print_error: cmocka truncates long messages */
            fprintf(stderr, "DAG failed on %s (%d tasks): %s\n%s\n", e->name, *ntasks_out, why,
                    desc);
        }
    }
    for (int r = 0; r < made; r++)
        result_free(&d, &got[r]);
    okto_graph_destroy(g);
    okto_graph_destroy(gopt);
    for (int t = 0; t < d.nt; t++)
        TU_OK(okto_tensor_destroy(ts[t]));
    result_free(&d, &want);
    free_dag(&d);
    return why[0] ? -1 : 0;
}

static void random_dags(void **state)
{
    (void)state;
    uint64_t first = 1, count = 240;
    const char *env = getenv("OKTO_TEST_DAGS");
    if (env && *env)
        count = strtoull(env, NULL, 10);
    if ((env = getenv("OKTO_TEST_SEED")) && *env) {
        first = strtoull(env, NULL, 10);
        count = 1;
    }
    int failures = 0, tasks = 0, most = 0;
    unsigned long long ran = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        int n = 0;
        if (check_dag(seed, &n) < 0)
            failures++;
        ran++;
        tasks += n;
        most = n > most ? n : most;
        if (failures >= 3)
            break;
    }
    print_message("%llu DAGs, %d tasks in all (up to %d in one), %d failed; against the host: "
                  "%zu values not bit-equal, worst error %.3g of the 1e-05 allowed\n",
                  ran, tasks, most, failures, inexact, worst_rel);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_dags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
