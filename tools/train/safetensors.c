/* tools/train/safetensors.c: the safetensors writer (header JSON, data layout, atomic write)
 * and reader (validation of a header from anywhere), and the half-precision converters. */
#include "safetensors.h"

#include "json.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
#define OTU_DTYPE_ROW_(name, size) {#name, (size)},
    OTU_DTYPE_MAP(OTU_DTYPE_ROW_)
#undef OTU_DTYPE_ROW_
};
_Static_assert(sizeof dtypes / sizeof dtypes[0] == OTU_DTYPE_COUNT, "one row per dtype");

const char *otu_dtype_name(otu_dtype dt)
{
    return (unsigned)dt < OTU_DTYPE_COUNT ? dtypes[dt].name : NULL;
}

size_t otu_dtype_size(otu_dtype dt) { return (unsigned)dt < OTU_DTYPE_COUNT ? dtypes[dt].size : 0; }

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Reverses each `size`-byte element of p[0..n) in place (big-endian hosts only). */
static void swap_elements(unsigned char *p, size_t n, size_t size)
{
    for (size_t i = 0; i + size <= n; i += size)
        for (size_t a = i, b = i + size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* count * size of a shape, or 0 with *overflow set when it does not fit in size_t. */
static size_t shape_bytes(const int64_t *shape, int rank, size_t size, size_t *count, int *overflow)
{
    size_t c = 1;
    *overflow = 0;
    for (int i = 0; i < rank; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && c > SIZE_MAX / d) {
            *overflow = 1;
            return 0;
        }
        c *= (size_t)d;
    }
    if (c > SIZE_MAX / size) {
        *overflow = 1;
        return 0;
    }
    *count = c;
    return c * size;
}

/* "[64, 32]" into buf. */
static const char *shape_str(const int64_t *shape, int rank, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct wtensor {
    char *name;
    otu_dtype dt;
    int rank;
    int64_t shape[OTU_ST_WRITE_MAX_RANK];
    const void *data;
    size_t nbytes;
} wtensor;

typedef struct kv {
    char *key, *value;
} kv;

struct otu_st_writer {
    wtensor *t;
    size_t n, cap;
    kv *m;
    size_t nm, capm;
};

int otu_st_writer_create(otu_st_writer **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? OTU_OK : OTU_ENOMEM;
}

void otu_st_writer_destroy(otu_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    for (size_t i = 0; i < w->nm; i++) {
        free(w->m[i].key);
        free(w->m[i].value);
    }
    free(w->t);
    free(w->m);
    free(w);
}

static int check_utf8(const char *s, const char *what, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    size_t n = strlen(s);
    if (otu__utf8_check(s, n) != n)
        return otu__err(OTU_EINVAL, err, errlen, "%s %s is not valid UTF-8", what,
                        otu__quote(s, n, OTU__QUOTE_MAX, q, sizeof q));
    return OTU_OK;
}

int otu_st_writer_add(otu_st_writer *w, const char *name, otu_dtype dt, int rank,
                      const int64_t *shape, const void *data, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    if (!name || !name[0])
        return otu__err(OTU_EINVAL, err, errlen, "tensor name is empty");
    const char *qn = otu__quote(name, strlen(name), OTU__QUOTE_MAX, q, sizeof q);
    if (strcmp(name, "__metadata__") == 0)
        return otu__err(OTU_EINVAL, err, errlen, "tensor name %s is reserved", qn);
    int s = check_utf8(name, "tensor name", err, errlen);
    if (s)
        return s;
    if (dt != OTU_F32 && dt != OTU_F16 && dt != OTU_BF16 && dt != OTU_I32)
        return otu__err(OTU_EINVAL, err, errlen,
                        "tensor %s: dtype %d is not one the writer takes (F32, F16, BF16, I32)", qn,
                        (int)dt);
    if (rank < 1 || rank > OTU_ST_WRITE_MAX_RANK)
        return otu__err(OTU_EINVAL, err, errlen, "tensor %s: rank %d is not 1..%d", qn, rank,
                        OTU_ST_WRITE_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0)
            return otu__err(OTU_EINVAL, err, errlen, "tensor %s: dimension %d is %lld", qn, i,
                            (long long)shape[i]);
    size_t count;
    int ov;
    size_t nbytes = shape_bytes(shape, rank, otu_dtype_size(dt), &count, &ov);
    if (ov)
        return otu__err(OTU_EINVAL, err, errlen, "tensor %s: shape overflows size_t", qn);
    if (!data && nbytes)
        return otu__err(OTU_EINVAL, err, errlen, "tensor %s: data is NULL", qn);
    /* Linear: a checkpoint has at most a few thousand tensors, added once each. */
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return otu__err(OTU_EINVAL, err, errlen, "tensor %s added twice", qn);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *a = realloc(w->t, cap * sizeof *a);
        if (!a)
            return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
        w->t = a;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    t->dt = dt;
    t->rank = rank;
    memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return OTU_OK;
}

int otu_st_writer_meta(otu_st_writer *w, const char *key, const char *value, char *err,
                       size_t errlen)
{
    int s = check_utf8(key, "metadata key", err, errlen);
    if (!s)
        s = check_utf8(value, "metadata value", err, errlen);
    if (s)
        return s;
    char *v = strdup(value);
    if (!v)
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < w->nm; i++)
        if (strcmp(w->m[i].key, key) == 0) {
            free(w->m[i].value);
            w->m[i].value = v;
            return OTU_OK;
        }
    if (w->nm == w->capm) {
        size_t cap = w->capm ? 2 * w->capm : 8;
        kv *a = realloc(w->m, cap * sizeof *a);
        if (!a) {
            free(v);
            return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
        }
        w->m = a;
        w->capm = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    }
    w->m[w->nm++] = (kv){k, v};
    return OTU_OK;
}

/* A growing byte buffer for the header. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string: quotes, '"' and '\\' escaped, control bytes as \n-style or \u00XX escapes;
 * UTF-8 passes through (it was checked when added). */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            static const char short_esc[] = "\b\t\n\f\r";
            const char *se = memchr(short_esc, c, 5);
            char e[8];
            if (se) {
                e[0] = '\\';
                e[1] = "btnfr"[se - short_esc];
                sb_put(b, e, 2);
            } else {
                snprintf(e, sizeof e, "\\u%04x", c);
                sb_put(b, e, 6);
            }
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void sb_u64(sbuf *b, unsigned long long v)
{
    char d[24];
    sb_put(b, d, (size_t)snprintf(d, sizeof d, "%llu", v));
}

/* Tensors in data order: element size descending, then as added (a stable sort, by hand: the
 * count is small and qsort is not stable). */
static size_t *data_order(const otu_st_writer *w)
{
    size_t *ord = malloc((w->n ? w->n : 1) * sizeof *ord);
    if (!ord)
        return NULL;
    size_t k = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (size_t i = 0; i < w->n; i++)
            if (otu_dtype_size(w->t[i].dt) == size)
                ord[k++] = i;
    return ord;
}

/* Writes n bytes of little-endian elements of `size` bytes from p to f. */
static int write_le(FILE *f, const void *p, size_t n, size_t size)
{
    if (host_is_le() || size == 1)
        return fwrite(p, 1, n, f) == n ? 0 : -1;
    unsigned char chunk[1 << 14];
    const unsigned char *s = p;
    for (size_t o = 0; o < n;) {
        size_t m = n - o < sizeof chunk ? n - o : sizeof chunk;
        memcpy(chunk, s + o, m);
        swap_elements(chunk, m, size);
        if (fwrite(chunk, 1, m, f) != m)
            return -1;
        o += m;
    }
    return 0;
}

/* fsync of path's folder, so the rename itself survives a crash. Best effort: some file
 * systems refuse to open or sync a directory, and the file's data is already synced. */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int otu_st_writer_write(otu_st_writer *w, const char *path, char *err, size_t errlen)
{
    size_t *ord = data_order(w);
    if (!ord)
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    sbuf h = {0};
    sb_str(&h, "{");
    int first = 1;
    if (w->nm) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nm; i++) {
            if (i)
                sb_str(&h, ",");
            sb_json(&h, w->m[i].key);
            sb_str(&h, ":");
            sb_json(&h, w->m[i].value);
        }
        sb_str(&h, "}");
        first = 0;
    }
    size_t off = 0;
    for (size_t k = 0; k < w->n; k++) {
        const wtensor *t = &w->t[ord[k]];
        if (!first)
            sb_str(&h, ",");
        first = 0;
        sb_json(&h, t->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, otu_dtype_name(t->dt));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->rank; d++) {
            if (d)
                sb_str(&h, ",");
            sb_u64(&h, (unsigned long long)t->shape[d]);
        }
        sb_str(&h, "],\"data_offsets\":[");
        sb_u64(&h, off);
        sb_str(&h, ",");
        sb_u64(&h, off + t->nbytes);
        sb_str(&h, "]}");
        off += t->nbytes;
    }
    sb_str(&h, "}");
    /* Spaces up to a multiple of 8: the data then starts 8-aligned (8 + N). */
    while (!h.oom && h.n % 8)
        sb_str(&h, " ");
    if (h.oom) {
        free(ord);
        free(h.p);
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        free(ord);
        free(h.p);
        return otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp-%ld", path, (long)getpid());
    int status = OTU_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        status = otu__err(OTU_EIO, err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(h.p, 1, h.n, f) != h.n;
    for (size_t k = 0; k < w->n && !bad; k++) {
        const wtensor *t = &w->t[ord[k]];
        bad = t->nbytes && write_le(f, t->data, t->nbytes, otu_dtype_size(t->dt)) != 0;
    }
    if (!bad)
        bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        status = otu__err(OTU_EIO, err, errlen, "%s: write failed: %s", tmp, strerror(e));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        status = otu__err(OTU_EIO, err, errlen, "%s: cannot rename to %s: %s", tmp, path,
                          strerror(errno));
        unlink(tmp);
        goto done;
    }
    sync_folder(path);
done:
    free(tmp);
    free(ord);
    free(h.p);
    return status;
}

