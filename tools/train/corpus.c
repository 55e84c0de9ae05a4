/* tools/train/corpus.c: the character-level text corpus (declared in dataset.h): reading UTF-8
 * text, the code-point vocabulary with its fallback id, encoding, decoding, the contiguous
 * split and random training windows. */
#include "dataset.h"

#include "readfile.h"
#include "utf8.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NCODEPOINTS = 0x110000 };

/* Checks that text[0..len) is UTF-8, naming line and column (bytes, 1-based) of the first bad
 * byte. */
static int check_utf8(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    size_t bad = otu__utf8_check(text, len);
    if (bad == len)
        return OTU_OK;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < bad; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return otu__err(OTU_EPARSE, err, errlen, "%s:%zu: invalid UTF-8 (byte 0x%02x at column %zu)",
                    name, line, (unsigned char)text[bad], col);
}

typedef struct cpcount {
    uint32_t cp;
    size_t count;
} cpcount;

static int by_count_desc(const void *a, const void *b)
{
    const cpcount *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->cp > y->cp) - (x->cp < y->cp);
}

static int by_cp(const void *a, const void *b)
{
    const cpcount *x = a, *y = b;
    return (x->cp > y->cp) - (x->cp < y->cp);
}

int otu_corpus_build(const char *text, size_t len, const char *name, int max_vocab, otu_corpus *c,
                     char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fallback = -1;
    if (max_vocab < 2 || max_vocab > OTU_CORPUS_MAX_VOCAB)
        return otu__err(OTU_EINVAL, err, errlen, "vocabulary cap %d is not in [2, %d]", max_vocab,
                        OTU_CORPUS_MAX_VOCAB);
    if (len == 0)
        return otu__err(OTU_EPARSE, err, errlen, "%s: empty text", name);
    int s = check_utf8(text, len, name, err, errlen);
    if (s)
        return s;
    /* One counter per possible code point: 8.9 MB of address space, of which the OS only
     * backs the pages the text touches; simpler and faster than a hash map. */
    size_t *count = calloc(NCODEPOINTS, sizeof *count);
    int32_t *id = NULL;
    cpcount *d = NULL;
    if (!count)
        goto oom;
    const unsigned char *u = (const unsigned char *)text;
    size_t nchars = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += otu__utf8_decode(u + i, len - i, &cp); /* checked above: never 0 */
        count[cp]++;
        nchars++;
    }
    size_t distinct = 0;
    for (uint32_t cp = 0; cp < NCODEPOINTS; cp++)
        distinct += count[cp] != 0;
    d = malloc(distinct * sizeof *d);
    if (!d)
        goto oom;
    size_t k = 0;
    for (uint32_t cp = 0; cp < NCODEPOINTS; cp++)
        if (count[cp])
            d[k++] = (cpcount){cp, count[cp]};
    size_t keep = distinct;
    if (distinct > (size_t)max_vocab) {
        keep = (size_t)max_vocab - 1;
        qsort(d, distinct, sizeof *d, by_count_desc);
        qsort(d, keep, sizeof *d, by_cp);
        c->fallback = (int)keep;
    }
    c->vocab = (int)keep + (c->fallback >= 0);
    c->chars = malloc((size_t)c->vocab * sizeof *c->chars);
    c->tokens = malloc(nchars * sizeof *c->tokens);
    id = malloc(NCODEPOINTS * sizeof *id);
    if (!c->chars || !c->tokens || !id)
        goto oom;
    for (uint32_t cp = 0; cp < NCODEPOINTS; cp++)
        id[cp] = c->fallback;
    for (size_t i = 0; i < keep; i++) {
        c->chars[i] = d[i].cp;
        id[d[i].cp] = (int32_t)i;
    }
    if (c->fallback >= 0)
        c->chars[c->fallback] = 0xfffd;
    size_t t = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += otu__utf8_decode(u + i, len - i, &cp);
        c->tokens[t] = id[cp];
        c->nfallback += c->tokens[t] == c->fallback;
        t++;
    }
    c->ntokens = nchars;
    c->nbytes = len;
    free(count);
    free(d);
    free(id);
    return OTU_OK;
oom:
    free(count);
    free(d);
    free(id);
    otu_corpus_free(c);
    return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the regular files of dir, sorted by name, into one buffer. */
