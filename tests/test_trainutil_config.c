/* tests/test_trainutil_config.c: tools/train/config.h: the file format (comments, quotes,
 * whitespace, CRLF, '-' and '_'), every parse error with its file:line and token, duplicates,
 * unknown keys, the typed getters and their errors, and the command-line merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFG(text) cfg_parse_ok("t.cfg", text)

static otu_config *cfg_parse_ok(const char *name, const char *text)
{
    otu_config *c;
    char err[256] = "";
    assert_int_equal(otu_config_create(&c), OTU_OK);
    int s = otu_config_parse(c, name, text, strlen(text), err, sizeof err);
    if (s)
        fail_msg("parse failed: %s", err);
    return c;
}

/* Parsing text fails with status want and a message holding every string of the NULL-ended
 * list. */
static void expect_parse_error(const char *text, int want, ...)
{
    otu_config *c;
    char err[256] = "";
    assert_int_equal(otu_config_create(&c), OTU_OK);
    int s = otu_config_parse(c, "t.cfg", text, strlen(text), err, sizeof err);
    if (s != want)
        fail_msg("text %s: status %d, want %d (%s)", text, s, want, err);
    va_list ap;
    va_start(ap, want);
    for (const char *sub; (sub = va_arg(ap, const char *));)
        if (!strstr(err, sub))
            fail_msg("message \"%s\" lacks \"%s\"", err, sub);
    va_end(ap);
    otu_config_destroy(c);
}

static void has(const char *msg, const char *sub)
{
    if (!strstr(msg, sub))
        fail_msg("message \"%s\" lacks \"%s\"", msg, sub);
}

static void file_format(void **state)
{
    (void)state;
    otu_config *c = CFG("# a run\n"
                        "\n"
                        "model = mlp\n"
                        "  layers\t=  64, 256,10   # widths\n"
                        "learning-rate=0.05\r\n"
                        "out = \"runs/a b # not a comment.st\"  # but this is\n"
                        "expr = a=b=c\n"
                        "empty = \"\"\n"
                        "esc = \"q\\\"b\\\\n\\n\\t\"\n"
                        "   # indented comment\n"
                        "last = 7"); /* no final newline */
    assert_int_equal(otu_config_count(c), 8);
    const otu_config_entry *e = otu_config_at(c, 0);
    assert_string_equal(e->key, "model");
    assert_string_equal(e->value, "mlp");
    assert_string_equal(e->origin, "t.cfg");
    assert_int_equal(e->line, 3);
    assert_string_equal(otu_config_find(c, "layers")->value, "64, 256,10");
    assert_int_equal(otu_config_find(c, "layers")->line, 4);
    /* '-' and '_' name one key, stored with '_' */
    assert_string_equal(otu_config_at(c, 2)->key, "learning_rate");
    assert_string_equal(otu_config_find(c, "learning-rate")->value, "0.05");
    assert_string_equal(otu_config_find(c, "learning_rate")->value, "0.05"); /* \r gone */
    assert_string_equal(otu_config_find(c, "out")->value, "runs/a b # not a comment.st");
    assert_string_equal(otu_config_find(c, "expr")->value, "a=b=c");
    assert_string_equal(otu_config_find(c, "empty")->value, "");
    assert_string_equal(otu_config_find(c, "esc")->value, "q\"b\\n\n\t");
    assert_int_equal(otu_config_find(c, "last")->line, 11);
    assert_null(otu_config_find(c, "nope"));
    assert_null(otu_config_at(c, 8));
    char w[64];
    assert_string_equal(otu_config_where(otu_config_find(c, "last"), w, sizeof w), "t.cfg:11");
    otu_config_destroy(c);
}

