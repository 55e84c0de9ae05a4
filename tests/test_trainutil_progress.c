/* tests/test_trainutil_progress.c: tools/train/progress.h: h:mm:ss formatting, the progress
 * line's numbers (median step time, rate, ETA) on a fake clock, when each mode prints, and the
 * loss watchdog's NaN/inf, "has not moved" and divergence rules at and around their
 * thresholds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void has(const char *msg, const char *sub)
{
    if (!strstr(msg, sub))
        fail_msg("\"%s\" lacks \"%s\"", msg, sub);
}

static size_t count(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void hms(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(otu_format_hms(0, b, sizeof b), "0:00:00");
    assert_string_equal(otu_format_hms(59.4, b, sizeof b), "0:00:59");
    assert_string_equal(otu_format_hms(59.6, b, sizeof b), "0:01:00");
    assert_string_equal(otu_format_hms(3725, b, sizeof b), "1:02:05");
    assert_string_equal(otu_format_hms(97389, b, sizeof b), "27:03:09");
    assert_string_equal(otu_format_hms(-1, b, sizeof b), "-:--:--");
    assert_string_equal(otu_format_hms(NAN, b, sizeof b), "-:--:--");
    assert_string_equal(otu_format_hms(INFINITY, b, sizeof b), "-:--:--");
}

static void line_numbers_and_plain_lines(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    otu_progress p;
    otu_progress_init(&p, f, OTU_PROGRESS_AUTO, 100, "samples", 10.0);
    assert_int_equal(p.mode, OTU_PROGRESS_LINES); /* a memstream is no terminal */
    otu_progress_start_at(&p, 1000.0);
    assert_true(otu_progress_eta_s(&p) < 0); /* nothing measured yet */
    /* 20 ms steps of 32 samples */
    otu_progress_tick_at(&p, 1000.020, 32, 2.3);
    fflush(f);
    assert_string_equal(buf,
                        "step 1/100  loss 2.3000  20.0 ms/step  1600 samples/s  ETA 0:00:02\n");
    for (int i = 2; i <= 10; i++)
        otu_progress_tick_at(&p, 1000.0 + 0.020 * i, 32, 2.0);
    /* a 1 s hiccup does not move the median */
    otu_progress_tick_at(&p, 1001.2, 32, 2.0);
    assert_true(fabs(otu_progress_step_ms(&p) - 20.0) < 1e-6);
    assert_true(fabs(otu_progress_eta_s(&p) - 89 * 0.020) < 1e-6);
    /* the rate is items over the window's time, the hiccup included */
    assert_true(fabs(otu_progress_rate(&p) - 11 * 32 / 1.2) < 1e-3);
    fflush(f);
    assert_int_equal(count(buf, '\n'), 1); /* 10 s have not passed */
    for (int i = 12; i <= 99; i++)
        otu_progress_tick_at(&p, 1001.2 + 0.02 * (i - 11), 32, 1.0);
    fflush(f);
    assert_int_equal(count(buf, '\n'), 1);
    otu_progress_tick_at(&p, 1001.2 + 0.02 * 89, 32, 0.5); /* the last step always prints */
    otu_progress_finish(&p);                               /* a no-op in LINES mode */
    fflush(f);
    assert_int_equal(count(buf, '\n'), 2);
    assert_int_equal(count(buf, '\r'), 0);
    has(buf, "\nstep 100/100  loss 0.5000  20.0 ms/step");
    has(buf, "ETA 0:00:00\n");
    /* the window keeps the last 31 steps: the hiccup has left it */
    assert_int_equal(p.nwin, OTU_PROGRESS_WINDOW);
    assert_true(otu_progress_rate(&p) > 1500 && otu_progress_rate(&p) < 1700);
    fclose(f);
    free(buf);

    /* an interval passing prints a line mid-run; no total: no "/n", no ETA */
    buf = NULL;
    f = open_memstream(&buf, &len);
    otu_progress_init(&p, f, OTU_PROGRESS_LINES, 0, "tokens", 0.5);
    otu_progress_start_at(&p, 0);
    for (int i = 1; i <= 10; i++)
        otu_progress_tick_at(&p, 0.2 * i, 1000, 3.0);
    fflush(f);
    /* step 1 at 0.2, then 0.8 (>= 0.5 later), 1.4, 2.0 */
    assert_int_equal(count(buf, '\n'), 4);
    has(buf, "step 1  loss 3.0000  200.0 ms/step  5000 tokens/s  ETA -:--:--\n");
    has(buf, "step 10  loss");
    fclose(f);
    free(buf);
}

