/* tools/okto-train.c: trains okto's models (okto/nn.h: mlp, cnn, gpt) on real data, from a
 * config file and flags, and evaluates, checkpoints and samples them.
 *
 * One training step is one okto graph, recorded once and replayed: per micro-batch the
 * uploads of its rows, the forward pass, the loss and the backward pass (gradients accumulate
 * into the parameters' gradient arena), then one optimizer step over every parameter. The
 * host refills the staging buffers the uploads read before each launch, so shuffling costs
 * nothing on the device; the learning rate lives on the device and is written between runs.
 *
 * Data: the 8x8 digits of Debian's python3-sklearn (default for mlp and cnn) or any CSV of
 * features and an integer label; for gpt any UTF-8 text (default: the licence texts of
 * /usr/share/common-licenses), as characters. A seeded split holds part of it out, evaluated
 * every epoch (classifiers) or every eval_every steps (gpt).
 *
 * Data-parallel over MPI (built with the Meson feature mpi, started by mpirun): every rank holds
 * a replica on its own context and takes its slice of each global batch (the same batch on
 * every rank: the same seed); its step graph stops after the backward pass, the host reads the
 * gradient arena, all-reduces it (MPI_Iallreduce, averaged) with the step's loss, writes it back
 * and runs the update graph. So the all-reduce runs between two graph runs, after the whole
 * backward, and overlaps none of it. Rank 0 alone prints and saves. A collective that does not
 * complete within --mpi-timeout seconds (a rank died or stalled) aborts every rank with a
 * message naming the step.
 *
 * Exit status: 0 success; 1 a failure (okto, the loss watchdog, --check beyond its tolerance,
 * --compare losses that disagree); 2 bad arguments, config or data. */
#include <okto/okto.h>

#include "config.h"
#include "dataset.h"
#include "progress.h"
#include "refmodel.h"
#include "rng.h"
#include "safetensors.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef OKTO_HAVE_MPI
#include <mpi.h>
#define DP_SERIALIZED MPI_THREAD_SERIALIZED
#else
#define DP_SERIALIZED 1
#endif

#define CHECK_TOL 1e-3   /* --check: per gradient tensor, |okto - ref| <= tol * max|ref| */
#define COMPARE_TOL 1e-4 /* --compare: relative difference of any step's loss */

static const char *usage_text =
    "usage: okto-train [CONFIG.okt] [--key value ...]\n"
    "Trains an mlp, cnn or gpt on okto. A config file holds `key = value` lines (# comments);\n"
    "every flag --key overrides the file's key (a config key is its flag without dashes).\n"
    "\n"
    "model and data\n"
    "  --model mlp|cnn|gpt      (default cnn)\n"
    "  --data digits|PATH       mlp, cnn: digits (python3-sklearn's) or a CSV of features and a\n"
    "                           label; gpt: a UTF-8 text file (default: "
    "/usr/share/common-licenses)\n"
    "  --holdout F              fraction held out and evaluated, in [0, 1)   (default 0.2)\n"
    "  --width N --layers N     hidden width and depth (mlp 128 x 2, cnn 32 channels x 2 blocks,\n"
    "                           gpt 128 wide x 2 blocks)\n"
    "  --heads N --context N    gpt: attention heads (4) and context length (64)\n"
    "  --channels C --height H --image-width W   cnn: the image shape (default 1 x 8 x 8)\n"
    "training\n"
    "  --epochs N               mlp, cnn: passes over the training rows (mlp 60, cnn 30)\n"
    "  --steps N                gpt: optimizer steps (default 900); mlp, cnn: a cap\n"
    "  --time-limit S           stop after S seconds of training (0: none)\n"
    "  --batch N --micro M      rows (gpt: sequences) per step, split into M micro-batches\n"
    "                           (defaults: cnn 16, mlp and gpt 32; 1 micro-batch)\n"
    "  --optimizer adamw|sgd    (default adamw)   --lr X (3e-3; gpt 2e-3)   --min-lr X (lr/10)\n"
    "  --warmup N (steps, 0; gpt 100)   --weight-decay X (0.01; cnn, gpt 0.1)   --momentum X (sgd: 0.9)\n"
    "  --clip X                 clip the gradients' global norm (0: off; gpt 1)\n"
    "  --seed S                 seeds the split, the weights and the batches (default 1)\n"
    "  --sched POLICY --lanes N okto's policy and compute lanes (default: the context's)\n"
    "  --mpi-timeout S          under mpirun: a gradient all-reduce that takes longer than S\n"
    "                           seconds (a rank died or stalled) aborts every rank (default 60)\n"
    "  --dp-overlap 1|0         under mpirun: each gradient's all-reduce is a host task inside "
    "the\n"
    "                           step graph, overlapping the rest of the backward (1, default), or\n"
    "                           the whole arena's runs between the backward and an update graph\n"
    "  --eval-every N           gpt: holdout loss every N steps (default 100)\n"
    "checkpoints and inference\n"
    "  --save PATH              write the trained model (safetensors) at the end\n"
    "  --load PATH              start from a checkpoint (its model settings win)\n"
    "  --eval                   with --load: evaluate only (the holdout split; --holdout 0: all)\n"
    "  --generate PROMPT        gpt: generate text after training (or from --load)\n"
    "  --tokens N --temperature T   how much (200) and how randomly (0.8; 0: greedy)\n"
    "output and checks\n"
    "  --json                   one JSON document (its \"final\" object: holdout_accuracy or\n"
    "                           holdout_loss, train_loss, step_ms, sched)\n"
    "  --progress auto|lines|off   the progress line (default auto)\n"
    "  --trace PATH             a Perfetto trace of the last training step\n"
    "  --check                  one step's loss and every gradient against a double-precision\n"
    "                           host model; exit 1 beyond 1e-3 of each gradient's largest value\n"
    "  --compare                train again under --sched sequential; report both step times and\n"
    "                           whether the losses agree (1e-4); exit 1 if they do not\n"
    "  --help\n"
    "\n"
    "Exit status: 0 success, 1 failure (okto, a diverged or stalled loss, --check or --compare),\n"
    "2 bad arguments, config or data.\n";

/* ---- settings -------------------------------------------------------------------------------- */
typedef struct run_cfg {
    okto_model_config model;
    const char *data, *save, *load, *generate, *trace, *progress;
    double holdout, lr, min_lr, momentum, weight_decay, clip, temperature, time_limit;
    double mpi_timeout;
    long epochs, steps, batch, micro, warmup, eval_every, tokens;
    int optimizer, eval, check, json, compare, lanes;
    int dp_overlap; /* under mpirun: all-reduce inside the step graph (1) or after it (0) */
    int train_set; /* epochs or steps given: with --load, training resumes */
    uint64_t seed;
    okto_sched sched;
} run_cfg;

static char cfg_err[512];

static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("okto-train: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    return 2;
}

/* getters: 1 set, 0 absent, < 0 invalid (message printed) */
#define GET(call)                                                                                \
    do {                                                                                         \
        if ((call) < 0)                                                                          \
            return bad("%s", cfg_err);                                                           \
    } while (0)

static int get_long(otu_config *c, const char *k, long lo, long hi, long *v)
{
    return otu_config_long(c, k, lo, hi, v, cfg_err, sizeof cfg_err);
}
static int get_double(otu_config *c, const char *k, double lo, double hi, double *v)
{
    return otu_config_double(c, k, lo, hi, v, cfg_err, sizeof cfg_err);
}
static int get_str(otu_config *c, const char *k, const char **v)
{
    return otu_config_string(c, k, v, cfg_err, sizeof cfg_err);
}
static int get_bool(otu_config *c, const char *k, int *v)
{
    return otu_config_bool(c, k, v, cfg_err, sizeof cfg_err);
}

