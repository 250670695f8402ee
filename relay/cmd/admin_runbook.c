/*
 * Runbook proposals, for admins on the relay host (docs/kb.md "Runbook proposals"): list them,
 * show one (its script escaped: text from another party), accept one (checked again with the
 * catalogue's parser, and its name still free) or reject one with a reason. Each decision is
 * committed with its audit entry, runbook.accept or runbook.reject, or not at all. An accepted
 * proposal still runs nowhere: `catalogue sign --runbooks-from-data` puts it into a package
 * signed with the admins' key (relay/cmd/admin_catalogue.c), and only that reaches agents.
 */
#include "relay/cmd/admin_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/runbook_script.h"
#include "proto/text.h"
#include "relay/cmd/runbook.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM
#define ACTOR "admin"

struct runbook_args {
    const char *data, *state, *reason;
    int json, group;
    tl_cli_words_t words; /* [show|accept|reject ID] */
};

static const char *const groups[] = {"proposals", NULL};

enum { VERB_LIST, VERB_SHOW, VERB_ACCEPT, VERB_REJECT };

static int parse_id(const char *word, int64_t *id)
{
    char *end = NULL;
    errno = 0;
    long long value = word[0] >= '1' && word[0] <= '9' ? strtoll(word, &end, 10) : 0;
    if (value <= 0 || errno != 0 || end == NULL || *end != '\0')
        return TL_EINVAL;
    *id = value;
    return 0;
}

static int proposals_list(const struct runbook_args *args)
{
    tl_store_t *store = NULL;
    tl_runbook_proposal_rows_t list = {0};
    const char *state = TL_RUNBOOK_PROPOSED;
    if (args->state != NULL)
        tl__runbook_state_word(args->state, &state);
    int rc = tl__admin_open_store(args->data, &store);
    if (rc == 0)
        rc = tl_store_runbook_proposals_read(store, state, &list);
    if (rc == 0)
        rc = tl__runbook_proposals_print(stdout, &list, args->json);
    tl_runbook_proposal_rows_free(&list);
    tl_store_close(store);
    return rc == 0 ? TL_EXIT_OK : tl_admin_fail("runbook proposals", rc);
}

static int proposal_show(const struct runbook_args *args, int64_t id)
{
    tl_store_t *store = NULL;
    tl_runbook_proposal_row_t row = {0};
    int rc = tl__admin_open_store(args->data, &store);
    if (rc == 0)
        rc = tl_store_runbook_proposal_read(store, id, &row);
    tl_store_close(store);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr,
                PROGRAM " runbook proposals show: no proposal %lld (runbook proposals --state all "
                        "lists them)\n",
                (long long)id);
        return TL_EXIT_FAILURE;
    }
    if (rc == 0)
        rc = tl__runbook_proposal_print(stdout, &row, args->json);
    tl_runbook_proposal_row_clear(&row);
    return rc == 0 ? TL_EXIT_OK : tl_admin_fail("runbook proposals show", rc);
}

/* A decision: what it is, and what the stage found. */
struct decision {
    int64_t id;
    const char *state; /* TL_RUNBOOK_ACCEPTED or _REJECTED */
    const char *reason;
    const char *data;
    char name[64];
    char problem[1200]; /* why an accept was refused, for the message */
};

/* The proposal still reads as its script says, and nothing else took its name since. */
static int still_good(tl_store_t *store, struct decision *decision,
                      const tl_runbook_proposal_row_t *row)
{
    tl_runbook_script_t script = {0};
    char reason[1024] = "", sha256[TL_SHA256_HEX_LEN], where[256] = "";
    size_t len = strlen(row->script);
    int rc = tl_runbook_script_parse(row->script, len, &script, reason, sizeof reason);
    if (rc == TL_EINVAL) {
        snprintf(decision->problem, sizeof decision->problem, "its script no longer reads: %s",
                 reason);
        goto out;
    }
    if (rc != 0)
        goto out;
    tl_sha256_hex(row->script, len, sha256);
    if (strcmp(script.name, row->name) != 0 || strcmp(script.metadata, row->metadata) != 0 ||
        strcmp(sha256, row->sha256) != 0) {
        snprintf(decision->problem, sizeof decision->problem,
                 "its stored script, name, metadata and SHA-256 disagree");
        rc = TL_EINVAL;
        goto out;
    }
    rc = tl__runbook_name_taken(store, decision->data, row->name, row->id, where, sizeof where);
    if (rc == 1) {
        snprintf(decision->problem, sizeof decision->problem,
                 "%s is a runbook already, in %s; reject it", row->name, where);
        rc = TL_EINVAL;
    }
out:
    tl_runbook_script_clear(&script);
    return rc;
}