static void tty_redraws_in_place(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    otu_progress p;
    otu_progress_init(&p, f, OTU_PROGRESS_TTY, 20, "samples", 0);
    otu_progress_start_at(&p, 0);
    /* 25 ms steps: a redraw on step 1, then whenever 0.1 s have passed, and on the last */
    for (int i = 1; i <= 20; i++)
        otu_progress_tick_at(&p, 0.025 * i, 10, i < 10 ? 123.456789 : 1.0);
    fflush(f);
    assert_int_equal(count(buf, '\n'), 0);
    size_t draws = count(buf, '\r');
    assert_true(draws >= 5 && draws <= 7);
    /* the last line ends the output; a shorter line than the one before is padded over it */
    const char *last = strrchr(buf, '\r');
    has(last, "step 20/20  loss 1.0000");
    assert_true(strlen(last) - 1 >= strlen("step 20/20  loss 123.4568"));
    otu_progress_finish(&p);
    fflush(f);
    assert_int_equal(buf[len - 1], '\n');
    otu_progress_finish(&p); /* once only */
    fflush(f);
    assert_int_equal(count(buf, '\n'), 1);
    fclose(f);
    free(buf);

    /* OFF prints nothing but still measures */
    otu_progress_init(&p, NULL, OTU_PROGRESS_TTY, 10, NULL, 0);
    assert_int_equal(p.mode, OTU_PROGRESS_OFF);
    otu_progress_start_at(&p, 0);
    otu_progress_tick_at(&p, 0.004, 8, 1.0);
    assert_true(fabs(otu_progress_step_ms(&p) - 4.0) < 1e-6);
    char line[128];
    otu_progress_format(&p, line, sizeof line);
    has(line, "4.00 ms/step"); /* two decimals below 10 ms */
    has(line, "samples/s");
    /* the real clock: two ticks take >= 0 ms, and step() restarts it */
    otu_progress_init(&p, NULL, OTU_PROGRESS_OFF, 2, "x", 0);
    otu_progress_start(&p);
    otu_progress_tick(&p, 1, 0.0);
    otu_progress_tick(&p, 1, 0.0);
    assert_true(otu_progress_step_ms(&p) >= 0.0 && otu_progress_step_ms(&p) < 1000.0);
    assert_int_equal(p.step, 2);
}

static void watchdog_nonfinite(void **state)
{
    (void)state;
    otu_watchdog w;
    char err[256];
    otu_watchdog_init(&w, 10, 0);
    assert_int_equal(otu_watchdog_loss(&w, 2.3, err, sizeof err), OTU_OK);
    assert_int_equal(otu_watchdog_loss(&w, 2.1, err, sizeof err), OTU_OK);
    assert_int_equal(otu_watchdog_loss(&w, NAN, err, sizeof err), OTU_ENONFINITE);
    has(err, "step 3: loss is nan");
    has(err, "learning rate");
    assert_int_equal(otu_watchdog_loss(&w, INFINITY, err, sizeof err), OTU_ENONFINITE);
    has(err, "step 4: loss is inf");
    assert_int_equal(otu_watchdog_loss(&w, -INFINITY, err, sizeof err), OTU_ENONFINITE);
    has(err, "loss is -inf");
}

/* Feeds `steps` losses base * (1 + wiggle) with a +-wiggle zigzag; returns the epoch verdict. */
static int epoch(otu_watchdog *w, int steps, double base, double wiggle, char *err)
{
    for (int i = 0; i < steps; i++)
        assert_int_equal(otu_watchdog_loss(w, base * (1 + (i % 2 ? wiggle : -wiggle)), err, 256),
                         0);
    return otu_watchdog_epoch(w, err, 256);
}

