/* tests/test_trainutil_safetensors.c: tools/train/safetensors.h: write and read back every
 * dtype the writer takes, the layout rules (header padded to 8, tensors aligned and tiling the
 * data), the atomic write, the writer's argument checks, every reader rejection with its
 * position, and a short fuzz (every truncation, random corruptions) that must never crash or
 * accept a file whose tensors leave it. Half-precision conversions are checked on all 65536
 * bit patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rng.h"
#include "safetensors.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/otu_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static void has(const char *msg, const char *sub)
{
    if (!strstr(msg, sub))
        fail_msg("message \"%s\" lacks \"%s\"", msg, sub);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- the reference checkpoint ------------------------------------------------------------ */
static float w_f32[12], b_f32[4], r4[2 * 1 * 2 * 3];
static uint16_t h_f16[5], bf_bf16[4];
static int32_t ids_i32[6];

static const char meta_note[] = "quote \" back\\ nl\n tab\t \xc3\xa9 \x01";

static otu_st_writer *reference_writer(void)
{
    for (int i = 0; i < 12; i++)
        w_f32[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 4; i++)
        b_f32[i] = 100.0f + (float)i;
    for (int i = 0; i < 12; i++)
        r4[i] = -(float)i;
    for (int i = 0; i < 5; i++)
        h_f16[i] = otu_f16_from_f32((float)(i - 2) * 0.5f);
    for (int i = 0; i < 4; i++)
        bf_bf16[i] = otu_bf16_from_f32((float)i * 1.5f);
    for (int i = 0; i < 6; i++)
        ids_i32[i] = i * 7 - 20;
    otu_st_writer *w;
    char err[256] = "";
    assert_int_equal(otu_st_writer_create(&w), OTU_OK);
    /* F16 first: the writer must still put the 4-byte tensors before it */
    assert_int_equal(otu_st_writer_add(w, "h", OTU_F16, 1, (int64_t[]){5}, h_f16, err, sizeof err),
                     OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "layer.0.w", OTU_F32, 2, (int64_t[]){3, 4}, w_f32, err, sizeof err),
        OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "bf", OTU_BF16, 2, (int64_t[]){2, 2}, bf_bf16, err, sizeof err),
        OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "ids", OTU_I32, 3, (int64_t[]){2, 1, 3}, ids_i32, err, sizeof err),
        OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "layer.0.b", OTU_F32, 1, (int64_t[]){4}, b_f32, err, sizeof err),
        OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "r4", OTU_F32, 4, (int64_t[]){2, 1, 2, 3}, r4, err, sizeof err),
        OTU_OK);
    assert_int_equal(
        otu_st_writer_add(w, "empty", OTU_F32, 2, (int64_t[]){0, 4}, NULL, err, sizeof err),
        OTU_OK);
    assert_int_equal(otu_st_writer_meta(w, "model", "mlp", err, sizeof err), OTU_OK);
    assert_int_equal(otu_st_writer_meta(w, "note", "first", err, sizeof err), OTU_OK);
    assert_int_equal(otu_st_writer_meta(w, "note", meta_note, err, sizeof err), OTU_OK);
    return w;
}

