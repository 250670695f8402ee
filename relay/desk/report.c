/* The desk's report (relay/desk/report.h, docs/desk.md "Report"). */
#include "relay/desk/report.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/ids.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIERS 5
#define SEVERITIES 4
#define CELLS (TIERS * SEVERITIES)
#define TOTAL CELLS /* the cell that counts everything */

enum { FIRST_RESPONSE_TIME, RESOLUTION_TIME, TIMES };

struct cell {
    size_t opened, resolved, escalated;
    size_t responses, responses_met, responses_in_line;
    int64_t paused_ms[TL_SLA_PAUSES];
    size_t breaches[TL_SLA_CLOCKS];
};

/* A duration of one kind in one cell: sorted, they give medians and 90th percentiles. */
struct sample {
    int cell;
    int kind;
    int64_t ms;
};

struct report {
    struct cell cells[CELLS + 1];
    struct sample *samples;
    size_t sample_count;
};

static const char *const pause_names[TL_SLA_PAUSES] = {
    [TL_SLA_PAUSE_WAITING_USER] = "waiting-user",
    [TL_SLA_PAUSE_WAITING_VENDOR] = "waiting-vendor",
    [TL_SLA_PAUSE_RESOLVED] = "resolved",
};

static int in_period(const tl_report_input_t *in, int64_t when)
{
    return when != 0 && when >= in->since_ms && when < in->until_ms;
}

static int cell_of(int tier, int severity)
{
    return tier * SEVERITIES + (severity - 1);
}

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t why_size, const char *fmt,
                                                      ...)
{
    va_list args;
    va_start(args, fmt);
    tl_format_v(why, why_size, fmt, args);
    va_end(args);
    return TL_EINVAL;
}

