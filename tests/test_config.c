/* tests/test_config.c: okto_config_init defaults and every environment variable (OKTO_DEVICE,
 * OKTO_LANES, OKTO_SCHED, OKTO_LOG, OKTO_TRACE) with valid and invalid values. An invalid value
 * never makes okto_config_init fail (it returns nothing); it is recorded in the config and
 * okto_context_create then fails with OKTO_EINVAL and a message naming the variable and value.
 * Those checks need no device: the config is validated before any device is looked for. The
 * tests that create a context with valid values skip themselves when there is no device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_vars[] = {"OKTO_DEVICE", "OKTO_LANES", "OKTO_SCHED", "OKTO_LOG",
                                       "OKTO_TRACE", "OKTO_SUBDEVICES", "OKTO_FUSE", "OKTO_ATTENTION"};

/* Every test starts from a clean environment (meson sets OKTO_LOG=error for the suite, and a
 * developer may have any of these set). */
static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

/* okto_config_init with exactly one variable set. */
static okto_config config_with(const char *var, const char *value)
{
    clear_env(NULL);
    setenv(var, value, 1);
    okto_config cfg;
    okto_config_init(&cfg);
    unsetenv(var);
    return cfg;
}

/* The variable holds an invalid value: the config records it, and both ways of creating a
 * context from it (the config, and NULL = the environment) fail with OKTO_EINVAL naming the
 * variable and the value. */
static void expect_invalid(const char *var, const char *value)
{
    /* Long values may be cut short in the 256-byte message; their start must be there. */
    char head[65];
    snprintf(head, sizeof head, "%s", value);
    okto_config cfg = config_with(var, value);
    if (cfg.env_status != OKTO_EINVAL)
        fail_msg("%s=\"%s\" should be invalid, env_status = %s", var, value,
                 okto_status_str(cfg.env_status));
    if (!strstr(cfg.env_error, var) || !strstr(cfg.env_error, head))
        fail_msg("%s=\"%s\": env_error does not name both: \"%s\"", var, value, cfg.env_error);

    okto_context *ctx = (okto_context *)&cfg; /* any non-NULL value: must be reset to NULL */
    okto_status s = okto_context_create(&cfg, &ctx);
    if (s != OKTO_EINVAL)
        fail_msg("okto_context_create with %s=\"%s\" returned %s", var, value, okto_status_str(s));
    assert_null(ctx);
    const char *err = okto_last_error(NULL);
    if (!strstr(err, var) || !strstr(err, head))
        fail_msg("%s=\"%s\": okto_last_error does not name both: \"%s\"", var, value, err);

    setenv(var, value, 1);
    ctx = NULL;
    s = okto_context_create(NULL, &ctx);
    unsetenv(var);
    if (s != OKTO_EINVAL)
        fail_msg("okto_context_create(NULL) with %s=\"%s\" returned %s", var, value,
                 okto_status_str(s));
    assert_null(ctx);
    assert_non_null(strstr(okto_last_error(NULL), var));
}

static void expect_valid(const okto_config *cfg, const char *var, const char *value)
{
    if (cfg->env_status != OKTO_OK || cfg->env_error[0])
        fail_msg("%s=\"%s\" should be valid: %s \"%s\"", var, value,
                 okto_status_str(cfg->env_status), cfg->env_error);
}

/* ---- defaults --------------------------------------------------------------------------- */

static void defaults_without_environment(void **state)
{
    (void)state;
    okto_config cfg;
    memset(&cfg, 0x5a, sizeof cfg); /* init must set every field, not rely on zeroed memory */
    okto_config_init(&cfg);
    assert_int_equal(cfg.device_index, -1);
    assert_string_equal(cfg.device_name, "");
    assert_int_equal(cfg.compute_lanes, 0);
    assert_int_equal(cfg.copy_lanes, -1);
    assert_int_equal(cfg.sched, OKTO_SCHED_HEFT);
    assert_int_equal(cfg.log, OKTO_LOG_WARN);
    assert_string_equal(cfg.trace_path, "");
    assert_int_equal(cfg.env_status, OKTO_OK);
    assert_string_equal(cfg.env_error, "");

    okto_config_init(NULL); /* ignored, no crash */
}

