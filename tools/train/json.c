/* tools/train/json.c: a recursive-descent JSON reader, strict because a safetensors header is
 * attacker-controlled input for anyone who loads a downloaded checkpoint: every read is
 * bounds-checked, depth is capped, and all a header needs is all it takes. */
#include "json.h"

#include "status.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *s;
    size_t len, i;
    otu__json *doc;
    size_t an; /* arena bytes used */
    const char *what;
    char *err;
    size_t errlen;
} parser;

/* What stands at p->i, for messages: 'x', "end of header", or the byte in hex. */
static const char *got(const parser *p, char *buf, size_t cap)
{
    if (p->i >= p->len)
        snprintf(buf, cap, "end of input");
    else if (p->s[p->i] >= 0x20 && p->s[p->i] < 0x7f)
        snprintf(buf, cap, "'%c'", p->s[p->i]);
    else
        snprintf(buf, cap, "byte 0x%02x", p->s[p->i]);
    return buf;
}

static int fail(parser *p, const char *problem)
{
    char g[32];
    return otu__err(OTU_EPARSE, p->err, p->errlen, "%s byte %zu: %s, got %s", p->what, p->i,
                    problem, got(p, g, sizeof g));
}

static int fail_at(parser *p, size_t at, const char *problem)
{
    return otu__err(OTU_EPARSE, p->err, p->errlen, "%s byte %zu: %s", p->what, at, problem);
}

static void skip_ws(parser *p)
{
    while (p->i < p->len &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static long new_node(parser *p, otu__json_kind kind)
{
    otu__json *d = p->doc;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        otu__json_node *a = realloc(d->nodes, cap * sizeof *a);
        if (!a)
            return -1;
        d->nodes = a;
        d->cap = cap;
    }
    otu__json_node *nd = &d->nodes[d->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->pos = p->i;
    nd->first = nd->next = -1;
    return (long)d->n++;
}

static int hex4(parser *p, uint32_t *v)
{
    if (p->len - p->i < 4) {
        p->i = p->len;
        return fail(p, "truncated \\u escape");
    }
    uint32_t x = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s[p->i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(p, "expected 4 hex digits after \\u");
        x = (x << 4) | (uint32_t)d;
        p->i++;
    }
    *v = x;
    return 0;
}

/* Parses a string at p->i (the opening quote) into the arena; *out is its start there. Decoded
 * text is never longer than its source, and the two quotes pay for the NUL, so an arena of
 * len + 1 bytes holds every string of the text. */
static int parse_string(parser *p, const char **out, size_t *outlen)
{
    size_t start = p->i++;
    char *o = p->doc->arena + p->an;
    size_t n = 0;
    for (;;) {
        if (p->i >= p->len)
            return fail_at(p, start, "unterminated string");
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20)
            return fail(p, "control character in a string (escape it)");
        if (c == '\\') {
            p->i++;
            if (p->i >= p->len)
                return fail_at(p, start, "unterminated string");
            unsigned char e = p->s[p->i++];
            switch (e) {
            case '"': o[n++] = '"'; break;
            case '\\': o[n++] = '\\'; break;
            case '/': o[n++] = '/'; break;
            case 'b': o[n++] = '\b'; break;
            case 'f': o[n++] = '\f'; break;
            case 'n': o[n++] = '\n'; break;
            case 'r': o[n++] = '\r'; break;
            case 't': o[n++] = '\t'; break;
            case 'u': {
                size_t at = p->i - 2;
                uint32_t cp;
                if (hex4(p, &cp))
                    return OTU_EPARSE;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail_at(p, at, "lone low surrogate in a \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (p->len - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                        return fail_at(p, at, "high surrogate not followed by a \\u low one");
                    p->i += 2;
                    if (hex4(p, &lo))
                        return OTU_EPARSE;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(p, at, "high surrogate not followed by a low one");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp == 0)
                    return fail_at(p, at, "\\u0000 in a string");
                /* 6 source bytes (12 for a pair) always cover the <= 4 encoded ones. */
                n += otu__utf8_encode(cp, o + n);
                break;
            }
            default: p->i--; return fail(p, "unknown escape in a string");
            }
            continue;
        }
        if (c < 0x80) {
            o[n++] = (char)c;
            p->i++;
            continue;
        }
        uint32_t cp;
        size_t l = otu__utf8_decode(p->s + p->i, p->len - p->i, &cp);
        if (!l)
            return fail(p, "invalid UTF-8 in a string");
        memcpy(o + n, p->s + p->i, l);
        n += l;
        p->i += l;
    }
    o[n] = '\0';
    p->an += n + 1;
    *out = o;
    *outlen = n;
    return 0;
}

static int parse_int(parser *p, int64_t *v)
{
    size_t start = p->i;
    int neg = 0;
    if (p->s[p->i] == '-') {
        neg = 1;
        p->i++;
    }
    if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9')
        return fail(p, "expected a digit");
    if (p->s[p->i] == '0' && p->i + 1 < p->len && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
        return fail_at(p, start, "leading zero in a number");
    uint64_t x = 0;
    /* The magnitude of INT64_MIN is one more than INT64_MAX. */
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        unsigned d = p->s[p->i] - '0';
        if (x > (lim - d) / 10)
            return fail_at(p, start, "integer out of the 64-bit range");
        x = x * 10 + d;
        p->i++;
    }
    if (p->i < p->len && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
        return fail(p, "only integers are allowed in a safetensors header");
    *v = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
    return 0;
}

static int parse_value(parser *p, int depth, long *idx);

/* Appends child to parent's list; tail tracks the last child so this is O(1). */
static void link_child(otu__json *d, long parent, long *tail, long child)
{
    if (*tail < 0)
        d->nodes[parent].first = child;
    else
        d->nodes[*tail].next = child;
    *tail = child;
    d->nodes[parent].count++;
}

typedef struct keyref {
    const char *key;
    size_t pos;
} keyref;

static int cmp_keyref(const void *a, const void *b)
{
    const keyref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Duplicate keys make "which one wins" a parser detail, so they are refused. Sorting the keys
 * keeps this O(n log n): a header may hold thousands of tensors, and a hostile one millions. */
static int check_duplicates(parser *p, long self)
{
    const otu__json *d = p->doc;
    size_t n = d->nodes[self].count;
    if (n < 2)
        return 0;
    keyref *k = malloc(n * sizeof *k);
    if (!k)
        return otu__err(OTU_ENOMEM, p->err, p->errlen, "%s: out of memory", p->what);
    size_t j = 0;
    for (long c = d->nodes[self].first; c >= 0; c = d->nodes[c].next)
        k[j++] = (keyref){d->nodes[c].key, d->nodes[c].keypos};
    qsort(k, n, sizeof *k, cmp_keyref);
    for (size_t i = 1; i < n; i++)
        if (strcmp(k[i - 1].key, k[i].key) == 0) {
            char q[OTU__QUOTE_CAP];
            char msg[OTU__QUOTE_CAP + 64];
            snprintf(msg, sizeof msg, "duplicate key %s in the object at byte %zu",
                     otu__quote(k[i].key, strlen(k[i].key), OTU__QUOTE_MAX, q, sizeof q),
                     d->nodes[self].pos);
            size_t at = k[i].pos;
            free(k);
            return fail_at(p, at, msg);
        }
    free(k);
    return 0;
}

static int parse_object(parser *p, int depth, long self)
{
    long tail = -1;
    p->i++; /* '{' */
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == '}') {
        p->i++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->i >= p->len || p->s[p->i] != '"')
            return fail(p, "expected a string key in an object");
        size_t keypos = p->i;
        const char *key;
        size_t klen;
        int s = parse_string(p, &key, &klen);
        if (s)
            return s;
        skip_ws(p);
        if (p->i >= p->len || p->s[p->i] != ':')
            return fail(p, "expected ':' after an object key");
        p->i++;
        long child;
        s = parse_value(p, depth + 1, &child);
        if (s)
            return s;
        p->doc->nodes[child].key = key;
        p->doc->nodes[child].keypos = keypos;
        link_child(p->doc, self, &tail, child);
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->len && p->s[p->i] == '}') {
            p->i++;
            return check_duplicates(p, self);
        }
        return fail(p, "expected ',' or '}' in an object");
    }
}

