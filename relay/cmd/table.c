/*
 * The technicians' commands, all in one table: the order is the order
 * `help` lists them. Each entry lives in the file of its group.
 */
#include "relay/cmd/cmd_int.h"

#include <stdio.h>
#include <string.h>

const struct tl__command *const tl__commands[] = {
    &tl__cmd_tickets,
    &tl__cmd_ticket_show,
    &tl__cmd_ticket_take,
    &tl__cmd_ticket_assign,
    &tl__cmd_ticket_classify,
    &tl__cmd_ticket_note,
    &tl__cmd_ticket_ask,
    &tl__cmd_ticket_resolve,
    &tl__cmd_ticket_reopen,
    &tl__cmd_ticket_close,
    &tl__cmd_ticket_escalate,
    &tl__cmd_ticket_vendor,
    &tl__cmd_ticket_export,
    &tl__cmd_ticket_hold,
    &tl__cmd_devices,
    &tl__cmd_evidence,
    &tl__cmd_evidence_get,
    &tl__cmd_whoami,
    &tl__cmd_help,
    &tl__cmd_diag,
    &tl__cmd_run,
    &tl__cmd_join,
    &tl__cmd_fix,
    &tl__cmd_runbooks,
    &tl__cmd_problems,
    &tl__cmd_problem_open,
    &tl__cmd_problem_link,
    &tl__cmd_problem_show,
    &tl__cmd_problem_workaround,
    &tl__cmd_problem_state,
    &tl__cmd_report,
    &tl__cmd_kb,
    &tl__cmd_kb_show,
    &tl__cmd_runbook_propose,
    &tl__cmd_runbook_proposals,
    &tl__cmd_runbook_proposal,
    &tl__cmd_audit_verify,
    &tl__cmd_audit_checkpoint,
    &tl__cmd_audit_search,
    &tl__cmd_audit_prove,
    &tl__cmd_audit_export,
    &tl__cmd_replay,
    &tl__cmd_web,
};

const size_t tl__command_count = sizeof tl__commands / sizeof tl__commands[0];

const struct tl__command *tl__command_lookup(int argc, char **argv, int *words)
{
    char two[64];
    if (argc >= 2 && snprintf(two, sizeof two, "%s %s", argv[0], argv[1]) < (int)sizeof two) {
        for (size_t i = 0; i < tl__command_count; i++) {
            if (strcmp(tl__commands[i]->name, two) == 0) {
                *words = 2;
                return tl__commands[i];
            }
        }
    }
    for (size_t i = 0; i < tl__command_count; i++) {
        if (strcmp(tl__commands[i]->name, argv[0]) == 0) {
            *words = 1;
            return tl__commands[i];
        }
    }
    return NULL;
}