static void empty_values_mean_automatic(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        setenv(env_vars[i], "", 1);
    okto_config cfg;
    okto_config_init(&cfg);
    assert_int_equal(cfg.env_status, OKTO_OK);
    assert_int_equal(cfg.device_index, -1);
    assert_string_equal(cfg.device_name, "");
    assert_int_equal(cfg.compute_lanes, 0);
    assert_int_equal(cfg.sched, OKTO_SCHED_HEFT);
    assert_int_equal(cfg.log, OKTO_LOG_WARN);
    assert_string_equal(cfg.trace_path, "");
    clear_env(NULL);
}

static void sched_names(void **state)
{
    (void)state;
    assert_string_equal(okto_sched_name(OKTO_SCHED_SEQUENTIAL), "sequential");
    assert_string_equal(okto_sched_name(OKTO_SCHED_ROUND_ROBIN), "round-robin");
    assert_string_equal(okto_sched_name(OKTO_SCHED_HEFT), "heft");
    assert_string_equal(okto_sched_name(OKTO_SCHED_AUTO), "auto");
}

/* ---- OKTO_DEVICE ------------------------------------------------------------------------ */

static void device_valid(void **state)
{
    (void)state;
    okto_config cfg = config_with("OKTO_DEVICE", "0");
    expect_valid(&cfg, "OKTO_DEVICE", "0");
    assert_int_equal(cfg.device_index, 0);
    assert_string_equal(cfg.device_name, "");

    cfg = config_with("OKTO_DEVICE", "12");
    expect_valid(&cfg, "OKTO_DEVICE", "12");
    assert_int_equal(cfg.device_index, 12); /* range is checked against the devices later */

    cfg = config_with("OKTO_DEVICE", "all"); /* every device of the chosen one's platform */
    expect_valid(&cfg, "OKTO_DEVICE", "all");
    assert_int_equal(cfg.ndevices, -1);

    cfg = config_with("OKTO_DEVICE", "1,0,3");
    expect_valid(&cfg, "OKTO_DEVICE", "1,0,3");
    assert_int_equal(cfg.ndevices, 3);
    assert_int_equal(cfg.devices[0], 1);
    assert_int_equal(cfg.devices[2], 3);

    cfg = config_with("OKTO_DEVICE", "pthread");
    expect_valid(&cfg, "OKTO_DEVICE", "pthread");
    assert_int_equal(cfg.device_index, -1);
    assert_string_equal(cfg.device_name, "pthread");

    cfg = config_with("OKTO_DEVICE", "GeForce RTX 4090"); /* spaces, case kept as given */
    expect_valid(&cfg, "OKTO_DEVICE", "GeForce RTX 4090");
    assert_string_equal(cfg.device_name, "GeForce RTX 4090");

    char longest[128];
    memset(longest, 'x', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    cfg = config_with("OKTO_DEVICE", longest);
    expect_valid(&cfg, "OKTO_DEVICE", "127 characters");
    assert_string_equal(cfg.device_name, longest);
}

static void device_invalid(void **state)
{
    (void)state;
    expect_invalid("OKTO_DEVICE", "99999999999"); /* an index far beyond any machine */
    expect_invalid("OKTO_DEVICE", "0,0");         /* a device twice */
    expect_invalid("OKTO_DEVICE", "0,");
    expect_invalid("OKTO_DEVICE", "0,x");
    expect_invalid("OKTO_DEVICE", "0,1,2,3,4,5,6,7,8"); /* more than OKTO_MAX_DEVICES */
    char too_long[200];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    expect_invalid("OKTO_DEVICE", too_long);
}

/* ---- OKTO_LANES ------------------------------------------------------------------------- */

static void lanes_valid_1_to_64(void **state)
{
    (void)state;
    for (int n = 1; n <= 64; n++) {
        char v[8];
        snprintf(v, sizeof v, "%d", n);
        okto_config cfg = config_with("OKTO_LANES", v);
        expect_valid(&cfg, "OKTO_LANES", v);
        assert_int_equal(cfg.compute_lanes, n);
        assert_int_equal(cfg.copy_lanes, -1); /* OKTO_LANES is compute lanes only */
    }
}

static void lanes_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"0", "65", "abc", "-1", "3x", "1000000000000000000000", "2.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_invalid("OKTO_LANES", bad[i]);
}