static int check_input(const tl_report_input_t *in, char *why, size_t why_size)
{
    if (in->until_ms <= in->since_ms)
        return fail(why, why_size, "the period ends before it starts (%lld ms long)",
                    (long long)(in->until_ms - in->since_ms));
    size_t items = in->ticket_count + in->escalation_count + in->problem_count + in->selfhelp_count;
    if (in->ticket_count > TL_REPORT_ITEMS_MAX || in->escalation_count > TL_REPORT_ITEMS_MAX ||
        in->problem_count > TL_REPORT_ITEMS_MAX || in->selfhelp_count > TL_REPORT_ITEMS_MAX ||
        items > TL_REPORT_ITEMS_MAX)
        return fail(why, why_size, "too many items to report: %lld", (long long)items);
    for (size_t i = 0; i < in->selfhelp_count; i++) {
        const tl_report_selfhelp_t *h = &in->selfhelp[i];
        static const char id_bytes[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
        size_t len = h->article != NULL ? strlen(h->article) : 0;
        size_t rlen = h->runbook != NULL ? strlen(h->runbook) : 0;
        int id_ok = len > 0 && len <= 48 && strspn(h->article, id_bytes) == len &&
                    (h->runbook == NULL ||
                     (rlen > 0 && rlen <= 48 && strspn(h->runbook, id_bytes) == rlen));
        if (!id_ok || (int)h->stage < 0 || h->stage >= TL_REPORT_STAGES)
            return fail(why, why_size,
                        "self-help outcome %zu: an article or runbook name that is not 1..48 of "
                        "a-z 0-9 -, or a stage out of range",
                        i);
    }
    for (size_t i = 0; i < in->ticket_count; i++) {
        const tl_report_ticket_t *t = &in->tickets[i];
        if (t->id <= 0 || t->tier < 0 || t->tier >= TIERS || t->severity < 1 ||
            t->severity > SEVERITIES)
            return fail(why, why_size, "ticket %lld: id, tier or severity out of range",
                        (long long)t->id);
    }
    for (size_t i = 0; i < in->escalation_count; i++) {
        const tl_report_escalation_t *e = &in->escalations[i];
        if (e->from_tier < 0 || e->from_tier >= TIERS || e->to_tier < 0 || e->to_tier >= TIERS ||
            e->severity < 1 || e->severity > SEVERITIES)
            return fail(why, why_size, "escalation of ticket %lld: tier or severity out of range",
                        (long long)e->ticket_id);
    }
    for (size_t i = 0; i < in->problem_count; i++)
        if (in->problems[i].id <= 0 || in->problems[i].title == NULL ||
            in->problems[i].state == NULL)
            return fail(why, why_size, "problem %lld: no id, title or state",
                        (long long)in->problems[i].id);
    return 0;
}

static void count(struct report *r, int cell, size_t offset)
{
    *(size_t *)((char *)&r->cells[cell] + offset) += 1;
    *(size_t *)((char *)&r->cells[TOTAL] + offset) += 1;
}

static void add_sample(struct report *r, int cell, int kind, int64_t ms)
{
    r->samples[r->sample_count++] = (struct sample){cell, kind, ms};
    r->samples[r->sample_count++] = (struct sample){TOTAL, kind, ms};
}

static void count_ticket(struct report *r, const tl_report_input_t *in, const tl_report_ticket_t *t)
{
    int cell = cell_of(t->tier, t->severity);
    const tl_sla_clock_t *first = &t->clocks[TL_SLA_FIRST_RESPONSE];
    const tl_sla_clock_t *resolution = &t->clocks[TL_SLA_RESOLUTION];
    if (in_period(in, t->created_ms))
        count(r, cell, offsetof(struct cell, opened));
    if (in_period(in, t->first_response_ms)) {
        count(r, cell, offsetof(struct cell, responses));
        if (first->state == TL_SLA_MET)
            count(r, cell, offsetof(struct cell, responses_met));
        if (t->first_response_ms - t->created_ms <= TL_REPORT_REPLY_LINE_MS)
            count(r, cell, offsetof(struct cell, responses_in_line));
        add_sample(r, cell, FIRST_RESPONSE_TIME, first->elapsed_ms);
    }
    if (in_period(in, t->resolved_ms)) {
        count(r, cell, offsetof(struct cell, resolved));
        add_sample(r, cell, RESOLUTION_TIME, resolution->elapsed_ms);
    }
    /* Paused time of the tickets the period saw to the end: resolved in it, or open after it. */
    int open_after = t->resolved_ms == 0 && t->created_ms < in->until_ms;
    if (in_period(in, t->resolved_ms) || open_after) {
        for (int p = 0; p < TL_SLA_PAUSES; p++) {
            r->cells[cell].paused_ms[p] += resolution->paused_ms[p];
            r->cells[TOTAL].paused_ms[p] += resolution->paused_ms[p];
        }
    }
    for (int c = 0; c < TL_SLA_CLOCKS; c++) {
        if (t->clocks[c].state == TL_SLA_BREACHED && in_period(in, t->clocks[c].due_ms)) {
            r->cells[cell].breaches[c]++;
            r->cells[TOTAL].breaches[c]++;
        }
    }
}

static int sample_order(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    if (x->cell != y->cell)
        return x->cell < y->cell ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->ms < y->ms ? -1 : x->ms > y->ms;
}

/* The value of rank ceil(q/10 * n) (nearest rank) among the n sorted samples of cell and kind,
 * as a JSON integer, or null when there are none. */
static json_t *rank(const struct report *r, int cell, int kind, int tenths)
{
    size_t first = 0, n = 0;
    for (size_t i = 0; i < r->sample_count; i++) {
        if (r->samples[i].cell == cell && r->samples[i].kind == kind) {
            if (n++ == 0)
                first = i;
        }
    }
    if (n == 0)
        return json_null();
    size_t k = (n * (size_t)tenths + 9) / 10; /* 1..n */
    if (k == 0)
        k = 1;
    return json_integer(r->samples[first + k - 1].ms);
}

/* part of whole in percent, to one decimal (rounded half up), or null for no whole. */
static json_t *percent(size_t part, size_t whole)
{
    if (whole == 0)
        return json_null();
    long long tenths = (long long)((part * 2000 + whole) / (whole * 2));
    return json_real((double)tenths / 10.0);
}

static json_t *cell_json(const struct report *r, int cell)
{
    const struct cell *c = &r->cells[cell];
    json_t *o = json_object(), *paused = json_object(), *breaches = json_object();
    if (o == NULL || paused == NULL || breaches == NULL) {
        json_decref(o);
        json_decref(paused);
        json_decref(breaches);
        return NULL;
    }
    if (cell != TOTAL) {
        char severity[4];
        tl_format(severity, sizeof severity, "S%d", cell % SEVERITIES + 1);
        json_object_set_new(o, "tier", json_integer(cell / SEVERITIES));
        json_object_set_new(o, "severity", json_string(severity));
    }
    json_object_set_new(o, "opened", json_integer((json_int_t)c->opened));
    json_object_set_new(o, "resolved", json_integer((json_int_t)c->resolved));
    json_object_set_new(o, "escalated", json_integer((json_int_t)c->escalated));
    json_object_set_new(o, "first_responses", json_integer((json_int_t)c->responses));
    json_object_set_new(o, "first_responses_within_target",
                        json_integer((json_int_t)c->responses_met));
    json_object_set_new(o, "first_responses_within_target_pct",
                        percent(c->responses_met, c->responses));
    json_object_set_new(o, "first_responses_within_6h",
                        json_integer((json_int_t)c->responses_in_line));
    json_object_set_new(o, "first_responses_within_6h_pct",
                        percent(c->responses_in_line, c->responses));
    json_object_set_new(o, "first_response_median_ms", rank(r, cell, FIRST_RESPONSE_TIME, 5));
    json_object_set_new(o, "first_response_p90_ms", rank(r, cell, FIRST_RESPONSE_TIME, 9));
    json_object_set_new(o, "resolution_median_ms", rank(r, cell, RESOLUTION_TIME, 5));
    json_object_set_new(o, "resolution_p90_ms", rank(r, cell, RESOLUTION_TIME, 9));
    for (int p = 0; p < TL_SLA_PAUSES; p++)
        json_object_set_new(paused, pause_names[p], json_integer(c->paused_ms[p]));
    json_object_set_new(o, "paused_ms", paused);
    for (int k = 0; k < TL_SLA_CLOCKS; k++)
        json_object_set_new(breaches, tl_sla_clock_name((tl_sla_clock_kind_t)k),
                            json_integer((json_int_t)c->breaches[k]));
    json_object_set_new(o, "breaches", breaches);
    return o;
}

static int cell_used(const struct cell *c)
{
    int64_t paused = 0;
    size_t breaches = 0;
    for (int p = 0; p < TL_SLA_PAUSES; p++)
        paused |= c->paused_ms[p];
    for (int k = 0; k < TL_SLA_CLOCKS; k++)
        breaches += c->breaches[k];
    return c->opened || c->resolved || c->escalated || c->responses || paused || breaches;
}

static int problem_order(const void *a, const void *b)
{
    const tl_report_problem_t *x = *(const tl_report_problem_t *const *)a;
    const tl_report_problem_t *y = *(const tl_report_problem_t *const *)b;
    if (x->tickets != y->tickets)
        return x->tickets > y->tickets ? -1 : 1;
    if (x->devices != y->devices)
        return x->devices > y->devices ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static json_t *problems_json(const tl_report_input_t *in)
{
    json_t *list = json_array();
    const tl_report_problem_t **order =
        in->problem_count > 0 ? calloc(in->problem_count, sizeof *order) : NULL;
    if (list == NULL || (in->problem_count > 0 && order == NULL)) {
        json_decref(list);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < in->problem_count; i++)
        order[i] = &in->problems[i];
    if (in->problem_count > 1)
        qsort(order, in->problem_count, sizeof *order, problem_order);
    for (size_t i = 0; i < in->problem_count; i++) {
        char id[TL_ID_TEXT];
        json_t *p =
            json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", tl_id_format(id, 'P', order[i]->id),
                      "title", order[i]->title, "state", order[i]->state, "tickets",
                      (json_int_t)order[i]->tickets, "devices", (json_int_t)order[i]->devices);
        if (p == NULL || json_array_append_new(list, p) != 0) {
            json_decref(list);
            free(order);
            return NULL;
        }
    }
    free(order);
    return list;
}

/* ---- the self-help funnel ------------------------------------------------------------------ */

/* A funnel's counts: its stages, and what became of the passed re-checks. */
struct funnel {
    size_t stages[TL_REPORT_STAGES];
    size_t deflected, came_back, watching;
};

static void funnel_add(struct funnel *f, const tl_report_input_t *in, const tl_report_selfhelp_t *h)
{
    f->stages[h->stage]++;
    if (h->stage != TL_REPORT_PASSED)
        return;
    if (h->came_back)
        f->came_back++;
    else if (h->time_ms + TL_REPORT_COME_BACK_MS > in->until_ms)
        f->watching++; /* its 72 hours have not run out by the end of the period */
    else
        f->deflected++;
}

/* Re-checks passed over fixes applied; null when none was applied. */
static json_t *rate_json(size_t applied, size_t passed)
{
    return applied > 0 ? json_real((double)passed / (double)applied) : json_null();
}

/* "73%", or "-" when nothing was applied. */
static void rate_text(long long applied, long long passed, char out[8])
{
    if (applied <= 0)
        snprintf(out, 8, "-");
    else
        snprintf(out, 8, "%lld%%", passed * 100 / applied);
}

static json_t *funnel_json(const struct funnel *f)
{
    json_t *counts =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "suggested",
                  (json_int_t)f->stages[TL_REPORT_SUGGESTED], "applied",
                  (json_int_t)f->stages[TL_REPORT_APPLIED], "recheck_passed",
                  (json_int_t)f->stages[TL_REPORT_PASSED], "recheck_failed",
                  (json_int_t)f->stages[TL_REPORT_FAILED], "deflected", (json_int_t)f->deflected,
                  "came_back", (json_int_t)f->came_back, "watching", (json_int_t)f->watching);
    if (counts != NULL && json_object_set_new(counts, "rate",
                                              rate_json(f->stages[TL_REPORT_APPLIED],
                                                        f->stages[TL_REPORT_PASSED])) != 0) {
        json_decref(counts);
        return NULL;
    }
    return counts;
}

