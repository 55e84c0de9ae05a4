/* tools/train/dataset.h: the data okto-train learns from, read on the host.
 *
 * - Classification tables (otu_dataset): any CSV of numeric features with an integer class
 *   label in the last column, plain or gzip-compressed (zlib reads both), and the 8x8 digits
 *   set that Debian's python3-sklearn ships as such a CSV (1797 images, 64 pixels 0..16,
 *   classes 0..9).
 * - A character-level text corpus (otu_corpus) for the GPT: a UTF-8 file, or by default the
 *   licence texts of /usr/share/common-licenses, as code-point token ids.
 * - Seeded, deterministic splits and batches (tools/train/rng.h).
 *
 * Ownership: a loader fills a caller-provided struct whose arrays it allocates; the matching
 * _free releases them and zeroes the struct (a zeroed struct frees as a no-op). On failure
 * nothing is left allocated and the struct is zeroed. Errors name "path:line" (and the field
 * for CSVs) and the offending token. Nothing here keeps global state; distinct objects may be
 * used from distinct threads. */
#ifndef OTU_DATASET_H
#define OTU_DATASET_H

#include "rng.h"
#include "status.h"

#include <stddef.h>
#include <stdint.h>

/* ---- classification tables --------------------------------------------------------------- */
typedef struct otu_dataset {
    size_t n;        /* rows */
    size_t features; /* floats per row */
    int classes;     /* largest label + 1 (10 for digits) */
    float *x;        /* n * features, row-major */
    int32_t *y;      /* n labels in [0, classes) */
} otu_dataset;

enum { OTU_CSV_MAX_LABEL = 65535 };

/* Reads a CSV at path (gzip or plain): comma-separated fields, spaces around them allowed;
 * blank lines and lines starting with '#' are skipped; a first line with a field that is not
 * a number is a header and is skipped (sklearn's CSVs start with one). Every other line holds
 * the same number (>= 2) of fields: finite numbers within the float range, then the label, an
 * integer 0..OTU_CSV_MAX_LABEL. Errors: OTU_EIO (cannot open/read), OTU_EPARSE
 * ("path:line: field 3: "abc" is not a number", "...: 5 fields, expected 65 as on line 2",
 * "...: field 2: "1e39" is beyond the float range", "path: no data rows"), OTU_ENOMEM. */
int otu_csv_load(const char *path, otu_dataset *d, char *err, size_t errlen);

/* Where Debian's python3-sklearn puts the digits CSV (gzip). */
#define OTU_DIGITS_PATH "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
/* The first of the default locations that exists, or NULL. */
const char *otu_digits_find(void);
/* Loads the digits CSV from path (NULL: otu_digits_find). Checks the shape of the data (64
 * features, integer pixels 0..16, labels 0..9) and scales the pixels to [0, 1] (divided by 16).
 * Errors as otu_csv_load, plus OTU_ENOTFOUND when path is NULL and no default exists (the
 * message says to install python3-sklearn) and OTU_EPARSE for data of another shape. */
int otu_digits_load(const char *path, otu_dataset *d, char *err, size_t errlen);

void otu_dataset_free(otu_dataset *d);

/* Copies rows[0..n) of d into x (n * d->features floats) and y (n labels; may be NULL). */
void otu_dataset_gather(const otu_dataset *d, const size_t *rows, size_t n, float *x, int32_t *y);

/* ---- splits and batches ------------------------------------------------------------------ */
/* Splits rows 0..n-1 into training and holdout rows, chosen by a shuffle seeded with seed:
 * round(holdout * n) rows are held out, or with labels (n of them, in [0, classes)) round(
 * holdout * count) rows of each class (stratified: each class keeps its share in both parts).
 * train and hold must each hold n entries; they are filled in ascending order, *ntrain and
 * *nhold set. holdout must be in [0, 1). The same arguments give the same split everywhere. */
int otu_split(size_t n, const int32_t *labels, int classes, double holdout, uint64_t seed,
              size_t *train, size_t *ntrain, size_t *hold, size_t *nhold, char *err, size_t errlen);

enum {
    OTU_BATCH_SHUFFLE = 1,   /* a new seeded order every epoch */
    OTU_BATCH_DROP_LAST = 2, /* skip a last batch smaller than the batch size */
};

/* Iterates over rows in batches, epoch after epoch. Fields are read-only for the caller. */
typedef struct otu_batcher {
    size_t *order; /* this epoch's rows */
    size_t n, batch, pos;
    unsigned flags;
    otu_rng rng;
    uint64_t epoch; /* completed epochs */
} otu_batcher;