static void watchdog_stall_rule(void **state)
{
    (void)state;
    otu_watchdog w;
    char err[256] = "";
    /* stuck at chance for 10 classes (ln 10 = 2.3026): flagged at the first epoch */
    otu_watchdog_init(&w, 10, 10);
    assert_int_equal(epoch(&w, 50, 2.3026, 0.002, err), OTU_ESTALL);
    has(err, "epoch 1: mean loss 2.3026 has not moved from the first 10 steps' 2.3026");
    has(err, "within 1%");
    has(err, "0.9*ln(10) = 2.0723");

    /* learning: the epoch's mean is far below the start */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 50; i++)
        assert_int_equal(otu_watchdog_loss(&w, 2.3 * exp(-0.05 * i), err, sizeof err), 0);
    assert_int_equal(otu_watchdog_epoch(&w, err, sizeof err), OTU_OK);

    /* just beyond 1%: 1.5% lower is movement */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 2.3 * 0.985, 0, err), OTU_OK);
    /* just within: 0.9% lower is not */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 2.3 * 0.991, 0, err), OTU_ESTALL);

    /* flat but good (below 0.9 ln C): a resumed run, not a stuck one */
    otu_watchdog_init(&w, 10, 10);
    assert_int_equal(epoch(&w, 50, 0.1, 0.001, err), OTU_OK);
    assert_int_equal(epoch(&w, 50, 0.1, 0.001, err), OTU_OK);

    /* no classes: the 1% rule alone */
    otu_watchdog_init(&w, 0, 10);
    assert_int_equal(epoch(&w, 30, 0.1, 0.001, err), OTU_ESTALL);
    has(err, "epoch 1: mean loss 0.1000");
    assert_true(strstr(err, "ln(") == NULL);

    /* an epoch shorter than the baseline gives no verdict; the next one does */
    otu_watchdog_init(&w, 4, 10);
    assert_int_equal(epoch(&w, 6, 1.3863, 0, err), OTU_OK);
    assert_int_equal(epoch(&w, 6, 1.3863, 0, err), OTU_ESTALL);
    has(err, "epoch 2:");
    has(err, "0.9*ln(4) = 1.2477");
    /* a stall later in the run after learning first is still a stall vs. the start */
    otu_watchdog_init(&w, 10, 5);
    assert_int_equal(epoch(&w, 20, 2.3, 0, err), OTU_ESTALL);
}

/* diverging without a NaN: far above both the start and chance */
static void watchdog_divergence_rule(void **state)
{
    (void)state;
    otu_watchdog w;
    char err[256] = "";
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 80.0, 0, err), OTU_ENONFINITE);
    has(err, "epoch 1: mean loss 80 rose from the first 10 steps' 2.3");
    has(err, "diverged");
    /* twice the start is noise of a bad epoch, not divergence */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 4.6, 0, err), OTU_OK);
    /* stuck above 1.5 ln(C) (dead units): flagged from the second epoch, not the first */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 4.5, 0, err), OTU_OK);
    assert_int_equal(epoch(&w, 40, 4.5, 0, err), OTU_ENONFINITE);
    has(err, "epoch 2: mean loss 4.5 is above 1.5*ln(10)");
    /* ... unless it falls */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 2.3, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 4.5, 0, err), OTU_OK);
    assert_int_equal(epoch(&w, 40, 4.0, 0, err), OTU_OK);
    /* a loss that starts high and falls is learning */
    otu_watchdog_init(&w, 10, 10);
    for (int i = 0; i < 10; i++)
        otu_watchdog_loss(&w, 50.0, err, sizeof err);
    assert_int_equal(epoch(&w, 40, 20.0, 0, err), OTU_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hms),
        cmocka_unit_test(line_numbers_and_plain_lines),
        cmocka_unit_test(tty_redraws_in_place),
        cmocka_unit_test(watchdog_nonfinite),
        cmocka_unit_test(watchdog_stall_rule),
        cmocka_unit_test(watchdog_divergence_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
