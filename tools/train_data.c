/* tools/train_data.c: okto-train's data (seeded spirals and blobs, CSV files) and the host
 * double-precision reference of the MLP that --check holds the device's gradients against. */
#include "train_data.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- random numbers ------------------------------------------------------------------------ */

void train_rng_seed(train_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x6f6b746f5f747261ull; /* "okto_tra": seed 0 is a good seed too */
}

uint64_t train_rng_next(train_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double train_rng_uniform(train_rng *r)
{
    return (double)(train_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double train_rng_gauss(train_rng *r)
{
    double u = train_rng_uniform(r), v = train_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

size_t train_rng_below(train_rng *r, size_t n) { return n ? (size_t)(train_rng_next(r) % n) : 0; }

void train_shuffle(train_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = train_rng_below(r, i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* ---- data sets ---------------------------------------------------------------------------- */

static int data_alloc(train_data *d, size_t n, size_t features, int classes)
{
    memset(d, 0, sizeof *d);
    d->x = malloc(n * features * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    if (!d->x || !d->y) {
        train_data_free(d);
        return -1;
    }
    d->n = n;
    d->features = features;
    d->classes = classes;
    return 0;
}

void train_data_free(train_data *d)
{
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

int train_data_spiral(train_data *d, size_t n, int classes, uint64_t seed)
{
    if (data_alloc(d, n, 2, classes) != 0)
        return -1;
    train_rng r;
    train_rng_seed(&r, seed);
    /* Sample i goes to arm i % classes, so every class gets n / classes samples (+1). Each arm
     * turns once and a half from the centre out; the noise grows with the radius. */
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)classes);
        double t = train_rng_uniform(&r);
        double theta = 2.0 * M_PI * c / classes + 2.0 * M_PI * t + 0.25 * t * train_rng_gauss(&r);
        d->x[2 * i] = (float)(t * sin(theta));
        d->x[2 * i + 1] = (float)(t * cos(theta));
        d->y[i] = c;
    }
    return 0;
}

int train_data_blobs(train_data *d, size_t n, size_t features, int classes, uint64_t seed)
{
    if (data_alloc(d, n, features, classes) != 0)
        return -1;
    train_rng r;
    train_rng_seed(&r, seed);
    double *centre = malloc((size_t)classes * features * sizeof *centre);
    if (!centre) {
        train_data_free(d);
        return -1;
    }
    for (size_t i = 0; i < (size_t)classes * features; i++)
        centre[i] = 8.0 * train_rng_uniform(&r) - 4.0;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)classes);
        for (size_t f = 0; f < features; f++)
            d->x[i * features + f] = (float)(centre[c * features + f] + train_rng_gauss(&r));
        d->y[i] = c;
    }
    free(centre);
    return 0;
}

static int csv_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Splits line (modified in place) at commas into at most max fields; returns the count. */
static size_t csv_split(char *line, char **field, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (n < max)
            field[n] = p;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

/* A finite number taking the whole field (blanks around it allowed). */
static int csv_number(const char *s, double *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    /* a value a float cannot hold would train as inf and then NaN: refused like garbage */
    if (end == s || *end || errno == ERANGE || !isfinite(v) || fabs(v) > FLT_MAX)
        return -1;
    *out = v;
    return 0;
}

int train_data_csv(train_data *d, const char *path, int classes, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f)
        return csv_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));

    enum { MAX_FIELDS = 4096 };
    char **field = malloc(MAX_FIELDS * sizeof *field);
    char *line = NULL;
    size_t cap = 0, lineno = 0, rows = 0, rows_cap = 0, ncols = 0, cols_line = 0;
    float *x = NULL;
    int *y = NULL, maxlabel = -1, rc = -1;
    ssize_t len;
    if (!field) {
        csv_fail(err, errlen, "%s: out of memory", path);
        goto done;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        size_t nf = csv_split(line, field, MAX_FIELDS);
        if (nf > MAX_FIELDS) {
            csv_fail(err, errlen, "%s:%zu: %zu fields, at most %d are supported", path, lineno, nf,
                     MAX_FIELDS);
            goto done;
        }
        double v;
        if (rows == 0 && ncols == 0) {
            int numeric = 0;
            for (size_t i = 0; i < nf; i++)
                numeric |= csv_number(field[i], &v) == 0;
            if (!numeric)
                continue; /* a header */
        }
        if (nf < 2) {
            csv_fail(err, errlen, "%s:%zu: 1 field; expected features then a class label", path,
                     lineno);
            goto done;
        }
        if (ncols == 0) {
            ncols = nf;
            cols_line = lineno;
        } else if (nf != ncols) {
            csv_fail(err, errlen, "%s:%zu: %zu fields, but line %zu has %zu", path, lineno, nf,
                     cols_line, ncols);
            goto done;
        }
        if (rows == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 256;
            float *nx = realloc(x, rows_cap * (ncols - 1) * sizeof *x);
            if (nx)
                x = nx;
            int *ny = realloc(y, rows_cap * sizeof *y);
            if (ny)
                y = ny;
            if (!nx || !ny) {
                csv_fail(err, errlen, "%s:%zu: out of memory", path, lineno);
                goto done;
            }
        }
        for (size_t i = 0; i + 1 < nf; i++) {
            if (csv_number(field[i], &v) != 0) {
                csv_fail(err, errlen, "%s:%zu: field %zu (\"%s\") is not a finite number", path,
                         lineno, i + 1, field[i]);
                goto done;
            }
            x[rows * (ncols - 1) + i] = (float)v;
        }
        if (csv_number(field[nf - 1], &v) != 0 || v != floor(v) || v < 0 || v > 1e6) {
            csv_fail(err, errlen,
                     "%s:%zu: class label (field %zu, \"%s\") is not an integer in 0..1000000",
                     path, lineno, nf, field[nf - 1]);
            goto done;
        }
        if (classes > 0 && v >= classes) {
            csv_fail(err, errlen, "%s:%zu: class label %.0f is out of range for --classes %d", path,
                     lineno, v, classes);
            goto done;
        }
        y[rows] = (int)v;
        if (y[rows] > maxlabel)
            maxlabel = y[rows];
        rows++;
    }
    if (ferror(f)) {
        csv_fail(err, errlen, "%s:%zu: read error: %s", path, lineno + 1, strerror(errno));
        goto done;
    }
    if (rows == 0) {
        csv_fail(err, errlen, "%s: no data rows", path);
        goto done;
    }
    if (classes <= 0 && maxlabel < 1) {
        csv_fail(err, errlen, "%s: every label is %d; training needs at least 2 classes", path,
                 maxlabel);
        goto done;
    }
    d->n = rows;
    d->features = ncols - 1;
    d->classes = classes > 0 ? classes : maxlabel + 1;
    d->x = x;
    d->y = y;
    x = NULL;
    y = NULL;
    rc = 0;
done:
    free(x);
    free(y);
    free(line);
    free(field);
    fclose(f);
    return rc;
}

