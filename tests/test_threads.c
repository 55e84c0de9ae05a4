/* tests/test_threads.c: the engine's thread rules as a user sees them (okto/graph.h,
 * okto/tensor.h, okto/context.h): recording into a graph while another thread launches it,
 * several threads creating the first contexts of a fresh process at once, several graphs of
 * one context replayed from several threads at once, and the EBUSY rules of tensors a launched
 * graph uses. Threads other than the test's own never call cmocka (its failures longjmp):
 * they record what they saw, and the test thread asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

static okto_tensor *filled(okto_context *c, size_t rows, size_t cols, float v)
{
    float *h = malloc(rows * cols * sizeof *h);
    for (size_t i = 0; i < rows * cols; i++)
        h[i] = v;
    okto_tensor *t = tu_tensor(c, rows, cols, h);
    free(h);
    return t;
}

/* The first element of t that is not want, or -1. */
static long first_not(const okto_tensor *t, float want, float *got)
{
    size_t n = okto_tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    long bad = -1;
    if (okto_tensor_read(t, h) != OKTO_OK) {
        *got = -1;
        bad = 0;
    }
    for (size_t i = 0; bad < 0 && i < n; i++)
        if (h[i] != want) {
            *got = h[i];
            bad = (long)i;
        }
    free(h);
    return bad;
}

static void expect_all(const okto_tensor *t, float want, const char *what)
{
    float got = 0;
    long i = first_not(t, want, &got);
    if (i >= 0)
        fail_msg("%s: element %ld is %.9g, expected %.9g", what, i, (double)got, (double)want);
}

/* ---- (a) recording while another thread launches -------------------------------------------- */

typedef struct rec_side {
    okto_graph *g;
    okto_tensor *x, *y;
    atomic_int *stop;
    atomic_int *runs; /* the launcher's completed launch + wait pairs */
    int ok, busy, other; /* outcomes of the calls */
    okto_status other_s;
    char other_msg[256];
} rec_side;

static void tally(rec_side *r, okto_status s)
{
    if (s == OKTO_OK) {
        r->ok++;
    } else if (s == OKTO_EBUSY) {
        r->busy++;
    } else if (r->other++ == 0) {
        r->other_s = s;
        snprintf(r->other_msg, sizeof r->other_msg, "%s", okto_last_error(NULL));
    }
}

enum { REC_OPS = 200 };

/* Until the launcher has completed `n` runs (or about 60 s passed: the test's check then
 * fails with the counts). On a loaded machine the recorder could otherwise finish all its ops
 * before the launcher's first launch, and the calls would not interleave at all. */
static void await_runs(const rec_side *r, int n)
{
    for (long spins = 0; atomic_load(r->runs) < n && spins < 60L * 1000; spins++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

/* Thread A: records y += x until REC_OPS ops are in (halfway, and at the end, it lets the
 * launcher complete a run), then stops the launcher. */
static void *recorder(void *arg)
{
    rec_side *r = arg;
    while (r->ok < REC_OPS) {
        okto_status s = okto_axpy(r->g, r->y, 1.0f, r->x);
        tally(r, s);
        if (r->other)
            break;
        if (s == OKTO_EBUSY)
            sched_yield();
        if (s == OKTO_OK && r->ok == REC_OPS / 2)
            await_runs(r, 1);
    }
    await_runs(r, 2);
    atomic_store(r->stop, 1);
    return NULL;
}

/* Thread B: launches and waits until the recorder is done. */
static void *launcher(void *arg)
{
    rec_side *r = arg;
    while (!atomic_load(r->stop)) {
        okto_status s = okto_graph_launch(r->g);
        tally(r, s);
        if (s == OKTO_OK) {
            okto_status w = okto_graph_wait(r->g);
            tally(r, w);
            if (w == OKTO_OK)
                atomic_fetch_add(r->runs, 1);
        }
        if (r->other)
            break;
    }
    return NULL;
}

static void record_while_launching(void **state)
{
    (void)state;
    okto_tensor *x = filled(ctx, 16, 16, 1), *y = filled(ctx, 16, 16, 0);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_axpy(g, y, 1.0f, x)); /* something to launch from the start */
    atomic_int stop = 0, runs = 0;
    rec_side a = {.g = g, .x = x, .y = y, .stop = &stop, .runs = &runs};
    rec_side b = a;
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&tb, NULL, launcher, &b), 0);
    assert_int_equal(pthread_create(&ta, NULL, recorder, &a), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.other)
        fail_msg("a recording call returned %s (not OK or EBUSY): %s", okto_status_str(a.other_s),
                 a.other_msg);
    if (b.other)
        fail_msg("a launch or wait returned %s (not OK or EBUSY): %s", okto_status_str(b.other_s),
                 b.other_msg);
    /* both made progress, so the calls really were interleaved */
    assert_int_equal(a.ok, REC_OPS);
    assert_true(b.ok >= 4); /* two launch + wait pairs at least */
    print_message("      %d ops recorded (%d refused busy), %d launch/wait calls OK (%d busy)\n",
                  a.ok, a.busy, b.ok, b.busy);
    /* an EBUSY is not a recording error the graph keeps */
    assert_int_equal(okto_graph_status(g, NULL), OKTO_OK);
    assert_int_equal(okto_graph_task_count(g), REC_OPS + 1);
    /* idle now: every recorded op runs once per run */
    float *z = calloc(16 * 16, sizeof *z);
    TU_OK(okto_tensor_write(y, z));
    free(z);
    TU_OK(okto_graph_run(g));
    expect_all(y, (float)(REC_OPS + 1), "y after one run of every recorded op");
    TU_OK(okto_graph_run(g));
    expect_all(y, (float)(2 * (REC_OPS + 1)), "y after two runs");
    TU_OK(okto_graph_destroy(g));
    okto_tensor_destroy(x), okto_tensor_destroy(y);
}

