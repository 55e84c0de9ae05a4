/* tools/train/progress.c: the progress line (window statistics, ETA, TTY redraws and periodic
 * lines) and the loss watchdog. */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void otu_progress_init(otu_progress *p, FILE *out, otu_progress_mode mode, uint64_t total,
                       const char *unit, double interval_s)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    if (mode == OTU_PROGRESS_AUTO)
        mode = out && isatty(fileno(out)) ? OTU_PROGRESS_TTY : OTU_PROGRESS_LINES;
    if (!out)
        mode = OTU_PROGRESS_OFF;
    p->mode = mode;
    p->total = total;
    p->unit = unit ? unit : "samples";
    p->interval_s = interval_s > 0 ? interval_s : 10.0;
    p->loss = NAN;
    p->last_s = now_s();
}

void otu_progress_start(otu_progress *p) { p->last_s = now_s(); }

void otu_progress_start_at(otu_progress *p, double t) { p->last_s = t; }

double otu_progress_step_ms(const otu_progress *p)
{
    if (p->nwin == 0)
        return 0.0;
    /* Insertion sort of at most 31 values: cheaper than anything cleverer at this size. */
    double v[OTU_PROGRESS_WINDOW];
    int n = p->nwin;
    for (int i = 0; i < n; i++) {
        double x = p->ms[i];
        int j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double otu_progress_rate(const otu_progress *p)
{
    double ms = 0;
    uint64_t items = 0;
    for (int i = 0; i < p->nwin; i++) {
        ms += p->ms[i];
        items += p->items[i];
    }
    return ms > 0 ? (double)items / (ms * 1e-3) : 0.0;
}

double otu_progress_eta_s(const otu_progress *p)
{
    if (p->total == 0 || p->nwin == 0)
        return -1.0;
    uint64_t left = p->total > p->step ? p->total - p->step : 0;
    return (double)left * otu_progress_step_ms(p) * 1e-3;
}

const char *otu_format_hms(double seconds, char *buf, size_t cap)
{
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e15) {
        snprintf(buf, cap, "-:--:--");
        return buf;
    }
    unsigned long long t = (unsigned long long)(seconds + 0.5);
    snprintf(buf, cap, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
    return buf;
}

size_t otu_progress_format(const otu_progress *p, char *buf, size_t cap)
{
    char eta[32], total[32] = "", loss[32] = "";
    if (p->total)
        snprintf(total, sizeof total, "/%llu", (unsigned long long)p->total);
    if (p->step)
        snprintf(loss, sizeof loss, "  loss %.4f", p->loss);
    double ms = otu_progress_step_ms(p);
    int n = snprintf(buf, cap, "step %llu%s%s  %.*f ms/step  %.0f %s/s  ETA %s",
                     (unsigned long long)p->step, total, loss, ms < 10 ? 2 : 1, ms,
                     otu_progress_rate(p), p->unit,
                     otu_format_hms(otu_progress_eta_s(p), eta, sizeof eta));
    return n < 0 ? 0 : (size_t)n;
}

static void draw(otu_progress *p)
{
    char line[256];
    size_t n = otu_progress_format(p, line, sizeof line);
    if (n >= sizeof line)
        n = sizeof line - 1;
    if (p->mode == OTU_PROGRESS_TTY) {
        /* Pad over what a longer previous line left on screen rather than use an ANSI
         * erase: a dumb terminal gets it right too. */
        int pad = p->drawn > n ? (int)(p->drawn - n) : 0;
        fprintf(p->out, "\r%s%*s", line, pad, "");
        p->drawn = n;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->printed = 1;
}

void otu_progress_tick_at(otu_progress *p, double t, uint64_t items, double loss)
{
    double ms = (t - p->last_s) * 1e3;
    p->last_s = t;
    p->ms[p->wpos] = ms > 0 ? ms : 0;
    p->items[p->wpos] = items;
    p->wpos = (p->wpos + 1) % OTU_PROGRESS_WINDOW;
    if (p->nwin < OTU_PROGRESS_WINDOW)
        p->nwin++;
    p->step++;
    p->loss = loss;
    if (p->mode == OTU_PROGRESS_OFF)
        return;
    int last = p->total && p->step >= p->total;
    double every = p->mode == OTU_PROGRESS_TTY ? 0.1 : p->interval_s;
    if (p->step == 1 || last || t - p->last_print_s >= every) {
        draw(p);
        p->last_print_s = t;
    }
}

void otu_progress_tick(otu_progress *p, uint64_t items, double loss)
{
    otu_progress_tick_at(p, now_s(), items, loss);
}

void otu_progress_finish(otu_progress *p)
{
    if (p->mode == OTU_PROGRESS_TTY && p->printed && p->drawn) {
        fputc('\n', p->out);
        fflush(p->out);
        p->drawn = 0;
    }
}

/* ---- watchdog ---------------------------------------------------------------------------- */

void otu_watchdog_init(otu_watchdog *w, int classes, size_t baseline_steps)
{
    memset(w, 0, sizeof *w);
    w->classes = classes;
    w->baseline_steps = baseline_steps ? baseline_steps : 10;
    w->prev_mean = NAN;
}

int otu_watchdog_loss(otu_watchdog *w, double loss, char *err, size_t errlen)
{
    w->step++;
    if (!isfinite(loss))
        return otu__err(OTU_ENONFINITE, err, errlen,
                        "step %llu: loss is %s (diverged: lower the learning rate)",
                        (unsigned long long)w->step,
                        isnan(loss) ? "nan"
                        : loss > 0  ? "inf"
                                    : "-inf");
    if (w->base_n < w->baseline_steps) {
        w->base_sum += loss;
        w->base_n++;
    } else {
        w->epoch_sum += loss;
        w->epoch_n++;
    }
    return OTU_OK;
}

int otu_watchdog_epoch(otu_watchdog *w, char *err, size_t errlen)
{
    w->epoch++;
    size_t n = w->epoch_n;
    double sum = w->epoch_sum;
    w->epoch_sum = 0;
    w->epoch_n = 0;
    if (n == 0 || w->base_n == 0)
        return OTU_OK; /* the epoch was all baseline: nothing to compare yet */
    double mean = sum / (double)n, base = w->base_sum / (double)w->base_n;
    /* a loss far above where it started (and above chance): diverging, if not yet to NaN */
    double chance = w->classes >= 2 ? log((double)w->classes) : 0;
    if (mean > 3 * fmax(fabs(base), chance) && mean > base)
        return otu__err(OTU_ENONFINITE, err, errlen,
                        "epoch %llu: mean loss %.4g rose from the first %zu steps' %.4g to more "
                        "than 3 times it%s: diverged (lower the learning rate)",
                        (unsigned long long)w->epoch, mean, w->base_n, base,
                        w->classes >= 2 ? " and ln(classes)" : "");
    double prev = w->prev_mean;
    w->prev_mean = mean;
    if (w->classes >= 2 && !isnan(prev) && mean > 1.5 * chance && mean > 0.95 * prev)
        return otu__err(OTU_ENONFINITE, err, errlen,
                        "epoch %llu: mean loss %.4g is above 1.5*ln(%d) = %.4g (worse than a "
                        "uniform guess) and not falling (the epoch before: %.4g): diverged "
                        "(lower the learning rate)",
                        (unsigned long long)w->epoch, mean, w->classes, 1.5 * chance, prev);
    if (fabs(mean - base) > 0.01 * fabs(base))
        return OTU_OK;
    if (w->classes >= 2) {
        double chance = 0.9 * log((double)w->classes);
        if (!(mean > chance))
            return OTU_OK;
        return otu__err(OTU_ESTALL, err, errlen,
                        "epoch %llu: mean loss %.4f has not moved from the first %zu steps' "
                        "%.4f (within 1%%) and is above 0.9*ln(%d) = %.4f: not learning",
                        (unsigned long long)w->epoch, mean, w->base_n, base, w->classes, chance);
    }
    return otu__err(OTU_ESTALL, err, errlen,
                    "epoch %llu: mean loss %.4f has not moved from the first %zu steps' %.4f "
                    "(within 1%%): not learning",
                    (unsigned long long)w->epoch, mean, w->base_n, base);
}