/* ---- reader ------------------------------------------------------------------------------ */

struct otu_st_file {
    char *path;         /* the name messages use */
    unsigned char *buf; /* the whole file */
    size_t len;
    otu__json doc; /* names and metadata strings live in its arena */
    otu_st_tensor *t;
    size_t n;
    size_t *byname; /* indices into t, sorted by name */
    const char **mk, **mv;
    size_t nm;
};

void otu_st_close(otu_st_file *f)
{
    if (!f)
        return;
    otu__json_free(&f->doc);
    free(f->path);
    free(f->buf);
    free(f->t);
    free(f->byname);
    free(f->mk);
    free(f->mv);
    free(f);
}

static int parse_dtype(const char *s, otu_dtype *dt)
{
    for (int i = 0; i < OTU_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *dt = (otu_dtype)i;
            return 0;
        }
    return -1;
}

/* Sort records that carry their keys, so the sorts need no context pointer (qsort_r is not
 * portable) and no global (the reader is reentrant). */
typedef struct byname_rec {
    const char *name;
    size_t idx;
} byname_rec;

static int cmp_byname(const void *a, const void *b)
{
    return strcmp(((const byname_rec *)a)->name, ((const byname_rec *)b)->name);
}

typedef struct span_rec {
    uint64_t begin, end;
    size_t idx;
} span_rec;