/* ---- host reference network ---------------------------------------------------------------- */

double train_ref_step(const train_ref *net, const float *const *W, const float *const *b,
                      const float *x, const int *y, size_t rows, double **dW, double **db,
                      size_t *correct)
{
    int nl = net->nl;
    const int *w = net->w;
    /* act[l] is the input of layer l+1 (act[0] = x); pre[l] the pre-activation of layer l. */
    double **act = calloc((size_t)nl, sizeof *act), **pre = calloc((size_t)nl, sizeof *pre);
    double loss = 0.0;
    size_t hits = 0;
    int ok = act && pre;
    for (int l = 0; ok && l < nl; l++) {
        act[l] = malloc(rows * (size_t)w[l] * sizeof **act);
        pre[l] = malloc(rows * (size_t)w[l] * sizeof **pre);
        ok = act[l] && pre[l];
    }
    if (!ok) {
        loss = NAN;
        goto done;
    }
    for (size_t i = 0; i < rows * (size_t)w[0]; i++)
        act[0][i] = x[i];
    for (int l = 1; l < nl; l++) {
        int n_in = w[l - 1], n_out = w[l];
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < n_out; j++) {
                double s = b[l - 1][j];
                for (int k = 0; k < n_in; k++)
                    s += act[l - 1][r * n_in + k] * W[l - 1][(size_t)k * n_out + j];
                pre[l][r * n_out + j] = s;
                act[l][r * n_out + j] = (l < nl - 1 && s < 0) ? 0.0 : s;
            }
    }
    /* Softmax cross-entropy; the gradient of the mean loss lands in pre[nl - 1]. */
    int nc = w[nl - 1];
    for (size_t r = 0; r < rows; r++) {
        double *z = pre[nl - 1] + r * nc, m = z[0], sum = 0.0;
        int arg = 0;
        for (int j = 1; j < nc; j++)
            if (z[j] > m) {
                m = z[j];
                arg = j;
            }
        hits += arg == y[r];
        for (int j = 0; j < nc; j++)
            sum += exp(z[j] - m);
        loss += -(z[y[r]] - m - log(sum));
        for (int j = 0; j < nc; j++)
            z[j] = (exp(z[j] - m) / sum - (j == y[r])) / (double)rows;
    }
    loss /= (double)rows;
    if (correct)
        *correct = hits;
    if (!dW || !db)
        goto done;
    for (int l = nl - 1; l >= 1; l--) {
        int n_in = w[l - 1], n_out = w[l];
        double *g = pre[l]; /* dloss / dpre[l] */
        for (int k = 0; k < n_in; k++)
            for (int j = 0; j < n_out; j++) {
                double s = 0.0;
                for (size_t r = 0; r < rows; r++)
                    s += act[l - 1][r * n_in + k] * g[r * n_out + j];
                dW[l - 1][(size_t)k * n_out + j] = s;
            }
        for (int j = 0; j < n_out; j++) {
            double s = 0.0;
            for (size_t r = 0; r < rows; r++)
                s += g[r * n_out + j];
            db[l - 1][j] = s;
        }
        if (l > 1) /* into pre[l - 1]: dact through W, then through the ReLU */
            for (size_t r = 0; r < rows; r++)
                for (int k = 0; k < n_in; k++) {
                    double s = 0.0;
                    for (int j = 0; j < n_out; j++)
                        s += g[r * n_out + j] * W[l - 1][(size_t)k * n_out + j];
                    double *p = &pre[l - 1][r * n_in + k];
                    *p = *p > 0 ? s : 0.0;
                }
    }
done:
    for (int l = 0; l < nl; l++) {
        if (act)
            free(act[l]);
        if (pre)
            free(pre[l]);
    }
    free(act);
    free(pre);
    return loss;
}
