/*
 * `tierline-agent help`: self-help first (docs/kb.md "Self-help"): fresh diagnostics, the
 * articles that fit them and the user's words, shown best first, and the fix of one applied
 * with the user's consent and checked again (agent/selfhelp.h). Solved: a deflection record,
 * no ticket. Otherwise a ticket request with the diagnostics attached and what self-help
 * showed and tried on it. Either is saved in the outbox first (agent/outbox.c), then delivered
 * by the running agent through its control socket or, when none runs, once by this process
 * (docs/architecture.md "help and an unreachable relay"). From a terminal, after a ticket
 * opens, it stays in attended mode (attend.c) to answer the technician.
 */
#include "agent/catalogue.h"
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/diag.h"
#include "agent/outbox.h"
#include "agent/selfhelp.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct help_run {
    int status;
    char ticket[64];
    tl_tunnel_t *tunnel;
    uv_timer_t deadline;
    /* How the control socket answered (help_deliver). */
    int through_agent; /* the running agent took the request */
    int agent_running; /* it did, or it did not answer in time: it keeps the request */
    char why[256];     /* the agent's own words on why the request is queued */
};

static void help_deadline(uv_timer_t *timer)
{
    struct help_run *run = timer->data;
    if (run->status == 0)
        run->status = TL_ETIMEOUT;
    if (run->tunnel != NULL)
        tl_tunnel_stop(run->tunnel);
    run->tunnel = NULL;
    uv_close((uv_handle_t *)timer, NULL);
}

static void help_delivered(tl_tunnel_t *tunnel, const char *request, const char *ticket)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    snprintf(run->ticket, sizeof run->ticket, "%s", ticket);
}

static void help_rejected(tl_tunnel_t *tunnel, const char *request, int error)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    run->status = error;
}

static void help_stopped(tl_tunnel_t *tunnel, int status)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    if (run->status == 0)
        run->status = status;
    run->tunnel = NULL;
    uv_timer_stop(&run->deadline);
    uv_close((uv_handle_t *)&run->deadline, NULL);
    tl_tunnel_stop(tunnel);
}

static const tl_tunnel_events_t help_events = {
    .on_delivered = help_delivered,
    .on_rejected = help_rejected,
    .on_stopped = help_stopped,
};

static void title_from(const char *description, char *title, size_t size)
{
    size_t len = strcspn(description, "\r\n");
    if (len >= size)
        len = size - 1;
    memcpy(title, description, len);
    title[len] = '\0';
    if (strlen(description) > len && len > 3 && len == size - 1)
        memcpy(title + len - 3, "...", 3);
}

/* A fresh diagnostics report of this machine. */
static int collect_diagnostics(const tl_agent_state_t *state, json_t **report)
{
    tl_diag_t *diag = tl_diag_new();
    if (diag == NULL)
        return TL_ENOMEM;
    if (tl_diag_skip_why(diag) != NULL)
        fprintf(stderr, PROGRAM " help: %s\n", tl_diag_skip_why(diag));
    /* The network probe tries the relay this state is enrolled with (docs/diagnostics.md). */
    int rc = tl_diag_set_state_dir(diag, state->dir);
    if (rc == 0)
        rc = tl_diag_run(diag, report);
    tl_diag_free(diag);
    return rc;
}

/* The report as the evidence file holds it. */
static char *diagnostics_text(const json_t *report)
{
    return json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
}

#define HELP_USAGE                                                                                 \
    "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N] [--no-wait] [--kb DIR] "      \
    "[--runbooks DIR] [--fix N | --no-self-help]"

struct help_options {
    const char *dir;
    const char *title_option;
    const char *kb_dir;
    const char *runbooks_dir;
    int no_wait, no_self_help;
    uint64_t wait_ms;
    uint64_t fix; /* --fix N: the match to apply without asking; 0: none */
    char description[8193], title_typed[201];
};

