/* tools/okto-bench.c: do the lanes pay off? Each workload is recorded as one okto graph per
 * policy (sequential, the default heft, round-robin) on the same tensors; the graphs run
 * interleaved (A B C A B C ...) after a warm-up, so drift on a shared machine hits all alike.
 * Per workload: median and min-max time of each policy, speedup = sequential / default, the
 * utilization okto_graph_report measured, whether the policies' results agree (a disagreement
 * is an error), and where a user would otherwise write it by hand, that baseline in the same
 * run: plain CLBlast calls on one in-order queue, OpenBLAS sgemm on the host. */
#include <okto/okto.h>
#include "engine.h" /* the coordinator's own cost is measured against raw OpenCL */

#include <clblast_c.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef OKTO_HAVE_OPENBLAS
#include <cblas.h>
#endif

enum { SEQ, DEF, RR, NPOL };
static const okto_sched policy[NPOL] = {OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_HEFT,
                                        OKTO_SCHED_ROUND_ROBIN};
static const char *policy_name[NPOL] = {"sequential", "heft", "round-robin"};

typedef struct opts {
    int quick, json, reps, warmup;
    size_t big_n; /* big-gemm's n; 0: 2048 (1024 with --quick) */
    const char *only, *trace_dir;
} opts;

/* A workload: make tensors, record the same ops into each policy's graph, read the output. */
typedef struct bench bench;
struct bench {
    const char *name;
    const char *what;
    okto_status (*setup)(bench *b);
    okto_status (*record)(bench *b, okto_graph *g);
    okto_status (*baseline)(bench *b, const char **name, double *ms); /* optional */
    okto_status (*baseline2)(bench *b, const char **name, double *ms); /* optional */
    okto_context *ctx;
    const opts *o;
    okto_tensor *t[64];
    int nt;
    okto_tensor *out;                 /* compared across policies */
    float *host[4];
    size_t n;                         /* a size knob */
    double gflop;                     /* work per run, for GFLOP/s (0: not reported) */
    /* the host lane (lib/lane_host.c): the default policy's graph, for baselines that
     * interleave their runs with it, and what they measured that way */
    okto_graph *def;
    double ratio;                     /* big-gemm: okto / OpenBLAS, interleaved pairs */
    double host_speedup;              /* mlp-step: without / with the host lane, interleaved */
};

static double now_ms(void) { return okto__now_ms(); }

/* Host CPU time of the whole process (all threads: okto's lanes and PoCL's workers alike). On a
 * CPU device this is the device's work too, so cpu / wall says how many cores a run kept busy,
 * which is what bounds any speedup here. */
static double cpu_ms(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-3;
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        okto_status s_ = (x);                                                                  \
        if (s_ != OKTO_OK)                                                                     \
            return s_;                                                                         \
    } while (0)

static okto_status tensor(bench *b, size_t r, size_t c, float lo, float hi, okto_tensor **out)
{
    TRY(okto_tensor_create_2d(b->ctx, r, c, out));
    float *h = malloc(r * c * sizeof *h);
    if (!h)
        return OKTO_ENOMEM;
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)b->nt * 7919u;
    for (size_t i = 0; i < r * c; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        h[i] = lo + (hi - lo) * (float)((s * 2685821657736338717ull) >> 40) / 16777216.0f;
    }
    okto_status st = okto_tensor_write(*out, h);
    free(h);
    b->t[b->nt++] = *out;
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- workloads ------------------------------------------------------------------------- */

/* tiny-ops / small-gemm: n independent s x s x s matmuls */
static size_t gemm_size(const bench *b) { return strcmp(b->name, "tiny-ops") == 0 ? 8 : 64; }
static int gemm_count(const bench *b) { return strcmp(b->name, "tiny-ops") == 0 ? 1024 : 256; }

static okto_status setup_many(bench *b)
{
    size_t s = gemm_size(b);
    okto_tensor *t;
    /* one A, one B, and a C per product: the products are independent */
    TRY(tensor(b, s, s, -1, 1, &t));
    TRY(tensor(b, s, s, -1, 1, &t));
    TRY(tensor(b, (size_t)gemm_count(b) * s, s, 0, 0, &b->out));
    return OKTO_OK;
}

static okto_status record_many(bench *b, okto_graph *g)
{
    size_t s = gemm_size(b);
    for (int i = 0; i < gemm_count(b); i++) {
        okto_tensor *c;
        TRY(okto_tensor_view(b->out, (size_t)i * s, s, &c));
        okto_status st = okto_matmul(g, c, b->t[0], b->t[1], 0);
        okto_tensor_destroy(c);
        TRY(st);
    }
    return OKTO_OK;
}

/* The same products as plain CLBlast calls on one in-order queue. */
static okto_status clblast_calls(bench *b, int count, size_t m, size_t n, size_t k,
                                 okto_tensor *a, okto_tensor *bb, okto_tensor *c, double *ms)
{
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(okto_context_cl(b->ctx),
                                              okto_context_device(b->ctx), 0, &err);
    if (err != CL_SUCCESS)
        return OKTO_ECL;
    okto_status st = OKTO_OK;
    int reps = count == 1 && m >= 2048 ? 3 : 5; /* after a warm-up; the median is reported */
    double t[5];
    for (int rep = -1; rep < reps && st == OKTO_OK; rep++) {
        double t0 = now_ms();
        for (int i = 0; i < count; i++) {
            CLBlastStatusCode cs = CLBlastSgemm(
                CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1.0f,
                okto_tensor_cl_mem(a), 0, k, okto_tensor_cl_mem(bb), 0, n, 0.0f,
                okto_tensor_cl_mem(c), (size_t)i * m * n, n, &q, NULL);
            if (cs != CLBlastSuccess) {
                st = OKTO_ECL;
                break;
            }
        }
        clFinish(q);
        if (rep >= 0)
            t[rep] = now_ms() - t0;
    }
    if (st == OKTO_OK)
        *ms = median(t, reps);
    clReleaseCommandQueue(q);
    return st;
}

static okto_status baseline_many(bench *b, const char **name, double *ms)
{
    size_t s = gemm_size(b);
    *name = "clblast_ms";
    return clblast_calls(b, gemm_count(b), s, s, s, b->t[0], b->t[1], b->out, ms);
}

/* dag-chains: 4 independent chains of 16 elementwise ops on 1M floats each, joined */
static okto_status setup_chains(bench *b)
{
    okto_tensor *t;
    for (int i = 0; i < 4; i++)
        TRY(tensor(b, 1024, b->o->quick ? 256 : 1024, -1, 1, &t));
    TRY(tensor(b, 1024, b->o->quick ? 256 : 1024, 0, 0, &b->out));
    return OKTO_OK;
}

static okto_status record_chains(bench *b, okto_graph *g)
{
    for (int step = 0; step < 16; step++)
        for (int c = 0; c < 4; c++) {
            if (step % 2 == 0)
                TRY(okto_scale(g, b->t[c], step % 4 == 0 ? 0.5f : 2.0f));
            else
                TRY(okto_map(g, b->t[c], b->t[c], step % 4 == 1 ? OKTO_MAP_TANH : OKTO_MAP_ABS));
        }
    TRY(okto_copy(g, b->out, b->t[0]));
    for (int c = 1; c < 4; c++)
        TRY(okto_axpy(g, b->out, 1.0f, b->t[c]));
    return OKTO_OK;
}

/* copy-overlap: a 64 MB upload overlapped with compute on other data */
static okto_status setup_copy(bench *b)
{
    size_t rows = b->o->quick ? 1024 : 4096; /* x 4096 floats: 16 or 64 MB */
    okto_tensor *t;
    TRY(tensor(b, rows, 4096, 0, 0, &t));        /* upload target */
    /* compute about as long as the upload (a 64 MB write is ~3.5 ms here): overlap can at best
     * hide the shorter of the two */
    size_t n = b->o->quick ? 256 : 384;
    TRY(tensor(b, n, n, -1, 1, &t));
    TRY(tensor(b, n, n, -1, 1, &t));
    TRY(tensor(b, n, n, 0, 0, &b->out));
    b->n = rows * 4096;
    b->host[0] = malloc(b->n * sizeof(float));
    if (!b->host[0])
        return OKTO_ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        b->host[0][i] = (float)(i % 1000);
    return OKTO_OK;
}

static okto_status record_copy(bench *b, okto_graph *g)
{
    TRY(okto_upload(g, b->t[0], b->host[0]));
    TRY(okto_matmul(g, b->out, b->t[1], b->t[2], 0));
    TRY(okto_map(g, b->out, b->out, OKTO_MAP_TANH));
    return OKTO_OK;
}