static int cmp_span(const void *a, const void *b)
{
    const span_rec *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Reads one tensor's entry (node e, a member of the top object) into *t. */
static int parse_tensor(const otu__json *doc, const otu__json_node *e, const char *name,
                        otu_st_tensor *t, uint64_t *begin, uint64_t *end, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    const char *qn = otu__quote(e->key, strlen(e->key), OTU__QUOTE_MAX, q, sizeof q);
    if (e->kind != OTU__JSON_OBJECT)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: expected an object", name, e->pos, qn);
    for (long c = e->first; c >= 0; c = doc->nodes[c].next) {
        const char *k = doc->nodes[c].key;
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets")) {
            char q2[OTU__QUOTE_CAP];
            return otu__err(
                OTU_EPARSE, err, errlen, "%s: header byte %zu: tensor %s: unknown field %s", name,
                doc->nodes[c].keypos, qn, otu__quote(k, strlen(k), OTU__QUOTE_MAX, q2, sizeof q2));
        }
    }
    const otu__json_node *dt = otu__json_get(doc, e, "dtype");
    const otu__json_node *sh = otu__json_get(doc, e, "shape");
    const otu__json_node *of = otu__json_get(doc, e, "data_offsets");
    if (!dt || !sh || !of)
        return otu__err(OTU_EPARSE, err, errlen, "%s: header byte %zu: tensor %s: missing \"%s\"",
                        name, e->pos, qn,
                        !dt   ? "dtype"
                        : !sh ? "shape"
                              : "data_offsets");
    if (dt->kind != OTU__JSON_STRING)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: dtype is not a string", name, dt->pos, qn);
    if (parse_dtype(dt->str, &t->dtype)) {
        char q2[OTU__QUOTE_CAP];
        return otu__err(OTU_EPARSE, err, errlen, "%s: header byte %zu: tensor %s: unknown dtype %s",
                        name, dt->pos, qn,
                        otu__quote(dt->str, dt->len, OTU__QUOTE_MAX, q2, sizeof q2));
    }
    if (sh->kind != OTU__JSON_ARRAY || sh->count > OTU_ST_MAX_RANK)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: shape is not an array of at most %d "
                        "integers",
                        name, sh->pos, qn, OTU_ST_MAX_RANK);
    t->rank = 0;
    for (long c = sh->first; c >= 0; c = doc->nodes[c].next) {
        const otu__json_node *d = &doc->nodes[c];
        if (d->kind != OTU__JSON_INT || d->num < 0)
            return otu__err(OTU_EPARSE, err, errlen,
                            "%s: header byte %zu: tensor %s: shape[%d] is not an integer >= 0",
                            name, d->pos, qn, t->rank);
        t->shape[t->rank++] = d->num;
    }
    if (of->kind != OTU__JSON_ARRAY || of->count != 2)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: data_offsets is not [begin, end]", name,
                        of->pos, qn);
    const otu__json_node *b = &doc->nodes[of->first], *en = &doc->nodes[b->next];
    if (b->kind != OTU__JSON_INT || en->kind != OTU__JSON_INT || b->num < 0 || en->num < b->num)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: data_offsets must be integers with 0 <= "
                        "begin <= end",
                        name, of->pos, qn);
    int ov;
    size_t nbytes = shape_bytes(t->shape, t->rank, otu_dtype_size(t->dtype), &t->count, &ov);
    if (ov || (uint64_t)nbytes != (uint64_t)(en->num - b->num)) {
        char sb[160], need[32];
        if (ov)
            snprintf(need, sizeof need, "more than SIZE_MAX");
        else
            snprintf(need, sizeof need, "%zu", nbytes);
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: tensor %s: %s %s needs %s bytes but data_offsets "
                        "[%lld, %lld] span %lld",
                        name, of->pos, qn, otu_dtype_name(t->dtype),
                        shape_str(t->shape, t->rank, sb, sizeof sb), need, (long long)b->num,
                        (long long)en->num, (long long)(en->num - b->num));
    }
    t->nbytes = nbytes;
    t->name = e->key;
    *begin = (uint64_t)b->num;
    *end = (uint64_t)en->num;
    return OTU_OK;
}

