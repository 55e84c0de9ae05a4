/* tools/train/config.c: the settings store, its file parser, the command-line merge and the
 * typed getters. A run has tens of keys, so the store is an array searched linearly: simpler
 * than a hash map and never the cost that matters next to a training step. */
#include "config.h"

#include "readfile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARGS_ORIGIN "command line"

typedef struct entry {
    otu_config_entry pub; /* first, so a pub pointer is the entry's */
    char *key, *value;
} entry;

struct otu_config {
    entry **e; /* pointers, so an entry handed out stays put when the array grows */
    size_t n, cap;
    char **origins; /* interned origin names, freed with the store */
    size_t norigins;
};

int otu_config_create(otu_config **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? OTU_OK : OTU_ENOMEM;
}

void otu_config_destroy(otu_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i]->key);
        free(c->e[i]->value);
        free(c->e[i]);
    }
    for (size_t i = 0; i < c->norigins; i++)
        free(c->origins[i]);
    free(c->e);
    free(c->origins);
    free(c);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static const char *intern_origin(otu_config *c, const char *origin)
{
    for (size_t i = 0; i < c->norigins; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return c->origins[i];
    char **o = realloc(c->origins, (c->norigins + 1) * sizeof *o);
    if (!o)
        return NULL;
    c->origins = o;
    char *s = dup_n(origin, strlen(origin));
    if (!s)
        return NULL;
    c->origins[c->norigins++] = s;
    return s;
}

static int key_char(char ch, int first)
{
    unsigned char u = (unsigned char)ch;
    if (isalpha(u) || ch == '_')
        return 1;
    return !first && (isdigit(u) || ch == '-' || ch == '.');
}

/* Checks and normalises key[0..n) into a new string; NULL with *bad = 1 if it is not a key. */
static char *normalise_key(const char *key, size_t n, int *bad)
{
    *bad = 0;
    if (n == 0 || !key_char(key[0], 1)) {
        *bad = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!key_char(key[i], 0)) {
            *bad = 1;
            return NULL;
        }
    char *k = dup_n(key, n);
    if (k)
        for (char *p = k; *p; p++)
            if (*p == '-')
                *p = '_';
    return k;
}

static entry *find_norm(const otu_config *c, const char *nkey)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i]->key, nkey) == 0)
            return c->e[i];
    return NULL;
}

/* Stores nkey (taken over) = value[0..vlen) from origin:line. */
static int put(otu_config *c, char *nkey, const char *value, size_t vlen, const char *origin,
               int line, int from_args)
{
    const char *org = intern_origin(c, origin);
    char *v = dup_n(value, vlen);
    if (!org || !v) {
        free(nkey);
        free(v);
        return OTU_ENOMEM;
    }
    entry *e = find_norm(c, nkey);
    if (e) {
        free(nkey);
        /* Only a repeat inside one source is suspicious; a later file or a flag overriding
         * the file is the intended use. */
        int same_source = !from_args && !e->pub.from_args && e->pub.origin == org;
        e->pub.dup_line = same_source ? e->pub.line : 0;
        free(e->value);
        e->value = v;
        e->pub.value = v;
        e->pub.origin = org;
        e->pub.line = line;
        e->pub.from_args = from_args;
        e->pub.used = 0;
        return OTU_OK;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        entry **a = realloc(c->e, cap * sizeof *a);
        if (!a) {
            free(nkey);
            free(v);
            return OTU_ENOMEM;
        }
        c->e = a;
        c->cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        free(nkey);
        free(v);
        return OTU_ENOMEM;
    }
    e->key = nkey;
    e->value = v;
    e->pub.key = nkey;
    e->pub.value = v;
    e->pub.origin = org;
    e->pub.line = line;
    e->pub.from_args = from_args;
    c->e[c->n++] = e;
    return OTU_OK;
}

int otu_config_set(otu_config *c, const char *key, const char *value, const char *origin, int line,
                   char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    int bad;
    char *nk = normalise_key(key, strlen(key), &bad);
    if (!nk)
        return bad ? otu__err(OTU_EPARSE, err, errlen, "%s:%d: invalid key %s", origin, line,
                              otu__quote(key, strlen(key), OTU__QUOTE_MAX, q, sizeof q))
                   : otu__err(OTU_ENOMEM, err, errlen, "out of memory");
    int s = put(c, nk, value, strlen(value), origin, line, 0);
    return s ? otu__err(s, err, errlen, "out of memory") : OTU_OK;
}

