/*
 * Command and runbook transcripts, and diagnostics reports
 * (relay/sessions/sessions_int.h). run and fix keep the first bytes and the
 * hash and size of all of stdout and stderr, written as a JSON transcript
 * when the session ends; diag streams the agent's report into the evidence
 * store chunk by chunk, the agent's window granted back only once a chunk is
 * on disk. Both are stored through evidence.c.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/mux.h"
#include "proto/text.h"
#include "relay/desk/triage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text ------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
static size_t utf8_sequence(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t low = 0x80, high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            low = 0xa0;
        else if (c == 0xed)
            high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            low = 0x90;
        else if (c == 0xf4)
            high = 0x8f;
    } else
        return 0;
    if (left < need || p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}

/* Bytes as UTF-8 text, each byte that is not part of a valid sequence as U+FFFD. */
static char *utf8_clean(const uint8_t *in, size_t len, size_t *out_len)
{
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(in + i, len - i);
        if (n == 0) {
            memcpy(out + used, "\xef\xbf\xbd", 3);
            used += 3;
            i++;
        } else {
            memcpy(out + used, in + i, n);
            used += n;
            i += n;
        }
    }
    out[used] = '\0';
    *out_len = used;
    return out;
}

/* ---- transcripts ----------------------------------------------------------------------------- */

void tl__capture_free(struct capture *c)
{
    tl_buf_free(c->kept);
    tl_sha256_free(c->hash);
    memset(c, 0, sizeof *c);
}

static size_t kept_len(const struct capture *c)
{
    return c->kept != NULL ? tl_buf_len(c->kept) : 0;
}

void tl__capture(struct capture *c, const uint8_t *data, size_t len)
{
    if (c->hash == NULL && (c->hash = tl_sha256_new()) == NULL)
        return;
    tl_sha256_update(c->hash, data, len);
    c->total += len;
    size_t room = TL_SESSIONS_TRANSCRIPT_KEEP - kept_len(c);
    size_t take = len < room ? len : room;
    if (take == 0)
        return;
    if (c->kept == NULL && (c->kept = tl_buf_new(TL_SESSIONS_TRANSCRIPT_KEEP)) == NULL)
        return;
    tl_buf_put(c->kept, data, take); /* without memory, nothing more is kept */
}

static json_t *capture_json(const struct capture *c)
{
    char hex[TL_SHA256_HEX_LEN] = "";
    if (c->hash != NULL)
        tl_sha256_final(c->hash, hex);
    else
        tl_sha256_hex("", 0, hex);
    size_t text_len = 0;
    char *text = utf8_clean(c->kept != NULL ? tl_buf_data(c->kept) : (const uint8_t *)"",
                            kept_len(c), &text_len);
    if (text == NULL)
        return NULL;
    json_t *out =
        json_pack("{s:s%, s:I, s:s, s:b}", "text", text, text_len, "bytes", (json_int_t)c->total,
                  "sha256", hex, "truncated", c->total > kept_len(c));
    free(text);
    return out;
}

/* What a command ran, for its name: the program's base name and its arguments. */
static void command_words(const struct session *s, char *out, size_t size)
{
    size_t used = 0, i;
    json_t *word;
    out[0] = '\0';
    json_array_foreach(s->argv, i, word) {
        const char *text = json_string_value(word);
        const char *slash = i == 0 ? strrchr(text, '/') : NULL;
        if (tl_format_append(out, size, &used, "%s%s", i > 0 ? " " : "",
                             slash != NULL ? slash + 1 : text) != 0)
            break;
    }
}

/* A fix, for its name: the runbook and its values. */
static void runbook_words(const struct session *s, char *out, size_t size)
{
    size_t used = 0;
    const char *name;
    json_t *value;
    out[0] = '\0';
    tl_format_append(out, size, &used, "%s", s->runbook);
    json_object_foreach(s->runbook_args, name, value) {
        if (tl_format_append(out, size, &used, " %s", json_string_value(value)) != 0)
            break;
    }
}