static int stage_decision(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    struct decision *decision = arg;
    tl_runbook_proposal_row_t row = {0};
    json_t *details = NULL;
    int accept = strcmp(decision->state, TL_RUNBOOK_ACCEPTED) == 0;
    int rc = tl_store_runbook_proposal_read(store, decision->id, &row);
    if (rc != 0)
        goto out;
    snprintf(decision->name, sizeof decision->name, "%s", row.name);
    if (strcmp(row.state, TL_RUNBOOK_PROPOSED) != 0) {
        snprintf(decision->problem, sizeof decision->problem, "%s", row.state);
        rc = TL_ESTATE;
        goto out;
    }
    if (accept && (rc = still_good(store, decision, &row)) != 0)
        goto out;
    rc = tl_store_runbook_proposal_decide(store, decision->id, decision->state, ACTOR,
                                          decision->reason, tl_wall_ms());
    char ticket[32] = "";
    if (row.ticket_id > 0)
        snprintf(ticket, sizeof ticket, "T-%lld", (long long)row.ticket_id);
    if (rc == 0)
        details = json_pack("{s:I, s:s, s:s, s:s?, s:s?}", "proposal", (json_int_t)row.id, "sha256",
                            row.sha256, "proposed_by", row.proposed_by, "ticket",
                            ticket[0] != '\0' ? ticket : NULL, "reason", decision->reason);
    if (rc == 0 && details == NULL)
        rc = TL_ENOMEM;
    tl_audit_entry_t entry = {ACTOR, accept ? "runbook.accept" : "runbook.reject", row.name,
                              details, 0};
    if (rc == 0)
        rc = tl_audit_chain_stage(chain, &entry, NULL);
out:
    json_decref(details);
    tl_runbook_proposal_row_clear(&row);
    return rc;
}

static int proposal_decide(const struct runbook_args *args, int verb, int64_t id)
{
    const char *what =
        verb == VERB_ACCEPT ? "runbook proposals accept" : "runbook proposals reject";
    char path[4096], problem[768] = "";
    tl_store_t *store = NULL;
    struct decision decision = {
        .id = id,
        .state = verb == VERB_ACCEPT ? TL_RUNBOOK_ACCEPTED : TL_RUNBOOK_REJECTED,
        .reason = args->reason,
        .data = args->data,
    };
    int rc = tl_datadir_path(args->data, TL_DATADIR_AUDIT, path, sizeof path);
    if (rc == 0)
        rc = tl__admin_open_store(args->data, &store);
    if (rc == 0)
        rc = tl_audit_chain_record(store, path, stage_decision, &decision, problem, sizeof problem);
    tl_store_close(store);
    if (rc == TL_EAUDIT) {
        fprintf(stderr, PROGRAM " %s: the audit log cannot be written: %s\n", what, problem);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr,
                PROGRAM " %s: no proposal %lld (runbook proposals --state all lists them); "
                        "nothing changed\n",
                what, (long long)id);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_ESTATE) {
        fprintf(stderr, PROGRAM " %s: proposal %lld (%s) is %s already; nothing changed\n", what,
                (long long)id, decision.name, decision.problem);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EINVAL && decision.problem[0] != '\0') {
        char shown[1400];
        tl_text_clip(shown, sizeof shown, decision.problem, 0, TL_TEXT_LINE);
        fprintf(stderr, PROGRAM " %s: proposal %lld (%s) cannot be accepted: %s; nothing changed\n",
                what, (long long)id, decision.name, shown);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return tl_admin_fail(what, rc);
    if (verb == VERB_ACCEPT)
        printf("Accepted proposal %lld: runbook %s\n  it reaches agents with the next signed "
               "catalogue: tierline-relay catalogue sign ... --runbooks-from-data --data DIR\n",
               (long long)id, decision.name);
    else
        printf("Rejected proposal %lld: runbook %s\n", (long long)id, decision.name);
    return TL_EXIT_OK;
}