static void parse_errors_name_line_and_token(void **state)
{
    (void)state;
    expect_parse_error("a = 1\n\njusttext\n", OTU_EPARSE, "t.cfg:3:", "\"justtext\"", "key = value",
                       NULL);
    expect_parse_error("= 5\n", OTU_EPARSE, "t.cfg:1:", "missing key", "\"= 5\"", NULL);
    expect_parse_error("a = 1\nbad key = 2\n", OTU_EPARSE, "t.cfg:2:", "invalid key", "\"bad key\"",
                       NULL);
    expect_parse_error("1abc = 2\n", OTU_EPARSE, "t.cfg:1:", "invalid key", "\"1abc\"", NULL);
    expect_parse_error("k\xc3\xa9y = 2\n", OTU_EPARSE, "t.cfg:1:", "invalid key",
                       "\"k\\xc3\\xa9y\"", NULL);
    expect_parse_error("x = 1\ny =   # nothing\n", OTU_EPARSE, "t.cfg:2:", "\"y\"", "has no value",
                       NULL);
    expect_parse_error("name = \"abc\n", OTU_EPARSE, "t.cfg:1:", "unterminated string",
                       "\"\\\"abc\"", "\"name\"", NULL);
    expect_parse_error("name = \"a\" b\n", OTU_EPARSE, "t.cfg:1:", "after the closing quote",
                       "\"b\"", NULL);
    expect_parse_error("\n\nname = \"a\\qb\"\n", OTU_EPARSE, "t.cfg:3:", "unknown escape",
                       "\"\\\\q\"", NULL);
    expect_parse_error("name = \"a\\", OTU_EPARSE, "t.cfg:1:", "unterminated", NULL);
    /* a NUL byte inside a line: the text is given with its length, so build it by hand */
    otu_config *c;
    char err[256];
    assert_int_equal(otu_config_create(&c), OTU_OK);
    const char nul[] = "a = 1\nb = x\0y\n";
    assert_int_equal(otu_config_parse(c, "t.cfg", nul, sizeof nul - 1, err, sizeof err),
                     OTU_EPARSE);
    has(err, "t.cfg:2:");
    has(err, "NUL");
    /* lines before the bad one stay */
    assert_string_equal(otu_config_find(c, "a")->value, "1");
    otu_config_destroy(c);
    /* a long offending token is cut, so the message keeps its file:line */
    char longline[600];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    expect_parse_error(longline, OTU_EPARSE, "t.cfg:1:", "xxx...\"", NULL);
}

static void load_from_file_and_missing_file(void **state)
{
    (void)state;
    char path[] = "/tmp/otu_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "epochs = 3\nlr = 0.5\nepochs = 4 # again\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    otu_config *c;
    char err[256];
    assert_int_equal(otu_config_create(&c), OTU_OK);
    assert_int_equal(otu_config_load(c, path, err, sizeof err), OTU_OK);
    long epochs = 0;
    assert_int_equal(otu_config_long(c, "epochs", 1, 100, &epochs, err, sizeof err), 1);
    assert_int_equal(epochs, 4); /* later wins */
    const otu_config_entry *e = otu_config_find(c, "epochs");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->dup_line, 1);
    assert_string_equal(e->origin, path);
    otu_config_destroy(c);
    unlink(path);

    assert_int_equal(otu_config_create(&c), OTU_OK);
    assert_int_equal(otu_config_load(c, "/nonexistent/run.cfg", err, sizeof err), OTU_EIO);
    has(err, "/nonexistent/run.cfg");
    has(err, "No such file");
    otu_config_destroy(c);
}

static char *capture(void (*fn)(otu_config *, FILE *, size_t *), otu_config *c, size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(c, f, n);
    fclose(f);
    return buf;
}

static void report_unused(otu_config *c, FILE *f, size_t *n)
{
    *n = otu_config_report_unused(c, f);
}
static void warn_dups(otu_config *c, FILE *f, size_t *n) { *n = otu_config_warn_duplicates(c, f); }

static void duplicates_and_unknown_keys(void **state)
{
    (void)state;
    otu_config *c = CFG("model = mlp\nlr = 0.1\nlr_decay = 0.5\nlr = 0.2\nseed = 1\n");
    char err[256];
    const char *model;
    double lr;
    assert_int_equal(otu_config_string(c, "model", &model, err, sizeof err), 1);
    assert_string_equal(model, "mlp");
    assert_int_equal(otu_config_double(c, "lr", 0, 10, &lr, err, sizeof err), 1);
    assert_true(lr == 0.2);
    assert_int_equal(otu_config_mark_used(c, "seed"), 1);
    assert_int_equal(otu_config_mark_used(c, "absent"), 0);
    size_t n;
    char *out = capture(report_unused, c, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out, "t.cfg:3: unknown key \"lr_decay\"\n");
    free(out);
    out = capture(warn_dups, c, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out, "t.cfg:4: duplicate key \"lr\" replaces line 2\n");
    free(out);
    /* a second file overriding the first is not a duplicate */
    assert_int_equal(otu_config_parse(c, "b.cfg", "model = cnn\n", 12, err, sizeof err), 0);
    assert_int_equal(otu_config_find(c, "model")->dup_line, 0);
    assert_string_equal(otu_config_find(c, "model")->origin, "b.cfg");
    /* ... and the new value is unread again */
    out = capture(report_unused, c, &n);
    assert_int_equal(n, 2);
    assert_non_null(strstr(out, "b.cfg:1: unknown key \"model\"\n"));
    free(out);
    otu_config_destroy(c);
}

