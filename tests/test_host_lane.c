/* tests/test_host_lane.c: the host lane (lib/lane_host.c). One graph mixes device tasks
 * (elementwise maps, okto's own small GEMM kernel) and host-lane matmuls (plain, transposed
 * operands, strided views, row panels, split-K, batched with a broadcast operand, accumulate),
 * each feeding the next across lanes, under every policy and replayed; the results are checked
 * against a double host reference and against the same graph on a context without the host
 * lane, within the matmul tolerance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static okto_context *on, *off;

static double tol_for(size_t k) { return 4e-6 * sqrt((double)k) + 1e-6; }

/* c[m x n] (+)= op(a) op(b); a is stored m x k (or k x m when ta), b k x n (or n x k). */
static void ref_mm(double *c, const double *a, const double *b, size_t m, size_t n, size_t k,
                   int ta, int tb, int acc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++)
                s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = (acc ? c[i * n + j] : 0) + s;
        }
}

/* The program, sizes chosen so each matmul takes another path (lib/ops/matmul.c):
 *   y  = |x|                          device (map)               x: M x K
 *   h  = y w1                         host, row panels           M x N
 *   h2 = square(h)                    device
 *   o  = h2[rows 8..8+R) w2^T         host, a row view, TRANS_B  R x P
 *   s  = a^T o                        host, split-K (k = R large, m = 16)
 *   s += small                        device (own kernel), accumulate: 16 x 8 x 8
 *   bt = xb . wb (batch 3, wb broadcast) host, batched        3 x 40 x 36
 *   u  = -zu                          device
 *   z  = u zv                         host, split-K (m = 16, k = 33000), summed on the device
 */
enum {
    M = 700,
    K = 96,
    N = 600,
    R = 600,
    P = 72,
    Q = 16,
    BB = 3,
    BM = 40,
    BK = 50,
    BN = 36,
    ZK = 33000,
    ZN = 64
};

typedef struct prog {
    float *x, *w1, *w2, *a, *sa, *sb, *xb, *wb, *zu, *zv;
} prog;

static void prog_init(prog *p)
{
    size_t sizes[10] = {M * K, K * N,        P * N,   R * Q,  Q * 8,
                        8 * P, BB * BM * BK, BK * BN, Q * ZK, ZK * ZN};
    float **dst[10] = {&p->x,  &p->w1, &p->w2, &p->a,  &p->sa,
                       &p->sb, &p->xb, &p->wb, &p->zu, &p->zv};
    for (int i = 0; i < 10; i++) {
        *dst[i] = malloc(sizes[i] * sizeof(float));
        tu_fill_random(*dst[i], sizes[i], 1234 + (uint64_t)i * 77, -1, 1);
    }
}

static void prog_free(prog *p)
{
    free(p->x), free(p->w1), free(p->w2), free(p->a), free(p->sa), free(p->sb), free(p->xb),
        free(p->wb), free(p->zu), free(p->zv);
}