static int read_dir(const char *dir, char **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return otu__err(OTU_EIO, err, errlen, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int status = OTU_OK;
    char *all = NULL;
    size_t total = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        /* lstat: a symbolic link (GPL -> GPL-3) would repeat a text already read. */
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                status = otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", dir);
                goto done;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            status = otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", dir);
            goto done;
        }
        n++;
    }
    if (n == 0) {
        status = otu__err(OTU_EIO, err, errlen, "%s: no regular files", dir);
        goto done;
    }
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text;
        size_t len;
        status = otu__read_file(path, &text, &len, err, errlen);
        if (!status)
            status = check_utf8(text, len, path, err, errlen); /* so the message names it */
        if (status) {
            free(text); /* NULL when the read failed */
            goto done;
        }
        char *na = realloc(all, total + len + 1);
        if (!na) {
            free(text);
            status = otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", dir);
            goto done;
        }
        all = na;
        memcpy(all + total, text, len);
        total += len;
        all[total] = '\0';
        free(text);
    }
    *out = all;
    *outlen = total;
    all = NULL;
done:
    closedir(dp);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(all);
    return status;
}

int otu_corpus_load(const char *path, int max_vocab, otu_corpus *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fallback = -1;
    char *text;
    size_t len;
    int s = path ? otu__read_file(path, &text, &len, err, errlen)
                 : read_dir(OTU_LICENSES_DIR, &text, &len, err, errlen);
    if (s)
        return s;
    s = otu_corpus_build(text, len, path ? path : OTU_LICENSES_DIR, max_vocab, c, err, errlen);
    free(text);
    return s;
}

void otu_corpus_free(otu_corpus *c)
{
    free(c->tokens);
    free(c->chars);
    memset(c, 0, sizeof *c);
    c->fallback = -1;
}

int otu_corpus_id(const otu_corpus *c, uint32_t cp)
{
    /* chars[0..nreal) is sorted by code point; the fallback, if any, is after them. */
    size_t lo = 0, hi = (size_t)c->vocab - (c->fallback >= 0);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->chars[mid] == cp)
            return (int)mid;
        if (c->chars[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return c->fallback;
}

int otu_corpus_encode(const otu_corpus *c, const char *text, size_t len, int32_t *out, size_t cap,
                      size_t *n, char *err, size_t errlen)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t t = 0;
    *n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = otu__utf8_decode(u + i, len - i, &cp);
        if (!l)
            return otu__err(OTU_EPARSE, err, errlen, "invalid UTF-8 at byte %zu (0x%02x)", i, u[i]);
        int id = otu_corpus_id(c, cp);
        if (id < 0) {
            char q[OTU__QUOTE_CAP];
            return otu__err(OTU_ENOTFOUND, err, errlen,
                            "character U+%04X %s at byte %zu is not in the vocabulary", cp,
                            otu__quote(text + i, l, OTU__QUOTE_MAX, q, sizeof q), i);
        }
        if (t == cap)
            return otu__err(OTU_ERANGE, err, errlen, "more than %zu characters", cap);
        out[t++] = id;
        i += l;
    }
    *n = t;
    return OTU_OK;
}

int otu_corpus_decode(const otu_corpus *c, const int32_t *ids, size_t n, char *out, size_t cap,
                      size_t *len)
{
    size_t o = 0;
    int status = OTU_OK;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab) {
            status = OTU_EINVAL;
            break;
        }
        char b[4];
        size_t l = otu__utf8_encode(c->chars[ids[i]], b);
        if (o + l + 1 > cap) {
            status = OTU_ERANGE;
            break;
        }
        memcpy(out + o, b, l);
        o += l;
    }
    if (cap)
        out[o] = '\0';
    if (len)
        *len = o;
    return status;
}

size_t otu_corpus_split(const otu_corpus *c, double holdout)
{
    if (!(holdout > 0.0))
        return c->ntokens;
    if (holdout >= 1.0)
        return 0;
    size_t h = (size_t)floor(holdout * (double)c->ntokens + 0.5);
    return c->ntokens - h;
}

int otu_token_batch(otu_rng *r, const int32_t *tokens, size_t n, size_t context, size_t batch,
                    int32_t *x, int32_t *y)
{
    if (context == 0 || n < context + 1)
        return OTU_EINVAL;
    for (size_t b = 0; b < batch; b++) {
        size_t s = (size_t)otu_rng_below(r, n - context);
        memcpy(x + b * context, tokens + s, context * sizeof *x);
        memcpy(y + b * context, tokens + s + 1, context * sizeof *y);
    }
    return OTU_OK;
}
