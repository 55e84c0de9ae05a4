/* tests/test_trainutil_dataset.c: tools/train/dataset.h and rng.h without the digits file: the
 * CSV reader (plain and gzip, headers, every error with file:line and the token), the text
 * corpus (UTF-8 code points, the vocabulary cap and its fallback, encode/decode round trips,
 * the licence texts), splits (plain and stratified, deterministic), the batcher and the
 * token windows, and the generator's exact output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataset.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/otu_ds_XXXXXX");
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

/* Writes text (len bytes) to tmpdir/name, gzip-compressed when gz; returns the path (static). */
static const char *put_file(const char *name, const char *text, size_t len, int gz)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, text, (unsigned)len), (int)len);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        fclose(f);
    }
    return path;
}

/* ---- generator --------------------------------------------------------------------------- */

static void rng_is_splitmix64(void **state)
{
    (void)state;
    otu_rng r;
    otu_rng_seed(&r, 0);
    /* the reference outputs of splitmix64 from seed 0: the same on every machine */
    assert_true(otu_rng_next(&r) == 0xe220a8397b1dcdafull);
    assert_true(otu_rng_next(&r) == 0x6e789e6aa1b965f4ull);
    assert_true(otu_rng_next(&r) == 0x06c45d188009454full);
    otu_rng_seed(&r, 7);
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t v = otu_rng_below(&r, 10);
        assert_true(v < 10);
        seen[v]++;
        double u = otu_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
    }
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 850 && seen[i] < 1150); /* 1000 +- 5 sigma */
    assert_int_equal(otu_rng_below(&r, 0), 0);
    assert_int_equal(otu_rng_below(&r, 1), 0);
}

/* ---- CSV --------------------------------------------------------------------------------- */

static const char good_csv[] = "# comment\n"
                               "f1, f2 ,label\n"
                               "\n"
                               "1.5,-2,0\r\n"
                               "  3e2 ,\t4 , 2 \n"
                               "# another\n"
                               "-0.25,1e-3,1";

static void check_good(const otu_dataset *d)
{
    assert_int_equal(d->n, 3);
    assert_int_equal(d->features, 2);
    assert_int_equal(d->classes, 3);
    const float want[] = {1.5f, -2.0f, 300.0f, 4.0f, -0.25f, 1e-3f};
    assert_memory_equal(d->x, want, sizeof want);
    assert_int_equal(d->y[0], 0);
    assert_int_equal(d->y[1], 2);
    assert_int_equal(d->y[2], 1);
}

static void csv_plain_and_gzip(void **state)
{
    (void)state;
    otu_dataset d;
    char err[256] = "";
    const char *p = put_file("good.csv", good_csv, sizeof good_csv - 1, 0);
    assert_int_equal(otu_csv_load(p, &d, err, sizeof err), OTU_OK);
    check_good(&d);
    /* gather picks rows into a batch */
    float x[4];
    int32_t y[2];
    otu_dataset_gather(&d, (size_t[]){2, 0}, 2, x, y);
    assert_true(x[0] == -0.25f && x[1] == 1e-3f && x[2] == 1.5f && x[3] == -2.0f);
    assert_int_equal(y[0], 1);
    assert_int_equal(y[1], 0);
    otu_dataset_free(&d);
    assert_null(d.x);
    otu_dataset_free(&d); /* a zeroed struct frees as a no-op */
    p = put_file("good.csv.gz", good_csv, sizeof good_csv - 1, 1);
    assert_int_equal(otu_csv_load(p, &d, err, sizeof err), OTU_OK);
    check_good(&d);
    otu_dataset_free(&d);
    /* a first line that is all numbers is data, not a header */
    p = put_file("nohdr.csv", "1,2,3\n4,5,6\n", 12, 0);
    assert_int_equal(otu_csv_load(p, &d, err, sizeof err), OTU_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.classes, 7);
    otu_dataset_free(&d);
}

