/* tests/test_multidev.c: a context over two devices (POCL_DEVICES="pthread pthread" gives two
 * PoCL CPU devices on one machine) against a context of one device with the same number of
 * compute lanes, so ops split into the same parts and every part runs the same kernel: the
 * results must be bit-identical (memcmp), whichever device each part ran on.
 *
 *  - a matmul split into two row panels, one per device (round-robin puts part i on lane i,
 *    and lane i is on device i), and under heft;
 *  - three training steps of lib/nn's mlp (two micro-batches, forward, loss, backward and AdamW
 *    in one graph);
 *  - a device task that fails (the fault shim, tests/fault/clshim.c, makes the Nth
 *    clEnqueueNDRangeKernel fail), until a failure has hit each device: the run reports it,
 *    both devices' lanes drain (the wait returns), and the same graph then runs again on the
 *    same context with the right bits.
 *    Without the shim preloaded that test is skipped;
 *  - okto_host_task between device work on both devices: host threads complete the steps, the
 *    order tensor keeps them in recording order, the device work after them sees what they
 *    wrote; bad arguments are refused naming the argument.
 *
 * Skipped (77) when okto sees fewer than two devices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static okto_context *ctx2, *ctx1;

static okto_context *make(int ndevices, int lanes)
{
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.ndevices = ndevices;
    cfg.compute_lanes = lanes;
    cfg.copy_lanes = 0;
    okto_context *c = NULL;
    okto_status s = okto_context_create(&cfg, &c);
    if (s == OKTO_ENODEV) {
        fprintf(stderr, "skipped: %s\n", okto_last_error(NULL));
        exit(77);
    }
    if (s != OKTO_OK)
        fail_msg("okto_context_create: %s: %s", okto_status_str(s), okto_last_error(NULL));
    return c;
}

static int setup(void **state)
{
    (void)state;
    ctx2 = make(-1, 1); /* every device of the platform, one compute lane each */
    if (okto_context_device_count(ctx2) < 2) {
        fprintf(stderr, "skipped: one device only (run with POCL_DEVICES=\"pthread pthread\")\n");
        okto_context_destroy(ctx2);
        exit(77);
    }
    okto_context_destroy(ctx2);
    ctx2 = make(-1, 1);
    /* as many lanes on one device as the two-device context has in all */
    ctx1 = make(0, okto_context_compute_lanes(ctx2));
    assert_int_equal(okto_context_device_count(ctx1), 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx2);
    okto_context_destroy(ctx1);
    return 0;
}

/* ---- a matmul split across both devices ------------------------------------------------------ */

enum { M = 512, N = 256, K = 320 };

typedef struct mm {
    okto_tensor *a, *b, *c;
    okto_graph *g;
} mm;

static void mm_make(okto_context *cx, okto_sched sched, mm *x)
{
    float *ha = malloc(M * K * sizeof *ha), *hb = malloc(K * N * sizeof *hb);
    tu_fill_random(ha, M * K, 3, -1, 1);
    tu_fill_random(hb, K * N, 4, -1, 1);
    x->a = tu_tensor(cx, M, K, ha);
    x->b = tu_tensor(cx, K, N, hb);
    TU_OK(okto_tensor_create_2d(cx, M, N, &x->c));
    TU_OK(okto_graph_create(cx, &x->g));
    TU_OK(okto_graph_set_sched(x->g, sched));
    TU_OK(okto_matmul(x->g, x->c, x->a, x->b, 0));
    /* something after it on every row, so the panels' successors wait across devices */
    TU_OK(okto_map(x->g, x->c, x->c, OKTO_MAP_TANH));
    free(ha);
    free(hb);
}

static void mm_free(mm *x)
{
    okto_graph_destroy(x->g);
    okto_tensor_destroy(x->a);
    okto_tensor_destroy(x->b);
    okto_tensor_destroy(x->c);
}