/* big-gemm: one 2048-cubed matmul (--big-n sets another n, e.g. 8192 on a GPU) */
static okto_status setup_big(bench *b)
{
    if (!b->n) /* gemm-sweep sets its own size */
        b->n = b->o->big_n ? b->o->big_n : b->o->quick ? 1024 : 2048;
    okto_tensor *t;
    TRY(tensor(b, b->n, b->n, -1, 1, &t));
    TRY(tensor(b, b->n, b->n, -1, 1, &t));
    TRY(tensor(b, b->n, b->n, 0, 0, &b->out));
    return OKTO_OK;
}

static okto_status record_big(bench *b, okto_graph *g)
{
    return okto_matmul(g, b->out, b->t[0], b->t[1], 0);
}

static okto_status baseline_big(bench *b, const char **name, double *ms)
{
    *name = "clblast_ms";
    return clblast_calls(b, 1, b->n, b->n, b->n, b->t[0], b->t[1], b->out, ms);
}

static okto_status baseline_openblas(bench *b, const char **name, double *ms)
{
#ifdef OKTO_HAVE_OPENBLAS
    size_t n = b->n;
    /* OpenBLAS at its best here: every core (the host lane sets its own count per call) */
    int threads0 = openblas_get_num_threads();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(cores > 0 ? (int)cores : 1);
    float *a = malloc(n * n * sizeof *a), *bb = malloc(n * n * sizeof *bb),
          *c = malloc(n * n * sizeof *c);
    if (!a || !bb || !c) {
        free(a), free(bb), free(c);
        return OKTO_ENOMEM;
    }
    okto_tensor_read(b->t[0], a);
    okto_tensor_read(b->t[1], bb);
    *name = "openblas_ms";
    /* interleaved with okto's default graph (when there is one): okto, OpenBLAS, okto, ... */
    double t[5], to[5];
    okto_status s = OKTO_OK;
    for (int rep = -1; rep < 5 && s == OKTO_OK; rep++) {
        double t0 = now_ms();
        if (b->def)
            s = okto_graph_run(b->def);
        double t1 = now_ms();
        openblas_set_num_threads(cores > 0 ? (int)cores : 1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a,
                    (int)n, bb, (int)n, 0.0f, c, (int)n);
        if (rep >= 0)
            t[rep] = now_ms() - t1, to[rep] = t1 - t0;
    }
    *ms = median(t, 5);
    b->ratio = b->def && s == OKTO_OK ? median(to, 5) / *ms : 0;
    openblas_set_num_threads(threads0);
    free(a), free(bb), free(c);
    if (s != OKTO_OK)
        return s;
    return OKTO_OK;
#else
    (void)b, (void)name, (void)ms;
    return OKTO_ENOTSUP;
#endif
}

/* reduce: sum of 64M floats */
static okto_status setup_reduce(bench *b)
{
    okto_tensor *t;
    TRY(tensor(b, b->o->quick ? 2048 : 16384, 4096, 0, 1, &t));
    TRY(tensor(b, 1, 1, 0, 0, &b->out));
    return OKTO_OK;
}

static okto_status record_reduce(bench *b, okto_graph *g)
{
    return okto_reduce_all(g, b->out, b->t[0], OKTO_REDUCE_SUM);
}

/* mlp-step: forward, loss, backward and SGD update of a 3-layer MLP, batch 512, width 1024,
 * the batch split into micro-batches so their forward and backward passes overlap. */
#define MLP_LAYERS 3
typedef struct mlp {
    size_t batch, width, in, classes;
    int micro;
    okto_tensor *x, *labels, *w[MLP_LAYERS], *bias[MLP_LAYERS], *dw[MLP_LAYERS],
        *db[MLP_LAYERS], *z[MLP_LAYERS], *h[MLP_LAYERS], *dz[MLP_LAYERS], *dh[MLP_LAYERS],
        *loss, *dbpart[MLP_LAYERS];
} mlp;

static okto_status setup_mlp(bench *b)
{
    mlp *m = calloc(1, sizeof *m);
    if (!m)
        return OKTO_ENOMEM;
    b->host[0] = (float *)m;
    m->batch = 512;
    m->width = b->o->quick ? 256 : 1024;
    m->in = m->width;
    m->classes = 16;
    m->micro = 4;
    okto_tensor *t;
    TRY(tensor(b, m->batch, m->in, -1, 1, &m->x));
    TRY(okto_tensor_create(b->ctx, OKTO_I32, 2, (size_t[]){m->batch, 1}, &m->labels));
    b->t[b->nt++] = m->labels;
    int32_t *lab = malloc(m->batch * sizeof *lab);
    for (size_t i = 0; i < m->batch; i++)
        lab[i] = (int32_t)(i * 7 % m->classes);
    okto_tensor_write(m->labels, lab);
    free(lab);
    for (int l = 0; l < MLP_LAYERS; l++) {
        size_t fan_in = l == 0 ? m->in : m->width;
        size_t fan_out = l == MLP_LAYERS - 1 ? m->classes : m->width;
        float r = 1.0f / sqrtf((float)fan_in);
        TRY(tensor(b, fan_in, fan_out, -r, r, &m->w[l]));
        TRY(tensor(b, 1, fan_out, 0, 0, &m->bias[l]));
        TRY(tensor(b, fan_in, fan_out, 0, 0, &m->dw[l]));
        TRY(tensor(b, 1, fan_out, 0, 0, &m->db[l]));
        TRY(tensor(b, 1, fan_out, 0, 0, &m->dbpart[l]));
        TRY(tensor(b, m->batch, fan_out, 0, 0, &m->z[l]));
        TRY(tensor(b, m->batch, fan_out, 0, 0, &m->h[l]));
        TRY(tensor(b, m->batch, fan_out, 0, 0, &m->dz[l]));
        TRY(tensor(b, m->batch, fan_in, 0, 0, &m->dh[l]));
    }
    TRY(tensor(b, 1, 1, 0, 0, &m->loss));
    b->out = m->w[0];
    (void)t;
    return OKTO_OK;
}

#define V(tensor_, r0_, n_, out_) TRY(okto_tensor_view((tensor_), (r0_), (n_), (out_)))
static okto_status record_mlp(bench *b, okto_graph *g);

/* mlp-step without the host lane: the same step on a second context with config.host_lane = 0,
 * its runs interleaved with the default graph's; host_speedup = without / with. Skipped (not
 * an error) where the context has no host lane. */
static okto_status baseline_mlp_no_host(bench *b, const char **name, double *ms)
{
    if (!b->def || okto_context_host_lane(b->ctx) == 0)
        return OKTO_ENOTSUP;
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.host_lane = 0;
    bench o = {.name = b->name, .o = b->o};
    okto_graph *g = NULL;
    okto_status s = okto_context_create(&cfg, &o.ctx);
    if (s == OKTO_OK)
        s = setup_mlp(&o);
    if (s == OKTO_OK && (s = okto_graph_create(o.ctx, &g)) == OKTO_OK)
        s = record_mlp(&o, g);
    int reps = b->o->reps < 3 ? 3 : b->o->reps;
    double *ton = calloc((size_t)reps, sizeof *ton), *toff = calloc((size_t)reps, sizeof *toff);
    if (!ton || !toff)
        s = OKTO_ENOMEM;
    for (int w = 0; w < b->o->warmup && s == OKTO_OK; w++)
        s = okto_graph_run(g);
    for (int i = 0; i < reps && s == OKTO_OK; i++) {
        double t0 = now_ms();
        s = okto_graph_run(b->def);
        double t1 = now_ms();
        if (s == OKTO_OK)
            s = okto_graph_run(g);
        toff[i] = now_ms() - t1, ton[i] = t1 - t0;
    }
    if (s == OKTO_OK) {
        *name = "no_host_lane_ms";
        *ms = median(toff, reps);
        b->host_speedup = *ms / median(ton, reps);
    }
    free(ton), free(toff);
    okto_graph_destroy(g);
    for (int i = 0; i < o.nt; i++)
        okto_tensor_destroy(o.t[i]);
    for (int i = 0; i < 4; i++)
        free(o.host[i]);
    okto_context_destroy(o.ctx);
    return s;
}

