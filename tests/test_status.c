/* tests/test_status.c: the one error channel. Every code of OKTO_STATUS_MAP has a name and a
 * message and okto_status_str formats them as "OKTO_NAME: message"; unknown codes get a static
 * fallback; okto_last_error(NULL) is per thread and okto_last_error(ctx) per context. Only the
 * last test needs an OpenCL device (it skips itself without one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table itself, expanded here as the library expands it, so the test checks every row. */
typedef struct row {
    okto_status code;
    int value;
    const char *name; /* "OKTO_EINVAL" */
    const char *msg;  /* "invalid argument" */
} row;

static const row rows[] = {
#define ROW(name, value, msg) {OKTO_##name, (value), "OKTO_" #name, msg},
    OKTO_STATUS_MAP(ROW)
#undef ROW
};
enum { NROWS = sizeof rows / sizeof rows[0] };

static void every_code_has_name_and_message(void **state)
{
    (void)state;
    assert_true(NROWS >= 10); /* OK .. ENOTSUP */
    for (int i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        assert_int_equal((int)r->code, r->value);
        assert_true(strlen(r->msg) > 0);

        const char *name = okto_status_name(r->code);
        assert_non_null(name);
        assert_string_equal(name, r->name);

        char want[256];
        snprintf(want, sizeof want, "%s: %s", r->name, r->msg);
        const char *str = okto_status_str(r->code);
        assert_non_null(str);
        assert_string_equal(str, want);
        /* a static string: the same pointer every time, nothing to free */
        assert_ptr_equal(okto_status_str(r->code), str);
    }
}

static void codes_are_distinct_ok_zero_errors_negative(void **state)
{
    (void)state;
    assert_int_equal(OKTO_OK, 0);
    for (int i = 0; i < NROWS; i++) {
        if (rows[i].code != OKTO_OK)
            assert_true(rows[i].value < 0);
        for (int j = i + 1; j < NROWS; j++) {
            assert_int_not_equal(rows[i].value, rows[j].value);
            assert_string_not_equal(rows[i].name, rows[j].name);
        }
    }
}

static void str_format_examples(void **state)
{
    (void)state;
    assert_string_equal(okto_status_str(OKTO_EINVAL), "OKTO_EINVAL: invalid argument");
    assert_string_equal(okto_status_str(OKTO_OK), "OKTO_OK: success");
    assert_string_equal(okto_status_str(OKTO_ENODEV), "OKTO_ENODEV: no OpenCL device");
    assert_string_equal(okto_status_name(OKTO_ECL), "OKTO_ECL");
}

static void unknown_code(void **state)
{
    (void)state;
    const okto_status bogus[] = {(okto_status)1, (okto_status)-10, (okto_status)-999,
                                 (okto_status)12345};
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        const char *str = okto_status_str(bogus[i]);
        assert_non_null(str);
        assert_string_equal(str, "OKTO_UNKNOWN: unknown status code");
        assert_null(okto_status_name(bogus[i]));
    }
}

/* ---- okto_last_error ------------------------------------------------------------------ */

typedef struct thread_result {
    char before[256]; /* okto_last_error(NULL) before the thread made any call */
    char after[256];  /* after its own failing call */
    okto_status s;
} thread_result;

static void *fail_on_other_thread(void *arg)
{
    thread_result *r = arg;
    snprintf(r->before, sizeof r->before, "%s", okto_last_error(NULL));
    r->s = okto_devices(NULL, NULL);
    snprintf(r->after, sizeof r->after, "%s", okto_last_error(NULL));
    return NULL;
}

static void last_error_null_is_thread_local(void **state)
{
    (void)state;
    /* This thread fails first: the message says which call and which argument. */
    assert_int_equal(okto_context_create(NULL, NULL), OKTO_EINVAL);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", okto_last_error(NULL));
    assert_non_null(strstr(mine, "okto_context_create"));
    assert_non_null(strstr(mine, "out"));

    /* A fresh thread starts with "" and sees only its own failure. */
    thread_result r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fail_on_other_thread, &r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(r.before, "");
    assert_int_equal(r.s, OKTO_EINVAL);
    assert_non_null(strstr(r.after, "okto_devices"));

    /* ...and its failure did not touch this thread's message. */
    assert_string_equal(okto_last_error(NULL), mine);

    /* The next failure on this thread replaces the message. */
    assert_int_equal(okto_context_create_from_cl(NULL, NULL, NULL, NULL), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(NULL), "okto_context_create_from_cl"));
}

static void last_error_with_context(void **state)
{
    (void)state;
    okto_context *ctx = NULL;
    okto_status s = okto_context_create(NULL, &ctx);
    if (s == OKTO_ENODEV) {
        skip(); /* no OpenCL device: nothing to attach an error to */
        return;
    }
    assert_int_equal(s, OKTO_OK);
    assert_string_equal(okto_last_error(ctx), ""); /* nothing failed on it yet */

    okto_tensor *t = NULL;
    assert_int_equal(okto_tensor_create_2d(ctx, 0, 4, &t), OKTO_EINVAL);
    assert_null(t);
    /* the failure is recorded on the context and on the calling thread */
    assert_non_null(strstr(okto_last_error(ctx), "[0,4]"));
    assert_non_null(strstr(okto_last_error(NULL), "[0,4]"));

    /* A failure on another context or with no context leaves this context's message alone. */
    assert_int_equal(okto_devices(NULL, NULL), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "[0,4]"));
    assert_non_null(strstr(okto_last_error(NULL), "okto_devices"));
    okto_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_name_and_message),
        cmocka_unit_test(codes_are_distinct_ok_zero_errors_negative),
        cmocka_unit_test(str_format_examples),
        cmocka_unit_test(unknown_code),
        cmocka_unit_test(last_error_null_is_thread_local),
        cmocka_unit_test(last_error_with_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
