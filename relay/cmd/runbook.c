/*
 * Runbook proposals over SSH (docs/kb.md "Runbook proposals"): tier 3 sends a script with its
 * metadata header on stdin (runbook propose); it is checked with the catalogue's own parser
 * (proto/runbook_script.h) and kept as a pending proposal, audited runbook.propose. Nothing runs
 * a proposal: an admin accepts it on the relay host (relay/cmd/admin_runbook.c) and only a
 * signed catalogue carries it to machines (docs/catalogue.md). runbook proposals and runbook
 * proposal ID read them.
 */
#include "relay/cmd/runbook.h"
#include "relay/cmd/cmd_int.h"

#include "proto/buf.h"
#include "proto/catalogue.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/runbook_script.h"
#include "proto/runbooks.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/store/catalogue_files.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- shared with the admin's command (relay/cmd/runbook.h) ---------------------------------- */

/* Whether the runbooks installed with the relay hold name (NAME or NAME.json). */
static int shipped(const char *name)
{
    char dir[4096], path[4200];
    struct stat st;
    if (tl_runbooks_default_dir(dir, sizeof dir) != 0)
        return 0;
    if (tl_format(path, sizeof path, "%s/%s", dir, name) == 0 && lstat(path, &st) == 0)
        return 1;
    return tl_format(path, sizeof path, "%s/%s.json", dir, name) == 0 && lstat(path, &st) == 0;
}

/* Whether the catalogue published from data holds runbooks/name; *version says which. */
static int published(const char *data, const char *name, uint64_t *version)
{
    tl_published_catalogue_t current;
    tl_catalogue_t *catalogue = NULL;
    uint8_t *bytes = NULL;
    size_t got = 0;
    char why[512], path[TL_CATALOGUE_PATH_MAX + 16];
    int rc = tl_catalogue_files_published(data, &current);
    if (rc == TL_ENOTFOUND || (rc == 0 && current.version == 0))
        return 0;
    if (rc != 0)
        return rc;
    *version = current.version;
    bytes = malloc(current.size > 0 ? (size_t)current.size : 1);
    rc = bytes != NULL
             ? tl_catalogue_files_read(data, current.version, 0, bytes, (size_t)current.size, &got)
             : TL_ENOMEM;
    if (rc == 0 && got != current.size)
        rc = TL_EIO;
    if (rc == 0)
        rc = tl_catalogue_parse(bytes, got, &catalogue, why, sizeof why);
    snprintf(path, sizeof path, "runbooks/%s", name);
    int found = 0;
    for (size_t i = 0; rc == 0 && i < tl_catalogue_file_count(catalogue); i++)
        found |= strcmp(tl_catalogue_file(catalogue, i)->path, path) == 0;
    tl_catalogue_free(catalogue);
    free(bytes);
    return rc == 0 ? found : rc;
}

int tl__runbook_name_taken(tl_store_t *store, const char *data, const char *name, int64_t except_id,
                           char *where, size_t where_size)
{
    uint64_t version = 0;
    if (shipped(name)) {
        snprintf(where, where_size, "the runbooks installed with the relay");
        return 1;
    }
    int rc = data != NULL ? published(data, name, &version) : 0;
    if (rc == 1)
        snprintf(where, where_size, "the published catalogue (version %" PRIu64 ")", version);
    if (rc != 0)
        return rc;
    rc = tl_store_runbook_proposal_name_taken(store, name, except_id);
    if (rc == 1)
        snprintf(where, where_size,
                 "a proposal pending or accepted (runbook proposals --state all)");
    return rc;
}

const char *tl__runbook_state_shown(const char *state)
{
    return state != NULL && strcmp(state, TL_RUNBOOK_PROPOSED) == 0 ? "pending"
           : state != NULL                                          ? state
                                                                    : "?";
}

int tl__runbook_state_word(const char *word, const char **state)
{
    if (strcmp(word, "pending") == 0)
        *state = TL_RUNBOOK_PROPOSED;
    else if (strcmp(word, "accepted") == 0)
        *state = TL_RUNBOOK_ACCEPTED;
    else if (strcmp(word, "rejected") == 0)
        *state = TL_RUNBOOK_REJECTED;
    else if (strcmp(word, "all") == 0)
        *state = NULL;
    else
        return -1;
    return 0;
}