/* ---- OKTO_SCHED ------------------------------------------------------------------------- */

static void sched_valid(void **state)
{
    (void)state;
    const struct {
        const char *value;
        okto_sched sched;
    } ok[] = {{"sequential", OKTO_SCHED_SEQUENTIAL},
              {"round-robin", OKTO_SCHED_ROUND_ROBIN},
              {"heft", OKTO_SCHED_HEFT}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        okto_config cfg = config_with("OKTO_SCHED", ok[i].value);
        expect_valid(&cfg, "OKTO_SCHED", ok[i].value);
        assert_int_equal(cfg.sched, ok[i].sched);
    }
}

static void sched_invalid(void **state)
{
    (void)state;
    expect_invalid("OKTO_SCHED", "fifo");
    expect_invalid("OKTO_SCHED", "round_robin");
    expect_invalid("OKTO_SCHED", "auto"); /* a config value, not an environment one */
}

/* ---- OKTO_LOG --------------------------------------------------------------------------- */

static void log_valid(void **state)
{
    (void)state;
    const struct {
        const char *value;
        okto_log_level level;
    } ok[] = {{"error", OKTO_LOG_ERROR},
              {"warn", OKTO_LOG_WARN},
              {"info", OKTO_LOG_INFO},
              {"debug", OKTO_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        okto_config cfg = config_with("OKTO_LOG", ok[i].value);
        expect_valid(&cfg, "OKTO_LOG", ok[i].value);
        assert_int_equal(cfg.log, ok[i].level);
    }
}

static void log_invalid(void **state)
{
    (void)state;
    expect_invalid("OKTO_LOG", "verbose");
    expect_invalid("OKTO_LOG", "3");
}

/* ---- OKTO_SUBDEVICES -------------------------------------------------------------------- */

static void subdevices_values(void **state)
{
    (void)state;
    okto_config cfg;
    okto_config_init(&cfg);
    assert_int_equal(cfg.subdevices, -1); /* automatic: lanes share the device */
    for (int v = 0; v <= 1; v++) {
        const char *value = v ? "1" : "0";
        cfg = config_with("OKTO_SUBDEVICES", value);
        expect_valid(&cfg, "OKTO_SUBDEVICES", value);
        assert_int_equal(cfg.subdevices, v);
        /* both layouts make a working context with the same lanes */
        okto_context *ctx = NULL;
        okto_status s = okto_context_create(&cfg, &ctx);
        if (s == OKTO_ENODEV)
            continue;
        assert_int_equal(s, OKTO_OK);
        assert_true(okto_context_compute_lanes(ctx) >= 1);
        okto_context_destroy(ctx);
    }
    expect_invalid("OKTO_SUBDEVICES", "2");
    expect_invalid("OKTO_SUBDEVICES", "yes");
    okto_config_init(&cfg);
    cfg.subdevices = 5;
    okto_context *ctx = NULL;
    assert_int_equal(okto_context_create(&cfg, &ctx), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(NULL), "subdevices"));
}

/* ---- OKTO_FUSE: the graph optimizer's switches (lib/engine/optimize.c) -------------------- */