/* The description and options, checked; non-zero: the exit status, the reason printed. */
static int help_parse(int argc, char **argv, struct help_options *help)
{
    const char *wait = NULL, *fix = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &help->dir, NULL},
                                 {"title", &help->title_option, NULL},
                                 {"wait-ms", &wait, NULL},
                                 {"no-wait", NULL, &help->no_wait},
                                 {"kb", &help->kb_dir, NULL},
                                 {"runbooks", &help->runbooks_dir, NULL},
                                 {"fix", &fix, NULL},
                                 {"no-self-help", NULL, &help->no_self_help},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, "help", HELP_USAGE, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1 || positional[0][0] == '\0') {
        fprintf(stderr,
                PROGRAM " help: describe the problem in a few words\nusage: " PROGRAM " %s\n",
                HELP_USAGE);
        return TL_EXIT_USAGE;
    }
    /*
     * Kept as typed, but as text: a byte that is not UTF-8 cannot travel in JSON, so it
     * becomes the four characters \xHH, as it would be shown anyway (docs/technicians.md
     * "Text from others"). Control characters stay; whoever shows the text escapes them.
     */
    const char *title_option = help->title_option;
    char *converted = tl_text_utf8_dup(positional[0], strlen(positional[0]));
    char *converted_title =
        title_option ? tl_text_utf8_dup(title_option, strlen(title_option)) : NULL;
    int too_long = converted == NULL || strlen(converted) >= sizeof help->description ||
                   (title_option != NULL && (converted_title == NULL ||
                                             strlen(converted_title) >= sizeof help->title_typed));
    if (!too_long) {
        snprintf(help->description, sizeof help->description, "%s", converted);
        if (converted_title != NULL)
            snprintf(help->title_typed, sizeof help->title_typed, "%s", converted_title);
    }
    free(converted);
    free(converted_title);
    if (too_long) {
        fprintf(stderr, PROGRAM " help: the description is limited to 8192 bytes and the title "
                                "to 200\n");
        return TL_EXIT_USAGE;
    }
    help->wait_ms = 30000;
    if (wait != NULL && tl_cli_parse_uint(wait, 100, 600000, &help->wait_ms) != 0) {
        fprintf(stderr, PROGRAM " help: --wait-ms wants 100..600000\n");
        return TL_EXIT_USAGE;
    }
    if (fix != NULL && tl_cli_parse_uint(fix, 1, TL_SELFHELP_SHOWN_MAX, &help->fix) != 0) {
        fprintf(stderr, PROGRAM " help: --fix wants the number of a match shown, 1..%d\n",
                TL_SELFHELP_SHOWN_MAX);
        return TL_EXIT_USAGE;
    }
    if (fix != NULL && help->no_self_help) {
        fprintf(stderr, PROGRAM " help: --fix applies a self-help match; --no-self-help shows "
                                "none\n");
        return TL_EXIT_USAGE;
    }
    return 0;
}

/* What self-help did, for the ticket or the deflection. */
struct self_help {
    tl_kb_t *kb;
    tl_runbooks_t *catalogue;
    tl_kb_match_t matches[TL_SELFHELP_SHOWN_MAX];
    size_t found;
    tl_selfhelp_row_t rows[TL_SELFHELP_ROWS_MAX];
    size_t row_count;
    int solved;
    int verdict[TL_SELFHELP_SHOWN_MAX]; /* 0: the user may apply the match's fix (judge_fixes) */
    char note[TL_SELFHELP_SHOWN_MAX][TL_SELFHELP_OUTCOME_MAX + 1]; /* who may apply it, or "" */
    tl_selfhelp_deflection_t deflection;
    char *before;          /* the diagnostics the problem was found on, as text */
    const char *state_dir; /* where an installed catalogue is */
};

static void self_help_release(struct self_help *sh)
{
    tl_kb_free(sh->kb);
    tl_runbooks_free(sh->catalogue);
    free(sh->before);
}