/* ---- (b) the first contexts of a process, from several threads at once ------------------------ */

enum { FIRST_THREADS = 6, FIRST_PROCESSES = 4 };

typedef struct first_ctx {
    pthread_barrier_t *bar;
    okto_status s;
    int lanes, ran;
    char msg[256];
} first_ctx;

static void *first_main(void *arg)
{
    first_ctx *f = arg;
    okto_context *c = NULL;
    pthread_barrier_wait(f->bar);
    f->s = okto_context_create(NULL, &c);
    if (f->s != OKTO_OK) {
        snprintf(f->msg, sizeof f->msg, "%s", okto_last_error(NULL));
        return NULL;
    }
    f->lanes = okto_context_lane_count(c);
    /* and it works: a fill and a copy */
    okto_tensor *t = NULL, *u = NULL;
    okto_graph *g = NULL;
    okto_status s = okto_tensor_create_2d(c, 4, 4, &t);
    if (s == OKTO_OK)
        s = okto_tensor_create_2d(c, 4, 4, &u);
    if (s == OKTO_OK)
        s = okto_graph_create(c, &g);
    if (s == OKTO_OK)
        s = okto_fill(g, t, 3.0f);
    if (s == OKTO_OK)
        s = okto_copy(g, u, t);
    if (s == OKTO_OK)
        s = okto_graph_run(g);
    float h[16] = {0};
    if (s == OKTO_OK)
        s = okto_tensor_read(u, h);
    f->ran = s == OKTO_OK && h[0] == 3.0f && h[15] == 3.0f;
    if (s != OKTO_OK) {
        f->s = s;
        snprintf(f->msg, sizeof f->msg, "%s", okto_last_error(NULL));
    }
    okto_graph_destroy(g);
    okto_tensor_destroy(t), okto_tensor_destroy(u);
    okto_context_destroy(c);
    return NULL;
}

/* The child process: no okto call has been made in it yet. Exit 0 when every thread got a
 * working context, 77 when there is no device, 1 otherwise. */
