/* tools/train/safetensors.h: checkpoints in the safetensors format (Hugging Face's), so a model
 * trained by okto-train loads in Python with `safetensors` or numpy, and back.
 *
 * The file: an 8-byte little-endian header length N; N bytes of JSON,
 *     {"__metadata__": {"k": "v", ...},
 *      "name": {"dtype": "F32", "shape": [64, 10], "data_offsets": [begin, end]}, ...}
 * padded with spaces so the data starts at a multiple of 8; then the data: each tensor's
 * elements row-major, little-endian, at [begin, end) relative to the data's start, the tensors
 * tiling the data exactly (no gaps, no overlaps, nothing after the last).
 *
 * Writer: collects tensors (data borrowed, not copied) and metadata (copied), then writes the
 * file atomically: into "<path>.tmp-<pid>", fsync, rename over path, fsync the folder, so a
 * crash mid-write leaves the old checkpoint or the new one, never half of one. Data is laid out
 * by element size, largest first, so every tensor of a file we write is aligned to its element
 * size (an mmap reader can use it in place); the header lists tensors in that order.
 *
 * Reader: reads the whole file into memory, parses the header with a strict JSON reader of its
 * own (tools/train/json.h) and checks everything a hostile file could get wrong (header length
 * against the file size, dtypes, shapes against data_offsets with overflow checks, the tiling)
 * before a tensor is handed out, so no later access can leave the buffer. Errors name the file
 * and the header byte: `m.safetensors: header byte 57: expected ',' or '}' in an object, got ']'`.
 *
 * Ownership: a writer owns copies of names and metadata and borrows each tensor's data until
 * otu_st_writer_write returns; a reader's tensors, names and metadata (and the data they point
 * to) belong to the otu_st_file and live until otu_st_close. Objects are not thread-safe; a
 * reader may be read from several threads at once once opened (nothing mutates it). */
#ifndef OTU_SAFETENSORS_H
#define OTU_SAFETENSORS_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

/* The dtypes we write are the first four; the reader also accepts the other common ones so a
 * checkpoint from elsewhere opens and a mismatch is reported by name. */
#define OTU_DTYPE_MAP(X)                                                                           \
    X(F32, 4)                                                                                      \
    X(F16, 2)                                                                                      \
    X(BF16, 2)                                                                                     \
    X(I32, 4)                                                                                      \
    X(F64, 8)                                                                                      \
    X(I64, 8)                                                                                      \
    X(I16, 2)                                                                                      \
    X(I8, 1)                                                                                       \
    X(U8, 1)                                                                                       \
    X(BOOL, 1)

typedef enum otu_dtype {
#define OTU_DTYPE_ENUM_(name, size) OTU_##name,
    OTU_DTYPE_MAP(OTU_DTYPE_ENUM_)
#undef OTU_DTYPE_ENUM_
        OTU_DTYPE_COUNT
} otu_dtype;

/* "F32"; NULL for a value outside the enum. */
const char *otu_dtype_name(otu_dtype dt);
/* Bytes per element; 0 for a value outside the enum. */
size_t otu_dtype_size(otu_dtype dt);

enum {
    OTU_ST_MAX_RANK = 8, /* what the reader takes; the writer takes 1..4 */
    OTU_ST_WRITE_MAX_RANK = 4,
};
/* The reader refuses larger headers, as the reference implementation does (100 MB). */
#define OTU_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* ---- writer ------------------------------------------------------------------------------ */
typedef struct otu_st_writer otu_st_writer;

int otu_st_writer_create(otu_st_writer **out);
void otu_st_writer_destroy(otu_st_writer *w); /* NULL is a no-op */

/* Adds tensor `name` (non-empty valid UTF-8, not "__metadata__", not added before) of dtype dt
 * (F32, F16, BF16 or I32) and rank 1..4 shape[0..rank) (each >= 0), whose elements are at data
 * in host order (F16/BF16 as uint16_t bits, see the converters below). data is borrowed until
 * otu_st_writer_write returns; it may be NULL only when the tensor has no elements. Errors:
 * OTU_EINVAL naming the tensor and the bad argument, OTU_ENOMEM. */