static float *mm_run(okto_context *cx, okto_sched sched, int *tasks, int lane_tasks[2])
{
    mm x;
    mm_make(cx, sched, &x);
    TU_OK(okto_graph_run(x.g));
    TU_OK(okto_graph_run(x.g)); /* heft's second run is planned from measured costs */
    *tasks = okto_graph_task_count(x.g);
    for (int l = 0; lane_tasks && l < 2; l++) {
        okto_lane_report lr;
        TU_OK(okto_graph_report_lane(x.g, l, &lr));
        lane_tasks[l] = lr.tasks;
    }
    float *out = tu_read(x.c);
    mm_free(&x);
    return out;
}

static void matmul_split(void **state)
{
    (void)state;
    int t_rr, t_heft, t_seq, t_one, lanes[2];
    float *rr = mm_run(ctx2, OKTO_SCHED_ROUND_ROBIN, &t_rr, lanes);
    assert_int_equal(okto_context_lane_device(ctx2, 0), 0);
    assert_int_equal(okto_context_lane_device(ctx2, 1), 1);
    if (lanes[0] == 0 || lanes[1] == 0)
        fail_msg("round-robin left a device idle: %d tasks on device 0, %d on device 1", lanes[0],
                 lanes[1]);
    float *heft = mm_run(ctx2, OKTO_SCHED_HEFT, &t_heft, NULL);
    float *seq = mm_run(ctx2, OKTO_SCHED_SEQUENTIAL, &t_seq, NULL);
    float *one = mm_run(ctx1, OKTO_SCHED_HEFT, &t_one, NULL);
    assert_true(t_rr >= 4); /* two row panels, then the map in two parts */
    assert_int_equal(t_rr, t_one);
    assert_int_equal(t_heft, t_one);
    assert_int_equal(t_seq, t_one);
    const size_t bytes = (size_t)M * N * sizeof(float);
    assert_memory_equal(rr, one, bytes);
    assert_memory_equal(heft, one, bytes);
    assert_memory_equal(seq, one, bytes);
    printf("matmul %dx%dx%d + tanh: %d tasks, round-robin %d on device 0 and %d on device 1; "
           "round-robin, heft and sequential on two devices bit-identical to one device\n",
           M, N, K, t_rr, lanes[0], lanes[1]);
    free(rr), free(heft), free(seq), free(one);
}

/* ---- a training step ----------------------------------------------------------------------- */

enum { B = 32, STEPS = 3 };

static float *train(okto_context *cx, size_t *numel)
{
    okto_model_config c = okto_model_default(OKTO_MODEL_MLP);
    c.features = 20, c.classes = 5, c.width_hidden = 48, c.layers = 2;
    okto_nn *nn;
    TU_OK(okto_nn_create(cx, OKTO_F32, 77, &nn));
    TU_OK(okto_nn_model(nn, &c));
    TU_OK(okto_nn_allocate(nn));
    float *hx = malloc(B * c.features * sizeof *hx);
    int32_t lab[B];
    tu_fill_random(hx, B * c.features, 9, -1, 1);
    for (int i = 0; i < B; i++)
        lab[i] = (int32_t)((i * 7 + 3) % (int)c.classes);
    okto_graph *g;
    TU_OK(okto_graph_create(cx, &g));
    okto_tensor *in[4];
    for (int m = 0; m < 2; m++) { /* two micro-batches: work for both devices */
        okto_tensor *logits, *loss;
        TU_OK(okto_tensor_create(cx, OKTO_F32, 2, (size_t[]){B / 2, c.features}, &in[2 * m]));
        TU_OK(okto_tensor_write_f32(in[2 * m], hx + (size_t)m * (B / 2) * c.features));
        TU_OK(okto_tensor_create(cx, OKTO_I32, 1, (size_t[]){B / 2}, &in[2 * m + 1]));
        TU_OK(okto_tensor_write(in[2 * m + 1], lab + m * (B / 2)));
        TU_OK(okto_nn_forward(g, nn, in[2 * m], &logits));
        TU_OK(okto_nn_loss(g, nn, logits, in[2 * m + 1], 0.5f, &loss));
        TU_OK(okto_nn_backward(g, nn, loss, m ? OKTO_ACCUMULATE : 0));
    }
    okto_optim o = okto_optim_default(OKTO_OPTIM_ADAMW);
    o.lr = 0.01f;
    TU_OK(okto_nn_update(g, nn, &o));
    for (int s = 0; s < STEPS; s++)
        TU_OK(okto_graph_run(g));
    *numel = 0;
    for (int i = 0; i < okto_nn_param_count(nn); i++) {
        okto_tensor *p;
        TU_OK(okto_nn_param_at(nn, i, NULL, &p, NULL));
        *numel += okto_tensor_numel(p);
    }
    float *w = malloc(*numel * sizeof *w);
    size_t at = 0;
    for (int i = 0; i < okto_nn_param_count(nn); i++) {
        okto_tensor *p;
        TU_OK(okto_nn_param_at(nn, i, NULL, &p, NULL));
        float *v = tu_read(p);
        memcpy(w + at, v, okto_tensor_numel(p) * sizeof *w);
        at += okto_tensor_numel(p);
        free(v);
    }
    okto_graph_destroy(g);
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(in[i]);
    okto_nn_destroy(nn);
    free(hx);
    return w;
}

