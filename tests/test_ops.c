/* tests/test_ops.c: the op table, tested as a table (in the manner of ggml's test-backend-ops).
 * Each op is a row: how to record it, a double-precision reference, the dtypes it takes, the
 * tolerance it is held to. The harness runs every row over odd shapes (1, 7, 13, 257 ...) and
 * layouts (contiguous, a transposed view, a column slice of a wider tensor, broadcasts), in
 * every dtype the row takes, partitioned (a context of 3 compute lanes, on a shape big enough
 * to split) and not, under every registered policy, and requires:
 *   - |got - reference| <= tol[dtype] * max(1, |reference|) for every element, the reference
 *     computed in double from the inputs as the device holds them (already rounded to dtype),
 *     so the tolerance measures the op and the rounding of its result, not of its inputs;
 *   - every policy giving the same bits as the sequential one.
 * Every op of lib/ops/ops.def has a row here (checked), except the internal ones.
 *
 * `test_ops --write-docs PATH` writes the op-support table (docs/ops.md); run without arguments
 * the test also renders it and fails when the committed docs/ops.md differs, so the table is
 * generated, never hand-edited: tools/gen-ops-md.sh rewrites it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "testutil.h"
/* ops2: the double references of attention, conv2d and pooling (tests/ref) */
#include "ref_attention.h"
#include "ref_conv.h"
#include "ref_pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static okto_context *ctx1, *ctx3; /* one compute lane (never split); three (parts) */

/* ---- tensors in a layout ------------------------------------------------------------------ */

typedef enum layout { L_CONTIG, L_TRANSPOSED, L_SLICED, L_COUNT } layout;
static const char *const layout_name[] = {"contiguous", "transposed view", "column slice"};

typedef struct tview {
    okto_tensor *t;    /* the view handed to the op */
    okto_tensor *base; /* the storage's own tensor */
} tview;

static void tview_free(tview *v)
{
    okto_tensor_destroy(v->t);
    okto_tensor_destroy(v->base);
}

/* A tensor of the logical shape in the layout: contiguous; the transpose of a contiguous tensor
 * with its last two dimensions swapped (rank >= 2); or columns [1, 1 + n) of one 3 wider. */
static tview make(okto_context *c, okto_dtype dt, int rank, const size_t *shape, layout l)
{
    tview v = {0};
    size_t s[OKTO_MAX_RANK];
    memcpy(s, shape, (size_t)rank * sizeof *s);
    if (l == L_TRANSPOSED && rank >= 2) {
        s[rank - 1] = shape[rank - 2], s[rank - 2] = shape[rank - 1];
        TU_OK(okto_tensor_create(c, dt, rank, s, &v.base));
        TU_OK(okto_tensor_transpose(v.base, rank - 2, rank - 1, &v.t));
    } else if (l == L_SLICED) {
        s[rank - 1] += 3;
        TU_OK(okto_tensor_create(c, dt, rank, s, &v.base));
        TU_OK(okto_tensor_slice(v.base, rank - 1, 1, shape[rank - 1], &v.t));
    } else {
        TU_OK(okto_tensor_create(c, dt, rank, shape, &v.base));
        TU_OK(okto_tensor_slice(v.base, 0, 0, shape[0], &v.t));
    }
    return v;
}

static size_t numel(int rank, const size_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= shape[i];
    return n;
}

/* Random values in [lo, hi] written through the view (the base is first zeroed, so a wrong
 * stride shows); *host gets them back as the device holds them (rounded to the dtype). */
static double *fill(tview *v, uint64_t seed, double lo, double hi)
{
    size_t bn = okto_tensor_numel(v->base), n = okto_tensor_numel(v->t);
    float *z = calloc(bn, sizeof *z), *x = malloc(n * sizeof *x);
    TU_OK(okto_tensor_write_f32(v->base, z));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x[i] = tu_uniform(&s, (float)lo, (float)hi);
        if (okto_tensor_dtype(v->t) == OKTO_I32)
            x[i] = floorf(x[i]);
    }
    TU_OK(okto_tensor_write_f32(v->t, x));
    TU_OK(okto_tensor_read_f32(v->t, x));
    double *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = x[i];
    free(z), free(x);
    return h;
}

static float *read_all(const okto_tensor *t)
{
    float *h = malloc(okto_tensor_numel(t) * sizeof *h);
    TU_OK(okto_tensor_read_f32(t, h));
    return h;
}

/* Largest |got - want| / max(1, |want|); NaN where want is not NaN counts as infinite. */
static double rel_err(const float *got, const double *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) && isnan(got[i]))
            continue;
        if (isinf(want[i]) && (double)got[i] == want[i])
            continue;
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* ---- the coverage table: what was tested, for docs/ops.md --------------------------------- */

typedef struct coverage {
    unsigned dtypes;
    int layouts;     /* bit per layout */
    int partitioned; /* a run split into parts agreed */
    /* the tolerance's base per dtype, the largest error seen in the same units, and what the
     * base is scaled by when the bound grows with the size ("sqrt(k)") */
    double tol[OKTO_DTYPE_COUNT], worst[OKTO_DTYPE_COUNT];
    const char *scale;
    int cases;
} coverage;
static coverage cov[OKTO__OP_COUNT];

/* A case of op passed with error err against tolerance tol; with scale > 0 both are divided by
 * it (what the op's bound grows with), so the table shows the base and the worst seen alike. */
static void note_scaled(okto__op op, okto_dtype dt, layout l, double tol, double err, double scale,
                        const char *what)
{
    coverage *c = &cov[op];
    c->dtypes |= 1u << dt;
    c->layouts |= 1 << l;
    c->tol[dt] = fmax(c->tol[dt], tol / scale);
    c->worst[dt] = fmax(c->worst[dt], err / scale);
    c->scale = what;
    c->cases++;
}

static void note(okto__op op, okto_dtype dt, layout l, double tol, double err)
{
    note_scaled(op, dt, l, tol, err, 1.0, NULL);
}

/* ---- running a recorded case under every policy --------------------------------------------- */

/* A case records into a fresh graph, runs under each policy and leaves its outputs readable. */
typedef void (*record_fn)(okto_graph *g, void *cs);

/* Runs rec under every registered policy (inputs rewritten before each run by refill when the op
 * updates them in place); returns the sequential run's output `out`, and checks the others give
 * the same bits. */
static float *run_all(okto_context *c, record_fn rec, void *cs, const okto_tensor *out,
                      void (*refill)(void *cs), const char *what)
{
    float *first = NULL;
    size_t n = okto_tensor_numel(out);
    for (int s = 1; s < OKTO_SCHED_COUNT; s++) {
        okto_graph *g;
        TU_OK(okto_graph_create(c, &g));
        TU_OK(okto_graph_set_sched(g, (okto_sched)s));
        rec(g, cs);
        if (okto_graph_status(g, NULL) != OKTO_OK)
            fail_msg("%s: recording failed: %s", what, okto_last_error(c));
        if (refill)
            refill(cs);
        okto_status st = okto_graph_run(g);
        if (st != OKTO_OK)
            fail_msg("%s under %s: %s", what, okto_sched_name((okto_sched)s), okto_last_error(c));
        float *got = read_all(out);
        if (!first) {
            first = got;
        } else {
            if (memcmp(first, got, n * sizeof *got) != 0)
                fail_msg("%s: %s differs from sequential", what, okto_sched_name((okto_sched)s));
            free(got);
        }
        TU_OK(okto_graph_destroy(g));
    }
    return first;
}

static const okto_dtype float_dtypes[] = {OKTO_F32, OKTO_F16, OKTO_BF16};
/* the result's rounding (half an ulp of the dtype) plus float arithmetic */
static const double tol_ew[OKTO_DTYPE_COUNT] = {
    [OKTO_F32] = 2e-6, [OKTO_F16] = 1e-3, [OKTO_BF16] = 8e-3, [OKTO_I32] = 0};

/* shapes: odd sizes, ranks 1 to 4 */
typedef struct shape {
    int rank;
    size_t d[OKTO_MAX_RANK];
} shape;
static const shape shapes[] = {
    {1, {1}},      {1, {7}},       {2, {13, 5}},      {2, {1, 257}},
    {2, {257, 1}}, {3, {3, 7, 5}}, {4, {2, 3, 4, 5}},
};
static const shape big = {2, {1024, 257}}; /* enough work to split into parts */

/* ---- unary maps ------------------------------------------------------------------------------ */

typedef struct map_row {
    okto_map_op op;
    double (*ref)(double);
    double lo, hi; /* input domain */
    double tol32;  /* f32 tolerance (transcendentals take a few ulps) */
} map_row;

static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_neg(double x) { return -x; }
static double r_square(double x) { return x * x; }
static double r_rsqrt(double x) { return 1.0 / sqrt(x); }
static double r_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double r_silu(double x) { return x / (1.0 + exp(-x)); }

static const map_row map_rows[] = {
    {OKTO_MAP_RELU, r_relu, -2, 2, 0},
    {OKTO_MAP_GELU_TANH, r_gelu_tanh, -4, 4, 4e-6},
    {OKTO_MAP_SIGMOID, r_sigmoid, -8, 8, 2e-6},
    {OKTO_MAP_TANH, tanh, -4, 4, 2e-6},
    {OKTO_MAP_EXP, exp, -4, 4, 2e-6},
    {OKTO_MAP_LOG, log, 0.01, 10, 2e-6},
    {OKTO_MAP_NEG, r_neg, -2, 2, 0},
    {OKTO_MAP_SQRT, sqrt, 0, 10, 2e-6},
    {OKTO_MAP_ABS, fabs, -2, 2, 0},
    {OKTO_MAP_SQUARE, r_square, -3, 3, 2e-6},
    {OKTO_MAP_RSQRT, r_rsqrt, 0.01, 10, 4e-6},
    {OKTO_MAP_GELU_ERF, r_gelu_erf, -4, 4, 4e-6},
    {OKTO_MAP_SILU, r_silu, -6, 6, 4e-6},
};

typedef struct map_case {
    okto_map_op op;
    const okto_tensor *in;
    okto_tensor *out;
} map_case;

static void rec_map(okto_graph *g, void *p)
{
    map_case *c = p;
    okto_map(g, c->out, c->in, c->op);
}

static void check_map_row(const map_row *row, okto_context *c, okto_dtype dt, const shape *sh,
                          layout l, int parts)
{
    tview in = make(c, dt, sh->rank, sh->d, l), out = make(c, dt, sh->rank, sh->d, L_CONTIG);
    size_t n = numel(sh->rank, sh->d);
    double *x = fill(&in, (uint64_t)row->op * 31 + (uint64_t)n, row->lo, row->hi);
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = row->ref(x[i]);
    map_case cs = {row->op, in.t, out.t};
    char what[128];
    snprintf(what, sizeof what, "map %d %s %s", (int)row->op, okto_dtype_name(dt), layout_name[l]);
    float *got = run_all(c, rec_map, &cs, out.t, NULL, what);
    double tol = dt == OKTO_F32 ? fmax(row->tol32, 1e-7) : tol_ew[dt];
    double err = rel_err(got, want, n);
    if (!(err <= tol))
        fail_msg("%s, shape of %zu: error %g > %g", what, n, err, tol);
    note((okto__op)(OKTO__OP_MAP_RELU + row->op), dt, l, tol, err);
    if (parts)
        cov[OKTO__OP_MAP_RELU + row->op].partitioned = 1;
    free(x), free(want), free(got);
    tview_free(&in), tview_free(&out);
}

static void map_ops(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof map_rows / sizeof *map_rows; r++)
        for (size_t d = 0; d < 3; d++) {
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int l = 0; l < L_COUNT; l++)
                    if (l != L_TRANSPOSED || shapes[s].rank >= 2)
                        check_map_row(&map_rows[r], ctx1, float_dtypes[d], &shapes[s], (layout)l,
                                      0);
            check_map_row(&map_rows[r], ctx3, float_dtypes[d], &big, L_CONTIG, 1);
        }
}

/* ---- binary zips, with broadcasting and the scalar form --------------------------------------- */

typedef struct zip_row {
    okto_zip_op op;
    double (*ref)(double, double);
    double alo, ahi, blo, bhi;
} zip_row;

static double z_add(double a, double b) { return a + b; }
static double z_sub(double a, double b) { return a - b; }
static double z_mul(double a, double b) { return a * b; }
static double z_div(double a, double b) { return a / b; }
static double z_max(double a, double b) { return a > b ? a : b; }
static double z_min(double a, double b) { return a < b ? a : b; }
static double z_relu_grad(double a, double b) { return b > 0 ? a : 0; }

static const zip_row zip_rows[] = {
    {OKTO_ZIP_ADD, z_add, -2, 2, -2, 2},
    {OKTO_ZIP_SUB, z_sub, -2, 2, -2, 2},
    {OKTO_ZIP_MUL, z_mul, -2, 2, -2, 2},
    {OKTO_ZIP_DIV, z_div, -2, 2, 0.5, 3},
    {OKTO_ZIP_MAX, z_max, -2, 2, -2, 2},
    {OKTO_ZIP_MIN, z_min, -2, 2, -2, 2},
    {OKTO_ZIP_RELU_GRAD, z_relu_grad, -2, 2, -2, 2},
};

typedef struct zip_case {
    okto_zip_op op;
    const okto_tensor *a, *b;
    okto_tensor *out;
    float s;
    int scalar;
} zip_case;

static void rec_zip(okto_graph *g, void *p)
{
    zip_case *c = p;
    if (c->scalar)
        okto_zip_scalar(g, c->out, c->a, c->s, c->op);
    else
        okto_zip(g, c->out, c->a, c->b, c->op);
}

/* b broadcasts as `bshape` (aligned at the end, 1 where it broadcasts); NULL: b is a's shape. */
static void check_zip(const zip_row *row, okto_context *c, okto_dtype dt, const shape *sh,
                      const shape *bsh, layout l, int scalar, int parts)
{
    const shape *bs = bsh ? bsh : sh;
    tview a = make(c, dt, sh->rank, sh->d, l), out = make(c, dt, sh->rank, sh->d, L_CONTIG);
    tview b = {0};
    size_t n = numel(sh->rank, sh->d);
    double *x = fill(&a, (uint64_t)row->op * 17 + n, row->alo, row->ahi), *y = NULL;
    double sv = 0;
    if (scalar) {
        sv = 0.5 * (row->blo + row->bhi) + 0.25;
        if (dt != OKTO_F32) /* the scalar is a float: the reference uses it as given */
            sv = (float)sv;
    } else {
        b = make(c, dt, bs->rank, bs->d, bsh ? L_CONTIG : l);
        y = fill(&b, (uint64_t)row->op * 19 + n, row->blo, row->bhi);
    }
    double *want = malloc(n * sizeof *want);
    /* index b by broadcasting: out index -> coordinates -> b's (aligned at the end) */
    for (size_t i = 0; i < n; i++) {
        size_t rest = i, bi = 0, bstride = 1;
        size_t coord[OKTO_MAX_RANK];
        for (int d = sh->rank - 1; d >= 0; d--) {
            coord[d] = rest % sh->d[d];
            rest /= sh->d[d];
        }
        for (int d = bs->rank - 1; d >= 0; d--) {
            int od = d + (sh->rank - bs->rank);
            size_t cd = bs->d[d] == 1 ? 0 : coord[od];
            bi += cd * bstride;
            bstride *= bs->d[d];
        }
        want[i] = row->ref(x[i], scalar ? sv : y[bi]);
    }
    zip_case cs = {row->op, a.t, b.t, out.t, (float)sv, scalar};
    char what[160];
    snprintf(what, sizeof what, "zip %d %s %s%s%s", (int)row->op, okto_dtype_name(dt),
             layout_name[l], bsh ? ", b broadcast" : "", scalar ? ", scalar b" : "");
    float *got = run_all(c, rec_zip, &cs, out.t, NULL, what);
    double tol = dt == OKTO_F32 ? 1e-6 : tol_ew[dt];
    double err = rel_err(got, want, n);
    if (!(err <= tol))
        fail_msg("%s, shape of %zu: error %g > %g", what, n, err, tol);
    note((okto__op)(OKTO__OP_ZIP_ADD + row->op), dt, l, tol, err);
    if (parts)
        cov[OKTO__OP_ZIP_ADD + row->op].partitioned = 1;
    free(x), free(y), free(want), free(got);
    tview_free(&a), tview_free(&out);
    if (!scalar)
        tview_free(&b);
}

static void zip_ops(void **state)
{
    (void)state;
    /* broadcasts: a row over rows (bias), a column over columns, a leading batch, a scalar */
    static const struct {
        shape a, b;
    } bc[] = {
        {{2, {13, 5}}, {1, {5}}},      {{2, {13, 5}}, {2, {13, 1}}},
        {{3, {3, 7, 5}}, {2, {7, 5}}}, {{3, {3, 7, 5}}, {3, {3, 1, 5}}},
        {{4, {2, 3, 4, 5}}, {1, {1}}}, {{2, {257, 129}}, {2, {1, 129}}},
    };
    for (size_t r = 0; r < sizeof zip_rows / sizeof *zip_rows; r++)
        for (size_t d = 0; d < 3; d++) {
            okto_dtype dt = float_dtypes[d];
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int l = 0; l < L_COUNT; l++)
                    if (l != L_TRANSPOSED || shapes[s].rank >= 2)
                        check_zip(&zip_rows[r], ctx1, dt, &shapes[s], NULL, (layout)l, 0, 0);
            for (size_t k = 0; k < sizeof bc / sizeof *bc; k++)
                check_zip(&zip_rows[r], ctx1, dt, &bc[k].a, &bc[k].b, L_CONTIG, 0, 0);
            check_zip(&zip_rows[r], ctx1, dt, &shapes[2], NULL, L_SLICED, 1, 0);
            check_zip(&zip_rows[r], ctx3, dt, &big, NULL, L_CONTIG, 0, 1);
            check_zip(&zip_rows[r], ctx3, dt, &big, &(shape){1, {257}}, L_CONTIG, 0, 1);
        }
}

/* ---- fill, copy, cast, scale, axpy ----------------------------------------------------------- */

typedef struct blas_case {
    okto__op op;
    okto_tensor *y;
    const okto_tensor *x;
    float alpha;
} blas_case;

static void rec_blas(okto_graph *g, void *p)
{
    blas_case *c = p;
    switch (c->op) {
    case OKTO__OP_FILL: okto_fill(g, c->y, c->alpha); break;
    case OKTO__OP_COPY: okto_copy(g, c->y, c->x); break;
    case OKTO__OP_CAST: okto_cast(g, c->y, c->x); break;
    case OKTO__OP_SCALE: okto_scale(g, c->y, c->alpha); break;
    case OKTO__OP_AXPY: okto_axpy(g, c->y, c->alpha, c->x); break;
    default: fail_msg("not a blas op");
    }
}

static double *refill_vals;
static okto_tensor *refill_t;
static void refill(void *p)
{
    (void)p;
    size_t n = okto_tensor_numel(refill_t);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)refill_vals[i];
    TU_OK(okto_tensor_write_f32(refill_t, f));
    free(f);
}

static void check_blas(okto__op op, okto_context *c, okto_dtype ydt, okto_dtype xdt,
                       const shape *sh, layout l, int parts)
{
    tview y = make(c, ydt, sh->rank, sh->d, l), x = {0};
    size_t n = numel(sh->rank, sh->d);
    int has_x = op == OKTO__OP_COPY || op == OKTO__OP_CAST || op == OKTO__OP_AXPY;
    double *yv = fill(&y, (uint64_t)op * 7 + n, -3, 3), *xv = NULL;
    if (has_x) {
        x = make(c, xdt, sh->rank, sh->d, l == L_TRANSPOSED ? L_SLICED : L_TRANSPOSED);
        xv = fill(&x, (uint64_t)op * 11 + n, -3, 3);
    }
    float alpha = op == OKTO__OP_FILL ? 1.25f : -0.75f;
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        switch (op) {
        case OKTO__OP_FILL: want[i] = alpha; break;
        case OKTO__OP_COPY: want[i] = xv[i]; break;
        case OKTO__OP_CAST: want[i] = ydt == OKTO_I32 ? trunc(xv[i]) : xv[i]; break;
        case OKTO__OP_SCALE: want[i] = yv[i] * alpha; break;
        default: want[i] = yv[i] + (double)alpha * xv[i]; break;
        }
    }
    blas_case cs = {op, y.t, x.t, alpha};
    char what[160];
    snprintf(what, sizeof what, "%s %s<-%s %s", okto__ops[op]->name, okto_dtype_name(ydt),
             okto_dtype_name(xdt), layout_name[l]);
    int in_place = op == OKTO__OP_SCALE || op == OKTO__OP_AXPY;
    refill_vals = yv, refill_t = y.t;
    float *got = run_all(c, rec_blas, &cs, y.t, in_place ? refill : NULL, what);
    /* copy is exact; a cast to a narrower dtype rounds once (to nearest), so it is within half
     * an ulp of the target; the arithmetic ones take tol_ew */
    double tol = op == OKTO__OP_COPY || op == OKTO__OP_FILL ? 0
                 : op == OKTO__OP_CAST                      ? tol_ew[ydt]
                 : ydt == OKTO_F32                          ? 1e-6
                                                            : tol_ew[ydt];
    if (op == OKTO__OP_FILL && ydt != OKTO_F32)
        tol = 0; /* 1.25 is exact in every dtype (and 1 in i32: truncated) */
    if (op == OKTO__OP_FILL && ydt == OKTO_I32)
        for (size_t i = 0; i < n; i++)
            want[i] = 1;
    double err = rel_err(got, want, n);
    if (!(err <= tol))
        fail_msg("%s, shape of %zu: error %g > %g", what, n, err, tol);
    note(op, ydt, l, tol, err);
    if (parts)
        cov[op].partitioned = 1;
    free(yv), free(xv), free(want), free(got);
    tview_free(&y);
    if (has_x)
        tview_free(&x);
}

static void blas_ops(void **state)
{
    (void)state;
    static const okto__op ops[] = {OKTO__OP_FILL, OKTO__OP_COPY, OKTO__OP_SCALE, OKTO__OP_AXPY};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        int all = ops[o] == OKTO__OP_FILL || ops[o] == OKTO__OP_COPY;
        for (int d = 0; d < (all ? OKTO_DTYPE_COUNT : 3); d++) {
            okto_dtype dt = (okto_dtype)d;
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int l = 0; l < L_COUNT; l++)
                    if (l != L_TRANSPOSED || shapes[s].rank >= 2)
                        check_blas(ops[o], ctx1, dt, dt, &shapes[s], (layout)l, 0);
            check_blas(ops[o], ctx3, dt, dt, &big, L_CONTIG, 1);
        }
    }
    /* casts between every pair of dtypes */
    for (int a = 0; a < OKTO_DTYPE_COUNT; a++)
        for (int b = 0; b < OKTO_DTYPE_COUNT; b++) {
            check_blas(OKTO__OP_CAST, ctx1, (okto_dtype)a, (okto_dtype)b, &shapes[5], L_SLICED, 0);
            check_blas(OKTO__OP_CAST, ctx3, (okto_dtype)a, (okto_dtype)b, &big, L_CONTIG, 1);
        }
}

/* ---- transfers -------------------------------------------------------------------------------- */

typedef struct xfer_case {
    okto_tensor *t, *u;
    void *host;
} xfer_case;

static void rec_xfer(okto_graph *g, void *p)
{
    xfer_case *c = p;
    okto_download(g, c->host, c->t);
    okto_upload(g, c->u, c->host);
}