static json_t *row_json(const tl_runbook_proposal_row_t *row)
{
    char ticket[TL_ID_TEXT];
    if (row->ticket_id > 0)
        tl_id_format(ticket, TL_ID_TICKET, row->ticket_id);
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:o, s:s?}", "id", (json_int_t)row->id, "name",
        row->name, "state", tl__runbook_state_shown(row->state), "sha256", row->sha256,
        "proposed_by", row->proposed_by, "proposed", (json_int_t)row->proposed, "ticket",
        row->ticket_id > 0 ? ticket : NULL, "decided_by", row->decided_by, "decided",
        row->decided > 0 ? json_integer(row->decided) : json_null(), "reason", row->reason);
}

int tl__runbook_proposals_print(FILE *out, const tl_runbook_proposal_rows_t *list, int json)
{
    if (json) {
        json_t *doc = json_array();
        for (size_t i = 0; doc != NULL && i < list->count; i++)
            if (json_array_append_new(doc, row_json(&list->rows[i])) != 0) {
                json_decref(doc);
                doc = NULL;
            }
        int rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        return rc;
    }
    fprintf(out, "%-5s %-28s %-9s %-20s %-10s %s\n", "ID", "RUNBOOK", "STATE", "PROPOSED", "TICKET",
            "BY");
    for (size_t i = 0; i < list->count; i++) {
        const tl_runbook_proposal_row_t *row = &list->rows[i];
        char when[TL_UTC_TEXT], ticket[TL_ID_TEXT] = "-", by[200];
        tl_format_utc(row->proposed, when);
        if (row->ticket_id > 0)
            tl_id_format(ticket, TL_ID_TICKET, row->ticket_id);
        tl_text_clip(by, sizeof by, row->proposed_by, 40, TL_TEXT_LINE);
        fprintf(out, "%-5lld %-28s %-9s %-20s %-10s %s\n", (long long)row->id, row->name,
                tl__runbook_state_shown(row->state), when, ticket, by);
    }
    if (list->count == 0)
        fprintf(out, "(no proposals)\n");
    return 0;
}

int tl__runbook_proposal_print(FILE *out, const tl_runbook_proposal_row_t *row, int json)
{
    if (json) {
        json_t *doc = row_json(row);
        if (doc == NULL || json_object_set_new(doc, "metadata", json_string(row->metadata)) != 0 ||
            json_object_set_new(doc, "script", json_string(row->script)) != 0) {
            json_decref(doc);
            return TL_ENOMEM;
        }
        int rc = tl__cmd_print_json(out, doc);
        json_decref(doc);
        return rc;
    }
    char when[TL_UTC_TEXT], ticket[TL_ID_TEXT], by[200];
    tl_format_utc(row->proposed, when);
    tl_text_clip(by, sizeof by, row->proposed_by, 0, TL_TEXT_LINE);
    fprintf(out, "proposal %lld  runbook %s\n", (long long)row->id, row->name);
    fprintf(out, "  %-9s %s\n", "state:", tl__runbook_state_shown(row->state));
    fprintf(out, "  %-9s %s by %s", "proposed:", when, by);
    if (row->ticket_id > 0)
        fprintf(out, ", from %s", tl_id_format(ticket, TL_ID_TICKET, row->ticket_id));
    fprintf(out, "\n");
    if (row->decided_by != NULL) {
        tl_format_utc(row->decided, when);
        tl_text_clip(by, sizeof by, row->decided_by, 0, TL_TEXT_LINE);
        fprintf(out, "  %-9s %s by %s\n", "decided:", when, by);
    }
    if (row->reason != NULL) {
        char reason[1200];
        tl_text_clip(reason, sizeof reason, row->reason, 0, TL_TEXT_LINE);
        fprintf(out, "  %-9s %s\n", "reason:", reason);
    }
    fprintf(out, "  %-9s %s\n\n-- metadata (%s.json) --\n", "sha256:", row->sha256, row->name);
    char *metadata = tl_text_escape_dup(row->metadata != NULL ? row->metadata : "", TL_TEXT_BODY);
    char *script = tl_text_escape_dup(row->script != NULL ? row->script : "", TL_TEXT_BODY);
    int rc = metadata != NULL && script != NULL ? 0 : TL_ENOMEM;
    if (rc == 0) {
        size_t len = strlen(metadata);
        fprintf(out, "%s%s-- script (%s) --\n", metadata,
                len > 0 && metadata[len - 1] != '\n' ? "\n" : "", row->name);
        len = strlen(script);
        fprintf(out, "%s%s", script, len > 0 && script[len - 1] != '\n' ? "\n" : "");
    }
    free(metadata);
    free(script);
    return rc;
}

