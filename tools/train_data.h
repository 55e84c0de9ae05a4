/* tools/train_data.h: what okto-train needs besides okto itself: a seeded random stream, the
 * data sets (built-in spirals and blobs, CSV files) and the host double-precision reference of
 * the MLP (forward, loss, backward) that --check compares the device's gradients with. */
#ifndef OKTO_TRAIN_DATA_H
#define OKTO_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

/* ---- random numbers: splitmix64, so a seed gives the same run on every libc ------------- */
typedef struct train_rng {
    uint64_t s;
} train_rng;

void train_rng_seed(train_rng *r, uint64_t seed);
uint64_t train_rng_next(train_rng *r);
double train_rng_uniform(train_rng *r);         /* [0, 1) */
double train_rng_gauss(train_rng *r);           /* N(0, 1) */
size_t train_rng_below(train_rng *r, size_t n); /* [0, n) */
void train_shuffle(train_rng *r, size_t *idx, size_t n);

/* ---- data sets --------------------------------------------------------------------------- */
/* n rows of `features` floats (row-major) and a class per row in [0, classes). */
typedef struct train_data {
    size_t n, features;
    int classes;
    float *x;
    int *y;
} train_data;

/* classes interleaved arms of a spiral in 2-D with Gaussian noise; n samples in all. */
int train_data_spiral(train_data *d, size_t n, int classes, uint64_t seed);
/* One Gaussian blob (sd 1) per class in `features` dimensions, centres drawn in [-4, 4]. */
int train_data_blobs(train_data *d, size_t n, size_t features, int classes, uint64_t seed);
/* CSV: each row holds the features then an integer class label; '#' lines and blank lines are
 * skipped, and a first line with no numeric field is taken as a header. classes <= 0 means
 * "largest label + 1". On failure returns -1 and writes "path:line: problem" into err. */
int train_data_csv(train_data *d, const char *path, int classes, char *err, size_t errlen);
void train_data_free(train_data *d);

/* ---- the host reference network (double precision) --------------------------------------- */
/* An MLP with nl widths w[0..nl-1]: layer l (1..nl-1) has weights W[l-1] (w[l-1] x w[l],
 * row-major) and bias b[l-1] (w[l]); ReLU after every layer but the last; softmax
 * cross-entropy averaged over the rows. */
typedef struct train_ref {
    int nl;
    const int *w;
} train_ref;

/* Mean loss of the rows x w[0] batch x with labels y; fills dW/db (same layout as W/b, double)
 * with the gradient of the mean loss when they are not NULL; *correct counts argmax hits. */
double train_ref_step(const train_ref *net, const float *const *W, const float *const *b,
                      const float *x, const int *y, size_t rows, double **dW, double **db,
                      size_t *correct);

#endif