static void check_reference(const otu_st_file *f)
{
    char err[256] = "";
    assert_int_equal(otu_st_count(f), 7);
    const otu_st_tensor *t;
    float fl[12];
    assert_int_equal(
        otu_st_expect(f, "layer.0.w", OTU_F32, 2, (int64_t[]){3, 4}, &t, err, sizeof err), 0);
    assert_int_equal(t->count, 12);
    assert_int_equal(t->nbytes, 48);
    assert_int_equal(otu_st_read(t, fl, sizeof fl), OTU_OK);
    assert_memory_equal(fl, w_f32, sizeof w_f32);
    assert_int_equal(otu_st_expect(f, "layer.0.b", OTU_F32, 1, (int64_t[]){4}, &t, err, sizeof err),
                     0);
    assert_int_equal(otu_st_read(t, fl, sizeof fl), OTU_OK);
    assert_memory_equal(fl, b_f32, sizeof b_f32);
    assert_int_equal(
        otu_st_expect(f, "r4", OTU_F32, 4, (int64_t[]){2, 1, 2, 3}, &t, err, sizeof err), 0);
    assert_int_equal(otu_st_read(t, fl, sizeof fl), OTU_OK);
    assert_memory_equal(fl, r4, sizeof r4);
    uint16_t h[5];
    assert_int_equal(otu_st_expect(f, "h", OTU_F16, 1, (int64_t[]){5}, &t, err, sizeof err), 0);
    assert_int_equal(otu_st_read(t, h, sizeof h), OTU_OK);
    assert_memory_equal(h, h_f16, sizeof h);
    assert_true(otu_f32_from_f16(h[0]) == -1.0f);
    assert_int_equal(otu_st_expect(f, "bf", OTU_BF16, 2, (int64_t[]){2, 2}, &t, err, sizeof err),
                     0);
    assert_int_equal(otu_st_read(t, h, sizeof h), OTU_OK);
    assert_memory_equal(h, bf_bf16, sizeof bf_bf16);
    assert_true(otu_f32_from_bf16(h[3]) == 4.5f);
    int32_t ids[6];
    assert_int_equal(otu_st_expect(f, "ids", OTU_I32, 3, (int64_t[]){2, 1, 3}, &t, err, sizeof err),
                     0);
    assert_int_equal(otu_st_read(t, ids, sizeof ids), OTU_OK);
    assert_memory_equal(ids, ids_i32, sizeof ids);
    assert_int_equal(otu_st_read(t, ids, sizeof ids - 1), OTU_EINVAL); /* too small */
    assert_int_equal(otu_st_expect(f, "empty", OTU_F32, 2, (int64_t[]){0, 4}, &t, err, sizeof err),
                     0);
    assert_int_equal(t->nbytes, 0);
    /* every tensor aligned to its element size (buffer and data start are 8-aligned) */
    for (size_t i = 0; i < otu_st_count(f); i++) {
        t = otu_st_at(f, i);
        assert_int_equal((uintptr_t)t->data % otu_dtype_size(t->dtype), 0);
    }
    assert_null(otu_st_at(f, 7));
    assert_int_equal(otu_st_meta_count(f), 2);
    assert_string_equal(otu_st_meta(f, "model"), "mlp");
    assert_string_equal(otu_st_meta(f, "note"), meta_note);
    assert_null(otu_st_meta(f, "nope"));
    const char *k, *v;
    assert_int_equal(otu_st_meta_at(f, 0, &k, &v), OTU_OK);
    assert_string_equal(k, "model");
    assert_int_equal(otu_st_meta_at(f, 2, &k, &v), OTU_EINVAL);
}

static void round_trip_and_layout(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/ref.safetensors", tmpdir);
    otu_st_writer *w = reference_writer();
    assert_int_equal(otu_st_writer_write(w, path, err, sizeof err), OTU_OK);
    otu_st_writer_destroy(w);

    otu_st_file *f;
    assert_int_equal(otu_st_open(path, &f, err, sizeof err), OTU_OK);
    check_reference(f);
    otu_st_close(f);

    /* the layout itself: N % 8 == 0, spaces after the JSON, 4-byte tensors first */
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)b[i] << (8 * i);
    assert_int_equal(n % 8, 0);
    assert_true(n + 8 <= len);
    size_t end = 8 + (size_t)n;
    while (b[end - 1] == ' ')
        end--;
    assert_int_equal(b[end - 1], '}');
    assert_true(8 + n - end < 8);
    char *hdr = strndup((char *)b + 8, (size_t)n);
    assert_non_null(strstr(hdr, "\"__metadata__\":{\"model\":\"mlp\""));
    assert_non_null(strstr(hdr, "\\\" back\\\\ nl\\n tab\\t \xc3\xa9 \\u0001"));
    assert_non_null(strstr(hdr, "\"layer.0.w\":{\"dtype\":\"F32\",\"shape\":[3,4],"
                                "\"data_offsets\":[0,48]}"));
    assert_non_null(strstr(hdr, "\"h\":{\"dtype\":\"F16\",\"shape\":[5],"));
    assert_true(strstr(hdr, "\"r4\"") < strstr(hdr, "\"h\""));
    size_t data = 4 * (12 + 4 + 12 + 6) + 2 * (5 + 4);
    assert_int_equal(len, 8 + n + data);
    free(hdr);
    free(b);
}