static int by_article(const void *a, const void *b)
{
    const tl_report_selfhelp_t *x = *(const tl_report_selfhelp_t *const *)a;
    const tl_report_selfhelp_t *y = *(const tl_report_selfhelp_t *const *)b;
    return strcmp(x->article, y->article);
}

static int by_runbook(const void *a, const void *b)
{
    const tl_report_selfhelp_t *x = *(const tl_report_selfhelp_t *const *)a;
    const tl_report_selfhelp_t *y = *(const tl_report_selfhelp_t *const *)b;
    return strcmp(x->runbook, y->runbook);
}

/* Each runbook's record as a fix: [{"runbook", "applied", "recheck_passed", "recheck_failed"}],
 * by name; a suggestion is the article's, not the runbook's. */
static json_t *runbooks_json(const tl_report_input_t *in)
{
    size_t n = 0;
    const tl_report_selfhelp_t **order =
        in->selfhelp_count > 0 ? calloc(in->selfhelp_count, sizeof *order) : NULL;
    json_t *list = json_array();
    if (list == NULL || (in->selfhelp_count > 0 && order == NULL))
        goto fail;
    for (size_t i = 0; i < in->selfhelp_count; i++)
        if (in->selfhelp[i].runbook != NULL && in->selfhelp[i].stage != TL_REPORT_SUGGESTED)
            order[n++] = &in->selfhelp[i];
    if (n > 1)
        qsort(order, n, sizeof *order, by_runbook);
    for (size_t i = 0; i < n;) {
        size_t counts[TL_REPORT_STAGES] = {0}, end = i;
        for (; end < n && strcmp(order[end]->runbook, order[i]->runbook) == 0; end++)
            counts[order[end]->stage]++;
        json_t *row = json_pack("{s:s, s:I, s:I, s:I, s:o}", "runbook", order[i]->runbook,
                                "applied", (json_int_t)counts[TL_REPORT_APPLIED], "recheck_passed",
                                (json_int_t)counts[TL_REPORT_PASSED], "recheck_failed",
                                (json_int_t)counts[TL_REPORT_FAILED], "rate",
                                rate_json(counts[TL_REPORT_APPLIED], counts[TL_REPORT_PASSED]));
        if (row == NULL || json_array_append_new(list, row) != 0)
            goto fail;
        i = end;
    }
    free(order);
    return list;
fail:
    free(order);
    json_decref(list);
    return NULL;
}