/* A row for each match shown, in the order shown. */
static void rows_shown(struct self_help *sh)
{
    for (size_t i = 0; i < sh->found && sh->row_count < TL_SELFHELP_ROWS_MAX; i++) {
        tl_selfhelp_row_t *row = &sh->rows[sh->row_count++];
        memset(row, 0, sizeof *row);
        snprintf(row->article, sizeof row->article, "%s", sh->matches[i].article->id);
        snprintf(row->title, sizeof row->title, "%s", sh->matches[i].article->title);
    }
}

/* The outcome of match index's row, one line within its limit. */
static void row_outcome(struct self_help *sh, size_t index, const char *outcome)
{
    if (index < sh->row_count)
        tl_text_clip(sh->rows[index].outcome, sizeof sh->rows[index].outcome, outcome, 0,
                     TL_TEXT_LINE);
}

/* Asks on the terminal; 1 for yes. */
static int ask_consent(const char *fix_text)
{
    char answer[32];
    fprintf(stderr, "Apply the suggested fix %s now? [y/N] ", fix_text);
    fflush(stderr);
    if (fgets(answer, sizeof answer, stdin) == NULL)
        return 0;
    answer[strcspn(answer, "\r\n")] = '\0';
    return strcmp(answer, "y") == 0 || strcmp(answer, "Y") == 0 || strcmp(answer, "yes") == 0;
}

/* Applies the fix of match index (its checks passed into run), then checks again. */
static int apply_fix(const tl_agent_state_t *state, struct self_help *sh, size_t index,
                     const tl_selfhelp_fix_t *fix, tl_runbook_run_t *run, json_t **report,
                     int64_t shown_ms)
{
    const tl_article_t *article = sh->matches[index].article;
    char fix_text[512], evidence[512], outcome[TL_SELFHELP_OUTCOME_MAX + 1];
    tl_selfhelp_fix_text(fix, fix_text, sizeof fix_text);
    int64_t applied_ms = tl_wall_ms();
    fprintf(stderr, "Applying %s...\n", fix_text);
    tl_selfhelp_ran_t ran;
    int rc = tl_selfhelp_run_fix(run, stderr, &ran);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " help: the runbook could not be started: %s\n", tl_strerror(rc));
        row_outcome(sh, index, "not applied: the runbook could not be started");
        return 0;
    }
    fprintf(stderr, "Checking again...\n");
    json_t *after = NULL;
    rc = collect_diagnostics(state, &after);
    if (rc != 0)
        return tl__cmd_fail("help", "gathering diagnostics again", rc);
    json_decref(*report);
    *report = after;
    tl_cond_result_t recheck = tl_selfhelp_recheck(article, after, evidence, sizeof evidence);
    int64_t rechecked_ms = tl_wall_ms();
    tl_selfhelp_outcome(&ran, recheck, evidence, outcome);
    if (sh->row_count < TL_SELFHELP_ROWS_MAX) {
        tl_selfhelp_row_t *row = &sh->rows[sh->row_count++];
        memset(row, 0, sizeof *row);
        snprintf(row->article, sizeof row->article, "%s", article->id);
        snprintf(row->title, sizeof row->title, "%s", article->title);
        snprintf(row->outcome, sizeof row->outcome, "%s", outcome);
        row->applied = 1;
        row->fix = *fix;
    }
    char shown[TL_SELFHELP_OUTCOME_MAX * 4 + 8];
    tl_text_clip(shown, sizeof shown, evidence, 0, TL_TEXT_LINE);
    if (recheck == TL_COND_FALSE) {
        sh->solved = 1;
        tl_selfhelp_deflection_t *d = &sh->deflection;
        memset(d, 0, sizeof *d);
        snprintf(d->article, sizeof d->article, "%s", article->id);
        snprintf(d->title, sizeof d->title, "%s", article->title);
        d->fix = *fix;
        d->shown_ms = shown_ms;
        d->applied_ms = applied_ms < shown_ms ? shown_ms : applied_ms;
        d->rechecked_ms = rechecked_ms < d->applied_ms ? d->applied_ms : rechecked_ms;
        snprintf(d->outcome, sizeof d->outcome, "%s", TL_SELFHELP_SOLVED);
        fprintf(stderr, "Solved: the check passes now.\n");
    } else if (recheck == TL_COND_TRUE) {
        fprintf(stderr, "Not solved: the problem is still there (%s).\n", shown);
    } else {
        fprintf(stderr, "Not solved: the check could not be made again (the diagnostics lack "
                        "what it reads).\n");
    }
    return 0;
}