static okto_status record_mlp(bench *b, okto_graph *g)
{
    mlp *m = (mlp *)b->host[0];
    size_t mb = m->batch / (size_t)m->micro;
    for (int l = 0; l < MLP_LAYERS; l++) {
        TRY(okto_fill(g, m->dw[l], 0.0f));
        TRY(okto_fill(g, m->db[l], 0.0f));
    }
    okto_tensor *views[64];
    int nv = 0;
    okto_status st = OKTO_OK;
    for (int u = 0; u < m->micro && st == OKTO_OK; u++) {
        size_t r0 = (size_t)u * mb;
        okto_tensor *x, *lab, *z[MLP_LAYERS], *h[MLP_LAYERS], *dz[MLP_LAYERS], *dh[MLP_LAYERS];
        V(m->x, r0, mb, &x);
        V(m->labels, r0, mb, &lab);
        views[nv++] = x, views[nv++] = lab;
        for (int l = 0; l < MLP_LAYERS; l++) {
            V(m->z[l], r0, mb, &z[l]);
            V(m->h[l], r0, mb, &h[l]);
            V(m->dz[l], r0, mb, &dz[l]);
            V(m->dh[l], r0, mb, &dh[l]);
            views[nv++] = z[l], views[nv++] = h[l], views[nv++] = dz[l], views[nv++] = dh[l];
        }
        /* forward */
        for (int l = 0; l < MLP_LAYERS && st == OKTO_OK; l++) {
            okto_tensor *in = l == 0 ? x : h[l - 1];
            if ((st = okto_matmul(g, z[l], in, m->w[l], 0)) == OKTO_OK)
                st = okto_zip(g, z[l], z[l], m->bias[l], OKTO_ZIP_ADD);
            if (st == OKTO_OK && l < MLP_LAYERS - 1)
                st = okto_map(g, h[l], z[l], OKTO_MAP_RELU);
        }
        /* loss and its gradient for this micro-batch, scaled to the full batch's mean */
        if (st == OKTO_OK)
            st = okto_softmax_xent(g, u == 0 ? m->loss : NULL, dz[MLP_LAYERS - 1],
                                   z[MLP_LAYERS - 1], lab);
        if (st == OKTO_OK)
            st = okto_scale(g, dz[MLP_LAYERS - 1], 1.0f / (float)m->micro);
        /* backward, gradients accumulated across micro-batches */
        for (int l = MLP_LAYERS - 1; l >= 0 && st == OKTO_OK; l--) {
            okto_tensor *in = l == 0 ? x : h[l - 1];
            st = okto_matmul(g, m->dw[l], in, dz[l], OKTO_TRANS_A | OKTO_ACCUMULATE);
            if (st == OKTO_OK)
                st = okto_reduce(g, m->dbpart[l], dz[l], OKTO_REDUCE_SUM, 0);
            if (st == OKTO_OK)
                st = okto_axpy(g, m->db[l], 1.0f, m->dbpart[l]);
            if (st == OKTO_OK && l > 0) {
                st = okto_matmul(g, dh[l], dz[l], m->w[l], OKTO_TRANS_B);
                if (st == OKTO_OK)
                    st = okto_zip(g, dz[l - 1], dh[l], z[l - 1], OKTO_ZIP_RELU_GRAD);
            }
        }
    }
    for (int l = 0; l < MLP_LAYERS && st == OKTO_OK; l++) {
        st = okto_axpy(g, m->w[l], -0.01f, m->dw[l]);
        if (st == OKTO_OK)
            st = okto_axpy(g, m->bias[l], -0.01f, m->db[l]);
    }
    for (int i = 0; i < nv; i++)
        okto_tensor_destroy(views[i]);
    return st;
}

/* ---- ops2: attention and conv, fused ops against the same work composed from older ops ---- */

/* A random f32 tensor of any rank, kept in b->t (snapshotted, destroyed with the workload). */
static okto_status tensor_nd(bench *b, int rank, const size_t *shape, float lo, float hi,
                             okto_tensor **out)
{
    TRY(okto_tensor_create(b->ctx, OKTO_F32, rank, shape, out));
    b->t[b->nt++] = *out;
    size_t n = okto_tensor_numel(*out);
    float *h = malloc(n * sizeof *h);
    if (!h)
        return OKTO_ENOMEM;
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)b->nt * 7919u;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        h[i] = lo + (hi - lo) * (float)((s * 2685821657736338717ull) >> 40) / 16777216.0f;
    }
    okto_status st = okto_tensor_write(*out, h);
    free(h);
    return st;
}

/* What a composed baseline allocates: tensors and views, destroyed together, newest first. */
typedef struct pool {
    okto_tensor *t[512];
    int n;
    okto_status err; /* the first failure: later calls return NULL views, the graph refuses them */
} pool;

static okto_tensor *keep(pool *p, okto_status s, okto_tensor *t)
{
    if (s != OKTO_OK && p->err == OKTO_OK)
        p->err = s;
    if (s == OKTO_OK && p->n < 512)
        p->t[p->n++] = t;
    return s == OKTO_OK ? t : NULL;
}

static okto_tensor *p_new(pool *p, okto_context *ctx, int rank, const size_t *shape)
{
    okto_tensor *t = NULL;
    okto_status s = okto_tensor_create(ctx, OKTO_F32, rank, shape, &t);
    return keep(p, s, t);
}
static okto_tensor *p_slice(pool *p, const okto_tensor *x, int dim, size_t at, size_t len)
{
    okto_tensor *t = NULL;
    okto_status s = x ? okto_tensor_slice(x, dim, at, len, &t) : OKTO_EINVAL;
    return keep(p, s, t);
}
static okto_tensor *p_perm(pool *p, const okto_tensor *x, int a, int b_, int c, int d)
{
    okto_tensor *t = NULL;
    const int perm[4] = {a, b_, c, d};
    okto_status s = x ? okto_tensor_permute(x, perm, &t) : OKTO_EINVAL;
    return keep(p, s, t);
}
static okto_tensor *p_reshape(pool *p, const okto_tensor *x, int rank, const size_t *shape)
{
    okto_tensor *t = NULL;
    okto_status s = x ? okto_tensor_reshape(x, rank, shape, &t) : OKTO_EINVAL;
    return keep(p, s, t);
}
static void pool_free(pool *p)
{
    while (p->n > 0)
        okto_tensor_destroy(p->t[--p->n]);
}

/* A recorded baseline graph: two warm-up runs, then the median of the workload's reps. */
static okto_status time_graph(bench *b, okto_graph *g, double *ms)
{
    int reps = b->o->reps;
    double *t = calloc((size_t)reps, sizeof *t);
    if (!t)
        return OKTO_ENOMEM;
    okto_status s = OKTO_OK;
    for (int i = -2; i < reps && s == OKTO_OK; i++) {
        double t0 = now_ms();
        s = okto_graph_run(g);
        if (i >= 0)
            t[i] = now_ms() - t0;
    }
    if (s == OKTO_OK)
        *ms = median(t, reps);
    free(t);
    return s;
}

/* Largest |a - b| / max(1, |b|) between two f32 tensors of one shape. */
static double max_rel_diff(const okto_tensor *a, const okto_tensor *b)
{
    size_t n = okto_tensor_numel(a);
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double d = INFINITY;
    if (x && y && okto_tensor_read(a, x) == OKTO_OK && okto_tensor_read(b, y) == OKTO_OK) {
        d = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)x[i] - y[i]) / fmax(1.0, fabs((double)y[i]));
            if (!(e <= d))
                d = isnan(e) ? INFINITY : e;
        }
    }
    free(x), free(y);
    return d;
}

/* attention: B 8, H 4, T 256, D 64 (quick: B 2, T 128), non-causal, forward + backward with
 * okto_attention; the baseline is the textbook composition: S = scale q k^T and P = softmax(S)
 * stored in full ([B, H, T, T]), o = P v, and the backward dv = P^T dout, dP = dout v^T,
 * dS = P (dP - rowsum(P dP)) (zip, reduce, zip, zip), dq = scale dS k, dk = scale dS^T q, the
 * products as batched matmuls. GFLOP/s count the useful flops, 14 B H T^2 D (the fused kernels
 * also recompute the scores in the backward). */
typedef struct attn_w {
    size_t B, H, T, D;
    okto_tensor *q, *k, *v, *dout, *o, *lse, *dq, *dk, *dv;
} attn_w;

static okto_status setup_attention(bench *b)
{
    attn_w *a = calloc(1, sizeof *a);
    if (!a)
        return OKTO_ENOMEM;
    b->host[0] = (float *)a;
    *a = (attn_w){.B = b->o->quick ? 2 : 8, .H = 4, .T = b->o->quick ? 128 : 256, .D = 64};
    size_t qs[4] = {a->B, a->H, a->T, a->D}, ls[3] = {a->B, a->H, a->T};
    TRY(tensor_nd(b, 4, qs, -1.5f, 1.5f, &a->q));
    TRY(tensor_nd(b, 4, qs, -1.5f, 1.5f, &a->k));
    TRY(tensor_nd(b, 4, qs, -1, 1, &a->v));
    TRY(tensor_nd(b, 4, qs, -1, 1, &a->dout));
    TRY(tensor_nd(b, 4, qs, 0, 0, &a->o));
    TRY(tensor_nd(b, 3, ls, 0, 0, &a->lse));
    TRY(tensor_nd(b, 4, qs, 0, 0, &a->dq));
    TRY(tensor_nd(b, 4, qs, 0, 0, &a->dk));
    TRY(tensor_nd(b, 4, qs, 0, 0, &a->dv));
    b->out = a->dq;
    b->gflop = 14.0 * (double)(a->B * a->H) * (double)(a->T * a->T) * (double)a->D * 1e-9;
    return OKTO_OK;
}