static void fuse_values(void **state)
{
    (void)state;
    const char *valid[] = {"0", "1", "none", "all", "gemm", "optim,ew", "gemm,optim,ew"};
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        okto_config cfg = config_with("OKTO_FUSE", valid[i]);
        expect_valid(&cfg, "OKTO_FUSE", valid[i]);
    }
    /* a typo is refused, not read as "no rewrite" */
    expect_invalid("OKTO_FUSE", "yes");
    expect_invalid("OKTO_FUSE", "gemm,fuse");
    expect_invalid("OKTO_FUSE", "gem");
    /* and lib/nn's attention path */
    const char *att[] = {"fused", "matmul", "auto"};
    for (size_t i = 0; i < sizeof att / sizeof *att; i++) {
        okto_config cfg = config_with("OKTO_ATTENTION", att[i]);
        expect_valid(&cfg, "OKTO_ATTENTION", att[i]);
    }
    expect_invalid("OKTO_ATTENTION", "flash");
}

/* ---- OKTO_TRACE ------------------------------------------------------------------------- */

static void trace_valid(void **state)
{
    (void)state;
    okto_config cfg = config_with("OKTO_TRACE", "/tmp/okto-trace.json");
    expect_valid(&cfg, "OKTO_TRACE", "/tmp/okto-trace.json");
    assert_string_equal(cfg.trace_path, "/tmp/okto-trace.json");
}

static void trace_invalid(void **state)
{
    (void)state;
    char too_long[300];
    memset(too_long, 'p', sizeof too_long - 1);
    too_long[0] = '/';
    too_long[sizeof too_long - 1] = '\0';
    expect_invalid("OKTO_TRACE", too_long);
}

/* ---- several variables at once ---------------------------------------------------------- */

static void all_valid_together(void **state)
{
    (void)state;
    setenv("OKTO_DEVICE", "1", 1);
    setenv("OKTO_LANES", "5", 1);
    setenv("OKTO_SCHED", "round-robin", 1);
    setenv("OKTO_LOG", "debug", 1);
    setenv("OKTO_TRACE", "run.json", 1);
    okto_config cfg;
    okto_config_init(&cfg);
    clear_env(NULL);
    assert_int_equal(cfg.env_status, OKTO_OK);
    assert_int_equal(cfg.device_index, 1);
    assert_int_equal(cfg.compute_lanes, 5);
    assert_int_equal(cfg.sched, OKTO_SCHED_ROUND_ROBIN);
    assert_int_equal(cfg.log, OKTO_LOG_DEBUG);
    assert_string_equal(cfg.trace_path, "run.json");
}

static void first_bad_variable_is_reported(void **state)
{
    (void)state;
    setenv("OKTO_LANES", "abc", 1);
    setenv("OKTO_SCHED", "fifo", 1);
    okto_config cfg;
    okto_config_init(&cfg);
    clear_env(NULL);
    assert_int_equal(cfg.env_status, OKTO_EINVAL);
    assert_non_null(strstr(cfg.env_error, "OKTO_LANES"));
    assert_null(strstr(cfg.env_error, "OKTO_SCHED"));
    /* the valid parts around the bad one are still read */
    setenv("OKTO_LANES", "abc", 1);
    setenv("OKTO_LOG", "info", 1);
    okto_config_init(&cfg);
    clear_env(NULL);
    assert_int_equal(cfg.log, OKTO_LOG_INFO);
    assert_int_equal(cfg.compute_lanes, 0);
}

/* ---- config fields set by a program (not the environment) ------------------------------ */

static void expect_bad_field(const okto_config *cfg, const char *field)
{
    okto_context *ctx = NULL;
    okto_status s = okto_context_create(cfg, &ctx);
    if (s != OKTO_EINVAL)
        fail_msg("bad %s: okto_context_create returned %s", field, okto_status_str(s));
    assert_null(ctx);
    if (!strstr(okto_last_error(NULL), field))
        fail_msg("bad %s: message does not name it: \"%s\"", field, okto_last_error(NULL));
}