/*
 * Whether self-help may apply each match's fix, from the machine's catalogue (--runbooks, else
 * the installed signed catalogue's, else the shipped one: docs/catalogue.md), judged once
 * before anything is shown. A fix only a technician may apply (privileged, or above tier 1) is
 * said as such when shown, and its row on the ticket says so too.
 */
static void judge_fixes(const struct help_options *help, struct self_help *sh)
{
    char found_dir[4096], message[TL_SELFHELP_OUTCOME_MAX + 1];
    const char *dir = help->runbooks_dir;
    int err = 0;
    if (dir == NULL &&
        (tl_agent_catalogue_dirs(sh->state_dir, found_dir, sizeof found_dir, NULL, 0, NULL) == 0 ||
         tl_runbooks_default_dir(found_dir, sizeof found_dir) == 0))
        dir = found_dir;
    if (dir != NULL)
        sh->catalogue = tl_runbooks_load(dir, &err);
    for (size_t i = 0; i < sh->found; i++) {
        const tl_article_t *article = sh->matches[i].article;
        tl_selfhelp_fix_t fix;
        tl_runbook_run_t run;
        int rc;
        sh->note[i][0] = '\0';
        if (article->runbook[0] == '\0') {
            sh->verdict[i] = TL_ENOTFOUND; /* nothing to apply: the article says what to do */
            continue;
        }
        if (tl_selfhelp_fix_from_article(article, &fix) != 0) {
            rc = TL_EINVAL;
            snprintf(message, sizeof message, "its parameters cannot be used");
        } else {
            rc = tl_selfhelp_check_fix(sh->catalogue, &fix, geteuid() == 0, &run, message,
                                       sizeof message);
            if (rc == 0)
                tl_runbooks_run_release(&run);
        }
        sh->verdict[i] = rc;
        if (rc == 0) {
            snprintf(sh->note[i], sizeof sh->note[i], "you may apply it yourself");
            continue;
        }
        tl_format(sh->note[i], sizeof sh->note[i], "%s: %s",
                  rc == TL_EDENIED ? "needs a technician" : "cannot be applied here", message);
        char outcome[sizeof sh->note[i] + 16];
        tl_format(outcome, sizeof outcome, "not applied: %s", sh->note[i]);
        row_outcome(sh, i, outcome);
    }
}

