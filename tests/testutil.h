/* tests/testutil.h: shared helpers for the cmocka tests: a context or skip (exit 77), CPU
 * reference comparisons with a stated tolerance, and a seeded random source. */
#ifndef OKTO_TESTUTIL_H
#define OKTO_TESTUTIL_H

#include <okto/okto.h>
#include <stddef.h>
#include <stdint.h>

/* A context from the environment (OKTO_* variables) or exit(77) when no OpenCL device exists.
 * Any other failure fails the test with okto_last_error. */
okto_context *tu_context(void);
/* Same with explicit lanes (0 = automatic) and policy. */
okto_context *tu_context_with(int compute_lanes, okto_sched sched);

/* xorshift64*: reproducible across platforms. */
uint64_t tu_rand(uint64_t *state);
float tu_uniform(uint64_t *state, float lo, float hi);
void tu_fill_random(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Largest |got - want| / max(1, |want|) over n values (a relative error that turns absolute
 * near zero). */
double tu_max_rel_err(const float *got, const double *want, size_t n);

/* Creates a rows x cols tensor holding data (or zeros when data is NULL); fails the test on
 * error. */
okto_tensor *tu_tensor(okto_context *ctx, size_t rows, size_t cols, const float *data);
/* Reads a tensor into a malloc'd buffer. */
float *tu_read(const okto_tensor *t);

/* A recording call was refused: status `want`, a message (from okto_last_error(ctx)) holding
 * s1 and s2 (each may be NULL), nothing recorded (g still has tasks_before tasks), and the graph
 * keeping the error; which it then clears, so the next check starts clean. */
void tu_expect_refused(okto_context *ctx, okto_graph *g, okto_status got, okto_status want,
                       const char *s1, const char *s2, int tasks_before);

#define TU_OK(call)                                                                            \
    do {                                                                                       \
        okto_status tu_s_ = (call);                                                            \
        if (tu_s_ != OKTO_OK)                                                                  \
            fail_msg("%s -> %s: %s", #call, okto_status_str(tu_s_), okto_last_error(NULL));    \
    } while (0)

#endif