static int cmd_runbook(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct runbook_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    int words = args.words.count, verb = VERB_LIST;
    const char *problem = NULL, *state = NULL;
    int64_t id = 0;
    if (words > 0) {
        const char *word = args.words.word[0];
        verb = strcmp(word, "show") == 0     ? VERB_SHOW
               : strcmp(word, "accept") == 0 ? VERB_ACCEPT
               : strcmp(word, "reject") == 0 ? VERB_REJECT
                                             : -1;
    }
    if (verb < 0)
        problem = "runbook proposals takes show, accept or reject, and a proposal id";
    else if (verb != VERB_LIST && (words != 2 || parse_id(args.words.word[1], &id) != 0))
        problem = "a proposal id is a number, as runbook proposals lists it";
    else if (verb == VERB_LIST && args.state != NULL &&
             tl__runbook_state_word(args.state, &state) != 0)
        problem = "--state wants pending, accepted, rejected or all";
    else if (args.state != NULL && verb != VERB_LIST)
        problem = "--state is for runbook proposals (the listing)";
    else if (verb == VERB_REJECT && (args.reason == NULL || args.reason[0] == '\0'))
        problem = "reject needs --reason TEXT: the proposer reads why";
    else if (args.reason != NULL && verb != VERB_REJECT)
        problem = "--reason is for reject";
    else if (args.reason != NULL && strlen(args.reason) > 4000)
        problem = "--reason is at most 4000 bytes";
    else if (args.json && (verb == VERB_ACCEPT || verb == VERB_REJECT))
        problem = "--json is for the listing and show";
    if (problem != NULL) {
        fprintf(stderr, PROGRAM " runbook: %s\nusage: " PROGRAM " %s\n", problem, cmd->usage);
        return TL_EXIT_USAGE;
    }
    switch (verb) {
    case VERB_LIST:
        return proposals_list(&args);
    case VERB_SHOW:
        return proposal_show(&args, id);
    default:
        return proposal_decide(&args, verb, id);
    }
}

const tl_admin_command_t tl_admin_runbook = {
    .name = "runbook",
    .usage = "runbook proposals [--state pending|accepted|rejected|all] [--json] [--data DIR] | "
             "runbook proposals show ID [--json] [--data DIR] | runbook proposals accept ID "
             "[--data DIR] "
             "| runbook proposals reject ID --reason TEXT [--data DIR]",
    .summary = "review the runbooks tier 3 proposed: accept or reject them (docs/kb.md)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct runbook_args, "the relay's folder"),
                    {.name = "state",
                     .metavar = "pending|accepted|rejected|all",
                     .help = "the listing: which proposals (default: pending)",
                     .word = TL_CLI_AT(struct runbook_args, state)},
                    {.name = "reason",
                     .metavar = "TEXT",
                     .help = "reject: why (required; the proposer reads it)",
                     .word = TL_CLI_AT(struct runbook_args, reason)},
                    TL__ADMIN_JSON(struct runbook_args,
                                   "the listing: a JSON array as the technicians' runbook "
                                   "proposals --json prints; show: one object with metadata "
                                   "and script"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "proposals",
                                                   .kind = TL_CLI_WORD,
                                                   .words = groups,
                                                   .out = TL_CLI_AT(struct runbook_args, group)},
                                                  {.name = "[show|accept|reject ID]",
                                                   .flags = TL_CLI_OPTIONAL,
                                                   .most = 2,
                                                   .kind = TL_CLI_LIST,
                                                   .out = TL_CLI_AT(struct runbook_args, words)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_runbook,
    .example = "tierline-relay runbook proposals --data /var/lib/tierline\n"
               "tierline-relay runbook proposals show 3 --data /var/lib/tierline\n"
               "tierline-relay runbook proposals accept 3 --data /var/lib/tierline\n"
               "tierline-relay runbook proposals reject 4 --reason 'use restart-service' --data "
               "/var/lib/tierline\n",
};