static void train_steps(void **state)
{
    (void)state;
    size_t n2, n1;
    float *w2 = train(ctx2, &n2), *w1 = train(ctx1, &n1);
    assert_int_equal(n2, n1);
    assert_memory_equal(w2, w1, n1 * sizeof(float));
    printf("mlp, %d AdamW steps of 2 micro-batches: %zu weights bit-identical on two devices "
           "and on one\n",
           STEPS, n1);
    free(w2), free(w1);
}

/* ---- a failing task drains both devices ------------------------------------------------------ */

typedef void (*fault_fn)(void);

static void fault_drains(void **state)
{
    (void)state;
    fault_fn arm, disarm;
    void *p = dlsym(RTLD_DEFAULT, "okto_fault_arm"), *q = dlsym(RTLD_DEFAULT, "okto_fault_disarm");
    if (!p || !q) {
        printf("fault shim not preloaded: skipped\n");
        skip();
    }
    memcpy(&arm, &p, sizeof arm);
    memcpy(&disarm, &q, sizeof disarm);
    int tone;
    float *want = mm_run(ctx1, OKTO_SCHED_HEFT, &tone, NULL);
    mm x;
    mm_make(ctx2, OKTO_SCHED_ROUND_ROBIN, &x);
    TU_OK(okto_graph_run(x.g));
    setenv("OKTO_FAULT_FN", "clEnqueueNDRangeKernel", 1);
    setenv("OKTO_FAULT_QUIET", "1", 1);
    int failed_on[2] = {0, 0};
    /* which lane enqueues the Nth kernel is up to the threads: rounds of N = 1..4 until a
     * failure has hit each device (at most 10 rounds) */
    for (int at = 1, round = 0; round < 10 && !(failed_on[0] && failed_on[1]);
         at = at % 4 + 1, round += at == 1) {
        char v[16];
        snprintf(v, sizeof v, "%d", at);
        setenv("OKTO_FAULT_AT", v, 1);
        arm();
        okto_status s = okto_graph_run(x.g);
        disarm();
        const char *msg = okto_last_error(ctx2);
        if (s >= 0)
            continue; /* the Nth launch went to CLBlast's queue, or there were fewer */
        /* "task 3 (map, part 1 of 2, lane 1) failed: ..." */
        const char *lane = strstr(msg, "lane ");
        int l = lane ? atoi(lane + 5) : -1;
        if (l >= 0 && l < 2)
            failed_on[okto_context_lane_device(ctx2, l)]++;
        /* drained: the same graph runs again on the same context, with the right bits */
        okto_graph_clear_error(x.g);
        TU_OK(okto_graph_run(x.g));
        float *got = tu_read(x.c);
        assert_memory_equal(got, want, (size_t)M * N * sizeof(float));
        free(got);
    }
    unsetenv("OKTO_FAULT_AT");
    printf("injected failures: %d on device 0's lane, %d on device 1's; each run after one "
           "gave the right bits\n",
           failed_on[0], failed_on[1]);
    assert_true(failed_on[0] > 0 && failed_on[1] > 0);
    mm_free(&x);
    /* a fresh graph on the context still works */
    float *again = mm_run(ctx2, OKTO_SCHED_HEFT, &tone, NULL);
    assert_memory_equal(again, want, (size_t)M * N * sizeof(float));
    free(again), free(want);
}