static void transfers(void **state)
{
    (void)state;
    for (int d = 0; d < OKTO_DTYPE_COUNT; d++) {
        okto_dtype dt = (okto_dtype)d;
        const shape *sh = &shapes[5];
        size_t n = numel(sh->rank, sh->d);
        tview t = make(ctx1, dt, sh->rank, sh->d, L_CONTIG),
              u = make(ctx1, dt, sh->rank, sh->d, L_CONTIG);
        double *want = fill(&t, 99, -100, 100);
        void *host = malloc(n * okto_dtype_size(dt));
        xfer_case cs = {t.t, u.t, host};
        float *got = run_all(ctx1, rec_xfer, &cs, u.t, NULL, "download then upload");
        double err = rel_err(got, want, n);
        assert_true(err == 0);
        note(OKTO__OP_UPLOAD, dt, L_CONTIG, 0, err);
        note(OKTO__OP_DOWNLOAD, dt, L_CONTIG, 0, err);
        free(want), free(got), free(host);
        tview_free(&t), tview_free(&u);
    }
}

/* ---- matmul ----------------------------------------------------------------------------------- */

typedef struct mm_case {
    okto_tensor *c;
    const okto_tensor *a, *b;
    float alpha, beta;
    unsigned flags;
    int gemm;
} mm_case;

static void rec_mm(okto_graph *g, void *p)
{
    mm_case *c = p;
    if (c->gemm)
        okto_gemm(g, c->c, c->alpha, c->a, c->b, c->beta, c->flags);
    else
        okto_matmul(g, c->c, c->a, c->b, c->flags);
}

static double *mm_c0;
static okto_tensor *mm_ct;
static void mm_refill(void *p)
{
    (void)p;
    refill_vals = mm_c0, refill_t = mm_ct;
    refill(NULL);
}

static void check_mm(okto_context *c, okto_dtype dt, size_t m, size_t n, size_t k, unsigned flags,
                     int gemm, layout la, layout lb, int parts)
{
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    size_t as[2] = {ta ? k : m, ta ? m : k}, bs[2] = {tb ? n : k, tb ? k : n}, cs[2] = {m, n};
    tview A = make(c, dt, 2, as, la), B = make(c, dt, 2, bs, lb), C = make(c, dt, 2, cs, L_CONTIG);
    double *a = fill(&A, m * 7 + k, -1, 1), *b = fill(&B, n * 5 + k, -1, 1);
    double *c0 = fill(&C, m + n, -1, 1);
    float alpha = gemm ? 0.5f : 1.0f, beta = gemm ? -1.5f : (flags & OKTO_ACCUMULATE) ? 1.0f : 0;
    double *want = malloc(m * n * sizeof *want);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++)
                s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = alpha * s + (beta != 0 ? beta * c0[i * n + j] : 0);
        }
    mm_case mc = {C.t, A.t, B.t, alpha, beta, flags & ~(gemm ? OKTO_ACCUMULATE : 0u), gemm};
    char what[160];
    snprintf(what, sizeof what, "%s %s %zux%zux%zu flags %u, a %s, b %s", gemm ? "gemm" : "matmul",
             okto_dtype_name(dt), m, n, k, flags, layout_name[la], layout_name[lb]);
    mm_c0 = c0, mm_ct = C.t;
    float *got = run_all(c, rec_mm, &mc, C.t, mm_refill, what);
    /* a float dot product's error grows with k; half types round the result once more */
    double tol = (4e-6 * sqrt((double)k) + 1e-6) + (dt == OKTO_F32 ? 0 : tol_ew[dt]);
    double err = rel_err(got, want, m * n);
    if (!(err <= tol))
        fail_msg("%s: error %g > %g", what, err, tol);
    /* scaled by (sqrt(k) + 0.25): the base is 4e-6 plus the dtype's rounding */
    double sc = sqrt((double)k) + 0.25;
    note_scaled(OKTO__OP_MATMUL, dt, la, tol, err, sc, "sqrt(k)");
    note_scaled(OKTO__OP_MATMUL, dt, lb, tol, err, sc, "sqrt(k)");
    if (parts)
        cov[OKTO__OP_MATMUL].partitioned = 1;
    free(a), free(b), free(c0), free(want), free(got);
    tview_free(&A), tview_free(&B), tview_free(&C);
}

static void matmul_ops(void **state)
{
    (void)state;
    static const size_t sz[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {64, 1, 257}};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof sz / sizeof *sz; s++)
            for (unsigned f = 0; f < 4; f++)
                for (int l = 0; l < L_COUNT; l++)
                    check_mm(ctx1, float_dtypes[d], sz[s][0], sz[s][1], sz[s][2], f, f == 3,
                             (layout)l, (layout)((l + 1) % L_COUNT), 0);
    /* parts: row panels (m large) and split-K (m small, k large), f32 */
    check_mm(ctx3, OKTO_F32, 768, 300, 400, 0, 0, L_CONTIG, L_TRANSPOSED, 1);
    check_mm(ctx3, OKTO_F32, 40, 300, 6000, OKTO_TRANS_B, 1, L_SLICED, L_CONTIG, 1);
    check_mm(ctx3, OKTO_F16, 768, 300, 400, OKTO_ACCUMULATE, 0, L_CONTIG, L_CONTIG, 1);
}

/* ---- reductions ------------------------------------------------------------------------------- */

typedef struct red_case {
    okto_reduce_op op;
    int axis; /* OKTO_MAX_RANK: all */
    okto_tensor *out;
    const okto_tensor *in;
} red_case;

static void rec_red(okto_graph *g, void *p)
{
    red_case *c = p;
    if (c->axis == OKTO_MAX_RANK)
        okto_reduce_all(g, c->out, c->in, c->op);
    else
        okto_reduce(g, c->out, c->in, c->op, c->axis);
}

static void check_red(okto_context *c, okto_dtype dt, okto_reduce_op op, const shape *sh, int axis,
                      layout l, int parts)
{
    tview in = make(c, dt, sh->rank, sh->d, l);
    size_t n = numel(sh->rank, sh->d);
    double *x = fill(&in, (uint64_t)op * 3 + n + (uint64_t)axis, -2, 2);
    shape os = *sh;
    int all = axis == OKTO_MAX_RANK, ax = all ? 0 : (axis < 0 ? axis + sh->rank : axis);
    if (all) {
        os.rank = 1, os.d[0] = 1;
    } else {
        os.d[ax] = 1;
    }
    tview out = make(c, dt, os.rank, os.d, L_CONTIG);
    size_t on = numel(os.rank, os.d);
    double *want = malloc(on * sizeof *want);
    for (size_t o = 0; o < on; o++)
        want[o] = op == OKTO_REDUCE_MAX ? -INFINITY : op == OKTO_REDUCE_MIN ? INFINITY : 0;
    size_t outer = 1, inner = 1, R = all ? n : sh->d[ax];
    for (int i = 0; !all && i < ax; i++)
        outer *= sh->d[i];
    for (int i = ax + 1; !all && i < sh->rank; i++)
        inner *= sh->d[i];
    if (all)
        outer = 1, inner = 1;
    for (size_t o = 0; o < outer; o++)
        for (size_t r = 0; r < R; r++)
            for (size_t i = 0; i < inner; i++) {
                double v = x[(o * R + r) * inner + i];
                double *w = &want[o * inner + i];
                *w = op == OKTO_REDUCE_MAX   ? fmax(*w, v)
                     : op == OKTO_REDUCE_MIN ? fmin(*w, v)
                                             : *w + v;
            }
    if (op == OKTO_REDUCE_MEAN)
        for (size_t o = 0; o < on; o++)
            want[o] /= (double)R;
    red_case rc = {op, axis, out.t, in.t};
    char what[160];
    snprintf(what, sizeof what, "reduce %d axis %d %s %s", (int)op, axis, okto_dtype_name(dt),
             layout_name[l]);
    float *got = run_all(c, rec_red, &rc, out.t, NULL, what);
    /* a sum's error relative to the sum of |x| (about R * 1 here): scale the tolerance */
    int sum = op == OKTO_REDUCE_SUM;
    double sc = sum ? fmax(1.0, sqrt((double)R)) : 1.0;
    double tol = (op == OKTO_REDUCE_MAX || op == OKTO_REDUCE_MIN)
                     ? (dt == OKTO_F32 ? 0 : tol_ew[dt])
                     : (dt == OKTO_F32 ? 1e-6 : tol_ew[dt]) * sc;
    double err = rel_err(got, want, on);
    if (!(err <= tol))
        fail_msg("%s on %zu: error %g > %g", what, n, err, tol);
    note_scaled((okto__op)(OKTO__OP_REDUCE_SUM + op), dt, l, tol, err, sc, sum ? "sqrt(n)" : NULL);
    if (parts)
        cov[OKTO__OP_REDUCE_SUM + op].partitioned = 1;
    free(x), free(want), free(got);
    tview_free(&in), tview_free(&out);
}

static void reduce_ops(void **state)
{
    (void)state;
    for (int op = 0; op < OKTO_REDUCE_COUNT; op++)
        for (size_t d = 0; d < 3; d++) {
            okto_dtype dt = float_dtypes[d];
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                const shape *sh = &shapes[s];
                for (int axis = -1; axis < sh->rank; axis++)
                    for (int l = 0; l < L_COUNT; l++)
                        if (l != L_TRANSPOSED || sh->rank >= 2)
                            check_red(ctx1, dt, (okto_reduce_op)op, sh,
                                      axis == -1 ? OKTO_MAX_RANK : axis, (layout)l, 0);
            }
            check_red(ctx3, dt, (okto_reduce_op)op, &big, 0, L_CONTIG, 1);
            check_red(ctx3, dt, (okto_reduce_op)op, &big, 1, L_TRANSPOSED, 1);
            check_red(ctx3, dt, (okto_reduce_op)op, &big, OKTO_MAX_RANK, L_CONTIG, 1);
        }
}

/* ---- softmax and softmax_xent ----------------------------------------------------------------- */

typedef struct sm_case {
    okto_tensor *out, *loss, *grad;
    const okto_tensor *in, *labels;
} sm_case;

static void rec_sm(okto_graph *g, void *p)
{
    sm_case *c = p;
    okto_softmax(g, c->out, c->in);
}

static void rec_xent(okto_graph *g, void *p)
{
    sm_case *c = p;
    okto_softmax_xent(g, c->loss, c->grad, c->in, c->labels);
}

static void check_softmax(okto_context *c, okto_dtype dt, const shape *sh, layout l, int parts)
{
    tview in = make(c, dt, sh->rank, sh->d, l), out = make(c, dt, sh->rank, sh->d, L_SLICED);
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    double *x = fill(&in, n + 5, -6, 6), *want = malloc(n * sizeof *want);
    for (size_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (size_t j = 0; j < cols; j++)
            m = fmax(m, x[r * cols + j]);
        for (size_t j = 0; j < cols; j++)
            s += exp(x[r * cols + j] - m);
        for (size_t j = 0; j < cols; j++)
            want[r * cols + j] = exp(x[r * cols + j] - m) / s;
    }
    sm_case cs = {.out = out.t, .in = in.t};
    char what[128];
    snprintf(what, sizeof what, "softmax %s %s", okto_dtype_name(dt), layout_name[l]);
    float *got = run_all(c, rec_sm, &cs, out.t, NULL, what);
    double tol = dt == OKTO_F32 ? 2e-6 : tol_ew[dt];
    double err = rel_err(got, want, n);
    if (!(err <= tol))
        fail_msg("%s on %zu: error %g > %g", what, n, err, tol);
    note(OKTO__OP_SOFTMAX, dt, l, tol, err);
    if (parts)
        cov[OKTO__OP_SOFTMAX].partitioned = 1;
    free(x), free(want), free(got);
    tview_free(&in), tview_free(&out);
}

static void check_xent(okto_context *c, okto_dtype dt, const shape *sh, layout l, int parts)
{
    tview in = make(c, dt, sh->rank, sh->d, l), grad = make(c, dt, sh->rank, sh->d, L_CONTIG);
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    tview lab = make(c, OKTO_I32, 1, (size_t[]){rows}, L_CONTIG);
    tview loss = make(c, dt, 1, (size_t[]){1}, L_CONTIG);
    double *x = fill(&in, n + 9, -6, 6), *y = fill(&lab, rows, 0, (double)cols - 0.01);
    double *gw = malloc(n * sizeof *gw), lw = 0;
    for (size_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (size_t j = 0; j < cols; j++)
            m = fmax(m, x[r * cols + j]);
        for (size_t j = 0; j < cols; j++)
            s += exp(x[r * cols + j] - m);
        size_t label = (size_t)y[r];
        lw += (m + log(s) - x[r * cols + label]) / (double)rows;
        for (size_t j = 0; j < cols; j++)
            gw[r * cols + j] =
                (exp(x[r * cols + j] - m) / s - (j == label ? 1.0 : 0.0)) / (double)rows;
    }
    sm_case cs = {.loss = loss.t, .grad = grad.t, .in = in.t, .labels = lab.t};
    char what[128];
    snprintf(what, sizeof what, "softmax_xent %s %s", okto_dtype_name(dt), layout_name[l]);
    float *g0 = run_all(c, rec_xent, &cs, grad.t, NULL, what);
    float *l0 = read_all(loss.t);
    /* the gradient is O(1/rows): its error is judged against that scale */
    double tol = dt == OKTO_F32 ? 2e-6 : tol_ew[dt], err = 0;
    for (size_t i = 0; i < n; i++)
        err = fmax(err, fabs((double)g0[i] - gw[i]) * (double)rows);
    double lerr = fabs((double)l0[0] - lw) / fmax(1.0, fabs(lw));
    if (!(err <= tol) || !(lerr <= tol))
        fail_msg("%s on %zu: gradient error %g, loss error %g > %g", what, n, err, lerr, tol);
    note(OKTO__OP_SOFTMAX_XENT, dt, l, tol, fmax(err, lerr));
    if (parts)
        cov[OKTO__OP_SOFTMAX_XENT].partitioned = 1;
    free(x), free(y), free(gw), free(g0), free(l0);
    tview_free(&in), tview_free(&grad), tview_free(&lab), tview_free(&loss);
}

static void softmax_ops(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int l = 0; l < L_COUNT; l++)
                if (l != L_TRANSPOSED || shapes[s].rank >= 2) {
                    check_softmax(ctx1, float_dtypes[d], &shapes[s], (layout)l, 0);
                    check_xent(ctx1, float_dtypes[d], &shapes[s], (layout)l, 0);
                }
        check_softmax(ctx3, float_dtypes[d], &big, L_CONTIG, 1);
        check_xent(ctx3, float_dtypes[d], &big, L_CONTIG, 1);
    }
}

/* ---- gradients of the elementwise ops, against central differences ----------------------------- */

/* The derivative of f at x by central differences in double (h relative to x). */
static double fd1(double (*f)(double), double x)
{
    double h = 1e-5 * fmax(1.0, fabs(x));
    return (f(x + h) - f(x - h)) / (2 * h);
}

typedef struct mapgrad_case {
    okto_map_op op;
    okto_tensor *dx;
    const okto_tensor *dy, *x;
    unsigned flags;
} mapgrad_case;

static void rec_mapgrad(okto_graph *g, void *p)
{
    mapgrad_case *c = p;
    okto_map_backward(g, c->dx, c->dy, c->x, c->op, c->flags);
}

static double *mg_dx0;
static okto_tensor *mg_dxt;
static void mg_refill(void *p)
{
    (void)p;
    refill_vals = mg_dx0, refill_t = mg_dxt;
    refill(NULL);
}

static void check_map_grad(const map_row *row, okto_context *c, okto_dtype dt, const shape *sh,
                           layout l, int acc, int parts)
{
    tview x = make(c, dt, sh->rank, sh->d, l), dy = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview dx = make(c, dt, sh->rank, sh->d, L_CONTIG);
    size_t n = numel(sh->rank, sh->d);
    /* away from the kinks (relu, abs at 0) and from where a derivative blows up (sqrt, log and
     * rsqrt at 0): a central difference there says nothing */
    double lo = row->lo >= 0 ? fmax(row->lo, 0.1) : row->lo, hi = row->hi;
    double *xv = fill(&x, (uint64_t)row->op * 13 + n, lo, hi);
    for (size_t i = 0; i < n; i++)
        if (fabs(xv[i]) < 1e-3 && (row->op == OKTO_MAP_RELU || row->op == OKTO_MAP_ABS))
            xv[i] = 0.5;
    {
        float *f = malloc(n * sizeof *f);
        for (size_t i = 0; i < n; i++)
            f[i] = (float)xv[i];
        TU_OK(okto_tensor_write_f32(x.t, f));
        TU_OK(okto_tensor_read_f32(x.t, f));
        for (size_t i = 0; i < n; i++)
            xv[i] = f[i];
        free(f);
    }
    double *g = fill(&dy, n + 1, -1, 1), *d0 = fill(&dx, n + 2, -1, 1);
    double *want = malloc(n * sizeof *want), scale = 1;
    for (size_t i = 0; i < n; i++) {
        want[i] = g[i] * fd1(row->ref, xv[i]) + (acc ? d0[i] : 0);
        scale = fmax(scale, fabs(fd1(row->ref, xv[i])));
    }
    mapgrad_case cs = {row->op, dx.t, dy.t, x.t, acc ? OKTO_ACCUMULATE : 0};
    char what[128];
    snprintf(what, sizeof what, "map %d backward %s %s%s", (int)row->op, okto_dtype_name(dt),
             layout_name[l], acc ? " accumulate" : "");
    mg_dx0 = d0, mg_dxt = dx.t;
    float *got = run_all(c, rec_mapgrad, &cs, dx.t, mg_refill, what);
    /* the derivative's own error (a few ulps, the difference quotient's ~1e-9) times |dy| <= 1,
     * relative to the derivative's scale */
    double tol = (dt == OKTO_F32 ? 1e-5 : 2 * tol_ew[dt]) * scale;
    double err = rel_err(got, want, n);
    if (!(err <= tol))
        fail_msg("%s, shape of %zu: error %g > %g", what, n, err, tol);
    note_scaled((okto__op)(OKTO__OP_MAPGRAD_RELU + row->op), dt, l, tol, err, scale, "max |f'|");
    if (parts)
        cov[OKTO__OP_MAPGRAD_RELU + row->op].partitioned = 1;
    free(xv), free(g), free(d0), free(want), free(got);
    tview_free(&x), tview_free(&dy), tview_free(&dx);
}

static void map_backward_ops(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof map_rows / sizeof *map_rows; r++)
        for (size_t d = 0; d < 3; d++) {
            check_map_grad(&map_rows[r], ctx1, float_dtypes[d], &shapes[2], L_CONTIG, 0, 0);
            check_map_grad(&map_rows[r], ctx1, float_dtypes[d], &shapes[5], L_TRANSPOSED, 1, 0);
            check_map_grad(&map_rows[r], ctx3, float_dtypes[d], &big, L_SLICED, 0, 1);
        }
}

typedef struct zipgrad_case {
    okto_zip_op op;
    okto_tensor *da, *db;
    const okto_tensor *dy, *a, *b;
    unsigned flags;
} zipgrad_case;

static void rec_zipgrad(okto_graph *g, void *p)
{
    zipgrad_case *c = p;
    okto_zip_backward(g, c->da, c->db, c->dy, c->a, c->b, c->op, c->flags);
}

static const zip_row *zg_row;
static double zg_b;
static double zg_fa(double a) { return zg_row->ref(a, zg_b); }
static double zg_a;
static double zg_fb(double b) { return zg_row->ref(zg_a, b); }

/* dy [13, 5] with b broadcast from bshape; da and db against central differences, summed over
 * b's broadcast dimension */
static void check_zip_grad(const zip_row *row, okto_context *c, okto_dtype dt, const shape *sh,
                           const shape *bsh, int acc)
{
    const shape *bs = bsh ? bsh : sh;
    tview a = make(c, dt, sh->rank, sh->d, L_TRANSPOSED),
          b = make(c, dt, bs->rank, bs->d, L_CONTIG);
    tview dy = make(c, dt, sh->rank, sh->d, L_CONTIG);
    tview da = make(c, dt, sh->rank, sh->d, L_SLICED), db = make(c, dt, bs->rank, bs->d, L_CONTIG);
    size_t n = numel(sh->rank, sh->d), nb = numel(bs->rank, bs->d);
    double *av = fill(&a, 3 + n, row->alo, row->ahi), *bv = fill(&b, 5 + nb, row->blo, row->bhi);
    double *g = fill(&dy, 7, -1, 1), *da0 = fill(&da, 11, -1, 1), *db0 = fill(&db, 13, -1, 1);
    /* max/min/relu_grad have kinks where a == b or b == 0: keep the points off them */
    double *wa = malloc(n * sizeof *wa), *wb = calloc(nb, sizeof *wb), scale = 1;
    zg_row = row;
    for (size_t i = 0; i < n; i++) {
        size_t bi = bsh ? i % nb : i; /* the broadcasts below are trailing rows */
        zg_a = av[i], zg_b = bv[bi];
        double ga = fd1(zg_fa, av[i]), gb = fd1(zg_fb, bv[bi]);
        if (fabs(av[i] - bv[bi]) < 1e-3 || fabs(bv[bi]) < 1e-3)
            ga = gb = NAN; /* not compared: see below */
        wa[i] = g[i] * ga + (acc ? da0[i] : 0);
        wb[bi] += g[i] * gb;
        scale = fmax(scale, fmax(fabs(ga), fabs(gb)));
    }
    for (size_t j = 0; j < nb; j++)
        wb[j] += acc ? db0[j] : 0;
    zipgrad_case cs = {row->op, da.t, db.t, dy.t, a.t, b.t, acc ? OKTO_ACCUMULATE : 0};
    char what[128];
    snprintf(what, sizeof what, "zip %d backward %s%s%s", (int)row->op, okto_dtype_name(dt),
             bsh ? " broadcast" : "", acc ? " accumulate" : "");
    double *both0 = da0;
    mg_dx0 = both0, mg_dxt = da.t;
    /* run the policies by hand: two outputs, both restored before each run */
    float *ga0 = NULL, *gb0 = NULL;
    for (int sch = 1; sch < OKTO_SCHED_COUNT; sch++) {
        okto_graph *gr;
        TU_OK(okto_graph_create(c, &gr));
        TU_OK(okto_graph_set_sched(gr, (okto_sched)sch));
        rec_zipgrad(gr, &cs);
        if (okto_graph_status(gr, NULL) != OKTO_OK)
            fail_msg("%s: recording failed: %s", what, okto_last_error(c));
        refill_vals = da0, refill_t = da.t;
        refill(NULL);
        refill_vals = db0, refill_t = db.t;
        refill(NULL);
        TU_OK(okto_graph_run(gr));
        float *x1 = read_all(da.t), *x2 = read_all(db.t);
        if (!ga0) {
            ga0 = x1, gb0 = x2;
        } else {
            if (memcmp(ga0, x1, n * sizeof *x1) || memcmp(gb0, x2, nb * sizeof *x2))
                fail_msg("%s: %s differs from sequential", what, okto_sched_name((okto_sched)sch));
            free(x1), free(x2);
        }
        okto_graph_destroy(gr);
    }
    /* kinks: where a point sat on one, the element (and its broadcast sum) is not judged */
    for (size_t i = 0; i < n; i++)
        if (isnan(wa[i]))
            wa[i] = ga0[i];
    for (size_t j = 0; j < nb; j++)
        if (isnan(wb[j]))
            wb[j] = gb0[j];
    double red = bsh ? (double)(n / nb) : 1;
    double tol = (dt == OKTO_F32 ? 1e-5 : 2 * tol_ew[dt]) * scale;
    double ea = rel_err(ga0, wa, n), eb = rel_err(gb0, wb, nb);
    if (!(ea <= tol) || !(eb <= tol * sqrt(red)))
        fail_msg("%s: da error %g, db error %g > %g", what, ea, eb, tol);
    note_scaled((okto__op)(OKTO__OP_ZIPGRAD_ADD + row->op), dt, L_TRANSPOSED, tol, fmax(ea, eb),
                scale, "max |df|");
    if (c == ctx3)
        cov[OKTO__OP_ZIPGRAD_ADD + row->op].partitioned = 1;
    if (bsh)
        note_scaled(OKTO__OP_SUM_TO, dt, L_CONTIG, tol * sqrt(red), eb, scale * sqrt(red),
                    "max |df| sqrt(n)");
    free(av), free(bv), free(g), free(da0), free(db0), free(wa), free(wb), free(ga0), free(gb0);
    tview_free(&a), tview_free(&b), tview_free(&dy), tview_free(&da), tview_free(&db);
}

