/* tools/train/dataset.c: classification tables (CSV, digits), the gather into a batch, splits
 * and the batcher. The text corpus is in corpus.c. */
#include "dataset.h"

#include "readfile.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the digits loader asks of each field beyond what any CSV must satisfy; checked while
 * parsing, so a failure still has its line. */
typedef struct csv_rules {
    size_t features;  /* 0: any count */
    int int_features; /* features must be integers in [0, max_feature] */
    double max_feature;
    int max_label; /* labels in [0, max_label] */
} csv_rules;

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

/* Parses a field s[0..n) as a finite float; 0, or a problem string for the message. */
static const char *parse_float(const char *s, size_t n, float *out)
{
    char buf[128];
    if (n == 0)
        return "is empty";
    if (n >= sizeof buf)
        return "is not a number";
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0')
        return "is not a number";
    if (isnan(v) || (isinf(v) && errno != ERANGE))
        return "is not finite";
    if (isinf(v) || fabs(v) > FLT_MAX)
        return "is beyond the float range";
    *out = (float)v;
    return NULL;
}

/* Whether s[0..n) reads as a number at all (nan and inf included: those are data, to be
 * refused as such, not a header). */
static int is_number(const char *s, size_t n)
{
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    (void)strtod(buf, &end);
    return end != buf && *end == '\0';
}