static void atomic_write_replaces_and_leaves_no_temp(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
    FILE *old = fopen(path, "wb");
    fputs("old contents", old);
    fclose(old);
    otu_st_writer *w;
    assert_int_equal(otu_st_writer_create(&w), OTU_OK);
    float x[3] = {1, 2, 3};
    assert_int_equal(otu_st_writer_add(w, "x", OTU_F32, 1, (int64_t[]){3}, x, err, sizeof err), 0);
    assert_int_equal(otu_st_writer_write(w, path, err, sizeof err), OTU_OK);
    /* writing twice is allowed (a second checkpoint path) */
    char path2[128];
    snprintf(path2, sizeof path2, "%s/b.safetensors", tmpdir);
    assert_int_equal(otu_st_writer_write(w, path2, err, sizeof err), OTU_OK);
    otu_st_file *f;
    assert_int_equal(otu_st_open(path, &f, err, sizeof err), OTU_OK);
    assert_int_equal(otu_st_count(f), 1);
    assert_int_equal(otu_st_meta_count(f), 0);
    otu_st_close(f);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            fail_msg("temporary file %s left behind", e->d_name);
    closedir(d);
    /* a folder that does not exist: EIO naming the file, nothing left */
    assert_int_equal(otu_st_writer_write(w, "/nonexistent-otu/x.safetensors", err, sizeof err),
                     OTU_EIO);
    has(err, "/nonexistent-otu/x.safetensors");
    has(err, "No such file");
    otu_st_writer_destroy(w);
    otu_st_writer_destroy(NULL);
    otu_st_close(NULL);
}

static void writer_rejects_bad_arguments(void **state)
{
    (void)state;
    otu_st_writer *w;
    char err[256];
    float x[4] = {0};
    assert_int_equal(otu_st_writer_create(&w), OTU_OK);
    assert_int_equal(otu_st_writer_add(w, "", OTU_F32, 1, (int64_t[]){4}, x, err, sizeof err),
                     OTU_EINVAL);
    has(err, "empty");
    assert_int_equal(
        otu_st_writer_add(w, "__metadata__", OTU_F32, 1, (int64_t[]){4}, x, err, sizeof err),
        OTU_EINVAL);
    has(err, "\"__metadata__\" is reserved");
    assert_int_equal(otu_st_writer_add(w, "a\xff", OTU_F32, 1, (int64_t[]){4}, x, err, sizeof err),
                     OTU_EINVAL);
    has(err, "UTF-8");
    has(err, "\"a\\xff\"");
    assert_int_equal(otu_st_writer_add(w, "d", OTU_F64, 1, (int64_t[]){4}, x, err, sizeof err),
                     OTU_EINVAL);
    has(err, "\"d\"");
    has(err, "F32, F16, BF16, I32");
    assert_int_equal(otu_st_writer_add(w, "r", OTU_F32, 0, (int64_t[]){4}, x, err, sizeof err),
                     OTU_EINVAL);
    has(err, "rank 0");
    assert_int_equal(
        otu_st_writer_add(w, "r", OTU_F32, 5, (int64_t[]){1, 1, 1, 1, 4}, x, err, sizeof err),
        OTU_EINVAL);
    has(err, "rank 5 is not 1..4");
    assert_int_equal(
        otu_st_writer_add(w, "neg", OTU_F32, 2, (int64_t[]){2, -2}, x, err, sizeof err),
        OTU_EINVAL);
    has(err, "dimension 1 is -2");
    assert_int_equal(otu_st_writer_add(w, "nul", OTU_F32, 1, (int64_t[]){4}, NULL, err, sizeof err),
                     OTU_EINVAL);
    has(err, "\"nul\": data is NULL");
    assert_int_equal(otu_st_writer_add(w, "huge", OTU_F32, 3,
                                       (int64_t[]){1LL << 40, 1LL << 40, 1LL << 40}, x, err,
                                       sizeof err),
                     OTU_EINVAL);
    has(err, "overflows");
    assert_int_equal(otu_st_writer_add(w, "x", OTU_F32, 1, (int64_t[]){4}, x, err, sizeof err), 0);
    assert_int_equal(otu_st_writer_add(w, "x", OTU_F32, 1, (int64_t[]){4}, x, err, sizeof err),
                     OTU_EINVAL);
    has(err, "\"x\" added twice");
    assert_int_equal(otu_st_writer_meta(w, "k\xc3", "v", err, sizeof err), OTU_EINVAL);
    has(err, "metadata key");
    assert_int_equal(otu_st_writer_meta(w, "k", "\xed\xa0\x80", err, sizeof err), OTU_EINVAL);
    has(err, "metadata value"); /* an encoded surrogate is not UTF-8 */
    otu_st_writer_destroy(w);
}