static void getters_good_values(void **state)
{
    (void)state;
    otu_config *c = CFG("n = -42\nbig = +7\nx = 2.5e-3\ny = -1\nt1 = TRUE\nt2 = yes\nt3 = 1\n"
                        "f1 = false\nf2 = No\nf3 = 0\nlayers = 2, 256 ,10\none = 5\n"
                        "tiny = 1e-400\n");
    char err[256];
    long n = 0;
    assert_int_equal(otu_config_long(c, "n", -100, 100, &n, err, sizeof err), 1);
    assert_int_equal(n, -42);
    assert_int_equal(otu_config_long(c, "big", 7, 7, &n, err, sizeof err), 1);
    assert_int_equal(n, 7);
    double x = 0;
    assert_int_equal(otu_config_double(c, "x", 0, 1, &x, err, sizeof err), 1);
    assert_true(x == 2.5e-3);
    assert_int_equal(otu_config_double(c, "y", -1, -1, &x, err, sizeof err), 1); /* inclusive */
    assert_true(x == -1.0);
    assert_int_equal(otu_config_double(c, "tiny", 0, 1, &x, err, sizeof err), 1);
    assert_true(x >= 0 && x < 1e-300);
    const char *yes[] = {"t1", "t2", "t3"}, *no[] = {"f1", "f2", "f3"};
    for (int i = 0; i < 3; i++) {
        int b = -1;
        assert_int_equal(otu_config_bool(c, yes[i], &b, err, sizeof err), 1);
        assert_int_equal(b, 1);
        assert_int_equal(otu_config_bool(c, no[i], &b, err, sizeof err), 1);
        assert_int_equal(b, 0);
    }
    int v[4] = {0};
    size_t k = 0;
    assert_int_equal(otu_config_ints(c, "layers", 1, 4096, v, 4, &k, err, sizeof err), 1);
    assert_int_equal(k, 3);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 256);
    assert_int_equal(v[2], 10);
    assert_int_equal(otu_config_ints(c, "one", 1, 10, v, 1, &k, err, sizeof err), 1);
    assert_int_equal(k, 1);
    assert_int_equal(v[0], 5);
    /* absent keys: 0 and the default untouched */
    n = 99;
    assert_int_equal(otu_config_long(c, "absent", 0, 1, &n, err, sizeof err), 0);
    assert_int_equal(n, 99);
    x = 9.5;
    assert_int_equal(otu_config_double(c, "absent", 0, 1, &x, err, sizeof err), 0);
    assert_true(x == 9.5);
    const char *s = "dflt";
    assert_int_equal(otu_config_string(c, "absent", &s, err, sizeof err), 0);
    assert_string_equal(s, "dflt");
    /* everything read, so nothing is unknown */
    assert_int_equal(otu_config_report_unused(c, NULL), 0);
    otu_config_destroy(c);
}

/* Getter on key of text fails with want, the message has t.cfg:line, the key and token. */
typedef enum { G_LONG, G_DOUBLE, G_BOOL, G_INTS } getter;