/* A label: decimal digits only, at most max. */
static int parse_label(const char *s, size_t n, int max, int32_t *out)
{
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* Splits line s[0..n) into trimmed fields; returns their count (all of them, even beyond
 * cap; only the first cap are stored). */
static size_t split_fields(const char *s, size_t n, const char **fb, size_t *fl, size_t cap)
{
    size_t count = 0, b = 0;
    for (;;) {
        const char *comma = memchr(s + b, ',', n - b);
        size_t e = comma ? (size_t)(comma - s) : n;
        size_t ib = b, ie = e;
        while (ib < ie && is_blank(s[ib]))
            ib++;
        while (ie > ib && is_blank(s[ie - 1]))
            ie--;
        if (count < cap) {
            fb[count] = s + ib;
            fl[count] = ie - ib;
        }
        count++;
        if (!comma)
            return count;
        b = e + 1;
    }
}

static int csv_parse(const char *text, size_t len, const char *path, const csv_rules *rules,
                     otu_dataset *d, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    const char **fb = NULL;
    size_t *fl = NULL, fcap = 0;
    size_t nf = 0; /* fields per row, from the first data line */
    int nf_line = 0;
    int seen_first = 0; /* the first non-comment line (a header candidate) was seen */
    size_t rows = 0, rcap = 0;
    float *x = NULL;
    int32_t *y = NULL;
    int status = OTU_OK;
    int line = 0;
    size_t b = 0;
    memset(d, 0, sizeof *d);
#define FAIL(st, ...)                                                                              \
    do {                                                                                           \
        status = otu__err((st), err, errlen, __VA_ARGS__);                                         \
        goto out;                                                                                  \
    } while (0)
    while (b < len) {
        line++;
        const char *nl = memchr(text + b, '\n', len - b);
        size_t e = nl ? (size_t)(nl - text) : len;
        const char *s = text + b;
        size_t n = e - b;
        b = e + 1;
        if (memchr(s, '\0', n))
            FAIL(OTU_EPARSE, "%s:%d: NUL byte in the line (a binary file?)", path, line);
        while (n && is_blank(s[n - 1]))
            n--;
        while (n && is_blank(*s))
            s++, n--;
        if (n == 0 || s[0] == '#')
            continue;
        size_t count = split_fields(s, n, fb, fl, fcap);
        if (count > fcap) {
            /* The field arrays only ever grow to the widest line. */
            const char **nfb = realloc(fb, count * sizeof *fb);
            if (!nfb)
                FAIL(OTU_ENOMEM, "%s: out of memory", path);
            fb = nfb;
            size_t *nfl = realloc(fl, count * sizeof *fl);
            if (!nfl)
                FAIL(OTU_ENOMEM, "%s: out of memory", path);
            fl = nfl;
            fcap = count;
            split_fields(s, n, fb, fl, fcap);
        }
        if (!seen_first) {
            seen_first = 1;
            int header = 0;
            for (size_t i = 0; i < count && !header; i++)
                header = fl[i] > 0 && !is_number(fb[i], fl[i]);
            if (header)
                continue;
        }
        if (nf == 0) {
            if (count < 2)
                FAIL(OTU_EPARSE, "%s:%d: 1 field; a row needs features and a label", path, line);
            nf = count;
            nf_line = line;
            if (rules->features && nf - 1 != rules->features)
                FAIL(OTU_EPARSE, "%s:%d: %zu features, expected %zu", path, line, nf - 1,
                     rules->features);
        } else if (count != nf) {
            FAIL(OTU_EPARSE, "%s:%d: %zu fields, expected %zu as on line %d", path, line, count, nf,
                 nf_line);
        }
        if (rows == rcap) {
            size_t cap = rcap ? 2 * rcap : 256;
            float *nx = realloc(x, cap * (nf - 1) * sizeof *x);
            if (!nx)
                FAIL(OTU_ENOMEM, "%s: out of memory", path);
            x = nx;
            int32_t *ny = realloc(y, cap * sizeof *y);
            if (!ny)
                FAIL(OTU_ENOMEM, "%s: out of memory", path);
            y = ny;
            rcap = cap;
        }
        float *row = x + rows * (nf - 1);
        for (size_t i = 0; i + 1 < nf; i++) {
            const char *problem = parse_float(fb[i], fl[i], &row[i]);
            if (!problem && rules->int_features &&
                (row[i] != floorf(row[i]) || row[i] < 0 || row[i] > rules->max_feature))
                problem = "is not an integer pixel value 0..16";
            if (problem)
                FAIL(OTU_EPARSE, "%s:%d: field %zu: %s %s", path, line, i + 1,
                     otu__quote(fb[i], fl[i], OTU__QUOTE_MAX, q, sizeof q), problem);
        }
        if (parse_label(fb[nf - 1], fl[nf - 1], rules->max_label, &y[rows]))
            FAIL(OTU_EPARSE, "%s:%d: field %zu: label %s is not an integer 0..%d", path, line, nf,
                 otu__quote(fb[nf - 1], fl[nf - 1], OTU__QUOTE_MAX, q, sizeof q), rules->max_label);
        rows++;
    }
    if (rows == 0)
        FAIL(OTU_EPARSE, "%s: no data rows", path);
#undef FAIL
    d->n = rows;
    d->features = nf - 1;
    d->x = x;
    d->y = y;
    int32_t maxl = 0;
    for (size_t i = 0; i < rows; i++)
        if (y[i] > maxl)
            maxl = y[i];
    d->classes = maxl + 1;
    x = NULL;
    y = NULL;
out:
    free(x);
    free(y);
    free(fb);
    free(fl);
    return status;
}

int otu_csv_load(const char *path, otu_dataset *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    char *text;
    size_t len;
    int s = otu__read_file(path, &text, &len, err, errlen);
    if (s)
        return s;
    const csv_rules any = {0, 0, 0, OTU_CSV_MAX_LABEL};
    s = csv_parse(text, len, path, &any, d, err, errlen);
    free(text);
    return s;
}

static const char *const digits_paths[] = {
    OTU_DIGITS_PATH,
    /* pip's sklearn on Debian, for machines without the package */
    "/usr/local/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
};

const char *otu_digits_find(void)
{
    for (size_t i = 0; i < sizeof digits_paths / sizeof digits_paths[0]; i++)
        if (access(digits_paths[i], R_OK) == 0)
            return digits_paths[i];
    return NULL;
}

int otu_digits_load(const char *path, otu_dataset *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (!path) {
        path = otu_digits_find();
        if (!path)
            return otu__err(OTU_ENOTFOUND, err, errlen,
                            "digits data not found at %s: install python3-sklearn "
                            "(tools/setup.sh does) or give the CSV's path",
                            OTU_DIGITS_PATH);
    }
    char *text;
    size_t len;
    int s = otu__read_file(path, &text, &len, err, errlen);
    if (s)
        return s;
    const csv_rules digits = {64, 1, 16.0, 9};
    s = csv_parse(text, len, path, &digits, d, err, errlen);
    free(text);
    if (s)
        return s;
    /* Pixels are 0..16 ink levels (sklearn's load_digits); the network wants [0, 1]. */
    for (size_t i = 0; i < d->n * d->features; i++)
        d->x[i] /= 16.0f;
    d->classes = 10; /* even if a subset lacks the 9s */
    return OTU_OK;
}

void otu_dataset_free(otu_dataset *d)
{
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

void otu_dataset_gather(const otu_dataset *d, const size_t *rows, size_t n, float *x, int32_t *y)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * d->features, d->x + rows[i] * d->features, d->features * sizeof *x);
        if (y)
            y[i] = d->y[rows[i]];
    }
}