/* Which match to apply, checked into fix and run; -1 for none (the reason said). */
static int choose_fix(const struct help_options *help, struct self_help *sh, int interactive,
                      tl_selfhelp_fix_t *fix, tl_runbook_run_t *run)
{
    char message[600];
    size_t index = 0;
    if (help->fix > 0) {
        if (help->fix > sh->found) {
            fprintf(stderr, PROGRAM " help: --fix %llu: %zu match%s shown; nothing was run\n",
                    (unsigned long long)help->fix, sh->found, sh->found == 1 ? " was" : "es were");
            return -1;
        }
        index = (size_t)help->fix - 1;
    } else {
        while (index < sh->found && sh->verdict[index] != 0)
            index++;
        if (index == sh->found) {
            for (size_t i = 0; i < sh->found; i++)
                if (sh->verdict[i] == TL_EDENIED) {
                    fprintf(stderr, "The suggested fix needs a technician: the ticket that opens "
                                    "now carries it, for the desk to apply.\n");
                    break;
                }
            return -1; /* nothing the user may apply: the articles say what to do */
        }
        if (!interactive) {
            fprintf(stderr, "Nothing was applied: run again with --fix %zu to apply it.\n",
                    index + 1);
            return -1;
        }
    }
    const tl_article_t *article = sh->matches[index].article;
    int rc = sh->verdict[index];
    if (rc == 0 && (rc = tl_selfhelp_fix_from_article(article, fix)) == 0)
        rc =
            tl_selfhelp_check_fix(sh->catalogue, fix, geteuid() == 0, run, message, sizeof message);
    else if (article->runbook[0] == '\0')
        snprintf(message, sizeof message, "the article suggests no runbook to run");
    else
        snprintf(message, sizeof message, "%s", sh->note[index]);
    if (rc != 0) {
        char shown[sizeof message * 4];
        tl_text_clip(shown, sizeof shown, message, 0, TL_TEXT_LINE);
        fprintf(stderr, PROGRAM " help: cannot apply the fix of match %zu: %s; nothing was run\n",
                index + 1, shown);
        if (sh->note[index][0] == '\0') {
            char outcome[sizeof message + 32];
            snprintf(outcome, sizeof outcome, "not applied: %s", message);
            row_outcome(sh, index, outcome);
        }
        return -1;
    }
    if (help->fix == 0) {
        char fix_text[512];
        tl_selfhelp_fix_text(fix, fix_text, sizeof fix_text);
        if (!ask_consent(fix_text)) {
            fprintf(stderr, "Not applied.\n");
            row_outcome(sh, index, "declined");
            tl_runbooks_run_release(run);
            return -1;
        }
    }
    return (int)index;
}

/*
 * Self-help on report (replaced by the one taken after a fix): matches shown, a fix applied
 * with consent and checked again. 0, or the exit status of a failure to go on with.
 */
static int self_help(const tl_agent_state_t *state, const struct help_options *help,
                     json_t **report, struct self_help *sh, int interactive)
{
    char dir[4096], installed[4096];
    int err = 0;
    const char *kb_dir = help->kb_dir;
    sh->state_dir = state->dir;
    if (kb_dir == NULL &&
        tl_agent_catalogue_dirs(state->dir, NULL, 0, installed, sizeof installed, NULL) == 0)
        kb_dir = installed; /* the installed signed catalogue's articles (docs/catalogue.md) */
    sh->kb = tl_kb_open(kb_dir, dir, sizeof dir, &err);
    if (sh->kb == NULL) {
        if (err == TL_ENOMEM)
            return tl__cmd_fail("help", "reading the knowledge base", err);
        fprintf(stderr, "Self-help: no knowledge base to look in (%s).\n", tl_strerror(err));
        if (help->fix > 0)
            fprintf(stderr, PROGRAM " help: --fix %llu: no match was shown; nothing was run\n",
                    (unsigned long long)help->fix);
        return 0;
    }
    int rc = tl_selfhelp_rank(sh->kb, *report, help->description, sh->matches, &sh->found);
    if (rc != 0)
        return tl__cmd_fail("help", "matching the knowledge base", rc);
    int64_t shown_ms = tl_wall_ms();
    if (sh->found == 0) {
        fprintf(stderr, "Self-help: no known problem matches what you describe.\n");
        if (help->fix > 0)
            fprintf(stderr, PROGRAM " help: --fix %llu: no match was shown; nothing was run\n",
                    (unsigned long long)help->fix);
        return 0;
    }
    fprintf(stderr, "Self-help: %zu known problem%s may be yours, best first:\n", sh->found,
            sh->found == 1 ? "" : "s");
    rows_shown(sh);
    judge_fixes(help, sh);
    tl_buf_t *text = tl_buf_new(64 * 1024);
    for (size_t i = 0; text != NULL && i < sh->found; i++) {
        tl_buf_reset(text);
        if (tl_selfhelp_describe(&sh->matches[i], i + 1, sh->note[i], text) == 0)
            fwrite(tl_buf_data(text), 1, tl_buf_len(text), stderr);
    }
    tl_buf_free(text);
    tl_selfhelp_fix_t fix;
    tl_runbook_run_t run = {0};
    int index = choose_fix(help, sh, interactive, &fix, &run);
    if (index >= 0)
        rc = apply_fix(state, sh, (size_t)index, &fix, &run, report, shown_ms);
    tl_runbooks_run_release(&run);
    if (!sh->solved && rc == 0)
        fprintf(stderr, "Opening a ticket with what was shown%s.\n",
                index >= 0 ? " and tried" : "");
    return rc;
}