/* ---- okto_host_task ------------------------------------------------------------------------- */

/* A host thread completes each task: the callback only hands the event over, as the header asks. */
typedef struct hjob {
    float *host;
    size_t n;
    float add;
    int seq, *counter;
    cl_event finish;
    pthread_t th;
} hjob;

static void *hjob_main(void *p)
{
    hjob *j = p;
    for (size_t i = 0; i < j->n; i++)
        j->host[i] = j->host[i] * 2 + j->add;
    j->seq = __atomic_fetch_add(j->counter, 1, __ATOMIC_SEQ_CST);
    clSetUserEventStatus(j->finish, CL_COMPLETE);
    clReleaseEvent(j->finish);
    return NULL;
}

static void hjob_ready(void *user, cl_event finish)
{
    hjob *j = user;
    j->finish = finish;
    pthread_create(&j->th, NULL, hjob_main, j);
}

static void host_task(void **state)
{
    (void)state;
    enum { R = 64, C = 33, NT = 4 };
    float h[R * C], buf[NT][R / NT * C];
    tu_fill_random(h, R * C, 21, -1, 1);
    okto_tensor *t = tu_tensor(ctx2, R, C, h), *order, *v[NT];
    TU_OK(okto_tensor_create(ctx2, OKTO_F32, 1, (size_t[]){1}, &order));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx2, &g));
    TU_OK(okto_graph_set_sched(g, OKTO_SCHED_ROUND_ROBIN));
    TU_OK(okto_scale(g, t, 3.0f)); /* before: split over both devices */
    int counter = 0;
    hjob jobs[NT];
    for (int k = 0; k < NT; k++) {
        TU_OK(okto_tensor_view(t, (size_t)k * (R / NT), R / NT, &v[k]));
        jobs[k] = (hjob){.host = buf[k], .n = R / NT * C, .add = (float)k, .counter = &counter};
        TU_OK(okto_host_task(g, v[k], buf[k], hjob_ready, &jobs[k], order));
    }
    TU_OK(okto_map(g, t, t, OKTO_MAP_NEG)); /* after: reads what the host wrote back */
    for (int run = 0; run < 2; run++) {
        counter = 0;
        TU_OK(okto_graph_run(g));
        for (int k = 0; k < NT; k++) {
            pthread_join(jobs[k].th, NULL);
            assert_int_equal(jobs[k].seq, k); /* the order tensor: recording order */
        }
    }
    float *got = tu_read(t);
    for (int i = 0; i < R * C; i++) {
        float x = h[i];
        for (int run = 0; run < 2; run++) {
            float y = x * 3.0f;
            y = y * 2 + (float)(i / (R / NT * C));
            x = -y;
        }
        if (got[i] != x)
            fail_msg("element %d: %.9g, expected %.9g", i, (double)got[i], (double)x);
    }
    free(got);
    /* bad arguments name the argument */
    okto_tensor *tr;
    TU_OK(okto_tensor_transpose(t, 0, 1, &tr));
    assert_int_equal(okto_host_task(g, tr, buf[0], hjob_ready, NULL, NULL), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx2), "not contiguous"));
    okto_graph_clear_error(g);
    assert_int_equal(okto_host_task(g, v[0], buf[0], NULL, NULL, NULL), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx2), "fn must not be NULL"));
    okto_graph_destroy(g);
    for (int k = 0; k < NT; k++)
        okto_tensor_destroy(v[k]);
    okto_tensor_destroy(tr);
    okto_tensor_destroy(order);
    okto_tensor_destroy(t);
    printf("okto_host_task: %d host steps between device work on two devices, in order, twice\n",
           NT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_split),
        cmocka_unit_test(train_steps),
        cmocka_unit_test(fault_drains),
        cmocka_unit_test(host_task),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