static void zip_backward_ops(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof zip_rows / sizeof *zip_rows; r++)
        for (size_t d = 0; d < 3; d++) {
            check_zip_grad(&zip_rows[r], ctx1, float_dtypes[d], &shapes[2], NULL, 0);
            check_zip_grad(&zip_rows[r], ctx1, float_dtypes[d], &shapes[2], &(shape){1, {5}}, 1);
            check_zip_grad(&zip_rows[r], ctx3, float_dtypes[d], &big, &(shape){2, {1, 257}}, 0);
        }
    cov[OKTO__OP_SUM_TO].partitioned = 1;
}

/* ==== ops1: norms, softmax gradients, cross-entropy, embedding, dropout, argmax, optimizers ====
 * Forward against the double references of tests/ref/ (the ones the raw-OpenCL kernel checks
 * use), backward against the reference backward and, in double, the reference backward against
 * central differences of the reference forward (so the formula the kernels implement is the
 * gradient), every float dtype, layouts (transposed views, column slices: copied by the ops),
 * OKTO_ACCUMULATE, row parts on ctx3, every policy giving the same bits. */
#include "ref_argmax.h"
#include "ref_dropout.h"
#include "ref_embed.h"
#include "ref_norm.h"
#include "ref_optim.h"
#include "ref_softmax_ext.h"
#include "ref_xent.h"

/* max |got - want| / max(1, max |want|): for gradients, whose elements cancel within a row */
static double scaled_err(const float *got, const double *want, size_t n)
{
    double m = 1, worst = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(want[i]))
            m = fmax(m, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) && isnan(got[i]))
            continue;
        double d = fabs((double)got[i] - want[i]) / m;
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Runs rec under every policy; *got[k] = the sequential run's outs[k]; the other policies must
 * give the same bits. refill (may be NULL) rewrites in-place operands before each run. */
static void run_n(okto_context *c, record_fn rec, void *cs, int nout, const okto_tensor **outs,
                  void (*refill_fn)(void *), const char *what, float **got)
{
    for (int k = 0; k < nout; k++)
        got[k] = NULL;
    for (int s = 1; s < OKTO_SCHED_COUNT; s++) {
        okto_graph *g;
        TU_OK(okto_graph_create(c, &g));
        TU_OK(okto_graph_set_sched(g, (okto_sched)s));
        rec(g, cs);
        if (okto_graph_status(g, NULL) != OKTO_OK)
            fail_msg("%s: recording failed: %s", what, okto_last_error(c));
        if (refill_fn)
            refill_fn(cs);
        if (okto_graph_run(g) != OKTO_OK)
            fail_msg("%s under %s: %s", what, okto_sched_name((okto_sched)s), okto_last_error(c));
        for (int k = 0; k < nout; k++) {
            if (!outs[k])
                continue;
            float *h = read_all(outs[k]);
            if (!got[k]) {
                got[k] = h;
            } else {
                if (memcmp(got[k], h, okto_tensor_numel(outs[k]) * sizeof *h) != 0)
                    fail_msg("%s: output %d under %s differs from sequential", what, k,
                             okto_sched_name((okto_sched)s));
                free(h);
            }
        }
        TU_OK(okto_graph_destroy(g));
    }
}

static void write_vals(okto_tensor *t, const double *v)
{
    size_t n = okto_tensor_numel(t);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    TU_OK(okto_tensor_write_f32(t, f));
    free(f);
}

/* Central differences of a double function of p at a few of its elements against grad. */
typedef double (*fd_fn)(void *ctx);
static void fd_check(fd_fn f, void *ctx, double *p, size_t n, const double *grad, const char *what)
{
    size_t step = n > 7 ? n / 7 : 1;
    for (size_t i = 0; i < n; i += step) {
        double keep = p[i], h = 1e-6 * fmax(1.0, fabs(keep));
        p[i] = keep + h;
        double fp = f(ctx);
        p[i] = keep - h;
        double fm = f(ctx);
        p[i] = keep;
        double d = (fp - fm) / (2 * h);
        if (!(fabs(d - grad[i]) <= 1e-6 * fmax(1.0, fabs(grad[i]))))
            fail_msg("%s: central difference %.9g at %zu but the reference backward says %.9g",
                     what, d, i, grad[i]);
    }
}

/* The half dtypes run on the shapes with more than one row and column only (the degenerate
 * ones are dtype-independent paths already covered in f32), to keep test_ops short. */
static int ops1_shape(size_t d, size_t s) { return d == 0 || (s != 0 && s != 3 && s != 4); }

static const double tol_grad[OKTO_DTYPE_COUNT] = {
    [OKTO_F32] = 2e-5, [OKTO_F16] = 2e-3, [OKTO_BF16] = 1.6e-2, [OKTO_I32] = 0};

/* ---- layernorm and rmsnorm ---- */

typedef struct norm_case {
    int rms;
    unsigned flags;
    okto_tensor *y, *mean, *rstd, *dx, *dw, *db;
    const okto_tensor *x, *w, *b, *dy;
    double *dx0, *dw0, *db0;
    float eps;
} norm_case;

static void rec_norm(okto_graph *g, void *p)
{
    norm_case *c = p;
    if (c->rms) {
        okto_rmsnorm(g, c->y, c->rstd, c->x, c->w, c->eps);
        okto_rmsnorm_backward(g, c->dx, c->dw, c->dy, c->x, c->w, c->rstd, c->flags);
    } else {
        okto_layernorm(g, c->y, c->mean, c->rstd, c->x, c->w, c->b, c->eps);
        okto_layernorm_backward(g, c->dx, c->dw, c->db, c->dy, c->x, c->w, c->mean, c->rstd,
                                c->flags);
    }
}

static void refill_norm(void *p)
{
    norm_case *c = p;
    if (!(c->flags & OKTO_ACCUMULATE))
        return;
    write_vals(c->dx, c->dx0);
    write_vals(c->dw, c->dw0);
    if (c->db)
        write_vals(c->db, c->db0);
}

/* the double forward's sum(dy * y) as a function of x, w or b (for central differences) */
typedef struct norm_fd {
    int rms;
    double *x, *w, *b, *dy, *y;
    size_t rows, cols;
    double eps;
} norm_fd;
static double norm_fd_loss(void *p)
{
    norm_fd *f = p;
    if (f->rms)
        ref_rmsnorm_fwd(f->x, f->w, f->y, NULL, f->rows, f->cols, f->eps);
    else
        ref_layernorm_fwd(f->x, f->w, f->b, f->y, NULL, NULL, f->rows, f->cols, f->eps);
    double s = 0;
    for (size_t i = 0; i < f->rows * f->cols; i++)
        s += f->dy[i] * f->y[i];
    return s;
}

static void check_norm(okto_context *c, int rms, okto_dtype dt, const shape *sh, layout l, int acc,
                       int affine, int parts)
{
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    tview x = make(c, dt, sh->rank, sh->d, l), dy = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview y = make(c, dt, sh->rank, sh->d, (layout)((l + 1) % L_COUNT));
    tview dx = make(c, dt, sh->rank, sh->d, (layout)((l + 2) % L_COUNT));
    tview w = make(c, dt, 1, &cols, L_SLICED), b = make(c, dt, 1, &cols, L_CONTIG);
    tview dw = make(c, dt, 1, &cols, L_CONTIG), db = make(c, dt, 1, &cols, L_SLICED);
    tview mean = make(c, OKTO_F32, 1, &rows, L_CONTIG),
          rstd = make(c, OKTO_F32, 1, &rows, L_CONTIG);
    double *xv = fill(&x, n * 3 + (uint64_t)rms, -2, 3), *dyv = fill(&dy, n + 1, -1, 1);
    double *wv = fill(&w, cols + 2, 0.5, 1.5), *bv = fill(&b, cols + 3, -0.5, 0.5);
    double *dx0 = fill(&dx, 5, -1, 1), *dw0 = fill(&dw, 6, -1, 1), *db0 = fill(&db, 7, -1, 1);
    float eps = 1e-5f;
    double *yw = malloc(n * sizeof *yw), *mw = malloc(rows * sizeof *mw),
           *rw = malloc(rows * sizeof *rw), *dxw = malloc(n * sizeof *dxw),
           *dww = malloc(cols * sizeof *dww), *dbw = malloc(cols * sizeof *dbw);
    const double *W = affine ? wv : NULL, *B = affine ? bv : NULL;
    if (rms) {
        ref_rmsnorm_fwd(xv, W, yw, rw, rows, cols, eps);
        ref_rmsnorm_bwd(dyv, xv, W, dxw, dww, rows, cols, eps);
    } else {
        ref_layernorm_fwd(xv, W, B, yw, mw, rw, rows, cols, eps);
        ref_layernorm_bwd(dyv, xv, W, dxw, dww, dbw, rows, cols, eps);
    }
    if (dt == OKTO_F32 && !parts && !acc) { /* the reference backward is the gradient */
        double *wc = malloc(cols * sizeof *wc), *ys = malloc(n * sizeof *ys);
        for (size_t i = 0; i < cols; i++)
            wc[i] = affine ? wv[i] : 1.0;
        norm_fd f = {rms, xv, wc, bv, dyv, ys, rows, cols, eps};
        double *dww1 = malloc(cols * sizeof *dww1), *dbw1 = malloc(cols * sizeof *dbw1);
        if (rms)
            ref_rmsnorm_bwd(dyv, xv, wc, NULL, dww1, rows, cols, eps);
        else
            ref_layernorm_bwd(dyv, xv, wc, NULL, dww1, dbw1, rows, cols, eps);
        fd_check(norm_fd_loss, &f, xv, n, dxw, "norm dx");
        fd_check(norm_fd_loss, &f, wc, cols, dww1, "norm dweight");
        if (!rms)
            fd_check(norm_fd_loss, &f, bv, cols, dbw1, "norm dbias");
        free(wc), free(ys), free(dww1), free(dbw1);
    }
    if (acc) {
        for (size_t i = 0; i < n; i++)
            dxw[i] += dx0[i];
        for (size_t i = 0; i < cols; i++)
            dww[i] += dw0[i], dbw[i] += db0[i];
    }
    norm_case cs = {rms,
                    acc ? OKTO_ACCUMULATE : 0,
                    y.t,
                    rms ? NULL : mean.t,
                    rstd.t,
                    dx.t,
                    dw.t,
                    rms ? NULL : db.t,
                    x.t,
                    affine ? w.t : NULL,
                    affine && !rms ? b.t : NULL,
                    dy.t,
                    dx0,
                    dw0,
                    db0,
                    eps};
    const okto_tensor *outs[] = {y.t, rms ? NULL : mean.t, rstd.t, dx.t, dw.t, rms ? NULL : db.t};
    float *got[6];
    char what[160];
    snprintf(what, sizeof what, "%s %s %s %zux%zu%s%s", rms ? "rmsnorm" : "layernorm",
             okto_dtype_name(dt), layout_name[l], rows, cols, acc ? " accumulate" : "",
             affine ? "" : " no weight");
    run_n(c, rec_norm, &cs, 6, outs, refill_norm, what, got);
    double tol_y = (dt == OKTO_F32 ? 1e-5 : tol_ew[dt] + 1e-5), ey = rel_err(got[0], yw, n);
    double es = fmax(rms ? 0 : rel_err(got[1], mw, rows), rel_err(got[2], rw, rows));
    double ex = scaled_err(got[3], dxw, n), ew = scaled_err(got[4], dww, cols);
    double eb = rms ? 0 : scaled_err(got[5], dbw, cols);
    double tol_p = tol_grad[dt] + 2e-6 * sqrt((double)rows);
    if (!(ey <= tol_y) || !(es <= 1e-5) || !(ex <= tol_grad[dt]) || !(ew <= tol_p) ||
        !(eb <= tol_p))
        fail_msg("%s: y %g (tol %g), stats %g, dx %g (tol %g), dweight %g, dbias %g (tol %g)", what,
                 ey, tol_y, es, ex, tol_grad[dt], ew, eb, tol_p);
    note(rms ? OKTO__OP_RMSNORM : OKTO__OP_LAYERNORM, dt, l, tol_y, fmax(ey, es));
    note(rms ? OKTO__OP_RMSNORM_BACKWARD : OKTO__OP_LAYERNORM_BACKWARD, dt, l, tol_grad[dt], ex);
    /* tol_p grows as 2e-6 sqrt(rows) over the dtype's gradient bound: the table shows the
     * largest bound used (1024 rows on ctx3) */
    note(rms ? OKTO__OP_RMSNORM_BACKWARD_PARAMS : OKTO__OP_LAYERNORM_BACKWARD_PARAMS, dt, l, tol_p,
         fmax(ew, eb));
    if (parts) {
        cov[rms ? OKTO__OP_RMSNORM : OKTO__OP_LAYERNORM].partitioned = 1;
        cov[rms ? OKTO__OP_RMSNORM_BACKWARD : OKTO__OP_LAYERNORM_BACKWARD].partitioned = 1;
        cov[rms ? OKTO__OP_RMSNORM_BACKWARD_PARAMS : OKTO__OP_LAYERNORM_BACKWARD_PARAMS]
            .partitioned = 1;
    }
    for (int k = 0; k < 6; k++)
        free(got[k]);
    free(xv), free(dyv), free(wv), free(bv), free(dx0), free(dw0), free(db0);
    free(yw), free(mw), free(rw), free(dxw), free(dww), free(dbw);
    tview_free(&x), tview_free(&dy), tview_free(&y), tview_free(&dx), tview_free(&w);
    tview_free(&b), tview_free(&dw), tview_free(&db), tview_free(&mean), tview_free(&rstd);
}

/* y = layernorm(x) in place (y is x), and the statistics left out */
static void norm_in_place(void)
{
    const size_t sh[2] = {13, 5};
    tview x = make(ctx1, OKTO_F32, 2, sh, L_CONTIG);
    double *xv = fill(&x, 77, -2, 2), *yw = malloc(65 * sizeof *yw);
    ref_layernorm_fwd(xv, NULL, NULL, yw, NULL, NULL, 13, 5, 1e-5);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx1, &g));
    TU_OK(okto_layernorm(g, x.t, NULL, NULL, x.t, NULL, NULL, 1e-5f));
    TU_OK(okto_graph_run(g));
    float *got = read_all(x.t);
    assert_true(rel_err(got, yw, 65) <= 1e-5);
    TU_OK(okto_graph_destroy(g));
    free(xv), free(yw), free(got);
    tview_free(&x);
}

static void norm_ops(void **state)
{
    (void)state;
    for (int rms = 0; rms < 2; rms++) {
        for (size_t d = 0; d < 3; d++) {
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int l = 0; l < L_COUNT; l++)
                    if ((l != L_TRANSPOSED || shapes[s].rank >= 2) && ops1_shape(d, s))
                        check_norm(ctx1, rms, float_dtypes[d], &shapes[s], (layout)l,
                                   (int)(s + (size_t)l) % 3 == 1, s != 3, 0);
            check_norm(ctx3, rms, float_dtypes[d], &big, L_CONTIG, d == 1, 1, 1);
        }
    }
    norm_in_place();
}

/* ---- softmax backward, log_softmax and its backward ---- */

typedef struct smx_case {
    int log;
    unsigned flags;
    okto_tensor *y, *dx;
    const okto_tensor *x, *yin, *dy;
    double *dx0;
} smx_case;

static void rec_smx(okto_graph *g, void *p)
{
    smx_case *c = p;
    if (c->log)
        okto_log_softmax(g, c->y, c->x);
    if (c->log)
        okto_log_softmax_backward(g, c->dx, c->dy, c->yin, c->flags);
    else
        okto_softmax_backward(g, c->dx, c->dy, c->yin, c->flags);
}

static void refill_smx(void *p)
{
    smx_case *c = p;
    if (c->flags & OKTO_ACCUMULATE)
        write_vals(c->dx, c->dx0);
}

typedef struct smx_fd {
    int log;
    double *x, *y, *dy;
    size_t rows, cols;
} smx_fd;
static double smx_fd_loss(void *p)
{
    smx_fd *f = p;
    if (f->log)
        ref_log_softmax_fwd(f->x, f->y, f->rows, f->cols);
    else
        ref_softmax_fwd(f->x, f->y, f->rows, f->cols);
    double s = 0;
    for (size_t i = 0; i < f->rows * f->cols; i++)
        s += f->dy[i] * f->y[i];
    return s;
}

static void check_smx(okto_context *c, int log, okto_dtype dt, const shape *sh, layout l, int acc,
                      int parts)
{
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    tview x = make(c, dt, sh->rank, sh->d, l), y = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview yin = make(c, dt, sh->rank, sh->d, (layout)((l + 1) % L_COUNT));
    tview dy = make(c, dt, sh->rank, sh->d, (layout)((l + 2) % L_COUNT));
    tview dx = make(c, dt, sh->rank, sh->d, l);
    double *xv = fill(&x, n + 11 + (uint64_t)log, -6, 6), *dyv = fill(&dy, n + 12, -1, 1);
    double *dx0 = fill(&dx, n + 13, -1, 1), *yw = malloc(n * sizeof *yw);
    double *yr = malloc(n * sizeof *yr), *dxw = malloc(n * sizeof *dxw);
    (log ? ref_log_softmax_fwd : ref_softmax_fwd)(xv, yw, rows, cols);
    /* the backward's y: the reference forward as the device holds it */
    write_vals(yin.t, yw);
    {
        float *f = read_all(yin.t);
        for (size_t i = 0; i < n; i++)
            yr[i] = f[i];
        free(f);
    }
    (log ? ref_log_softmax_bwd : ref_softmax_bwd)(yr, dyv, dxw, rows, cols);
    if (dt == OKTO_F32 && !acc && !parts) {
        double *g = malloc(n * sizeof *g), *ys = malloc(n * sizeof *ys);
        (log ? ref_log_softmax_bwd : ref_softmax_bwd)(yw, dyv, g, rows, cols);
        smx_fd f = {log, xv, ys, dyv, rows, cols};
        fd_check(smx_fd_loss, &f, xv, n, g, log ? "log_softmax dx" : "softmax dx");
        free(g), free(ys);
    }
    if (acc)
        for (size_t i = 0; i < n; i++)
            dxw[i] += dx0[i];
    smx_case cs = {log, acc ? OKTO_ACCUMULATE : 0, y.t, dx.t, x.t, yin.t, dy.t, dx0};
    const okto_tensor *outs[] = {log ? y.t : NULL, dx.t};
    float *got[2];
    char what[160];
    snprintf(what, sizeof what, "%s %s %s %zux%zu%s", log ? "log_softmax" : "softmax_backward",
             okto_dtype_name(dt), layout_name[l], rows, cols, acc ? " accumulate" : "");
    run_n(c, rec_smx, &cs, 2, outs, refill_smx, what, got);
    double tol_y = dt == OKTO_F32 ? 4e-6 : tol_ew[dt], ey = log ? rel_err(got[0], yw, n) : 0;
    double ex = scaled_err(got[1], dxw, n);
    if (!(ey <= tol_y) || !(ex <= tol_grad[dt]))
        fail_msg("%s: y %g (tol %g), dx %g (tol %g)", what, ey, tol_y, ex, tol_grad[dt]);
    if (log)
        note(OKTO__OP_LOG_SOFTMAX, dt, l, tol_y, ey);
    okto__op bop = log ? OKTO__OP_LOG_SOFTMAX_BACKWARD : OKTO__OP_SOFTMAX_BACKWARD;
    note(bop, dt, l, tol_grad[dt], ex);
    if (parts) {
        cov[bop].partitioned = 1;
        if (log)
            cov[OKTO__OP_LOG_SOFTMAX].partitioned = 1;
    }
    free(got[0]), free(got[1]);
    free(xv), free(dyv), free(dx0), free(yw), free(yr), free(dxw);
    tview_free(&x), tview_free(&y), tview_free(&yin), tview_free(&dy), tview_free(&dx);
}

static void softmax_ext_ops(void **state)
{
    (void)state;
    for (int log = 0; log < 2; log++)
        for (size_t d = 0; d < 3; d++) {
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int l = 0; l < L_COUNT; l++)
                    if ((l != L_TRANSPOSED || shapes[s].rank >= 2) && ops1_shape(d, s))
                        check_smx(ctx1, log, float_dtypes[d], &shapes[s], (layout)l,
                                  (int)(s + (size_t)l) % 3 == 2, 0);
            check_smx(ctx3, log, float_dtypes[d], &big, L_CONTIG, d == 2, 1);
        }
}

/* ---- cross-entropy ---- */

typedef struct xe_case {
    int ignore;
    unsigned flags;
    okto_tensor *loss, *stat, *dlogits;
    const okto_tensor *logits, *labels, *dloss, *stat_in;
    double *d0;
} xe_case;

static void rec_xe(okto_graph *g, void *p)
{
    xe_case *c = p;
    okto_cross_entropy(g, c->loss, c->stat, c->logits, c->labels, c->ignore);
    okto_cross_entropy_backward(g, c->dlogits, c->dloss, c->logits, c->labels, c->stat_in,
                                c->ignore, c->flags);
}

static void refill_xe(void *p)
{
    xe_case *c = p;
    if (c->flags & OKTO_ACCUMULATE)
        write_vals(c->dlogits, c->d0);
}

typedef struct xe_fd {
    double *x;
    int *lab;
    size_t rows, cols;
    double *loss;
} xe_fd;
static double xe_fd_loss(void *p)
{
    xe_fd *f = p;
    double cnt;
    return ref_xent_fwd(f->x, f->lab, f->rows, f->cols, -100, f->loss, &cnt);
}