/* ---- the file parser --------------------------------------------------------------------- */

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f'; }

/* Reads a quoted value at s[0..n) (s[0] is the quote) into a new buffer of the unescaped text,
 * *olen bytes; returns NULL with a message in err when it is malformed. */
static char *unquote(const char *origin, int line, const char *key, const char *s, size_t n,
                     size_t *olen, int *status, char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    char *buf = malloc(n + 1);
    if (!buf) {
        *status = otu__err(OTU_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    size_t o = 0, i = 1;
    int closed = 0;
    while (i < n && !closed) {
        char ch = s[i++];
        if (ch == '"') {
            closed = 1;
        } else if (ch != '\\') {
            buf[o++] = ch;
        } else if (i < n) {
            char x = s[i++];
            switch (x) {
            case '"': buf[o++] = '"'; break;
            case '\\': buf[o++] = '\\'; break;
            case 'n': buf[o++] = '\n'; break;
            case 't': buf[o++] = '\t'; break;
            default:
                free(buf);
                *status = otu__err(OTU_EPARSE, err, errlen,
                                   "%s:%d: unknown escape %s in the value of \"%s\"", origin, line,
                                   otu__quote(s + i - 2, 2, OTU__QUOTE_MAX, q, sizeof q), key);
                return NULL;
            }
        }
    }
    if (!closed) {
        free(buf);
        *status = otu__err(OTU_EPARSE, err, errlen, "%s:%d: unterminated string %s for key \"%s\"",
                           origin, line, otu__quote(s, n, OTU__QUOTE_MAX, q, sizeof q), key);
        return NULL;
    }
    while (i < n && is_space(s[i]))
        i++;
    if (i < n && s[i] != '#') {
        free(buf);
        *status =
            otu__err(OTU_EPARSE, err, errlen, "%s:%d: text after the closing quote of \"%s\": %s",
                     origin, line, key, otu__quote(s + i, n - i, OTU__QUOTE_MAX, q, sizeof q));
        return NULL;
    }
    *olen = o;
    return buf;
}

/* Parses one line s[0..n) (no '\n'). */
static int parse_line(otu_config *c, const char *origin, int line, const char *s, size_t n,
                      char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    size_t b = 0, e = n;
    while (b < e && is_space(s[b]))
        b++;
    while (e > b && is_space(s[e - 1]))
        e--;
    if (b == e || s[b] == '#')
        return OTU_OK;
    const char *eq = memchr(s + b, '=', e - b);
    if (!eq)
        return otu__err(OTU_EPARSE, err, errlen, "%s:%d: expected \"key = value\", got %s", origin,
                        line, otu__quote(s + b, e - b, OTU__QUOTE_MAX, q, sizeof q));
    size_t ke = (size_t)(eq - s);
    while (ke > b && is_space(s[ke - 1]))
        ke--;
    if (ke == b)
        return otu__err(OTU_EPARSE, err, errlen, "%s:%d: missing key before '=' in %s", origin,
                        line, otu__quote(s + b, e - b, OTU__QUOTE_MAX, q, sizeof q));
    int bad;
    char *nk = normalise_key(s + b, ke - b, &bad);
    if (!nk)
        return bad ? otu__err(OTU_EPARSE, err, errlen, "%s:%d: invalid key %s", origin, line,
                              otu__quote(s + b, ke - b, OTU__QUOTE_MAX, q, sizeof q))
                   : otu__err(OTU_ENOMEM, err, errlen, "out of memory");

    size_t vb = (size_t)(eq - s) + 1;
    while (vb < e && is_space(s[vb]))
        vb++;
    const char *v;
    size_t vlen;
    char *unq = NULL;
    int st = OTU_OK;
    if (vb < e && s[vb] == '"') {
        unq = unquote(origin, line, nk, s + vb, e - vb, &vlen, &st, err, errlen);
        v = unq;
    } else {
        /* An unquoted value ends at a '#': that is the trailing comment. */
        const char *hash = memchr(s + vb, '#', e - vb);
        size_t ve = hash ? (size_t)(hash - s) : e;
        while (ve > vb && is_space(s[ve - 1]))
            ve--;
        v = s + vb;
        vlen = ve - vb;
        if (vlen == 0)
            st = otu__err(OTU_EPARSE, err, errlen,
                          "%s:%d: key \"%s\" has no value (write \"\" for an empty string)", origin,
                          line, nk);
    }
    if (st) {
        free(nk);
        return st;
    }
    st = put(c, nk, v, vlen, origin, line, 0); /* takes nk */
    free(unq);
    return st ? otu__err(st, err, errlen, "out of memory") : OTU_OK;
}

int otu_config_parse(otu_config *c, const char *origin, const char *text, size_t len, char *err,
                     size_t errlen)
{
    int line = 1;
    size_t b = 0;
    while (b < len) {
        const char *nl = memchr(text + b, '\n', len - b);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (memchr(text + b, '\0', e - b))
            return otu__err(OTU_EPARSE, err, errlen, "%s:%d: NUL byte in the line", origin, line);
        int s = parse_line(c, origin, line, text + b, e - b, err, errlen);
        if (s)
            return s;
        b = e + 1;
        line++;
    }
    return OTU_OK;
}

int otu_config_load(otu_config *c, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t n;
    int s = otu__read_file(path, &buf, &n, err, errlen);
    if (s)
        return s;
    s = otu_config_parse(c, path, buf, n, err, errlen);
    free(buf);
    return s;
}

/* ---- command line ------------------------------------------------------------------------ */

static int is_negative_number(const char *a)
{
    if (a[0] != '-' || !a[1])
        return 0;
    char *end;
    errno = 0;
    (void)strtod(a, &end);
    return *end == '\0';
}

int otu_config_args(otu_config *c, int argc, char **argv, int *npositional, char *err,
                    size_t errlen)
{
    char q[OTU__QUOTE_CAP];
    int npos = 0;
    int flags_done = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (flags_done || a[0] != '-' || strcmp(a, "-") == 0 || is_negative_number(a)) {
            argv[1 + npos++] = a; /* npos < i, so this never overwrites an unread argument */
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = 1;
            continue;
        }
        if (a[1] != '-')
            return otu__err(OTU_EPARSE, err, errlen,
                            ARGS_ORIGIN ": argv[%d] %s: flags take two dashes, as in --key value",
                            i, otu__quote(a, strlen(a), OTU__QUOTE_MAX, q, sizeof q));
        const char *k = a + 2;
        const char *eq = strchr(k, '=');
        size_t klen = eq ? (size_t)(eq - k) : strlen(k);
        int bad;
        char *nk = normalise_key(k, klen, &bad);
        if (!nk)
            return bad ? otu__err(OTU_EPARSE, err, errlen,
                                  ARGS_ORIGIN ": argv[%d]: invalid flag %s", i,
                                  otu__quote(a, strlen(a), OTU__QUOTE_MAX, q, sizeof q))
                       : otu__err(OTU_ENOMEM, err, errlen, "out of memory");
        const char *v;
        int line = i;
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            v = argv[++i];
        } else {
            v = "true"; /* a bare switch, `--check` */
        }
        int s = put(c, nk, v, strlen(v), ARGS_ORIGIN, line, 1);
        if (s)
            return otu__err(s, err, errlen, "out of memory");
    }
    if (npositional)
        *npositional = npos;
    if (1 + npos < argc)
        argv[1 + npos] = NULL; /* as argv[argc] is, so the positional list ends like argv */
    return OTU_OK;
}