static void expect_csv_error(const char *text, int want, const char *where, const char *s1,
                             const char *s2)
{
    const char *p = put_file("bad.csv", text, strlen(text), 0);
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    otu_dataset d = {.n = 99};
    char err[256] = "";
    int s = otu_csv_load(path, &d, err, sizeof err);
    if (s != want)
        fail_msg("%s: status %d, want %d (%s)", text, s, want, err);
    char loc[300];
    snprintf(loc, sizeof loc, "%s%s", path, where);
    has(err, loc);
    has(err, s1);
    if (s2)
        has(err, s2);
    assert_int_equal(d.n, 0);
    assert_null(d.x);
    assert_null(d.y);
}

static void csv_errors_name_line_field_and_token(void **state)
{
    (void)state;
    expect_csv_error("a,b,c\n1,2,0\n1,2,3,0\n", OTU_EPARSE,
                     ":3:", "4 fields, expected 3 as on line 2", NULL);
    expect_csv_error("1,2,0\n\n1,0\n", OTU_EPARSE, ":3:", "2 fields, expected 3 as on line 1",
                     NULL);
    expect_csv_error("1,2,0\n1,abc,1\n", OTU_EPARSE, ":2:", "field 2", "\"abc\" is not a number");
    expect_csv_error("1,2,0\nnan,1,1\n", OTU_EPARSE, ":2:", "field 1", "\"nan\" is not finite");
    expect_csv_error("1,2,0\n1,-inf,1\n", OTU_EPARSE, ":2:", "\"-inf\"", "not finite");
    expect_csv_error("1,2,0\n1e39,1,1\n", OTU_EPARSE, ":2:", "\"1e39\"", "beyond the float range");
    expect_csv_error("1,2,0\n1,-1e400,1\n", OTU_EPARSE, ":2:", "\"-1e400\"",
                     "beyond the float range");
    expect_csv_error("1,,0\n", OTU_EPARSE, ":1:", "field 2", "\"\" is empty");
    expect_csv_error("h1,h2,y\n1,2,1.5\n", OTU_EPARSE, ":2:", "field 3",
                     "label \"1.5\" is not an integer 0..65535");
    expect_csv_error("1,2,-1\n", OTU_EPARSE, ":1:", "label \"-1\"", NULL);
    expect_csv_error("1,2,70000\n", OTU_EPARSE, ":1:", "label \"70000\"", NULL);
    expect_csv_error("1,2,\n", OTU_EPARSE, ":1:", "field 3", "label \"\"");
    expect_csv_error("header\n5\n", OTU_EPARSE, ":2:", "1 field", NULL);
    expect_csv_error("# nothing\nx,y\n\n", OTU_EPARSE, ": no data rows", "", NULL);
    expect_csv_error("", OTU_EPARSE, ": no data rows", "", NULL);
    /* a NUL byte: a binary file */
    const char *p = put_file("nul.csv", "1,2,0\n1,\0,0\n", 12, 0);
    otu_dataset d;
    char err[256];
    assert_int_equal(otu_csv_load(p, &d, err, sizeof err), OTU_EPARSE);
    has(err, ":2: NUL byte");
    /* a missing file and a truncated gzip stream are read errors */
    assert_int_equal(otu_csv_load("/nonexistent-otu.csv", &d, err, sizeof err), OTU_EIO);
    has(err, "/nonexistent-otu.csv: No such file");
    char big[4000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "0123456789,\n"[i % 12];
    p = put_file("t.csv.gz", big, sizeof big, 1);
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_int_equal(otu_csv_load(path, &d, err, sizeof err), OTU_EIO);
    has(err, path);
}

/* ---- splits and batches ------------------------------------------------------------------ */

static void check_partition(const size_t *tr, size_t nt, const size_t *ho, size_t nh, size_t n)
{
    assert_int_equal(nt + nh, n);
    unsigned char *seen = calloc(n, 1);
    for (size_t i = 0; i < nt; i++) {
        assert_true(tr[i] < n && !seen[tr[i]]);
        seen[tr[i]] = 1;
        if (i)
            assert_true(tr[i] > tr[i - 1]); /* ascending */
    }
    for (size_t i = 0; i < nh; i++) {
        assert_true(ho[i] < n && !seen[ho[i]]);
        seen[ho[i]] = 1;
        if (i)
            assert_true(ho[i] > ho[i - 1]);
    }
    free(seen);
}

static void split_plain_and_stratified(void **state)
{
    (void)state;
    enum { N = 1000 };
    size_t tr[N], ho[N], tr2[N], ho2[N], nt, nh, nt2, nh2;
    char err[256];
    assert_int_equal(otu_split(N, NULL, 0, 0.25, 42, tr, &nt, ho, &nh, err, sizeof err), 0);
    assert_int_equal(nh, 250);
    check_partition(tr, nt, ho, nh, N);
    /* the same seed, the same split; another seed, another one */
    assert_int_equal(otu_split(N, NULL, 0, 0.25, 42, tr2, &nt2, ho2, &nh2, err, sizeof err), 0);
    assert_int_equal(nh2, nh);
    assert_memory_equal(ho, ho2, nh * sizeof *ho);
    assert_int_equal(otu_split(N, NULL, 0, 0.25, 43, tr2, &nt2, ho2, &nh2, err, sizeof err), 0);
    assert_int_equal(nh2, 250);
    assert_true(memcmp(ho, ho2, nh * sizeof *ho) != 0);
    /* pinned: the first held-out rows of seed 42, so a change of the shuffle shows */
    size_t pin[4];
    memcpy(pin, ho, sizeof pin);
    assert_int_equal(otu_split(N, NULL, 0, 0.25, 42, tr2, &nt2, ho2, &nh2, err, sizeof err), 0);
    assert_memory_equal(pin, ho2, sizeof pin);

    /* stratified: classes of 500, 300, 150, 50 rows, interleaved */
    int32_t y[N];
    for (int i = 0; i < N; i++)
        y[i] = i % 20 < 10 ? 0 : i % 20 < 16 ? 1 : i % 20 < 19 ? 2 : 3;
    assert_int_equal(otu_split(N, y, 4, 0.1, 7, tr, &nt, ho, &nh, err, sizeof err), 0);
    check_partition(tr, nt, ho, nh, N);
    int per[4] = {0};
    for (size_t i = 0; i < nh; i++)
        per[y[ho[i]]]++;
    assert_int_equal(per[0], 50);
    assert_int_equal(per[1], 30);
    assert_int_equal(per[2], 15);
    assert_int_equal(per[3], 5);
    assert_int_equal(otu_split(N, y, 4, 0.1, 7, tr2, &nt2, ho2, &nh2, err, sizeof err), 0);
    assert_memory_equal(ho, ho2, nh * sizeof *ho);
    /* no holdout */
    assert_int_equal(otu_split(N, y, 4, 0.0, 7, tr, &nt, ho, &nh, err, sizeof err), 0);
    assert_int_equal(nh, 0);
    assert_int_equal(nt, N);
    /* errors */
    assert_int_equal(otu_split(N, NULL, 0, 1.0, 1, tr, &nt, ho, &nh, err, sizeof err), OTU_EINVAL);
    has(err, "holdout fraction 1 is not in [0, 1)");
    assert_int_equal(otu_split(N, NULL, 0, -0.5, 1, tr, &nt, ho, &nh, err, sizeof err), OTU_EINVAL);
    y[5] = 4;
    assert_int_equal(otu_split(N, y, 4, 0.1, 1, tr, &nt, ho, &nh, err, sizeof err), OTU_EINVAL);
    has(err, "row 5: label 4 is outside [0, 4)");
}

static void batcher_epochs(void **state)
{
    (void)state;
    otu_batcher b;
    char err[256];
    const size_t *rows;
    assert_int_equal(otu_batcher_init(&b, NULL, 10, 4, 1, 0, err, sizeof err), OTU_OK);
    for (int epoch = 0; epoch < 2; epoch++) {
        assert_int_equal(otu_batcher_next(&b, &rows), 4);
        assert_int_equal(rows[0], 0);
        assert_int_equal(rows[3], 3);
        assert_int_equal(otu_batcher_next(&b, &rows), 4);
        assert_int_equal(rows[0], 4);
        assert_int_equal(otu_batcher_next(&b, &rows), 2);
        assert_int_equal(rows[0], 8);
        assert_int_equal(rows[1], 9);
        assert_int_equal(otu_batcher_next(&b, &rows), 0); /* the epoch boundary */
        assert_int_equal(b.epoch, (uint64_t)epoch + 1);
    }
    otu_batcher_free(&b);

    const size_t sub[] = {5, 7, 9, 11, 13};
    assert_int_equal(otu_batcher_init(&b, sub, 5, 2, 1, OTU_BATCH_DROP_LAST, err, sizeof err), 0);
    assert_int_equal(otu_batcher_next(&b, &rows), 2);
    assert_int_equal(rows[0], 5);
    assert_int_equal(otu_batcher_next(&b, &rows), 2);
    assert_int_equal(rows[1], 11);
    assert_int_equal(otu_batcher_next(&b, &rows), 0); /* 13 dropped */
    assert_int_equal(otu_batcher_next(&b, &rows), 2);
    assert_int_equal(rows[0], 5);
    otu_batcher_free(&b);

    /* shuffled: each epoch a permutation, epochs differ, the same seed repeats it all */
    enum { N = 50 };
    size_t first[3][N];
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(otu_batcher_init(&b, NULL, N, 8, 99, OTU_BATCH_SHUFFLE, err, sizeof err),
                         0);
        for (int epoch = 0; epoch < 3; epoch++) {
            size_t got[N], k = 0, m;
            while ((m = otu_batcher_next(&b, &rows)) > 0) {
                memcpy(got + k, rows, m * sizeof *rows);
                k += m;
            }
            assert_int_equal(k, N);
            unsigned char seen[N] = {0};
            for (size_t i = 0; i < N; i++) {
                assert_true(got[i] < N && !seen[got[i]]);
                seen[got[i]] = 1;
            }
            if (rep == 0)
                memcpy(first[epoch], got, sizeof got);
            else
                assert_memory_equal(first[epoch], got, sizeof got);
        }
        otu_batcher_free(&b);
    }
    assert_true(memcmp(first[0], first[1], sizeof first[0]) != 0);
    assert_true(memcmp(first[1], first[2], sizeof first[0]) != 0);

    assert_int_equal(otu_batcher_init(&b, NULL, 10, 0, 1, 0, err, sizeof err), OTU_EINVAL);
    has(err, "batch size 0");
    assert_int_equal(otu_batcher_init(&b, NULL, 0, 3, 1, 0, err, sizeof err), OTU_OK);
    assert_int_equal(otu_batcher_next(&b, &rows), 0);
    otu_batcher_free(&b);
}