static void bad_config_fields(void **state)
{
    (void)state;
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.compute_lanes = OKTO_MAX_COMPUTE_LANES + 1;
    expect_bad_field(&cfg, "compute_lanes");
    cfg.compute_lanes = -1;
    expect_bad_field(&cfg, "compute_lanes");

    okto_config_init(&cfg);
    cfg.copy_lanes = OKTO_MAX_COPY_LANES + 1;
    expect_bad_field(&cfg, "copy_lanes");
    cfg.copy_lanes = -2;
    expect_bad_field(&cfg, "copy_lanes");

    okto_config_init(&cfg);
    cfg.sched = (okto_sched)99;
    expect_bad_field(&cfg, "sched");
}

/* ---- valid values reach the context ---------------------------------------------------- */

/* okto_context_create(NULL) with the current environment; NULL after skip() when there is no
 * device. */
static okto_context *context_from_env(void)
{
    okto_context *ctx = NULL;
    okto_status s = okto_context_create(NULL, &ctx);
    if (s == OKTO_ENODEV)
        return NULL;
    if (s != OKTO_OK)
        fail_msg("okto_context_create: %s: %s", okto_status_str(s), okto_last_error(NULL));
    return ctx;
}

static void valid_environment_reaches_context(void **state)
{
    (void)state;
    const struct {
        const char *value;
        okto_sched sched;
    } ok[] = {{"sequential", OKTO_SCHED_SEQUENTIAL},
              {"round-robin", OKTO_SCHED_ROUND_ROBIN},
              {"heft", OKTO_SCHED_HEFT}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv("OKTO_SCHED", ok[i].value, 1);
        okto_context *ctx = context_from_env();
        unsetenv("OKTO_SCHED");
        if (!ctx) {
            skip();
            return;
        }
        assert_int_equal(okto_context_sched(ctx), ok[i].sched);
        okto_context_destroy(ctx);
    }

    /* No OKTO_SCHED and a config asking for "auto": the context's policy is heft. */
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.sched = OKTO_SCHED_AUTO;
    okto_context *ctx = NULL;
    assert_int_equal(okto_context_create(&cfg, &ctx), OKTO_OK);
    assert_int_equal(okto_context_sched(ctx), OKTO_SCHED_HEFT);
    okto_context_destroy(ctx);

    setenv("OKTO_LANES", "2", 1);
    setenv("OKTO_LOG", "error", 1);
    setenv("OKTO_TRACE", "/tmp/okto-test-config-trace.json", 1);
    ctx = context_from_env();
    clear_env(NULL);
    assert_non_null(ctx);
    assert_int_equal(okto_context_compute_lanes(ctx), 2);
    okto_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_without_environment, clear_env),
        cmocka_unit_test_setup(empty_values_mean_automatic, clear_env),
        cmocka_unit_test_setup(sched_names, clear_env),
        cmocka_unit_test_setup(device_valid, clear_env),
        cmocka_unit_test_setup(device_invalid, clear_env),
        cmocka_unit_test_setup(lanes_valid_1_to_64, clear_env),
        cmocka_unit_test_setup(lanes_invalid, clear_env),
        cmocka_unit_test_setup(sched_valid, clear_env),
        cmocka_unit_test_setup(sched_invalid, clear_env),
        cmocka_unit_test_setup(log_valid, clear_env),
        cmocka_unit_test_setup(log_invalid, clear_env),
        cmocka_unit_test_setup(subdevices_values, clear_env),
        cmocka_unit_test_setup(trace_valid, clear_env),
        cmocka_unit_test_setup(trace_invalid, clear_env),
        cmocka_unit_test_setup(fuse_values, clear_env),
        cmocka_unit_test_setup(all_valid_together, clear_env),
        cmocka_unit_test_setup(first_bad_variable_is_reported, clear_env),
        cmocka_unit_test_setup(bad_config_fields, clear_env),
        cmocka_unit_test_setup(valid_environment_reaches_context, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