static void expect_get_error(getter g, const char *text, int want, const char *where,
                             const char *token, const char *problem)
{
    otu_config *c = CFG(text);
    char err[256] = "";
    long l = 123;
    double d = 1.5;
    int b = 7, v[3] = {9, 9, 9};
    size_t n = 77;
    int s = 0;
    switch (g) {
    case G_LONG: s = otu_config_long(c, "k", 1, 1000, &l, err, sizeof err); break;
    case G_DOUBLE: s = otu_config_double(c, "k", -10, 10, &d, err, sizeof err); break;
    case G_BOOL: s = otu_config_bool(c, "k", &b, err, sizeof err); break;
    case G_INTS: s = otu_config_ints(c, "k", 1, 1000, v, 3, &n, err, sizeof err); break;
    }
    if (s != want)
        fail_msg("%s: status %d, want %d (%s)", text, s, want, err);
    has(err, where);
    has(err, "\"k\"");
    has(err, token);
    has(err, problem);
    /* outputs untouched */
    assert_int_equal(l, 123);
    assert_true(d == 1.5);
    assert_int_equal(b, 7);
    assert_int_equal(v[0], 9);
    assert_int_equal(n, 77);
    /* a bad value was still looked at: it is not also reported unknown */
    assert_int_equal(otu_config_find(c, "k")->used, 1);
    otu_config_destroy(c);
}

static void getters_errors(void **state)
{
    (void)state;
    expect_get_error(G_LONG, "a = 1\nk = 1e3\n", OTU_EPARSE, "t.cfg:2:", "\"1e3\"", "integer");
    expect_get_error(G_LONG, "k = 12abc\n", OTU_EPARSE, "t.cfg:1:", "\"12abc\"", "integer");
    expect_get_error(G_LONG, "k = -\n", OTU_EPARSE, "t.cfg:1:", "\"-\"", "integer");
    expect_get_error(G_LONG, "k = 0\n", OTU_ERANGE, "t.cfg:1:", "\"0\"", "[1, 1000]");
    expect_get_error(G_LONG, "k = 1001\n", OTU_ERANGE, "t.cfg:1:", "\"1001\"", "out of range");
    expect_get_error(G_LONG, "k = 99999999999999999999999\n", OTU_ERANGE,
                     "t.cfg:1:", "\"99999999999999999999999\"", "out of range");
    expect_get_error(G_DOUBLE, "k = fast\n", OTU_EPARSE, "t.cfg:1:", "\"fast\"", "number");
    expect_get_error(G_DOUBLE, "k = 0.5x\n", OTU_EPARSE, "t.cfg:1:", "\"0.5x\"", "number");
    expect_get_error(G_DOUBLE, "k = nan\n", OTU_ERANGE, "t.cfg:1:", "\"nan\"", "finite");
    expect_get_error(G_DOUBLE, "k = -inf\n", OTU_ERANGE, "t.cfg:1:", "\"-inf\"", "finite");
    expect_get_error(G_DOUBLE, "k = 1e999\n", OTU_ERANGE, "t.cfg:1:", "\"1e999\"", "finite");
    expect_get_error(G_DOUBLE, "\n\n\nk = 10.5\n", OTU_ERANGE, "t.cfg:4:", "\"10.5\"", "[-10, 10]");
    expect_get_error(G_BOOL, "k = maybe\n", OTU_EPARSE, "t.cfg:1:", "\"maybe\"", "true/false");
    expect_get_error(G_BOOL, "k = 2\n", OTU_EPARSE, "t.cfg:1:", "\"2\"", "yes/no");
    expect_get_error(G_INTS, "k = 2,,3\n", OTU_EPARSE, "t.cfg:1:", "item 2", "\"\"");
    expect_get_error(G_INTS, "k = 2, x ,3\n", OTU_EPARSE, "t.cfg:1:", "item 2", "\"x\"");
    expect_get_error(G_INTS, "k = 2,3,\n", OTU_EPARSE, "t.cfg:1:", "item 3", "integer");
    expect_get_error(G_INTS, "k = 2,0\n", OTU_ERANGE, "t.cfg:1:", "item 2", "\"0\"");
    expect_get_error(G_INTS, "k = 1,2,3,4\n", OTU_ERANGE, "t.cfg:1:", "more than 3", "\"1,2,3,4\"");
    expect_get_error(G_INTS, "k = 1.5\n", OTU_EPARSE, "t.cfg:1:", "\"1.5\"", "item 1");
}