static int parse_array(parser *p, int depth, long self)
{
    long tail = -1;
    p->i++; /* '[' */
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == ']') {
        p->i++;
        return 0;
    }
    for (;;) {
        long child;
        int s = parse_value(p, depth + 1, &child);
        if (s)
            return s;
        link_child(p->doc, self, &tail, child);
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->len && p->s[p->i] == ']') {
            p->i++;
            return 0;
        }
        return fail(p, "expected ',' or ']' in an array");
    }
}

static int parse_value(parser *p, int depth, long *idx)
{
    skip_ws(p);
    if (depth > OTU__JSON_MAX_DEPTH)
        return fail(p, "nesting too deep");
    if (p->i >= p->len)
        return fail(p, "expected a value");
    unsigned char c = p->s[p->i];
    otu__json_kind kind;
    if (c == '{')
        kind = OTU__JSON_OBJECT;
    else if (c == '[')
        kind = OTU__JSON_ARRAY;
    else if (c == '"')
        kind = OTU__JSON_STRING;
    else if (c == '-' || (c >= '0' && c <= '9'))
        kind = OTU__JSON_INT;
    else if (c == 't' || c == 'f' || c == 'n')
        return fail(p, "true, false and null are not used in a safetensors header");
    else
        return fail(p, "expected a value");
    long self = new_node(p, kind);
    if (self < 0)
        return otu__err(OTU_ENOMEM, p->err, p->errlen, "%s: out of memory", p->what);
    *idx = self;
    switch (kind) {
    case OTU__JSON_OBJECT: return parse_object(p, depth, self);
    case OTU__JSON_ARRAY: return parse_array(p, depth, self);
    case OTU__JSON_STRING: {
        const char *s;
        size_t n;
        int r = parse_string(p, &s, &n);
        if (!r) {
            p->doc->nodes[self].str = s;
            p->doc->nodes[self].len = n;
        }
        return r;
    }
    case OTU__JSON_INT: return parse_int(p, &p->doc->nodes[self].num);
    }
    return OTU_EPARSE;
}

int otu__json_parse(otu__json *doc, const char *text, size_t len, const char *what, char *err,
                    size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    doc->arena = malloc(len + 1);
    if (!doc->arena)
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", what);
    parser p = {(const unsigned char *)text, len, 0, doc, 0, what, err, errlen};
    long top;
    int s = parse_value(&p, 0, &top);
    if (s)
        return s;
    skip_ws(&p);
    if (p.i < p.len)
        return fail(&p, "unexpected text after the top value");
    return 0;
}

void otu__json_free(otu__json *doc)
{
    free(doc->nodes);
    free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

const otu__json_node *otu__json_get(const otu__json *doc, const otu__json_node *obj,
                                    const char *key)
{
    if (obj->kind != OTU__JSON_OBJECT)
        return NULL;
    for (long c = obj->first; c >= 0; c = doc->nodes[c].next)
        if (strcmp(doc->nodes[c].key, key) == 0)
            return &doc->nodes[c];
    return NULL;
}