static void check_xe(okto_context *c, okto_dtype dt, const shape *sh, layout l, int acc,
                     int with_stat, int parts)
{
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    tview x = make(c, dt, sh->rank, sh->d, l), dx = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview lab = make(c, OKTO_I32, 2, (size_t[]){rows, 1}, L_SLICED);
    tview loss = make(c, with_stat ? OKTO_F32 : dt, 1, (size_t[]){1}, L_CONTIG);
    tview stat = make(c, OKTO_F32, 2, (size_t[]){rows, 2}, L_CONTIG);
    tview dloss = make(c, OKTO_F32, 1, (size_t[]){1}, L_CONTIG);
    double *xv = fill(&x, n + 21, -6, 6), *d0 = fill(&dx, n + 22, -1, 1);
    int *labels = malloc(rows * sizeof *labels);
    uint64_t seed = rows * 7 + 1;
    for (size_t r = 0; r < rows; r++)
        labels[r] = r % 5 == 3 ? -100 : (int)(tu_rand(&seed) % cols);
    TU_OK(okto_tensor_write(lab.t, labels));
    TU_OK(okto_tensor_write_f32(dloss.t, (float[]){0.75f}));
    double *lw = malloc(rows * sizeof *lw), *gw = malloc(n * sizeof *gw), count;
    double mean = ref_xent_fwd(xv, labels, rows, cols, -100, lw, &count);
    ref_xent_bwd(xv, labels, rows, cols, -100, 0.75, gw);
    if (dt == OKTO_F32 && !acc && !parts) {
        double *g1 = malloc(n * sizeof *g1);
        ref_xent_bwd(xv, labels, rows, cols, -100, 1.0, g1);
        xe_fd f = {xv, labels, rows, cols, lw};
        if (count > 0)
            fd_check(xe_fd_loss, &f, xv, n, g1, "cross_entropy dlogits");
        free(g1);
    }
    if (acc)
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < cols; j++)
                gw[r * cols + j] += d0[r * cols + j]; /* ignored rows: 0 + kept value */
    xe_case cs = {
        -100,    acc ? OKTO_ACCUMULATE : 0, loss.t, with_stat ? stat.t : NULL, dx.t, x.t, lab.t,
        dloss.t, with_stat ? stat.t : NULL, d0};
    const okto_tensor *outs[] = {loss.t, dx.t};
    float *got[2];
    char what[160];
    snprintf(what, sizeof what, "cross_entropy %s %s %zux%zu%s%s", okto_dtype_name(dt),
             layout_name[l], rows, cols, acc ? " accumulate" : "", with_stat ? " stat" : "");
    run_n(c, rec_xe, &cs, 2, outs, refill_xe, what, got);
    double tol = with_stat ? 1e-5 : (dt == OKTO_F32 ? 1e-5 : tol_ew[dt]);
    double el = count > 0 ? fabs((double)got[0][0] - mean) / fmax(1.0, fabs(mean))
                          : (isnan(got[0][0]) ? 0 : INFINITY);
    /* the gradient is O(1/count): judged at that scale */
    double eg = 0, sc = count > 0 ? count / 0.75 : 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[1][i] - gw[i]) * (acc ? 1 : sc);
        eg = d <= eg ? eg : isnan(d) ? INFINITY : d;
    }
    double tg = dt == OKTO_F32 ? 4e-6 : tol_ew[dt] * (acc ? 2 : 1);
    if (!(el <= tol) || !(eg <= tg))
        fail_msg("%s: loss %g (want %g, error %g, tol %g), gradient error %g (tol %g)", what,
                 (double)got[0][0], mean, el, tol, eg, tg);
    note(OKTO__OP_CROSS_ENTROPY, dt, l, tol, el);
    note_scaled(OKTO__OP_CROSS_ENTROPY_BACKWARD, dt, l, tg, eg, 1.0, "1/count");
    if (parts)
        cov[OKTO__OP_CROSS_ENTROPY].partitioned = cov[OKTO__OP_CROSS_ENTROPY_BACKWARD].partitioned =
            1;
    free(got[0]), free(got[1]);
    free(xv), free(d0), free(labels), free(lw), free(gw);
    tview_free(&x), tview_free(&dx), tview_free(&lab), tview_free(&loss), tview_free(&stat);
    tview_free(&dloss);
}

/* a label out of range fails the run naming the row (the absolute row, also in a later part);
 * fixed labels then run clean (the flag was reset); every row ignored gives NaN and zero grads */
static void xe_bad_labels(okto_context *c, size_t rows, size_t cols, size_t bad_row)
{
    tview x = make(c, OKTO_F32, 2, (size_t[]){rows, cols}, L_CONTIG);
    tview dx = make(c, OKTO_F32, 2, (size_t[]){rows, cols}, L_CONTIG);
    tview lab = make(c, OKTO_I32, 1, &rows, L_CONTIG);
    tview loss = make(c, OKTO_F32, 1, (size_t[]){1}, L_CONTIG);
    tview dl = make(c, OKTO_F32, 1, (size_t[]){1}, L_CONTIG);
    double *xv = fill(&x, 3, -1, 1);
    int *labels = calloc(rows, sizeof *labels);
    TU_OK(okto_tensor_write_f32(dl.t, (float[]){1.0f}));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_cross_entropy(g, loss.t, NULL, x.t, lab.t, -100));
    TU_OK(okto_cross_entropy_backward(g, dx.t, dl.t, x.t, lab.t, NULL, -100, 0));
    labels[bad_row] = (int)cols;
    labels[rows - 1] = -7;
    TU_OK(okto_tensor_write(lab.t, labels));
    assert_int_equal(okto_graph_run(g), OKTO_EINVAL);
    char want[96];
    snprintf(want, sizeof want, "row %zu has a label outside [0, %zu)", bad_row, cols);
    if (!strstr(okto_last_error(c), "okto_cross_entropy") || !strstr(okto_last_error(c), want))
        fail_msg("bad label: message \"%s\" lacks \"%s\"", okto_last_error(c), want);
    labels[bad_row] = 0, labels[rows - 1] = 0;
    TU_OK(okto_tensor_write(lab.t, labels));
    TU_OK(okto_graph_run(g));
    for (size_t r = 0; r < rows; r++)
        labels[r] = -100;
    TU_OK(okto_tensor_write(lab.t, labels));
    TU_OK(okto_graph_run(g));
    float *lv = read_all(loss.t), *gv = read_all(dx.t);
    assert_true(isnan(lv[0]));
    for (size_t i = 0; i < rows * cols; i++)
        assert_true(gv[i] == 0.0f);
    TU_OK(okto_graph_destroy(g));
    free(xv), free(labels), free(lv), free(gv);
    tview_free(&x), tview_free(&dx), tview_free(&lab), tview_free(&loss), tview_free(&dl);
}

static void xent_ops(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int l = 0; l < L_COUNT; l++)
                if ((l != L_TRANSPOSED || shapes[s].rank >= 2) && ops1_shape(d, s))
                    check_xe(ctx1, float_dtypes[d], &shapes[s], (layout)l,
                             (int)(s + (size_t)l) % 3 == 1, (int)(s + (size_t)l) % 2, 0);
        check_xe(ctx3, float_dtypes[d], &big, L_CONTIG, d == 1, 1, 1);
    }
    xe_bad_labels(ctx1, 13, 5, 4);
    xe_bad_labels(ctx3, 1024, 257, 900);
}

/* ---- embedding ---- */

typedef struct emb_case {
    unsigned flags;
    int pad;
    okto_tensor *out, *dtable;
    const okto_tensor *table, *ids, *dout;
    double *d0;
} emb_case;

static void rec_emb(okto_graph *g, void *p)
{
    emb_case *c = p;
    okto_embedding(g, c->out, c->table, c->ids);
    okto_embedding_backward(g, c->dtable, c->dout, c->ids, c->pad, c->flags);
}

static void refill_emb(void *p)
{
    emb_case *c = p;
    if (c->flags & OKTO_ACCUMULATE)
        write_vals(c->dtable, c->d0);
}

typedef struct emb_fd {
    double *table, *dout;
    const int *ids;
    size_t ntok, vocab, dim;
    double *out;
    int pad;
} emb_fd;
static double emb_fd_loss(void *p)
{
    emb_fd *f = p;
    ref_embed_fwd(f->table, f->ids, f->ntok, f->vocab, f->dim, f->out);
    double s = 0;
    for (size_t t = 0; t < f->ntok; t++)
        if (f->ids[t] != f->pad)
            for (size_t d = 0; d < f->dim; d++)
                s += f->dout[t * f->dim + d] * f->out[t * f->dim + d];
    return s;
}

static void check_emb(okto_context *c, okto_dtype dt, size_t vocab, size_t dim, size_t ntok,
                      layout l, int acc, int pad, int parts)
{
    size_t ts[2] = {vocab, dim}, os[3] = {ntok > 3 ? ntok / 3 : 1, ntok > 3 ? 3 : ntok, dim};
    int orank = ntok > 3 && ntok % 3 == 0 ? 3 : 2;
    if (orank == 2)
        os[0] = ntok, os[1] = dim;
    tview table = make(c, dt, 2, ts, l), dtable = make(c, dt, 2, ts, (layout)((l + 1) % L_COUNT));
    tview out = make(c, dt, orank, os, L_SLICED), dout = make(c, dt, orank, os, l);
    tview ids = make(c, OKTO_I32, orank - 1, os, L_SLICED);
    double *tv = fill(&table, vocab * 5 + dim, -2, 2), *dv = fill(&dout, ntok + 3, -1, 1);
    double *d0 = fill(&dtable, 9, -1, 1);
    int *idv = malloc(ntok * sizeof *idv);
    uint64_t seed = ntok * 31 + vocab;
    for (size_t t = 0; t < ntok; t++) /* skewed: low ids repeat often */
        idv[t] = (int)((tu_rand(&seed) % vocab) * (tu_rand(&seed) % 2) % vocab);
    TU_OK(okto_tensor_write(ids.t, idv));
    double *ow = malloc(ntok * dim * sizeof *ow), *gw = malloc(vocab * dim * sizeof *gw);
    ref_embed_fwd(tv, idv, ntok, vocab, dim, ow);
    ref_embed_bwd(dv, idv, ntok, vocab, dim, pad, gw);
    if (dt == OKTO_F32 && !acc && !parts) {
        emb_fd f = {tv, dv, idv, ntok, vocab, dim, malloc(ntok * dim * sizeof(double)), pad};
        fd_check(emb_fd_loss, &f, tv, vocab * dim, gw, "embedding dtable");
        free(f.out);
    }
    if (acc) /* rows no token hits keep their value too */
        for (size_t i = 0; i < vocab * dim; i++)
            gw[i] += d0[i];
    emb_case cs = {acc ? OKTO_ACCUMULATE : 0, pad, out.t, dtable.t, table.t, ids.t, dout.t, d0};
    const okto_tensor *outs[] = {out.t, dtable.t};
    float *got[2];
    char what[160];
    snprintf(what, sizeof what, "embedding %s %s %zux%zu ntok %zu%s pad %d", okto_dtype_name(dt),
             layout_name[l], vocab, dim, ntok, acc ? " accumulate" : "", pad);
    run_n(c, rec_emb, &cs, 2, outs, refill_emb, what, got);
    double eo = rel_err(got[0], ow, ntok * dim), eg = rel_err(got[1], gw, vocab * dim);
    double tg = dt == OKTO_F32 ? 2e-6 : tol_ew[dt];
    if (!(eo == 0) || !(eg <= tg))
        fail_msg("%s: out error %g (exact wanted), dtable error %g (tol %g)", what, eo, eg, tg);
    note(OKTO__OP_EMBEDDING, dt, l, 0, eo);
    note(OKTO__OP_EMBEDDING_BACKWARD, dt, l, tg, eg);
    if (parts)
        cov[OKTO__OP_EMBEDDING].partitioned = cov[OKTO__OP_EMBEDDING_BACKWARD].partitioned = 1;
    free(got[0]), free(got[1]);
    free(tv), free(dv), free(d0), free(idv), free(ow), free(gw);
    tview_free(&table), tview_free(&dtable), tview_free(&out), tview_free(&dout);
    tview_free(&ids);
}

static void emb_bad_ids(okto_context *c, size_t vocab, size_t dim, size_t ntok, size_t bad)
{
    tview table = make(c, OKTO_F32, 2, (size_t[]){vocab, dim}, L_CONTIG);
    tview out = make(c, OKTO_F32, 2, (size_t[]){ntok, dim}, L_CONTIG);
    tview ids = make(c, OKTO_I32, 1, &ntok, L_CONTIG);
    double *tv = fill(&table, 1, -1, 1);
    int *idv = calloc(ntok, sizeof *idv);
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_embedding(g, out.t, table.t, ids.t));
    TU_OK(okto_embedding_backward(g, table.t, out.t, ids.t, -1, OKTO_ACCUMULATE));
    idv[bad] = -3, idv[ntok - 1] = (int)vocab;
    TU_OK(okto_tensor_write(ids.t, idv));
    assert_int_equal(okto_graph_run(g), OKTO_EINVAL);
    char want[96];
    snprintf(want, sizeof want, "okto_embedding: token %zu has an id outside [0, %zu)", bad, vocab);
    if (!strstr(okto_last_error(c), want))
        fail_msg("bad id: message \"%s\" lacks \"%s\"", okto_last_error(c), want);
    idv[bad] = 0, idv[ntok - 1] = 0;
    TU_OK(okto_tensor_write(ids.t, idv));
    TU_OK(okto_graph_run(g));
    TU_OK(okto_graph_destroy(g));
    free(tv), free(idv);
    tview_free(&table), tview_free(&out), tview_free(&ids);
}

static void embed_ops(void **state)
{
    (void)state;
    static const size_t sz[][3] = {{1, 1, 1}, {7, 5, 13}, {13, 257, 9}, {50, 3, 201}, {5, 7, 1}};
    for (size_t d = 0; d < 3; d++) {
        for (size_t s = 0; s < sizeof sz / sizeof *sz; s++)
            for (int l = 0; l < L_COUNT; l++)
                check_emb(ctx1, float_dtypes[d], sz[s][0], sz[s][1], sz[s][2], (layout)l,
                          (int)(s + (size_t)l) % 3 == 1, s == 3 ? 0 : -1, 0);
        check_emb(ctx3, float_dtypes[d], 1024, 257, 600, L_CONTIG, d == 2, 0, 1);
    }
    emb_bad_ids(ctx1, 10, 4, 9, 2);
    emb_bad_ids(ctx3, 20, 257, 800, 700);
}

/* ---- dropout ---- */

typedef struct drop_case {
    float p;
    unsigned stream, flags;
    okto_tensor *y, *dx;
    const okto_tensor *x, *dy, *seed;
    double *d0;
} drop_case;

static void rec_drop(okto_graph *g, void *p)
{
    drop_case *c = p;
    okto_dropout(g, c->y, c->x, c->p, c->seed, c->stream);
    okto_dropout_backward(g, c->dx, c->dy, c->p, c->seed, c->stream, c->flags);
}

static void refill_drop(void *p)
{
    drop_case *c = p;
    if (c->flags & OKTO_ACCUMULATE)
        write_vals(c->dx, c->d0);
}

static void check_drop(okto_context *c, okto_dtype dt, const shape *sh, layout l, float p, int acc)
{
    size_t n = numel(sh->rank, sh->d);
    tview x = make(c, dt, sh->rank, sh->d, l), y = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview dy = make(c, dt, sh->rank, sh->d, (layout)((l + 1) % L_COUNT));
    tview dx = make(c, dt, sh->rank, sh->d, L_CONTIG);
    tview seed = make(c, OKTO_I32, 1, (size_t[]){2}, L_CONTIG);
    uint32_t sv[2] = {0x9e3779b9u, (uint32_t)n};
    TU_OK(okto_tensor_write(seed.t, sv));
    double *xv = fill(&x, n + 31, -2, 2), *dyv = fill(&dy, n + 32, -1, 1);
    double *d0 = fill(&dx, n + 33, -1, 1);
    double *yw = malloc(n * sizeof *yw), *dxw = malloc(n * sizeof *dxw);
    unsigned stream = 7;
    ref_dropout(xv, yw, n, p, sv[0], sv[1], stream);
    ref_dropout(dyv, dxw, n, p, sv[0], sv[1], stream);
    if (acc)
        for (size_t i = 0; i < n; i++)
            dxw[i] += d0[i];
    drop_case cs = {p, stream, acc ? OKTO_ACCUMULATE : 0, y.t, dx.t, x.t, dy.t, seed.t, d0};
    const okto_tensor *outs[] = {y.t, dx.t};
    float *got[2];
    char what[160];
    snprintf(what, sizeof what, "dropout %s %s p %g n %zu%s", okto_dtype_name(dt), layout_name[l],
             (double)p, n, acc ? " accumulate" : "");
    run_n(c, rec_drop, &cs, 2, outs, refill_drop, what, got);
    double tol = dt == OKTO_F32 ? 1e-6 : tol_ew[dt] * (acc ? 2 : 1);
    double ey = rel_err(got[0], yw, n), ex = rel_err(got[1], dxw, n);
    if (!(ey <= tol) || !(ex <= tol))
        fail_msg("%s: y error %g, dx error %g (tol %g)", what, ey, ex, tol);
    note(OKTO__OP_DROPOUT, dt, l, tol, ey);
    note(OKTO__OP_DROPOUT_BACKWARD, dt, l, tol, ex);
    free(got[0]), free(got[1]);
    free(xv), free(dyv), free(d0), free(yw), free(dxw);
    tview_free(&x), tview_free(&y), tview_free(&dy), tview_free(&dx), tview_free(&seed);
}

/* a replayed graph advances the seed (with the carry into the high word) and draws new masks */
static void drop_seed_advance(void)
{
    size_t n = 1000;
    tview x = make(ctx1, OKTO_F32, 1, &n, L_CONTIG), y = make(ctx1, OKTO_F32, 1, &n, L_CONTIG);
    tview seed = make(ctx1, OKTO_I32, 1, (size_t[]){2}, L_SLICED);
    uint32_t sv[2] = {0xffffffffu, 5};
    TU_OK(okto_tensor_write(seed.t, sv));
    double *xv = fill(&x, 5, 1, 2), *yw = malloc(n * sizeof *yw);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx1, &g));
    TU_OK(okto_dropout(g, y.t, x.t, 0.5f, seed.t, 3));
    TU_OK(okto_seed_advance(g, seed.t));
    for (int step = 0; step < 2; step++) {
        TU_OK(okto_graph_run(g));
        ref_dropout(xv, yw, n, 0.5f, sv[0], sv[1], 3);
        float *got = read_all(y.t);
        assert_true(rel_err(got, yw, n) <= 1e-6);
        free(got);
        uint64_t v = ((uint64_t)sv[1] << 32 | sv[0]) + 1;
        sv[0] = (uint32_t)v, sv[1] = (uint32_t)(v >> 32);
        uint32_t now[2];
        TU_OK(okto_tensor_read(seed.t, now));
        assert_true(now[0] == sv[0] && now[1] == sv[1]);
    }
    note(OKTO__OP_SEED_ADVANCE, OKTO_I32, L_SLICED, 0, 0);
    TU_OK(okto_graph_destroy(g));
    free(xv), free(yw);
    tview_free(&x), tview_free(&y), tview_free(&seed);
}

static void dropout_ops(void **state)
{
    (void)state;
    static const float ps[] = {0.3f, 0.0f, 1.0f, 0.9f};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int l = 0; l < L_COUNT; l++)
                if ((l != L_TRANSPOSED || shapes[s].rank >= 2) && ops1_shape(d, s))
                    check_drop(ctx1, float_dtypes[d], &shapes[s], (layout)l,
                               ps[(s + (size_t)l) % 4], (int)(s + (size_t)l) % 3 == 1);
    check_drop(ctx3, OKTO_F32, &big, L_CONTIG, 0.3f, 0);
    drop_seed_advance();
}

/* ---- argmax ---- */

typedef struct am_case {
    okto_tensor *out;
    const okto_tensor *in;
} am_case;

static void rec_am(okto_graph *g, void *p)
{
    am_case *c = p;
    okto_argmax(g, c->out, c->in);
}

static void check_am(okto_context *c, okto_dtype dt, const shape *sh, layout l, int parts)
{
    size_t n = numel(sh->rank, sh->d), cols = sh->d[sh->rank - 1], rows = n / cols;
    tview in = make(c, dt, sh->rank, sh->d, l), out = make(c, OKTO_I32, 1, &rows, L_SLICED);
    double *x = fill(&in, n + 41, -4, 4);
    /* ties (small integers) and, in float dtypes, a NaN and infinities */
    for (size_t i = 0; i < n; i++)
        x[i] = floor(x[i]);
    if (dt != OKTO_I32 && n > 3)
        x[n / 2] = NAN, x[1] = INFINITY, x[2] = -INFINITY;
    write_vals(in.t, x);
    int *want = malloc(rows * sizeof *want);
    ref_argmax(x, rows, cols, want);
    double *wd = malloc(rows * sizeof *wd);
    for (size_t r = 0; r < rows; r++)
        wd[r] = want[r];
    am_case cs = {out.t, in.t};
    char what[128];
    snprintf(what, sizeof what, "argmax %s %s %zux%zu", okto_dtype_name(dt), layout_name[l], rows,
             cols);
    float *got = run_all(c, rec_am, &cs, out.t, NULL, what);
    double err = rel_err(got, wd, rows);
    if (!(err == 0))
        fail_msg("%s: wrong index (error %g)", what, err);
    note(OKTO__OP_ARGMAX, dt, l, 0, err);
    if (parts)
        cov[OKTO__OP_ARGMAX].partitioned = 1;
    free(x), free(want), free(wd), free(got);
    tview_free(&in), tview_free(&out);
}

static void argmax_ops(void **state)
{
    (void)state;
    static const okto_dtype dts[] = {OKTO_F32, OKTO_F16, OKTO_BF16, OKTO_I32};
    for (size_t d = 0; d < 4; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int l = 0; l < L_COUNT; l++)
                if ((l != L_TRANSPOSED || shapes[s].rank >= 2) && ops1_shape(d, s))
                    check_am(ctx1, dts[d], &shapes[s], (layout)l, 0);
        check_am(ctx3, dts[d], &big, L_CONTIG, 1);
    }
}

/* ---- optimizers ---- */

typedef struct opt_case {
    int adam, nesterov, multi;
    float momentum, wd, b1, b2, eps;
    okto_tensor *param, *s0, *s1, *sched;
    const okto_tensor *grad, *gscale;
    double *p0, *m0, *v0;
    float sched0[4];
    /* the multi form: n tensors */
    int n;
    okto_tensor **params, **s0s, **s1s;
    const okto_tensor **grads;
    const float *decays;
    double **p0s, **m0s, **v0s;
} opt_case;

static void rec_opt(okto_graph *g, void *p)
{
    opt_case *c = p;
    okto_sched_advance(g, c->sched);
    if (c->adam)
        okto_adamw_prepare(g, c->sched, c->b1, c->b2);
    if (c->multi && c->adam)
        okto_adamw_multi(g, c->n, c->params, c->grads, c->s0s, c->s1s, c->decays, c->sched,
                         c->gscale, c->b1, c->b2, c->eps);
    else if (c->multi)
        okto_sgd_multi(g, c->n, c->params, c->grads, c->momentum != 0 ? c->s0s : NULL, c->decays,
                       c->sched, c->gscale, c->momentum, c->nesterov);
    else if (c->adam)
        okto_adamw(g, c->param, c->grad, c->s0, c->s1, c->sched, c->gscale, c->b1, c->b2, c->eps,
                   c->wd);
    else
        okto_sgd(g, c->param, c->grad, c->s0, c->sched, c->gscale, c->momentum, c->wd, c->nesterov);
}

static void refill_opt(void *p)
{
    opt_case *c = p;
    TU_OK(okto_tensor_write_f32(c->sched, c->sched0));
    if (c->multi) {
        for (int i = 0; i < c->n; i++) {
            write_vals(c->params[i], c->p0s[i]);
            if (c->s0s && c->s0s[i])
                write_vals(c->s0s[i], c->m0s[i]);
            if (c->s1s && c->s1s[i])
                write_vals(c->s1s[i], c->v0s[i]);
        }
        return;
    }
    write_vals(c->param, c->p0);
    if (c->s0)
        write_vals(c->s0, c->m0);
    if (c->s1)
        write_vals(c->s1, c->v0);
}

