/*
 * Who may do what: the one capabilities table (docs/roles.md is generated
 * from it and checked against it by a test).
 *
 * The relay enforces this table for everything it does itself (ticket
 * operations, evidence). For what runs on the user's machine the agent
 * decides again, from the user's consent (DESIGN.md §3): a capability here
 * is necessary, never sufficient.
 */
#ifndef TL_ROLES_H
#define TL_ROLES_H

#include <stdio.h>

enum tl_capability {
    TL_CAP_TICKETS_READ, /* list and read tickets, their timeline and evidence list */
    TL_CAP_TICKET_TAKE,  /* assign a ticket to oneself */
    TL_CAP_TICKET_NOTE,  /* add notes */
    TL_CAP_TICKET_RESOLVE,
    TL_CAP_EVIDENCE_GET, /* download evidence content */
    TL_CAP_DIAG,         /* ask the agent for fresh diagnostics */
    TL_CAP_FIX,          /* run catalogue runbooks */
    TL_CAP_FIX_PRIVILEGED,
    TL_CAP_OBSERVE,    /* watch a live session */
    TL_CAP_RUN,        /* run a command on the machine */
    TL_CAP_SHELL,      /* interactive shell */
    TL_CAP_FILES_PULL, /* copy files from the machine */
    TL_CAP_FILES_PUSH, /* copy files to the machine */
    TL_CAP_USERS,      /* manage technicians (admin commands on the relay host) */
    TL_CAP_COUNT
};

enum tl_role {
    TL_ROLE_TIER1,
    TL_ROLE_TIER2,
    TL_ROLE_TIER3,
    TL_ROLE_TIER4,
    TL_ROLE_AUDITOR,
    TL_ROLE_ADMIN,
    TL_ROLE_COUNT
};

/* "tier1" -> TL_ROLE_TIER1; -1 for an unknown name. */
int tl_role_parse(const char *name);
const char *tl_role_name(int role);
const char *tl_capability_name(int capability);
const char *tl_capability_summary(int capability);

/* 1 if role may use capability at all. */
int tl_role_can(int role, int capability);
/*
 * Tier-4 (vendor) accounts see only tickets handed to them: 1 if role is
 * limited to tickets assigned to the user.
 */
int tl_role_assigned_only(int role);

/* The table as Markdown (docs/roles.md). */
void tl_roles_write_markdown(FILE *out);

#endif