/* rows[0..n) (copied; NULL means 0..n-1) in batches of `batch` (>= 1). Errors: OTU_EINVAL,
 * OTU_ENOMEM. */
int otu_batcher_init(otu_batcher *b, const size_t *rows, size_t n, size_t batch, uint64_t seed,
                     unsigned flags, char *err, size_t errlen);
/* The next batch: *rows points at its row indices (valid until the next call) and the count
 * is returned. Returns 0 once at the end of each epoch (b->epoch then counts it; the caller's
 * epoch boundary, e.g. for otu_watchdog_epoch), after which the next call starts the next
 * epoch. With n == 0 (or DROP_LAST and n < batch) every call returns 0. */
size_t otu_batcher_next(otu_batcher *b, const size_t **rows);
void otu_batcher_free(otu_batcher *b);

/* ---- character corpus -------------------------------------------------------------------- */
/* Tokens are Unicode code points (not bytes): a UTF-8 character is one token, so the model
 * never emits half a character. Ids are given in code-point order, which makes them the same
 * for the same text on every machine. When the text has more distinct characters than
 * max_vocab, the max_vocab - 1 most frequent get ids (ties: the smaller code point) and all
 * others share the last id, `fallback`, which decodes as U+FFFD. */
typedef struct otu_corpus {
    int32_t *tokens;  /* ntokens ids, the whole text */
    size_t ntokens;   /* characters */
    size_t nbytes;    /* bytes of UTF-8 read */
    int vocab;        /* number of ids, fallback included */
    uint32_t *chars;  /* chars[id]: the id's code point, ascending; U+FFFD for the fallback */
    int fallback;     /* the fallback id (vocab - 1), or -1 when every character has its own */
    size_t nfallback; /* tokens of the text that became the fallback */
} otu_corpus;

#define OTU_LICENSES_DIR "/usr/share/common-licenses"
enum { OTU_CORPUS_MAX_VOCAB = 65536 };

/* Reads the UTF-8 text file at path, or with path NULL the regular files of OTU_LICENSES_DIR
 * concatenated in strcmp order of their names (symbolic links such as GPL -> GPL-3 are
 * skipped: they would repeat a text). max_vocab in [2, OTU_CORPUS_MAX_VOCAB]. Errors: OTU_EIO,
 * OTU_EPARSE ("path:line: invalid UTF-8 (byte 0xff at column 7)", "path: empty text"),
 * OTU_EINVAL, OTU_ENOMEM. */
int otu_corpus_load(const char *path, int max_vocab, otu_corpus *c, char *err, size_t errlen);
/* The same from text[0..len); `name` stands for the path in messages. */
int otu_corpus_build(const char *text, size_t len, const char *name, int max_vocab, otu_corpus *c,
                     char *err, size_t errlen);
void otu_corpus_free(otu_corpus *c);

/* The id of code point cp: its own, the fallback, or -1 when it has none. */
int otu_corpus_id(const otu_corpus *c, uint32_t cp);
/* Encodes UTF-8 text[0..len) (a prompt) into out[0..cap), *n tokens. Characters without an id
 * become the fallback; without a fallback they are OTU_ENOTFOUND naming the character and its
 * offset. OTU_EPARSE for invalid UTF-8, OTU_ERANGE when cap is too small. */
int otu_corpus_encode(const otu_corpus *c, const char *text, size_t len, int32_t *out, size_t cap,
                      size_t *n, char *err, size_t errlen);
/* Decodes ids[0..n) into out[0..cap) as NUL-terminated UTF-8, *len bytes without the NUL.
 * 4 * n + 1 bytes always suffice. OTU_EINVAL for an id outside [0, vocab), OTU_ERANGE when cap
 * is too small (out then holds a NUL-terminated prefix). */
int otu_corpus_decode(const otu_corpus *c, const int32_t *ids, size_t n, char *out, size_t cap,
                      size_t *len);
/* Where the holdout part starts for a contiguous split: tokens [0, k) train the model and
 * [k, ntokens) are held out, k = ntokens - round(holdout * ntokens). A text corpus is split in
 * one piece, not shuffled, so held-out windows never overlap training ones. */
size_t otu_corpus_split(const otu_corpus *c, double holdout);
/* batch random windows of tokens[0..n): x[b*context + t] = tokens[s_b + t] and y the same
 * shifted by one (the next-token targets), s_b uniform in [0, n - context - 1]. OTU_EINVAL
 * when n < context + 1. */
int otu_token_batch(otu_rng *r, const int32_t *tokens, size_t n, size_t context, size_t batch,
                    int32_t *x, int32_t *y);

#endif