/* Reads every setting (defaults by model); 0, or 2 after printing why. */
static int read_cfg(otu_config *c, run_cfg *r)
{
    const char *s = "cnn";
    GET(get_str(c, "model", &s));
    int kind = okto_model_parse(s);
    if (kind < 0)
        return bad("model \"%s\": expected mlp, cnn or gpt", s);
    int gpt = kind == OKTO_MODEL_GPT;
    r->model = okto_model_default((okto_model_kind)kind);
    r->data = gpt ? NULL : "digits";
    GET(get_str(c, "data", &r->data));
    r->holdout = 0.2;
    GET(get_double(c, "holdout", 0, 0.99, &r->holdout));
    long v = (long)r->model.width_hidden;
    GET(get_long(c, "width", 1, 65536, &v));
    r->model.width_hidden = (size_t)v;
    v = r->model.layers;
    GET(get_long(c, "layers", 1, 32, &v));
    r->model.layers = (int)v;
    v = r->model.heads;
    GET(get_long(c, "heads", 1, 64, &v));
    r->model.heads = (int)v;
    v = (long)r->model.context;
    GET(get_long(c, "context", 1, 4096, &v));
    r->model.context = (size_t)v;
    v = (long)r->model.channels;
    GET(get_long(c, "channels", 1, 4096, &v));
    r->model.channels = (size_t)v;
    v = (long)r->model.height;
    GET(get_long(c, "height", 1, 4096, &v));
    r->model.height = (size_t)v;
    v = (long)r->model.width;
    GET(get_long(c, "image_width", 1, 4096, &v));
    r->model.width = (size_t)v;
    r->epochs = kind == OKTO_MODEL_MLP ? 60 : 30;
    int set = get_long(c, "epochs", 1, 1000000, &r->epochs);
    GET(set);
    r->train_set = set > 0;
    /* gpt: 900 steps at lr 2e-3 with weight decay 0.1 reach 1.55 nats/char held out on the
     * licences in ~4.5 min here; longer runs overfit the 240 k training characters (lr 2e-3,
     * decay 0.01: holdout 1.586 at step 750, 1.626 at 1000 while the training loss fell) */
    r->steps = gpt ? 900 : 0;
    GET(set = get_long(c, "steps", 0, 100000000, &r->steps));
    r->train_set |= set > 0;
    r->time_limit = 0;
    GET(get_double(c, "time_limit", 0, 1e9, &r->time_limit));
    r->mpi_timeout = 60;
    GET(get_double(c, "mpi_timeout", 0.1, 1e6, &r->mpi_timeout));
    /* cnn: 32 channels, batch 16 and weight decay 0.1 reach >= 98% held out on digits (seeds
     * 1-3: 98.6, 98.6, 99.2 in 30 epochs, ~35 s here); 16 channels at batch 64 stopped at
     * 96.4-98.6 */
    r->batch = kind == OKTO_MODEL_CNN ? 16 : 32;
    GET(get_long(c, "batch", 1, 1 << 20, &r->batch));
    r->micro = 1;
    GET(get_long(c, "micro", 1, 1024, &r->micro));
    if (r->micro > r->batch)
        return bad("micro %ld: at most batch (%ld) micro-batches", r->micro, r->batch);
    s = "adamw";
    GET(get_str(c, "optimizer", &s));
    if (strcmp(s, "adamw") && strcmp(s, "sgd"))
        return bad("optimizer \"%s\": expected adamw or sgd", s);
    r->optimizer = strcmp(s, "sgd") ? OKTO_OPTIM_ADAMW : OKTO_OPTIM_SGD;
    okto_optim d = okto_optim_default((okto_optim_kind)r->optimizer);
    r->lr = r->optimizer == OKTO_OPTIM_SGD ? 0.05 : gpt ? 2e-3 : 3e-3;
    GET(get_double(c, "lr", 0, 1e9, &r->lr));
    r->min_lr = r->lr / 10;
    GET(get_double(c, "min_lr", 0, 100, &r->min_lr));
    r->momentum = d.momentum;
    GET(get_double(c, "momentum", 0, 0.9999, &r->momentum));
    r->weight_decay = kind != OKTO_MODEL_MLP ? 0.1 : d.weight_decay;
    GET(get_double(c, "weight_decay", 0, 10, &r->weight_decay));
    r->warmup = gpt ? 100 : 0;
    GET(get_long(c, "warmup", 0, 100000000, &r->warmup));
    r->clip = gpt ? 1.0 : 0.0;
    GET(get_double(c, "clip", 0, 1e9, &r->clip));
    long seed = 1;
    GET(get_long(c, "seed", 0, 0x7fffffffL, &seed));
    r->seed = (uint64_t)seed;
    r->sched = OKTO_SCHED_AUTO;
    if (get_str(c, "sched", &s) > 0 && okto_sched_from_name(s, &r->sched) != OKTO_OK)
        return bad("sched: %s", okto_last_error(NULL));
    long lanes = 0;
    GET(get_long(c, "lanes", 0, OKTO_MAX_COMPUTE_LANES, &lanes));
    r->lanes = (int)lanes;
    r->eval_every = 100;
    GET(get_long(c, "eval_every", 1, 100000000, &r->eval_every));
    GET(get_str(c, "save", &r->save));
    GET(get_str(c, "load", &r->load));
    GET(get_str(c, "generate", &r->generate));
    GET(get_str(c, "trace", &r->trace));
    r->progress = "auto";
    GET(get_str(c, "progress", &r->progress));
    if (strcmp(r->progress, "auto") && strcmp(r->progress, "lines") && strcmp(r->progress, "off"))
        return bad("progress \"%s\": expected auto, lines or off", r->progress);
    r->tokens = 200;
    GET(get_long(c, "tokens", 1, 1000000, &r->tokens));
    r->temperature = 0.8;
    GET(get_double(c, "temperature", 0, 100, &r->temperature));
    GET(get_bool(c, "eval", &r->eval));
    GET(get_bool(c, "check", &r->check));
    GET(get_bool(c, "json", &r->json));
    GET(get_bool(c, "compare", &r->compare));
    r->dp_overlap = 1;
    GET(get_bool(c, "dp_overlap", &r->dp_overlap));
    if (r->eval && !r->load)
        return bad("eval: evaluates a checkpoint; give it with --load");
    if (r->load && !r->eval && !r->generate && !r->train_set && !r->check)
        return bad("load: give --eval, --generate, or --steps / --epochs to train on from it");
    return 0;
}

/* ---- small helpers --------------------------------------------------------------------------- */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int okto_failed(const char *what, okto_status s)
{
    fprintf(stderr, "okto-train: %s: %s: %s\n", what, okto_status_name(s), okto_last_error(NULL));
    return 1;
}

#define OK(call)                                                                                 \
    do {                                                                                         \
        okto_status ok_s_ = (call);                                                              \
        if (ok_s_ != OKTO_OK) {                                                                  \
            rc = okto_failed(#call, ok_s_);                                                      \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- data-parallel training over MPI --------------------------------------------------------- */
/* rank 0 of 1 without MPI. buf: the host copy of the gradient arena, then the step's loss and a
 * stop flag, all-reduced as one. */
typedef struct dp_state {
    int rank, size;
    float *buf;
    size_t n;
    int thread_level;
} dp_state;
static dp_state DP = {0, 1, NULL, 0, 0};

/* Started by mpirun (Open MPI, or a PMI launcher such as MPICH's hydra or Slurm's). */
static int dp_launched(int *size)
{
    const char *e = getenv("OMPI_COMM_WORLD_SIZE");
    if (!e)
        e = getenv("PMI_SIZE");
    *size = e ? atoi(e) : 1;
    return e != NULL;
}

static int dp_init(int *argc, char ***argv)
{
    int n;
    if (!dp_launched(&n))
        return 0;
#ifdef OKTO_HAVE_MPI
    /* the overlapped all-reduce calls MPI from its own thread, never two threads at once */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &DP.thread_level) != MPI_SUCCESS)
        return bad("MPI_Init_thread failed");
    /* errors come back as codes, so a dead peer gives a message and an abort, not a hang */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &DP.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &DP.size);
    return 0;
#else
    (void)argc, (void)argv;
    if (n > 1)
        return bad("started by mpirun with %d processes, but this okto-train was built without "
                   "MPI (meson configure -Dmpi=enabled)",
                   n);
    return 0;
#endif
}

static void dp_finish(void)
{
#ifdef OKTO_HAVE_MPI
    int n;
    if (dp_launched(&n))
        MPI_Finalize();
#endif
}

/* Sums buf[0..n) over the ranks, polling so a peer that never arrives ends the run within the
 * timeout: MPI_Allreduce itself would wait forever. */
static int dp_allreduce(float *buf, size_t n, double timeout, long step)
{
#ifdef OKTO_HAVE_MPI
    MPI_Request rq;
    char why[MPI_MAX_ERROR_STRING] = "";
    int len = 0, done = 0,
        e = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &rq);
    double t0 = now_s();
    while (e == MPI_SUCCESS && !done) {
        e = MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (e == MPI_SUCCESS && !done) {
            if (now_s() - t0 > timeout) {
                fprintf(stderr,
                        "okto-train: rank %d of %d: the gradient all-reduce of step %ld did not "
                        "complete within %g s (--mpi-timeout): another rank died or stalled; "
                        "aborting every rank\n",
                        DP.rank, DP.size, step + 1, timeout);
                MPI_Abort(MPI_COMM_WORLD, 1);
                return 1;
            }
            nanosleep(&(struct timespec){0, 50000}, NULL);
        }
    }
    if (e != MPI_SUCCESS) {
        MPI_Error_string(e, why, &len);
        fprintf(stderr,
                "okto-train: rank %d of %d: the gradient all-reduce of step %ld failed: "
                "%s; aborting every rank\n",
                DP.rank, DP.size, step + 1, why);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    return 0;
#else
    (void)buf, (void)n, (void)timeout, (void)step;
    return 0;
#endif
}