/* one step against ref_sgd / ref_adamw; gs: the gradient scale (NAN: the step is skipped) */
static void check_opt(okto_context *c, int adam, okto_dtype dt, const shape *sh, layout l,
                      float momentum, int nesterov, double gs, int parts)
{
    size_t n = numel(sh->rank, sh->d);
    tview p = make(c, dt, sh->rank, sh->d, l), gr = make(c, dt, sh->rank, sh->d, L_SLICED);
    tview m = make(c, OKTO_F32, sh->rank, sh->d, L_CONTIG);
    tview v = make(c, OKTO_F32, sh->rank, sh->d, (layout)((l + 1) % L_COUNT));
    tview sched = make(c, OKTO_F32, 1, (size_t[]){4}, L_CONTIG);
    tview gsc = make(c, OKTO_F32, 1, (size_t[]){1}, L_CONTIG);
    double *pv = fill(&p, n + 51, -1, 1), *gv = fill(&gr, n + 52, -1, 1);
    double *mv = fill(&m, n + 53, -0.1, 0.1), *vv = fill(&v, n + 54, 0, 0.01);
    TU_OK(okto_tensor_write_f32(gsc.t, (float[]){(float)gs}));
    float t0 = 4, lr = 0.01f, wd = 0.1f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    double *pw = malloc(n * sizeof *pw), *mw = malloc(n * sizeof *mw), *vw = malloc(n * sizeof *vw);
    memcpy(pw, pv, n * sizeof *pw), memcpy(mw, mv, n * sizeof *mw), memcpy(vw, vv, n * sizeof *vw);
    if (isfinite(gs)) {
        if (adam)
            ref_adamw(pw, gv, mw, vw, n, lr, t0 + 1, b1, b2, eps, wd, gs);
        else
            ref_sgd(pw, gv, mw, n, lr, momentum, wd, nesterov, gs);
    }
    opt_case cs = {.adam = adam,
                   .nesterov = nesterov,
                   .momentum = momentum,
                   .wd = wd,
                   .b1 = b1,
                   .b2 = b2,
                   .eps = eps,
                   .param = p.t,
                   .s0 = adam || momentum != 0 ? m.t : NULL,
                   .s1 = adam ? v.t : NULL,
                   .sched = sched.t,
                   .grad = gr.t,
                   .gscale = gs == 1 ? NULL : gsc.t,
                   .p0 = pv,
                   .m0 = mv,
                   .v0 = vv,
                   .sched0 = {lr, t0, 0, 0}};
    const okto_tensor *outs[] = {p.t, m.t, v.t, sched.t};
    float *got[4];
    char what[160];
    snprintf(what, sizeof what, "%s %s %s n %zu momentum %g%s gscale %g", adam ? "adamw" : "sgd",
             okto_dtype_name(dt), layout_name[l], n, (double)momentum, nesterov ? " nesterov" : "",
             gs);
    run_n(c, rec_opt, &cs, 4, outs, refill_opt, what, got);
    /* the parameter's update is small against it: judged relative to the step's size too */
    double tol = dt == OKTO_F32 ? 1e-6 : tol_ew[dt];
    double ep = rel_err(got[0], pw, n), em = rel_err(got[1], mw, n);
    double ev = adam ? rel_err(got[2], vw, n) : 0;
    double bc1 = 1 - pow(b1, t0 + 1), bc2 = 1 - pow(b2, t0 + 1);
    double sw[4] = {lr, t0 + 1, lr / bc1, 1 / sqrt(bc2)};
    double es = adam ? rel_err(got[3], sw, 4) : rel_err(got[3], sw, 2);
    if (!(ep <= tol) || !(em <= 1e-6) || !(ev <= 1e-6) || !(es <= 1e-6))
        fail_msg("%s: param %g (tol %g), state %g / %g, sched %g", what, ep, tol, em, ev, es);
    note(adam ? OKTO__OP_ADAMW : OKTO__OP_SGD, dt, l, tol, fmax(ep, fmax(em, ev)));
    note(OKTO__OP_SCHED_ADVANCE, OKTO_F32, L_CONTIG, 1e-6, es);
    if (adam)
        note(OKTO__OP_ADAMW_PREPARE, OKTO_F32, L_CONTIG, 1e-6, es);
    if (parts)
        cov[adam ? OKTO__OP_ADAMW : OKTO__OP_SGD].partitioned = 1;
    for (int k = 0; k < 4; k++)
        free(got[k]);
    free(pv), free(gv), free(mv), free(vv), free(pw), free(mw), free(vw);
    tview_free(&p), tview_free(&gr), tview_free(&m), tview_free(&v), tview_free(&sched);
    tview_free(&gsc);
}

/* the multi-tensor steps: three parameters in one arena (row views) and one on its own, grads
 * in another arena, against the reference (and so the single-tensor ops' arithmetic) */
static void check_opt_multi(okto_context *c, int adam, okto_dtype dt, float momentum)
{
    const size_t rows[4] = {3, 70000, 1, 0}; /* the fourth is a tensor of its own */
    size_t cols = 5, arena_rows = rows[0] + rows[1] + rows[2];
    okto_tensor *pa, *ga, *ma, *va, *solo[4];
    TU_OK(okto_tensor_create(c, dt, 2, (size_t[]){arena_rows, cols}, &pa));
    TU_OK(okto_tensor_create(c, dt, 2, (size_t[]){arena_rows, cols}, &ga));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){arena_rows, cols}, &ma));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){arena_rows, cols}, &va));
    TU_OK(okto_tensor_create(c, dt, 1, (size_t[]){13}, &solo[0]));
    TU_OK(okto_tensor_create(c, dt, 1, (size_t[]){13}, &solo[1]));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){13}, &solo[2]));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){13}, &solo[3]));
    okto_tensor *P[4], *M[4], *V[4];
    const okto_tensor *G[4];
    size_t r0 = 0;
    for (int i = 0; i < 3; i++) {
        okto_tensor *t;
        TU_OK(okto_tensor_view(pa, r0, rows[i], &P[i]));
        TU_OK(okto_tensor_view(ga, r0, rows[i], &t));
        G[i] = t;
        TU_OK(okto_tensor_view(ma, r0, rows[i], &M[i]));
        TU_OK(okto_tensor_view(va, r0, rows[i], &V[i]));
        r0 += rows[i];
    }
    P[3] = solo[0], G[3] = solo[1], M[3] = solo[2], V[3] = solo[3];
    double *p0[4], *m0[4], *v0[4], *pw[4], *mw[4], *vw[4];
    const float decays[4] = {0.1f, 0.0f, 0.2f, 0.05f};
    float lr = 0.01f, t0 = 2, b1 = 0.9f, b2 = 0.99f, eps = 1e-8f;
    for (int i = 0; i < 4; i++) {
        size_t n = okto_tensor_numel(P[i]);
        tview tp = {P[i], NULL}, tg = {(okto_tensor *)G[i], NULL}, tm = {M[i], NULL},
              tv = {V[i], NULL};
        /* fill() zeroes the base first: give it the view itself */
        tp.base = P[i], tg.base = (okto_tensor *)G[i], tm.base = M[i], tv.base = V[i];
        p0[i] = fill(&tp, 61 + (uint64_t)i, -1, 1);
        double *g = fill(&tg, 71 + (uint64_t)i, -1, 1);
        m0[i] = fill(&tm, 81 + (uint64_t)i, -0.1, 0.1);
        v0[i] = fill(&tv, 91 + (uint64_t)i, 0, 0.01);
        pw[i] = malloc(n * sizeof(double)), mw[i] = malloc(n * sizeof(double));
        vw[i] = malloc(n * sizeof(double));
        memcpy(pw[i], p0[i], n * sizeof(double)), memcpy(mw[i], m0[i], n * sizeof(double));
        memcpy(vw[i], v0[i], n * sizeof(double));
        if (adam)
            ref_adamw(pw[i], g, mw[i], vw[i], n, lr, t0 + 1, b1, b2, eps, decays[i], 0.5);
        else
            ref_sgd(pw[i], g, mw[i], n, lr, momentum, decays[i], 0, 0.5);
        free(g);
    }
    tview gsc = make(c, OKTO_F32, 1, (size_t[]){1}, L_CONTIG);
    tview sched = make(c, OKTO_F32, 1, (size_t[]){4}, L_CONTIG);
    TU_OK(okto_tensor_write_f32(gsc.t, (float[]){0.5f}));
    opt_case cs = {.adam = adam,
                   .multi = 1,
                   .momentum = momentum,
                   .b1 = b1,
                   .b2 = b2,
                   .eps = eps,
                   .sched = sched.t,
                   .gscale = gsc.t,
                   .sched0 = {lr, t0, 0, 0},
                   .n = 4,
                   .params = P,
                   .grads = G,
                   .s0s = M,
                   .s1s = adam ? V : NULL,
                   .decays = decays,
                   .p0s = p0,
                   .m0s = m0,
                   .v0s = v0};
    const okto_tensor *outs[] = {P[0], P[1], P[2], P[3], M[1], V[1], M[3]};
    float *got[7];
    char what[96];
    snprintf(what, sizeof what, "%s_multi %s", adam ? "adamw" : "sgd", okto_dtype_name(dt));
    run_n(c, rec_opt, &cs, 7, outs, refill_opt, what, got);
    double tol = dt == OKTO_F32 ? 1e-6 : tol_ew[dt], err = 0;
    for (int i = 0; i < 4; i++)
        err = fmax(err, rel_err(got[i], pw[i], okto_tensor_numel(P[i])));
    double es = rel_err(got[4], mw[1], okto_tensor_numel(M[1]));
    es = fmax(es, rel_err(got[6], mw[3], 13));
    if (adam)
        es = fmax(es, rel_err(got[5], vw[1], okto_tensor_numel(V[1])));
    if (!(err <= tol) || !(es <= 1e-6))
        fail_msg("%s: param error %g (tol %g), state %g", what, err, tol, es);
    note(adam ? OKTO__OP_ADAMW_MULTI : OKTO__OP_SGD_MULTI, dt, L_CONTIG, tol, err);
    for (int k = 0; k < 7; k++)
        free(got[k]);
    for (int i = 0; i < 4; i++) {
        free(p0[i]), free(m0[i]), free(v0[i]), free(pw[i]), free(mw[i]), free(vw[i]);
        if (i < 3) {
            okto_tensor_destroy(P[i]), okto_tensor_destroy((okto_tensor *)G[i]);
            okto_tensor_destroy(M[i]), okto_tensor_destroy(V[i]);
        }
        okto_tensor_destroy(solo[i]);
    }
    okto_tensor_destroy(pa), okto_tensor_destroy(ga), okto_tensor_destroy(ma);
    okto_tensor_destroy(va);
    tview_free(&gsc), tview_free(&sched);
}

typedef struct clip_case {
    int n;
    const okto_tensor **grads;
    okto_tensor *out;
    float max_norm;
} clip_case;

static void rec_clip(okto_graph *g, void *p)
{
    clip_case *c = p;
    okto_clip_grad_norm(g, c->n, c->grads, c->max_norm, c->out);
}

/* grads of three dtypes and layouts (two views of one storage among them), against the norm of
 * all their values; a non-finite gradient gives scale NaN */
static void check_clip(okto_context *c, float max_norm, int inf)
{
    tview a = make(c, OKTO_F32, 2, (size_t[]){70000, 3}, L_CONTIG);
    tview b = make(c, OKTO_F16, 2, (size_t[]){13, 5}, L_TRANSPOSED);
    tview d = make(c, OKTO_BF16, 3, (size_t[]){3, 7, 5}, L_SLICED);
    okto_tensor *a1, *a2;
    TU_OK(okto_tensor_view(a.t, 0, 1000, &a1));
    TU_OK(okto_tensor_view(a.t, 1000, 69000, &a2));
    double *av = fill(&a, 101, -0.01, 0.01), *bv = fill(&b, 102, -1, 1), *dv = fill(&d, 103, -1, 1);
    if (inf) {
        okto_tensor *row;
        TU_OK(okto_tensor_view(b.base, 0, 1, &row)); /* b's storage is [5, 13]: its first row */
        float *h = malloc(13 * sizeof *h);
        for (int i = 0; i < 13; i++)
            h[i] = i == 4 ? INFINITY : 1.0f;
        TU_OK(okto_tensor_write_f32(row, h));
        free(h);
        okto_tensor_destroy(row);
    }
    size_t na = 210000, nb = 65, nd = 105, nall = na + nb + nd;
    double *all = malloc(nall * sizeof *all);
    memcpy(all, av, na * sizeof *all), memcpy(all + na, bv, nb * sizeof *all);
    memcpy(all + na + nb, dv, nd * sizeof *all);
    double scale, norm = ref_clip_norm(all, nall, max_norm, &scale);
    tview out = make(c, OKTO_F32, 1, (size_t[]){2}, L_CONTIG);
    const okto_tensor *grads[] = {a1, b.t, a2, d.t};
    clip_case cs = {4, grads, out.t, max_norm};
    float *got = run_all(c, rec_clip, &cs, out.t, NULL, "clip_grad_norm");
    if (inf) {
        assert_true(isnan(got[0]) && !isfinite(got[1]));
    } else {
        double e = fmax(fabs(got[0] - scale) / scale, fabs(got[1] - norm) / norm);
        if (!(e <= 2e-6))
            fail_msg("clip_grad_norm: scale %g (want %g), norm %g (want %g)", (double)got[0], scale,
                     (double)got[1], norm);
        note(OKTO__OP_CLIP_GRAD_NORM, OKTO_F32, L_CONTIG, 2e-6, e);
        note(OKTO__OP_CLIP_GRAD_NORM, OKTO_F16, L_TRANSPOSED, 2e-6, e);
        note(OKTO__OP_CLIP_GRAD_NORM, OKTO_BF16, L_SLICED, 2e-6, e);
    }
    free(got), free(av), free(bv), free(dv), free(all);
    okto_tensor_destroy(a1), okto_tensor_destroy(a2);
    tview_free(&a), tview_free(&b), tview_free(&d), tview_free(&out);
}

static void optim_ops(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        okto_dtype dt = float_dtypes[d];
        for (size_t s = 1; s < sizeof shapes / sizeof *shapes; s += 2)
            for (int l = 0; l < L_COUNT; l++)
                if (l != L_TRANSPOSED || shapes[s].rank >= 2) {
                    check_opt(ctx1, 0, dt, &shapes[s], (layout)l, 0, 0, 1, 0);
                    check_opt(ctx1, 0, dt, &shapes[s], (layout)l, 0.9f, (int)s % 2, 0.5, 0);
                    check_opt(ctx1, 1, dt, &shapes[s], (layout)l, 0, 0, l == 1 ? 0.25 : 1, 0);
                }
        check_opt(ctx1, 1, dt, &shapes[2], L_CONTIG, 0, 0, NAN, 0); /* skipped step */
        check_opt(ctx1, 0, dt, &shapes[2], L_SLICED, 0.9f, 1, INFINITY, 0);
        check_opt(ctx3, 0, dt, &big, L_CONTIG, 0.9f, 0, 1, 1);
        check_opt(ctx3, 1, dt, &big, L_CONTIG, 0, 0, 0.5, 1);
        check_opt_multi(ctx1, 1, dt, 0);
        check_opt_multi(ctx3, 0, dt, 0.9f);
        check_opt_multi(ctx1, 0, dt, 0);
    }
    check_clip(ctx1, 1.0f, 0);
    check_clip(ctx3, 100.0f, 0);
    check_clip(ctx1, 1.0f, 1);
}

/* ---- argument errors: refused at record time, nothing recorded ---- */

static void ops1_errors(void **state)
{
    (void)state;
    okto_context *c = ctx1;
    okto_tensor *x, *w4, *w5, *xi, *y, *m13, *m12, *lab, *labf, *loss, *loss2, *seed, *seed3,
        *out13, *sched, *sched3, *t1, *xt, *st;
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){13, 5}, &x));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){13, 5}, &y));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){4}, &w4));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){5}, &w5));
    TU_OK(okto_tensor_create(c, OKTO_I32, 2, (size_t[]){13, 5}, &xi));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){13}, &m13));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){12}, &m12));
    TU_OK(okto_tensor_create(c, OKTO_I32, 1, (size_t[]){13}, &lab));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){13}, &labf));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){1}, &loss));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){2}, &loss2));
    TU_OK(okto_tensor_create(c, OKTO_I32, 1, (size_t[]){2}, &seed));
    TU_OK(okto_tensor_create(c, OKTO_I32, 1, (size_t[]){3}, &seed3));
    TU_OK(okto_tensor_create(c, OKTO_I32, 1, (size_t[]){13}, &out13));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){4}, &sched));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){3}, &sched3));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){1}, &t1));
    TU_OK(okto_tensor_transpose(x, 0, 1, &xt));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){26}, &st));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_fill(g, y, 0)); /* one task already there: refusals must leave it alone */
    int n0 = okto_graph_task_count(g);
#define REFUSED(call, s1, s2) tu_expect_refused(c, g, (call), OKTO_EINVAL, (s1), (s2), n0)
    REFUSED(okto_layernorm(g, y, NULL, NULL, x, w4, NULL, 1e-5f),
            "okto_layernorm: x is f32[13,5] but weight is f32[4]", "expected f32[5]");
    REFUSED(okto_layernorm(g, y, NULL, NULL, NULL, NULL, NULL, 1e-5f), "okto_layernorm",
            "x must not be NULL");
    REFUSED(okto_layernorm(g, xi, NULL, NULL, xi, NULL, NULL, 1e-5f), "y is i32[13,5]", NULL);
    REFUSED(okto_layernorm(g, y, m12, NULL, x, NULL, NULL, 1e-5f), "mean is f32[12]", "13");
    REFUSED(okto_layernorm(g, y, out13, NULL, x, NULL, NULL, 1e-5f), "mean is i32[13]", NULL);
    REFUSED(okto_layernorm(g, y, NULL, NULL, x, w5, NULL, 0.0f), "eps", NULL);
    REFUSED(okto_layernorm(g, w5, NULL, NULL, x, NULL, NULL, 1e-5f), "x is f32[13,5] but y", NULL);
    REFUSED(okto_layernorm(g, y, NULL, NULL, x, y, NULL, 1e-5f), "weight", NULL);
    REFUSED(okto_layernorm(g, y, m13, m13, x, NULL, NULL, 1e-5f), "overlap", NULL);
    REFUSED(okto_layernorm_backward(g, NULL, NULL, NULL, y, x, NULL, m13, m13, 0), "all NULL",
            NULL);
    REFUSED(okto_layernorm_backward(g, y, NULL, NULL, y, x, NULL, m13, m13, OKTO_ACCUMULATE), "dx",
            "overlap");
    REFUSED(okto_layernorm_backward(g, y, NULL, NULL, x, x, NULL, NULL, m13, 0), "mean", "NULL");
    REFUSED(okto_layernorm_backward(g, y, NULL, NULL, x, x, NULL, m13, m13, 8u), "unknown flags",
            NULL);
    REFUSED(okto_rmsnorm(g, y, m12, x, NULL, 1e-5f), "okto_rmsnorm: x is f32[13,5] but rstd", NULL);
    REFUSED(okto_rmsnorm_backward(g, y, w4, x, x, NULL, m13, 0), "dweight is f32[4]", NULL);
    REFUSED(okto_softmax_backward(g, y, x, w5, 0), "okto_softmax_backward", "y is f32[5]");
    REFUSED(okto_log_softmax(g, xi, x), "okto_log_softmax", "i32");
    REFUSED(okto_log_softmax_backward(g, y, x, y, 0), "dx", "overlap");
    REFUSED(okto_cross_entropy(g, loss, NULL, x, labf, -100), "labels is f32[13]", NULL);
    REFUSED(okto_cross_entropy(g, loss, NULL, x, m12, -100), "labels", NULL);
    REFUSED(okto_cross_entropy(g, loss2, NULL, x, lab, -100), "loss is f32[2]", NULL);
    REFUSED(okto_cross_entropy(g, loss, m13, x, lab, -100), "stat is f32[13]", "26");
    REFUSED(okto_cross_entropy_backward(g, y, loss2, x, lab, NULL, -100, 0), "dloss is f32[2]",
            NULL);
    REFUSED(okto_cross_entropy_backward(g, w5, loss, x, lab, NULL, -100, 0), "dlogits", NULL);
    REFUSED(okto_embedding(g, y, w5, lab), "okto_embedding: table is f32[5]", "[vocab, dim]");
    REFUSED(okto_embedding(g, y, x, labf), "ids is f32[13]", NULL);
    REFUSED(okto_embedding(g, w5, x, lab), "out is f32[5]", "expected 13 rows");
    REFUSED(okto_embedding(g, y, y, lab), "overlap", NULL);
    REFUSED(okto_embedding_backward(g, x, y, labf, -1, 0), "ids", NULL);
    REFUSED(okto_dropout(g, y, x, 0.5f, seed3, 0), "okto_dropout: seed is i32[3]", NULL);
    REFUSED(okto_dropout(g, y, x, NAN, seed, 0), "p is NaN", NULL);
    REFUSED(okto_dropout_backward(g, y, x, 0.5f, seed, 0, 16u), "unknown flags", NULL);
    REFUSED(okto_seed_advance(g, seed3), "okto_seed_advance", "seed is i32[3]");
    REFUSED(okto_argmax(g, m13, x), "okto_argmax: out is f32[13]", NULL);
    REFUSED(okto_argmax(g, lab, w5), "in is f32[5] (1 rows)", NULL);
    REFUSED(okto_sgd(g, y, w5, NULL, sched, NULL, 0, 0, 0), "param is f32[13,5] but grad", NULL);
    REFUSED(okto_sgd(g, y, x, NULL, sched, NULL, 0.9f, 0, 0), "momentum_buf must not be NULL",
            NULL);
    REFUSED(okto_sgd(g, y, x, NULL, sched3, NULL, 0, 0, 0), "sched is f32[3]", NULL);
    REFUSED(okto_adamw(g, y, x, st, st, sched, NULL, 0.9f, 0.999f, 1e-8f, 0), "m is f32[26]", NULL);
    REFUSED(okto_adamw(g, y, x, y, y, sched, NULL, 1.0f, 0.999f, 1e-8f, 0), "beta1 1 and beta2",
            NULL);
    REFUSED(okto_adamw_prepare(g, sched, 0.9f, 1.5f), "beta1 0.9 and beta2 1.5", NULL);
    REFUSED(okto_sgd(g, y, x, NULL, sched, loss2, 0, 0, 0), "gscale is f32[2]", NULL);
    REFUSED(okto_clip_grad_norm(g, 0, NULL, 1.0f, loss2), "n >= 1", NULL);
    REFUSED(okto_clip_grad_norm(g, 1, (const okto_tensor *[]){x}, 1.0f, loss), "out is f32[1]",
            NULL);
    REFUSED(okto_clip_grad_norm(g, 1, (const okto_tensor *[]){x}, -1.0f, loss2), "max_norm", NULL);
    REFUSED(okto_sgd_multi(g, 1, (okto_tensor *[]){xt}, (const okto_tensor *[]){x}, NULL, NULL,
                           sched, NULL, 0, 0),
            "params[0] (f32[5,13]) is not contiguous", NULL);
    REFUSED(okto_adamw_multi(g, 2, (okto_tensor *[]){y, y}, (const okto_tensor *[]){x, x},
                             (okto_tensor *[]){st, st}, (okto_tensor *[]){st, st}, NULL, sched,
                             NULL, 0.9f, 0.999f, 1e-8f),
            "ms[0] is f32[26]", NULL);