/* Validates f->buf[0..len) and builds the tensor table. */
static int parse_file(otu_st_file *f, const char *name, char *err, size_t errlen)
{
    if (f->len < 8)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: %zu bytes, too short for the 8-byte header length", name, f->len);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)f->buf[i] << (8 * i);
    if (hl > OTU_ST_MAX_HEADER)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header length %llu is over the limit of %llu bytes", name,
                        (unsigned long long)hl, (unsigned long long)OTU_ST_MAX_HEADER);
    if (hl > f->len - 8)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: header length %llu runs past the end of the file (%zu bytes)", name,
                        (unsigned long long)hl, f->len);
    if (hl < 2 || f->buf[8] != '{')
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: the header does not start with '{' (not a safetensors file?)", name);
    char what[300];
    snprintf(what, sizeof what, "%s: header", name);
    int s = otu__json_parse(&f->doc, (const char *)f->buf + 8, (size_t)hl, what, err, errlen);
    if (s)
        return s;
    const otu__json *doc = &f->doc;
    const otu__json_node *top = &doc->nodes[0];
    size_t data_len = f->len - 8 - (size_t)hl;
    const unsigned char *data = f->buf + 8 + hl;

    size_t nt = top->count;
    f->t = calloc(nt ? nt : 1, sizeof *f->t);
    span_rec *spans = malloc((nt ? nt : 1) * sizeof *spans);
    if (!f->t || !spans) {
        free(spans);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
    }
    for (long c = top->first; c >= 0; c = doc->nodes[c].next) {
        const otu__json_node *e = &doc->nodes[c];
        if (strcmp(e->key, "__metadata__") == 0) {
            if (e->kind != OTU__JSON_OBJECT) {
                free(spans);
                return otu__err(OTU_EPARSE, err, errlen,
                                "%s: header byte %zu: __metadata__ is not an object", name, e->pos);
            }
            f->mk = malloc((e->count ? e->count : 1) * sizeof *f->mk);
            f->mv = malloc((e->count ? e->count : 1) * sizeof *f->mv);
            if (!f->mk || !f->mv) {
                free(spans);
                return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
            }
            for (long m = e->first; m >= 0; m = doc->nodes[m].next) {
                const otu__json_node *v = &doc->nodes[m];
                if (v->kind != OTU__JSON_STRING) {
                    char q[OTU__QUOTE_CAP];
                    free(spans);
                    return otu__err(
                        OTU_EPARSE, err, errlen,
                        "%s: header byte %zu: __metadata__ value of %s is not a "
                        "string",
                        name, v->pos,
                        otu__quote(v->key, strlen(v->key), OTU__QUOTE_MAX, q, sizeof q));
                }
                f->mk[f->nm] = v->key;
                f->mv[f->nm++] = v->str;
            }
            continue;
        }
        otu_st_tensor *t = &f->t[f->n];
        uint64_t b = 0, en = 0;
        s = parse_tensor(doc, e, name, t, &b, &en, err, errlen);
        if (s) {
            free(spans);
            return s;
        }
        spans[f->n] = (span_rec){b, en, f->n};
        f->n++;
    }
    /* The tensors must tile the data: sorted by offset, each starts where the previous ends,
     * the first at 0 and the last at the data's end. This also rules out overlaps. */
    qsort(spans, f->n, sizeof *spans, cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (spans[i].begin != at) {
            char q[OTU__QUOTE_CAP];
            const char *tn = f->t[spans[i].idx].name;
            s = otu__err(OTU_EPARSE, err, errlen,
                         "%s: tensor %s starts at data byte %llu, expected %llu (%s)", name,
                         otu__quote(tn, strlen(tn), OTU__QUOTE_MAX, q, sizeof q),
                         (unsigned long long)spans[i].begin, (unsigned long long)at,
                         spans[i].begin > at ? "a gap in the data" : "overlapping tensors");
            free(spans);
            return s;
        }
        at = spans[i].end;
    }
    free(spans);
    if (at != (uint64_t)data_len)
        return otu__err(OTU_EPARSE, err, errlen,
                        "%s: the tensors cover %llu data bytes but the file has %zu after the "
                        "header",
                        name, (unsigned long long)at, data_len);
    /* Every span is now inside the data, so the pointers can be made. */
    for (long c = top->first, i = 0; c >= 0; c = doc->nodes[c].next) {
        const otu__json_node *e = &doc->nodes[c];
        if (strcmp(e->key, "__metadata__") == 0)
            continue;
        const otu__json_node *of = otu__json_get(doc, e, "data_offsets");
        f->t[i++].data = data + doc->nodes[of->first].num;
    }

    byname_rec *bn = malloc((f->n ? f->n : 1) * sizeof *bn);
    f->byname = malloc((f->n ? f->n : 1) * sizeof *f->byname);
    if (!bn || !f->byname) {
        free(bn);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
    }
    for (size_t i = 0; i < f->n; i++)
        bn[i] = (byname_rec){f->t[i].name, i};
    qsort(bn, f->n, sizeof *bn, cmp_byname);
    for (size_t i = 0; i < f->n; i++)
        f->byname[i] = bn[i].idx;
    free(bn);
    return OTU_OK;
}