/* After a step graph's backward: the gradients (and *loss, and *stop) averaged over the ranks,
 * back in the arena, then the update graph. */
/* Test hooks (tests/test_train_mpi.sh): OKTO_TRAIN_DP_FAULT="die:RANK:STEP" kills that rank
 * (SIGKILL) before the all-reduce of that step; "stall:RANK:STEP" makes it sleep there. */
static void dp_fault(long step)
{
    const char *e = getenv("OKTO_TRAIN_DP_FAULT");
    char kind[8];
    int rank;
    long at;
    if (!e || sscanf(e, "%7[a-z]:%d:%ld", kind, &rank, &at) != 3 || rank != DP.rank ||
        at != step + 1)
        return;
    fprintf(stderr, "okto-train: rank %d: OKTO_TRAIN_DP_FAULT: %s at step %ld\n", rank, kind, at);
    if (!strcmp(kind, "die"))
        raise(SIGKILL);
    for (;;)
        nanosleep(&(struct timespec){1, 0}, NULL);
}

static okto_status dp_step(okto_nn *nn, okto_graph *update, double timeout, long step, float *loss,
                           int *stop)
{
    dp_fault(step);
    okto_tensor *ga = okto_nn_grad_arena(nn);
    size_t n = okto_tensor_numel(ga);
    if (!DP.buf) {
        if (!(DP.buf = malloc((n + 2) * sizeof *DP.buf)))
            return OKTO_ENOMEM;
        DP.n = n;
    }
    okto_status s = okto_tensor_read(ga, DP.buf);
    if (s != OKTO_OK)
        return s;
    DP.buf[n] = *loss;
    DP.buf[n + 1] = (float)*stop;
    if (dp_allreduce(DP.buf, n + 2, timeout, step))
        return OKTO_EINVAL;
    float inv = 1.0f / (float)DP.size;
    for (size_t i = 0; i <= n; i++)
        DP.buf[i] *= inv;
    *loss = DP.buf[n];
    *stop = DP.buf[n + 1] > 0;
    if ((s = okto_tensor_write(ga, DP.buf)) != OKTO_OK)
        return s;
    return okto_graph_run(update);
}

/* The all-reduce inside the step graph (--dp-overlap 1): one okto_host_task per parameter's
 * gradient, recorded last parameter first (the order the backward finishes them), chained by a
 * token tensor so they run in that order on every rank. Each task's callback marks its bucket
 * ready; one worker thread all-reduces the buckets in that fixed order (MPI collectives must be
 * called in the same order on every rank) and completes each task's user event, after which
 * okto writes the averaged gradient back and the update, which reads them all, may start. The
 * rest of the backward runs meanwhile. */
typedef struct dp_bucket {
    float *host;
    size_t n;
    cl_event finish;
    int ready;
} dp_bucket;

typedef struct dp_worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    dp_bucket *b;
    int nb, stop, started;
    double timeout;
    long step;
    okto_tensor *token;
} dp_worker;
static dp_worker DW = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void dp_bucket_ready(void *user, cl_event finish)
{
    dp_bucket *b = user;
    pthread_mutex_lock(&DW.lock);
    b->finish = finish;
    b->ready = 1;
    pthread_cond_broadcast(&DW.cond);
    pthread_mutex_unlock(&DW.lock);
}

static void *dp_worker_main(void *arg)
{
    (void)arg;
    for (;;)
        for (int k = 0; k < DW.nb; k++) {
            pthread_mutex_lock(&DW.lock);
            while (!DW.b[k].ready && !DW.stop)
                pthread_cond_wait(&DW.cond, &DW.lock);
            if (DW.stop) {
                pthread_mutex_unlock(&DW.lock);
                return NULL;
            }
            dp_bucket *b = &DW.b[k];
            cl_event fin = b->finish;
            long step = DW.step;
            b->ready = 0;
            pthread_mutex_unlock(&DW.lock);
            dp_allreduce(b->host, b->n, DW.timeout, step); /* aborts every rank on failure */
            float inv = 1.0f / (float)DP.size;
            for (size_t i = 0; i < b->n; i++)
                b->host[i] *= inv;
            clSetUserEventStatus(fin, CL_COMPLETE);
            clReleaseEvent(fin);
        }
}

static okto_status dp_record(okto_context *ctx, okto_graph *g, okto_nn *nn, double timeout)
{
    int np = okto_nn_param_count(nn);
    okto_status s = OKTO_OK;
    if (!DW.b) {
        if (!(DW.b = calloc((size_t)np, sizeof *DW.b)))
            return OKTO_ENOMEM;
        DW.nb = np;
        DW.timeout = timeout;
        for (int k = 0; k < np && s == OKTO_OK; k++) {
            okto_tensor *gt;
            s = okto_nn_param_at(nn, np - 1 - k, NULL, NULL, &gt);
            DW.b[k].n = s == OKTO_OK ? okto_tensor_numel(gt) : 0;
            if (s == OKTO_OK && !(DW.b[k].host = malloc(DW.b[k].n * sizeof(float))))
                s = OKTO_ENOMEM;
        }
        if (s == OKTO_OK)
            s = okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){1}, &DW.token);
        if (s == OKTO_OK && pthread_create(&DW.thread, NULL, dp_worker_main, NULL) != 0)
            s = OKTO_ENOMEM;
        DW.started = s == OKTO_OK;
    }
    for (int k = 0; k < np && s == OKTO_OK; k++) {
        okto_tensor *gt;
        if ((s = okto_nn_param_at(nn, np - 1 - k, NULL, NULL, &gt)) == OKTO_OK)
            s = okto_host_task(g, gt, DW.b[k].host, dp_bucket_ready, &DW.b[k], DW.token);
    }
    return s;
}

static void dp_worker_stop(void)
{
    if (DW.started) {
        pthread_mutex_lock(&DW.lock);
        DW.stop = 1;
        pthread_cond_broadcast(&DW.cond);
        pthread_mutex_unlock(&DW.lock);
        pthread_join(DW.thread, NULL);
    }
    for (int k = 0; k < DW.nb; k++)
        free(DW.b[k].host);
    free(DW.b);
    okto_tensor_destroy(DW.token);
    memset(&DW.b, 0, sizeof DW - offsetof(dp_worker, b));
}

/* ---- data ------------------------------------------------------------------------------------ */
typedef struct data {
    int gpt;
    otu_dataset d;        /* mlp, cnn */
    size_t *train, *hold, ntrain, nhold;
    otu_corpus text;      /* gpt */
    size_t split;         /* gpt: tokens [0, split) train, the rest held out */
} data;

static int load_data(run_cfg *r, data *D)
{
    memset(D, 0, sizeof *D);
    D->gpt = r->model.kind == OKTO_MODEL_GPT;
    int s;
    if (D->gpt) {
        s = otu_corpus_load(r->data, 256, &D->text, cfg_err, sizeof cfg_err);
        if (s != OTU_OK)
            return bad("%s", cfg_err);
        D->split = otu_corpus_split(&D->text, r->holdout);
        if (D->split < r->model.context + 2 ||
            (r->holdout > 0 && D->text.ntokens - D->split < r->model.context + 2))
            return bad("%s: %zu characters are too few for a context of %zu and holdout %g",
                       r->data ? r->data : OTU_LICENSES_DIR, D->text.ntokens, r->model.context,
                       r->holdout);
        return 0;
    }
    s = strcmp(r->data, "digits") == 0 ? otu_digits_load(NULL, &D->d, cfg_err, sizeof cfg_err)
                                       : otu_csv_load(r->data, &D->d, cfg_err, sizeof cfg_err);
    if (s != OTU_OK)
        return bad("%s", cfg_err);
    D->train = malloc(D->d.n * sizeof *D->train);
    D->hold = malloc(D->d.n * sizeof *D->hold);
    if (!D->train || !D->hold)
        return bad("out of memory");
    if (otu_split(D->d.n, D->d.y, D->d.classes, r->holdout, r->seed, D->train, &D->ntrain,
                  D->hold, &D->nhold, cfg_err, sizeof cfg_err) != OTU_OK)
        return bad("%s", cfg_err);
    return 0;
}

static void free_data(data *D)
{
    otu_dataset_free(&D->d);
    otu_corpus_free(&D->text);
    free(D->train);
    free(D->hold);
}

/* The model's shape from the data (and the checks that they fit). */
static int fit_model(run_cfg *r, const data *D)
{
    okto_model_config *m = &r->model;
    if (D->gpt) {
        m->classes = (size_t)D->text.vocab;
        return 0;
    }
    m->classes = (size_t)D->d.classes;
    if (m->kind == OKTO_MODEL_MLP) {
        m->features = D->d.features;
        return 0;
    }
    if (m->channels * m->height * m->width != D->d.features)
        return bad("cnn: images of %zu x %zu x %zu are %zu values, but %s has %zu features per "
                   "row (set channels, height and image_width)",
                   m->channels, m->height, m->width, m->channels * m->height * m->width, r->data,
                   D->d.features);
    return 0;
}

