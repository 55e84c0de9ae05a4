/* tests/trainutil_st_interop.c: the C side of the safetensors interop test
 * (test_trainutil_safetensors.sh): `write PATH` writes the checkpoint that
 * trainutil_safetensors.py expects; `check PATH` reads the one the Python `safetensors` package
 * wrote and checks every value. Exit status 0 on success, 1 with a message otherwise. */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "trainutil_st_interop: %s\n", what);
    return 1;
}

static int do_write(const char *path)
{
    float w[12], b[4];
    uint16_t h[6], bf[5];
    int32_t ids[8];
    for (int i = 0; i < 12; i++)
        w[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 4; i++)
        b[i] = 100.0f + (float)i;
    for (int i = 0; i < 6; i++)
        h[i] = otu_f16_from_f32((float)(i - 2) * 0.5f);
    for (int i = 0; i < 5; i++)
        bf[i] = otu_bf16_from_f32((float)i * 1.5f);
    for (int i = 0; i < 8; i++)
        ids[i] = i * 7 - 20;
    char err[256];
    otu_st_writer *wr;
    if (otu_st_writer_create(&wr))
        return fail("out of memory");
    int s = otu_st_writer_add(wr, "h", OTU_F16, 2, (int64_t[]){2, 3}, h, err, sizeof err);
    if (!s)
        s = otu_st_writer_add(wr, "w", OTU_F32, 2, (int64_t[]){3, 4}, w, err, sizeof err);
    if (!s)
        s = otu_st_writer_add(wr, "bf", OTU_BF16, 1, (int64_t[]){5}, bf, err, sizeof err);
    if (!s)
        s = otu_st_writer_add(wr, "ids", OTU_I32, 3, (int64_t[]){2, 2, 2}, ids, err, sizeof err);
    if (!s)
        s = otu_st_writer_add(wr, "b", OTU_F32, 1, (int64_t[]){4}, b, err, sizeof err);
    if (!s)
        s = otu_st_writer_meta(wr, "model", "mlp", err, sizeof err);
    if (!s)
        s = otu_st_writer_meta(wr, "note", "quote \" back\\ \xc3\xa9\n", err, sizeof err);
    if (!s)
        s = otu_st_writer_write(wr, path, err, sizeof err);
    otu_st_writer_destroy(wr);
    return s ? fail(err) : 0;
}

static int do_check(const char *path)
{
    char err[256];
    otu_st_file *f;
    if (otu_st_open(path, &f, err, sizeof err))
        return fail(err);
    const otu_st_tensor *t;
    int bad = 0;
    float a[6], big[50];
    int32_t c[4];
    uint16_t h[3];
    if (otu_st_expect(f, "a", OTU_F32, 2, (int64_t[]){2, 3}, &t, err, sizeof err) ||
        otu_st_read(t, a, sizeof a))
        return fail(err);
    for (int i = 0; i < 6; i++)
        bad |= a[i] != (float)i * 0.5f;
    if (otu_st_expect(f, "c", OTU_I32, 1, (int64_t[]){4}, &t, err, sizeof err) ||
        otu_st_read(t, c, sizeof c))
        return fail(err);
    bad |= c[0] != -1 || c[1] != 0 || c[2] != 1 || c[3] != 2147483647;
    if (otu_st_expect(f, "h", OTU_F16, 1, (int64_t[]){3}, &t, err, sizeof err) ||
        otu_st_read(t, h, sizeof h))
        return fail(err);
    bad |= otu_f32_from_f16(h[0]) != 0.5f || otu_f32_from_f16(h[1]) != -1.0f ||
           otu_f32_from_f16(h[2]) != 2.0f;
    if (otu_st_expect(f, "big", OTU_F32, 1, (int64_t[]){50}, &t, err, sizeof err) ||
        otu_st_read(t, big, sizeof big))
        return fail(err);
    for (int i = 0; i < 50; i++)
        bad |= big[i] != (float)i;
    const char *src = otu_st_meta(f, "source");
    bad |= !src || strcmp(src, "python") != 0;
    bad |= otu_st_count(f) != 4;
    otu_st_close(f);
    if (bad)
        return fail("values differ from what trainutil_safetensors.py wrote");
    printf("C reader: the Python-written file has the expected 4 tensors and metadata\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        return do_write(argv[2]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return do_check(argv[2]);
    fprintf(stderr, "usage: trainutil_st_interop write|check PATH\n");
    return 2;
}
