/* tests/fault/fault_sweep.c: one point of the fault sweep (tests/fault/sweep.sh drives it).
 *
 * Through the public API only, it creates a context and records a small training step: an
 * upload, an 80x80x80 matmul (CLBlast), a broadcast bias add (okto_zip), ReLU (okto_map), an
 * 80x4x80 matmul (okto's own kernel, under 32-cubed), okto_softmax_xent with i32 labels,
 * okto_reduce, the backward matmuls (transposed operands, the small kernel and CLBlast),
 * RELU_GRAD and okto_axpy updates, and a download. It runs the step twice, reads the weights
 * back and destroys everything but the context. That is the window: the shim (clshim.so,
 * LD_PRELOAD) is armed before it and disarmed after it, so with OKTO_FAULT_AT=N the Nth OpenCL
 * call of the window fails (or the Nth call of OKTO_FAULT_FN, or the Nth host allocation okto
 * makes with OKTO_FAULT_FN=malloc).
 *
 * Then it judges the point:
 *   - the fault fired and some call reported it: a negative status, the one
 *     okto__cl_status maps the error to (ENOMEM for allocation failures, EBUILD for a build,
 *     ECL otherwise), with a message naming the failed call and its CL_* name (a call CLBlast
 *     made is named as the CLBlast routine okto called); a graph whose recording failed must
 *     return that error from okto_graph_launch; a run that failed must succeed when run again;
 *   - or the fault was absorbed (okto or CLBlast fell back: clFlush, a device query with a
 *     default, ...): every call succeeded and the numbers are right;
 *   - or it never fired (N beyond the window): every call succeeded, the numbers are right;
 *   - every destroy returned OKTO_OK;
 *   - after the window a fresh graph on the same context (a fresh context when the window's
 *     was never made) computes the step correctly (checked against a double-precision host
 *     reference), so the failure left no broken state behind;
 *   - once everything is destroyed (and CLBlast's program cache cleared) the program holds no
 *     OpenCL object: every context, queue, buffer, program, kernel and event okto or CLBlast
 *     made was released (the shim counts API references).
 * It prints one line "point: VERDICT ..." and exits 0 when the point behaved, 1 when it did
 * not, 2 on a usage error. Without the shim it runs the step and the checks once, as a plain
 * test. A crash or a hang is the sweep script's to see (it runs each point under timeout). */
#include <okto/okto.h>

#include <clblast_c.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 80, D = 80, C = 4 }; /* batch, features = hidden width, classes */
#define LR 0.1f

/* ---- the shim's API, when it is loaded ------------------------------------------------------- */
static struct {
    void (*arm)(void);
    void (*disarm)(void);
    long (*calls)(void);
    int (*hit)(const char **fn, int *err, const char **caller, long *seq);
    long (*live)(char *buf, size_t len);
    long (*host_live)(size_t *bytes);
    const char *(*err_name)(int err);
} shim;

/* POSIX: a dlsym result may name a function; copied, since ISO C has no such cast */
#define LOOKUP(field, name)                                                                        \
    do {                                                                                           \
        void *p_ = dlsym(RTLD_DEFAULT, name);                                                      \
        memcpy(&shim.field, &p_, sizeof p_);                                                       \
    } while (0)

static void load_shim(void)
{
    LOOKUP(arm, "okto_fault_arm");
    LOOKUP(disarm, "okto_fault_disarm");
    LOOKUP(calls, "okto_fault_calls");
    LOOKUP(hit, "okto_fault_hit");
    LOOKUP(live, "okto_fault_live");
    LOOKUP(host_live, "okto_fault_host_live");
    LOOKUP(err_name, "okto_fault_err_name");
    if (!shim.arm || !shim.disarm || !shim.calls || !shim.hit || !shim.live || !shim.host_live ||
        !shim.err_name)
        memset(&shim, 0, sizeof shim); /* all or nothing: no shim, or an older one */
}

/* ---- host data and the double-precision reference -------------------------------------------- */
typedef struct params {
    float W1[D * D], b1[D], W2[D * C], b2[C];
} params;

static float X[B * D];
static int labels[B];
static params init, want; /* the weights before the step and after two steps */
static double want_loss[2];