static double *dup(const float *f, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

/* The reference: s (Q x P), bt (BB x BM x BN) and z (Q x ZN). */
/* smag: the same s over absolute values, the scale its rounding errors have (s's terms cancel,
 * so an error relative to |s| itself would say nothing). */
static void prog_ref(const prog *p, double *s, double *smag, double *bt, double *z)
{
    double *x = dup(p->x, M * K), *w1 = dup(p->w1, K * N), *w2 = dup(p->w2, P * N);
    double *a = dup(p->a, R * Q), *sa = dup(p->sa, Q * 8), *sb = dup(p->sb, 8 * P);
    double *h = malloc(M * N * sizeof *h), *o = malloc(R * P * sizeof *o);
    for (size_t i = 0; i < M * K; i++)
        x[i] = fabs((double)(float)fabs(x[i]));
    ref_mm(h, x, w1, M, N, K, 0, 0, 0);
    for (size_t i = 0; i < M * N; i++) {
        float hf = (float)h[i];
        h[i] = (double)hf * hf;
    }
    ref_mm(o, h + 8 * N, w2, R, P, N, 0, 1, 0);
    ref_mm(s, a, o, Q, P, R, 1, 0, 0);
    ref_mm(s, sa, sb, Q, P, 8, 0, 0, 1);
    for (size_t i = 0; i < R * Q; i++)
        a[i] = fabs(a[i]);
    for (size_t i = 0; i < R * P; i++)
        o[i] = fabs(o[i]);
    for (size_t i = 0; i < Q * 8; i++)
        sa[i] = fabs(sa[i]);
    for (size_t i = 0; i < 8 * P; i++)
        sb[i] = fabs(sb[i]);
    ref_mm(smag, a, o, Q, P, R, 1, 0, 0);
    ref_mm(smag, sa, sb, Q, P, 8, 0, 0, 1);
    double *xb = dup(p->xb, BB * BM * BK), *wb = dup(p->wb, BK * BN);
    for (int b = 0; b < BB; b++)
        ref_mm(bt + (size_t)b * BM * BN, xb + (size_t)b * BM * BK, wb, BM, BN, BK, 0, 0, 0);
    double *zu = dup(p->zu, Q * ZK), *zv = dup(p->zv, ZK * ZN);
    for (size_t i = 0; i < Q * ZK; i++)
        zu[i] = -zu[i];
    ref_mm(z, zu, zv, Q, ZN, ZK, 0, 0, 0);
    free(x), free(w1), free(w2), free(a), free(sa), free(sb), free(h), free(o), free(xb), free(wb);
    free(zu), free(zv);
}

/* max |got - want| / (1 + mag) */
static double scaled_err(const float *got, const double *want, const double *mag, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (1 + mag[i]);
        e = d > e ? d : e;
    }
    return e;
}

static okto_tensor *t3(okto_context *cx, size_t d0, size_t d1, size_t d2, const float *data)
{
    okto_tensor *t;
    TU_OK(okto_tensor_create(cx, OKTO_F32, 3, (size_t[]){d0, d1, d2}, &t));
    if (data)
        TU_OK(okto_tensor_write(t, data));
    return t;
}