/* A file from header text and `data` zero bytes of data; the header length as given (or the
 * text's length when hl < 0). */
static unsigned char *make_file(const char *hdr, size_t data, long long hl, size_t *len)
{
    size_t n = strlen(hdr);
    *len = 8 + n + data;
    unsigned char *b = calloc(*len + 1, 1);
    uint64_t h = hl < 0 ? (uint64_t)n : (uint64_t)hl;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(h >> (8 * i));
    memcpy(b + 8, hdr, n);
    return b;
}

static int parse_text(const char *hdr, size_t data, long long hl, otu_st_file **f, char *err,
                      size_t errlen)
{
    size_t len;
    unsigned char *b = make_file(hdr, data, hl, &len);
    int s = otu_st_parse(b, len, "m.st", f, err, errlen);
    free(b);
    return s;
}

typedef struct bad_case {
    const char *hdr;
    size_t data;
    long long hl; /* -1: the header's length */
    const char *want1, *want2;
} bad_case;

#define T(name, dt, shape, b, e)                                                                   \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const bad_case bad_cases[] = {
    /* framing */
    {"{}", 0, 1000, "length 1000 runs past the end", "m.st"},
    {"{}", 0, 200000000, "over the limit", "200000000"},
    {"[1]", 0, -1, "does not start with '{'", "m.st"},
    {"", 0, -1, "does not start with '{'", NULL},
    /* JSON syntax, with the byte where it went wrong */
    {"{\"a\" 1}", 0, -1, "header byte 5: expected ':' after an object key, got '1'", NULL},
    {"{\"__metadata__\":{\"a\":\"b\",}}", 0, -1, "header byte 25: expected a string key", NULL},
    {"{\"__metadata__\":{\"a\":\"b\"]}", 0, -1,
     "byte 24: expected ',' or '}' in an object, got ']'", NULL},
    {"{\"a", 0, -1, "header byte 1: unterminated string", NULL},
    {"{\"a\\x\":1}", 0, -1, "byte 4: unknown escape", "'x'"},
    {"{\"a\tb\":1}", 0, -1, "byte 3: control character", "0x09"},
    {"{\"a\\u12\":1}", 0, -1, "hex digits", NULL},
    {"{\"a\\ud800\":1}", 0, -1, "high surrogate not followed", NULL},
    {"{\"a\\udc00\":1}", 0, -1, "lone low surrogate", NULL},
    {"{\"a\\u0000\":1}", 0, -1, "\\u0000", NULL},
    {"{\"a\xc3(\":1}", 0, -1, "byte 3: invalid UTF-8", NULL},
    {"{\"a\xc0\xaf\":1}", 0, -1, "invalid UTF-8", NULL}, /* overlong '/' */
    {"{\"a\":[01]}", 0, -1, "byte 6: leading zero", NULL},
    {"{\"a\":[1.5]}", 0, -1, "only integers", "'.'"},
    {"{\"a\":[1e3]}", 0, -1, "only integers", "'e'"},
    {"{\"a\":[-]}", 0, -1, "expected a digit", NULL},
    {"{\"a\":[99999999999999999999]}", 0, -1, "64-bit range", NULL},
    {"{\"a\":true}", 0, -1, "true, false and null", NULL},
    {"{\"a\":null}", 0, -1, "true, false and null", NULL},
    {"{\"a\":[1,]}", 0, -1, "byte 8: expected a value, got ']'", NULL},
    {"{\"a\":[1 2]}", 0, -1, "expected ',' or ']' in an array", NULL},
    {"{} x", 0, -1, "byte 3: unexpected text after the top value, got 'x'", NULL},
    {"{}}", 0, -1, "unexpected text after the top value", NULL},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, -1, "duplicate key \"k\"", "byte 25"},
    {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0, -1,
     "nesting too deep", NULL},
    {"{\"a\":", 0, -1, "expected a value, got end of input", NULL},
    /* schema */
    {"{\"w\":[1]}", 0, -1, "tensor \"w\": expected an object", NULL},
    {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, "tensor \"w\": missing \"dtype\"",
     NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, -1, "missing \"shape\"", NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, "missing \"data_offsets\"", NULL},
    {"{" T("w", "F8", "[1]", 0, 1) "}", 1, -1, "tensor \"w\": unknown dtype \"F8\"", NULL},
    {"{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, "dtype is not a string",
     NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":\"y\"}}", 4, -1,
     "unknown field \"x\"", NULL},
    {"{" T("w", "F32", "7", 0, 4) "}", 4, -1, "shape is not an array", NULL},
    {"{" T("w", "F32", "[-1]", 0, 4) "}", 4, -1, "shape[0] is not an integer >= 0", NULL},
    {"{" T("w", "F32", "[1,\"2\"]", 0, 4) "}", 4, -1, "shape[1]", NULL},
    {"{" T("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, -1, "at most 8", NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, -1,
     "data_offsets is not [begin, end]", NULL},
    {"{" T("w", "F32", "[1]", 8, 4) "}", 8, -1, "0 <= begin <= end", NULL},
    {"{" T("w", "F32", "[1]", -4, 0) "}", 0, -1, "0 <= begin <= end", NULL},
    {"{" T("w", "F32", "[3]", 0, 8) "}", 8, -1,
     "F32 [3] needs 12 bytes but data_offsets [0, 8] span 8", NULL},
    {"{" T("w", "F32", "[4294967296,4294967296]", 0, 8) "}", 8, -1, "more than SIZE_MAX", NULL},
    {"{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 8, 12) "}", 12, -1,
     "tensor \"b\" starts at data byte 8, expected 4 (a gap", NULL},
    {"{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[1]", 4, 8) "}", 8, -1,
     "tensor \"b\" starts at data byte 4, expected 8 (overlapping", NULL},
    {"{" T("a", "F32", "[1]", 4, 8) "}", 8, -1, "starts at data byte 4, expected 0", NULL},
    {"{" T("a", "F32", "[1]", 0, 4) "}", 5, -1, "cover 4 data bytes but the file has 5", NULL},
    {"{}", 3, -1, "cover 0 data bytes but the file has 3", NULL},
    {"{\"__metadata__\":[1]}", 0, -1, "__metadata__ is not an object", NULL},
    {"{\"__metadata__\":{\"k\":1}}", 0, -1, "__metadata__ value of \"k\" is not a string",
     "byte 21"},
};