/* Saves the ticket request (with the self-help rows) or the deflection, its id in request. */
static int help_save(const tl_agent_state_t *state, const struct help_options *help,
                     const json_t *report, struct self_help *sh, char request[TL_OUTBOX_ID_LEN])
{
    char title[201];
    char *diagnostics = sh->solved ? sh->before : diagnostics_text(report);
    if (diagnostics == NULL)
        return tl__cmd_fail("help", "gathering diagnostics", TL_ENOMEM);
    if (help->title_option != NULL)
        snprintf(title, sizeof title, "%s", help->title_typed);
    else
        title_from(help->description, title, 81);
    char hash[TL_SHA256_HEX_LEN];
    size_t diagnostics_len = strlen(diagnostics);
    json_t *fields = NULL;
    int rc = tl_sha256_hex(diagnostics, diagnostics_len, hash);
    if (rc == 0 && sh->solved) {
        /* The outbox gives the record its request id: a placeholder of that shape passes the
         * encoder's checks and is dropped. */
        snprintf(sh->deflection.request, sizeof sh->deflection.request, "%s",
                 "R-00000000000000000000000000000000");
        rc = tl_selfhelp_deflection_encode(&sh->deflection, &fields);
        if (rc == 0)
            json_object_del(fields, "request");
        if (rc == 0)
            rc = tl_outbox_add_request(state->dir, TL_OUTBOX_DEFLECTION, sh->deflection.title, "",
                                       fields, "diagnostics.json", "diagnostics", diagnostics,
                                       diagnostics_len, request);
    } else if (rc == 0) {
        json_t *rows = NULL;
        rc = sh->row_count > 0 ? tl_selfhelp_rows_encode(sh->rows, sh->row_count, &rows) : 0;
        if (rc == 0 && rows != NULL &&
            ((fields = json_object()) == NULL || json_object_set_new(fields, "selfhelp", rows)))
            rc = TL_ENOMEM;
        else
            rows = NULL;
        json_decref(rows);
        if (rc == 0)
            rc = tl_outbox_add_request(state->dir, TL_OUTBOX_TICKET, title, help->description,
                                       fields, "diagnostics.json", "diagnostics", diagnostics,
                                       diagnostics_len, request);
    }
    json_decref(fields);
    if (!sh->solved)
        free(diagnostics);
    if (rc != 0)
        return tl__cmd_fail("help", "saving the request", rc);
    fprintf(stderr, "Attached diagnostics.json (%zu bytes, sha256 %s) as request %s\n",
            diagnostics_len, hash, request);
    return 0;
}