/* ---- checkpoints ----------------------------------------------------------------------------- */
static int save_checkpoint(const run_cfg *r, okto_nn *nn, const data *D, const char *path)
{
    otu_st_writer *w = NULL;
    int n = okto_nn_param_count(nn), rc = 1;
    float **bufs = calloc((size_t)n * 3, sizeof *bufs);
    char meta[64], *vocab = NULL;
    if (!bufs || otu_st_writer_create(&w) != OTU_OK)
        goto out;
    for (int i = 0; i < n; i++) {
        const char *name;
        okto_tensor *t[3];
        if (okto_nn_param_at(nn, i, &name, &t[0], NULL) != OKTO_OK ||
            okto_nn_param_state(nn, i, &t[1], &t[2]) != OKTO_OK)
            goto out;
        int64_t shape[4];
        int rank = okto_tensor_rank(t[0]);
        for (int d = 0; d < rank; d++)
            shape[d] = (int64_t)okto_tensor_dim(t[0], d);
        for (int k = 0; k < 3; k++) {
            char full[160];
            snprintf(full, sizeof full, "%s%s", k == 0 ? "" : k == 1 ? "optimizer.m." : "optimizer.v.",
                     name);
            bufs[3 * i + k] = malloc(okto_tensor_numel(t[0]) * sizeof(float));
            if (!bufs[3 * i + k] || okto_tensor_read_f32(t[k], bufs[3 * i + k]) != OKTO_OK ||
                otu_st_writer_add(w, full, OTU_F32, rank, shape, bufs[3 * i + k], cfg_err,
                                  sizeof cfg_err) != OTU_OK)
                goto out;
        }
    }
    const okto_model_config *m = &r->model;
    long steps = 0;
    okto_nn_steps(nn, &steps);
    struct {
        const char *k;
        long v;
    } ints[] = {{"okto.width", (long)m->width_hidden}, {"okto.layers", m->layers},
                {"okto.heads", m->heads},              {"okto.context", (long)m->context},
                {"okto.classes", (long)m->classes},    {"okto.features", (long)m->features},
                {"okto.channels", (long)m->channels},  {"okto.height", (long)m->height},
                {"okto.image_width", (long)m->width},  {"okto.steps", steps}};
    if (otu_st_writer_meta(w, "okto.model", okto_model_name(m->kind), cfg_err, sizeof cfg_err))
        goto out;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        snprintf(meta, sizeof meta, "%ld", ints[i].v);
        if (otu_st_writer_meta(w, ints[i].k, meta, cfg_err, sizeof cfg_err) != OTU_OK)
            goto out;
    }
    if (D->gpt) { /* the vocabulary: code points in hex, id order */
        vocab = malloc((size_t)D->text.vocab * 9 + 1);
        size_t at = 0;
        for (int i = 0; vocab && i < D->text.vocab; i++)
            at += (size_t)sprintf(vocab + at, "%s%x", i ? "," : "", D->text.chars[i]);
        if (!vocab || otu_st_writer_meta(w, "okto.vocab", vocab, cfg_err, sizeof cfg_err))
            goto out;
    }
    if (otu_st_writer_write(w, path, cfg_err, sizeof cfg_err) != OTU_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "okto-train: saving %s: %s\n", path,
                cfg_err[0] ? cfg_err : okto_last_error(NULL));
    for (int i = 0; bufs && i < 3 * n; i++)
        free(bufs[i]);
    free(bufs);
    free(vocab);
    otu_st_writer_destroy(w);
    return rc;
}

/* The checkpoint's model settings into r (they win over the config's). */
static int checkpoint_model(run_cfg *r, otu_st_file **out)
{
    int s = otu_st_open(r->load, out, cfg_err, sizeof cfg_err);
    if (s != OTU_OK)
        return bad("%s", cfg_err);
    const char *kind = otu_st_meta(*out, "okto.model");
    int k = okto_model_parse(kind);
    if (k < 0)
        return bad("%s: no okto.model in its metadata (not an okto-train checkpoint)", r->load);
    okto_model_config m = okto_model_default((okto_model_kind)k);
    struct {
        const char *k;
        size_t *v;
        int *iv;
    } f[] = {{"okto.width", &m.width_hidden, NULL}, {"okto.layers", NULL, &m.layers},
             {"okto.heads", NULL, &m.heads},        {"okto.context", &m.context, NULL},
             {"okto.classes", &m.classes, NULL},    {"okto.features", &m.features, NULL},
             {"okto.channels", &m.channels, NULL},  {"okto.height", &m.height, NULL},
             {"okto.image_width", &m.width, NULL}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        const char *v = otu_st_meta(*out, f[i].k);
        if (!v)
            return bad("%s: no %s in its metadata", r->load, f[i].k);
        long x = strtol(v, NULL, 10);
        if (f[i].v)
            *f[i].v = (size_t)x;
        else
            *f[i].iv = (int)x;
    }
    if (r->model.kind != m.kind)
        fprintf(stderr, "okto-train: %s holds a %s model: using it\n", r->load,
                okto_model_name(m.kind));
    r->model = m;
    return 0;
}

/* The checkpoint's parameters (and optimizer state, and step count) into nn. */
static int load_params(const run_cfg *r, okto_nn *nn, otu_st_file *f)
{
    int n = okto_nn_param_count(nn);
    for (int i = 0; i < n; i++) {
        const char *name;
        okto_tensor *t[3];
        if (okto_nn_param_at(nn, i, &name, &t[0], NULL) != OKTO_OK ||
            okto_nn_param_state(nn, i, &t[1], &t[2]) != OKTO_OK)
            return okto_failed("okto_nn_param_at", OKTO_ESTATE);
        int64_t shape[4];
        int rank = okto_tensor_rank(t[0]);
        for (int d = 0; d < rank; d++)
            shape[d] = (int64_t)okto_tensor_dim(t[0], d);
        for (int k = 0; k < 3; k++) {
            char full[160];
            snprintf(full, sizeof full, "%s%s", k == 0 ? "" : k == 1 ? "optimizer.m." : "optimizer.v.",
                     name);
            const otu_st_tensor *st;
            if (otu_st_expect(f, full, OTU_F32, rank, shape, &st, cfg_err, sizeof cfg_err) != OTU_OK) {
                if (k) /* no optimizer state: a fresh optimizer */
                    continue;
                return bad("%s", cfg_err);
            }
            float *buf = malloc(st->nbytes);
            okto_status s = OKTO_ENOMEM;
            if (buf && otu_st_read(st, buf, st->nbytes) == OTU_OK)
                s = okto_tensor_write_f32(t[k], buf);
            free(buf);
            if (s != OKTO_OK)
                return okto_failed("loading a parameter", s);
        }
    }
    const char *steps = otu_st_meta(f, "okto.steps");
    if (steps) {
        okto_status s = okto_nn_set_steps(nn, strtol(steps, NULL, 10));
        if (s != OKTO_OK)
            return okto_failed("okto_nn_set_steps", s);
    }
    (void)r;
    return 0;
}

/* ---- the step graph -------------------------------------------------------------------------- */
typedef struct stepper {
    okto_graph *g;
    okto_tensor *loss;         /* the step's loss (mean over the batch) */
    okto_tensor *in[2 * 1024]; /* per micro-batch: inputs, labels */
    float *x;                  /* staging: the batch's data (mlp, cnn) */
    int32_t *ids, *labels;     /* staging: gpt ids, and labels */
    float loss_host;
    /* per micro-batch, the task index where its forward and its backward start, and the end:
     * what --trace prints so a trace can be read by micro-batch */
    int fwd0[1024], bwd0[1024], end;
} stepper;

static size_t row_len(const run_cfg *r)
{
    const okto_model_config *m = &r->model;
    return m->kind == OKTO_MODEL_GPT   ? m->context
           : m->kind == OKTO_MODEL_MLP ? m->features
                                       : m->channels * m->height * m->width;
}

static okto_status micro_tensors(okto_context *ctx, const run_cfg *r, size_t rows,
                                 okto_tensor **x, okto_tensor **y)
{
    const okto_model_config *m = &r->model;
    okto_status s;
    if (m->kind == OKTO_MODEL_GPT) {
        s = okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){rows, m->context}, x);
        return s == OKTO_OK ? okto_tensor_create(ctx, OKTO_I32, 1,
                                                 (size_t[]){rows * m->context}, y)
                            : s;
    }
    if (m->kind == OKTO_MODEL_MLP)
        s = okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){rows, m->features}, x);
    else
        s = okto_tensor_create(ctx, OKTO_F32, 4, (size_t[]){rows, m->channels, m->height, m->width},
                               x);
    return s == OKTO_OK ? okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){rows}, y) : s;
}