/* ---- lookup ------------------------------------------------------------------------------ */

size_t otu_config_count(const otu_config *c) { return c->n; }

const otu_config_entry *otu_config_at(const otu_config *c, size_t i)
{
    return i < c->n ? &c->e[i]->pub : NULL;
}

/* Looks key up after normalising it; a stack copy covers every realistic key, so lookups
 * allocate only for absurdly long ones. */
static entry *find(const otu_config *c, const char *key)
{
    char small[128];
    size_t n = strlen(key);
    char *k = n < sizeof small ? small : malloc(n + 1);
    if (!k)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        k[i] = key[i] == '-' ? '_' : key[i];
    entry *e = find_norm(c, k);
    if (k != small)
        free(k);
    return e;
}

const otu_config_entry *otu_config_find(const otu_config *c, const char *key)
{
    entry *e = find(c, key);
    return e ? &e->pub : NULL;
}

int otu_config_mark_used(otu_config *c, const char *key)
{
    entry *e = find(c, key);
    if (!e)
        return 0;
    e->pub.used = 1;
    return 1;
}

const char *otu_config_where(const otu_config_entry *e, char *buf, size_t len)
{
    if (e->from_args) {
        snprintf(buf, len, "%s --", e->origin);
        /* show the flag as the user would type it: dashes, not the stored underscores */
        size_t o = strlen(buf);
        for (const char *p = e->key; *p && o + 1 < len; p++)
            buf[o++] = *p == '_' ? '-' : *p;
        if (len)
            buf[o < len ? o : len - 1] = '\0';
    } else {
        snprintf(buf, len, "%s:%d", e->origin, e->line);
    }
    return buf;
}