/* Runs the program on cx under sched (twice: a replay) and returns s and bt read back. */
static void prog_run(okto_context *cx, okto_sched sched, const prog *p, float **s_out,
                     float **bt_out, float **z_out, int *ntasks)
{
    okto_tensor *zu = tu_tensor(cx, Q, ZK, p->zu), *zv = tu_tensor(cx, ZK, ZN, p->zv);
    okto_tensor *u = tu_tensor(cx, Q, ZK, NULL), *z = tu_tensor(cx, Q, ZN, NULL);
    okto_tensor *x = tu_tensor(cx, M, K, p->x), *w1 = tu_tensor(cx, K, N, p->w1);
    okto_tensor *w2 = tu_tensor(cx, P, N, p->w2), *a = tu_tensor(cx, R, Q, p->a);
    okto_tensor *sa = tu_tensor(cx, Q, 8, p->sa), *sb = tu_tensor(cx, 8, P, p->sb);
    okto_tensor *y = tu_tensor(cx, M, K, NULL), *h = tu_tensor(cx, M, N, NULL);
    okto_tensor *o = tu_tensor(cx, R, P, NULL), *s = tu_tensor(cx, Q, P, NULL);
    okto_tensor *xb = t3(cx, BB, BM, BK, p->xb), *wb = t3(cx, 1, BK, BN, p->wb);
    okto_tensor *bt = t3(cx, BB, BM, BN, NULL), *hv;
    TU_OK(okto_tensor_view(h, 8, R, &hv));
    okto_graph *g;
    TU_OK(okto_graph_create(cx, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    TU_OK(okto_map(g, y, x, OKTO_MAP_ABS));
    TU_OK(okto_matmul(g, h, y, w1, 0));
    TU_OK(okto_map(g, h, h, OKTO_MAP_SQUARE));
    TU_OK(okto_matmul(g, o, hv, w2, OKTO_TRANS_B));
    TU_OK(okto_matmul(g, s, a, o, OKTO_TRANS_A));
    TU_OK(okto_matmul(g, s, sa, sb, OKTO_ACCUMULATE));
    TU_OK(okto_matmul(g, bt, xb, wb, 0));
    TU_OK(okto_map(g, u, zu, OKTO_MAP_NEG));
    TU_OK(okto_matmul(g, z, u, zv, 0));
    *ntasks = okto_graph_task_count(g);
    for (int rep = 0; rep < 2; rep++)
        TU_OK(okto_graph_run(g));
    *s_out = tu_read(s);
    *bt_out = malloc(BB * BM * BN * sizeof(float));
    TU_OK(okto_tensor_read(bt, *bt_out));
    *z_out = tu_read(z);
    okto_graph_destroy(g);
    okto_tensor *all[] = {hv, x, w1, w2, a, sa, sb, y, h, o, s, xb, wb, bt, zu, zv, u, z};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

static void test_context_says(void **state)
{
    (void)state;
    assert_int_equal(okto_context_host_lane(off), 0);
    /* a host lane exactly where the build has CBLAS and the device is PoCL's CPU */
    cl_device_id dev = okto_context_device(on);
    cl_device_type type = 0;
    cl_platform_id plat = NULL;
    char pname[128] = "";
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
    int want = okto_host_blas() && (type & CL_DEVICE_TYPE_CPU) &&
               strstr(pname, "Portable Computing Language");
    if (want)
        assert_true(okto_context_host_lane(on) >= 1);
    else
        assert_int_equal(okto_context_host_lane(on), 0);
    assert_int_equal(okto_context_host_lane(NULL), 0);
}

static void test_mixed_graph(void **state)
{
    (void)state;
    prog p;
    prog_init(&p);
    double *ws = malloc(Q * P * sizeof *ws), *wbt = malloc(BB * BM * BN * sizeof *wbt);
    double *wz = malloc(Q * ZN * sizeof *wz), *mag = malloc(Q * P * sizeof *mag);
    prog_ref(&p, ws, mag, wbt, wz);
    /* s's error relative to its magnitude: three chained sums and a square */
    double tol = 2 * tol_for(K) + tol_for(N) + tol_for(R);
    float *s_off, *bt_off, *z_off;
    int n_off, n_on;
    prog_run(off, OKTO_SCHED_HEFT, &p, &s_off, &bt_off, &z_off, &n_off);
    if (scaled_err(s_off, ws, mag, Q * P) >= tol)
        fail_msg("device path vs reference %.3g (bound %.3g)", scaled_err(s_off, ws, mag, Q * P),
                 tol);
    okto_sched pols[3] = {OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_ROUND_ROBIN, OKTO_SCHED_HEFT};
    for (int i = 0; i < 3; i++) {
        float *s, *bt, *z;
        prog_run(on, pols[i], &p, &s, &bt, &z, &n_on);
        assert_int_equal(n_on, n_off); /* the same tasks: only where they run differs */
        double es = scaled_err(s, ws, mag, Q * P), eb = tu_max_rel_err(bt, wbt, BB * BM * BN);
        double ez = tu_max_rel_err(z, wz, Q * ZN);
        if (ez >= tol_for(ZK))
            fail_msg("%s: split-K on the host lane vs reference %.3g (bound %.3g)",
                     okto_sched_name(pols[i]), ez, tol_for(ZK));
        free(z);
        double *so = dup(s_off, Q * P);
        double ed = scaled_err(s, so, mag, Q * P);
        if (es >= tol || eb >= tol_for(BK) || ed >= 2 * tol)
            fail_msg("%s: host lane vs reference %.3g (bound %.3g), batched %.3g (bound %.3g), "
                     "against the device path %.3g",
                     okto_sched_name(pols[i]), es, tol, eb, tol_for(BK), ed);
        free(so), free(s), free(bt);
    }
    free(s_off), free(bt_off), free(z_off), free(ws), free(wbt), free(wz), free(mag);
    prog_free(&p);
}

int main(void)
{
    /* the host lane on whatever OKTO_HOST_LANE says (this test is about it), and a context
     * without it */
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.host_lane = 1;
    if (okto_context_create(&cfg, &on) != OKTO_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", okto_last_error(NULL));
        okto_context_destroy(tu_context()); /* exits 77 when there is no device */
        fprintf(stderr, "okto_context_create: %s\n", why);
        return 1;
    }
    cfg.host_lane = 0;
    okto_status s = okto_context_create(&cfg, &off);
    if (s != OKTO_OK) {
        okto_context_destroy(on);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_says),
        cmocka_unit_test(test_mixed_graph),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    okto_context_destroy(on);
    okto_context_destroy(off);
    return rc;
}