#undef REFUSED
    TU_OK(okto_graph_destroy(g));
    okto_tensor *all[] = {x,     w4,   w5,    xi,    y,     m13,    m12, lab, labf, loss,
                          loss2, seed, seed3, out13, sched, sched3, t1,  xt,  st};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}
/* ==== end of ops1 ==== */

/* ==== ops2: batched matmul, attention, conv2d, pooling, concat and split ======================== */

/* ---- batched matmul (rank 3 and 4, NumPy broadcasting of the batch) --------------------------- */

/* a's batch dimensions abat (0 to 2 of them) and b's bbat; c's batch is their broadcast */
static void check_bmm(okto_context *c, okto_dtype dt, const shape *abat, const shape *bbat,
                      size_t m, size_t n, size_t k, unsigned flags, int gemm, layout la, layout lb,
                      int parts)
{
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    int nc = abat->rank > bbat->rank ? abat->rank : bbat->rank;
    size_t as[4], bs[4], cs[4], ab[2] = {1, 1}, bb[2] = {1, 1}, cb[2] = {1, 1};
    for (int i = 0; i < abat->rank; i++)
        as[i] = abat->d[i], ab[2 - abat->rank + i] = abat->d[i];
    for (int i = 0; i < bbat->rank; i++)
        bs[i] = bbat->d[i], bb[2 - bbat->rank + i] = bbat->d[i];
    for (int i = 0; i < 2; i++)
        cb[i] = ab[i] > bb[i] ? ab[i] : bb[i];
    for (int i = 0; i < nc; i++)
        cs[i] = cb[2 - nc + i];
    as[abat->rank] = ta ? k : m, as[abat->rank + 1] = ta ? m : k;
    bs[bbat->rank] = tb ? n : k, bs[bbat->rank + 1] = tb ? k : n;
    cs[nc] = m, cs[nc + 1] = n;
    tview A = make(c, dt, abat->rank + 2, as, la), B = make(c, dt, bbat->rank + 2, bs, lb);
    tview C = make(c, dt, nc + 2, cs, L_CONTIG);
    double *a = fill(&A, m * 7 + k + ab[1], -1, 1), *b = fill(&B, n * 5 + k + bb[0], -1, 1);
    double *c0 = fill(&C, m + n + cb[1], -1, 1);
    float alpha = gemm ? 0.5f : 1.0f, beta = gemm ? -1.5f : (flags & OKTO_ACCUMULATE) ? 1.0f : 0;
    size_t nb = cb[0] * cb[1];
    double *want = malloc(nb * m * n * sizeof *want);
    for (size_t t = 0; t < nb; t++) {
        size_t t0 = t / cb[1], t1 = t % cb[1];
        size_t ai = (ab[0] > 1 ? t0 : 0) * ab[1] + (ab[1] > 1 ? t1 : 0);
        size_t bi = (bb[0] > 1 ? t0 : 0) * bb[1] + (bb[1] > 1 ? t1 : 0);
        const double *pa = a + ai * m * k, *pb = b + bi * k * n;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t p = 0; p < k; p++)
                    s +=
                        (ta ? pa[p * m + i] : pa[i * k + p]) * (tb ? pb[j * k + p] : pb[p * n + j]);
                size_t o = (t * m + i) * n + j;
                want[o] = alpha * s + (beta != 0 ? beta * c0[o] : 0);
            }
    }
    mm_case mc = {C.t, A.t, B.t, alpha, beta, flags & ~(gemm ? OKTO_ACCUMULATE : 0u), gemm};
    char what[200];
    snprintf(what, sizeof what, "batched %s %s a %s b %s -> %zux%zux%zu flags %u, a %s, b %s",
             gemm ? "gemm" : "matmul", okto_dtype_name(dt), OKTO__DESC(A.t), OKTO__DESC(B.t), m, n,
             k, flags, layout_name[la], layout_name[lb]);
    mm_c0 = c0, mm_ct = C.t;
    float *got = run_all(c, rec_mm, &mc, C.t, mm_refill, what);
    double tol = (4e-6 * sqrt((double)k) + 1e-6) + (dt == OKTO_F32 ? 0 : tol_ew[dt]);
    double err = rel_err(got, want, nb * m * n);
    if (!(err <= tol))
        fail_msg("%s: error %g > %g", what, err, tol);
    double sc = sqrt((double)k) + 0.25;
    okto__op op = nb > 1 ? OKTO__OP_MATMUL_BATCHED : OKTO__OP_MATMUL;
    note_scaled(op, dt, la, tol, err, sc, "sqrt(k)");
    note_scaled(op, dt, lb, tol, err, sc, "sqrt(k)");
    if (parts)
        cov[op].partitioned = 1;
    free(a), free(b), free(c0), free(want), free(got);
    tview_free(&A), tview_free(&B), tview_free(&C);
}

static void matmul_batched_ops(void **state)
{
    (void)state;
    /* batches: the same for both, a broadcast matrix (missing or 1), rank 4 that merges and one
     * that does not (a [2,1,..] x b [2,3,..]: one strided call per index of the first) */
    static const struct {
        shape a, b;
    } bat[] = {
        {{1, {3}}, {1, {3}}},    {{1, {3}}, {0, {0}}},       {{0, {0}}, {1, {4}}},
        {{1, {5}}, {1, {1}}},    {{2, {2, 3}}, {2, {2, 3}}}, {{2, {2, 1}}, {2, {2, 3}}},
        {{2, {1, 3}}, {1, {3}}}, {{1, {1}}, {2, {1, 1}}},
    };
    /* products: tiny (okto's batched kernel), CLBlast-sized, a vector */
    static const size_t sz[][3] = {{7, 13, 5}, {33, 17, 65}, {1, 9, 40}};
    /* every batch form and product in f32; the half types (converted around the same f32
     * path) on a broadcast, a merging and a non-merging batch, which keeps the row's cold-cache
     * time down */
    for (size_t d = 0; d < 3; d++)
        for (size_t bi = 0; bi < sizeof bat / sizeof *bat; bi++)
            for (size_t s = 0; s < sizeof sz / sizeof *sz; s++) {
                if (d > 0 && ((bi != 1 && bi != 4 && bi != 5) || s == 2))
                    continue;
                unsigned f = (unsigned)((bi + s) % 4);
                layout la = (layout)((bi + d) % L_COUNT), lb = (layout)((bi + s + 1) % L_COUNT);
                check_bmm(ctx1, float_dtypes[d], &bat[bi].a, &bat[bi].b, sz[s][0], sz[s][1],
                          sz[s][2], f, f == 3, la, lb, 0);
            }
    /* every flag on one batch in f32; OKTO_ACCUMULATE on both paths */
    for (unsigned f = 0; f < 4; f++)
        check_bmm(ctx1, OKTO_F32, &bat[1].a, &bat[1].b, 33, 17, 65, f, 0, L_CONTIG, L_TRANSPOSED,
                  0);
    check_bmm(ctx1, OKTO_F32, &bat[0].a, &bat[0].b, 7, 13, 5, OKTO_ACCUMULATE, 0, L_SLICED,
              L_CONTIG, 0);
    check_bmm(ctx1, OKTO_BF16, &bat[4].a, &bat[4].b, 33, 17, 65, OKTO_ACCUMULATE, 0, L_CONTIG,
              L_CONTIG, 0);
    /* parts: batch ranges across 3 lanes, a broadcast b */
    check_bmm(ctx3, OKTO_F32, &(shape){1, {5}}, &(shape){0, {0}}, 160, 200, 240, 0, 0, L_CONTIG,
              L_TRANSPOSED, 1);
    /* where CLBlast 1.5.3's indirect strided-batched kernel is wrong (lib/ops/matmul.c): a
     * broadcast transposed a, and tile-multiple products whose second part starts at an offset */
    check_bmm(ctx1, OKTO_F32, &(shape){0, {0}}, &(shape){1, {2}}, 288, 256, 32, OKTO_TRANS_A, 0,
              L_CONTIG, L_CONTIG, 0);
    check_bmm(ctx3, OKTO_F32, &(shape){1, {16}}, &(shape){1, {16}}, 128, 64, 256, 0, 0, L_CONTIG,
              L_CONTIG, 1);
    check_bmm(ctx3, OKTO_F16, &(shape){2, {2, 3}}, &(shape){2, {2, 3}}, 150, 150, 250,
              OKTO_ACCUMULATE, 0, L_SLICED, L_CONTIG, 1);
}

static void matmul_batched_errors(void **state)
{
    (void)state;
    okto_tensor *a, *b, *c, *c2, *b2;
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 3, (size_t[]){3, 4, 5}, &a));
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 3, (size_t[]){2, 5, 6}, &b));
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 3, (size_t[]){3, 4, 6}, &c));
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 2, (size_t[]){4, 6}, &c2));
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 1, (size_t[]){5}, &b2));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx1, &g));
    /* batches 3 and 2 do not broadcast */
    tu_expect_refused(ctx1, g, okto_matmul(g, c, a, b, 0), OKTO_EINVAL, "batch dimensions",
                      "f32[2,5,6]", 0);
    /* c has fewer dimensions than a */
    okto_tensor *b56;
    TU_OK(okto_tensor_create(ctx1, OKTO_F32, 2, (size_t[]){5, 6}, &b56));
    tu_expect_refused(ctx1, g, okto_matmul(g, c2, a, b56, 0), OKTO_EINVAL, "f32[4,6]", "f32[3,4,5]",
                      0);
    tu_expect_refused(ctx1, g, okto_matmul(g, c, a, b2, 0), OKTO_EINVAL, "2-D to 4-D", NULL, 0);
    TU_OK(okto_matmul(g, c, a, b56, 0));
    assert_true(okto_graph_task_count(g) >= 1);
    okto_graph_destroy(g);
    okto_tensor_destroy(a), okto_tensor_destroy(b), okto_tensor_destroy(c);
    okto_tensor_destroy(c2), okto_tensor_destroy(b2), okto_tensor_destroy(b56);
}

/* ---- helpers for ops with several outputs ---------------------------------------------------- */

/* run_all for n outputs: every policy's outputs must match sequential's bits; got[i] receives
 * sequential's outs[i] (the caller frees them). */
static void run_all_n(okto_context *c, record_fn rec, void *cs, const okto_tensor *const *outs,
                      int n, void (*refill_fn)(void *cs), const char *what, float **got)
{
    for (int i = 0; i < n; i++)
        got[i] = NULL;
    for (int s = 1; s < OKTO_SCHED_COUNT; s++) {
        okto_graph *g;
        TU_OK(okto_graph_create(c, &g));
        TU_OK(okto_graph_set_sched(g, (okto_sched)s));
        rec(g, cs);
        if (okto_graph_status(g, NULL) != OKTO_OK)
            fail_msg("%s: recording failed: %s", what, okto_last_error(c));
        if (refill_fn)
            refill_fn(cs);
        okto_status st = okto_graph_run(g);
        if (st != OKTO_OK)
            fail_msg("%s under %s: %s", what, okto_sched_name((okto_sched)s), okto_last_error(c));
        for (int i = 0; i < n; i++) {
            if (!outs[i])
                continue;
            float *x = read_all(outs[i]);
            if (!got[i]) {
                got[i] = x;
                continue;
            }
            if (memcmp(got[i], x, okto_tensor_numel(outs[i]) * sizeof *x) != 0)
                fail_msg("%s: output %d under %s differs from sequential", what, i,
                         okto_sched_name((okto_sched)s));
            free(x);
        }
        TU_OK(okto_graph_destroy(g));
    }
}

/* The values of a view as the device holds them, in double. */
static double *host_of(const okto_tensor *t)
{
    size_t n = okto_tensor_numel(t);
    float *f = read_all(t);
    double *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = f[i];
    free(f);
    return h;
}

/* Rewrites tensors from saved values before each run (outputs that are accumulated into). */
#define MAX_REFILL 4
static okto_tensor *rf_t[MAX_REFILL];
static double *rf_v[MAX_REFILL];
static void refill_many(void *p)
{
    (void)p;
    for (int i = 0; i < MAX_REFILL; i++)
        if (rf_t[i]) {
            refill_vals = rf_v[i], refill_t = rf_t[i];
            refill(NULL);
        }
}

static void refill_set(int i, okto_tensor *t, double *v) { rf_t[i] = t, rf_v[i] = v; }
static void refill_clear(void)
{
    for (int i = 0; i < MAX_REFILL; i++)
        rf_t[i] = NULL, rf_v[i] = NULL;
}

/* Central differences of a scalar function of n inputs x (perturbed in place) in double. */
static double *central_diff(double (*f)(void *ctx), void *ctx, double *x, size_t n)
{
    double *gd = malloc(n * sizeof *gd);
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], h = 1e-5 * fmax(1.0, fabs(x0));
        x[i] = x0 + h;
        double fp = f(ctx);
        x[i] = x0 - h;
        double fm = f(ctx);
        x[i] = x0;
        gd[i] = (fp - fm) / (2 * h);
    }
    return gd;
}

/* ---- attention -------------------------------------------------------------------------------- */

typedef enum att_layout { AT_CONTIG, AT_SLICED, AT_TRANSPOSED, AT_FUSED } att_layout;
static const char *const att_layout_name[] = {"contiguous", "row-strided views",
                                              "D strided (copied)", "heads of a fused projection"};
static const layout att_cov_layout[] = {L_CONTIG, L_SLICED, L_TRANSPOSED, L_SLICED};

typedef struct att_case {
    okto_tensor *o, *lse, *dq, *dk, *dv;
    const okto_tensor *q, *k, *v, *dout, *fo, *flse;
    float scale;
    int causal;
    unsigned flags;
} att_case;

static void rec_att(okto_graph *g, void *p)
{
    att_case *c = p;
    okto_attention(g, c->o, c->lse, c->q, c->k, c->v, c->scale, c->causal);
}

static void rec_att_bwd(okto_graph *g, void *p)
{
    att_case *c = p;
    okto_attention_backward(g, c->dq, c->dk, c->dv, c->dout, c->q, c->k, c->v, c->fo, c->flse,
                            c->scale, c->causal, c->flags);
}

/* the loss sum(dout * o) of the double forward, for central differences */
typedef struct att_fd {
    double *q, *k, *v, *g;
    int B, H, Tq, Tk, D, causal;
    double scale;
} att_fd;

static double att_loss(void *p)
{
    att_fd *a = p;
    size_t nq = (size_t)a->B * a->H * a->Tq * a->D;
    double *o = malloc(nq * sizeof *o), l = 0;
    ref_attention_forward(a->q, a->k, a->v, o, NULL, a->B, a->H, a->Tq, a->Tk, a->D, a->scale,
                          a->causal);
    for (size_t i = 0; i < nq; i++)
        l += a->g[i] * o[i];
    free(o);
    return l;
}

/* tolerances of rel_err (|err| / max(1, |ref|)), 2-5x the worst seen (f32: o 1.7e-7, lse
 * 1.2e-7, gradients 2.3e-7; f16: o 4.7e-4, gradients 4.5e-4; bf16: o 3.4e-3, gradients 4.1e-3):
 * o and the gradients are stored in the dtype (half an ulp: 4.9e-4 for f16, 3.9e-3 for bf16),
 * and the backward's delta reads the stored o */
static const double att_tol_o[3] = {1e-6, 1e-3, 8e-3};
static const double att_tol_lse = 5e-7; /* f32 in every dtype */
static const double att_tol_grad[3] = {1e-6, 1.5e-3, 1.2e-2};

static void check_attention(okto_context *c, okto_dtype dt, int B, int H, int Tq, int Tk, int D,
                            int causal, att_layout lay, int acc, int parts)
{
    size_t qs[4] = {(size_t)B, (size_t)H, (size_t)Tq, (size_t)D};
    size_t ks[4] = {(size_t)B, (size_t)H, (size_t)Tk, (size_t)D};
    size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * H * Tk * D, nr = (size_t)B * H * Tq;
    int di = dt == OKTO_F32 ? 0 : dt == OKTO_F16 ? 1 : 2;
    okto_tensor *qkv = NULL, *dqkv = NULL, *obase = NULL;
    tview Q = {0}, K = {0}, V = {0}, O = {0}, G, DQ = {0}, DK = {0}, DV = {0}, L;
    if (lay == AT_FUSED) {
        /* q, k, v (and dq, dk, dv) are heads of one [B, T, 3 H, D] tensor, o is written into a
         * [B, T, H, D] one: slices and permutations, no copies */
        assert_int_equal(Tq, Tk);
        size_t fs[4] = {(size_t)B, (size_t)Tq, 3 * (size_t)H, (size_t)D};
        size_t os[4] = {(size_t)B, (size_t)Tq, (size_t)H, (size_t)D};
        const int perm[4] = {0, 2, 1, 3};
        TU_OK(okto_tensor_create(c, dt, 4, fs, &qkv));
        TU_OK(okto_tensor_create(c, dt, 4, fs, &dqkv));
        TU_OK(okto_tensor_create(c, dt, 4, os, &obase));
        tview *parts3[2][3] = {{&Q, &K, &V}, {&DQ, &DK, &DV}};
        for (int w = 0; w < 2; w++)
            for (int i = 0; i < 3; i++) {
                okto_tensor *sl;
                TU_OK(okto_tensor_slice(w ? dqkv : qkv, 2, (size_t)i * H, (size_t)H, &sl));
                TU_OK(okto_tensor_permute(sl, perm, &parts3[w][i]->t));
                okto_tensor_destroy(sl);
            }
        TU_OK(okto_tensor_permute(obase, perm, &O.t));
        float *r = malloc(4 * nq * sizeof *r);
        tu_fill_random(r, 3 * nq, (uint64_t)(B * 131 + Tq), -1.5f, 1.5f);
        TU_OK(okto_tensor_write_f32(qkv, r));
        tu_fill_random(r, 3 * nq, 77, -1, 1);
        TU_OK(okto_tensor_write_f32(dqkv, r));
        free(r);
    } else {
        layout l = lay == AT_CONTIG ? L_CONTIG : lay == AT_SLICED ? L_SLICED : L_TRANSPOSED;
        Q = make(c, dt, 4, qs, l), K = make(c, dt, 4, ks, l), V = make(c, dt, 4, ks, l);
        O = make(c, dt, 4, qs, l);
        DQ = make(c, dt, 4, qs, l), DK = make(c, dt, 4, ks, L_CONTIG), DV = make(c, dt, 4, ks, l);
        free(fill(&Q, (uint64_t)(B * 131 + Tq), -1.5, 1.5));
        free(fill(&K, (uint64_t)(H * 17 + Tk), -1.5, 1.5));
        free(fill(&V, (uint64_t)(D * 5 + 3), -1, 1));
        free(fill(&DQ, 41, -1, 1)), free(fill(&DK, 43, -1, 1)), free(fill(&DV, 47, -1, 1));
    }
    G = make(c, dt, 4, qs, lay == AT_SLICED ? L_SLICED : L_CONTIG);
    L = make(c, OKTO_F32, 3, (size_t[]){(size_t)B, (size_t)H, (size_t)Tq}, L_CONTIG);
    double *q = host_of(Q.t), *k = host_of(K.t), *v = host_of(V.t), *g = fill(&G, 53, -1, 1);
    double scale = (float)(1.0 / sqrt((double)D));
    char what[200];
    snprintf(what, sizeof what, "attention %s B %d H %d Tq %d Tk %d D %d%s, %s%s",
             okto_dtype_name(dt), B, H, Tq, Tk, D, causal ? " causal" : "", att_layout_name[lay],
             acc ? ", accumulate" : "");

    /* forward: o and lse against the double reference */
    double *ro = malloc(nq * sizeof *ro), *rl = malloc(nr * sizeof *rl);
    ref_attention_forward(q, k, v, ro, rl, B, H, Tq, Tk, D, scale, causal);
    att_case cs = {
        .o = O.t, .lse = L.t, .q = Q.t, .k = K.t, .v = V.t, .scale = 0.0f, .causal = causal};
    const okto_tensor *fouts[2] = {O.t, L.t};
    float *fg[2];
    run_all_n(c, rec_att, &cs, fouts, 2, NULL, what, fg);
    double eo = rel_err(fg[0], ro, nq), el = rel_err(fg[1], rl, nr);
    if (!(eo <= att_tol_o[di]) || !(el <= att_tol_lse))
        fail_msg("%s: o error %g (tol %g), lse error %g (tol %g)", what, eo, att_tol_o[di], el,
                 att_tol_lse);
    note(OKTO__OP_ATTENTION, dt, att_cov_layout[lay], att_tol_o[di], fmax(eo, el));
    if (parts)
        cov[OKTO__OP_ATTENTION].partitioned = 1;

    /* backward: against the reference backward and central differences of the double forward */
    double *rq = malloc(nq * sizeof *rq), *rk = malloc(nk * sizeof *rk);
    double *rv = malloc(nk * sizeof *rv);
    ref_attention_backward(q, k, v, g, rq, rk, rv, B, H, Tq, Tk, D, scale, causal);
    double *fq = NULL, *fk = NULL, *fv = NULL;
    if (nq + 2 * nk <= 1200) {
        att_fd fd = {q, k, v, g, B, H, Tq, Tk, D, causal, scale};
        fq = central_diff(att_loss, &fd, q, nq);
        fk = central_diff(att_loss, &fd, k, nk);
        fv = central_diff(att_loss, &fd, v, nk);
    }
    double *d0[3] = {host_of(DQ.t), host_of(DK.t), host_of(DV.t)};
    refill_clear();
    if (acc) {
        refill_set(0, DQ.t, d0[0]), refill_set(1, DK.t, d0[1]), refill_set(2, DV.t, d0[2]);
        for (size_t i = 0; i < nq; i++) {
            rq[i] += d0[0][i];
            if (fq)
                fq[i] += d0[0][i];
        }
        for (size_t i = 0; i < nk; i++) {
            rk[i] += d0[1][i], rv[i] += d0[2][i];
            if (fk)
                fk[i] += d0[1][i], fv[i] += d0[2][i];
        }
    }
    cs.dq = DQ.t, cs.dk = DK.t, cs.dv = DV.t, cs.dout = G.t, cs.fo = O.t, cs.flse = L.t;
    cs.flags = acc ? OKTO_ACCUMULATE : 0;
    const okto_tensor *bouts[3] = {DQ.t, DK.t, DV.t};
    float *bg[3];
    run_all_n(c, rec_att_bwd, &cs, bouts, 3, acc ? refill_many : NULL, what, bg);
    refill_clear();
    double eq = rel_err(bg[0], rq, nq), ek = rel_err(bg[1], rk, nk), ev = rel_err(bg[2], rv, nk);
    double tol = att_tol_grad[di];
    if (!(eq <= tol) || !(ek <= tol) || !(ev <= tol))
        fail_msg("%s: dq error %g, dk %g, dv %g > %g (reference backward)", what, eq, ek, ev, tol);
    if (fq) {
        double e1 = rel_err(bg[0], fq, nq), e2 = rel_err(bg[1], fk, nk),
               e3 = rel_err(bg[2], fv, nk);
        if (!(e1 <= tol) || !(e2 <= tol) || !(e3 <= tol))
            fail_msg("%s: dq error %g, dk %g, dv %g > %g (central differences)", what, e1, e2, e3,
                     tol);
    }
    note(OKTO__OP_ATTENTION_BWD, dt, att_cov_layout[lay], tol, eq);
    note(OKTO__OP_ATTENTION_BWD_DELTA, dt, att_cov_layout[lay], tol, fmax(eq, fmax(ek, ev)));
    note(OKTO__OP_ATTENTION_BWD_DKDV, dt, att_cov_layout[lay], tol, fmax(ek, ev));
    if (parts)
        cov[OKTO__OP_ATTENTION_BWD].partitioned = cov[OKTO__OP_ATTENTION_BWD_DELTA].partitioned =
            cov[OKTO__OP_ATTENTION_BWD_DKDV].partitioned = 1;
    for (int i = 0; i < 3; i++)
        free(d0[i]), free(bg[i]);
    free(fg[0]), free(fg[1]);
    free(q), free(k), free(v), free(g), free(ro), free(rl), free(rq), free(rk), free(rv);
    free(fq), free(fk), free(fv);
    tview_free(&Q), tview_free(&K), tview_free(&V), tview_free(&O), tview_free(&G);
    tview_free(&DQ), tview_free(&DK), tview_free(&DV), tview_free(&L);
    okto_tensor_destroy(qkv), okto_tensor_destroy(dqkv), okto_tensor_destroy(obase);
}