size_t otu_config_report_unused(const otu_config *c, FILE *out)
{
    size_t n = 0;
    char where[256];
    for (size_t i = 0; i < c->n; i++) {
        const otu_config_entry *e = &c->e[i]->pub;
        if (e->used)
            continue;
        n++;
        if (out)
            fprintf(out, "%s: unknown key \"%s\"\n", otu_config_where(e, where, sizeof where),
                    e->key);
    }
    return n;
}

size_t otu_config_warn_duplicates(const otu_config *c, FILE *out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const otu_config_entry *e = &c->e[i]->pub;
        if (e->dup_line <= 0)
            continue;
        n++;
        if (out)
            fprintf(out, "%s:%d: duplicate key \"%s\" replaces line %d\n", e->origin, e->line,
                    e->key, e->dup_line);
    }
    return n;
}

/* ---- getters ----------------------------------------------------------------------------- */

/* Finds key and marks it used; NULL when absent. */
static const otu_config_entry *take(otu_config *c, const char *key)
{
    entry *e = find(c, key);
    if (!e)
        return NULL;
    e->pub.used = 1;
    return &e->pub;
}

int otu_config_string(otu_config *c, const char *key, const char **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const otu_config_entry *e = take(c, key);
    if (!e)
        return 0;
    *out = e->value;
    return 1;
}

/* Parses a whole decimal integer; 0 ok, OTU_EPARSE not an integer, OTU_ERANGE beyond long. */
static int parse_long(const char *s, size_t n, long *v)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return n == 0 ? OTU_EPARSE : OTU_ERANGE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    size_t i = (buf[0] == '+' || buf[0] == '-') ? 1 : 0;
    if (!buf[i])
        return OTU_EPARSE;
    for (size_t j = i; buf[j]; j++)
        if (!isdigit((unsigned char)buf[j]))
            return OTU_EPARSE;
    errno = 0;
    *v = strtol(buf, NULL, 10);
    return errno == ERANGE ? OTU_ERANGE : OTU_OK;
}

int otu_config_long(otu_config *c, const char *key, long min, long max, long *out, char *err,
                    size_t errlen)
{
    char q[OTU__QUOTE_CAP], w[160];
    const otu_config_entry *e = take(c, key);
    if (!e)
        return 0;
    long v;
    int s = parse_long(e->value, strlen(e->value), &v);
    if (s == OTU_EPARSE)
        return otu__err(s, err, errlen, "%s: key \"%s\": expected an integer, got %s",
                        otu_config_where(e, w, sizeof w), e->key,
                        otu__quote(e->value, strlen(e->value), OTU__QUOTE_MAX, q, sizeof q));
    if (s || v < min || v > max)
        return otu__err(OTU_ERANGE, err, errlen, "%s: key \"%s\": %s is out of range [%ld, %ld]",
                        otu_config_where(e, w, sizeof w), e->key,
                        otu__quote(e->value, strlen(e->value), OTU__QUOTE_MAX, q, sizeof q), min,
                        max);
    *out = v;
    return 1;
}

