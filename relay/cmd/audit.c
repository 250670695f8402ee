/*
 * The audit commands for auditors (docs/technicians.md "The audit log", docs/audit-format.md
 * §18): audit verify, audit checkpoint, audit search and audit prove. They read the log, its
 * checkpoints and the audit key on the storage worker (relay/store/audit_query.h) and change
 * nothing but the log itself: each search and each proof given is an entry of its own
 * ("audit.search", "audit.prove"), staged with the answer, so the answer is withheld when the
 * log cannot be written.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/buf.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/vendor.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_payloads.h"
#include "relay/store/audit_query.h"
#include "relay/store/datadir.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- audit verify --------------------------------------------------------------------------- */

/*
 * The payloads the log names (recordings, evidence items), each read through and checked against
 * the SHA-256 its entry gives, tombstones counted (relay/store/audit_payloads.h): a byte changed
 * in a recording, or a payload removed without a tombstone, is tampering the log's own hashes
 * cannot see. TL_EVERIFY if one is missing or does not match.
 */
static int verify_recordings(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *verdict, FILE *text)
{
    char log_path[4096];
    int rc = tl_datadir_path(cmd->ctx->data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0)
        rc = tl_audit_payloads_verify(log_path, ctx->evidence, verdict, text);
    else
        fprintf(text, "payloads not checked: %s\n", tl_strerror(rc));
    return rc;
}

static int work_verify(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_audit_kept_t kept = {0};
    json_t *verdict = NULL;
    char *text = NULL;
    size_t text_len = 0;
    if (cmd->input != NULL) {
        kept.bytes = (const char *)tl_buf_data(cmd->input);
        kept.len = tl_buf_len(cmd->input);
    }
    /* Every entry the relay wrote is signed first, so whatever the check finds past the
     * checkpoint is a line the relay did not write (docs/audit-format.md §15). If none can be
     * made the check still runs: the entries since the last one are then reported unsigned. */
    if (cmd->ctx->checkpoints != NULL && tl_audit_checkpoints_sign_now(cmd->ctx->checkpoints, ctx))
        tl_log_warn("audit verify: no checkpoint could be made first");
    FILE *words = open_memstream(&text, &text_len);
    if (words == NULL)
        return TL_ENOMEM;
    int rc = tl_audit_self_verify(cmd->ctx->data_dir, cmd->input != NULL ? &kept : NULL, &verdict,
                                  words);
    if ((rc == 0 || rc == TL_EVERIFY) && verdict != NULL) {
        int recordings = verify_recordings(cmd, ctx, verdict, words);
        if (rc == 0 && recordings != 0)
            rc = TL_EVERIFY;
    }
    fclose(words);
    if (rc == TL_EINVAL) {
        /* The kept bytes are no checkpoint note: a usage error; the line says why. */
        fprintf(err, "tierline: --from-checkpoint: %s", text != NULL ? text : "\n");
        cmd->refused = TL_EXIT_USAGE;
    } else if (cmd->json && verdict != NULL) {
        int printed = tl__cmd_print_json(out, verdict);
        if (printed != 0)
            rc = printed;
    } else if (verdict != NULL) {
        fwrite(text, 1, text_len, rc == 0 ? out : err);
    }
    if (rc == TL_EVERIFY)
        cmd->refused = 1; /* tampered: the verdict says where, and the exit status says so */
    free(text);
    json_decref(verdict);
    return rc;
}

static int verify_prepare(struct cmd *cmd)
{
    if (cmd->audit_from != NULL && strcmp(cmd->audit_from, "-") != 0) {
        cmd->usage_error = "--from-checkpoint: the relay cannot read your files; give the note "
                           "on stdin: audit verify --from-checkpoint - < kept.note";
        cmd->usage_error_only = 1;
        return TL_EINVAL;
    }
    return 0;
}

static void verify_start(struct cmd *cmd)
{
    if (cmd->audit_from == NULL) {
        tl__cmd_submit_work(cmd);
        return;
    }
    /* The auditor's checkpoint arrives on stdin; the check starts at its EOF. */
    tl__cmd_read_stdin(cmd, TL_AUDIT_KEPT_MAX,
                       "--from-checkpoint: more than 64 KiB on stdin; give one note, as "
                       "`audit checkpoint` prints it");
}