static void attention_ops(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        okto_dtype dt = float_dtypes[d];
        check_attention(ctx1, dt, 2, 3, 7, 7, 5, 0, AT_CONTIG, 0, 0);
        check_attention(ctx1, dt, 1, 2, 5, 9, 8, 0, AT_SLICED, 0, 0);
        check_attention(ctx1, dt, 2, 2, 17, 17, 16, 1, AT_FUSED, 0, 0);
        check_attention(ctx1, dt, 1, 1, 3, 3, 128, 1, AT_TRANSPOSED, 1, 0);
        check_attention(ctx1, dt, 1, 2, 6, 6, 4, 1, AT_FUSED, 1, 0);
    }
    /* parts: by batch, and by head when B = 1 */
    check_attention(ctx3, OKTO_F32, 3, 2, 40, 40, 16, 0, AT_CONTIG, 0, 1);
    check_attention(ctx3, OKTO_BF16, 1, 3, 70, 70, 16, 1, AT_FUSED, 1, 1);
}

static void attention_errors(void **state)
{
    (void)state;
    okto_context *c = ctx1;
    okto_tensor *q, *k, *o, *lse, *big, *kh, *q3, *k9;
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 5, 8}, &q));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 5, 8}, &k));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 5, 8}, &o));
    TU_OK(okto_tensor_create(c, OKTO_F32, 3, (size_t[]){2, 3, 5}, &lse));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){1, 1, 2, 129}, &big));
    TU_OK(okto_tensor_create(c, OKTO_F16, 4, (size_t[]){2, 3, 5, 8}, &kh));
    TU_OK(okto_tensor_create(c, OKTO_F32, 3, (size_t[]){3, 5, 8}, &q3));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 9, 8}, &k9));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    tu_expect_refused(c, g, okto_attention(g, NULL, lse, q, k, k, 0, 0), OKTO_EINVAL,
                      "o must not be NULL", NULL, 0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q, NULL, k, 0, 0), OKTO_EINVAL,
                      "k must not be NULL", NULL, 0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q, kh, k, 0, 0), OKTO_EINVAL, "dtypes differ",
                      "f16[2,3,5,8]", 0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q3, k, k, 0, 0), OKTO_EINVAL, "4-D",
                      "f32[3,5,8]", 0);
    tu_expect_refused(c, g, okto_attention(g, big, NULL, big, big, big, 0, 0), OKTO_ENOTSUP,
                      "head dim 129", NULL, 0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q, k9, k9, 0, 1), OKTO_ENOTSUP, "is_causal",
                      "Tk 9", 0);
    tu_expect_refused(c, g, okto_attention(g, o, q3, q, k, k, 0, 0), OKTO_EINVAL,
                      "lse is f32[3,5,8]", "f32[2,3,5]", 0);
    tu_expect_refused(c, g, okto_attention(g, q, lse, q, k, k, 0, 0), OKTO_EINVAL, "overlap", NULL,
                      0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q, k, k, NAN, 0), OKTO_EINVAL, "finite", NULL,
                      0);
    tu_expect_refused(c, g, okto_attention(g, o, lse, q, k9, k, 0, 0), OKTO_EINVAL, "f32[2,3,9,8]",
                      NULL, 0);
    /* non-causal Tq != Tk is fine */
    TU_OK(okto_attention(g, o, lse, q, k9, k9, 0, 0));
    int n = okto_graph_task_count(g);
    tu_expect_refused(c, g,
                      okto_attention_backward(g, NULL, NULL, NULL, o, q, k, k, o, lse, 0, 0, 0),
                      OKTO_EINVAL, "all NULL", NULL, n);
    tu_expect_refused(c, g, okto_attention_backward(g, q3, NULL, NULL, o, q, k, k, o, lse, 0, 0, 0),
                      OKTO_EINVAL, "dq", "f32[3,5,8]", n);
    tu_expect_refused(c, g,
                      okto_attention_backward(g, big, NULL, NULL, o, q, k, k, o, NULL, 0, 0, 0),
                      OKTO_EINVAL, "lse must not be NULL", NULL, n);
    tu_expect_refused(c, g, okto_attention_backward(g, q, NULL, NULL, o, q, k, k, o, lse, 0, 0, 0),
                      OKTO_EINVAL, "overlap", NULL, n);
    tu_expect_refused(c, g, okto_attention_backward(g, big, big, NULL, o, q, k, k, o, lse, 0, 0, 0),
                      OKTO_EINVAL, NULL, NULL, n);
    tu_expect_refused(c, g, okto_attention_backward(g, k9, NULL, NULL, o, q, k, k, o, lse, 0, 0, 8),
                      OKTO_EINVAL, "flags", NULL, n);
    okto_graph_destroy(g);
    okto_tensor *all[] = {q, k, o, lse, big, kh, q3, k9};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

/* ---- conv2d ----------------------------------------------------------------------------------- */

typedef struct conv_case {
    okto_tensor *y, *dx, *dw, *db;
    const okto_tensor *x, *w, *b, *dy;
    ref_conv_geom geo;
    unsigned flags;
} conv_case;

static void rec_conv(okto_graph *g, void *p)
{
    conv_case *c = p;
    okto_conv2d(g, c->y, c->x, c->w, c->b, c->geo.sh, c->geo.sw, c->geo.ph, c->geo.pw, c->geo.dh,
                c->geo.dw);
}

static void rec_conv_bwd(okto_graph *g, void *p)
{
    conv_case *c = p;
    okto_conv2d_backward(g, c->dx, c->dw, c->db, c->dy, c->x, c->w, c->geo.sh, c->geo.sw, c->geo.ph,
                         c->geo.pw, c->geo.dh, c->geo.dw, c->flags);
}

typedef struct conv_fd {
    const ref_conv_geom *geo;
    double *x, *w, *b, *dy;
} conv_fd;

static double conv_loss(void *p)
{
    conv_fd *f = p;
    const ref_conv_geom *g = f->geo;
    size_t ny = (size_t)g->N * g->Cout * g->OH * g->OW;
    double *y = malloc(ny * sizeof *y), l = 0;
    ref_conv2d_forward(g, f->x, f->w, f->b, y);
    for (size_t i = 0; i < ny; i++)
        l += f->dy[i] * y[i];
    free(y);
    return l;
}

/* a float sum of `terms` products: 4e-6 sqrt(terms) + 1e-6 (as matmul), plus the rounding of a
 * half result */
static double sum_tol(okto_dtype dt, double terms)
{
    return 4e-6 * sqrt(terms) + 1e-6 + (dt == OKTO_F32 ? 0 : tol_ew[dt]);
}

/* geometry: N C H W Cout KH KW sh sw ph pw dh dw */
static void check_conv(okto_context *c, okto_dtype dt, const int gm[13], int has_bias, layout lx,
                       int acc, int parts)
{
    ref_conv_geom geo = {gm[0], gm[1], gm[2],  gm[3],  gm[4],  gm[5], gm[6], gm[7],
                         gm[8], gm[9], gm[10], gm[11], gm[12], 0,     0};
    geo.OH = ref_conv_out(geo.H, geo.KH, geo.sh, geo.ph, geo.dh);
    geo.OW = ref_conv_out(geo.W, geo.KW, geo.sw, geo.pw, geo.dw);
    size_t xs[4] = {(size_t)geo.N, (size_t)geo.C, (size_t)geo.H, (size_t)geo.W};
    size_t ws[4] = {(size_t)geo.Cout, (size_t)geo.C, (size_t)geo.KH, (size_t)geo.KW};
    size_t ys[4] = {(size_t)geo.N, (size_t)geo.Cout, (size_t)geo.OH, (size_t)geo.OW};
    size_t nx = numel(4, xs), nw = numel(4, ws), ny = numel(4, ys), nb = (size_t)geo.Cout;
    tview X = make(c, dt, 4, xs, lx), W = make(c, dt, 4, ws, L_CONTIG), B = {0};
    tview Y = make(c, dt, 4, ys, lx == L_CONTIG ? L_CONTIG : L_SLICED);
    tview DY = make(c, dt, 4, ys, lx), DX = make(c, dt, 4, xs, lx);
    tview DW = make(c, dt, 4, ws, lx == L_SLICED ? L_SLICED : L_CONTIG);
    tview DB = make(c, dt, 1, &nb, L_CONTIG);
    double *x = fill(&X, nx + 3, -1, 1), *w = fill(&W, nw + 5, -1, 1), *b = NULL;
    double *dy = fill(&DY, ny + 7, -1, 1);
    if (has_bias) {
        B = make(c, dt, 1, &nb, L_CONTIG);
        b = fill(&B, nb + 11, -1, 1);
    }
    char what[200];
    snprintf(what, sizeof what, "conv2d %s x %s w %s stride %d,%d pad %d,%d dil %d,%d%s, %s%s",
             okto_dtype_name(dt), OKTO__DESC(X.t), OKTO__DESC(W.t), geo.sh, geo.sw, geo.ph, geo.pw,
             geo.dh, geo.dw, has_bias ? ", bias" : "", layout_name[lx], acc ? ", accumulate" : "");
    /* forward */
    double *ry = malloc(ny * sizeof *ry);
    ref_conv2d_forward(&geo, x, w, b, ry);
    conv_case cs = {.y = Y.t, .x = X.t, .w = W.t, .b = B.t, .dy = DY.t, .geo = geo};
    float *gy = run_all(c, rec_conv, &cs, Y.t, NULL, what);
    double K = (double)geo.C * geo.KH * geo.KW;
    double ty = sum_tol(dt, K + 1), ey = rel_err(gy, ry, ny);
    if (!(ey <= ty))
        fail_msg("%s: y error %g > %g", what, ey, ty);
    note_scaled(OKTO__OP_CONV2D, dt, lx, ty, ey, sqrt(K + 1) + 0.25, "sqrt(terms)");
    if (has_bias)
        note_scaled(OKTO__OP_CONV2D_BIAS, dt, lx, ty, ey, sqrt(K + 1) + 0.25, "sqrt(terms)");
    if (parts)
        cov[OKTO__OP_CONV2D].partitioned = cov[OKTO__OP_CONV2D_BIAS].partitioned = 1;
    /* backward */
    double *rx = malloc(nx * sizeof *rx), *rw = malloc(nw * sizeof *rw),
           *rb = malloc(nb * sizeof *rb);
    ref_conv2d_backward(&geo, x, w, dy, rx, rw, rb);
    double *fx = NULL, *fw = NULL, *fb = NULL;
    if (nx + nw <= 800) {
        double *b0 = b ? b : calloc(nb, sizeof *b0);
        conv_fd fd = {&geo, x, w, b0, dy};
        fx = central_diff(conv_loss, &fd, x, nx);
        fw = central_diff(conv_loss, &fd, w, nw);
        fb = central_diff(conv_loss, &fd, b0, nb);
        if (!b)
            free(b0);
    }
    double *d0[3] = {fill(&DX, 13, -1, 1), fill(&DW, 17, -1, 1), fill(&DB, 19, -1, 1)};
    refill_clear();
    if (acc) {
        refill_set(0, DX.t, d0[0]), refill_set(1, DW.t, d0[1]), refill_set(2, DB.t, d0[2]);
        double *r3[3] = {rx, rw, rb}, *f3[3] = {fx, fw, fb};
        size_t n3[3] = {nx, nw, nb};
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < n3[i]; j++) {
                r3[i][j] += d0[i][j];
                if (f3[i])
                    f3[i][j] += d0[i][j];
            }
    }
    cs.dx = DX.t, cs.dw = DW.t, cs.db = DB.t, cs.flags = acc ? OKTO_ACCUMULATE : 0;
    const okto_tensor *outs[3] = {DX.t, DW.t, DB.t};
    float *got[3];
    run_all_n(c, rec_conv_bwd, &cs, outs, 3, acc ? refill_many : NULL, what, got);
    refill_clear();
    double npix = (double)geo.N * geo.OH * geo.OW;
    double tx = sum_tol(dt, (double)geo.Cout * geo.KH * geo.KW), tw = sum_tol(dt, npix);
    double ex = rel_err(got[0], rx, nx), ew = rel_err(got[1], rw, nw), eb = rel_err(got[2], rb, nb);
    if (!(ex <= tx) || !(ew <= tw) || !(eb <= tw))
        fail_msg("%s: dx error %g (tol %g), dw %g, db %g (tol %g)", what, ex, tx, ew, eb, tw);
    if (fx) {
        double e1 = rel_err(got[0], fx, nx), e2 = rel_err(got[1], fw, nw);
        double e3 = rel_err(got[2], fb, nb);
        if (!(e1 <= tx) || !(e2 <= tw) || !(e3 <= tw))
            fail_msg("%s: dx error %g, dw %g, db %g (central differences)", what, e1, e2, e3);
    }
    note_scaled(OKTO__OP_CONV2D_BWD, dt, lx, tw, fmax(ex, ew), sqrt(npix) + 0.25, "sqrt(terms)");
    note_scaled(OKTO__OP_CONV2D_BWD_BIAS, dt, lx, tw, eb, sqrt(npix) + 0.25, "sqrt(terms)");
    if (parts)
        cov[OKTO__OP_CONV2D_BWD].partitioned = 1;
    for (int i = 0; i < 3; i++)
        free(d0[i]), free(got[i]);
    free(x), free(w), free(b), free(dy), free(ry), free(gy), free(rx), free(rw), free(rb);
    free(fx), free(fw), free(fb);
    tview_free(&X), tview_free(&W), tview_free(&B), tview_free(&Y), tview_free(&DY);
    tview_free(&DX), tview_free(&DW), tview_free(&DB);
}

static void conv_ops(void **state)
{
    (void)state;
    /* N C H W Cout KH KW sh sw ph pw dh dw */
    static const int geo[][13] = {
        {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1}, /* 3x3 "same" */
        {1, 2, 9, 8, 3, 3, 2, 2, 3, 1, 0, 2, 1}, /* strides, dilation, uneven padding */
        {3, 1, 5, 5, 2, 5, 5, 1, 1, 0, 0, 1, 1}, /* the window is the whole input */
        {2, 4, 3, 3, 5, 1, 1, 1, 1, 0, 0, 1, 1}, /* 1x1 */
    };
    for (size_t d = 0; d < 3; d++)
        for (size_t i = 0; i < sizeof geo / sizeof *geo; i++)
            check_conv(ctx1, float_dtypes[d], geo[i], i != 1, (layout)((i + d) % L_COUNT), 0, 0);
    check_conv(ctx1, OKTO_F32, geo[0], 1, L_SLICED, 1, 0);
    check_conv(ctx1, OKTO_BF16, geo[1], 0, L_CONTIG, 1, 0);
    /* parts: ranges of images across 3 lanes */
    static const int big_geo[13] = {8, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1};
    check_conv(ctx3, OKTO_F32, big_geo, 1, L_CONTIG, 1, 1);
    check_conv(ctx3, OKTO_F16, big_geo, 1, L_TRANSPOSED, 0, 1);
}