/* {"total": funnel, "articles": [{"article", funnel...}], "runbooks": [...]}: by name. */
static json_t *selfhelp_json(const tl_report_input_t *in)
{
    size_t n = in->selfhelp_count;
    const tl_report_selfhelp_t **order = n > 0 ? calloc(n, sizeof *order) : NULL;
    json_t *articles = json_array(), *result = NULL, *total_json = NULL;
    struct funnel total;
    memset(&total, 0, sizeof total);
    if (articles == NULL || (n > 0 && order == NULL))
        goto out;
    for (size_t i = 0; i < n; i++)
        order[i] = &in->selfhelp[i];
    if (n > 1)
        qsort(order, n, sizeof *order, by_article);
    for (size_t i = 0; i < n;) {
        struct funnel one;
        memset(&one, 0, sizeof one);
        size_t end = i;
        for (; end < n && strcmp(order[end]->article, order[i]->article) == 0; end++) {
            funnel_add(&one, in, order[end]);
            funnel_add(&total, in, order[end]);
        }
        json_t *row = json_pack("{s:s}", "article", order[i]->article), *counts = funnel_json(&one);
        int failed = row == NULL || counts == NULL || json_object_update(row, counts) != 0;
        json_decref(counts);
        if (failed) {
            json_decref(row);
            goto out;
        }
        if (json_array_append_new(articles, row) != 0)
            goto out;
        i = end;
    }
    json_t *runbooks = runbooks_json(in);
    if ((total_json = funnel_json(&total)) == NULL || runbooks == NULL) {
        json_decref(runbooks);
        goto out;
    }
    result = json_pack("{s:o, s:O, s:o}", "total", total_json, "articles", articles, "runbooks",
                       runbooks);
    total_json = NULL;
out:
    json_decref(total_json);
    json_decref(articles);
    free(order);
    return result;
}