const struct tl__command tl__cmd_audit_verify = {
    .name = "audit verify",
    .usage = "audit verify [--from-checkpoint -] [--json]",
    .summary = "verify the audit log's chain and checkpoints, and that it extends yours",
    .capability = TL_CAP_AUDIT_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "from-checkpoint",
                      .metavar = "-",
                      .help = "a checkpoint you kept (audit checkpoint's output), on stdin: the "
                              "log must extend it",
                      .word = TL_CLI_AT(struct cmd, audit_from)},
                     TL__CMD_JSON("an object: ok, verdict, entries, last_hash, bad_line, bad_seq, "
                                  "partial_tail_bytes, reason, checkpoints (ok, checked, "
                                  "log_entries, last_size, covered, unsigned, bad), "
                                  "from_checkpoint (null, or ok, "
                                  "size, category, first_entry, last_entry, reason), recordings "
                                  "(ok, checked, pruned, bad: index, seq, action, sha256, "
                                  "reason), payloads (the same, and still_present)"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = verify_prepare,
    .work = work_verify,
    .start = verify_start,
    .example = "audit verify --from-checkpoint - < kept.note\n",
};

/* ---- audit checkpoint ----------------------------------------------------------------------- */

static int work_checkpoint(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    (void)ctx;
    char *note = NULL;
    size_t len = 0;
    json_t *details = NULL;
    int rc =
        tl_audit_query_checkpoint(cmd->ctx->data_dir, &note, &len, cmd->json ? &details : NULL);
    if (rc == -ENOENT) {
        fprintf(err, "tierline: no checkpoint yet: the relay makes one every 1000 entries or 5 "
                     "minutes\n");
        goto out;
    }
    if (rc != 0) {
        fprintf(err, "tierline: the latest checkpoint cannot be read: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        json_object_set_new(details, "note", json_stringn(note, len));
        rc = tl__cmd_print_json(out, details);
    } else {
        fwrite(note, 1, len, out); /* the relay's own signed text: kept byte for byte */
    }
out:
    json_decref(details);
    free(note);
    return rc;
}

const struct tl__command tl__cmd_audit_checkpoint = {
    .name = "audit checkpoint",
    .usage = "audit checkpoint [--json]",
    .summary = "the latest signed checkpoint of the audit log, to keep outside the relay",
    .capability = TL_CAP_AUDIT_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: origin, size, root, "
                                                            "signature, note"),
                                               {0}},
             .flags = TL_CLI_IN_ORDER},
    .work = work_checkpoint,
    .example = "audit checkpoint > kept.note\n",
};

/* ---- audit search --------------------------------------------------------------------------- */

static int kind_since(const char *word, void *out, const char **problem)
{
    (void)problem;
    return tl_vendor_date_parse(word, TL_VENDOR_DAY_START, out);
}

static int kind_until(const char *word, void *out, const char **problem)
{
    (void)problem;
    return tl_vendor_date_parse(word, TL_VENDOR_DAY_END, out);
}

static char pattern_problem[320];

static int search_prepare(struct cmd *cmd)
{
    if (cmd->since_ms != 0 && cmd->until_ms != 0 && cmd->since_ms > cmd->until_ms) {
        cmd->usage_error = "--since must not be after --until";
        return TL_EINVAL;
    }
    if (cmd->audit_pattern != NULL) {
        regex_t pattern;
        /* Checked here for the usage error; compiled again on the worker. The problem lives in
         * a static buffer: the loop is one thread and prints it before the next command. */
        if (tl_audit_pattern_compile(cmd->audit_pattern, &pattern, pattern_problem,
                                     sizeof pattern_problem) != 0) {
            cmd->usage_error = pattern_problem;
            cmd->usage_error_only = 1;
            return TL_EINVAL;
        }
        regfree(&pattern);
    }
    if (cmd->audit_limit == 0)
        cmd->audit_limit = TL_AUDIT_SEARCH_LIMIT_DEFAULT;
    return 0;
}

static void print_cell(FILE *out, const char *text)
{
    char shown[1024];
    tl_text_clip(shown, sizeof shown, text != NULL ? text : "", 0, TL_TEXT_LINE);
    fprintf(out, "  %s", shown[0] != '\0' ? shown : "-");
}