/* No agent runs: this process connects once and delivers the request, within wait_ms. */
static void help_deliver_once(tl_agent_state_t *state, const char *request, uint64_t wait_ms,
                              struct help_run *run)
{
    int rc;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    tl_tunnel_options_t tunnel_options = {.state = state, .once = 1, .only_request = request};
    /* --wait-ms bounds this path too: a stuck relay leaves the request queued. */
    uv_timer_init(loop, &run->deadline);
    run->deadline.data = run;
    run->tunnel = tl_tunnel_start(loop, &tunnel_options, &help_events, run, &rc);
    if (run->tunnel == NULL) {
        run->status = rc;
        uv_close((uv_handle_t *)&run->deadline, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
    } else {
        if (!uv_is_closing((uv_handle_t *)&run->deadline))
            uv_timer_start(&run->deadline, help_deadline, wait_ms, 0);
        uv_run(loop, UV_RUN_DEFAULT);
    }
}

/* A running agent delivers it; otherwise this process does, once. */
static void help_deliver(tl_agent_state_t *state, const char *socket_path, const char *request,
                         uint64_t wait_ms, struct help_run *run)
{
    json_t *call = json_pack("{s:s, s:s}", "cmd", tl_control_type_name(TL_CONTROL_DELIVER),
                             "request", request);
    json_t *answer = NULL;
    int rc = tl_control_call(socket_path, call, (int)wait_ms, &answer);
    json_decref(call);
    run->through_agent = rc == 0;
    /* An agent that did not answer in time is running all the same: it keeps the request. */
    run->agent_running = rc == 0 || rc == TL_ETIMEOUT;
    if (rc == 0) {
        const char *error = json_string_value(json_object_get(answer, "error"));
        const char *message = json_string_value(json_object_get(answer, "message"));
        if (json_is_true(json_object_get(answer, "ok")))
            snprintf(run->ticket, sizeof run->ticket, "%s",
                     json_string_value(json_object_get(answer, "ticket")));
        else if (json_is_true(json_object_get(answer, "queued")))
            run->status = error != NULL && strcmp(error, "EPIN") == 0 ? TL_EPIN : TL_ECLOSED;
        else
            run->status = TL_EINVAL;
        /* The agent's own words: "the relay is unreachable (connection refused)". */
        if (run->status == TL_ECLOSED && message != NULL)
            snprintf(run->why, sizeof run->why, "%s", message);
        json_decref(answer);
    } else if (rc == -ENOENT || rc == -ECONNREFUSED) {
        help_deliver_once(state, request, wait_ms, run);
    } else {
        run->status = rc;
    }
}

/* The ticket is open: its id on stdout; from a terminal, stay to answer the technician. */
static int help_opened(struct help_run *run, int interactive, const char *socket_path)
{
    char ticket_shown[4 * sizeof run->ticket];
    tl_text_clip(ticket_shown, sizeof ticket_shown, run->ticket, 0, TL_TEXT_LINE);
    printf("%s\n", ticket_shown);
    fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n", ticket_shown);
    fflush(stdout);
    /* From a terminal, stay to answer the technician's requests (docs/consent.md). */
    if (!interactive)
        return TL_EXIT_OK;
    if (!run->through_agent) {
        fprintf(stderr, "No agent is running, so no technician can connect yet; start one "
                        "with: " PROGRAM " run\n");
        return TL_EXIT_OK;
    }
    tl__cmd_attend_loop("help", socket_path, NULL, NULL, 0);
    return TL_EXIT_OK;
}

/* Not delivered: why, and where it waits; from a terminal, stay for its ticket id. */
static int help_not_delivered(const tl_agent_state_t *state, struct help_run *run,
                              const char *request, int interactive, const char *socket_path)
{
    if (run->status == TL_EINVAL) {
        fprintf(stderr, PROGRAM " help: the relay refused the request (kept in %s/%s)\n",
                state->dir, TL_STATE_OUTBOX);
        return TL_EXIT_FAILURE;
    }
    if (run->status == TL_ENOT_ENROLLED)
        fprintf(stderr, PROGRAM " help: the relay does not recognise this agent's key; ask your "
                                "help desk to enroll it again\n");
    else if (run->status == TL_EPIN)
        fprintf(stderr, PROGRAM " help: %s; tell your help desk before trusting it\n",
                tl_tunnel_error_text(TL_EPIN));
    if (run->why[0] == '\0')
        snprintf(run->why, sizeof run->why, "the relay is unreachable (%s)",
                 tl_strerror(run->status));
    fprintf(stderr, "queued: %s\n", run->why);
    if (!run->agent_running) {
        fprintf(stderr,
                "Your request %s is saved in %s/%s\n"
                "and will be sent when the agent reconnects (" PROGRAM " run).\n",
                request, state->dir, TL_STATE_OUTBOX);
        return TL_EXIT_QUEUED;
    }
    fprintf(stderr,
            "Your request %s is saved in %s/%s;\n"
            "the running agent sends it as soon as the relay answers (" PROGRAM
            " status shows its ticket then).\n",
            request, state->dir, TL_STATE_OUTBOX);
    if (!interactive || !run->through_agent)
        return TL_EXIT_QUEUED;
    /* Stay: print the ticket id when it is delivered, and ask the technician's requests. */
    fprintf(stderr,
            "Waiting here for the ticket id (Ctrl-C to leave; the request stays queued).\n");
    tl__cmd_attend_loop("help", socket_path, request, run->ticket, sizeof run->ticket);
    return run->ticket[0] != '\0' ? TL_EXIT_OK : TL_EXIT_QUEUED;
}

/* The deflection is saved: where it went, in the user's words. */
static int help_deflected(const tl_agent_state_t *state, struct help_run *run, const char *request)
{
    char id_shown[4 * sizeof run->ticket];
    tl_text_clip(id_shown, sizeof id_shown, run->ticket, 0, TL_TEXT_LINE);
    if (run->ticket[0] != '\0') {
        fprintf(stderr, "No ticket was needed; your help desk has the record (%s).\n", id_shown);
    } else if (run->status == TL_EINVAL) {
        fprintf(stderr,
                PROGRAM " help: the relay refused the record of what solved it (kept in "
                        "%s/%s)\n",
                state->dir, TL_STATE_OUTBOX);
        return TL_EXIT_FAILURE;
    } else
        fprintf(stderr,
                "No ticket was needed. The record for your help desk (%s) is saved in %s/%s "
                "and will be sent when the relay can be reached.\n",
                request, state->dir, TL_STATE_OUTBOX);
    return TL_EXIT_OK;
}

int tl_agent_cmd_help(int argc, char **argv)
{
    struct help_options help = {0};
    tl_agent_state_t state;
    struct help_run run = {0};
    struct self_help sh = {0};
    json_t *report = NULL;
    char request[TL_OUTBOX_ID_LEN], socket_path[TL_STATE_PATH_MAX];
    int status = help_parse(argc, argv, &help);
    if (status != 0 || (status = tl__cmd_open_state("help", help.dir, 1, &state)) != 0)
        goto out;
    fprintf(stderr, "Gathering diagnostics...\n");
    int rc = collect_diagnostics(&state, &report);
    if (rc != 0) {
        status = tl__cmd_fail("help", "gathering diagnostics", rc);
        goto out;
    }
    int interactive = isatty(STDIN_FILENO);
    if (!help.no_self_help) {
        if ((sh.before = diagnostics_text(report)) == NULL) {
            status = tl__cmd_fail("help", "gathering diagnostics", TL_ENOMEM);
            goto out;
        }
        if ((status = self_help(&state, &help, &report, &sh, interactive)) != 0)
            goto out;
    }
    if ((status = help_save(&state, &help, report, &sh, request)) != 0)
        goto out;
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    help_deliver(&state, socket_path, request, help.wait_ms, &run);
    if (sh.solved)
        status = help_deflected(&state, &run, request);
    else if (run.ticket[0] != '\0')
        status = help_opened(&run, interactive && !help.no_wait, socket_path);
    else
        status =
            help_not_delivered(&state, &run, request, interactive && !help.no_wait, socket_path);
out:
    json_decref(report);
    self_help_release(&sh);
    return status;
}