/* The transcript of run and fix: what ran and what it printed (worker). */
int tl__session_work_transcript(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    char started[32], ended[32];
    tl__sessions_iso_time(s->started_ms, started);
    tl__sessions_iso_time(s->ended_ms, ended);
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "type",
                  s->kind == TL_SESSION_RUN ? "command" : "runbook", "ticket", s->ticket, "device",
                  s->device, "technician", s->tech.name, "role", s->tech.role, "grant", s->grant,
                  "reason", s->reason, "started", started, "started_ms", (json_int_t)s->started_ms,
                  "ended", ended, "ended_ms", (json_int_t)s->ended_ms);
    if (doc == NULL)
        return TL_ENOMEM;
    if (s->argv != NULL)
        json_object_set(doc, "argv", s->argv);
    if (s->runbook[0] != '\0') {
        json_object_set_new(doc, "runbook", json_string(s->runbook));
        json_object_set(doc, "args", s->runbook_args);
    }
    json_object_set_new(doc, "exit_status",
                        s->finished && s->exit_signal[0] == '\0' ? json_integer(s->exit_status)
                                                                 : json_null());
    json_object_set_new(doc, "exit_signal",
                        s->finished && s->exit_signal[0] != '\0' ? json_string(s->exit_signal)
                                                                 : json_null());
    if (s->command_decision[0] != '\0')
        /* Asked command by command: the transcript says who let this one run. */
        json_object_set_new(doc, "consent",
                            json_pack("{s:s, s:s, s:s}", "asked", "each command", "decision",
                                      s->command_decision, "by", s->command_by));
    if (s->end_cause[0] != '\0')
        json_object_set_new(doc, "ended_by", json_string(s->end_cause));
    else if (s->left_by_technician)
        json_object_set_new(doc, "ended_by", json_string("technician"));
    else
        json_object_set_new(doc, "ended_by", json_null());
    /* With a terminal (ssh -t), stdout holds everything the terminal showed, stderr nothing. */
    json_object_set_new(doc, "terminal", json_boolean(s->terminal));
    if (s->signals != NULL)
        json_object_set(doc, "signals", s->signals);
    else
        json_object_set_new(doc, "signals", json_array());
    json_object_set_new(doc, "stdout", capture_json(&s->out));
    json_object_set_new(doc, "stderr", capture_json(&s->err));
    /* UTF-8 as it is, but safe on a terminal (DEL, C1 controls and the like as \uXXXX): Jansson's
     * JSON_ENSURE_ASCII formats every non-ASCII character with snprintf, which made up most of
     * the relay's cost for a transcript of binary output (docs/benchmarks.md, "Profiles"). */
    char *text = tl_text_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        return TL_ENOMEM;
    size_t len = strlen(text);
    int rc = tl_evidence_put(ctx->evidence, text, len, s->evidence_hash);
    free(text);
    if (rc != 0)
        return rc;
    s->evidence_size = len;
    char what[256];
    if (s->kind == TL_SESSION_RUN)
        command_words(s, what, sizeof what);
    else
        runbook_words(s, what, sizeof what);
    const char *kind = s->kind == TL_SESSION_RUN ? "command" : "runbook";
    tl__session_name_evidence(job, kind, what, ".json");
    return tl__session_add_evidence(job, ctx, kind, "evidence.add");
}

/* ---- diagnostics ----------------------------------------------------------------------------- */

static int work_diag_chunk(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    if (s->writer_failed != 0)
        return s->writer_failed;
    int rc = 0;
    if (s->writer == NULL)
        rc = tl_evidence_writer_new(ctx->evidence, &s->writer);
    if (rc == 0)
        rc = tl_evidence_writer_write(s->writer, job->data, job->len);
    if (rc != 0) {
        tl_evidence_writer_abort(s->writer);
        s->writer = NULL;
        s->writer_failed = rc;
    }
    return rc;
}

int tl__session_work_diag_final(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    if (!job->keep || s->writer_failed != 0) {
        /* Nothing is kept; the session's end is still recorded. */
        tl_evidence_writer_abort(s->writer);
        s->writer = NULL;
        return 0;
    }
    int rc = 0;
    if (s->writer == NULL && (rc = tl_evidence_writer_new(ctx->evidence, &s->writer)) != 0)
        return rc;
    rc = tl_evidence_writer_commit(s->writer, s->evidence_hash, &s->evidence_size);
    s->writer = NULL;
    if (rc != 0)
        return rc;
    tl__session_name_evidence(job, "diagnostics", NULL, ".json");
    rc = tl__session_add_evidence(job, ctx, "diagnostics", "evidence.add");
    /* New diagnostics: the ticket is classified again with them (relay/desk/triage.h). Its own
     * step: a classification that fails loses no evidence. */
    int triaged =
        rc == 0 ? tl_triage_diagnostics(ctx, s->ticket_id, s->evidence_hash, tl_wall_ms()) : 0;
    if (triaged != 0)
        tl_log_warn("classification failed ticket=%s reason=%s", s->ticket, tl_err_name(triaged));
    return rc;
}

static void diag_chunk_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        if (s->diag_error == 0)
            s->diag_error = status;
        tl__session_end_channel(s);
        return;
    }
    /* Written: the agent may send the next bytes. */
    if (s->channel_state == CHANNEL_OPEN && s->agent != NULL)
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, job->len);
}

void tl__session_diag_data(struct session *s, const uint8_t *data, size_t len)
{
    if (s->diag_error != 0) {
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        return;
    }
    if (s->diag_bytes + len > TL_SESSIONS_MAX_DIAG) {
        s->diag_error = TL_EFULL;
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        tl__session_end_channel(s);
        return;
    }
    s->diag_bytes += len;
    struct sjob *job = tl__sjob_new(s, work_diag_chunk, diag_chunk_done);
    if (job != NULL && (job->data = malloc(len)) == NULL) {
        tl__sjob_free(job);
        job = NULL;
    }
    if (job == NULL) {
        s->diag_error = TL_ENOMEM;
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        tl__session_end_channel(s);
        return;
    }
    memcpy(job->data, data, len);
    job->len = len;
    tl__sjob_submit(s, job);
}