static void make_data(void)
{
    unsigned s = 12345;
#define RND() ((s = s * 1103515245u + 12345u), ((float)((s >> 8) & 0xffff) / 65536.0f - 0.5f))
    for (int i = 0; i < B * D; i++)
        X[i] = RND();
    for (int i = 0; i < B; i++)
        labels[i] = (int)((unsigned)(i * 7 + 3) % C);
    for (int i = 0; i < D * D; i++)
        init.W1[i] = RND() * 0.3f;
    for (int i = 0; i < D; i++)
        init.b1[i] = RND() * 0.1f;
    for (int i = 0; i < D * C; i++)
        init.W2[i] = RND() * 0.3f;
    for (int i = 0; i < C; i++)
        init.b2[i] = RND() * 0.1f;
#undef RND
}

/* One SGD step in double, as the graph computes it. */
static double ref_step(double *W1, double *b1, double *W2, double *b2)
{
    static double H[B * D], A[B * D], L[B * C], G[B * C], dH[B * D];
    double loss = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < D; j++) {
            double h = b1[j];
            for (int k = 0; k < D; k++)
                h += (double)X[i * D + k] * W1[k * D + j];
            H[i * D + j] = h;
            A[i * D + j] = h > 0 ? h : 0;
        }
    for (int i = 0; i < B; i++) {
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < C; c++) {
            double l = b2[c];
            for (int k = 0; k < D; k++)
                l += A[i * D + k] * W2[k * C + c];
            L[i * C + c] = l;
            mx = fmax(mx, l);
        }
        for (int c = 0; c < C; c++)
            sum += exp(L[i * C + c] - mx);
        for (int c = 0; c < C; c++) {
            double p = exp(L[i * C + c] - mx) / sum;
            G[i * C + c] = (p - (c == labels[i])) / B;
        }
        loss += -(L[i * C + labels[i]] - mx - log(sum)) / B;
    }
    for (int i = 0; i < B; i++)
        for (int k = 0; k < D; k++) {
            double d = 0;
            for (int c = 0; c < C; c++)
                d += G[i * C + c] * W2[k * C + c];
            dH[i * D + k] = H[i * D + k] > 0 ? d : 0;
        }
    for (int k = 0; k < D; k++)
        for (int c = 0; c < C; c++) {
            double d = 0;
            for (int i = 0; i < B; i++)
                d += A[i * D + k] * G[i * C + c];
            W2[k * C + c] -= LR * d;
        }
    for (int c = 0; c < C; c++) {
        double d = 0;
        for (int i = 0; i < B; i++)
            d += G[i * C + c];
        b2[c] -= LR * d;
    }
    for (int k = 0; k < D; k++)
        for (int j = 0; j < D; j++) {
            double d = 0;
            for (int i = 0; i < B; i++)
                d += (double)X[i * D + k] * dH[i * D + j];
            W1[k * D + j] -= LR * d;
        }
    for (int j = 0; j < D; j++) {
        double d = 0;
        for (int i = 0; i < B; i++)
            d += dH[i * D + j];
        b1[j] -= LR * d;
    }
    return loss;
}

static void make_reference(void)
{
    static double W1[D * D], b1[D], W2[D * C], b2[C];
    for (int i = 0; i < D * D; i++)
        W1[i] = init.W1[i];
    for (int i = 0; i < D; i++)
        b1[i] = init.b1[i];
    for (int i = 0; i < D * C; i++)
        W2[i] = init.W2[i];
    for (int i = 0; i < C; i++)
        b2[i] = init.b2[i];
    for (int s = 0; s < 2; s++)
        want_loss[s] = ref_step(W1, b1, W2, b2);
    for (int i = 0; i < D * D; i++)
        want.W1[i] = (float)W1[i];
    for (int i = 0; i < D; i++)
        want.b1[i] = (float)b1[i];
    for (int i = 0; i < D * C; i++)
        want.W2[i] = (float)W2[i];
    for (int i = 0; i < C; i++)
        want.b2[i] = (float)b2[i];
}