/* ---- runbook propose ------------------------------------------------------------------------ */

static int work_propose(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_runbook_script_t script = {0};
    tl_ticket_row_t ticket = {0};
    json_t *details = NULL;
    char *text = NULL, reason[1024] = "", shown[1200], where[256] = "", actor[96];
    char sha256[TL_SHA256_HEX_LEN];
    size_t len = tl_buf_len(cmd->input);
    int64_t id = 0;
    int rc = TL_ENOMEM;
    if ((text = malloc(len + 1)) == NULL)
        goto out;
    if (len > 0)
        memcpy(text, tl_buf_data(cmd->input), len);
    text[len] = '\0';
    rc = tl_runbook_script_parse(text, len, &script, reason, sizeof reason);
    if (rc == TL_EINVAL) {
        tl_text_clip(shown, sizeof shown, reason, 0, TL_TEXT_LINE);
        fprintf(err, "tierline: runbook propose: %s; nothing was stored\n", shown);
        cmd->refused = TL_EXIT_USAGE;
        goto out;
    }
    if (rc != 0)
        goto out;
    if (cmd->ticket.id > 0 && (rc = tl__cmd_load_ticket_row(cmd, ctx, err, &ticket)) != 0)
        goto out;
    rc =
        tl__runbook_name_taken(ctx->store, cmd->ctx->data_dir, script.name, 0, where, sizeof where);
    if (rc == 1) {
        fprintf(err,
                "tierline: runbook propose: %s is a runbook already, in %s; propose it under "
                "another name; nothing was stored\n",
                script.name, where);
        rc = TL_EEXIST;
        goto out;
    }
    if (rc != 0) {
        fprintf(err, "tierline: runbook propose: %s\n", tl_strerror(rc));
        goto out;
    }
    tl_sha256_hex(text, len, sha256);
    tl__cmd_actor(cmd, actor);
    tl_runbook_proposal_row_t row = {
        .name = script.name,
        .metadata = script.metadata,
        .script = text,
        .sha256 = sha256,
        .proposed_by = actor,
        .ticket_id = cmd->ticket.id,
    };
    rc = tl_store_runbook_proposal_add(ctx->store, &row, tl_wall_ms(), &id);
    if (rc == 0) {
        details = json_pack("{s:I, s:s, s:s?, s:I}", "proposal", (json_int_t)id, "sha256", sha256,
                            "ticket", cmd->ticket.id > 0 ? cmd->ticket.text : NULL, "size",
                            (json_int_t)len);
        rc = details != NULL ? tl_worker_audit(ctx, actor, "runbook.propose", script.name, details)
                             : TL_ENOMEM;
    }
    if (rc != 0) {
        fprintf(err,
                "tierline: runbook propose: the proposal cannot be stored: %s; nothing was "
                "stored\n",
                tl_strerror(rc));
        goto out;
    }
    fprintf(out,
            "Proposal %lld stored: runbook %s (sha256 %.16s...), pending.\n"
            "  Nothing runs it yet: an admin reviews it on the relay host (tierline-relay runbook "
            "proposals show %lld)\n"
            "  and accepts or rejects it; once accepted, the next signed catalogue carries it to "
            "the machines.\n",
            (long long)id, script.name, sha256, (long long)id);
out:
    json_decref(details);
    tl_ticket_row_clear(&ticket);
    tl_runbook_script_clear(&script);
    free(text);
    return rc;
}

/* The script arrives on stdin; the proposal is checked and stored at its EOF. */
static void propose_start(struct cmd *cmd)
{
    tl__cmd_read_stdin(cmd, TL_RUNBOOK_SCRIPT_MAX,
                       "runbook propose: the script is larger than 64 KiB (65536 bytes); nothing "
                       "was stored");
}

