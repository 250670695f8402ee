#include "proto/roles.h"
#include "proto/format.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned char runbook_rank; /* against a runbook's min_role; 0: runs none */
    unsigned char min_role;     /* a runbook may name it as its min_role */
} roles[TL_ROLE_COUNT] = {
    [TL_ROLE_TIER1] = {"tier1", 1, 1},     [TL_ROLE_TIER2] = {"tier2", 2, 1},
    [TL_ROLE_TIER3] = {"tier3", 3, 1},     [TL_ROLE_TIER4] = {"tier4", 0, 0},
    [TL_ROLE_AUDITOR] = {"auditor", 0, 0}, [TL_ROLE_ADMIN] = {"admin", 0, 0},
};

static const struct {
    const char *name;
    const char *summary;
    unsigned char on_machine; /* acts on the user's machine: needs a session and consent */
    /* tier1, tier2, tier3, tier4, auditor, admin */
    unsigned char allowed[TL_ROLE_COUNT];
} capabilities[TL_CAP_COUNT] = {
    [TL_CAP_TICKETS_READ] = {"tickets.read",
                             "list and read tickets, timelines, evidence lists",
                             0,
                             {1, 1, 1, 1, 1, 1}},
    [TL_CAP_TICKET_TAKE] = {"ticket.take", "assign a ticket to oneself", 0, {1, 1, 1, 0, 0, 0}},
    [TL_CAP_TICKET_NOTE] = {"ticket.note", "add a note to a ticket", 0, {1, 1, 1, 1, 0, 0}},
    [TL_CAP_TICKET_RESOLVE] = {"ticket.resolve",
                               "resolve, reopen and close a ticket",
                               0,
                               {1, 1, 1, 0, 0, 0}},
    [TL_CAP_TICKET_ASSIGN] = {"ticket.assign",
                              "assign a ticket to someone: leads, admins and its assignee",
                              0,
                              {1, 1, 1, 0, 0, 1}},
    [TL_CAP_TICKET_CLASSIFY] = {"ticket.classify",
                                "change a ticket's severity and category, with a reason",
                                0,
                                {1, 1, 1, 0, 0, 0}},
    [TL_CAP_EVIDENCE_GET] = {"evidence.get", "download evidence content", 0, {1, 1, 1, 1, 1, 0}},
    [TL_CAP_DIAG] = {"diag", "ask the agent for fresh diagnostics", 1, {1, 1, 1, 0, 0, 0}},
    [TL_CAP_FIX] = {"fix", "run a catalogue runbook", 1, {1, 1, 1, 0, 0, 0}},
    [TL_CAP_FIX_PRIVILEGED] = {"fix.privileged", "run a privileged runbook", 1, {0, 0, 1, 0, 0, 0}},
    [TL_CAP_OBSERVE] = {"observe", "watch a live session", 1, {1, 1, 1, 1, 0, 0}},
    [TL_CAP_RUN] = {"run", "run a command on the machine", 1, {0, 1, 1, 0, 0, 0}},
    [TL_CAP_SHELL] = {"shell", "open an interactive shell", 1, {0, 1, 1, 0, 0, 0}},
    [TL_CAP_FILES_PULL] = {"files.pull", "copy files from the machine", 1, {0, 1, 1, 0, 0, 0}},
    [TL_CAP_FILES_PUSH] = {"files.push", "copy files to the machine", 1, {0, 0, 1, 0, 0, 0}},
    [TL_CAP_USERS] = {"users", "manage technicians and auditors", 0, {0, 0, 0, 0, 0, 1}},
    [TL_CAP_TICKET_ESCALATE] = {"ticket.escalate",
                                "move a ticket to another tier's queue, with what was tried",
                                0,
                                {1, 1, 1, 0, 0, 1}},
    [TL_CAP_PROBLEMS_READ] = {"problems.read",
                              "list and read known problems",
                              0,
                              {1, 1, 1, 0, 1, 1}},
    [TL_CAP_PROBLEM_LINK] = {"problem.link",
                             "link a ticket to a known problem",
                             0,
                             {1, 1, 1, 0, 0, 0}},
    [TL_CAP_PROBLEMS_MANAGE] = {"problems.manage",
                                "open known problems, set their workaround and state",
                                0,
                                {0, 1, 1, 0, 0, 0}},
    [TL_CAP_TICKET_VENDOR] = {"ticket.vendor",
                              "hand a ticket to an outside vendor",
                              0,
                              {1, 1, 1, 0, 0, 0}},
    [TL_CAP_REPORT] = {"report",
                       "read the desk's report: tickets, SLA and problems by tier",
                       0,
                       {1, 1, 1, 0, 1, 1}},
    [TL_CAP_KB_READ] = {"kb.read", "list and read knowledge-base articles", 0, {1, 1, 1, 0, 1, 1}},
    [TL_CAP_AUDIT_READ] = {"audit.read",
                           "search the audit log, prove its entries, verify it and its checkpoints",
                           0,
                           {0, 0, 0, 0, 1, 1}},
    [TL_CAP_KB_DRAFT] = {"kb.draft",
                         "resolve a ticket and draft a knowledge-base article from it",
                         0,
                         {0, 0, 1, 0, 0, 1}},
    [TL_CAP_RUNBOOK_PROPOSE] = {"runbook.propose",
                                "propose a new runbook for an admin to accept into the catalogue",
                                0,
                                {0, 0, 1, 0, 0, 1}},
    [TL_CAP_RUNBOOK_PROPOSALS] = {"runbook.proposals",
                                  "read runbook proposals, their metadata and scripts",
                                  0,
                                  {0, 0, 1, 0, 1, 1}},
};