static okto_status record_attention(bench *b, okto_graph *g)
{
    attn_w *a = (attn_w *)b->host[0];
    TRY(okto_attention(g, a->o, a->lse, a->q, a->k, a->v, 0.0f, 0));
    return okto_attention_backward(g, a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->o, a->lse,
                                   0.0f, 0, 0);
}

static okto_status baseline_attention(bench *b, const char **name, double *ms)
{
    attn_w *a = (attn_w *)b->host[0];
    *name = "composed_ms";
    pool p = {0};
    float scale = 1.0f / sqrtf((float)a->D);
    size_t ss[4] = {a->B, a->H, a->T, a->T}, qs[4] = {a->B, a->H, a->T, a->D};
    size_t rs_[4] = {a->B, a->H, a->T, 1};
    okto_tensor *S = p_new(&p, b->ctx, 4, ss), *P = p_new(&p, b->ctx, 4, ss);
    okto_tensor *T1 = p_new(&p, b->ctx, 4, ss), *rs = p_new(&p, b->ctx, 4, rs_);
    okto_tensor *o = p_new(&p, b->ctx, 4, qs), *dq = p_new(&p, b->ctx, 4, qs);
    okto_tensor *dk = p_new(&p, b->ctx, 4, qs), *dv = p_new(&p, b->ctx, 4, qs);
    okto_graph *g = NULL;
    okto_status s = p.err;
    if (s == OKTO_OK)
        s = okto_graph_create(b->ctx, &g);
    if (s == OKTO_OK) {
        okto_gemm(g, S, scale, a->q, a->k, 0.0f, OKTO_TRANS_B);
        okto_softmax(g, P, S);
        okto_matmul(g, o, P, a->v, 0);
        okto_matmul(g, dv, P, a->dout, OKTO_TRANS_A);
        okto_matmul(g, S, a->dout, a->v, OKTO_TRANS_B); /* S now holds dP */
        okto_zip(g, T1, P, S, OKTO_ZIP_MUL);
        okto_reduce(g, rs, T1, OKTO_REDUCE_SUM, 3);
        okto_zip(g, S, S, rs, OKTO_ZIP_SUB);
        okto_zip(g, S, S, P, OKTO_ZIP_MUL); /* dS */
        okto_gemm(g, dq, scale, S, a->k, 0.0f, 0);
        okto_gemm(g, dk, scale, S, a->q, 0.0f, OKTO_TRANS_A);
        s = okto_graph_status(g, NULL);
    }
    if (s == OKTO_OK)
        s = time_graph(b, g, ms);
    /* the same work: the fused graph's last run left its outputs in a->o and a->dq */
    if (s == OKTO_OK) {
        double d = fmax(max_rel_diff(o, a->o), max_rel_diff(dq, a->dq));
        if (!(d <= 1e-4)) {
            fprintf(stderr, "okto-bench: attention: fused and composed differ by %g\n", d);
            s = OKTO_EINVAL;
        }
    }
    okto_graph_destroy(g);
    pool_free(&p);
    return s;
}

/* conv: three 3 x 3 convolutions (stride 1, pad 1, bias), 16 -> 32 -> 32 -> 32 channels on 32
 * x 32 images, batch 32 (quick: 8 -> 16 -> 16 -> 16 on 16 x 16, batch 8), forward and backward
 * (dx of the first layer not asked for) with okto_conv2d. The baseline is im2col + matmul
 * composed by hand from older ops per layer: the input copied into the interior of a
 * zero-bordered tensor, its 9 shifted windows copied (permuted to channels first) into
 * columns [9 C, N H W], the weights permuted to [Cout, 3, 3, C], one 2-D matmul, a permuting copy
 * back to NCHW and a broadcast bias add; backward: dy permuted to [Cout, N H W], dw = dy cols^T
 * permuted back, db = okto_reduce, dcols = w^T dy, and the 9 windows axpy'd into a zeroed padded
 * dx whose interior is copied out. GFLOP/s: 2 N Cout OH OW C 9 per product, three products per
 * layer (the first layer's dx omitted). */
typedef struct conv_w {
    size_t N, HW, ch[4];
    okto_tensor *x, *w[3], *bias[3], *y[3], *dy[3], *dw[3], *db[3];
} conv_w;

static okto_status setup_conv(bench *b)
{
    conv_w *c = calloc(1, sizeof *c);
    if (!c)
        return OKTO_ENOMEM;
    b->host[0] = (float *)c;
    int q = b->o->quick;
    c->N = q ? 8 : 32, c->HW = q ? 16 : 32;
    size_t base = q ? 8 : 16;
    c->ch[0] = base, c->ch[1] = c->ch[2] = c->ch[3] = 2 * base;
    size_t xs[4] = {c->N, c->ch[0], c->HW, c->HW};
    TRY(tensor_nd(b, 4, xs, -1, 1, &c->x));
    b->gflop = 0;
    for (int l = 0; l < 3; l++) {
        size_t ci = c->ch[l], co = c->ch[l + 1];
        size_t ws[4] = {co, ci, 3, 3}, ys[4] = {c->N, co, c->HW, c->HW};
        float r = 1.0f / sqrtf((float)(ci * 9));
        TRY(tensor_nd(b, 4, ws, -r, r, &c->w[l]));
        TRY(tensor_nd(b, 1, &co, -0.1f, 0.1f, &c->bias[l]));
        TRY(tensor_nd(b, 4, ys, 0, 0, &c->y[l]));
        /* dy[2] is the given gradient; dy[0], dy[1] are computed */
        TRY(tensor_nd(b, 4, ys, l == 2 ? -1.0f : 0.0f, l == 2 ? 1.0f : 0.0f, &c->dy[l]));
        TRY(tensor_nd(b, 4, ws, 0, 0, &c->dw[l]));
        TRY(tensor_nd(b, 1, &co, 0, 0, &c->db[l]));
        double prod = 2.0 * (double)(c->N * co * c->HW * c->HW) * (double)(ci * 9) * 1e-9;
        b->gflop += prod * (l == 0 ? 2 : 3);
    }
    b->out = c->dw[0];
    return OKTO_OK;
}

static okto_status record_conv(bench *b, okto_graph *g)
{
    conv_w *c = (conv_w *)b->host[0];
    for (int l = 0; l < 3; l++)
        TRY(okto_conv2d(g, c->y[l], l ? c->y[l - 1] : c->x, c->w[l], c->bias[l], 1, 1, 1, 1, 1,
                        1));
    for (int l = 2; l >= 0; l--)
        TRY(okto_conv2d_backward(g, l ? c->dy[l - 1] : NULL, c->dw[l], c->db[l], c->dy[l],
                                 l ? c->y[l - 1] : c->x, c->w[l], 1, 1, 1, 1, 1, 1, 0));
    return OKTO_OK;
}

/* One layer of the composed baseline. cols, wp, xpad (zero border) persist across the layer's
 * forward and backward. */
typedef struct comp_layer {
    size_t N, C, Co, H;
    okto_tensor *xpad, *cols, *wp, *yc, *dyc, *dwp, *dcols, *dxpad;
} comp_layer;

static void comp_forward(okto_graph *g, pool *p, comp_layer *L, okto_tensor *y,
                         const okto_tensor *x, const okto_tensor *w, const okto_tensor *bias)
{
    size_t N = L->N, C = L->C, Co = L->Co, H = L->H, NP = N * H * H;
    okto_copy(g, p_slice(p, p_slice(p, L->xpad, 2, 1, H), 3, 1, H), x);
    for (size_t kk = 0; kk < 9; kk++) {
        okto_tensor *win = p_slice(p, p_slice(p, L->xpad, 2, kk / 3, H), 3, kk % 3, H);
        okto_copy(g, p_slice(p, L->cols, 0, kk * C, C), p_perm(p, win, 1, 0, 2, 3));
    }
    okto_copy(g, L->wp, p_perm(p, w, 0, 2, 3, 1));
    okto_matmul(g, p_reshape(p, L->yc, 2, (size_t[]){Co, NP}),
                p_reshape(p, L->wp, 2, (size_t[]){Co, 9 * C}),
                p_reshape(p, L->cols, 2, (size_t[]){9 * C, NP}), 0);
    okto_copy(g, p_perm(p, y, 1, 0, 2, 3), L->yc);
    okto_zip(g, y, y, p_reshape(p, bias, 3, (size_t[]){Co, 1, 1}), OKTO_ZIP_ADD);
}