int otu_config_double(otu_config *c, const char *key, double min, double max, double *out,
                      char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP], w[160];
    const otu_config_entry *e = take(c, key);
    if (!e)
        return 0;
    const char *s = e->value;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod skips leading spaces; the value was trimmed already, so any left are inner. */
    if (end == s || *end != '\0' || isspace((unsigned char)s[0]))
        return otu__err(OTU_EPARSE, err, errlen, "%s: key \"%s\": expected a number, got %s",
                        otu_config_where(e, w, sizeof w), e->key,
                        otu__quote(s, strlen(s), OTU__QUOTE_MAX, q, sizeof q));
    /* Overflow gives inf; an underflow (ERANGE with a tiny value) is a usable number. */
    if (!isfinite(v))
        return otu__err(OTU_ERANGE, err, errlen, "%s: key \"%s\": %s is not a finite number",
                        otu_config_where(e, w, sizeof w), e->key,
                        otu__quote(s, strlen(s), OTU__QUOTE_MAX, q, sizeof q));
    if (v < min || v > max)
        return otu__err(OTU_ERANGE, err, errlen, "%s: key \"%s\": %s is out of range [%g, %g]",
                        otu_config_where(e, w, sizeof w), e->key,
                        otu__quote(s, strlen(s), OTU__QUOTE_MAX, q, sizeof q), min, max);
    *out = v;
    return 1;
}

int otu_config_bool(otu_config *c, const char *key, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};
    char q[OTU__QUOTE_CAP], w[160];
    const otu_config_entry *e = take(c, key);
    if (!e)
        return 0;
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(e->value, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(e->value, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return otu__err(OTU_EPARSE, err, errlen,
                    "%s: key \"%s\": expected true/false, yes/no or 1/0, got %s",
                    otu_config_where(e, w, sizeof w), e->key,
                    otu__quote(e->value, strlen(e->value), OTU__QUOTE_MAX, q, sizeof q));
}

/* One pass over the list: checks every item and, when out is not NULL, stores them. Called
 * once to validate and once to store, so *out stays untouched when the value is invalid. */
static int scan_ints(const otu_config_entry *e, long min, long max, int *out, size_t cap, size_t *n,
                     char *err, size_t errlen)
{
    char q[OTU__QUOTE_CAP], w[160];
    const char *s = e->value;
    size_t len = strlen(s), count = 0, b = 0;
    for (;;) {
        const char *comma = memchr(s + b, ',', len - b);
        size_t ie = comma ? (size_t)(comma - s) : len;
        size_t ib = b, te = ie;
        while (ib < te && is_space(s[ib]))
            ib++;
        while (te > ib && is_space(s[te - 1]))
            te--;
        long v = 0;
        int st = parse_long(s + ib, te - ib, &v);
        if (st == OTU_EPARSE)
            return otu__err(st, err, errlen,
                            "%s: key \"%s\": item %zu: expected an integer, got %s",
                            otu_config_where(e, w, sizeof w), e->key, count + 1,
                            otu__quote(s + ib, te - ib, OTU__QUOTE_MAX, q, sizeof q));
        if (st || v < min || v > max || v < -2147483647L - 1 || v > 2147483647L)
            return otu__err(OTU_ERANGE, err, errlen,
                            "%s: key \"%s\": item %zu: %s is out of range [%ld, %ld]",
                            otu_config_where(e, w, sizeof w), e->key, count + 1,
                            otu__quote(s + ib, te - ib, OTU__QUOTE_MAX, q, sizeof q), min, max);
        if (count == cap)
            return otu__err(OTU_ERANGE, err, errlen, "%s: key \"%s\": more than %zu items in %s",
                            otu_config_where(e, w, sizeof w), e->key, cap,
                            otu__quote(s, len, OTU__QUOTE_MAX, q, sizeof q));
        if (out)
            out[count] = (int)v;
        count++;
        if (!comma)
            break;
        b = ie + 1;
    }
    *n = count;
    return OTU_OK;
}

int otu_config_ints(otu_config *c, const char *key, long min, long max, int *out, size_t cap,
                    size_t *n, char *err, size_t errlen)
{
    const otu_config_entry *e = take(c, key);
    if (!e)
        return 0;
    size_t count;
    int s = scan_ints(e, min, max, NULL, cap, &count, err, errlen);
    if (s)
        return s;
    scan_ints(e, min, max, out, cap, n, NULL, 0);
    return 1;
}
