/* tests/test_trainutil_digits.c: the 8x8 digits set as Debian's python3-sklearn ships it:
 * 1797 rows of 64 pixels scaled to [0, 1], labels 0..9 with the per-class counts of the data,
 * the first rows as in the CSV, a stratified holdout that keeps every class's share, and the
 * loader's shape checks. Exits 77 (skipped) when the file is not installed; tools/setup.sh
 * installs it, so on CI a skip is a bug. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void has(const char *msg, const char *sub)
{
    if (!strstr(msg, sub))
        fail_msg("message \"%s\" lacks \"%s\"", msg, sub);
}

static void loads_the_whole_set(void **state)
{
    (void)state;
    otu_dataset d;
    char err[256] = "";
    assert_int_equal(otu_digits_load(NULL, &d, err, sizeof err), OTU_OK);
    assert_int_equal(d.n, 1797);
    assert_int_equal(d.features, 64);
    assert_int_equal(d.classes, 10);
    /* per-class counts of sklearn's load_digits() */
    const int want[10] = {178, 182, 177, 183, 181, 182, 181, 179, 174, 180};
    int count[10] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.y[i] >= 0 && d.y[i] <= 9);
        count[d.y[i]]++;
    }
    assert_memory_equal(count, want, sizeof want);
    /* pixels: k/16 for an integer k in 0..16, and every level occurs */
    int levels[17] = {0};
    for (size_t i = 0; i < d.n * d.features; i++) {
        float v = d.x[i] * 16.0f;
        assert_true(v >= 0.0f && v <= 16.0f && v == floorf(v));
        levels[(int)v]++;
    }
    for (int k = 0; k <= 16; k++)
        assert_true(levels[k] > 0);
    /* the first image is a 0, as the file's first line says */
    const int row0[64] = {0, 0, 5,  13, 9,  1,  0, 0, 0, 0, 13, 15, 10, 15, 5, 0,
                          0, 3, 15, 2,  0,  11, 8, 0, 0, 4, 12, 0,  0,  8,  8, 0,
                          0, 5, 8,  0,  0,  9,  8, 0, 0, 4, 11, 0,  1,  12, 7, 0,
                          0, 2, 14, 5,  10, 12, 0, 0, 0, 0, 6,  13, 10, 0,  0, 0};
    for (int j = 0; j < 64; j++)
        assert_true(d.x[j] == (float)row0[j] / 16.0f);
    assert_int_equal(d.y[0], 0);
    assert_int_equal(d.y[1], 1);
    assert_int_equal(d.y[2], 2);
    print_message("      %s: %zu rows, %zu features, %d classes\n", otu_digits_find(), d.n,
                  d.features, d.classes);

    /* a stratified 20% holdout: round(0.2 * count) of each class, the same every run */
    size_t tr[1797], ho[1797], ho2[1797], nt, nh, nt2, nh2;
    assert_int_equal(otu_split(d.n, d.y, 10, 0.2, 2024, tr, &nt, ho, &nh, err, sizeof err), 0);
    int per[10] = {0};
    for (size_t i = 0; i < nh; i++)
        per[d.y[ho[i]]]++;
    size_t sum = 0;
    for (int c = 0; c < 10; c++) {
        assert_int_equal(per[c], (int)floor(0.2 * want[c] + 0.5));
        sum += (size_t)per[c];
    }
    assert_int_equal(nh, sum);
    assert_int_equal(nt + nh, 1797);
    assert_int_equal(otu_split(d.n, d.y, 10, 0.2, 2024, tr, &nt2, ho2, &nh2, err, sizeof err), 0);
    assert_memory_equal(ho, ho2, nh * sizeof *ho);
    otu_dataset_free(&d);
}

static void rejects_data_of_another_shape(void **state)
{
    (void)state;
    char path[] = "/tmp/otu_digits_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    otu_dataset d;
    char err[256];
    /* 3 features */
    FILE *f = fopen(path, "w");
    fputs("1,2,3,4\n", f);
    fclose(f);
    assert_int_equal(otu_digits_load(path, &d, err, sizeof err), OTU_EPARSE);
    has(err, ":1: 3 features, expected 64");
    /* a pixel of 17 and one of 2.5 on line 2 */
    for (int bad = 0; bad < 2; bad++) {
        f = fopen(path, "w");
        for (int r = 0; r < 2; r++) {
            for (int j = 0; j < 64; j++)
                fprintf(f, "%s,", r == 1 && j == 10 ? (bad ? "2.5" : "17") : "3");
            fprintf(f, "%d\n", r);
        }
        fclose(f);
        assert_int_equal(otu_digits_load(path, &d, err, sizeof err), OTU_EPARSE);
        has(err, ":2: field 11:");
        has(err, bad ? "\"2.5\"" : "\"17\"");
        has(err, "integer pixel value 0..16");
    }
    /* a label of 10 */
    f = fopen(path, "w");
    for (int j = 0; j < 64; j++)
        fputs("0,", f);
    fputs("10\n", f);
    fclose(f);
    assert_int_equal(otu_digits_load(path, &d, err, sizeof err), OTU_EPARSE);
    has(err, ":1: field 65: label \"10\" is not an integer 0..9");
    unlink(path);
}

int main(void)
{
    if (!otu_digits_find()) {
        printf("digits CSV not found at %s (install python3-sklearn): skipped\n", OTU_DIGITS_PATH);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_the_whole_set),
        cmocka_unit_test(rejects_data_of_another_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