static void comp_backward(okto_graph *g, pool *p, comp_layer *L, okto_tensor *dx, okto_tensor *dw,
                          okto_tensor *db, const okto_tensor *dy)
{
    size_t N = L->N, C = L->C, Co = L->Co, H = L->H, NP = N * H * H;
    okto_copy(g, L->dyc, p_perm(p, dy, 1, 0, 2, 3));
    okto_tensor *dyc2 = p_reshape(p, L->dyc, 2, (size_t[]){Co, NP});
    okto_tensor *cols2 = p_reshape(p, L->cols, 2, (size_t[]){9 * C, NP});
    okto_matmul(g, p_reshape(p, L->dwp, 2, (size_t[]){Co, 9 * C}), dyc2, cols2, OKTO_TRANS_B);
    okto_copy(g, dw, p_perm(p, L->dwp, 0, 3, 1, 2));
    okto_reduce(g, db, dyc2, OKTO_REDUCE_SUM, 1);
    if (!dx)
        return;
    okto_matmul(g, p_reshape(p, L->dcols, 2, (size_t[]){9 * C, NP}),
                p_reshape(p, L->wp, 2, (size_t[]){Co, 9 * C}), dyc2, OKTO_TRANS_A);
    okto_fill(g, L->dxpad, 0.0f);
    for (size_t kk = 0; kk < 9; kk++) {
        okto_tensor *win = p_slice(p, p_slice(p, L->dxpad, 2, kk / 3, H), 3, kk % 3, H);
        okto_axpy(g, p_perm(p, win, 1, 0, 2, 3), 1.0f, p_slice(p, L->dcols, 0, kk * C, C));
    }
    okto_copy(g, dx, p_slice(p, p_slice(p, L->dxpad, 2, 1, H), 3, 1, H));
}

static okto_status baseline_conv(bench *b, const char **name, double *ms)
{
    conv_w *c = (conv_w *)b->host[0];
    *name = "composed_ms";
    pool p = {0};
    comp_layer L[3];
    okto_tensor *y[3], *dy[2], *dw[3], *db[3];
    size_t N = c->N, H = c->HW;
    for (int l = 0; l < 3; l++) {
        size_t C = c->ch[l], Co = c->ch[l + 1];
        L[l] = (comp_layer){.N = N, .C = C, .Co = Co, .H = H};
        L[l].xpad = p_new(&p, b->ctx, 4, (size_t[]){N, C, H + 2, H + 2});
        L[l].dxpad = p_new(&p, b->ctx, 4, (size_t[]){N, C, H + 2, H + 2});
        L[l].cols = p_new(&p, b->ctx, 4, (size_t[]){9 * C, N, H, H});
        L[l].dcols = p_new(&p, b->ctx, 4, (size_t[]){9 * C, N, H, H});
        L[l].wp = p_new(&p, b->ctx, 4, (size_t[]){Co, 3, 3, C});
        L[l].dwp = p_new(&p, b->ctx, 4, (size_t[]){Co, 3, 3, C});
        L[l].yc = p_new(&p, b->ctx, 4, (size_t[]){Co, N, H, H});
        L[l].dyc = p_new(&p, b->ctx, 4, (size_t[]){Co, N, H, H});
        y[l] = p_new(&p, b->ctx, 4, (size_t[]){N, Co, H, H});
        if (l < 2)
            dy[l] = p_new(&p, b->ctx, 4, (size_t[]){N, Co, H, H});
        dw[l] = p_new(&p, b->ctx, 4, (size_t[]){Co, C, 3, 3});
        db[l] = p_new(&p, b->ctx, 1, &Co);
    }
    okto_graph *g = NULL, *init = NULL;
    okto_status s = p.err;
    /* the padded inputs' zero borders, once (the graph only writes their interiors) */
    if (s == OKTO_OK && (s = okto_graph_create(b->ctx, &init)) == OKTO_OK) {
        for (int l = 0; l < 3; l++)
            okto_fill(init, L[l].xpad, 0.0f);
        s = okto_graph_run(init);
    }
    if (s == OKTO_OK)
        s = okto_graph_create(b->ctx, &g);
    if (s == OKTO_OK) {
        for (int l = 0; l < 3; l++)
            comp_forward(g, &p, &L[l], y[l], l ? y[l - 1] : c->x, c->w[l], c->bias[l]);
        for (int l = 2; l >= 0; l--)
            comp_backward(g, &p, &L[l], l ? dy[l - 1] : NULL, dw[l], db[l],
                          l == 2 ? c->dy[2] : dy[l]);
        s = p.err != OKTO_OK ? p.err : okto_graph_status(g, NULL);
    }
    if (s == OKTO_OK)
        s = time_graph(b, g, ms);
    if (s == OKTO_OK) {
        double d = fmax(max_rel_diff(y[2], c->y[2]), max_rel_diff(dw[0], c->dw[0]));
        if (!(d <= 1e-3)) {
            fprintf(stderr, "okto-bench: conv: fused and composed differ by %g\n", d);
            s = OKTO_EINVAL;
        }
    }
    okto_graph_destroy(g);
    okto_graph_destroy(init);
    pool_free(&p);
    return s;
}

/* ---- GEMM sweep: GFLOP/s at several sizes against the baselines ------------------------- */

static int gemm_sweep(okto_context *ctx, const opts *o)
{
    static const size_t sizes[] = {256, 1024, 2048};
    printf("matmul GFLOP/s, n x n x n (median of %d after a warm-up of %d):\n"
           "%6s %12s %12s %12s %12s  %s\n", o->reps, o->warmup, "n", "okto heft",
           "okto seq", "clblast 1x", "openblas", "okto heft panels");
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        bench b = {.name = "big-gemm", .ctx = ctx, .o = o, .n = n};
        okto_status s = setup_big(&b);
        okto_graph *g[2] = {0};
        double ms[2] = {0, 0}, *t[2] = {NULL, NULL};
        for (int p = 0; p < 2 && s == OKTO_OK; p++) {
            t[p] = calloc((size_t)o->reps, sizeof *t[p]);
            if ((s = okto_graph_create(ctx, &g[p])) == OKTO_OK &&
                (s = okto_graph_set_sched(g[p], p ? OKTO_SCHED_SEQUENTIAL : OKTO_SCHED_HEFT)) ==
                    OKTO_OK)
                s = record_big(&b, g[p]);
            if (!t[p])
                s = OKTO_ENOMEM;
        }
        /* interleaved, like the workloads: this machine's speed drifts between runs */
        for (int r = -o->warmup; r < o->reps && s == OKTO_OK; r++)
            for (int p = 0; p < 2 && s == OKTO_OK; p++) {
                double t0 = now_ms();
                s = okto_graph_run(g[p]);
                if (r >= 0)
                    t[p][r] = now_ms() - t0;
            }
        for (int p = 0; p < 2; p++) {
            if (s == OKTO_OK)
                ms[p] = median(t[p], o->reps);
            free(t[p]);
        }
        const char *name;
        double cl = 0, ob = 0;
        if (s == OKTO_OK)
            s = baseline_big(&b, &name, &cl);
        if (s == OKTO_OK && baseline_openblas(&b, &name, &ob) != OKTO_OK)
            ob = 0;
        double gf = 2.0 * (double)n * (double)n * (double)n * 1e-6; /* GFLOP per ms */
        int panels = g[0] ? okto_graph_task_count(g[0]) : 0;
        if (s != OKTO_OK)
            printf("%6zu error: %s\n", n, okto_last_error(ctx));
        else
            printf("%6zu %12.1f %12.1f %12.1f %12.1f  %d\n", n, gf / ms[0], gf / ms[1], gf / cl,
                   ob > 0 ? gf / ob : 0.0, panels);
        for (int p = 0; p < 2; p++)
            okto_graph_destroy(g[p]);
        for (int i = 0; i < b.nt; i++)
            okto_tensor_destroy(b.t[i]);
        if (s != OKTO_OK)
            return 1;
    }
    return 0;
}

/* ---- graph scale: recording, planning, running and destroying graphs of many tasks ---------- */

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

/* n tasks of one pattern into g: a chain (each scales the one small tensor), a fan (each reads
 * one tensor and writes its own row of another; a sum over all rows joins them), rows (each
 * fills its own row view of one tensor). */