static void reader_rejects_malformed_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        otu_st_file *f = (otu_st_file *)1;
        char err[256] = "";
        int s = parse_text(c->hdr, c->data, c->hl, &f, err, sizeof err);
        if (s != OTU_EPARSE)
            fail_msg("case %zu (%s): status %d, want OTU_EPARSE (%s)", i, c->hdr, s, err);
        assert_null(f);
        if (strncmp(err, "m.st: ", 6) != 0)
            fail_msg("case %zu: \"%s\" does not start with the file name", i, err);
        has(err, c->want1);
        if (c->want2)
            has(err, c->want2);
    }
    /* too short for the length itself */
    otu_st_file *f;
    char err[256];
    assert_int_equal(otu_st_parse("\x02\0\0", 3, "m.st", &f, err, sizeof err), OTU_EPARSE);
    has(err, "m.st: 3 bytes, too short");
    assert_int_equal(otu_st_open("/nonexistent-otu.st", &f, err, sizeof err), OTU_EIO);
    has(err, "/nonexistent-otu.st: No such file");
}

static void reader_accepts_what_others_write(void **state)
{
    (void)state;
    otu_st_file *f;
    char err[256] = "";
    /* no tensors at all, whitespace everywhere, escapes in names, a scalar, other dtypes */
    assert_int_equal(parse_text("{}", 0, -1, &f, err, sizeof err), OTU_OK);
    assert_int_equal(otu_st_count(f), 0);
    assert_null(otu_st_find(f, "x"));
    otu_st_close(f);
    const char *hdr = " {\n \"\\u00e9\\ud83d\\ude00\\n\" : { \"dtype\" : \"I64\" , \"shape\" : "
                      "[ ] , \"data_offsets\" : [ 0 , 8 ] } ,\r\n\t\"b\\/c\":{\"data_offsets\":[8,"
                      "10],\"shape\":[2,1],\"dtype\":\"U8\"}, \"__metadata__\":{}}   ";
    /* a leading space: the reference requires '{' first, so this one is refused ... */
    assert_int_equal(parse_text(hdr, 10, -1, &f, err, sizeof err), OTU_EPARSE);
    /* ... and without it accepted */
    assert_int_equal(parse_text(hdr + 1, 10, -1, &f, err, sizeof err), OTU_OK);
    assert_int_equal(otu_st_count(f), 2);
    const otu_st_tensor *t = otu_st_find(f, "\xc3\xa9\xf0\x9f\x98\x80\n");
    assert_non_null(t);
    assert_int_equal(t->dtype, OTU_I64);
    assert_int_equal(t->rank, 0);
    assert_int_equal(t->count, 1);
    assert_int_equal(t->nbytes, 8);
    t = otu_st_find(f, "b/c");
    assert_non_null(t);
    assert_int_equal(t->dtype, OTU_U8);
    assert_int_equal(t->rank, 2);
    assert_int_equal(otu_st_meta_count(f), 0);
    /* expect: not found and mismatches name both sides */
    assert_int_equal(otu_st_expect(f, "w2", OTU_F32, 1, (int64_t[]){2}, NULL, err, sizeof err),
                     OTU_ENOTFOUND);
    has(err, "m.st: no tensor \"w2\" (the file has 2)");
    assert_int_equal(otu_st_expect(f, "b/c", OTU_F32, 2, (int64_t[]){2, 1}, NULL, err, sizeof err),
                     OTU_EMISMATCH);
    has(err, "m.st: tensor \"b/c\": expected F32 [2, 1], the file has U8 [2, 1]");
    assert_int_equal(otu_st_expect(f, "b/c", OTU_U8, 2, (int64_t[]){1, 2}, NULL, err, sizeof err),
                     OTU_EMISMATCH);
    has(err, "expected U8 [1, 2], the file has U8 [2, 1]");
    assert_int_equal(otu_st_expect(f, "b/c", OTU_U8, 1, (int64_t[]){2}, NULL, err, sizeof err),
                     OTU_EMISMATCH);
    has(err, "expected U8 [2], the file has U8 [2, 1]");
    otu_st_close(f);
}