/* Records forward + loss + backward per micro-batch (uploads from the staging buffers first),
 * then, when opt is not NULL, the optimizer step, and the loss's download. */
static okto_status record_step(okto_context *ctx, okto_nn *nn, const run_cfg *r, size_t batch,
                               const okto_optim *opt, stepper *st)
{
    int gpt = r->model.kind == OKTO_MODEL_GPT;
    size_t len = row_len(r);
    okto_status s = okto_graph_create(ctx, &st->g);
    if (s == OKTO_OK && r->sched != OKTO_SCHED_AUTO)
        s = okto_graph_set_sched(st->g, r->sched);
    st->x = gpt ? NULL : malloc(batch * len * sizeof *st->x);
    st->ids = gpt ? malloc(batch * len * sizeof *st->ids) : NULL;
    st->labels = malloc(batch * (gpt ? len : 1) * sizeof *st->labels);
    if (s == OKTO_OK && (!(gpt ? (void *)st->ids : (void *)st->x) || !st->labels))
        s = OKTO_ENOMEM;
    okto_tensor *total = NULL;
    int M = (int)r->micro;
    for (int m = 0; m < M && s == OKTO_OK; m++) {
        size_t r0 = batch * (size_t)m / (size_t)M, r1 = batch * (size_t)(m + 1) / (size_t)M;
        okto_tensor **x = &st->in[2 * m], **y = &st->in[2 * m + 1], *logits, *loss;
        if ((s = micro_tensors(ctx, r, r1 - r0, x, y)) != OKTO_OK)
            break;
        st->fwd0[m] = okto_graph_task_count(st->g); /* its uploads count as its forward */
        if (gpt)
            s = okto_upload(st->g, *x, st->ids + r0 * len);
        else
            s = okto_upload(st->g, *x, st->x + r0 * len);
        if (s == OKTO_OK)
            s = okto_upload(st->g, *y, st->labels + r0 * (gpt ? len : 1));
        if (s == OKTO_OK)
            s = okto_nn_forward(st->g, nn, *x, &logits);
        /* each micro-batch's mean loss weighted by its share of the batch: the batch's mean */
        if (s == OKTO_OK)
            s = okto_nn_loss(st->g, nn, logits, *y, (float)(r1 - r0) / (float)batch, &loss);
        st->bwd0[m] = okto_graph_task_count(st->g);
        if (s == OKTO_OK)
            s = okto_nn_backward(st->g, nn, loss, m ? OKTO_ACCUMULATE : 0);
        if (s == OKTO_OK && !total)
            total = loss;
        else if (s == OKTO_OK)
            s = okto_zip(st->g, total, total, loss, OKTO_ZIP_ADD);
    }
    st->end = okto_graph_task_count(st->g);
    if (s == OKTO_OK && opt && DP.size > 1) /* overlapped all-reduce: the update waits on it */
        s = dp_record(ctx, st->g, nn, r->mpi_timeout);
    if (s == OKTO_OK && opt)
        s = okto_nn_update(st->g, nn, opt);
    if (s == OKTO_OK)
        s = okto_download(st->g, &st->loss_host, total);
    st->loss = total;
    return s;
}

static void free_step(stepper *st, int micro)
{
    okto_graph_destroy(st->g);
    for (int i = 0; i < 2 * micro; i++)
        okto_tensor_destroy(st->in[i]);
    free(st->x);
    free(st->ids);
    free(st->labels);
    memset(st, 0, sizeof *st);
}

/* ---- evaluation ------------------------------------------------------------------------------ */
/* Classifier accuracy over rows[0..n) in chunks of up to 256 (one graph per chunk size). */
static okto_status accuracy(okto_context *ctx, okto_nn *nn, const run_cfg *r, const data *D,
                            const size_t *rows, size_t n, double *acc)
{
    size_t chunk = n < 256 ? n : 256, len = row_len(r), right = 0;
    okto_status s = OKTO_OK;
    float *x = malloc(chunk * len * sizeof *x);
    int32_t *pred = malloc(chunk * sizeof *pred), *lab = malloc(chunk * sizeof *lab);
    okto_graph *g[2] = {NULL, NULL};
    okto_tensor *xt[2] = {NULL, NULL}, *pt[2] = {NULL, NULL};
    size_t sizes[2] = {chunk, n % chunk};
    if (!x || !pred || !lab)
        s = OKTO_ENOMEM;
    for (int k = 0; k < 2 && s == OKTO_OK; k++) {
        if (!sizes[k])
            continue;
        okto_tensor *logits, *dummy;
        if ((s = okto_graph_create(ctx, &g[k])) != OKTO_OK ||
            (s = micro_tensors(ctx, r, sizes[k], &xt[k], &dummy)) != OKTO_OK)
            break;
        okto_tensor_destroy(dummy);
        if ((s = okto_tensor_create(ctx, OKTO_I32, 1, &sizes[k], &pt[k])) == OKTO_OK &&
            (s = okto_upload(g[k], xt[k], x)) == OKTO_OK &&
            (s = okto_nn_forward(g[k], nn, xt[k], &logits)) == OKTO_OK &&
            (s = okto_argmax(g[k], pt[k], logits)) == OKTO_OK)
            s = okto_download(g[k], pred, pt[k]);
    }
    for (size_t at = 0; at < n && s == OKTO_OK;) {
        size_t m = n - at < chunk ? n - at : chunk;
        otu_dataset_gather(&D->d, rows + at, m, x, lab);
        if ((s = okto_graph_run(g[m == chunk ? 0 : 1])) != OKTO_OK)
            break;
        for (size_t i = 0; i < m; i++)
            right += pred[i] == lab[i];
        at += m;
    }
    *acc = n ? (double)right / (double)n : 0;
    for (int k = 0; k < 2; k++) {
        okto_graph_destroy(g[k]);
        okto_tensor_destroy(xt[k]);
        okto_tensor_destroy(pt[k]);
    }
    free(x);
    free(pred);
    free(lab);
    return s;
}

/* gpt: the mean loss over nb fixed batches of held-out windows. */
typedef struct evaler {
    stepper st;
    int nb;
    int32_t *ids, *labels; /* nb batches of windows, drawn once */
} evaler;

static okto_status text_eval_init(okto_context *ctx, okto_nn *nn, const run_cfg *r,
                                  const data *D, evaler *e)
{
    memset(e, 0, sizeof *e);
    size_t T = r->model.context, B = (size_t)r->batch, nhold = D->text.ntokens - D->split;
    e->nb = 8;
    e->ids = malloc((size_t)e->nb * B * T * sizeof *e->ids);
    e->labels = malloc((size_t)e->nb * B * T * sizeof *e->labels);
    if (!e->ids || !e->labels)
        return OKTO_ENOMEM;
    otu_rng rng;
    otu_rng_seed(&rng, r->seed ^ 0x5eedull);
    for (int b = 0; b < e->nb; b++)
        otu_token_batch(&rng, D->text.tokens + D->split, nhold, T, B, e->ids + (size_t)b * B * T,
                        e->labels + (size_t)b * B * T);
    run_cfg one = *r;
    one.micro = 1;
    return record_step(ctx, nn, &one, B, NULL, &e->st);
}

static okto_status text_eval(evaler *e, const run_cfg *r, double *loss)
{
    size_t n = (size_t)r->batch * r->model.context;
    double sum = 0;
    for (int b = 0; b < e->nb; b++) {
        memcpy(e->st.ids, e->ids + (size_t)b * n, n * sizeof *e->ids);
        memcpy(e->st.labels, e->labels + (size_t)b * n, n * sizeof *e->labels);
        okto_status s = okto_graph_run(e->st.g);
        if (s != OKTO_OK)
            return s;
        sum += e->st.loss_host;
    }
    *loss = sum / e->nb;
    return OKTO_OK;
}

static void text_eval_free(evaler *e)
{
    free_step(&e->st, 1);
    free(e->ids);
    free(e->labels);
}