const struct tl__command tl__cmd_runbook_propose = {
    .name = "runbook propose",
    .usage = "runbook propose [--ticket T] < SCRIPT",
    .summary = "propose a new runbook: its script with the metadata header, on stdin",
    .capability = TL_CAP_RUNBOOK_PROPOSE,
    .args = {.options = (const tl_cli_arg_t[]){{.name = "ticket",
                                                .metavar = "T",
                                                .help = "the ticket the fix came from",
                                                .kind = TL_CLI_CHECK,
                                                .check = tl__kind_ticket,
                                                .out = TL_CLI_AT(struct cmd, ticket),
                                                .problem = "--ticket wants a ticket, as T-42"},
                                               {0}},
             .flags = TL_CLI_IN_ORDER},
    .work = work_propose,
    .start = propose_start,
    .example = "runbook propose --ticket T-12 < reset-spooler\n",
};

/* ---- runbook proposals, runbook proposal ID ------------------------------------------------- */

static int kind_proposal_state(const char *word, void *out, const char **problem)
{
    (void)problem;
    const char *state = NULL;
    if (tl__runbook_state_word(word, &state) != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(const char **)out = state;
    return 0;
}

static int kind_proposal_id(const char *word, void *out, const char **problem)
{
    (void)problem;
    char *end = NULL;
    errno = 0;
    long long id = word[0] >= '1' && word[0] <= '9' ? strtoll(word, &end, 10) : 0;
    if (id <= 0 || errno != 0 || end == NULL || *end != '\0')
        return TL_EINVAL;
    if (out != NULL)
        *(int64_t *)out = id;
    return 0;
}

static int work_proposals(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_runbook_proposal_rows_t list = {0};
    int rc = tl_store_runbook_proposals_read(
        ctx->store, cmd->proposal_state_given ? cmd->proposal_state : TL_RUNBOOK_PROPOSED, &list);
    if (rc == 0)
        rc = tl__runbook_proposals_print(out, &list, cmd->json);
    else
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    tl_runbook_proposal_rows_free(&list);
    return rc;
}

static int prepare_proposals(struct cmd *cmd)
{
    /* --state all stores NULL: "given" tells it from the default (pending). */
    cmd->proposal_state_given = cmd->proposal_state_word != NULL;
    if (cmd->proposal_state_given)
        tl__runbook_state_word(cmd->proposal_state_word, &cmd->proposal_state);
    return 0;
}

const struct tl__command tl__cmd_runbook_proposals = {
    .name = "runbook proposals",
    .usage = "runbook proposals [--state pending|accepted|rejected|all] [--json]",
    .summary = "the runbooks tier 3 proposed, pending (or in another state)",
    .capability = TL_CAP_RUNBOOK_PROPOSALS,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "state",
                      .metavar = "pending|accepted|rejected|all",
                      .help = "which proposals (default: pending)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_proposal_state,
                      .word = TL_CLI_AT(struct cmd, proposal_state_word),
                      .problem = "--state wants pending, accepted, rejected or all"},
                     TL__CMD_JSON("a JSON array of objects: id, name, state, sha256, proposed_by, "
                                  "proposed, ticket (null), decided_by (null), decided (null), "
                                  "reason (null)"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = prepare_proposals,
    .work = work_proposals,
    .example = "runbook proposals --state all\n",
};

static int work_proposal(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_runbook_proposal_row_t row;
    int rc = tl_store_runbook_proposal_read(ctx->store, cmd->proposal_id, &row);
    if (rc == TL_ENOTFOUND) {
        fprintf(err,
                "tierline: no runbook proposal %lld (runbook proposals --state all lists "
                "them)\n",
                (long long)cmd->proposal_id);
        return rc;
    }
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    rc = tl__runbook_proposal_print(out, &row, cmd->json);
    tl_runbook_proposal_row_clear(&row);
    return rc;
}

const struct tl__command tl__cmd_runbook_proposal = {
    .name = "runbook proposal",
    .usage = "runbook proposal ID [--json]",
    .summary = "a runbook proposal: its state, its metadata and its script, escaped",
    .capability = TL_CAP_RUNBOOK_PROPOSALS,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("the proposal as runbook proposals "
                                                            "--json lists it, with metadata and "
                                                            "script"),
                                               {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "ID",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = kind_proposal_id,
                                                    .out = TL_CLI_AT(struct cmd, proposal_id),
                                                    .problem = "a proposal id is a number, as "
                                                               "runbook proposals lists it"},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_proposal,
    .example = "runbook proposal 3\n",
};