static int parse_owned(unsigned char *buf, size_t len, const char *name, otu_st_file **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    otu_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        free(buf);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
    }
    f->buf = buf;
    f->len = len;
    f->path = strdup(name);
    if (!f->path) {
        otu_st_close(f);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
    }
    int s = parse_file(f, name, err, errlen);
    if (s) {
        otu_st_close(f);
        return s;
    }
    *out = f;
    return OTU_OK;
}

int otu_st_parse(const void *buf, size_t len, const char *name, otu_st_file **out, char *err,
                 size_t errlen)
{
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) {
        *out = NULL;
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", name);
    }
    if (len)
        memcpy(copy, buf, len);
    return parse_owned(copy, len, name, out, err, errlen);
}

int otu_st_open(const char *path, otu_st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return otu__err(OTU_EIO, err, errlen, "%s: %s", path, strerror(errno));
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(fp);
        return otu__err(OTU_EIO, err, errlen, "%s: cannot seek: %s", path, strerror(e));
    }
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(fp);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory for %ld bytes", path, size);
    }
    size_t got = fread(buf, 1, (size_t)size, fp);
    int e = errno, bad = ferror(fp);
    fclose(fp);
    if (bad || got != (size_t)size) {
        free(buf);
        return otu__err(OTU_EIO, err, errlen, "%s: read %zu of %ld bytes: %s", path, got, size,
                        bad ? strerror(e) : "file shrank");
    }
    return parse_owned(buf, (size_t)size, path, out, err, errlen);
}

