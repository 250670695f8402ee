/*
 * The technicians' evidence commands: evidence (the list) and evidence get,
 * which checks an item whole before its first byte is sent, then streams it
 * a chunk per storage job, paced by the technician's reading
 * (docs/technicians.md, docs/architecture.md "Durability").
 */
#include "relay/cmd/cmd_int.h"

#include "proto/err.h"
#include "proto/roles.h"
#include "relay/cmd/show.h"

#include <stdlib.h>
#include <string.h>

static int work_evidence_list(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    json_t *evidence = json_object_get(t, "evidence");
    if (cmd->json) {
        tl__cmd_print_json(out, evidence);
    } else {
        fprintf(out, "%-64s %-12s %10s  %s\n", "SHA256", "KIND", "BYTES", "NAME");
        size_t i;
        json_t *item;
        json_array_foreach(evidence, i, item)
        {
            char kind[80], name[1100];
            fprintf(out, "%-64s %s %10" JSON_INTEGER_FORMAT "  %s\n", tl__cmd_member(item, "hash"),
                    tl__cmd_padded(kind, sizeof kind, item, "kind", 12),
                    json_integer_value(json_object_get(item, "size")),
                    tl__cmd_shown(name, sizeof name, item, "name"));
        }
        if (json_array_size(evidence) == 0)
            fprintf(out, "(no evidence)\n");
    }
    json_decref(t);
    return 0;
}

const struct tl__command tl__cmd_evidence = {
    .name = "evidence",
    .usage = "evidence T-N [--json]",
    .summary = "list a ticket's evidence",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     TL__CMD_JSON("a JSON array of objects: hash, kind, name, size, created"), {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_evidence_list,
    .example = "evidence T-1\n",
};

/* ---- evidence get ---------------------------------------------------------------------- */

/*
 * Reads the opened item on ahead, a step at a time, before any of it is sent: damaged content
 * is refused whole (nothing reaches the technician) and the refusal is audited as a failed get.
 */
static int verify_evidence(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err)
{
    bool verified = false;
    int rc = tl_evidence_verify_step(cmd->reader, TL_EVIDENCE_VERIFY_STEP, &verified);
    if (rc == 0 && !verified) {
        cmd->verifying = 1;
        return 0;
    }
    cmd->verifying = 0;
    char actor[96];
    tl__cmd_actor(cmd, actor);
    json_t *details = json_pack("{s:s, s:s, s:s}", "ticket", cmd->ticket.text, "sha256", cmd->hash,
                                "outcome", rc == 0 ? "ok" : "failed");
    if (details == NULL)
        return TL_ENOMEM;
    if (rc != 0) {
        const char *why = tl_evidence_reader_problem(cmd->reader);
        json_object_set_new(details, "reason", json_string(why[0] ? why : tl_strerror(rc)));
        fprintf(err,
                "tierline: evidence %s on %s is %s (%s): nothing was sent; an administrator can "
                "list damaged items with `tierline-relay evidence verify`\n",
                cmd->hash, cmd->ticket.text, rc == TL_EDAMAGED ? "damaged" : "unreadable",
                why[0] ? why : tl_strerror(rc));
        tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        cmd->refused = 1;
    }
    int audit_rc = tl_worker_audit(ctx, actor, "evidence.get", cmd->hash, details);
    json_decref(details);
    return audit_rc;
}

/* Finds the item on the ticket by full hash or unique prefix, then opens and checks it. */
static int work_evidence_open(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    if (cmd->reader != NULL)
        return verify_evidence(cmd, ctx, err); /* the next step of a large item */
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    const char *found = NULL;
    int matches = 0;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(t, "evidence"), i, item)
    {
        const char *hash = tl__cmd_member(item, "hash");
        if (strncmp(hash, cmd->hash, strlen(cmd->hash)) == 0) {
            found = hash;
            matches++;
        }
    }
    if (matches != 1) {
        fprintf(err, "tierline: %s on %s\n",
                matches == 0 ? "no such evidence" : "ambiguous evidence id", cmd->ticket.text);
        json_decref(t);
        return matches == 0 ? TL_ENOTFOUND : TL_EINVAL;
    }
    snprintf(cmd->hash, sizeof cmd->hash, "%s", found);
    json_decref(t);
    rc = tl_evidence_open(ctx->evidence, cmd->hash, &cmd->reader);
    if (rc != 0) {
        fprintf(err, "tierline: evidence %s cannot be read: %s\n", cmd->hash, tl_strerror(rc));
        return rc;
    }
    return verify_evidence(cmd, ctx, err);
}

const struct tl__command tl__cmd_evidence_get = {
    .name = "evidence get",
    .usage = "evidence get T-N SHA256-OR-PREFIX",
    .summary = "stream an evidence item to stdout",
    .capability = TL_CAP_EVIDENCE_GET,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON(NULL), {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {.name = "SHA256-OR-PREFIX",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_evidence_id,
                                                    .out = TL_CLI_AT(struct cmd, hash)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_evidence_open,
    .example = "evidence get T-1 fbd45efc > diagnostics.json\n",
};

/* ---- streaming: one chunk per job, paced by the client's reading -------------------------- */

static int run_read_chunk(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    if (cmd->close_reader) {
        tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        return 0;
    }
    cmd->chunk_len = 0;
    int rc = tl_evidence_read(cmd->reader, cmd->chunk, TL_EVIDENCE_CHUNK, &cmd->chunk_len);
    if (rc != 0 || cmd->chunk_len == 0) {
        int close_rc = tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        cmd->reading_done = 1;
        return rc != 0 ? rc : close_rc;
    }
    return 0;
}

static void chunk_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    cmd->job_in_flight = 0;
    if (cmd->exec == NULL) {
        if (cmd->reader != NULL)
            tl__cmd_stream_next(cmd);
        else
            tl__cmd_free(cmd);
        return;
    }
    if (status != 0) {
        /* Changed since it was checked, or unreadable: the technician must not take partial
         * bytes for whole. */
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: evidence %s %s: %s\n", cmd->hash,
                       status == TL_EDAMAGED ? "is damaged" : "could not be sent",
                       tl_strerror(status));
        tl_exec_finish(cmd->exec, 1);
        tl__cmd_free(cmd);
        return;
    }
    if (cmd->chunk_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, cmd->chunk, cmd->chunk_len);
    if (cmd->reading_done) {
        tl_exec_finish(cmd->exec, 0);
        tl__cmd_free(cmd);
        return;
    }
    if (tl_exec_buffered(cmd->exec) < TL_EXEC_HIGH_WATER)
        tl__cmd_stream_next(cmd);
    /* else on_drain continues */
}

void tl__cmd_stream_next(struct cmd *cmd)
{
    if (cmd->job_in_flight)
        return;
    if (cmd->exec == NULL)
        cmd->close_reader = 1; /* the client went away: the worker closes the reader */
    if (cmd->chunk == NULL && !cmd->close_reader &&
        (cmd->chunk = malloc(TL_EVIDENCE_CHUNK)) == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(cmd->exec, 1);
        cmd->exec = NULL;
        cmd->close_reader = 1;
    }
    cmd->job.run = run_read_chunk;
    cmd->job.done = chunk_done;
    cmd->job_in_flight = 1;
    tl_worker_submit(cmd->ctx->worker, &cmd->job);
}
