#include "proto/roles.h"

#include <string.h>

static const char *const role_names[TL_ROLE_COUNT] = {"tier1", "tier2",   "tier3",
                                                      "tier4", "auditor", "admin"};

static const struct {
    const char *name;
    const char *summary;
    /* tier1, tier2, tier3, tier4, auditor, admin */
    unsigned char allowed[TL_ROLE_COUNT];
} capabilities[TL_CAP_COUNT] = {
    [TL_CAP_TICKETS_READ] = {"tickets.read",
                             "list and read tickets, timelines, evidence lists",
                             {1, 1, 1, 1, 1, 1}},
    [TL_CAP_TICKET_TAKE] = {"ticket.take", "assign a ticket to oneself", {1, 1, 1, 1, 0, 0}},
    [TL_CAP_TICKET_NOTE] = {"ticket.note", "add a note to a ticket", {1, 1, 1, 1, 0, 0}},
    [TL_CAP_TICKET_RESOLVE] = {"ticket.resolve", "resolve a ticket", {1, 1, 1, 0, 0, 0}},
    [TL_CAP_EVIDENCE_GET] = {"evidence.get", "download evidence content", {1, 1, 1, 1, 1, 0}},
    [TL_CAP_DIAG] = {"diag", "ask the agent for fresh diagnostics", {1, 1, 1, 1, 0, 0}},
    [TL_CAP_FIX] = {"fix", "run a catalogue runbook", {1, 1, 1, 1, 0, 0}},
    [TL_CAP_FIX_PRIVILEGED] = {"fix.privileged", "run a privileged runbook", {0, 0, 1, 0, 0, 0}},
    [TL_CAP_OBSERVE] = {"observe", "watch a live session", {1, 1, 1, 1, 0, 0}},
    [TL_CAP_RUN] = {"run", "run a command on the machine", {0, 1, 1, 1, 0, 0}},
    [TL_CAP_SHELL] = {"shell", "open an interactive shell", {0, 1, 1, 1, 0, 0}},
    [TL_CAP_FILES_PULL] = {"files.pull", "copy files from the machine", {0, 1, 1, 1, 0, 0}},
    [TL_CAP_FILES_PUSH] = {"files.push", "copy files to the machine", {0, 0, 1, 0, 0, 0}},
    [TL_CAP_USERS] = {"users", "manage technicians and auditors", {0, 0, 0, 0, 0, 1}},
};

int tl_role_parse(const char *name)
{
    for (int i = 0; name != NULL && i < TL_ROLE_COUNT; i++)
        if (strcmp(name, role_names[i]) == 0)
            return i;
    return -1;
}

const char *tl_role_name(int role)
{
    return role >= 0 && role < TL_ROLE_COUNT ? role_names[role] : "unknown";
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
    if (role < 0 || role >= TL_ROLE_COUNT || capability < 0 || capability >= TL_CAP_COUNT)
        return 0;
    return capabilities[capability].allowed[role];
}

int tl_role_assigned_only(int role)
{
    return role == TL_ROLE_TIER4;
}

void tl_roles_write_markdown(FILE *out)
{
    fprintf(out, "| capability | what it allows |");
    for (int r = 0; r < TL_ROLE_COUNT; r++)
        fprintf(out, " %s |", role_names[r]);
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