int tl_report_build(const tl_report_input_t *in, json_t **out, char *why, size_t why_size)
{
    *out = NULL;
    int rc = check_input(in, why, why_size);
    if (rc != 0)
        return rc;
    struct report r;
    memset(&r, 0, sizeof r);
    json_t *report = NULL, *rows = NULL;
    rc = TL_ENOMEM;
    if (in->ticket_count > 0 &&
        (r.samples = calloc(in->ticket_count * 4, sizeof *r.samples)) == NULL)
        goto out;
    for (size_t i = 0; i < in->ticket_count; i++)
        count_ticket(&r, in, &in->tickets[i]);
    for (size_t i = 0; i < in->escalation_count; i++) {
        const tl_report_escalation_t *e = &in->escalations[i];
        if (e->to_tier > e->from_tier && in_period(in, e->time_ms))
            count(&r, cell_of(e->from_tier, e->severity), offsetof(struct cell, escalated));
    }
    if (r.sample_count > 1)
        qsort(r.samples, r.sample_count, sizeof *r.samples, sample_order);

    report = json_object();
    rows = json_array();
    if (report == NULL || rows == NULL)
        goto out;
    for (int cell = 0; cell < CELLS; cell++) {
        if (!cell_used(&r.cells[cell]))
            continue;
        json_t *row = cell_json(&r, cell);
        if (row == NULL || json_array_append_new(rows, row) != 0)
            goto out;
    }
    json_t *total = cell_json(&r, TOTAL), *problems = problems_json(in);
    json_t *selfhelp = selfhelp_json(in);
    json_t *period = json_pack("{s:I, s:I}", "since_ms", (json_int_t)in->since_ms, "until_ms",
                               (json_int_t)in->until_ms);
    if (total == NULL || problems == NULL || period == NULL || selfhelp == NULL) {
        json_decref(total);
        json_decref(problems);
        json_decref(period);
        json_decref(selfhelp);
        goto out;
    }
    json_object_set_new(report, "period", period);
    json_object_set_new(report, "rows", rows);
    rows = NULL;
    json_object_set_new(report, "total", total);
    json_object_set_new(report, "problems", problems);
    json_object_set_new(report, "self_help", selfhelp);
    *out = report;
    report = NULL;
    rc = 0;
out:
    json_decref(rows);
    json_decref(report);
    free(r.samples);
    return rc;
}

/* ---- writing it --------------------------------------------------------------------------- */

int tl_report_write_json(const json_t *report, FILE *out)
{
    /* Percentages have one decimal and at most four digits: %.4g writes them as they are. */
    char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
    if (text == NULL)
        return TL_ENOMEM;
    int rc = fputs(text, out) < 0 || fputc('\n', out) == EOF ? TL_EIO : 0;
    free(text);
    return rc;
}