/* ---- generation ------------------------------------------------------------------------------ */
static int generate(okto_context *ctx, okto_nn *nn, const run_cfg *r, const otu_corpus *voc)
{
    size_t T = r->model.context, V = r->model.classes, cap = strlen(r->generate) + 1;
    int32_t *seq = malloc((cap + (size_t)r->tokens) * sizeof *seq), *win = malloc(T * sizeof *win);
    float *logits = malloc(T * V * sizeof *logits);
    double *p = malloc(V * sizeof *p);
    char *text = malloc(4 * ((size_t)r->tokens + cap) + 1);
    okto_graph *g = NULL;
    okto_tensor *ids = NULL, *out;
    int rc = 1;
    size_t n = 0, len;
    if (!seq || !win || !logits || !p || !text) {
        fprintf(stderr, "okto-train: out of memory\n");
        goto done;
    }
    if (otu_corpus_encode(voc, r->generate, strlen(r->generate), seq, cap, &n, cfg_err,
                          sizeof cfg_err) != OTU_OK) {
        rc = bad("generate: %s", cfg_err);
        goto done;
    }
    OK(okto_graph_create(ctx, &g));
    OK(okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){1, T}, &ids));
    OK(okto_upload(g, ids, win));
    OK(okto_nn_forward(g, nn, ids, &out));
    OK(okto_download(g, logits, out));
    otu_rng rng;
    otu_rng_seed(&rng, r->seed * 7919 + 1);
    size_t start = n;
    for (long t = 0; t < r->tokens; t++) {
        /* the last T tokens, padded after: causal attention makes the padding invisible */
        size_t have = n < T ? n : T, at = have ? have - 1 : 0;
        memset(win, 0, T * sizeof *win);
        if (have)
            memcpy(win, seq + n - have, have * sizeof *win);
        OK(okto_graph_run(g));
        const float *row = logits + at * V;
        size_t next = 0;
        if (r->temperature <= 0) {
            for (size_t v = 1; v < V; v++)
                next = row[v] > row[next] ? v : next;
        } else {
            double mx = -INFINITY, sum = 0;
            for (size_t v = 0; v < V; v++)
                mx = fmax(mx, row[v]);
            for (size_t v = 0; v < V; v++)
                sum += p[v] = exp((row[v] - mx) / r->temperature);
            double u = otu_rng_uniform(&rng) * sum;
            for (next = 0; next + 1 < V && (u -= p[next]) > 0; next++)
                ;
        }
        seq[n++] = (int32_t)next;
    }
    (void)start;
    if (otu_corpus_decode(voc, seq, n, text, 4 * n + 1, &len) != OTU_OK) {
        fprintf(stderr, "okto-train: generate: a token outside the vocabulary\n");
        goto done;
    }
    if (r->json) {
        fputs("\"generated\": \"", stdout);
        for (const char *c = text; *c; c++) {
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if ((unsigned char)*c < 0x20)
                printf("\\u%04x", (unsigned char)*c);
            else
                putchar(*c);
        }
        fputs("\",\n", stdout);
    } else {
        printf("generated:\n%s\n", text);
    }
    rc = 0;
done:
    okto_graph_destroy(g);
    okto_tensor_destroy(ids);
    free(seq);
    free(win);
    free(logits);
    free(p);
    free(text);
    return rc;
}

/* ---- --check --------------------------------------------------------------------------------- */
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

/* The first batch's loss and gradients on okto and on the double host model. */
static int check(okto_context *ctx, okto_nn *nn, run_cfg *r, const data *D)
{
    size_t B = (size_t)(r->batch < 8 ? r->batch : 8), T = r->model.context;
    run_cfg c = *r;
    if (c.micro > (long)B)
        c.micro = (long)B;
    stepper st = {0};
    int rc = 1, n = okto_nn_param_count(nn);
    double **p = calloc((size_t)n, sizeof *p), **gr = calloc((size_t)n, sizeof *gr);
    float *tmp = NULL;
    okto_status s = record_step(ctx, nn, &c, B, NULL, &st);
    if (s != OKTO_OK) {
        rc = okto_failed("recording the check step", s);
        goto out;
    }
    if (D->gpt) {
        otu_rng rng;
        otu_rng_seed(&rng, r->seed);
        otu_token_batch(&rng, D->text.tokens, D->split, T, B, st.ids, st.labels);
    } else {
        otu_dataset_gather(&D->d, D->train, B, st.x, st.labels);
    }
    if ((s = okto_graph_run(st.g)) != OKTO_OK) {
        rc = okto_failed("running the check step", s);
        goto out;
    }
    otu_ref_config rc_ = ref_of(&r->model);
    size_t numel[512];
    if (otu_ref_params(&rc_, NULL) != n || n > 512) {
        fprintf(stderr, "okto-train: check: %d parameters, the reference model %d\n", n,
                otu_ref_params(&rc_, NULL));
        goto out;
    }
    otu_ref_params(&rc_, numel);
    for (int i = 0; i < n; i++) {
        okto_tensor *t;
        okto_nn_param_at(nn, i, NULL, &t, NULL);
        p[i] = malloc(numel[i] * sizeof **p);
        gr[i] = malloc(numel[i] * sizeof **gr);
        tmp = realloc(tmp, numel[i] * sizeof *tmp);
        if (!p[i] || !gr[i] || !tmp || okto_tensor_read_f32(t, tmp) != OKTO_OK)
            goto out;
        for (size_t e = 0; e < numel[i]; e++)
            p[i][e] = tmp[e];
    }
    double want = otu_ref_step(&rc_, (const double *const *)p, gr, st.x, st.ids, st.labels, B, T);
    double lerr = fabs(st.loss_host - want) / fmax(1.0, fabs(want)), worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < n; i++) {
        okto_tensor *g;
        const char *name;
        okto_nn_param_at(nn, i, &name, NULL, &g);
        tmp = realloc(tmp, numel[i] * sizeof *tmp);
        if (!tmp || okto_tensor_read_f32(g, tmp) != OKTO_OK)
            goto out;
        double mx = 0, err = 0;
        for (size_t e = 0; e < numel[i]; e++)
            mx = fmax(mx, fabs(gr[i][e]));
        for (size_t e = 0; e < numel[i]; e++)
            err = fmax(err, fabs(tmp[e] - gr[i][e]));
        double rel = err / fmax(mx, 1e-12);
        if (rel > worst)
            worst = rel, worst_name = name;
    }
    int pass = lerr <= CHECK_TOL && worst <= CHECK_TOL;
    if (r->json)
        printf("\"check\": {\"loss\": %.9g, \"reference_loss\": %.9g, \"loss_rel_err\": %.3g, "
               "\"params\": %d, \"worst_grad_rel_err\": %.3g, \"worst_param\": \"%s\", "
               "\"tolerance\": %g, \"pass\": %s},\n",
               st.loss_host, want, lerr, n, worst, worst_name, CHECK_TOL, pass ? "true" : "false");
    else
        printf("check: %s, batch %zu in %ld micro-batches: loss %.7g (double %.7g, rel err %.2g); "
               "%d gradients, worst %.2g of its largest value (%s); tolerance %g: %s\n",
               okto_model_name(r->model.kind), B, c.micro, st.loss_host, want, lerr, n, worst,
               worst_name, CHECK_TOL, pass ? "pass" : "FAIL");
    rc = pass ? 0 : 1;
out:
    for (int i = 0; i < n && p; i++) {
        free(p[i]);
        free(gr[i]);
    }
    free(p);
    free(gr);
    free(tmp);
    free_step(&st, (int)c.micro);
    return rc;
}

/* ---- training -------------------------------------------------------------------------------- */
typedef struct result {
    double *losses;   /* per step */
    long nsteps;
    double step_ms, train_loss, holdout; /* holdout: accuracy or loss */
    double seconds;
} result;

static void json_str(const char *k, const char *v, int comma)
{
    printf("\"%s\": \"%s\"%s", k, v, comma ? ", " : "");
}