static void args_override_file(void **state)
{
    (void)state;
    otu_config *c = CFG("learning_rate = 0.1\nepochs = 5\nmodel = mlp\n");
    char *argv[] = {"okto-train", "run.cfg",    "--learning-rate",
                    "0.5",        "--epochs=7", "--check",
                    "--model=",   "--lr-min",   "-1e-3",
                    "extra",      "--",         "--not-a-flag",
                    "-",          NULL};
    int argc = 13;
    int npos = -1;
    char err[256] = "";
    assert_int_equal(otu_config_args(c, argc, argv, &npos, err, sizeof err), OTU_OK);
    assert_int_equal(npos, 4);
    assert_string_equal(argv[0], "okto-train");
    assert_string_equal(argv[1], "run.cfg");
    assert_string_equal(argv[2], "extra");
    assert_string_equal(argv[3], "--not-a-flag"); /* after "--": positional */
    assert_string_equal(argv[4], "-");
    assert_null(argv[5]);
    double lr;
    long epochs;
    int check;
    assert_int_equal(otu_config_double(c, "learning_rate", 0, 1, &lr, err, sizeof err), 1);
    assert_true(lr == 0.5);
    assert_int_equal(otu_config_long(c, "epochs", 1, 100, &epochs, err, sizeof err), 1);
    assert_int_equal(epochs, 7);
    assert_int_equal(otu_config_bool(c, "check", &check, err, sizeof err), 1);
    assert_int_equal(check, 1);
    assert_string_equal(otu_config_find(c, "model")->value, "");
    assert_string_equal(otu_config_find(c, "lr_min")->value, "-1e-3");
    const otu_config_entry *e = otu_config_find(c, "learning_rate");
    assert_int_equal(e->from_args, 1);
    assert_int_equal(e->dup_line, 0); /* an override, not a duplicate */
    assert_int_equal(e->line, 2);     /* its argv index */
    char w[64];
    assert_string_equal(otu_config_where(e, w, sizeof w), "command line --learning-rate");
    otu_config_destroy(c);

    /* getter errors on flags name the flag as typed */
    c = CFG("");
    char *argv2[] = {"okto-train", "--lr=x", "--epochs", "bad", NULL};
    assert_int_equal(otu_config_args(c, 4, argv2, &npos, err, sizeof err), OTU_OK);
    assert_int_equal(npos, 0);
    assert_int_equal(otu_config_long(c, "epochs", 1, 100, &epochs, err, sizeof err), OTU_EPARSE);
    has(err, "command line --epochs");
    has(err, "\"bad\"");
    otu_config_destroy(c);

    c = CFG("");
    char *argv3[] = {"okto-train", "--lr", "1", "-x", NULL};
    assert_int_equal(otu_config_args(c, 4, argv3, &npos, err, sizeof err), OTU_EPARSE);
    has(err, "argv[3]");
    has(err, "\"-x\"");
    has(err, "two dashes");
    char *argv4[] = {"okto-train", "--bad key=1", NULL};
    assert_int_equal(otu_config_args(c, 2, argv4, &npos, err, sizeof err), OTU_EPARSE);
    has(err, "argv[1]");
    has(err, "\"--bad key=1\"");
    char *argv5[] = {"okto-train", "--=3", NULL};
    assert_int_equal(otu_config_args(c, 2, argv5, &npos, err, sizeof err), OTU_EPARSE);
    has(err, "invalid flag");
    otu_config_destroy(c);
}

static void set_validates_keys(void **state)
{
    (void)state;
    otu_config *c;
    char err[256];
    assert_int_equal(otu_config_create(&c), OTU_OK);
    assert_int_equal(otu_config_set(c, "a-b", "1", "defaults", 0, err, sizeof err), OTU_OK);
    assert_string_equal(otu_config_at(c, 0)->key, "a_b");
    assert_int_equal(otu_config_set(c, "a b", "1", "defaults", 0, err, sizeof err), OTU_EPARSE);
    has(err, "defaults:0:");
    has(err, "\"a b\"");
    otu_config_destroy(c);
    otu_config_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_format),
        cmocka_unit_test(parse_errors_name_line_and_token),
        cmocka_unit_test(load_from_file_and_missing_file),
        cmocka_unit_test(duplicates_and_unknown_keys),
        cmocka_unit_test(getters_good_values),
        cmocka_unit_test(getters_errors),
        cmocka_unit_test(args_override_file),
        cmocka_unit_test(set_validates_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
