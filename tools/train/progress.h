/* tools/train/progress.h: what a long run shows while it trains, and the loss watchdog that
 * stops a run that is not learning.
 *
 * Progress line, one per step at most:
 *     step 120/1000  loss 0.4312  12.3 ms/step  5203 samples/s  ETA 0:00:10
 * On a terminal it is redrawn in place with '\r' (at most 10 times a second, and on the last
 * step); into a file or pipe it is a plain line every `interval_s` seconds, on the first step
 * and on the last, so logs stay short and readable. ms/step is the median of the last
 * OTU_PROGRESS_WINDOW steps (a slow first step or a hiccup does not swing it), samples/s (or
 * whatever `unit` says) is the items of those steps over their time, and the ETA is the median
 * step time times the steps left.
 *
 * Watchdog: otu_watchdog_loss flags a loss that is NaN or infinite (OTU_ENONFINITE) at once;
 * otu_watchdog_epoch, called by the trainer at each epoch boundary, flags a loss that has not
 * moved (OTU_ESTALL), defined as: the mean loss over the epoch's steps (those after the first
 * `baseline_steps` of the run) is within 1% of the mean of the run's first `baseline_steps`
 * losses, and, for a classifier of C >= 2 classes, above 0.9 * ln(C): a network stuck at
 * chance (ln C is the loss of a uniform guess) rather than one that started out good (a
 * resumed run) and stays flat; and a loss that diverges without reaching NaN (OTU_ENONFINITE):
 * the epoch's mean above 3 times both the baseline and ln(C), or, from the second epoch on, a
 * classifier's epoch mean above 1.5 ln(C) that has not fallen 5% below the epoch before (worse
 * than a uniform guess and staying there: dead units after a too-large step). The trainer
 * should then stop with exit status 1 and print the message.
 *
 * Both are plain structs the caller owns (no allocation, nothing to free besides finishing the
 * line); one thread uses one. */
#ifndef OTU_PROGRESS_H
#define OTU_PROGRESS_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { OTU_PROGRESS_WINDOW = 31 };

typedef enum otu_progress_mode {
    OTU_PROGRESS_AUTO,  /* TTY when isatty(fileno(out)), else LINES */
    OTU_PROGRESS_TTY,   /* redraw in place with '\r' */
    OTU_PROGRESS_LINES, /* periodic plain lines */
    OTU_PROGRESS_OFF,   /* print nothing (the numbers are still kept) */
} otu_progress_mode;

/* Fields are private; read them through the functions below. */
typedef struct otu_progress {
    FILE *out;
    otu_progress_mode mode; /* resolved: never AUTO */
    uint64_t total, step;
    const char *unit;
    double interval_s;
    double ms[OTU_PROGRESS_WINDOW];
    uint64_t items[OTU_PROGRESS_WINDOW];
    int nwin, wpos;
    double last_s, last_print_s;
    double loss;
    size_t drawn; /* length of the line on screen (TTY) */
    int printed;
} otu_progress;

/* total steps (0 if unknown: no ETA), unit for the rate ("samples", "tokens"; static),
 * interval_s between plain lines (<= 0: 10 s). Starts the clock for the first step. */
void otu_progress_init(otu_progress *p, FILE *out, otu_progress_mode mode, uint64_t total,
                       const char *unit, double interval_s);
/* One step done: `items` samples (or tokens) in it, and its loss (shown as is, "nan" too).
 * Times the step since the previous call (or init, or start) with CLOCK_MONOTONIC and prints
 * as the mode says. */
void otu_progress_tick(otu_progress *p, uint64_t items, double loss);
/* Restarts the clock: the next step is timed from now (after setup that should not count as
 * the first step's time). */
void otu_progress_start(otu_progress *p);
/* The clock-free forms, for tests and callers with their own clock: times are seconds on one
 * monotonic clock, and start_at must come before the first tick_at. */
void otu_progress_start_at(otu_progress *p, double now_s);
void otu_progress_tick_at(otu_progress *p, double now_s, uint64_t items, double loss);
/* Ends a TTY line with '\n' (so what follows starts on its own line); no-op otherwise. */
void otu_progress_finish(otu_progress *p);

/* The progress line without '\r' or '\n' into buf; returns its length (as snprintf). */
size_t otu_progress_format(const otu_progress *p, char *buf, size_t cap);
double otu_progress_step_ms(const otu_progress *p); /* median of the window; 0 before a step */
double otu_progress_rate(const otu_progress *p);    /* items per second over the window */
double otu_progress_eta_s(const otu_progress *p);   /* < 0 when unknown */

/* "h:mm:ss" (hours unbounded: "27:03:09"); "-:--:--" for a negative, NaN or infinite time. */
const char *otu_format_hms(double seconds, char *buf, size_t cap);

/* ---- watchdog ---------------------------------------------------------------------------- */
typedef struct otu_watchdog {
    int classes;
    size_t baseline_steps;
    double base_sum;
    size_t base_n;
    double epoch_sum;
    size_t epoch_n;
    double prev_mean; /* the last judged epoch's mean loss (NaN before one) */
    uint64_t step, epoch;
} otu_watchdog;

/* classes: the classifier's class count (for a GPT, the vocabulary size), or 0 when the loss
 * is not a cross-entropy over classes (then only the 1% rule applies); baseline_steps: how
 * many of the run's first losses make the starting value (0: 10). */
void otu_watchdog_init(otu_watchdog *w, int classes, size_t baseline_steps);
/* Records one step's loss. OTU_ENONFINITE with "step 12: loss is nan (diverged: lower the
 * learning rate)" when it is NaN or infinite. */
int otu_watchdog_loss(otu_watchdog *w, double loss, char *err, size_t errlen);
/* Closes an epoch. OTU_ESTALL with "epoch 1: mean loss 2.3021 has not moved from the first
 * 10 steps' 2.3026 (within 1%) and is above 0.9*ln(10) = 2.0723: not learning" when the rule
 * at the top holds; OTU_OK otherwise, also when the epoch had no steps past the baseline. */
int otu_watchdog_epoch(otu_watchdog *w, char *err, size_t errlen);

#endif