size_t otu_st_count(const otu_st_file *f) { return f->n; }

const otu_st_tensor *otu_st_at(const otu_st_file *f, size_t i)
{
    return i < f->n ? &f->t[i] : NULL;
}

const otu_st_tensor *otu_st_find(const otu_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->byname[mid]].name, name);
        if (c == 0)
            return &f->t[f->byname[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t otu_st_meta_count(const otu_st_file *f) { return f->nm; }

int otu_st_meta_at(const otu_st_file *f, size_t i, const char **key, const char **value)
{
    if (i >= f->nm)
        return OTU_EINVAL;
    *key = f->mk[i];
    *value = f->mv[i];
    return OTU_OK;
}

const char *otu_st_meta(const otu_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nm; i++)
        if (strcmp(f->mk[i], key) == 0)
            return f->mv[i];
    return NULL;
}

int otu_st_expect(const otu_st_file *f, const char *name, otu_dtype dt, int rank,
                  const int64_t *shape, const otu_st_tensor **out, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    const char *qn = otu__quote(name, strlen(name), OTU__QUOTE_MAX, q, sizeof q);
    const otu_st_tensor *t = otu_st_find(f, name);
    if (!t)
        return otu__err(OTU_ENOTFOUND, err, errlen, "%s: no tensor %s (the file has %zu)", f->path,
                        qn, f->n);
    int same = t->dtype == dt && t->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[160], have[160];
        shape_str(shape, rank, want, sizeof want);
        shape_str(t->shape, t->rank, have, sizeof have);
        return otu__err(OTU_EMISMATCH, err, errlen,
                        "%s: tensor %s: expected %s %s, the file has %s %s", f->path, qn,
                        otu_dtype_name(dt) ? otu_dtype_name(dt) : "?", want,
                        otu_dtype_name(t->dtype), have);
    }
    if (out)
        *out = t;
    return OTU_OK;
}