static void conv_errors(void **state)
{
    (void)state;
    okto_context *c = ctx1;
    okto_tensor *x, *w, *y, *b, *w5, *wc, *xh, *y2;
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 4, 4}, &x));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){5, 3, 3, 3}, &w));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 5, 2, 2}, &y));
    TU_OK(okto_tensor_create(c, OKTO_F32, 1, (size_t[]){5}, &b));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){5, 3, 5, 5}, &w5));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){5, 2, 3, 3}, &wc));
    TU_OK(okto_tensor_create(c, OKTO_F16, 4, (size_t[]){2, 3, 4, 4}, &xh));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 5, 4, 4}, &y2));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    tu_expect_refused(c, g, okto_conv2d(g, y, x, w5, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL,
                      "okto_conv2d: w is f32[5,3,5,5]", "larger than x f32[2,3,4,4]", 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, x, w, b, 1, 1, 0, 0, 2, 2), OKTO_EINVAL,
                      "larger than x", "dilation 2", 0);
    tu_expect_refused(c, g, okto_conv2d(g, y2, x, w, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL,
                      "f32[2,5,4,4]", "f32[2,5,2,2]", 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, x, wc, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL, "channels",
                      NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, xh, w, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL,
                      "dtypes differ", NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, x, w, b, 0, 1, 0, 0, 1, 1), OKTO_EINVAL, "stride",
                      NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, x, w, b, 1, 1, -1, 0, 1, 1), OKTO_EINVAL, "padding",
                      NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, y, x, w, y2, 1, 1, 0, 0, 1, 1), OKTO_EINVAL,
                      "bias is f32[2,5,4,4]", NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, NULL, x, w, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL,
                      "y must not be NULL", NULL, 0);
    tu_expect_refused(c, g, okto_conv2d(g, x, x, w, b, 1, 1, 0, 0, 1, 1), OKTO_EINVAL, NULL, NULL,
                      0);
    /* same-padding: y2 [2,5,4,4] */
    TU_OK(okto_conv2d(g, y2, x, w, NULL, 1, 1, 1, 1, 1, 1));
    int n = okto_graph_task_count(g);
    tu_expect_refused(c, g,
                      okto_conv2d_backward(g, NULL, NULL, NULL, y2, x, w, 1, 1, 1, 1, 1, 1, 0),
                      OKTO_EINVAL, "all NULL", NULL, n);
    tu_expect_refused(c, g, okto_conv2d_backward(g, w, NULL, NULL, y2, x, w, 1, 1, 1, 1, 1, 1, 0),
                      OKTO_EINVAL, "dx is f32[5,3,3,3]", NULL, n);
    tu_expect_refused(c, g, okto_conv2d_backward(g, NULL, w, NULL, y2, x, w, 1, 1, 1, 1, 1, 1, 0),
                      OKTO_EINVAL, "overlap", NULL, n);
    tu_expect_refused(c, g, okto_conv2d_backward(g, NULL, NULL, b, y, x, w, 1, 1, 1, 1, 1, 1, 0),
                      OKTO_EINVAL, "dy is f32[2,5,2,2]", NULL, n);
    tu_expect_refused(c, g, okto_conv2d_backward(g, NULL, NULL, b, y2, x, w, 1, 1, 1, 1, 1, 1, 2),
                      OKTO_EINVAL, "flags", NULL, n);
    okto_graph_destroy(g);
    okto_tensor *all[] = {x, w, y, b, w5, wc, xh, y2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

/* ---- pooling ---------------------------------------------------------------------------------- */

enum { PK_MAX, PK_AVG, PK_GAP };

typedef struct pool_case {
    int kind;
    okto_tensor *y, *arg, *dx;
    const okto_tensor *x, *dy, *argin;
    int kh, kw, sh, sw, ph, pw;
    unsigned flags;
} pool_case;

static void rec_pool(okto_graph *g, void *p)
{
    pool_case *c = p;
    if (c->kind == PK_MAX)
        okto_max_pool2d(g, c->y, c->arg, c->x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
    else if (c->kind == PK_AVG)
        okto_avg_pool2d(g, c->y, c->x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
    else
        okto_global_avg_pool2d(g, c->y, c->x);
}

static void rec_pool_bwd(okto_graph *g, void *p)
{
    pool_case *c = p;
    if (c->kind == PK_MAX)
        okto_max_pool2d_backward(g, c->dx, c->dy, c->argin, c->kh, c->kw, c->sh, c->sw, c->ph,
                                 c->pw, c->flags);
    else if (c->kind == PK_AVG)
        okto_avg_pool2d_backward(g, c->dx, c->dy, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw,
                                 c->flags);
    else
        okto_global_avg_pool2d_backward(g, c->dx, c->dy, c->flags);
}

typedef struct pool_fd {
    int kind;
    const ref_pool_geom *geo;
    double *x, *dy;
} pool_fd;

static double pool_loss(void *p)
{
    pool_fd *f = p;
    const ref_pool_geom *g = f->geo;
    size_t ny = (size_t)g->NC * g->OH * g->OW;
    double *y = malloc(ny * sizeof *y), l = 0;
    int *am = malloc(ny * sizeof *am);
    if (f->kind == PK_MAX)
        ref_maxpool2d_forward(g, f->x, y, am);
    else if (f->kind == PK_AVG)
        ref_avgpool2d_forward(g, f->x, y, 1);
    else
        ref_gap_forward(g->NC, g->H * g->W, f->x, y);
    for (size_t i = 0; i < ny; i++)
        l += f->dy[i] * y[i];
    free(y), free(am);
    return l;
}

static const okto__op pool_fwd_op[] = {OKTO__OP_MAXPOOL2D, OKTO__OP_AVGPOOL2D, OKTO__OP_GAP2D};
static const okto__op pool_bwd_op[] = {OKTO__OP_MAXPOOL2D_BWD, OKTO__OP_AVGPOOL2D_BWD,
                                       OKTO__OP_GAP2D_BWD};

/* geometry: N C H W kh kw sh sw ph pw (the window unused for global pooling) */
static void check_pool(okto_context *c, okto_dtype dt, int kind, const int gm[10], layout l,
                       int acc, int parts)
{
    ref_pool_geom geo = {gm[0] * gm[1], gm[2], gm[3], gm[4], gm[5], gm[6], gm[7],
                         gm[8],         gm[9], 1,     1,     0,     0};
    if (kind == PK_GAP)
        geo.OH = geo.OW = 1;
    else
        geo.OH = (geo.H + 2 * geo.ph - geo.KH) / geo.sh + 1,
        geo.OW = (geo.W + 2 * geo.pw - geo.KW) / geo.sw + 1;
    size_t xs[4] = {(size_t)gm[0], (size_t)gm[1], (size_t)gm[2], (size_t)gm[3]};
    size_t ys[4] = {(size_t)gm[0], (size_t)gm[1], (size_t)geo.OH, (size_t)geo.OW};
    size_t nx = numel(4, xs), ny = numel(4, ys);
    tview X = make(c, dt, 4, xs, l), Y = make(c, dt, 4, ys, l == L_CONTIG ? L_CONTIG : L_SLICED);
    tview A = make(c, OKTO_I32, 4, ys, l == L_SLICED ? L_SLICED : L_CONTIG);
    tview DY = make(c, dt, 4, ys, l), DX = make(c, dt, 4, xs, l);
    double *x = fill(&X, nx * 3 + (size_t)kind, -2, 2), *dy = fill(&DY, ny + 1, -1, 1);
    char what[200];
    snprintf(what, sizeof what, "%s %s x %s window %dx%d stride %d,%d pad %d,%d, %s%s",
             okto__ops[pool_fwd_op[kind]]->name, okto_dtype_name(dt), OKTO__DESC(X.t), geo.KH,
             geo.KW, geo.sh, geo.sw, geo.ph, geo.pw, layout_name[l], acc ? ", accumulate" : "");
    double *ry = malloc(ny * sizeof *ry);
    int *ra = malloc(ny * sizeof *ra);
    if (kind == PK_MAX)
        ref_maxpool2d_forward(&geo, x, ry, ra);
    else if (kind == PK_AVG)
        ref_avgpool2d_forward(&geo, x, ry, 1);
    else
        ref_gap_forward(geo.NC, geo.H * geo.W, x, ry);
    pool_case cs = {.kind = kind,
                    .y = Y.t,
                    .arg = kind == PK_MAX ? A.t : NULL,
                    .x = X.t,
                    .dy = DY.t,
                    .argin = A.t,
                    .kh = geo.KH,
                    .kw = geo.KW,
                    .sh = geo.sh,
                    .sw = geo.sw,
                    .ph = geo.ph,
                    .pw = geo.pw};
    const okto_tensor *fo[2] = {Y.t, kind == PK_MAX ? A.t : NULL};
    float *fg[2];
    run_all_n(c, rec_pool, &cs, fo, 2, NULL, what, fg);
    /* max pool copies a value; averages round once in the dtype (gap: a sum over the plane) */
    double terms = kind == PK_GAP ? (double)(geo.H * geo.W) : (double)(geo.KH * geo.KW);
    double tf = kind == PK_MAX ? 0 : dt == OKTO_F32 ? 1e-6 * sqrt(terms) + 1e-6 : tol_ew[dt];
    double ey = rel_err(fg[0], ry, ny);
    if (!(ey <= tf))
        fail_msg("%s: y error %g > %g", what, ey, tf);
    if (kind == PK_MAX)
        for (size_t i = 0; i < ny; i++)
            if ((int)fg[1][i] != ra[i])
                fail_msg("%s: argmax[%zu] is %g, want %d", what, i, (double)fg[1][i], ra[i]);
    note(pool_fwd_op[kind], dt, l, tf, ey);
    /* backward, with the device's argmax (the reference's, as checked) */
    double *rx = malloc(nx * sizeof *rx), *fx = NULL;
    if (kind == PK_MAX)
        ref_maxpool2d_backward(&geo, dy, ra, rx);
    else if (kind == PK_AVG)
        ref_avgpool2d_backward(&geo, dy, rx, 1);
    else
        ref_gap_backward(geo.NC, geo.H * geo.W, dy, rx);
    if (nx <= 400 && (kind != PK_MAX || dt == OKTO_F32)) {
        /* max pool: f32 only, where the inputs hold no ties */
        pool_fd fd = {kind, &geo, x, dy};
        fx = central_diff(pool_loss, &fd, x, nx);
    }
    double *d0 = fill(&DX, 23, -1, 1);
    refill_clear();
    if (acc) {
        refill_set(0, DX.t, d0);
        for (size_t i = 0; i < nx; i++) {
            rx[i] += d0[i];
            if (fx)
                fx[i] += d0[i];
        }
    }
    cs.dx = DX.t, cs.flags = acc ? OKTO_ACCUMULATE : 0;
    float *gx = run_all(c, rec_pool_bwd, &cs, DX.t, acc ? refill_many : NULL, what);
    refill_clear();
    double overlap =
        kind == PK_GAP ? 1 : ceil((double)geo.KH / geo.sh) * ceil((double)geo.KW / geo.sw);
    double tb = dt == OKTO_F32 ? 1e-6 * sqrt(overlap + 1) + 1e-6 : 2 * tol_ew[dt];
    double ex = rel_err(gx, rx, nx);
    if (!(ex <= tb))
        fail_msg("%s: dx error %g > %g", what, ex, tb);
    if (fx && !(rel_err(gx, fx, nx) <= tb + 1e-7))
        fail_msg("%s: dx error %g > %g (central differences)", what, rel_err(gx, fx, nx), tb);
    note(pool_bwd_op[kind], dt, l, tb, ex);
    if (parts)
        cov[pool_fwd_op[kind]].partitioned = cov[pool_bwd_op[kind]].partitioned = 1;
    free(x), free(dy), free(ry), free(ra), free(rx), free(fx), free(d0), free(gx);
    free(fg[0]), free(fg[1]);
    tview_free(&X), tview_free(&Y), tview_free(&A), tview_free(&DY), tview_free(&DX);
}

static void pool_ops(void **state)
{
    (void)state;
    /* N C H W kh kw sh sw ph pw */
    static const int geo[][10] = {
        {2, 3, 7, 6, 3, 3, 2, 2, 1, 1}, /* overlapping, padded, odd sizes */
        {1, 2, 5, 9, 2, 3, 1, 2, 0, 1}, /* stride 1 rows, uneven */
        {3, 1, 4, 4, 4, 4, 1, 1, 2, 2}, /* padding half the window */
        {2, 2, 1, 1, 1, 1, 1, 1, 0, 0}, /* 1x1 */
    };
    for (int kind = 0; kind < 3; kind++)
        for (size_t d = 0; d < 3; d++)
            for (size_t i = 0; i < sizeof geo / sizeof *geo; i++)
                check_pool(ctx1, float_dtypes[d], kind, geo[i], (layout)((i + d) % L_COUNT),
                           (int)((i + d + (size_t)kind) % 2), 0);
    static const int big_geo[10] = {8, 16, 32, 33, 3, 3, 1, 1, 1, 1};
    for (int kind = 0; kind < 3; kind++)
        check_pool(ctx3, kind == 1 ? OKTO_BF16 : OKTO_F32, kind, big_geo, L_CONTIG, kind == 2, 1);
}

static void pool_errors(void **state)
{
    (void)state;
    okto_context *c = ctx1;
    okto_tensor *x, *y, *a, *af, *x3, *y1, *yg;
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 6, 6}, &x));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 3, 3}, &y));
    TU_OK(okto_tensor_create(c, OKTO_I32, 4, (size_t[]){2, 3, 3, 3}, &a));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 3, 3}, &af));
    TU_OK(okto_tensor_create(c, OKTO_F32, 3, (size_t[]){3, 6, 6}, &x3));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 3, 1, 1}, &y1));
    TU_OK(okto_tensor_create(c, OKTO_F32, 4, (size_t[]){2, 4, 1, 1}, &yg));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    tu_expect_refused(c, g, okto_max_pool2d(g, y, a, x, 2, 2, 2, 2, 2, 0), OKTO_EINVAL, "over half",
                      NULL, 0);
    tu_expect_refused(c, g, okto_max_pool2d(g, y, a, x, 3, 3, 2, 2, 0, 0), OKTO_EINVAL,
                      "y is f32[2,3,3,3]", "f32[2,3,2,2]", 0);
    tu_expect_refused(c, g, okto_max_pool2d(g, y1, NULL, x, 7, 7, 1, 1, 0, 0), OKTO_EINVAL,
                      "larger than x f32[2,3,6,6]", NULL, 0);
    tu_expect_refused(c, g, okto_max_pool2d(g, y, af, x, 2, 2, 2, 2, 0, 0), OKTO_EINVAL,
                      "argmax is f32[2,3,3,3]", "i32", 0);
    tu_expect_refused(c, g, okto_avg_pool2d(g, y, x3, 2, 2, 2, 2, 0, 0), OKTO_EINVAL, "4-D", NULL,
                      0);
    tu_expect_refused(c, g, okto_avg_pool2d(g, y, x, 0, 2, 2, 2, 0, 0), OKTO_EINVAL, ">= 1", NULL,
                      0);
    tu_expect_refused(c, g, okto_avg_pool2d(g, x, x, 1, 1, 1, 1, 0, 0), OKTO_EINVAL, "overlap",
                      NULL, 0);
    tu_expect_refused(c, g, okto_global_avg_pool2d(g, yg, x), OKTO_EINVAL, "f32[2,3,1,1]", NULL, 0);
    tu_expect_refused(c, g, okto_max_pool2d_backward(g, x, y, NULL, 2, 2, 2, 2, 0, 0, 0),
                      OKTO_EINVAL, "argmax must not be NULL", NULL, 0);
    tu_expect_refused(c, g, okto_max_pool2d_backward(g, x, y, a, 2, 2, 2, 2, 0, 0, 8), OKTO_EINVAL,
                      "flags", NULL, 0);
    tu_expect_refused(c, g, okto_avg_pool2d_backward(g, x, y1, 2, 2, 2, 2, 0, 0, 0), OKTO_EINVAL,
                      "dy is f32[2,3,1,1]", NULL, 0);
    tu_expect_refused(c, g, okto_global_avg_pool2d_backward(g, x, yg, 0), OKTO_EINVAL, "dy", NULL,
                      0);
    TU_OK(okto_max_pool2d(g, y, NULL, x, 2, 2, 2, 2, 0, 0));
    TU_OK(okto_global_avg_pool2d(g, y1, x));
    okto_graph_destroy(g);
    okto_tensor *all[] = {x, y, a, af, x3, y1, yg};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

/* ---- concat and split -------------------------------------------------------------------------- */

typedef struct cat_case {
    int n, dim, split;
    okto_tensor *out, *outs[4];
    const okto_tensor *ins[4], *in;
} cat_case;

static void rec_cat(okto_graph *g, void *p)
{
    cat_case *c = p;
    if (c->split)
        okto_split(g, c->n, c->outs, c->in, c->dim);
    else
        okto_concat(g, c->out, c->n, c->ins, c->dim);
}

/* pieces of sizes len[0 .. n) along dim (negative: from the end) joined into sh; concat, then
 * split of the result back into fresh pieces (its gradient, and concat's of split) */
static void check_concat(okto_context *c, okto_dtype dt, const shape *sh, int dim, int n,
                         const size_t *len, layout l, int parts)
{
    int d = dim < 0 ? dim + sh->rank : dim;
    tview out = make(c, dt, sh->rank, sh->d, l == L_SLICED ? L_CONTIG : L_SLICED);
    tview in[4], back[4];
    double *x[4];
    size_t total = numel(sh->rank, sh->d);
    for (int i = 0; i < n; i++) {
        shape ps = *sh;
        ps.d[d] = len[i];
        in[i] = make(c, dt, ps.rank, ps.d, ps.rank >= 2 ? l : L_SLICED);
        back[i] = make(c, dt, ps.rank, ps.d, i % 2 ? L_SLICED : L_CONTIG);
        x[i] = fill(&in[i], (uint64_t)(i * 7 + n + d), -50, 50);
    }
    /* the joined reference: element (outer, k along d, inner) from piece i */
    size_t inner = 1, outer = 1;
    for (int j = d + 1; j < sh->rank; j++)
        inner *= sh->d[j];
    for (int j = 0; j < d; j++)
        outer *= sh->d[j];
    double *want = malloc(total * sizeof *want);
    for (size_t o = 0; o < outer; o++) {
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            for (size_t k = 0; k < len[i]; k++)
                for (size_t e = 0; e < inner; e++)
                    want[(o * sh->d[d] + at + k) * inner + e] = x[i][(o * len[i] + k) * inner + e];
            at += len[i];
        }
    }
    cat_case cs = {.n = n, .dim = dim, .out = out.t};
    for (int i = 0; i < n; i++)
        cs.ins[i] = in[i].t;
    char what[160];
    snprintf(what, sizeof what, "concat %s %s dim %d of %d pieces, %s", okto_dtype_name(dt),
             OKTO__DESC(out.t), dim, n, layout_name[l]);
    float *got = run_all(c, rec_cat, &cs, out.t, NULL, what);
    double err = rel_err(got, want, total);
    if (err != 0)
        fail_msg("%s: error %g (a copy is exact)", what, err);
    note(OKTO__OP_CONCAT, dt, l, 0, err);
    /* split the joined tensor back */
    cat_case sp = {.n = n, .dim = dim, .split = 1, .in = out.t};
    const okto_tensor *bo[4];
    float *bg[4];
    for (int i = 0; i < n; i++)
        sp.outs[i] = back[i].t, bo[i] = back[i].t;
    run_all_n(c, rec_cat, &sp, bo, n, NULL, what, bg);
    for (int i = 0; i < n; i++) {
        size_t pn = okto_tensor_numel(back[i].t);
        if (rel_err(bg[i], x[i], pn) != 0)
            fail_msg("%s: split piece %d differs from what was joined", what, i);
        free(bg[i]);
    }
    note(OKTO__OP_SPLIT, dt, l, 0, 0);
    if (parts)
        cov[OKTO__OP_CONCAT].partitioned = cov[OKTO__OP_SPLIT].partitioned = 1;
    for (int i = 0; i < n; i++) {
        free(x[i]);
        tview_free(&in[i]), tview_free(&back[i]);
    }
    free(want), free(got);
    tview_free(&out);
}

static void concat_ops(void **state)
{
    (void)state;
    static const struct {
        shape sh;
        int dim, n;
        size_t len[4];
    } rows[] = {
        {{1, {7}}, 0, 3, {3, 1, 3}},    {{2, {13, 5}}, 1, 2, {2, 3}},
        {{2, {13, 5}}, -2, 2, {6, 7}},  {{3, {3, 7, 5}}, 1, 3, {1, 4, 2}},
        {{4, {2, 3, 4, 5}}, 3, 1, {5}}, {{4, {2, 3, 4, 5}}, 0, 2, {1, 1}},
    };
    for (int dt = 0; dt < OKTO_DTYPE_COUNT; dt++)
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
            check_concat(ctx1, (okto_dtype)dt, &rows[i].sh, rows[i].dim, rows[i].n, rows[i].len,
                         (layout)((i + (size_t)dt) % L_COUNT), 0);
    check_concat(ctx1, OKTO_F32, &(shape){4, {2, 3, 4, 5}}, -3, 3, (size_t[]){1, 1, 1},
                 L_TRANSPOSED, 0);
    check_concat(ctx3, OKTO_F32, &big, 0, 2, (size_t[]){500, 524}, L_CONTIG, 1);
    check_concat(ctx3, OKTO_BF16, &big, 1, 2, (size_t[]){100, 157}, L_TRANSPOSED, 1);
}

static void concat_errors(void **state)
{
    (void)state;
    okto_context *c = ctx1;
    okto_tensor *a, *b, *out, *bh, *w;
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){3, 4}, &a));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){3, 2}, &b));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){3, 6}, &out));
    TU_OK(okto_tensor_create(c, OKTO_F16, 2, (size_t[]){3, 2}, &bh));
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){4, 2}, &w));
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    const okto_tensor *ab[2] = {a, b}, *ah[2] = {a, bh}, *aw[2] = {a, w}, *an[2] = {a, NULL};
    const okto_tensor *aa[2] = {a, a}, *ao[2] = {a, out};
    tu_expect_refused(c, g, okto_concat(g, out, 2, ab, 0), OKTO_EINVAL, "ins[0] is f32[3,4]",
                      "dimension but 0", 0);
    tu_expect_refused(c, g, okto_concat(g, out, 2, ah, 1), OKTO_EINVAL, "ins[1] is f16[3,2]", NULL,
                      0);
    tu_expect_refused(c, g, okto_concat(g, out, 2, aw, 1), OKTO_EINVAL, "ins[1] is f32[4,2]", NULL,
                      0);
    tu_expect_refused(c, g, okto_concat(g, out, 2, an, 1), OKTO_EINVAL, "ins[1] must not be NULL",
                      NULL, 0);
    tu_expect_refused(c, g, okto_concat(g, out, 2, aa, 1), OKTO_EINVAL, "add up to 8", NULL, 0);
    tu_expect_refused(c, g, okto_concat(g, out, 2, ab, 2), OKTO_EINVAL, "dim 2", NULL, 0);
    tu_expect_refused(c, g, okto_concat(g, out, 0, ab, 1), OKTO_EINVAL, "n is 0", NULL, 0);
    tu_expect_refused(c, g, okto_concat(g, a, 2, ao, 1), OKTO_EINVAL, NULL, NULL, 0);
    TU_OK(okto_concat(g, out, 2, ab, -1));
    int nt = okto_graph_task_count(g);
    okto_tensor *b4;
    TU_OK(okto_tensor_create(c, OKTO_F32, 2, (size_t[]){3, 4}, &b4));
    okto_tensor *sab[2] = {a, b}, *saa[2] = {a, b4}, *sao[2] = {a, out}, *s2[2] = {b4, b};
    tu_expect_refused(c, g, okto_split(g, 2, saa, out, 1), OKTO_EINVAL, "add up to 8", NULL, nt);
    tu_expect_refused(c, g, okto_split(g, 2, sao, out, 1), OKTO_EINVAL, NULL, NULL, nt);
    okto_tensor *dup[3] = {b, b, b};
    tu_expect_refused(c, g, okto_split(g, 3, dup, out, 1), OKTO_EINVAL, "overlap", NULL, nt);
    TU_OK(okto_split(g, 2, sab, out, 1));
    TU_OK(okto_split(g, 2, s2, out, 1));
    okto_graph_destroy(g);
    okto_tensor *all[] = {a, b, out, bh, w, b4};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

/* ---- the op-support table ----------------------------------------------------------------------- */

static int internal(okto__op op)
{
    return op == OKTO__OP_MATMUL_SUM || op == OKTO__OP_REDUCE_AGGREGATE || op == OKTO__OP_KERNEL;
}

static void render(FILE *f)
{
    fprintf(f,
            "# okto ops\n\n"
            "Generated by `tests/test_ops --write-docs` (tools/gen-ops-md.sh) from the op table "
            "(lib/ops/ops.def) and what tests/test_ops.c checked: do not edit by hand.\n\n"
            "Every op runs in every dtype listed, on odd shapes of ranks 1 to 4, in the layouts "
            "listed, under every scheduling policy (the same bits as sequential), and where "
            "\"split\" says yes also split into parts across lanes. The tolerance is the largest "
            "|got - reference| / max(1, |reference|) allowed against a double-precision "
            "reference computed from the inputs as the device holds them (for sums it grows "
            "with the square root of the terms; for softmax_xent it is relative to 1/rows).\n\n"
            "The tolerance column gives, per dtype, the bound and in brackets the largest error "
            "seen, in the same units.\n\n"
            "| op | family | dtypes | layouts | split | backward | tolerance (worst) f32 / f16 / "
            "bf16 | notes |\n|---|---|---|---|---|---|---|---|\n");
    for (int op = 0; op < OKTO__OP_COUNT; op++) {
        if (internal((okto__op)op))
            continue;
        const okto__op_desc *d = okto__ops[op];
        const coverage *c = &cov[op];
        char dts[64] = "", tols[96] = "";
        for (int t = 0; t < OKTO_DTYPE_COUNT; t++)
            if (c->dtypes & (1u << t))
                snprintf(dts + strlen(dts), sizeof dts - strlen(dts), "%s%s", dts[0] ? ", " : "",
                         okto_dtype_name((okto_dtype)t));
        for (int t = 0; t < 3; t++) {
            char one[32];
            if (!(c->dtypes & (1u << t)))
                snprintf(one, sizeof one, "-");
            else if (c->tol[t] == 0)
                snprintf(one, sizeof one, "exact");
            else
                snprintf(one, sizeof one, "%.0e (%.0e)", c->tol[t], c->worst[t]);
            snprintf(tols + strlen(tols), sizeof tols - strlen(tols), "%s%s", t ? " / " : "", one);
        }
        char note_s[256];
        snprintf(note_s, sizeof note_s, "%s%s%s%s", c->scale ? "tolerance x " : "",
                 c->scale ? c->scale : "", c->scale && d->dtype_note ? "; " : "",
                 d->dtype_note ? d->dtype_note : "");
        /* its gradient: the op named like it with ".backward" */
        char gname[96];
        const char *grad = "-";
        snprintf(gname, sizeof gname, "%s.backward", d->name);
        for (int k = 0; k < OKTO__OP_COUNT; k++)
            if (strcmp(okto__ops[k]->name, gname) == 0)
                grad = okto__ops[k]->name;
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", d->name, d->family, dts,
                d->layouts, c->partitioned ? "yes" : "no", grad, tols, note_s);
    }
}

static int check_docs = 1;

static void coverage_complete(void **state)
{
    (void)state;
    for (int op = 0; op < OKTO__OP_COUNT; op++) {
        if (internal((okto__op)op))
            continue;
        if (!cov[op].cases)
            fail_msg("op %s has no row in tests/test_ops.c", okto__ops[op]->name);
        if ((cov[op].dtypes & okto__ops[op]->dtypes) != okto__ops[op]->dtypes)
            fail_msg("op %s takes dtypes the test never ran", okto__ops[op]->name);
    }
    /* the committed table is the device path's (tools/gen-ops-md.sh runs with OKTO_HOST_LANE=0):
     * the host lane's BLAS sums matmuls in another order, so their worst errors seen differ
     * (the bounds hold either way, checked above), and the table is compared without it */
    if (!check_docs || okto_context_host_lane(ctx1) || okto_context_host_lane(ctx3))
        return;
    /* the committed table is the one this run renders */
    char path[512];
    snprintf(path, sizeof path, "%s/../docs/ops.md", OKTO_TEST_DIR);
    FILE *f = fopen(path, "r");
    char *have = NULL, *want = NULL;
    size_t hn = 0, wn = 0;
    if (f) {
        FILE *m = open_memstream(&have, &hn);
        int ch;
        while ((ch = fgetc(f)) != EOF)
            fputc(ch, m);
        fclose(m);
        fclose(f);
    }
    FILE *m = open_memstream(&want, &wn);
    render(m);
    fclose(m);
    if (!have || strcmp(have, want) != 0)
        fail_msg("docs/ops.md is out of date: run tools/gen-ops-md.sh");
    free(have), free(want);
}

static int setup(void **state)
{
    (void)state;
    ctx1 = tu_context_with(1, OKTO_SCHED_AUTO);
    ctx3 = tu_context_with(3, OKTO_SCHED_AUTO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx1);
    okto_context_destroy(ctx3);
    return 0;
}

int main(int argc, char **argv)
{
    /* one block per author, so concurrent additions merge */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_ops),          cmocka_unit_test(zip_ops),
        cmocka_unit_test(blas_ops),         cmocka_unit_test(transfers),
        cmocka_unit_test(matmul_ops),       cmocka_unit_test(reduce_ops),
        cmocka_unit_test(softmax_ops),      cmocka_unit_test(map_backward_ops),
        cmocka_unit_test(zip_backward_ops),
        /* ops1 */
        cmocka_unit_test(norm_ops), cmocka_unit_test(softmax_ext_ops), cmocka_unit_test(xent_ops),
        cmocka_unit_test(embed_ops), cmocka_unit_test(dropout_ops), cmocka_unit_test(argmax_ops),
        cmocka_unit_test(optim_ops), cmocka_unit_test(ops1_errors),
        /* end of ops1 */
        /* ops2 */
        cmocka_unit_test(matmul_batched_ops), cmocka_unit_test(matmul_batched_errors),
        cmocka_unit_test(attention_ops), cmocka_unit_test(attention_errors),
        cmocka_unit_test(conv_ops), cmocka_unit_test(conv_errors),
        cmocka_unit_test(pool_ops), cmocka_unit_test(pool_errors),
        cmocka_unit_test(concat_ops), cmocka_unit_test(concat_errors),
        /* the generated table, last */
        cmocka_unit_test(coverage_complete),
    };
    /* clang-format on */
    if (argc == 3 && strcmp(argv[1], "--write-docs") == 0) {
        /* every row, then the table (written only when every row passed) */
        check_docs = 0;
        int rc = cmocka_run_group_tests(tests, setup, teardown);
        if (rc)
            return rc;
        FILE *f = fopen(argv[2], "w");
        if (!f)
            return 2;
        render(f);
        return fclose(f) == 0 ? 0 : 2;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