int otu_st_writer_add(otu_st_writer *w, const char *name, otu_dtype dt, int rank,
                      const int64_t *shape, const void *data, char *err, size_t errlen);
/* Sets metadata key = value (both copied, valid UTF-8; a key set again takes the new value). */
int otu_st_writer_meta(otu_st_writer *w, const char *key, const char *value, char *err,
                       size_t errlen);
/* Writes everything to path atomically (see the top). Errors: OTU_EIO naming the file and the
 * failing call with strerror; nothing is left at the temporary path on failure. May be called
 * again (for example to a second path). */
int otu_st_writer_write(otu_st_writer *w, const char *path, char *err, size_t errlen);

/* ---- reader ------------------------------------------------------------------------------ */
typedef struct otu_st_file otu_st_file;

typedef struct otu_st_tensor {
    const char *name;
    otu_dtype dtype;
    int rank;                       /* 0 (a scalar) .. OTU_ST_MAX_RANK */
    int64_t shape[OTU_ST_MAX_RANK]; /* shape[rank..] are 0 */
    size_t count;                   /* elements: the product of the shape (1 for a scalar) */
    size_t nbytes;                  /* count * otu_dtype_size(dtype) */
    /* The little-endian bytes in the file's buffer. Not necessarily aligned for dtype (another
     * writer may have packed it): copy out with otu_st_read unless you know better. */
    const void *data;
} otu_st_tensor;

/* Opens and validates the file at path. Errors: OTU_EIO (cannot open or read), OTU_EPARSE
 * (anything malformed: "path: problem" or "path: header byte N: problem"), OTU_ENOMEM. */
int otu_st_open(const char *path, otu_st_file **out, char *err, size_t errlen);
/* The same on buf[0..len) (copied), `name` standing for the path in messages. */
int otu_st_parse(const void *buf, size_t len, const char *name, otu_st_file **out, char *err,
                 size_t errlen);
void otu_st_close(otu_st_file *f); /* NULL is a no-op */

/* Tensors in the header's order. */
size_t otu_st_count(const otu_st_file *f);
const otu_st_tensor *otu_st_at(const otu_st_file *f, size_t i);
/* By name (a binary search), or NULL. */
const otu_st_tensor *otu_st_find(const otu_st_file *f, const char *name);

/* Metadata pairs in the header's order; otu_st_meta looks one up (NULL when absent). */
size_t otu_st_meta_count(const otu_st_file *f);
int otu_st_meta_at(const otu_st_file *f, size_t i, const char **key, const char **value);
const char *otu_st_meta(const otu_st_file *f, const char *key);

/* Finds `name` and checks it is dtype dt with rank dims shape[0..rank). OTU_ENOTFOUND
 * ("m.st: no tensor "w2" (the file has 6)") or OTU_EMISMATCH naming both sides:
 * `m.st: tensor "w1": expected F32 [64, 32], the file has F16 [64, 32]`. */
int otu_st_expect(const otu_st_file *f, const char *name, otu_dtype dt, int rank,
                  const int64_t *shape, const otu_st_tensor **out, char *err, size_t errlen);
/* Copies t's elements into dst (dstlen bytes, >= t->nbytes) in host byte order. OTU_EINVAL when
 * dst is too small. */
int otu_st_read(const otu_st_tensor *t, void *dst, size_t dstlen);

/* ---- half-precision bits ----------------------------------------------------------------- */
/* IEEE binary16 and bfloat16 to and from float, rounding to nearest even; NaN stays NaN,
 * overflow becomes infinity. */
uint16_t otu_f16_from_f32(float x);
float otu_f32_from_f16(uint16_t h);
uint16_t otu_bf16_from_f32(float x);
float otu_f32_from_bf16(uint16_t h);

#endif