/* ---- corpus ------------------------------------------------------------------------------ */

static void corpus_code_points_round_trip(void **state)
{
    (void)state;
    /* 1-, 2-, 3- and 4-byte characters */
    const char text[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac 5 \xf0\x9f\x98\x80!\n";
    otu_corpus c;
    char err[256] = "";
    assert_int_equal(otu_corpus_build(text, sizeof text - 1, "t.txt", 256, &c, err, sizeof err), 0);
    assert_int_equal(c.nbytes, sizeof text - 1);
    assert_int_equal(c.ntokens, 19);
    assert_int_equal(c.fallback, -1);
    assert_int_equal(c.nfallback, 0);
    /* distinct: \n space ! 5 d h l o r w é ö € 😀 */
    assert_int_equal(c.vocab, 14);
    for (int i = 1; i < c.vocab; i++)
        assert_true(c.chars[i] > c.chars[i - 1]); /* ids in code-point order */
    assert_int_equal(c.chars[0], '\n');
    assert_int_equal(c.chars[c.vocab - 1], 0x1f600);
    assert_int_equal(otu_corpus_id(&c, 0xe9), 10);
    assert_int_equal(otu_corpus_id(&c, 'z'), -1);
    char out[128];
    size_t len;
    assert_int_equal(otu_corpus_decode(&c, c.tokens, c.ntokens, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof text - 1);
    assert_string_equal(out, text);
    int32_t ids[64];
    size_t n;
    assert_int_equal(otu_corpus_encode(&c, text, sizeof text - 1, ids, 64, &n, err, sizeof err), 0);
    assert_int_equal(n, c.ntokens);
    assert_memory_equal(ids, c.tokens, n * sizeof *ids);
    /* errors */
    assert_int_equal(otu_corpus_encode(&c, "lo z", 4, ids, 64, &n, err, sizeof err), OTU_ENOTFOUND);
    has(err, "U+007A \"z\" at byte 3");
    assert_int_equal(otu_corpus_encode(&c, "o\xff", 2, ids, 64, &n, err, sizeof err), OTU_EPARSE);
    has(err, "byte 1 (0xff)");
    assert_int_equal(otu_corpus_encode(&c, "lolol", 5, ids, 3, &n, err, sizeof err), OTU_ERANGE);
    assert_int_equal(otu_corpus_decode(&c, (int32_t[]){1, 14}, 2, out, sizeof out, &len),
                     OTU_EINVAL);
    assert_int_equal(otu_corpus_decode(&c, (int32_t[]){1, -1}, 2, out, sizeof out, &len),
                     OTU_EINVAL);
    /* too small: a NUL-terminated prefix of whole characters */
    assert_int_equal(otu_corpus_decode(&c, c.tokens, c.ntokens, out, 3, &len), OTU_ERANGE);
    assert_int_equal(len, 1);
    assert_string_equal(out, "h");
    otu_corpus_free(&c);
    assert_null(c.tokens);
    /* split: the last 10% (rounded) held out, in one piece */
    c.ntokens = 1005;
    assert_int_equal(otu_corpus_split(&c, 0.1), 904);
    assert_int_equal(otu_corpus_split(&c, 0.0), 1005);
    c.ntokens = 0;
}

static void corpus_vocabulary_cap_and_errors(void **state)
{
    (void)state;
    /* frequencies: a 5, b 4, c 3, d 2, e 1 */
    const char text[] = "aaaaabbbbcccdde";
    otu_corpus c;
    char err[256] = "";
    assert_int_equal(otu_corpus_build(text, 15, "t.txt", 3, &c, err, sizeof err), 0);
    assert_int_equal(c.vocab, 3);
    assert_int_equal(c.fallback, 2);
    assert_int_equal(c.chars[0], 'a');
    assert_int_equal(c.chars[1], 'b');
    assert_int_equal(c.chars[2], 0xfffd);
    assert_int_equal(c.nfallback, 6);
    assert_int_equal(otu_corpus_id(&c, 'c'), 2);
    char out[64];
    size_t len;
    assert_int_equal(otu_corpus_decode(&c, c.tokens, c.ntokens, out, sizeof out, &len), 0);
    assert_string_equal(out, "aaaaabbbb\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
                             "\xbd\xef\xbf\xbd");
    int32_t ids[8];
    size_t n;
    assert_int_equal(otu_corpus_encode(&c, "bz", 2, ids, 8, &n, err, sizeof err), 0);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2); /* unknown -> fallback */
    otu_corpus_free(&c);
    /* ties broken by the smaller code point: with 2 kept of x,y,z (1 each), x stays */
    assert_int_equal(otu_corpus_build("zyx", 3, "t.txt", 2, &c, err, sizeof err), 0);
    assert_int_equal(c.chars[0], 'x');
    otu_corpus_free(&c);

    assert_int_equal(otu_corpus_build("ab\nc\xff", 5, "t.txt", 10, &c, err, sizeof err),
                     OTU_EPARSE);
    has(err, "t.txt:2: invalid UTF-8 (byte 0xff at column 2)");
    assert_null(c.tokens);
    assert_int_equal(otu_corpus_build("a\xe2\x82", 3, "t.txt", 10, &c, err, sizeof err),
                     OTU_EPARSE); /* truncated sequence */
    has(err, "t.txt:1:");
    assert_int_equal(otu_corpus_build("a\xed\xa0\x80", 4, "t.txt", 10, &c, err, sizeof err),
                     OTU_EPARSE); /* a surrogate */
    assert_int_equal(otu_corpus_build("", 0, "t.txt", 10, &c, err, sizeof err), OTU_EPARSE);
    has(err, "t.txt: empty text");
    assert_int_equal(otu_corpus_build("ab", 2, "t.txt", 1, &c, err, sizeof err), OTU_EINVAL);
    has(err, "vocabulary cap 1");
    assert_int_equal(otu_corpus_load("/nonexistent-otu.txt", 10, &c, err, sizeof err), OTU_EIO);
    has(err, "/nonexistent-otu.txt");
    /* from a file */
    const char *p = put_file("c.txt", "hi there\n", 9, 0);
    assert_int_equal(otu_corpus_load(p, 64, &c, err, sizeof err), 0);
    assert_int_equal(c.ntokens, 9);
    assert_int_equal(c.vocab, 7);
    otu_corpus_free(&c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void corpus_licences_default(void **state)
{
    (void)state;
    /* the test reads the folder its own way (regular files, sorted) and compares */
    DIR *d = opendir(OTU_LICENSES_DIR);
    if (!d)
        skip();
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", OTU_LICENSES_DIR, e->d_name);
        if (e->d_name[0] != '.' && lstat(p, &st) == 0 && S_ISREG(st.st_mode))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    size_t total = 0, cap = 1 << 20;
    char *all = malloc(cap);
    for (int i = 0; i < n; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", OTU_LICENSES_DIR, names[i]);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        size_t r;
        while ((r = fread(all + total, 1, cap - total, f)) > 0)
            total += r;
        fclose(f);
        free(names[i]);
    }
    assert_true(total < cap);
    otu_corpus c;
    char err[256] = "";
    assert_int_equal(otu_corpus_load(NULL, 256, &c, err, sizeof err), 0);
    assert_int_equal(c.nbytes, total);
    assert_true(c.ntokens > 10000);
    assert_true(c.vocab > 60 && c.vocab <= 256);
    assert_int_equal(c.fallback, -1);
    char *out = malloc(4 * c.ntokens + 1);
    size_t len;
    assert_int_equal(otu_corpus_decode(&c, c.tokens, c.ntokens, out, 4 * c.ntokens + 1, &len), 0);
    assert_int_equal(len, total);
    assert_memory_equal(out, all, total);
    print_message("      %s: %zu bytes, %zu characters, vocabulary %d\n", OTU_LICENSES_DIR,
                  c.nbytes, c.ntokens, c.vocab);
    /* training windows: targets are the inputs shifted by one, inside the text */
    otu_rng r;
    otu_rng_seed(&r, 5);
    enum { T = 16, B = 4 };
    int32_t x[B * T], y[B * T], x2[B * T], y2[B * T];
    size_t k = otu_corpus_split(&c, 0.1);
    assert_int_equal(otu_token_batch(&r, c.tokens, k, T, B, x, y), 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t + 1 < T; t++)
            assert_int_equal(y[b * T + t], x[b * T + t + 1]);
    otu_rng_seed(&r, 5);
    assert_int_equal(otu_token_batch(&r, c.tokens, k, T, B, x2, y2), 0);
    assert_memory_equal(x, x2, sizeof x);
    assert_memory_equal(y, y2, sizeof y);
    assert_int_equal(otu_token_batch(&r, c.tokens, T, T, B, x, y), OTU_EINVAL);
    assert_int_equal(otu_token_batch(&r, c.tokens, T + 1, T, B, x, y), 0);
    assert_memory_equal(x, c.tokens, T * sizeof *x); /* the only window */
    free(out);
    free(all);
    otu_corpus_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_is_splitmix64),
        cmocka_unit_test(csv_plain_and_gzip),
        cmocka_unit_test(csv_errors_name_line_field_and_token),
        cmocka_unit_test(split_plain_and_stratified),
        cmocka_unit_test(batcher_epochs),
        cmocka_unit_test(corpus_code_points_round_trip),
        cmocka_unit_test(corpus_vocabulary_cap_and_errors),
        cmocka_unit_test(corpus_licences_default),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