/* Parses buf; on success checks every tensor lies inside the data and can be read. */
static int parse_and_check(const unsigned char *buf, size_t len)
{
    otu_st_file *f = NULL;
    char err[256] = "";
    int s = otu_st_parse(buf, len, "fuzz.st", &f, err, sizeof err);
    if (s) {
        assert_null(f);
        if (s != OTU_EPARSE)
            fail_msg("status %d (%s)", s, err);
        if (strncmp(err, "fuzz.st: ", 9) != 0)
            fail_msg("message \"%s\" does not name the file", err);
        return s;
    }
    size_t total = 0;
    for (size_t i = 0; i < otu_st_count(f); i++) {
        const otu_st_tensor *t = otu_st_at(f, i);
        total += t->nbytes;
        void *dst = malloc(t->nbytes + 1);
        assert_int_equal(otu_st_read(t, dst, t->nbytes), OTU_OK);
        free(dst);
        assert_ptr_equal(otu_st_find(f, t->name), t);
    }
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)buf[i] << (8 * i);
    assert_int_equal(total, len - 8 - n);
    otu_st_close(f);
    return 0;
}

/* Bytes that make a corruption likelier to reach deep into the parser than a random one. */
static const char json_bytes[] = "{}[]\",:0123456789-\\u \x80\xff";

static void fuzz_truncations_and_corruptions(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/fuzz.safetensors", tmpdir);
    otu_st_writer *w = reference_writer();
    assert_int_equal(otu_st_writer_write(w, path, err, sizeof err), OTU_OK);
    otu_st_writer_destroy(w);
    size_t len;
    unsigned char *ref = slurp(path, &len);
    assert_int_equal(parse_and_check(ref, len), 0);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)ref[i] << (8 * i);
    /* every truncation is an error: the tensors no longer tile what is left */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(parse_and_check(ref, cut), OTU_EPARSE);
    /* random corruptions: a copy with exact size so an over-read would leave the buffer
     * (which valgrind or ASan then catch) */
    otu_rng r;
    otu_rng_seed(&r, 12345);
    unsigned char *b = malloc(len);
    int ok = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(b, ref, len);
        int edits = 1 + (int)otu_rng_below(&r, 4);
        for (int e = 0; e < edits; e++) {
            /* mostly the header, where the parser is; sometimes the length bytes */
            size_t at =
                otu_rng_below(&r, 10) == 0 ? otu_rng_below(&r, 8) : 8 + otu_rng_below(&r, n);
            switch (otu_rng_below(&r, 4)) {
            case 0: b[at] = (unsigned char)otu_rng_next(&r); break;
            case 1: b[at] ^= (unsigned char)(1u << otu_rng_below(&r, 8)); break;
            case 2:
                b[at] = (unsigned char)json_bytes[otu_rng_below(&r, sizeof json_bytes - 1)];
                break;
            case 3: b[at] = ' '; break;
            }
        }
        if (parse_and_check(b, len) == 0)
            ok++;
        else
            rejected++;
    }
    /* Both outcomes happen: a space over a space, or a digit changed consistently, still parse. */
    assert_true(rejected > 10000);
    assert_true(ok > 0);
    free(b);
    free(ref);
}