static okto_status scale_record(okto_graph *g, const char *pattern, int n, okto_tensor *x,
                                okto_tensor *y, okto_tensor *sum)
{
    for (int i = 0; i < n; i++) {
        okto_status s;
        if (strcmp(pattern, "chain") == 0) {
            s = okto_scale(g, x, 1.0f);
        } else {
            okto_tensor *row;
            TRY(okto_tensor_view(y, (size_t)i, 1, &row));
            s = strcmp(pattern, "fan") == 0 ? okto_copy(g, row, x) : okto_fill(g, row, 1.0f);
            okto_tensor_destroy(row);
        }
        TRY(s);
    }
    if (strcmp(pattern, "fan") == 0)
        TRY(okto_reduce_all(g, sum, y, OKTO_REDUCE_SUM));
    return OKTO_OK;
}

static int graph_scale(okto_context *ctx, const opts *o)
{
    static const char *const patterns[] = {"chain", "fan", "rows"};
    static const int sizes[] = {1000, 10000, 100000, 1000000};
    int nsizes = o->quick ? 3 : 4, bad = 0;
    if (!o->json)
        printf("graph scale: microseconds per task (record, first run with analysis and plan, "
               "replay, destroy), sequential policy, and resident memory per task\n"
               "%-6s %8s %9s %9s %9s %9s %10s\n", "graph", "tasks", "record", "first",
               "replay", "destroy", "KB/task");
    else
        printf("{\n  \"graph_scale\": [");
    int firstj = 1;
    for (int pi = 0; pi < 3; pi++)
        for (int si = 0; si < nsizes; si++) {
            int n = sizes[si];
            okto_tensor *x = NULL, *y = NULL, *sum = NULL;
            okto_graph *g = NULL;
            double t0, t1, t2, t3, t4, t5, m0, m1;
            okto_status s = okto_tensor_create_2d(ctx, 1, 16, &x);
            if (s == OKTO_OK)
                s = okto_tensor_create_2d(ctx, (size_t)n, 16, &y);
            if (s == OKTO_OK)
                s = okto_tensor_create_2d(ctx, 1, 1, &sum);
            if (s == OKTO_OK)
                s = okto_graph_create(ctx, &g);
            if (s == OKTO_OK)
                s = okto_graph_set_sched(g, OKTO_SCHED_SEQUENTIAL);
            m0 = rss_mb();
            t0 = now_ms();
            if (s == OKTO_OK)
                s = scale_record(g, patterns[pi], n, x, y, sum);
            t1 = now_ms();
            if (s == OKTO_OK)
                s = okto_graph_run(g);
            t2 = now_ms();
            m1 = rss_mb();
            if (s == OKTO_OK)
                s = okto_graph_run(g);
            t3 = now_ms();
            if (s == OKTO_OK)
                s = okto_graph_run(g);
            t4 = now_ms();
            okto_status d = okto_graph_destroy(g);
            t5 = now_ms();
            okto_tensor_destroy(x), okto_tensor_destroy(y), okto_tensor_destroy(sum);
            if (s != OKTO_OK || d != OKTO_OK) {
                fprintf(stderr, "okto-bench: graph-scale %s %d: %s\n", patterns[pi], n,
                        okto_last_error(ctx));
                bad = 1;
                continue;
            }
            int tasks = n + (pi == 1);
            double us = 1e3 / tasks, replay = fmin(t3 - t2, t4 - t3);
            if (o->json) {
                printf("%s\n    {\"graph\": \"%s\", \"tasks\": %d, \"record_us\": %.3f, "
                       "\"first_run_us\": %.3f, \"replay_us\": %.3f, \"destroy_us\": %.3f, "
                       "\"kb_per_task\": %.3f, \"tasks_per_s_record\": %.0f}",
                       firstj ? "" : ",", patterns[pi], tasks, (t1 - t0) * us, (t2 - t1) * us,
                       replay * us, (t5 - t4) * us, (m1 - m0) * 1024.0 / tasks,
                       tasks / ((t1 - t0) * 1e-3));
                firstj = 0;
            } else {
                printf("%-6s %8d %9.2f %9.2f %9.2f %9.2f %10.2f\n", patterns[pi], tasks,
                       (t1 - t0) * us, (t2 - t1) * us, replay * us, (t5 - t4) * us,
                       (m1 - m0) * 1024.0 / tasks);
            }
            fflush(stdout);
        }
    if (o->json)
        printf("\n  ]\n}\n");
    return bad;
}

/* ---- the coordinator's own cost per task ---------------------------------------------- */

static int overhead(okto_context *ctx, int tasks, int json)
{
    const char *src = "__kernel void nop(__global float *x, ulong xo) {}";
    okto_kernel *k;
    okto_tensor *t;
    okto_graph *g;
    if (okto_kernel_create(ctx, src, "nop", &k) || okto_tensor_create_2d(ctx, 1, 1, &t) ||
        okto_graph_create(ctx, &g)) {
        fprintf(stderr, "okto-bench: overhead: %s\n", okto_last_error(ctx));
        return 1;
    }
    size_t global = 1;
    okto_arg arg = OKTO_R(t);
    for (int i = 0; i < tasks; i++)
        okto_launch(g, k, 1, &global, NULL, 1, &arg);
    okto_graph_set_sched(g, OKTO_SCHED_SEQUENTIAL);
    /* raw OpenCL: the same kernel enqueued tasks times on one in-order queue, with an event
     * per command as okto keeps one, and those events released, as okto releases the last
     * run's events when it launches again (and without events, for the floor) */
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(okto_context_cl(ctx), okto_context_device(ctx),
                                              CL_QUEUE_PROFILING_ENABLE, &err);
    /* the same kernel, built here, its arguments set once (okto's lanes set them per task) */
    cl_program prog = clCreateProgramWithSource(okto_context_cl(ctx), 1, &src, NULL, &err);
    if (err == CL_SUCCESS)
        err = clBuildProgram(prog, 0, NULL, NULL, NULL, NULL);
    cl_kernel one = err == CL_SUCCESS ? clCreateKernel(prog, "nop", &err) : NULL;
    cl_mem mem = okto_tensor_cl_mem(t);
    cl_ulong off = 0;
    if (err == CL_SUCCESS)
        err = clSetKernelArg(one, 0, sizeof mem, &mem);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(one, 1, sizeof off, &off);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "okto-bench: overhead: building the raw kernel failed (%d)\n", err);
        return 1;
    }
    cl_kernel *raw = malloc((size_t)tasks * sizeof *raw);
    for (int i = 0; i < tasks; i++)
        raw[i] = one;
    cl_event *evs = malloc((size_t)tasks * sizeof *evs);
    double best_raw = 1e30, best_raw_noev = 1e30, best_okto = 1e30, best_heft = 1e30;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now_ms();
        for (int i = 0; i < tasks; i++)
            clEnqueueNDRangeKernel(q, raw[i], 1, NULL, &global, NULL, 0, NULL, &evs[i]);
        double t1a = now_ms();
        clFinish(q);
        double t1b = now_ms();
        for (int i = 0; i < tasks; i++)
            clReleaseEvent(evs[i]);
        double t2 = now_ms(), t1 = t0 + (t1a - t0) + (t2 - t1b);
        for (int i = 0; i < tasks; i++)
            clEnqueueNDRangeKernel(q, raw[i], 1, NULL, &global, NULL, 0, NULL, NULL);
        double t3 = now_ms();
        clFinish(q);
        /* okto: launch returns at once; the lane thread's enqueue loop is what we time, from
         * launch to the moment the last task is enqueued (wait covers the device work too) */
        okto_graph_set_sched(g, OKTO_SCHED_SEQUENTIAL);
        double t4 = now_ms();
        okto_graph_launch(g);
        pthread_mutex_lock(&g->lock);
        while (g->lanes_left > 0)
            pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
        double t5 = now_ms();
        okto_graph_wait(g);
        okto_graph_set_sched(g, OKTO_SCHED_HEFT);
        okto_graph_run(g); /* plans heft once (independent tasks: spread over the lanes) */
        double t6 = now_ms();
        okto_graph_launch(g);
        pthread_mutex_lock(&g->lock);
        while (g->lanes_left > 0)
            pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
        double t7 = now_ms();
        okto_graph_wait(g);
        if (rep == 0)
            continue; /* warm-up */
        best_raw = fmin(best_raw, t1 - t0);
        best_raw_noev = fmin(best_raw_noev, t3 - t2);
        best_okto = fmin(best_okto, t5 - t4);
        best_heft = fmin(best_heft, t7 - t6);
    }
    free(evs);
    free(raw);
    clReleaseKernel(one);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    double per_raw = best_raw * 1e3 / tasks, per_noev = best_raw_noev * 1e3 / tasks;
    double per_okto = best_okto * 1e3 / tasks, per_heft = best_heft * 1e3 / tasks;
    if (json)
        printf("  \"overhead\": {\"tasks\": %d, \"raw_enqueue_us\": %.3f, "
               "\"raw_enqueue_no_event_us\": %.3f, \"okto_sequential_us\": %.3f, "
               "\"okto_heft_us\": %.3f, \"added_us\": %.3f}",
               tasks, per_raw, per_noev, per_okto, per_heft, per_okto - per_raw);
    else
        printf("coordinator cost per task (%d empty-kernel tasks, best of 5, host time to enqueue "
               "all):\n  raw clEnqueueNDRangeKernel %.2f us (%.2f us without events)\n"
               "  okto sequential %.2f us (adds %.2f us)   okto heft on %d lanes %.2f us per "
               "task of wall time\n",
               tasks, per_raw, per_noev, per_okto, per_okto - per_raw, okto_context_compute_lanes(ctx),
               per_heft);
    okto_graph_destroy(g);
    okto_tensor_destroy(t);
    okto_kernel_destroy(k);
    return 0;
}

