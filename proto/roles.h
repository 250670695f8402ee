/*
 * Who may do what: the one table of roles and capabilities (docs/roles.md is
 * generated from it and checked against it by a test), shared by both
 * programs.
 *
 * The relay enforces this table for everything it does itself (ticket
 * operations, evidence). For what runs on the user's machine the agent
 * decides again, from the user's consent (DESIGN.md §3): a capability here
 * is necessary, never sufficient. The agent takes from here which roles may
 * have a session at all and how a role ranks against a runbook's min_role.
 */
#ifndef TL_ROLES_H
#define TL_ROLES_H

#include <stddef.h>
#include <stdio.h>

enum tl_capability {
    TL_CAP_TICKETS_READ, /* list and read tickets, their timeline and evidence list */
    TL_CAP_TICKET_TAKE,  /* assign a ticket to oneself */
    TL_CAP_TICKET_NOTE,  /* add notes */
    TL_CAP_TICKET_RESOLVE,
    TL_CAP_TICKET_ASSIGN,   /* assign a ticket to someone (a lead, an admin, or its assignee) */
    TL_CAP_TICKET_CLASSIFY, /* change a ticket's severity and category, with a reason */
    TL_CAP_EVIDENCE_GET,    /* download evidence content */
    TL_CAP_DIAG,            /* ask the agent for fresh diagnostics */
    TL_CAP_FIX,             /* run catalogue runbooks */
    TL_CAP_FIX_PRIVILEGED,
    TL_CAP_OBSERVE,    /* watch a live session */
    TL_CAP_RUN,        /* run a command on the machine */
    TL_CAP_SHELL,      /* interactive shell */
    TL_CAP_FILES_PULL, /* copy files from the machine */
    TL_CAP_FILES_PUSH, /* copy files to the machine */
    TL_CAP_USERS,      /* manage technicians (admin commands on the relay host) */
    /* the help desk's escalation and known problems (docs/desk.md) */
    TL_CAP_TICKET_ESCALATE,   /* move a ticket to another tier, freezing its summary */
    TL_CAP_PROBLEMS_READ,     /* list and read known problems */
    TL_CAP_PROBLEM_LINK,      /* link a ticket to a known problem */
    TL_CAP_PROBLEMS_MANAGE,   /* open problems, set their workaround and state */
    TL_CAP_TICKET_VENDOR,     /* hand a ticket to an outside vendor (ticket vendor) */
    TL_CAP_REPORT,            /* read the desk's report */
    TL_CAP_KB_READ,           /* list and read knowledge-base articles (kb, kb show) */
    TL_CAP_AUDIT_READ,        /* read, search, prove and verify the audit log (audit ...) */
    TL_CAP_KB_DRAFT,          /* resolve a ticket into a draft article (ticket resolve --kb) */
    TL_CAP_RUNBOOK_PROPOSE,   /* propose a new runbook (runbook propose) */
    TL_CAP_RUNBOOK_PROPOSALS, /* read runbook proposals (runbook proposals, runbook proposal) */
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

/* "tier1" -> TL_ROLE_TIER1; -1 for an unknown name (and NULL). */
int tl_role_parse(const char *name);
const char *tl_role_name(int role);
const char *tl_capability_name(int capability);
const char *tl_capability_summary(int capability);
/* Every role's name in table order, ", "-separated ("tier1, tier2, ..."); cut to fit size. */
void tl_roles_names(char *out, size_t size);

/* 1 if role may use capability at all. */
int tl_role_can(int role, int capability);
/*
 * 1 if a session on the user's machine may be asked for role: it holds a
 * capability that acts there (diag, fix, observe, run, shell, files). The
 * agent refuses a session for any other role without asking (docs/consent.md).
 */
int tl_role_has_sessions(int role);
/*
 * A role's rank against a runbook's min_role (docs/consent.md "Runbooks"):
 * tier1 1, tier2 2, tier3 3; 0 for a role that runs no runbooks (tier4,
 * auditor, admin) and for an unknown one.
 */
int tl_role_runbook_rank(int role);
/* 1 if a runbook may name role as its min_role: tier1, tier2 or tier3. */
int tl_role_is_min_role(int role);
/*
 * Tier-4 (vendor) accounts see only the tickets bound to the account, until
 * an expiry (relay/desk/vendor.h): 1 if role is limited so.
 */
int tl_role_ticket_bound(int role);

/* The table as Markdown (docs/roles.md). */
void tl_roles_write_markdown(FILE *out);

#endif