static long long member_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* A duration as "3h05m", "12m", "45s", or "-" for none. */
static void duration(char *out, size_t size, const json_t *ms)
{
    if (!json_is_integer(ms)) {
        tl_format(out, size, "-");
        return;
    }
    long long s = (long long)json_integer_value(ms) / 1000;
    if (s >= 3600)
        tl_format(out, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        tl_format(out, size, "%lldm", s / 60);
    else
        tl_format(out, size, "%llds", s);
}

static void pct(char *out, size_t size, const json_t *value)
{
    if (json_is_number(value))
        tl_format(out, size, "%.1f%%", json_number_value(value));
    else
        tl_format(out, size, "-");
}

static int text_row(FILE *out, const char *label, const json_t *row)
{
    char frm[16], frp[16], rm[16], rp[16], met[16], line[16], pu[16], pv[16];
    const json_t *paused = json_object_get(row, "paused_ms");
    const json_t *breaches = json_object_get(row, "breaches");
    duration(frm, sizeof frm, json_object_get(row, "first_response_median_ms"));
    duration(frp, sizeof frp, json_object_get(row, "first_response_p90_ms"));
    duration(rm, sizeof rm, json_object_get(row, "resolution_median_ms"));
    duration(rp, sizeof rp, json_object_get(row, "resolution_p90_ms"));
    duration(pu, sizeof pu, json_object_get(paused, "waiting-user"));
    duration(pv, sizeof pv, json_object_get(paused, "waiting-vendor"));
    pct(met, sizeof met, json_object_get(row, "first_responses_within_target_pct"));
    pct(line, sizeof line, json_object_get(row, "first_responses_within_6h_pct"));
    long long breached = member_int(breaches, "first_response") +
                         member_int(breaches, "resolution") + member_int(breaches, "vendor");
    return fprintf(out, "%-8s %6lld %8lld %9lld %7s %7s %8s %8s %8s %8s %8s %8s %8lld\n", label,
                   member_int(row, "opened"), member_int(row, "resolved"),
                   member_int(row, "escalated"), met, line, frm, frp, rm, rp, pu, pv, breached) < 0
               ? TL_EIO
               : 0;
}

static void day(char *out, size_t size, const json_t *ms)
{
    time_t t = (time_t)(json_integer_value(ms) / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        tl_format(out, size, "?");
}

static const char *const funnel_columns[] = {"suggested",      "applied",   "recheck_passed",
                                             "recheck_failed", "deflected", "came_back",
                                             "watching"};
#define FUNNEL_COLUMNS (sizeof funnel_columns / sizeof funnel_columns[0])

/* The self-help funnel for a terminal: the whole desk's, then each article's. */
static int write_selfhelp_text(const json_t *selfhelp, FILE *out)
{
    const json_t *total = json_object_get(selfhelp, "total");
    if (fprintf(out,
                "\nSelf-help: %lld suggested, %lld applied, %lld re-checks passed (%lld failed); "
                "%lld deflected, %lld came back within 72 h, %lld within their 72 h\n",
                member_int(total, "suggested"), member_int(total, "applied"),
                member_int(total, "recheck_passed"), member_int(total, "recheck_failed"),
                member_int(total, "deflected"), member_int(total, "came_back"),
                member_int(total, "watching")) < 0)
        return TL_EIO;
    const json_t *articles = json_object_get(selfhelp, "articles");
    if (json_array_size(articles) == 0)
        return 0;
    if (fprintf(out, "%-32s %9s %7s %6s %5s %6s %9s %9s %8s\n", "ARTICLE", "SUGGESTED", "APPLIED",
                "PASSED", "RATE", "FAILED", "DEFLECTED", "CAME-BACK", "WATCHING") < 0)
        return TL_EIO;
    size_t i;
    const json_t *row;
    char rate[8];
    json_array_foreach(articles, i, row) {
        char article[200];
        tl_text_clip(article, sizeof article, json_string_value(json_object_get(row, "article")),
                     32, TL_TEXT_LINE);
        rate_text(member_int(row, "applied"), member_int(row, "recheck_passed"), rate);
        if (fprintf(out, "%-32s %9lld %7lld %6lld %5s %6lld %9lld %9lld %8lld\n", article,
                    member_int(row, "suggested"), member_int(row, "applied"),
                    member_int(row, "recheck_passed"), rate, member_int(row, "recheck_failed"),
                    member_int(row, "deflected"), member_int(row, "came_back"),
                    member_int(row, "watching")) < 0)
            return TL_EIO;
    }
    const json_t *runbooks = json_object_get(selfhelp, "runbooks");
    if (json_array_size(runbooks) == 0)
        return 0;
    if (fprintf(out, "%-32s %7s %6s %5s %6s\n", "RUNBOOK", "APPLIED", "PASSED", "RATE", "FAILED") <
        0)
        return TL_EIO;
    json_array_foreach(runbooks, i, row) {
        rate_text(member_int(row, "applied"), member_int(row, "recheck_passed"), rate);
        if (fprintf(out, "%-32s %7lld %6lld %5s %6lld\n",
                    json_string_value(json_object_get(row, "runbook")), member_int(row, "applied"),
                    member_int(row, "recheck_passed"), rate, member_int(row, "recheck_failed")) < 0)
            return TL_EIO;
    }
    return 0;
}

int tl_report_write_text(const json_t *report, FILE *out)
{
    const json_t *period = json_object_get(report, "period");
    char since[32], until[32];
    day(since, sizeof since, json_object_get(period, "since_ms"));
    day(until, sizeof until, json_object_get(period, "until_ms"));
    if (fprintf(out, "Report from %s to %s\n\n", since, until) < 0 ||
        fprintf(out, "%-8s %6s %8s %9s %7s %7s %8s %8s %8s %8s %8s %8s %8s\n", "TIER/SEV", "OPENED",
                "RESOLVED", "ESCALATED", "FR-MET", "FR<=6H", "FR-MED", "FR-P90", "RES-MED",
                "RES-P90", "P-USER", "P-VENDOR", "BREACHES") < 0)
        return TL_EIO;
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(report, "rows"), i, row) {
        char label[16];
        tl_format(label, sizeof label, "T%lld/%s", member_int(row, "tier"),
                  json_string_value(json_object_get(row, "severity")));
        if (text_row(out, label, row) != 0)
            return TL_EIO;
    }
    if (text_row(out, "all", json_object_get(report, "total")) != 0)
        return TL_EIO;
    const json_t *problems = json_object_get(report, "problems");
    if (json_array_size(problems) == 0) {
        if (fprintf(out, "\nNo known problems.\n") < 0)
            return TL_EIO;
        return write_selfhelp_text(json_object_get(report, "self_help"), out);
    }
    if (fprintf(out, "\nKnown problems by tickets:\n%-8s %7s %7s %-13s %s\n", "PROBLEM", "TICKETS",
                "DEVICES", "STATE", "TITLE") < 0)
        return TL_EIO;
    json_array_foreach(problems, i, row) {
        char title[256];
        tl_text_clip(title, sizeof title, json_string_value(json_object_get(row, "title")), 60,
                     TL_TEXT_LINE);
        if (fprintf(out, "%-8s %7lld %7lld %-13s %s\n",
                    json_string_value(json_object_get(row, "id")), member_int(row, "tickets"),
                    member_int(row, "devices"), json_string_value(json_object_get(row, "state")),
                    title) < 0)
            return TL_EIO;
    }
    return write_selfhelp_text(json_object_get(report, "self_help"), out);
}

/* A CSV field: quoted when it holds a comma, quote or line break; a leading = + - @ is made
 * inert with a quote so a spreadsheet does not take it for a formula. */
static int csv_text(FILE *out, const char *text)
{
    int quote = strpbrk(text, ",\"\r\n") != NULL || strchr("=+-@", text[0]) != NULL;
    if (quote && fputc('"', out) == EOF)
        return TL_EIO;
    if (text[0] != '\0' && strchr("=+-@", text[0]) != NULL && fputc('\'', out) == EOF)
        return TL_EIO;
    for (const char *p = text; *p != '\0'; p++)
        if ((*p == '"' && fputc('"', out) == EOF) || fputc(*p, out) == EOF)
            return TL_EIO;
    return quote && fputc('"', out) == EOF ? TL_EIO : 0;
}

static void csv_value(char *out, size_t size, const json_t *value)
{
    if (json_is_integer(value))
        tl_format(out, size, "%lld", (long long)json_integer_value(value));
    else if (json_is_number(value))
        tl_format(out, size, "%.1f", json_number_value(value));
    else
        out[0] = '\0';
}

static const char *const csv_columns[] = {
    "opened",
    "resolved",
    "escalated",
    "first_responses",
    "first_responses_within_target",
    "first_responses_within_target_pct",
    "first_responses_within_6h",
    "first_responses_within_6h_pct",
    "first_response_median_ms",
    "first_response_p90_ms",
    "resolution_median_ms",
    "resolution_p90_ms",
};

static int csv_row(FILE *out, const char *tier, const char *severity, const json_t *row)
{
    if (fprintf(out, "%s,%s", tier, severity) < 0)
        return TL_EIO;
    char value[32];
    for (size_t c = 0; c < sizeof csv_columns / sizeof csv_columns[0]; c++) {
        csv_value(value, sizeof value, json_object_get(row, csv_columns[c]));
        if (fprintf(out, ",%s", value) < 0)
            return TL_EIO;
    }
    const json_t *paused = json_object_get(row, "paused_ms");
    for (int p = 0; p < TL_SLA_PAUSES; p++)
        if (fprintf(out, ",%lld", member_int(paused, pause_names[p])) < 0)
            return TL_EIO;
    const json_t *breaches = json_object_get(row, "breaches");
    for (int k = 0; k < TL_SLA_CLOCKS; k++)
        if (fprintf(out, ",%lld", member_int(breaches, tl_sla_clock_name(k))) < 0)
            return TL_EIO;
    return fputs("\r\n", out) < 0 ? TL_EIO : 0;
}

int tl_report_write_csv(const json_t *report, FILE *out)
{
    if (fputs("tier,severity", out) < 0)
        return TL_EIO;
    for (size_t c = 0; c < sizeof csv_columns / sizeof csv_columns[0]; c++)
        if (fprintf(out, ",%s", csv_columns[c]) < 0)
            return TL_EIO;
    for (int p = 0; p < TL_SLA_PAUSES; p++)
        if (fprintf(out, ",paused_%s_ms", pause_names[p]) < 0)
            return TL_EIO;
    for (int k = 0; k < TL_SLA_CLOCKS; k++)
        if (fprintf(out, ",breaches_%s", tl_sla_clock_name(k)) < 0)
            return TL_EIO;
    if (fputs("\r\n", out) < 0)
        return TL_EIO;
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(report, "rows"), i, row) {
        char tier[8];
        tl_format(tier, sizeof tier, "%lld", member_int(row, "tier"));
        if (csv_row(out, tier, json_string_value(json_object_get(row, "severity")), row) != 0)
            return TL_EIO;
    }
    if (csv_row(out, "all", "all", json_object_get(report, "total")) != 0)
        return TL_EIO;
    /* The problems follow as a second table after an empty line, with a header of its own. */
    if (fputs("\r\nproblem,state,tickets,devices,title\r\n", out) < 0)
        return TL_EIO;
    json_array_foreach(json_object_get(report, "problems"), i, row) {
        /* A title is another party's text: escaped as on a terminal, then quoted for CSV. */
        char *title =
            tl_text_escape_dup(json_string_value(json_object_get(row, "title")), TL_TEXT_LINE);
        if (title == NULL)
            return TL_ENOMEM;
        int rc = fprintf(out, "%s,%s,%lld,%lld,", json_string_value(json_object_get(row, "id")),
                         json_string_value(json_object_get(row, "state")),
                         member_int(row, "tickets"), member_int(row, "devices")) < 0 ||
                         csv_text(out, title) != 0 || fputs("\r\n", out) < 0
                     ? TL_EIO
                     : 0;
        free(title);
        if (rc != 0)
            return rc;
    }
    /* The self-help funnel follows as a third table: one line per article, then "all". */
    if (fputs("\r\narticle", out) < 0)
        return TL_EIO;
    for (size_t c = 0; c < FUNNEL_COLUMNS; c++)
        if (fprintf(out, ",%s", funnel_columns[c]) < 0)
            return TL_EIO;
    if (fputs("\r\n", out) < 0)
        return TL_EIO;
    const json_t *selfhelp = json_object_get(report, "self_help");
    json_array_foreach(json_object_get(selfhelp, "articles"), i, row) {
        /* An article id is [a-z0-9-] (proto/article.h): nothing to quote or escape. */
        if (fputs(json_string_value(json_object_get(row, "article")), out) < 0)
            return TL_EIO;
        for (size_t c = 0; c < FUNNEL_COLUMNS; c++)
            if (fprintf(out, ",%lld", member_int(row, funnel_columns[c])) < 0)
                return TL_EIO;
        if (fputs("\r\n", out) < 0)
            return TL_EIO;
    }
    if (fputs("all", out) < 0)
        return TL_EIO;
    for (size_t c = 0; c < FUNNEL_COLUMNS; c++)
        if (fprintf(out, ",%lld",
                    member_int(json_object_get(selfhelp, "total"), funnel_columns[c])) < 0)
            return TL_EIO;
    /* And each runbook's record as a fix, a fourth table (names are [a-z0-9-]). */
    if (fputs("\r\n\r\nrunbook,applied,recheck_passed,recheck_failed\r\n", out) < 0)
        return TL_EIO;
    json_array_foreach(json_object_get(selfhelp, "runbooks"), i, row) {
        if (fprintf(out, "%s,%lld,%lld,%lld\r\n",
                    json_string_value(json_object_get(row, "runbook")), member_int(row, "applied"),
                    member_int(row, "recheck_passed"), member_int(row, "recheck_failed")) < 0)
            return TL_EIO;
    }
    return 0;
}