static int first_contexts_child(void)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, FIRST_THREADS);
    first_ctx f[FIRST_THREADS];
    pthread_t th[FIRST_THREADS];
    memset(f, 0, sizeof f);
    for (int i = 0; i < FIRST_THREADS; i++) {
        f[i].bar = &bar;
        if (pthread_create(&th[i], NULL, first_main, &f[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    int bad = 0, nodev = 0;
    for (int i = 0; i < FIRST_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (f[i].s == OKTO_ENODEV)
            nodev++;
        else if (f[i].s != OKTO_OK || !f[i].ran || f[i].lanes < 1) {
            bad++;
            fprintf(stderr, "thread %d: %s (%d lanes, ran %d): %s\n", i, okto_status_str(f[i].s),
                    f[i].lanes, f[i].ran, f[i].msg);
        }
    }
    pthread_barrier_destroy(&bar);
    if (nodev == FIRST_THREADS)
        return 77;
    if (nodev)
        fprintf(stderr, "%d of %d threads found no device\n", nodev, FIRST_THREADS);
    return bad || nodev ? 1 : 0;
}

static void first_contexts_at_once(void **state)
{
    (void)state;
    for (int p = 0; p < FIRST_PROCESSES; p++) {
        char *argv[] = {"test_threads", "--first-contexts", NULL};
        pid_t pid;
        /* /proc/self/exe: this very binary, started fresh, so its discovery is the first */
        int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
        if (e != 0)
            fail_msg("posix_spawn: %s", strerror(e));
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
            skip();
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("process %d: %d threads creating their first contexts at once: %s %d", p,
                     FIRST_THREADS, WIFEXITED(st) ? "exit status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

/* ---- (c) several graphs of one context replayed from several threads --------------------------- */

enum { REPLAY_THREADS = 4, REPLAYS = 40, MM = 48 };

typedef struct replayer {
    okto_context *c;
    int id;
    okto_graph *g;
    okto_tensor *x, *y, *a, *b, *p;
    int runs;
    char fail[256];
} replayer;

/* Each graph: y += x (x = id + 1 everywhere), and p = a b, a 48-cubed CLBlast product of
 * exactly representable values (a = 1, b = id + 1, so p = 48 (id + 1) everywhere). */
static void *replay_main(void *arg)
{
    replayer *r = arg;
    float want_p = (float)MM * (float)(r->id + 1);
    for (int k = 1; k <= REPLAYS && !r->fail[0]; k++) {
        okto_status s = okto_graph_run(r->g);
        if (s != OKTO_OK) {
            snprintf(r->fail, sizeof r->fail, "run %d: %s: %s", k, okto_status_str(s),
                     okto_last_error(NULL));
            break;
        }
        r->runs = k;
        if (k % 8 == 0 || k == REPLAYS) {
            float got;
            long i = first_not(r->y, (float)k * (float)(r->id + 1), &got);
            if (i >= 0)
                snprintf(r->fail, sizeof r->fail, "after %d runs y[%ld] = %g, expected %g", k, i,
                         (double)got, (double)k * (r->id + 1));
            else if ((i = first_not(r->p, want_p, &got)) >= 0)
                snprintf(r->fail, sizeof r->fail, "after %d runs p[%ld] = %g, expected %g", k, i,
                         (double)got, (double)want_p);
        }
    }
    return NULL;
}

static void graphs_replayed_from_threads(void **state)
{
    (void)state;
    /* a context of its own: CLBlast's first call on it (serialised by okto) comes from
     * several threads at once too */
    okto_context *c = tu_context();
    replayer r[REPLAY_THREADS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < REPLAY_THREADS; i++) {
        r[i].c = c;
        r[i].id = i;
        r[i].x = filled(c, 32, 64, (float)(i + 1));
        r[i].y = filled(c, 32, 64, 0);
        r[i].a = filled(c, MM, MM, 1);
        r[i].b = filled(c, MM, MM, (float)(i + 1));
        r[i].p = filled(c, MM, MM, 0);
        TU_OK(okto_graph_create(c, &r[i].g));
        TU_OK(okto_axpy(r[i].g, r[i].y, 1.0f, r[i].x));
        TU_OK(okto_matmul(r[i].g, r[i].p, r[i].a, r[i].b, 0));
        if (i % 2) /* two policies side by side */
            TU_OK(okto_graph_set_sched(r[i].g, OKTO_SCHED_SEQUENTIAL));
    }
    pthread_t th[REPLAY_THREADS];
    for (int i = 0; i < REPLAY_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, replay_main, &r[i]), 0);
    for (int i = 0; i < REPLAY_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < REPLAY_THREADS; i++)
        if (r[i].fail[0])
            fail_msg("graph %d: %s", i, r[i].fail);
    for (int i = 0; i < REPLAY_THREADS; i++) {
        assert_int_equal(r[i].runs, REPLAYS);
        TU_OK(okto_graph_destroy(r[i].g));
        okto_tensor_destroy(r[i].x), okto_tensor_destroy(r[i].y);
        okto_tensor_destroy(r[i].a), okto_tensor_destroy(r[i].b), okto_tensor_destroy(r[i].p);
    }
    okto_context_destroy(c);
}

/* ---- (d) tensors of a launched graph --------------------------------------------------------- */

static void tensors_of_a_launched_graph(void **state)
{
    (void)state;
    enum { R = 64, Cn = 64 };
    okto_tensor *x = filled(ctx, R, Cn, 2), *y = filled(ctx, R, Cn, 5),
                *free_t = filled(ctx, 4, 4, 9);
    okto_tensor *yv = NULL;
    TU_OK(okto_tensor_view(y, 8, 4, &yv)); /* a view shares y's storage, and its rules */
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_axpy(g, y, 3.0f, x)); /* y = 5 + 6 = 11 */
    TU_OK(okto_scale(g, x, 0.5f));   /* x = 1 */

    float *host = malloc((size_t)R * Cn * sizeof *host), *zeros = calloc((size_t)R * Cn, 4);
    for (int round = 0; round < 3; round++) {
        if (round > 0) { /* back to the start */
            float *v = malloc((size_t)R * Cn * sizeof *v);
            for (int i = 0; i < R * Cn; i++)
                v[i] = 2;
            TU_OK(okto_tensor_write(x, v));
            for (int i = 0; i < R * Cn; i++)
                v[i] = 5;
            TU_OK(okto_tensor_write(y, v));
            free(v);
        }
        TU_OK(okto_graph_launch(g));
        /* in flight until okto_graph_wait, however fast the device was */
        for (int i = 0; i < R * Cn; i++)
            host[i] = -7;
        okto_status s = okto_tensor_read(y, host);
        if (s != OKTO_EBUSY)
            fail_msg("read of a tensor in flight: %s", okto_status_str(s));
        assert_non_null(strstr(okto_last_error(NULL), "okto_tensor_read"));
        for (int i = 0; i < R * Cn; i++)
            if (host[i] != -7)
                fail_msg("a refused read wrote element %d (%g)", i, (double)host[i]);
        assert_int_equal(okto_tensor_read_f32(yv, host), OKTO_EBUSY);
        assert_true(host[0] == -7);
        assert_int_equal(okto_tensor_write(x, zeros), OKTO_EBUSY);
        assert_int_equal(okto_tensor_write(yv, zeros), OKTO_EBUSY);
        assert_int_equal(okto_tensor_write_f32(y, zeros), OKTO_EBUSY);
        assert_int_equal(okto_tensor_destroy(x), OKTO_EBUSY);
        assert_int_equal(okto_tensor_destroy(yv), OKTO_EBUSY);
        assert_non_null(strstr(okto_last_error(NULL), "okto_tensor_destroy"));
        /* a tensor the graph does not use is free to go */
        float h[16];
        TU_OK(okto_tensor_read(free_t, h));
        assert_true(h[0] == 9);
        TU_OK(okto_graph_wait(g));
        /* nothing the refused calls tried happened: the graph's results are there */
        expect_all(y, 11, "y after the wait");
        expect_all(x, 1, "x after the wait");
        expect_all(yv, 11, "the view of y");
        /* and after the wait each of them works */
        TU_OK(okto_tensor_read(y, host));
        assert_true(host[0] == 11 && host[R * Cn - 1] == 11);
        TU_OK(okto_tensor_write(yv, zeros)); /* rows 8..11 of y */
        TU_OK(okto_tensor_read(y, host));
        assert_true(host[8 * Cn] == 0 && host[12 * Cn] == 11 && host[7 * Cn + Cn - 1] == 11);
    }
    /* destroying after the wait: the graph keeps the storages, and still runs */
    TU_OK(okto_tensor_destroy(yv));
    TU_OK(okto_tensor_destroy(x));
    TU_OK(okto_graph_run(g)); /* x (1 now, destroyed handle) still there: y += 3 */
    TU_OK(okto_tensor_read(y, host));
    assert_true(host[0] == 14 && host[8 * Cn] == 3);
    TU_OK(okto_graph_destroy(g));
    TU_OK(okto_tensor_destroy(y));
    TU_OK(okto_tensor_destroy(free_t));
    free(host), free(zeros);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--first-contexts") == 0)
        return first_contexts_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_while_launching),
        cmocka_unit_test(first_contexts_at_once),
        cmocka_unit_test(graphs_replayed_from_threads),
        cmocka_unit_test(tensors_of_a_launched_graph),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