/* ---- splits ------------------------------------------------------------------------------ */

static size_t share(double frac, size_t n) { return (size_t)floor(frac * (double)n + 0.5); }

int otu_split(size_t n, const int32_t *labels, int classes, double holdout, uint64_t seed,
              size_t *train, size_t *ntrain, size_t *hold, size_t *nhold, char *err, size_t errlen)
{
    if (!(holdout >= 0.0 && holdout < 1.0))
        return otu__err(OTU_EINVAL, err, errlen, "holdout fraction %g is not in [0, 1)", holdout);
    if (labels && classes < 1)
        return otu__err(OTU_EINVAL, err, errlen, "stratified split with %d classes", classes);
    for (size_t i = 0; labels && i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return otu__err(OTU_EINVAL, err, errlen, "row %zu: label %d is outside [0, %d)", i,
                            (int)labels[i], classes);
    unsigned char *held = calloc(n ? n : 1, 1);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!held || !idx) {
        free(held);
        free(idx);
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    }
    otu_rng r;
    otu_rng_seed(&r, seed);
    if (!labels) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        otu_shuffle(&r, idx, n);
        size_t k = share(holdout, n);
        for (size_t i = 0; i < k; i++)
            held[idx[i]] = 1;
    } else {
        /* Class by class, in class order, from one stream: the same labels and seed give the
         * same split. */
        for (int c = 0; c < classes; c++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (labels[i] == c)
                    idx[m++] = i;
            otu_shuffle(&r, idx, m);
            size_t k = share(holdout, m);
            for (size_t i = 0; i < k; i++)
                held[idx[i]] = 1;
        }
    }
    size_t nt = 0, nh = 0;
    for (size_t i = 0; i < n; i++) {
        if (held[i])
            hold[nh++] = i;
        else
            train[nt++] = i;
    }
    *ntrain = nt;
    *nhold = nh;
    free(held);
    free(idx);
    return OTU_OK;
}

/* ---- batches ----------------------------------------------------------------------------- */

int otu_batcher_init(otu_batcher *b, const size_t *rows, size_t n, size_t batch, uint64_t seed,
                     unsigned flags, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (batch == 0)
        return otu__err(OTU_EINVAL, err, errlen, "batch size 0");
    b->order = malloc((n ? n : 1) * sizeof *b->order);
    if (!b->order)
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        b->order[i] = rows ? rows[i] : i;
    b->n = n;
    b->batch = batch;
    b->flags = flags;
    otu_rng_seed(&b->rng, seed);
    if (flags & OTU_BATCH_SHUFFLE)
        otu_shuffle(&b->rng, b->order, n);
    return OTU_OK;
}

size_t otu_batcher_next(otu_batcher *b, const size_t **rows)
{
    size_t left = b->n - b->pos;
    if (left == 0 || ((b->flags & OTU_BATCH_DROP_LAST) && left < b->batch)) {
        /* The epoch is over: say so once, and set up the next one. Shuffling the previous
         * order (not the original one) keeps each epoch's order a function of the seed and
         * the epoch number alone. */
        b->epoch++;
        b->pos = 0;
        if (b->flags & OTU_BATCH_SHUFFLE)
            otu_shuffle(&b->rng, b->order, b->n);
        *rows = b->order;
        return 0;
    }
    size_t m = left < b->batch ? left : b->batch;
    *rows = b->order + b->pos;
    b->pos += m;
    return m;
}

void otu_batcher_free(otu_batcher *b)
{
    free(b->order);
    memset(b, 0, sizeof *b);
}
