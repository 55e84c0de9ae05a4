/* tools/train/json.h: a small strict JSON reader for safetensors headers. Internal to
 * okto_trainutil.
 *
 * It takes objects, arrays, strings (all escapes, \uXXXX with surrogate pairs, UTF-8 checked)
 * and integers (int64, JSON syntax: no leading zeros, no '+'), and rejects everything else a
 * safetensors header never holds (fractions, exponents, true/false/null), duplicate keys in an
 * object, nesting deeper than OTU__JSON_MAX_DEPTH, "\u0000" (names are C strings) and any byte
 * after the top value but whitespace. It never reads outside text[0..len): the text need not
 * be NUL-terminated. */
#ifndef OTU_JSON_H
#define OTU_JSON_H

#include <stddef.h>
#include <stdint.h>

enum { OTU__JSON_MAX_DEPTH = 32 };

typedef enum otu__json_kind {
    OTU__JSON_OBJECT,
    OTU__JSON_ARRAY,
    OTU__JSON_STRING,
    OTU__JSON_INT,
} otu__json_kind;

/* A value. Nodes live in one array; children are linked by index (-1 ends a list). */
typedef struct otu__json_node {
    otu__json_kind kind;
    size_t pos;      /* byte offset of the value in the text, for messages */
    int64_t num;     /* OTU__JSON_INT */
    const char *str; /* OTU__JSON_STRING: decoded, NUL-terminated; len bytes */
    size_t len;
    const char *key; /* a member of an object: its decoded key (NUL-terminated), else NULL */
    size_t keypos;   /* ... and the key's byte offset */
    long first;      /* OBJECT/ARRAY: the first child's index, -1 if empty */
    long next;       /* the next sibling's index, -1 if last */
    size_t count;    /* OBJECT/ARRAY: number of children */
} otu__json_node;

typedef struct otu__json {
    otu__json_node *nodes; /* nodes[0] is the top value */
    size_t n, cap;
    char *arena; /* decoded strings */
} otu__json;

/* Parses text[0..len) into doc (free it with otu__json_free, also on error). On failure
 * returns OTU_EPARSE (or OTU_ENOMEM) with "<what> byte N: problem, got 'c'" in err, N the
 * 0-based offset in text. */
int otu__json_parse(otu__json *doc, const char *text, size_t len, const char *what, char *err,
                    size_t errlen);
void otu__json_free(otu__json *doc);

/* The member of object node `obj` with key, or NULL. */
const otu__json_node *otu__json_get(const otu__json *doc, const otu__json_node *obj,
                                    const char *key);

#endif