int otu_st_read(const otu_st_tensor *t, void *dst, size_t dstlen)
{
    if (dstlen < t->nbytes)
        return OTU_EINVAL;
    if (t->nbytes)
        memcpy(dst, t->data, t->nbytes);
    if (!host_is_le())
        swap_elements(dst, t->nbytes, otu_dtype_size(t->dtype));
    return OTU_OK;
}

/* ---- half precision ----------------------------------------------------------------------
 * Fabian Giesen's branch-light conversions (public domain), which round to nearest even and
 * handle subnormals with one float addition. */

typedef union fbits {
    float f;
    uint32_t u;
} fbits;

uint16_t otu_f16_from_f32(float x)
{
    fbits f = {.f = x};
    const fbits f32inf = {.u = 255u << 23}, f16max = {.u = (127u + 16) << 23};
    const fbits denorm_magic = {.u = ((127u - 15) + (23 - 10) + 1) << 23};
    uint32_t sign = f.u & 0x80000000u, o;
    f.u ^= sign;
    if (f.u >= f16max.u) {
        o = f.u > f32inf.u ? 0x7e00 : 0x7c00; /* NaN stays a (quiet) NaN, else infinity */
    } else if (f.u < (113u << 23)) {
        /* Subnormal or zero: adding 0.5 puts the f16 ulp at the float's last bit, and the
         * FPU's own rounding does the rest. */
        f.f += denorm_magic.f;
        o = f.u - denorm_magic.u;
    } else {
        uint32_t mant_odd = (f.u >> 13) & 1;
        f.u += ((uint32_t)(15 - 127) << 23) + 0xfff + mant_odd;
        o = f.u >> 13;
    }
    return (uint16_t)(o | (sign >> 16));
}

float otu_f32_from_f16(uint16_t h)
{
    const fbits magic = {.u = 113u << 23};
    const uint32_t shifted_exp = 0x7c00u << 13;
    fbits o = {.u = (uint32_t)(h & 0x7fff) << 13};
    uint32_t exp = shifted_exp & o.u;
    o.u += (uint32_t)(127 - 15) << 23;
    if (exp == shifted_exp) {
        o.u += (uint32_t)(128 - 16) << 23; /* infinity or NaN */
    } else if (exp == 0) {
        o.u += 1u << 23; /* zero or subnormal: renormalise */
        o.f -= magic.f;
    }
    o.u |= (uint32_t)(h & 0x8000) << 16;
    return o.f;
}

uint16_t otu_bf16_from_f32(float x)
{
    fbits f = {.f = x};
    if ((f.u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((f.u >> 16) | 0x40); /* keep it a NaN after the truncation */
    f.u += 0x7fffu + ((f.u >> 16) & 1);
    return (uint16_t)(f.u >> 16);
}

float otu_f32_from_bf16(uint16_t h)
{
    fbits f = {.u = (uint32_t)h << 16};
    return f.f;
}