/* One hit as a line: every field from the log is escaped (other parties wrote some of it). */
static void print_hit(FILE *out, json_t *hit)
{
    json_t *details = json_object_get(hit, "details");
    char *details_text =
        details != NULL ? json_dumps(details, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    fprintf(out, "%" JSON_INTEGER_FORMAT "  %" JSON_INTEGER_FORMAT,
            json_integer_value(json_object_get(hit, "index")),
            json_integer_value(json_object_get(hit, "seq")));
    print_cell(out, json_string_value(json_object_get(hit, "time")));
    print_cell(out, json_string_value(json_object_get(hit, "actor")));
    print_cell(out, json_string_value(json_object_get(hit, "action")));
    print_cell(out, json_string_value(json_object_get(hit, "subject")));
    print_cell(out, details_text);
    fputc('\n', out);
    free(details_text);
}

/* The filters given, for the search's own audit entry. */
static json_t *query_json(const struct cmd *cmd)
{
    char since[TL_UTC_TEXT], until[TL_UTC_TEXT];
    const char *names[] = {"ticket", "session", "actor", "device",
                           "action", "command", "since", "until"};
    if (cmd->since_ms != 0)
        tl_format_utc(cmd->since_ms, since);
    if (cmd->until_ms != 0)
        tl_format_utc(cmd->until_ms, until);
    const char *values[] = {cmd->ticket.text[0] != '\0' ? cmd->ticket.text : NULL,
                            cmd->audit_session,
                            cmd->audit_actor,
                            cmd->audit_device,
                            cmd->audit_action,
                            cmd->audit_pattern,
                            cmd->since_ms != 0 ? since : NULL,
                            cmd->until_ms != 0 ? until : NULL};
    json_t *query = json_pack("{s:I}", "limit", (json_int_t)cmd->audit_limit);
    for (size_t i = 0; query != NULL && i < sizeof names / sizeof names[0]; i++)
        if (values[i] != NULL &&
            json_object_set_new(query, names[i], json_string(values[i])) != 0) {
            json_decref(query);
            query = NULL;
        }
    return query;
}

static int work_search(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    char log_path[4096], why[320], actor[96];
    regex_t pattern;
    int compiled = 0;
    json_t *hits = NULL, *details = NULL;
    tl_audit_search_report_t report;
    tl_audit_query_t query = {
        .ticket = cmd->ticket.text[0] != '\0' ? cmd->ticket.text : NULL,
        .session = cmd->audit_session,
        .actor = cmd->audit_actor,
        .device = cmd->audit_device,
        .action = cmd->audit_action,
        .since_ms = cmd->since_ms,
        .until_ms = cmd->until_ms,
        .limit = cmd->audit_limit,
    };
    int rc = tl_datadir_path(cmd->ctx->data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0 && cmd->audit_pattern != NULL) {
        rc = tl_audit_pattern_compile(cmd->audit_pattern, &pattern, why, sizeof why);
        compiled = rc == 0;
        query.command = &pattern;
    }
    if (rc == 0)
        rc = tl_audit_search(log_path, &query, &hits, &report);
    if (rc != 0) {
        fprintf(err, "tierline: the audit log cannot be searched: %s\n", tl_strerror(rc));
        goto out;
    }
    /* The search is on the record before anyone sees its answer. */
    tl__cmd_actor(cmd, actor);
    details = json_pack("{s:o, s:I, s:I}", "query", query_json(cmd), "hits",
                        (json_int_t)report.matched, "scanned", (json_int_t)report.scanned);
    rc = details != NULL ? tl_worker_audit(ctx, actor, "audit.search", query.ticket, details)
                         : TL_ENOMEM;
    if (rc != 0) {
        fprintf(err, "tierline: the search cannot be recorded: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        json_t *doc = json_pack("{s:O, s:I, s:b, s:b, s:I}", "entries", hits, "scanned",
                                (json_int_t)report.scanned, "more", report.more, "scan_capped",
                                report.scan_capped, "unreadable", (json_int_t)report.unreadable);
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        goto out;
    }
    fprintf(out, "INDEX  SEQ  TIME  ACTOR  ACTION  SUBJECT  DETAILS\n");
    size_t i;
    json_t *hit;
    json_array_foreach(hits, i, hit)
        print_hit(out, hit);
    fprintf(out, "%" PRIu64 " entries found in %" PRIu64 " read\n", report.matched, report.scanned);
    if (report.more)
        fprintf(out,
                "more entries match: narrow the search (--since, --until) or raise --limit "
                "(at most %d)\n",
                TL_AUDIT_SEARCH_LIMIT_MAX);
    if (report.scan_capped)
        fprintf(out, "stopped after reading %d entries: narrow the search with --until\n",
                TL_AUDIT_SEARCH_SCAN_MAX);
    if (report.unreadable > 0)
        fprintf(out, "%" PRIu64 " lines are not entries: run audit verify\n", report.unreadable);
out:
    if (compiled)
        regfree(&pattern);
    json_decref(details);
    json_decref(hits);
    return rc;
}

const struct tl__command tl__cmd_audit_search = {
    .name = "audit search",
    .usage = "audit search [--ticket T-N] [--session G] [--actor U] [--device D] [--action A] "
             "[--command REGEX] [--since DATE] [--until DATE] [--limit N] [--json]",
    .summary = "find audit entries, each with its leaf index (for audit prove)",
    .capability = TL_CAP_AUDIT_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "ticket",
                      .metavar = "T-N",
                      .help = "entries about ticket T-N",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_ticket,
                      .out = TL_CLI_AT(struct cmd, ticket),
                      .problem = "--ticket wants a ticket id such as T-42, not '%s'"},
                     {.name = "session",
                      .metavar = "G",
                      .help = "entries of the session with grant G",
                      .min = 1,
                      .max = 64,
                      .word = TL_CLI_AT(struct cmd, audit_session),
                      .problem = "--session wants 1 to 64 bytes"},
                     {.name = "actor",
                      .metavar = "U",
                      .help = "entries by U: an actor as the log has it (tech:alice, relay), "
                              "or an account name",
                      .min = 1,
                      .max = 256,
                      .word = TL_CLI_AT(struct cmd, audit_actor),
                      .problem = "--actor wants 1 to 256 bytes"},
                     {.name = "device",
                      .metavar = "D",
                      .help = "entries about device D",
                      .min = 1,
                      .max = 128,
                      .word = TL_CLI_AT(struct cmd, audit_device),
                      .problem = "--device wants 1 to 128 bytes"},
                     {.name = "action",
                      .metavar = "A",
                      .help = "entries with action A; ending in a dot (ticket.), every action "
                              "that starts so",
                      .min = 1,
                      .max = 64,
                      .word = TL_CLI_AT(struct cmd, audit_action),
                      .problem = "--action wants 1 to 64 bytes"},
                     {.name = "command",
                      .metavar = "REGEX",
                      .help = "entries whose command (argv, runbook) matches REGEX, a POSIX "
                              "extended regular expression of at most 256 bytes, no "
                              "back-references",
                      .word = TL_CLI_AT(struct cmd, audit_pattern)},
                     {.name = "since",
                      .metavar = "DATE",
                      .help = "entries at or after DATE (YYYY-MM-DD, or a UTC time)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_since,
                      .out = TL_CLI_AT(struct cmd, since_ms),
                      .problem = "--since: '%s' is not a date YYYY-MM-DD or a time "
                                 "YYYY-MM-DDTHH:MM:SSZ"},
                     {.name = "until",
                      .metavar = "DATE",
                      .help = "entries at or before DATE (the end of that day for a date)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_until,
                      .out = TL_CLI_AT(struct cmd, until_ms),
                      .problem = "--until: '%s' is not a date YYYY-MM-DD or a time "
                                 "YYYY-MM-DDTHH:MM:SSZ"},
                     {.name = "limit",
                      .metavar = "N",
                      .help = "at most N entries, the first that match (1 to 10000; default 100)",
                      .kind = TL_CLI_UINT,
                      .min = 1,
                      .max = TL_AUDIT_SEARCH_LIMIT_MAX,
                      .out = TL_CLI_AT(struct cmd, audit_limit),
                      .problem = "--limit wants a number from 1 to 10000, not '%s'"},
                     TL__CMD_JSON("an object: entries (the entries as the log holds them, each "
                                  "with index, its leaf index), scanned, more, scan_capped, "
                                  "unreadable"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = search_prepare,
    .work = work_search,
    .example = "audit search --actor alice --command 'rm|shutdown' --since 2026-11-01\n",
};

/* ---- audit prove ---------------------------------------------------------------------------- */

static int kind_entry(const char *word, void *out, const char **problem)
{
    tl__audit_entry_arg_t arg = {0};
    (void)problem;
    if (strncmp(word, "seq:", 4) == 0) {
        arg.by_seq = 1;
        word += 4;
    }
    if (word[0] < '0' || word[0] > '9' || strlen(word) > 19)
        return TL_EINVAL;
    arg.given = 1;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(word, &end, 10);
    if (errno != 0 || *end != '\0' || (arg.by_seq && value == 0))
        return TL_EINVAL;
    arg.which = value;
    if (out != NULL)
        *(tl__audit_entry_arg_t *)out = arg;
    return 0;
}

/* The proof as text: the entry, its leaf hash, the path and the signed checkpoint. */
static void print_proof(FILE *out, json_t *proof)
{
    json_t *index = json_object_get(proof, "index"), *seq = json_object_get(proof, "seq");
    char entry[4096];
    tl_text_clip(entry, sizeof entry, json_string_value(json_object_get(proof, "entry")), 0,
                 TL_TEXT_LINE);
    fprintf(out,
            "entry %" JSON_INTEGER_FORMAT " (seq %" JSON_INTEGER_FORMAT
            ") is leaf %" JSON_INTEGER_FORMAT " of the tree of size %" JSON_INTEGER_FORMAT
            " signed below\n",
            json_integer_value(index), json_integer_value(seq), json_integer_value(index),
            json_integer_value(json_object_get(proof, "tree_size")));
    fprintf(out, "entry       %s\n", entry);
    fprintf(out, "leaf_hash   %s\n", json_string_value(json_object_get(proof, "leaf_hash")));
    fprintf(out, "root        %s\n", json_string_value(json_object_get(proof, "root")));
    size_t i;
    json_t *hash;
    json_array_foreach(json_object_get(proof, "audit_path"), i, hash)
        fprintf(out, "audit_path  %s\n", json_string_value(hash));
    fprintf(out, "checkpoint:\n%s", json_string_value(json_object_get(proof, "checkpoint")));
}

/*
 * audit prove --session G: a proof for every entry of the session (details.grant: its consent,
 * start, end, recording), each as `audit prove ENTRY` gives it, all against the latest
 * checkpoint. One that checkpoint does not cover yet fails the whole answer.
 */
static int work_prove_session(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    char log_path[4096], why[512], actor[96];
    json_t *hits = NULL, *proofs = json_array(), *details = NULL;
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.session = cmd->audit_session, .limit = TL_AUDIT_SEARCH_LIMIT_MAX};
    int rc = proofs != NULL
                 ? tl_datadir_path(cmd->ctx->data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path)
                 : TL_ENOMEM;
    if (rc == 0)
        rc = tl_audit_search(log_path, &query, &hits, &report);
    if (rc != 0) {
        fprintf(err, "tierline: the audit log cannot be searched: %s\n", tl_strerror(rc));
        goto out;
    }
    if (json_array_size(hits) == 0) {
        char shown[400];
        tl_text_clip(shown, sizeof shown, cmd->audit_session, 0, TL_TEXT_LINE);
        fprintf(err, "tierline: no entries of session %s in the audit log\n", shown);
        rc = TL_ENOTFOUND;
        goto out;
    }
    size_t i;
    json_t *hit;
    json_array_foreach(hits, i, hit) {
        json_t *proof = NULL;
        uint64_t index = (uint64_t)json_integer_value(json_object_get(hit, "index"));
        rc = tl_audit_prove(cmd->ctx->data_dir, 0, index, &proof, why, sizeof why);
        if (rc != 0) {
            fprintf(err, "tierline: entry %" PRIu64 " of the session: %s\n", index,
                    why[0] != '\0' ? why : tl_strerror(rc));
            goto out;
        }
        json_array_append_new(proofs, proof);
    }
    tl__cmd_actor(cmd, actor);
    details = json_pack("{s:s, s:s, s:I, s:O}", "entry", "session", "session", cmd->audit_session,
                        "entries", (json_int_t)json_array_size(proofs), "tree_size",
                        json_object_get(json_array_get(proofs, 0), "tree_size"));
    rc = details != NULL ? tl_worker_audit(ctx, actor, "audit.prove", "", details) : TL_ENOMEM;
    if (rc != 0) {
        fprintf(err, "tierline: the proof cannot be recorded: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        json_t *doc = json_pack("{s:s, s:O}", "session", cmd->audit_session, "proofs", proofs);
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        goto out;
    }
    json_t *proof;
    json_array_foreach(proofs, i, proof) {
        fprintf(out, "%s", i > 0 ? "\n" : "");
        print_proof(out, proof);
    }
    fprintf(out,
            "(audit prove --session %s --json gives each proof whole, for "
            "docs/audit_proof.py)\n",
            cmd->audit_session);
out:
    json_decref(details);
    json_decref(hits);
    json_decref(proofs);
    return rc;
}

static int prove_prepare(struct cmd *cmd)
{
    int has_entry = cmd->audit_entry.given;
    if (has_entry == (cmd->audit_session != NULL)) {
        cmd->usage_error = "give ENTRY or --session G, one of them";
        return TL_EINVAL;
    }
    return 0;
}

static int work_prove(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    if (cmd->audit_session != NULL)
        return work_prove_session(cmd, ctx, out, err);
    char why[512], actor[96];
    json_t *proof = NULL, *details = NULL;
    int rc = tl_audit_prove(cmd->ctx->data_dir, cmd->audit_entry.by_seq, cmd->audit_entry.which,
                            &proof, why, sizeof why);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", why[0] != '\0' ? why : tl_strerror(rc));
        goto out;
    }
    json_t *index = json_object_get(proof, "index"), *seq = json_object_get(proof, "seq");
    json_t *size = json_object_get(proof, "tree_size");
    tl__cmd_actor(cmd, actor);
    details = json_pack("{s:s, s:O, s:O, s:O}", "entry", cmd->audit_entry.by_seq ? "seq" : "index",
                        "index", index, "seq", seq, "tree_size", size);
    rc = details != NULL ? tl_worker_audit(ctx, actor, "audit.prove", "", details) : TL_ENOMEM;
    if (rc != 0) {
        fprintf(err, "tierline: the proof cannot be recorded: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        rc = tl__cmd_print_json(out, proof);
        goto out;
    }
    print_proof(out, proof);
    fprintf(out, "(audit prove --json gives the proof whole, for docs/audit_proof.py)\n");
out:
    json_decref(details);
    json_decref(proof);
    return rc;
}

const struct tl__command tl__cmd_audit_prove = {
    .name = "audit prove",
    .usage = "audit prove ENTRY | --session G [--json]",
    .summary = "inclusion proofs of audit entries (one, or a session's) against the latest signed "
               "checkpoint",
    .capability = TL_CAP_AUDIT_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "session",
                      .metavar = "G",
                      .help = "a proof for every entry of the session with grant G: consent, "
                              "start, end, its recording",
                      .min = 1,
                      .max = 64,
                      .word = TL_CLI_AT(struct cmd, audit_session),
                      .problem = "--session wants 1 to 64 bytes"},
                     TL__CMD_JSON("an object: index, seq, entry (the log's line), leaf_hash, "
                                  "tree_size, root, audit_path (base64 each), checkpoint (the "
                                  "signed note); with --session, an object: session, proofs (an "
                                  "array of those)"),
                     {0}},
             .positionals =
                 (const tl_cli_arg_t[]){{.name = "ENTRY",
                                         .kind = TL_CLI_CHECK,
                                         .check = kind_entry,
                                         .flags = TL_CLI_OPTIONAL,
                                         .out = TL_CLI_AT(struct cmd, audit_entry),
                                         .problem = "ENTRY is a leaf index (41) or a seq (seq:42), "
                                                    "not '%s'"},
                                        {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = prove_prepare,
    .work = work_prove,
    .example = "audit prove --session G-3f9a --json > session-proofs.json\n",
};