/* ---- the harness ------------------------------------------------------------------------ */


typedef struct result {
    double med[NPOL], lo[NPOL], hi[NPOL], util[NPOL];
    double cores[NPOL];              /* process CPU time / wall time over the timed runs */
    double max_diff;
    int agree;
    const char *bname[2];
    double bms[2];
    int nb;
    double ratio, host_speedup;      /* bench's, 0 where not measured */
    char error[512];
} result;

static void run_bench(bench *b, result *r)
{
    okto_graph *g[NPOL] = {0};
    double *times[NPOL] = {0};
    float *res[NPOL] = {0};
    memset(r, 0, sizeof *r);
    okto_status s = b->setup(b);
    float *snap[64] = {0};
    for (int i = 0; i < b->nt && s == OKTO_OK; i++) {
        snap[i] = malloc(okto_tensor_rows(b->t[i]) * okto_tensor_cols(b->t[i]) * sizeof(float));
        s = snap[i] ? okto_tensor_read(b->t[i], snap[i]) : OKTO_ENOMEM;
    }
    for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
        if ((s = okto_graph_create(b->ctx, &g[p])) == OKTO_OK &&
            (s = okto_graph_set_sched(g[p], policy[p])) == OKTO_OK)
            s = b->record(b, g[p]);
    }
    int reps = b->o->reps;
    size_t n = b->out ? okto_tensor_rows(b->out) * okto_tensor_cols(b->out) : 0;
    for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
        times[p] = calloc((size_t)reps, sizeof(double));
        res[p] = malloc(n * sizeof(float));
    }
    /* warm-up: compiles, first allocations, and the perf model's first measurements */
    for (int w = 0; w < b->o->warmup && s == OKTO_OK; w++)
        for (int p = 0; p < NPOL && s == OKTO_OK; p++)
            s = okto_graph_run(g[p]);
    double cpu[NPOL] = {0}, wall[NPOL] = {0};
    for (int i = 0; i < reps && s == OKTO_OK; i++)
        for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
            double c0 = cpu_ms(), t0 = now_ms();
            s = okto_graph_run(g[p]);
            times[p][i] = now_ms() - t0;
            cpu[p] += cpu_ms() - c0;
            wall[p] += times[p][i];
        }
    for (int p = 0; p < NPOL; p++)
        r->cores[p] = wall[p] > 0 ? cpu[p] / wall[p] : 0;
    /* agreement: every policy's output after one more run from the same inputs; workloads
     * that update their inputs (mlp-step) are compared within a tolerance below */
    for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
        okto_report rep;
        if ((s = okto_graph_report(g[p], &rep)) == OKTO_OK)
            r->util[p] = rep.utilization;
        if (b->o->trace_dir && s == OKTO_OK) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s-%s.json", b->o->trace_dir, b->name, policy_name[p]);
            s = okto_graph_trace(g[p], path);
        }
    }
    /* agreement: every policy runs once more from the same starting state (all tensors
     * restored from a snapshot: several workloads update their inputs in place) and its output
     * is compared with sequential's */
    for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
        for (int i = 0; i < b->nt && s == OKTO_OK; i++)
            s = okto_tensor_write(b->t[i], snap[i]);
        if (s == OKTO_OK)
            s = okto_graph_run(g[p]);
        if (s == OKTO_OK)
            s = okto_tensor_read(b->out, res[p]);
    }
    if (s == OKTO_OK) {
        for (int p = 1; p < NPOL; p++)
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)res[p][i] - res[SEQ][i]) /
                           fmax(1.0, fabs((double)res[SEQ][i]));
                if (!(d <= r->max_diff))
                    r->max_diff = isnan(d) ? INFINITY : d;
            }
        /* the policies run the same tasks, so only a scheduling bug can make them differ;
         * 1e-5 leaves room for a BLAS that picks kernels by queue, none seen on PoCL */
        r->agree = r->max_diff <= 1e-5;
    }
    for (int p = 0; p < NPOL && s == OKTO_OK; p++) {
        r->med[p] = median(times[p], reps);
        r->lo[p] = times[p][0];
        r->hi[p] = times[p][reps - 1];
    }
    b->def = s == OKTO_OK ? g[DEF] : NULL;
    if (s == OKTO_OK && b->baseline) {
        s = b->baseline(b, &r->bname[0], &r->bms[0]);
        r->nb = s == OKTO_OK;
    }
    if (s == OKTO_OK && b->baseline2 && b->baseline2(b, &r->bname[r->nb], &r->bms[r->nb]) == OKTO_OK)
        r->nb++;
    b->def = NULL;
    r->ratio = b->ratio;
    r->host_speedup = b->host_speedup;
    if (s != OKTO_OK)
        snprintf(r->error, sizeof r->error, "%s: %s", okto_status_str(s),
                 okto_last_error(b->ctx));
    for (int p = 0; p < NPOL; p++) {
        okto_graph_destroy(g[p]);
        free(times[p]);
        free(res[p]);
    }
    for (int i = 0; i < b->nt; i++) {
        okto_tensor_destroy(b->t[i]);
        free(snap[i]);
    }
    for (int i = 0; i < 4; i++)
        free(b->host[i]);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: okto-bench [--quick] [--json] [--only NAME] [--trace DIR] [--reps N]\n"
            "                  [--overhead-tasks N] [--big-n N]\n"
            "Runs each workload under the sequential, heft (default) and round-robin policies,\n"
            "interleaved, and reports median and min-max times, speedup = sequential / default,\n"
            "utilization, agreement of the results, and external baselines.\n"
            "workloads: tiny-ops small-gemm dag-chains copy-overlap big-gemm reduce mlp-step\n"
            "           attention conv (fused ops against the same work composed from older\n"
            "           ops, with GFLOP/s)\n"
            "           overhead (the coordinator's own host cost per task)\n"
            "           gemm-sweep (only with --only: matmul GFLOP/s at 256, 1024, 2048 against\n"
            "           one CLBlast call and OpenBLAS)\n"
            "           graph-scale (only with --only: record, run, replay and destroy costs per\n"
            "           task of graphs of 1k to 1M tasks: a chain, a fan, row views)\n"
            "--big-n N: big-gemm multiplies N x N matrices (0 or unset: 2048, 1024 with --quick)\n");
}