static int train(okto_context *ctx, run_cfg *r, data *D, otu_st_file *ckpt, int quiet,
                 result *res)
{
    int rc = 0, gpt = D->gpt;
    okto_nn *nn = NULL;
    stepper st = {0};
    evaler ev = {0};
    otu_batcher bt = {0};
    otu_progress prog;
    otu_watchdog wd;
    double *ms = NULL;
    size_t B = (size_t)r->batch, Bl = B / (size_t)DP.size; /* global batch, this rank's slice */
    okto_graph *update = NULL; /* data-parallel: the optimizer step, after the all-reduce */
    float *gx = NULL;          /* data-parallel: the global batch, staged */
    int32_t *gids = NULL, *glabels = NULL;
    okto_optim opt = okto_optim_default((okto_optim_kind)r->optimizer);
    opt.lr = (float)r->lr;
    opt.momentum = (float)r->momentum;
    opt.weight_decay = (float)r->weight_decay;
    opt.clip_norm = (float)r->clip;
    memset(res, 0, sizeof *res);
    OK(okto_nn_create(ctx, OKTO_F32, r->seed, &nn));
    OK(okto_nn_model(nn, &r->model));
    OK(okto_nn_allocate(nn));
    if (ckpt && (rc = load_params(r, nn, ckpt)) != 0)
        goto done;
    if (r->check) {
        rc = check(ctx, nn, r, D);
        goto done;
    }
    if (r->eval || (ckpt && !r->train_set)) { /* inference: nothing trained */
        if (gpt) {
            OK(text_eval_init(ctx, nn, r, D, &ev));
            OK(text_eval(&ev, r, &res->holdout));
        } else {
            const size_t *rows = r->holdout > 0 ? D->hold : D->train;
            size_t nr = r->holdout > 0 ? D->nhold : D->ntrain;
            OK(accuracy(ctx, nn, r, D, rows, nr, &res->holdout));
        }
        goto generate_and_save;
    }
    long per_epoch = gpt ? r->eval_every : (long)(D->ntrain / B);
    if (!gpt && per_epoch < 1) {
        rc = bad("batch %zu is larger than the %zu training rows", B, D->ntrain);
        goto done;
    }
    long total = gpt ? r->steps : r->epochs * per_epoch;
    if (!gpt && r->steps > 0 && r->steps < total)
        total = r->steps;
    res->losses = calloc((size_t)total + 1, sizeof *res->losses);
    ms = calloc((size_t)total + 1, sizeof *ms);
    if (!res->losses || !ms) {
        rc = bad("out of memory");
        goto done;
    }
    /* data-parallel: the all-reduce inside the step (an update in it) or after it (none) */
    int overlap = DP.size > 1 && r->dp_overlap && DP.thread_level >= DP_SERIALIZED;
    OK(record_step(ctx, nn, r, Bl, DP.size > 1 && !overlap ? NULL : &opt, &st));
    size_t len = row_len(r);
    if (DP.size > 1 && !overlap) {
        OK(okto_graph_create(ctx, &update));
        if (r->sched != OKTO_SCHED_AUTO)
            OK(okto_graph_set_sched(update, r->sched));
        OK(okto_nn_update(update, nn, &opt));
    }
    if (DP.size > 1) {
        gx = gpt ? NULL : malloc(B * len * sizeof *gx);
        gids = gpt ? malloc(B * len * sizeof *gids) : NULL;
        glabels = malloc(B * (gpt ? len : 1) * sizeof *glabels);
        if (!(gpt ? (void *)gids : (void *)gx) || !glabels) {
            rc = bad("out of memory");
            goto done;
        }
    }
    if (gpt) {
        if (r->holdout > 0)
            OK(text_eval_init(ctx, nn, r, D, &ev));
    } else if (otu_batcher_init(&bt, D->train, D->ntrain, B, r->seed, OTU_BATCH_SHUFFLE |
                                OTU_BATCH_DROP_LAST, cfg_err, sizeof cfg_err) != OTU_OK) {
        rc = bad("%s", cfg_err);
        goto done;
    }
    otu_progress_mode pm = quiet || !strcmp(r->progress, "off") ? OTU_PROGRESS_OFF
                           : !strcmp(r->progress, "lines")      ? OTU_PROGRESS_LINES
                                                                : OTU_PROGRESS_AUTO;
    otu_progress_init(&prog, stderr, pm, (uint64_t)total, gpt ? "tokens" : "samples", 10);
    otu_watchdog_init(&wd, (int)r->model.classes, 10);
    otu_rng rng;
    otu_rng_seed(&rng, r->seed * 31 + 7);
    if (!quiet && !r->json)
        printf("%s: %zu parameters, %s, batch %zu in %ld micro-batch%s, %ld steps, sched %s\n",
               okto_model_name(r->model.kind), okto_nn_numel(nn),
               gpt ? "character-level" : r->data, B, r->micro, r->micro == 1 ? "" : "es", total,
               okto_sched_name(r->sched == OKTO_SCHED_AUTO ? okto_context_sched(ctx) : r->sched));
    if (r->json && !quiet)
        printf("\"epochs\": [");
    double t0 = now_s(), epoch_loss = 0;
    long step = 0, in_epoch = 0, epoch = 0;
    otu_progress_start(&prog);
    int stop = 0;
    while (step < total && !stop) {
        if (r->time_limit > 0 && now_s() - t0 > r->time_limit) {
            if (DP.size == 1)
                break;
            stop = 1; /* data-parallel: the ranks stop together, after this step's all-reduce */
        }
        /* every rank draws the same global batch (the same seed) and keeps its slice */
        int32_t *ids = DP.size > 1 ? gids : st.ids, *labels = DP.size > 1 ? glabels : st.labels;
        float *x = DP.size > 1 ? gx : st.x;
        if (gpt) {
            otu_token_batch(&rng, D->text.tokens, D->split, r->model.context, B, ids, labels);
        } else {
            const size_t *rows;
            size_t n = otu_batcher_next(&bt, &rows);
            if (!n)
                n = otu_batcher_next(&bt, &rows); /* the next epoch's first batch */
            otu_dataset_gather(&D->d, rows, n, x, labels);
        }
        if (DP.size > 1) {
            size_t r0 = Bl * (size_t)DP.rank, per = gpt ? len : 1;
            if (gpt)
                memcpy(st.ids, gids + r0 * len, Bl * len * sizeof *st.ids);
            else
                memcpy(st.x, gx + r0 * len, Bl * len * sizeof *st.x);
            memcpy(st.labels, glabels + r0 * per, Bl * per * sizeof *st.labels);
        }
        OK(okto_nn_set_lr(nn, okto_lr_schedule((float)r->lr, (float)r->min_lr, r->warmup, total,
                                               step)));
        double ts = now_s();
        if (overlap) {
            pthread_mutex_lock(&DW.lock);
            DW.step = step;
            pthread_mutex_unlock(&DW.lock);
        }
        OK(okto_graph_run(st.g));
        if (overlap) {
            /* the gradients were all-reduced inside the step: the loss and the stop flag now */
            float two[2] = {st.loss_host, (float)stop};
            dp_fault(step);
            if (dp_allreduce(two, 2, r->mpi_timeout, step)) {
                rc = 1;
                goto done;
            }
            st.loss_host = two[0] / (float)DP.size;
            stop = two[1] > 0;
        } else if (DP.size > 1) {
            OK(dp_step(nn, update, r->mpi_timeout, step, &st.loss_host, &stop));
        }
        ms[step] = 1e3 * (now_s() - ts);
        double loss = st.loss_host;
        res->losses[step++] = loss;
        epoch_loss += loss;
        in_epoch++;
        otu_progress_tick(&prog, (uint64_t)(B * (gpt ? r->model.context : 1)), loss);
        if (otu_watchdog_loss(&wd, loss, cfg_err, sizeof cfg_err) != OTU_OK) {
            otu_progress_finish(&prog);
            fprintf(stderr, "okto-train: %s\n", cfg_err);
            rc = 1;
            goto done;
        }
        if (in_epoch == per_epoch || step == total) {
            epoch++;
            double h = NAN;
            if (gpt && r->holdout > 0)
                OK(text_eval(&ev, r, &h));
            else if (!gpt && D->nhold)
                OK(accuracy(ctx, nn, r, D, D->hold, D->nhold, &h));
            res->train_loss = epoch_loss / (double)in_epoch;
            res->holdout = h;
            if (!quiet) {
                otu_progress_finish(&prog);
                if (r->json)
                    printf("%s\n  {\"%s\": %ld, \"step\": %ld, \"train_loss\": %.6g, \"%s\": %.6g, "
                           "\"seconds\": %.3f}",
                           epoch > 1 ? "," : "", gpt ? "eval" : "epoch", epoch, step,
                           res->train_loss, gpt ? "holdout_loss" : "holdout_accuracy", h,
                           now_s() - t0);
                else if (gpt)
                    printf("step %6ld  train loss %.4f  holdout loss %.4f  (%.1f s)\n", step,
                           res->train_loss, h, now_s() - t0);
                else
                    printf("epoch %3ld  train loss %.4f  holdout accuracy %.2f%%  (%.1f s)\n",
                           epoch, res->train_loss, 100 * h, now_s() - t0);
                fflush(stdout);
            }
            if (otu_watchdog_epoch(&wd, cfg_err, sizeof cfg_err) != OTU_OK) {
                fprintf(stderr, "okto-train: %s\n", cfg_err);
                rc = 1;
                goto done;
            }
            epoch_loss = 0;
            in_epoch = 0;
        }
    }
    otu_progress_finish(&prog);
    if (r->json && !quiet)
        printf("\n],\n");
    res->nsteps = step;
    res->seconds = now_s() - t0;
    res->step_ms = median(ms, (size_t)step);
    if (r->trace && !quiet) {
        OK(okto_graph_trace(st.g, r->trace));
        /* the task ranges, so the trace reads by micro-batch (tools/trace-overlap.py) */
        FILE *f = stderr;
        fprintf(f, "trace: %s (tasks, in recording order:", r->trace);
        for (long m = 0; m < r->micro; m++)
            fprintf(f, " micro-batch %ld forward %d-%d backward %d-%d;", m, st.fwd0[m],
                    st.bwd0[m] - 1, st.bwd0[m],
                    (m + 1 < r->micro ? st.fwd0[m + 1] : st.end) - 1);
        fprintf(f, " update %d-%d)\n", st.end, okto_graph_task_count(st.g) - 1);
    }
generate_and_save:
    if (!quiet && r->generate && (rc = generate(ctx, nn, r, &D->text)) != 0)
        goto done;
    if (!quiet && r->save && (rc = save_checkpoint(r, nn, D, r->save)) != 0)
        goto done;
done:
    free(ms);
    okto_graph_destroy(update);
    free(gx);
    free(gids);
    free(glabels);
    if (gpt && ev.st.g)
        text_eval_free(&ev);
    otu_batcher_free(&bt);
    free_step(&st, (int)r->micro);
    dp_worker_stop();
    okto_nn_destroy(nn);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    otu_config *scan = NULL, *c = NULL;
    int rc = 2, npos = 0;
    data D = {0};
    otu_st_file *ckpt = NULL;
    okto_context *ctx = NULL;
    result res = {0}, seq = {0};
    run_cfg r = {0};
    if (dp_init(&argc, &argv) != 0)
        return 2;
    char **argv2 = malloc((size_t)(argc + 1) * sizeof *argv2);
    if (!argv2 || otu_config_create(&scan) != OTU_OK || otu_config_create(&c) != OTU_OK)
        goto out;
    memcpy(argv2, argv, (size_t)(argc + 1) * sizeof *argv2);
    /* the positional (the config file) first, then the file, then the flags over it */
    if (otu_config_args(scan, argc, argv2, &npos, cfg_err, sizeof cfg_err) != OTU_OK) {
        rc = bad("%s", cfg_err);
        goto out;
    }
    if (npos > 1) {
        rc = bad("one config file at most (got \"%s\" and \"%s\")", argv2[1], argv2[2]);
        goto out;
    }
    if (npos == 1 && otu_config_load(c, argv2[1], cfg_err, sizeof cfg_err) != OTU_OK) {
        rc = bad("%s", cfg_err);
        goto out;
    }
    otu_config_warn_duplicates(c, stderr);
    memcpy(argv2, argv, (size_t)(argc + 1) * sizeof *argv2);
    if (otu_config_args(c, argc, argv2, &npos, cfg_err, sizeof cfg_err) != OTU_OK) {
        rc = bad("%s", cfg_err);
        goto out;
    }
    if ((rc = read_cfg(c, &r)) != 0)
        goto out;
    if (otu_config_report_unused(c, stderr)) {
        rc = bad("unknown settings (okto-train --help lists them)");
        goto out;
    }
    okto_model_kind asked = r.model.kind;
    if (r.load && (rc = checkpoint_model(&r, &ckpt)) != 0)
        goto out;
    if (r.load && r.model.kind != asked && !otu_config_find(c, "model")) {
        /* the checkpoint made this another kind: that kind's defaults (data, batch, steps) */
        okto_model_config m = r.model;
        if (otu_config_set(c, "model", okto_model_name(m.kind), r.load, 0, cfg_err,
                           sizeof cfg_err) != OTU_OK) {
            rc = bad("%s", cfg_err);
            goto out;
        }
        if ((rc = read_cfg(c, &r)) != 0)
            goto out;
        r.model = m;
    }
    if (r.generate && r.model.kind != OKTO_MODEL_GPT) {
        rc = bad("generate: only a gpt generates text (this is a %s)",
                 okto_model_name(r.model.kind));
        goto out;
    }
    if ((rc = load_data(&r, &D)) != 0 || (rc = fit_model(&r, &D)) != 0)
        goto out;
    if (ckpt && D.gpt) {
        /* the checkpoint's vocabulary must be this text's */
        const char *v = otu_st_meta(ckpt, "okto.vocab");
        char *mine = malloc((size_t)D.text.vocab * 9 + 1);
        size_t at = 0;
        for (int i = 0; mine && i < D.text.vocab; i++)
            at += (size_t)sprintf(mine + at, "%s%x", i ? "," : "", D.text.chars[i]);
        int same = mine && v && !strcmp(v, mine);
        free(mine);
        if (!same) {
            rc = bad("%s was trained on another text (its vocabulary differs from %s's)", r.load,
                     r.data ? r.data : OTU_LICENSES_DIR);
            goto out;
        }
    }
    if (DP.size > 1 && r.batch % DP.size) {
        rc = bad("batch %ld does not split into %d equal slices (one per rank)", r.batch, DP.size);
        goto out;
    }
    if (DP.rank > 0 && !freopen("/dev/null", "w", stdout)) { /* rank 0 prints */
        rc = bad("rank %d: cannot silence stdout", DP.rank);
        goto out;
    }
    okto_config oc;
    okto_config_init(&oc);
    if (r.lanes)
        oc.compute_lanes = r.lanes;
    okto_status s = okto_context_create(&oc, &ctx);
    if (s != OKTO_OK) {
        rc = okto_failed("okto_context_create", s);
        goto out;
    }
    if (r.json)
        printf("{\n\"config\": {\"model\": \"%s\", \"data\": \"%s\", \"batch\": %ld, \"micro\": %ld, "
               "\"lr\": %g, \"optimizer\": \"%s\", \"seed\": %llu},\n",
               okto_model_name(r.model.kind), r.data ? r.data : OTU_LICENSES_DIR, r.batch, r.micro,
               r.lr, r.optimizer == OKTO_OPTIM_SGD ? "sgd" : "adamw",
               (unsigned long long)r.seed);
    if (DP.size > 1)
        fprintf(stderr, "okto-train: rank %d of %d: %ld of each batch of %ld rows\n", DP.rank,
                DP.size, r.batch / DP.size, r.batch);
    rc = train(ctx, &r, &D, ckpt, DP.rank > 0, &res); /* rank 0 alone prints and saves */
    if (rc == 0 && r.compare && !r.check && !r.eval) {
        run_cfg q = r;
        q.sched = OKTO_SCHED_SEQUENTIAL;
        q.time_limit = 0;
        if (res.nsteps && res.nsteps < (D.gpt ? q.steps : q.epochs * (long)(D.ntrain / (size_t)q.batch)))
            q.steps = res.nsteps; /* a time limit stopped the first run: the same steps */
        rc = train(ctx, &q, &D, ckpt, 1, &seq);
        double worst = 0;
        for (long i = 0; rc == 0 && i < res.nsteps && i < seq.nsteps; i++)
            worst = fmax(worst, fabs(res.losses[i] - seq.losses[i]) / fmax(1e-12, fabs(seq.losses[i])));
        int agree = rc == 0 && seq.nsteps == res.nsteps && worst <= COMPARE_TOL;
        if (rc == 0 && !agree)
            rc = 1;
        if (r.json)
            printf("\"compare\": {\"sequential_step_ms\": %.4g, \"step_ms\": %.4g, \"speedup\": "
                   "%.3g, \"worst_loss_rel_diff\": %.3g, \"agree\": %s},\n",
                   seq.step_ms, res.step_ms, res.step_ms > 0 ? seq.step_ms / res.step_ms : 0,
                   worst, agree ? "true" : "false");
        else
            printf("compare: sequential %.3f ms per step, %s %.3f ms (%.2fx); losses of %ld steps "
                   "agree within %.2g (tolerance %g): %s\n",
                   seq.step_ms,
                   okto_sched_name(r.sched == OKTO_SCHED_AUTO ? okto_context_sched(ctx) : r.sched),
                   res.step_ms, res.step_ms > 0 ? seq.step_ms / res.step_ms : 0, res.nsteps,
                   worst, COMPARE_TOL, agree ? "yes" : "NO");
    }
    if (r.json) {
        printf("\"final\": {");
        if (!r.check) {
            printf("\"%s\": %.6g, ", D.gpt ? "holdout_loss" : "holdout_accuracy", res.holdout);
            printf("\"train_loss\": %.6g, \"step_ms\": %.4g, \"steps\": %ld, \"seconds\": %.2f, ",
                   res.train_loss, res.step_ms, res.nsteps, res.seconds);
        }
        json_str("sched", okto_sched_name(r.sched == OKTO_SCHED_AUTO ? okto_context_sched(ctx)
                                                                     : r.sched),
                 1);
        printf("\"status\": %d}\n}\n", rc);
    } else if (rc == 0 && !r.check) {
        if (r.eval || (ckpt && !r.train_set))
            printf("%s: %s %.4f%s\n", r.load, D.gpt ? "holdout loss" : "accuracy",
                   D.gpt ? res.holdout : 100 * res.holdout, D.gpt ? "" : "%");
        else
            printf("done: %ld steps in %.1f s, %.3f ms per step; train loss %.4f, %s %.4f%s\n",
                   res.nsteps, res.seconds, res.step_ms, res.train_loss,
                   D.gpt ? "holdout loss" : "holdout accuracy",
                   D.gpt ? res.holdout : 100 * res.holdout, D.gpt ? "" : "%");
    }
out:
    free(res.losses);
    free(seq.losses);
    otu_st_close(ckpt);
    free_data(&D);
    okto_context_destroy(ctx);
    otu_config_destroy(scan);
    otu_config_destroy(c);
    free(argv2);
    free(DP.buf);
    dp_finish();
    return rc;
}