static int role_valid(int role)
{
    return role >= 0 && role < TL_ROLE_COUNT;
}

int tl_role_parse(const char *name)
{
    for (int i = 0; name != NULL && i < TL_ROLE_COUNT; i++)
        if (strcmp(name, roles[i].name) == 0)
            return i;
    return -1;
}

const char *tl_role_name(int role)
{
    return role_valid(role) ? roles[role].name : "unknown";
}

void tl_roles_names(char *out, size_t size)
{
    size_t used = 0;
    if (size > 0)
        out[0] = '\0';
    for (int r = 0; r < TL_ROLE_COUNT; r++)
        if (tl_format_append(out, size, &used, "%s%s", r > 0 ? ", " : "", roles[r].name) != 0)
            return;
}

const char *tl_capability_name(int capability)
{
    return capability >= 0 && capability < TL_CAP_COUNT ? capabilities[capability].name : "unknown";
}

const char *tl_capability_summary(int capability)
{
    return capability >= 0 && capability < TL_CAP_COUNT ? capabilities[capability].summary : "";
}

int tl_role_can(int role, int capability)
{
    if (!role_valid(role) || capability < 0 || capability >= TL_CAP_COUNT)
        return 0;
    return capabilities[capability].allowed[role];
}

int tl_role_has_sessions(int role)
{
    for (int c = 0; role_valid(role) && c < TL_CAP_COUNT; c++)
        if (capabilities[c].on_machine && capabilities[c].allowed[role])
            return 1;
    return 0;
}

int tl_role_runbook_rank(int role)
{
    return role_valid(role) ? roles[role].runbook_rank : 0;
}

int tl_role_is_min_role(int role)
{
    return role_valid(role) && roles[role].min_role;
}

int tl_role_ticket_bound(int role)
{
    return role == TL_ROLE_TIER4;
}

void tl_roles_write_markdown(FILE *out)
{
    fprintf(out, "| capability | what it allows |");
    for (int r = 0; r < TL_ROLE_COUNT; r++)
        fprintf(out, " %s |", roles[r].name);
    fprintf(out, "\n|---|---|");
    for (int r = 0; r < TL_ROLE_COUNT; r++)
        fprintf(out, ":-:|");
    fprintf(out, "\n");
    for (int c = 0; c < TL_CAP_COUNT; c++) {
        fprintf(out, "| `%s` | %s |", capabilities[c].name, capabilities[c].summary);
        for (int r = 0; r < TL_ROLE_COUNT; r++)
            fprintf(out, " %s |", capabilities[c].allowed[r] ? "yes" : "—");
        fprintf(out, "\n");
    }
}