static void half_precision(void **state)
{
    (void)state;
    assert_int_equal(otu_f16_from_f32(1.0f), 0x3c00);
    assert_int_equal(otu_f16_from_f32(-2.0f), 0xc000);
    assert_int_equal(otu_f16_from_f32(0.0f), 0x0000);
    assert_int_equal(otu_f16_from_f32(-0.0f), 0x8000);
    assert_int_equal(otu_f16_from_f32(65504.0f), 0x7bff); /* the largest */
    assert_int_equal(otu_f16_from_f32(65519.0f), 0x7bff);
    assert_int_equal(otu_f16_from_f32(65520.0f), 0x7c00); /* rounds to infinity */
    assert_int_equal(otu_f16_from_f32(INFINITY), 0x7c00);
    assert_int_equal(otu_f16_from_f32(-INFINITY), 0xfc00);
    assert_int_equal(otu_f16_from_f32(0.1f), 0x2e66);
    assert_int_equal(otu_f16_from_f32(5.9604644775390625e-08f), 0x0001); /* smallest subnormal */
    assert_int_equal(otu_f16_from_f32(2.98e-08f), 0x0000);               /* below half of it */
    assert_int_equal(otu_f16_from_f32(6.103515625e-05f), 0x0400);        /* smallest normal */
    assert_int_equal(otu_f16_from_f32(1.0009765625f), 0x3c01);
    assert_int_equal(otu_f16_from_f32(1.00048828125f), 0x3c00); /* tie to even */
    assert_int_equal(otu_f16_from_f32(1.00146484375f), 0x3c02); /* tie to even, upwards */
    assert_true((otu_f16_from_f32(NAN) & 0x7c00) == 0x7c00 && (otu_f16_from_f32(NAN) & 0x3ff));
    assert_int_equal(otu_bf16_from_f32(1.0f), 0x3f80);
    assert_int_equal(otu_bf16_from_f32(-2.0f), 0xc000);
    assert_int_equal(otu_bf16_from_f32(1.00390625f), 0x3f80); /* tie to even */
    assert_int_equal(otu_bf16_from_f32(1.01171875f), 0x3f82); /* tie to even, upwards */
    assert_int_equal(otu_bf16_from_f32(1.0078125f), 0x3f81);
    assert_true(isnan(otu_f32_from_bf16(otu_bf16_from_f32(NAN))));
    /* every non-NaN bit pattern survives the trip through float */
    for (uint32_t h = 0; h < 65536; h++) {
        float f16 = otu_f32_from_f16((uint16_t)h);
        if (isnan(f16))
            assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
        else
            assert_int_equal(otu_f16_from_f32(f16), h);
        float bf = otu_f32_from_bf16((uint16_t)h);
        if (!isnan(bf))
            assert_int_equal(otu_bf16_from_f32(bf), h);
    }
    assert_true(otu_f32_from_f16(0x0001) == 5.9604644775390625e-08f);
    assert_true(otu_f32_from_f16(0x7bff) == 65504.0f);
    assert_true(isinf(otu_f32_from_f16(0xfc00)) && otu_f32_from_f16(0xfc00) < 0);
    /* names and sizes come from one table */
    assert_string_equal(otu_dtype_name(OTU_BF16), "BF16");
    assert_int_equal(otu_dtype_size(OTU_BF16), 2);
    assert_int_equal(otu_dtype_size(OTU_I64), 8);
    assert_null(otu_dtype_name(OTU_DTYPE_COUNT));
    assert_int_equal(otu_dtype_size(OTU_DTYPE_COUNT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_layout),
        cmocka_unit_test(atomic_write_replaces_and_leaves_no_temp),
        cmocka_unit_test(writer_rejects_bad_arguments),
        cmocka_unit_test(reader_rejects_malformed_files),
        cmocka_unit_test(reader_accepts_what_others_write),
        cmocka_unit_test(fuzz_truncations_and_corruptions),
        cmocka_unit_test(half_precision),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