static double max_err(const float *got, const float *ref, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(1.0, fabs((double)ref[i]));
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* ---- the step: a record of every call's outcome ----------------------------------------------- */
typedef struct outcome {
    okto_status first;        /* the first negative status of any call; OKTO_OK if none */
    char where[64];           /* the call that returned it */
    char msg[2048];           /* okto_last_error(NULL) right after it (its start) */
    okto_status rec_first;    /* the first recording error (ops) */
    okto_status launch_first; /* what the first launch returned */
    int run_failed[2];
    char problem[512]; /* a misbehaviour found while running the step; "" if none */
} outcome;

static void problem(outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(outcome *o, const char *fmt, ...)
{
    if (o->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->problem, sizeof o->problem, fmt, ap);
    va_end(ap);
}

static okto_status note(outcome *o, okto_status s, const char *where)
{
    if (s < 0 && o->first == OKTO_OK) {
        o->first = s;
        snprintf(o->where, sizeof o->where, "%s", where);
        snprintf(o->msg, sizeof o->msg, "%s", okto_last_error(NULL));
    }
    return s;
}

enum {
    T_X,
    T_LAB,
    T_W1,
    T_B1,
    T_H,
    T_A,
    T_W2,
    T_B2,
    T_L,
    T_G,
    T_LOSS,
    T_DB2,
    T_DW2,
    T_DA,
    T_DH,
    T_DW1,
    T_DB1,
    T_COUNT
};

typedef struct result {
    params p;
    float loss[2]; /* each run's loss */
    float dl;      /* where the graph's download puts it */
} result;

/* Records and runs the step on ctx twice (the weights from init), reads the weights into *res,
 * destroys the graph and the tensors. Every outcome goes to *o. Allocates nothing itself: the
 * malloc window counts okto's allocations only. */
static void step(okto_context *ctx, outcome *o, result *res, okto_sched sched)
{
    static const struct {
        okto_dtype dt;
        int rank;
        size_t shape[2];
    } shapes[T_COUNT] = {
        [T_X] = {OKTO_F32, 2, {B, D}},   [T_LAB] = {OKTO_I32, 1, {B}},
        [T_W1] = {OKTO_F32, 2, {D, D}},  [T_B1] = {OKTO_F32, 1, {D}},
        [T_H] = {OKTO_F32, 2, {B, D}},   [T_A] = {OKTO_F32, 2, {B, D}},
        [T_W2] = {OKTO_F32, 2, {D, C}},  [T_B2] = {OKTO_F32, 1, {C}},
        [T_L] = {OKTO_F32, 2, {B, C}},   [T_G] = {OKTO_F32, 2, {B, C}},
        [T_LOSS] = {OKTO_F32, 1, {1}},   [T_DB2] = {OKTO_F32, 1, {C}},
        [T_DW2] = {OKTO_F32, 2, {D, C}}, [T_DA] = {OKTO_F32, 2, {B, D}},
        [T_DH] = {OKTO_F32, 2, {B, D}},  [T_DW1] = {OKTO_F32, 2, {D, D}},
        [T_DB1] = {OKTO_F32, 1, {D}},
    };
    okto_tensor *t[T_COUNT] = {0};
    okto_graph *g = NULL;
    int ok = 1;
    for (int i = 0; i < T_COUNT && ok; i++)
        ok = note(o, okto_tensor_create(ctx, shapes[i].dt, shapes[i].rank, shapes[i].shape, &t[i]),
                  "okto_tensor_create") == OKTO_OK;
    /* the weights and labels by blocking writes, the batch by the graph's upload */
    if (ok)
        ok = note(o, okto_tensor_write(t[T_LAB], labels), "okto_tensor_write") == OKTO_OK &&
             note(o, okto_tensor_write(t[T_W1], init.W1), "okto_tensor_write") == OKTO_OK &&
             note(o, okto_tensor_write(t[T_B1], init.b1), "okto_tensor_write") == OKTO_OK &&
             note(o, okto_tensor_write(t[T_W2], init.W2), "okto_tensor_write") == OKTO_OK &&
             note(o, okto_tensor_write(t[T_B2], init.b2), "okto_tensor_write") == OKTO_OK;
    if (ok)
        ok = note(o, okto_graph_create(ctx, &g), "okto_graph_create") == OKTO_OK;
    if (ok && sched != OKTO_SCHED_AUTO)
        ok = note(o, okto_graph_set_sched(g, sched), "okto_graph_set_sched") == OKTO_OK;
    if (ok) {
        /* recorded without checking each call: the graph keeps the first error and the launch
         * must return it (okto/graph.h) */
        okto_status r[20];
        int n = 0;
        r[n++] = okto_upload(g, t[T_X], X);
        r[n++] = okto_matmul(g, t[T_H], t[T_X], t[T_W1], 0);         /* CLBlast */
        r[n++] = okto_zip(g, t[T_H], t[T_H], t[T_B1], OKTO_ZIP_ADD); /* broadcast */
        r[n++] = okto_map(g, t[T_A], t[T_H], OKTO_MAP_RELU);
        r[n++] = okto_matmul(g, t[T_L], t[T_A], t[T_W2], 0); /* okto's kernel */
        r[n++] = okto_zip(g, t[T_L], t[T_L], t[T_B2], OKTO_ZIP_ADD);
        r[n++] = okto_softmax_xent(g, t[T_LOSS], t[T_G], t[T_L], t[T_LAB]);
        r[n++] = okto_reduce(g, t[T_DB2], t[T_G], OKTO_REDUCE_SUM, 0);
        r[n++] = okto_matmul(g, t[T_DW2], t[T_A], t[T_G], OKTO_TRANS_A);
        r[n++] = okto_matmul(g, t[T_DA], t[T_G], t[T_W2], OKTO_TRANS_B);
        r[n++] = okto_zip(g, t[T_DH], t[T_DA], t[T_H], OKTO_ZIP_RELU_GRAD);
        r[n++] = okto_matmul(g, t[T_DW1], t[T_X], t[T_DH], OKTO_TRANS_A); /* CLBlast */
        r[n++] = okto_reduce(g, t[T_DB1], t[T_DH], OKTO_REDUCE_SUM, 0);
        r[n++] = okto_axpy(g, t[T_W1], -LR, t[T_DW1]);
        r[n++] = okto_axpy(g, t[T_B1], -LR, t[T_DB1]);
        r[n++] = okto_axpy(g, t[T_W2], -LR, t[T_DW2]);
        r[n++] = okto_axpy(g, t[T_B2], -LR, t[T_DB2]);
        r[n++] = okto_download(g, &res->dl, t[T_LOSS]);
        o->rec_first = OKTO_OK;
        for (int i = 0; i < n; i++)
            if (r[i] != OKTO_OK) {
                o->rec_first = r[i];
                break;
            }
        const char *gmsg;
        if (okto_graph_status(g, &gmsg) != o->rec_first)
            problem(o, "okto_graph_status is %s, the first op returned %s",
                    okto_status_name(okto_graph_status(g, NULL)), okto_status_name(o->rec_first));
        if (o->rec_first != OKTO_OK) {
            note(o, o->rec_first, "recording");
            for (int i = 0; i < n; i++)
                if (r[i] != o->rec_first && r[i] != OKTO_OK)
                    problem(o, "op %d returned %s after the graph kept %s", i,
                            okto_status_name(r[i]), okto_status_name(o->rec_first));
        }
        for (int run = 0; run < 2; run++) {
            okto_status s = okto_graph_launch(g);
            if (run == 0)
                o->launch_first = s;
            if (s == OKTO_OK)
                s = okto_graph_wait(g);
            o->run_failed[run] = s != OKTO_OK;
            note(o, s, run == 0 ? "run 1" : "run 2");
            if (s == OKTO_OK)
                res->loss[run] = res->dl;
        }
        if (o->rec_first != OKTO_OK && o->launch_first != o->rec_first)
            problem(o, "okto_graph_launch returned %s, not the recording error %s",
                    okto_status_name(o->launch_first), okto_status_name(o->rec_first));
        /* one fault at most: a run that failed with the recording intact must work again */
        if (o->rec_first == OKTO_OK && o->run_failed[0] && o->run_failed[1])
            problem(o, "the graph failed again on its second run: %s", okto_last_error(NULL));
    }
    if (ok && o->first == OKTO_OK) {
        note(o, okto_tensor_read(t[T_W1], res->p.W1), "okto_tensor_read");
        note(o, okto_tensor_read(t[T_B1], res->p.b1), "okto_tensor_read");
        note(o, okto_tensor_read(t[T_W2], res->p.W2), "okto_tensor_read");
        note(o, okto_tensor_read(t[T_B2], res->p.b2), "okto_tensor_read");
    }
    okto_status s = okto_graph_destroy(g);
    if (s != OKTO_OK)
        problem(o, "okto_graph_destroy returned %s: %s", okto_status_name(s),
                okto_last_error(NULL));
    for (int i = T_COUNT; i-- > 0;)
        if ((s = okto_tensor_destroy(t[i])) != OKTO_OK)
            problem(o, "okto_tensor_destroy returned %s: %s", okto_status_name(s),
                    okto_last_error(NULL));
}

/* The weights after two steps, and the last loss, against the reference. */
static int numbers_ok(const result *r, char *why, size_t len)
{
    double e = max_err(r->p.W1, want.W1, D * D);
    e = fmax(e, max_err(r->p.b1, want.b1, D));
    e = fmax(e, max_err(r->p.W2, want.W2, D * C));
    e = fmax(e, max_err(r->p.b2, want.b2, C));
    double le = fabs((double)r->loss[1] - want_loss[1]) / fmax(1.0, fabs(want_loss[1]));
    snprintf(why, len, "largest relative error %.2e (weights), %.2e (loss %.6f, reference %.6f)", e,
             le, (double)r->loss[1], want_loss[1]);
    return e <= 1e-4 && le <= 1e-4;
}

/* ---- judging -------------------------------------------------------------------------------- */

static okto_status expected_status(const char *fn, int err, const char *caller)
{
    if (strcmp(fn, "malloc") == 0)
        return OKTO_ENOMEM;
    if (strcmp(caller, "okto") == 0 && strcmp(fn, "clBuildProgram") == 0 &&
        err == -11 /* CL_BUILD_PROGRAM_FAILURE */)
        return OKTO_EBUILD;
    switch (err) {
    case -6: /* CL_OUT_OF_HOST_MEMORY */
    case -4: /* CL_MEM_OBJECT_ALLOCATION_FAILURE */
    case -5: /* CL_OUT_OF_RESOURCES */ return OKTO_ENOMEM;
    default: return OKTO_ECL;
    }
}

int main(int argc, char **argv)
{
    okto_sched sched = OKTO_SCHED_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sched") == 0 && i + 1 < argc) {
            if (okto_sched_from_name(argv[++i], &sched) != OKTO_OK) {
                fprintf(stderr, "fault_sweep: %s\n", okto_last_error(NULL));
                return 2;
            }
        } else {
            fprintf(stderr, "usage: fault_sweep [--sched NAME]  (the OKTO_FAULT_* variables "
                            "steer the shim: tests/fault/clshim.c)\n");
            return 2;
        }
    }
    load_shim();
    make_data();
    make_reference();
    static outcome o, clean;
    static result res, res2;
    okto_context *ctx = NULL;
    char why[256];

    /* ---- the window */
    if (shim.arm)
        shim.arm();
    okto_status cs = note(&o, okto_context_create(NULL, &ctx), "okto_context_create");
    if (cs == OKTO_OK && ctx == NULL)
        problem(&o, "okto_context_create returned OKTO_OK and no context");
    if (cs != OKTO_OK && ctx != NULL)
        problem(&o, "okto_context_create failed but returned a context");
    if (cs == OKTO_OK)
        step(ctx, &o, &res, sched);
    long calls = shim.calls ? shim.calls() : 0;
    if (shim.disarm)
        shim.disarm();

    const char *fn = NULL, *caller = NULL;
    int err = 0;
    long seq = 0;
    int fired = shim.hit && shim.hit(&fn, &err, &caller, &seq);
    char verdict[64] = "", detail[3072] = "";

    /* ---- what the window reported */
    if (o.problem[0]) {
        snprintf(verdict, sizeof verdict, "MISBEHAVED");
        snprintf(detail, sizeof detail, "%s", o.problem);
    } else if (o.first != OKTO_OK) {
        if (!fired) {
            snprintf(verdict, sizeof verdict, "MISBEHAVED");
            snprintf(detail, sizeof detail, "%s failed with no fault injected: %s: %s", o.where,
                     okto_status_name(o.first), o.msg);
        } else {
            okto_status want_s = expected_status(fn, err, caller);
            const char *ename = strcmp(fn, "malloc") == 0 ? "memory" : shim.err_name(err);
            const char *name_needed = strcmp(caller, "clblast") == 0 ? "CLBlast"
                                      : strcmp(fn, "malloc") == 0    ? "out of host memory"
                                                                     : fn;
            int clblast = strcmp(caller, "clblast") == 0;
            if (!clblast && o.first != want_s) {
                snprintf(verdict, sizeof verdict, "MISBEHAVED");
                snprintf(detail, sizeof detail, "%s returned %s, expected %s: %s", o.where,
                         okto_status_name(o.first), okto_status_name(want_s), o.msg);
            } else if (!strstr(o.msg, name_needed) || (!clblast && !strstr(o.msg, ename))) {
                snprintf(verdict, sizeof verdict, "MISBEHAVED");
                snprintf(detail, sizeof detail, "%s's message does not name %s%s%s: \"%s\"",
                         o.where, name_needed, clblast ? "" : " and ", clblast ? "" : ename, o.msg);
            } else {
                snprintf(verdict, sizeof verdict, "failed-cleanly");
                snprintf(detail, sizeof detail, "%s -> %s: %s", o.where, okto_status_name(o.first),
                         o.msg);
            }
        }
    } else if (!numbers_ok(&res, why, sizeof why)) {
        snprintf(verdict, sizeof verdict, "MISBEHAVED");
        snprintf(detail, sizeof detail, "every call succeeded but the numbers are wrong: %s", why);
    } else {
        snprintf(verdict, sizeof verdict, fired ? "absorbed" : "not-reached");
        snprintf(detail, sizeof detail, "every call succeeded, %s", why);
    }

    /* ---- afterwards: a clean graph on the same context (a fresh one if none was made) */
    char after[3072] = "";
    int after_ok = 1;
    if (!ctx) {
        okto_status s = okto_context_create(NULL, &ctx);
        if (s != OKTO_OK) {
            after_ok = 0;
            snprintf(after, sizeof after, "a fresh context failed: %s: %s", okto_status_name(s),
                     okto_last_error(NULL));
        }
    }
    if (ctx) {
        step(ctx, &clean, &res2, sched);
        if (clean.problem[0] || clean.first != OKTO_OK) {
            after_ok = 0;
            snprintf(after, sizeof after, "the clean graph failed: %s%s%s: %s", clean.problem,
                     clean.problem[0] ? "; " : "", clean.where, clean.msg);
        } else if (!numbers_ok(&res2, why, sizeof why)) {
            after_ok = 0;
            snprintf(after, sizeof after, "the clean graph computed wrong numbers: %s", why);
        }
        okto_status s = okto_context_destroy(ctx);
        if (s != OKTO_OK) {
            after_ok = 0;
            snprintf(after, sizeof after, "okto_context_destroy returned %s", okto_status_name(s));
        }
    }

    /* ---- nothing left behind */
    char live[256] = "";
    long nlive = 0, nhost = 0;
    size_t host_bytes = 0;
    if (shim.live) {
        CLBlastClearCache(); /* its program cache holds programs by design, until cleared */
        nlive = shim.live(live, sizeof live);
        nhost = shim.host_live(&host_bytes);
    }

    /* nhost < 0: not tracked (a sanitizer build, whose LeakSanitizer checks at exit) */
    int good = strcmp(verdict, "MISBEHAVED") != 0 && after_ok && nlive == 0 && nhost <= 0;
    if (fired)
        printf("point: %s: call %ld (%s from %s, %s) of %ld: %s", good ? verdict : "MISBEHAVED",
               seq, fn, caller, strcmp(fn, "malloc") == 0 ? "NULL" : shim.err_name(err), calls,
               detail);
    else
        printf("point: %s: %ld calls, none failed: %s", good ? verdict : "MISBEHAVED", calls,
               detail);
    printf(" | after: %s", after_ok ? "clean graph correct" : after);
    if (shim.live) {
        printf(" | live OpenCL objects: %ld%s%s%s", nlive, nlive ? " (" : "", live,
               nlive ? ")" : "");
        if (nhost >= 0)
            printf(" | okto host blocks: %ld (%zu bytes)", nhost, host_bytes);
    }
    printf("\n");
    return good ? 0 : 1;
}