int main(int argc, char **argv)
{
    /* nine warm-up runs: compiles, the perf model's first measurements, and heft's trial of
     * its plan against the sequential plan (runs 3-9, lib/launch.c) all happen before timing */
    opts o = {.reps = 0, .warmup = 9};
    int overhead_tasks = 10000;
    static const struct option lopts[] = {
        {"quick", no_argument, 0, 'q'},      {"json", no_argument, 0, 'j'},
        {"only", required_argument, 0, 'o'}, {"trace", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'}, {"overhead-tasks", required_argument, 0, 'n'},
        {"big-n", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    long big_n = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'q': o.quick = 1; break;
        case 'j': o.json = 1; break;
        case 'o': o.only = optarg; break;
        case 't': o.trace_dir = optarg; break;
        case 'r': o.reps = atoi(optarg); break;
        case 'n': overhead_tasks = atoi(optarg); break;
        case 'b': big_n = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (o.reps < 0) || overhead_tasks < 1 || big_n < 0 || big_n > 32768) {
        usage(stderr);
        return 2;
    }
    if (!o.reps)
        o.reps = o.quick ? 3 : 9;
    o.big_n = (size_t)big_n;
    if (o.trace_dir)
        mkdir(o.trace_dir, 0755);

    bench all[] = {
        {.name = "tiny-ops", .what = "1024 independent 8x8x8 matmuls", .setup = setup_many,
         .record = record_many, .baseline = baseline_many},
        {.name = "small-gemm", .what = "256 independent 64x64x64 matmuls", .setup = setup_many,
         .record = record_many, .baseline = baseline_many},
        {.name = "dag-chains", .what = "4 chains x 16 elementwise ops on 1M floats, joined",
         .setup = setup_chains, .record = record_chains},
        {.name = "copy-overlap", .what = "64 MB upload beside a 384-cubed matmul",
         .setup = setup_copy, .record = record_copy},
        {.name = "big-gemm", .what = "one 2048-cubed matmul", .setup = setup_big,
         .record = record_big, .baseline = baseline_big, .baseline2 = baseline_openblas},
        {.name = "reduce", .what = "sum of 64M floats", .setup = setup_reduce,
         .record = record_reduce},
        {.name = "mlp-step", .what = "3-layer MLP step, batch 512, width 1024, 4 micro-batches",
         .setup = setup_mlp, .record = record_mlp, .baseline2 = baseline_mlp_no_host},
        /* ops2 */
        {.name = "attention", .what = "fused attention fwd + bwd, B 8 H 4 T 256 D 64",
         .setup = setup_attention, .record = record_attention, .baseline = baseline_attention},
        {.name = "conv", .what = "3 conv2d 3x3 layers fwd + bwd, batch 32, 32x32, 16-32-32-32",
         .setup = setup_conv, .record = record_conv, .baseline = baseline_conv},
    };
    int nall = (int)(sizeof all / sizeof *all);
    int known = o.only && (strcmp(o.only, "overhead") == 0 || strcmp(o.only, "gemm-sweep") == 0 ||
                          strcmp(o.only, "graph-scale") == 0);
    for (int i = 0; i < nall; i++)
        known |= o.only && strcmp(o.only, all[i].name) == 0;
    if (o.only && !known) {
        fprintf(stderr, "okto-bench: unknown workload \"%s\"\n", o.only);
        usage(stderr);
        return 2;
    }

    okto_context *ctx;
    if (okto_context_create(NULL, &ctx) != OKTO_OK) {
        fprintf(stderr, "okto-bench: %s\n", okto_last_error(NULL));
        return 1;
    }
    if (o.only && strcmp(o.only, "gemm-sweep") == 0) {
        int bad = gemm_sweep(ctx, &o);
        okto_context_destroy(ctx);
        return bad;
    }
    if (o.only && strcmp(o.only, "graph-scale") == 0) {
        int bad = graph_scale(ctx, &o);
        okto_context_destroy(ctx);
        return bad;
    }
    char devname[256] = "";
    clGetDeviceInfo(okto_context_device(ctx), CL_DEVICE_NAME, sizeof devname - 1, devname, NULL);
    if (o.json)
        printf("{\n  \"device\": \"%s\", \"compute_lanes\": %d, \"copy_lanes\": %d, "
               "\"quick\": %s, \"reps\": %d, \"big_gemm_n\": %zu,\n  \"workloads\": [",
               devname, okto_context_compute_lanes(ctx), okto_context_copy_lanes(ctx),
               o.quick ? "true" : "false", o.reps, o.big_n ? o.big_n : o.quick ? 1024 : 2048);
    else
        printf("okto-bench on %s: %d compute + %d copy lanes, %d interleaved reps after %d "
               "warm-up%s\n\n%-13s %20s %20s %20s %8s %6s %6s %5s %5s %6s  %s\n",
               devname, okto_context_compute_lanes(ctx), okto_context_copy_lanes(ctx), o.reps, o.warmup,
               o.quick ? " (quick sizes)" : "", "workload", "sequential ms", "heft ms",
               "round-robin ms", "speedup", "u.seq", "u.heft", "c.seq", "c.hft", "agree",
               "baselines");
    int bad = 0, first = 1;
    for (int i = 0; i < nall; i++) {
        bench *b = &all[i];
        if (o.only && strcmp(o.only, b->name) != 0)
            continue;
        b->ctx = ctx;
        b->o = &o;
        result r;
        run_bench(b, &r);
        double speedup = r.med[DEF] > 0 ? r.med[SEQ] / r.med[DEF] : 0;
        if (r.error[0] || !r.agree)
            bad = 1;
        if (o.json) {
            printf("%s\n    {\"name\": \"%s\"", first ? "" : ",", b->name);
            if (r.error[0]) {
                printf(", \"error\": \"");
                for (const char *p = r.error; *p; p++)
                    printf(*p == '"' || *p == '\\' ? "\\%c" : (*p == '\n' ? " " : "%c"), *p);
                printf("\"}");
            } else {
                printf(", \"sequential_ms\": %.3f, \"default_ms\": %.3f, \"round_robin_ms\": %.3f, "
                       "\"sequential_min_ms\": %.3f, \"sequential_max_ms\": %.3f, "
                       "\"default_min_ms\": %.3f, \"default_max_ms\": %.3f, \"speedup\": %.3f, "
                       "\"util_sequential\": %.3f, \"util_default\": %.3f, "
                       "\"util_round_robin\": %.3f, \"cores_sequential\": %.2f, "
                       "\"cores_default\": %.2f, \"agree\": %s, \"max_rel_diff\": %.3g, "
                       "\"baselines\": {",
                       r.med[SEQ], r.med[DEF], r.med[RR], r.lo[SEQ], r.hi[SEQ], r.lo[DEF],
                       r.hi[DEF], speedup, r.util[SEQ], r.util[DEF], r.util[RR], r.cores[SEQ],
                       r.cores[DEF], r.agree ? "true" : "false", r.max_diff);
                for (int k = 0; k < r.nb; k++)
                    printf("%s\"%s\": %.3f", k ? ", " : "", r.bname[k], r.bms[k]);
                printf("}");
                if (r.ratio > 0)
                    printf(", \"openblas_ratio_interleaved\": %.3f", r.ratio);
                if (r.host_speedup > 0)
                    printf(", \"host_lane_speedup\": %.3f", r.host_speedup);
                if (b->gflop > 0)
                    printf(", \"gflop\": %.4f, \"gflops_default\": %.3f", b->gflop,
                           b->gflop / (r.med[DEF] * 1e-3));
                printf("}");
            }
            first = 0;
        } else if (r.error[0]) {
            printf("%-13s error: %s\n", b->name, r.error);
        } else {
            char cell[NPOL][64], base[512] = "";
            for (int p = 0; p < NPOL; p++)
                snprintf(cell[p], sizeof cell[p], "%.2f (%.2f-%.2f)", r.med[p], r.lo[p], r.hi[p]);
            for (int k = 0; k < r.nb; k++) {
                size_t len = strlen(base);
                snprintf(base + len, sizeof base - len, "%s%s %.2f ms (heft %.2fx)", k ? ", " : "",
                         r.bname[k], r.bms[k], r.bms[k] / r.med[DEF]);
            }
            /* GFLOP/s where the workload counts its flops: heft's, then each baseline's */
            if (b->gflop > 0) {
                size_t len = strlen(base);
                snprintf(base + len, sizeof base - len, "%sGFLOP/s heft %.2f", r.nb ? "; " : "",
                         b->gflop / (r.med[DEF] * 1e-3));
                for (int k = 0; k < r.nb; k++) {
                    len = strlen(base);
                    snprintf(base + len, sizeof base - len, ", %s %.2f", r.bname[k],
                             b->gflop / (r.bms[k] * 1e-3));
                }
            }
            if (r.ratio > 0 || r.host_speedup > 0) {
                size_t len = strlen(base);
                if (r.ratio > 0)
                    snprintf(base + len, sizeof base - len, "; okto/openblas interleaved %.2fx",
                             r.ratio);
                else
                    snprintf(base + len, sizeof base - len, "; host lane speedup %.2fx",
                             r.host_speedup);
            }
            printf("%-13s %20s %20s %20s %7.2fx %6.2f %6.2f %5.2f %5.2f %6s  %s\n", b->name,
                   cell[SEQ], cell[DEF], cell[RR], speedup, r.util[SEQ], r.util[DEF],
                   r.cores[SEQ], r.cores[DEF], r.agree ? "yes" : "NO", base);
        }
        fflush(stdout);
    }
    if (!o.only || strcmp(o.only, "overhead") == 0) {
        if (o.json)
            printf("%s\n  ],\n", "");
        else
            printf("\n");
        if (overhead(ctx, o.quick ? 2000 : overhead_tasks, o.json))
            bad = 1;
        if (o.json)
            printf("\n}\n");
    } else if (o.json) {
        printf("\n  ]\n}\n");
    }
    okto_context_destroy(ctx);
    return bad ? 1 : 0;
}
