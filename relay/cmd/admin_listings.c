/*
 * What the relay holds, as an admin on its host reads it: devices, tickets
 * (with the technicians' filters, docs/technicians.md) and one ticket with
 * its evidence and timeline. Text from agents and users is escaped, in
 * columns clipped by display width (relay/cmd/show.h).
 */
#include "relay/cmd/admin_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/text.h"
#include "relay/cmd/kinds.h"
#include "relay/cmd/rows.h"
#include "relay/cmd/show.h"
#include "relay/desk/tickets.h"

#include <stdlib.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM

/* ---- devices ---------------------------------------------------------------------- */

static int cmd_devices(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct tl__admin_data_json args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data;
    int json_out = args.json;
    tl_store_t *store = NULL;
    json_t *devices = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_rows_devices(store, &devices);
    tl_store_close(store);
    if (rc != 0)
        return tl_admin_fail("devices", rc);
    if (json_out) {
        status = tl__admin_print_json(devices);
    } else {
        printf("%-6s %-7s %-20s %-28s %-20s %s\n", "ID", "ONLINE", "HOSTNAME", "OS", "LAST SEEN",
               "FINGERPRINT");
        size_t i;
        json_t *d;
        json_array_foreach(devices, i, d) {
            char seen[32], hostname[64], os[88];
            tl_format_utc(json_integer_value(json_object_get(d, "last_seen")), seen);
            printf("%-6s %-7s %s %s %-20s %s\n", tl__cmd_member(d, "id"),
                   json_is_true(json_object_get(d, "online")) ? "yes" : "no",
                   tl__cmd_cell(hostname, sizeof hostname, d, "hostname", 20),
                   tl__cmd_cell(os, sizeof os, d, "os", 28), seen,
                   tl__cmd_member(d, "fingerprint"));
        }
        if (json_array_size(devices) == 0)
            printf("(no devices enrolled)\n");
    }
    json_decref(devices);
    return status;
}

const tl_admin_command_t tl_admin_devices = {
    .name = "devices",
    .usage = "devices [--data DIR] [--json]",
    .summary = "list enrolled devices",
    .args =
        TL__ADMIN_DATA_JSON("a JSON array of objects: id, fingerprint, hostname, os, first_seen, "
                            "last_seen, online"),
    .run = cmd_devices,
    .example = "tierline-relay devices --data /var/lib/tierline\n",
};

/* ---- tickets ---------------------------------------------------------------------- */

struct tickets_args {
    const char *data, *tier, *status, *assignee;
    uint64_t tier_value;
    int json;
};

/* The technicians' filters (docs/technicians.md): --tier, --status, --assignee. */
static int cmd_tickets(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct tickets_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data;
    int json_out = args.json;
    tl_ticket_filter_t filter = {.tier = args.tier != NULL ? (int)args.tier_value : -1,
                                 .status = args.status,
                                 .assignee = args.assignee};
    tl_store_t *store = NULL;
    json_t *tickets = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_rows_tickets(store, &filter, &tickets);
    tl_store_close(store);
    if (rc != 0)
        return tl_admin_fail("tickets", rc);
    if (json_out) {
        status = tl__admin_print_json(tickets);
    } else {
        tl__cmd_print_tickets(stdout, tickets);
    }
    json_decref(tickets);
    return status;
}

const tl_admin_command_t tl_admin_tickets = {
    .name = "tickets",
    .usage = "tickets [--data DIR] [--tier N] [--status S] [--assignee NAME] [--json]",
    .summary = "list tickets with their assignees, optionally only some",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct tickets_args, "the relay's folder"),
                    {.name = "tier",
                     .metavar = "N",
                     .help = "only tickets at tier N, 0..4",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_UINT,
                     .min = 0,
                     .max = 4,
                     .out = TL_CLI_AT(struct tickets_args, tier_value),
                     .word = TL_CLI_AT(struct tickets_args, tier),
                     .problem = "--tier wants 0, 1, 2, 3 or 4, not '%s'"},
                    {.name = "status",
                     .metavar = "S",
                     .help = "only tickets with status S: " TL_TICKET_STATUS_LIST,
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_CHECK,
                     .check = tl__kind_status,
                     .word = TL_CLI_AT(struct tickets_args, status),
                     .problem = "--status wants " TL_TICKET_STATUS_CHOICE ", not '%s'"},
                    {.name = "assignee",
                     .metavar = "NAME",
                     .help = "only tickets assigned to the account NAME",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_CHECK,
                     .check = tl__kind_account,
                     .word = TL_CLI_AT(struct tickets_args, assignee),
                     .problem =
                         "--assignee wants an account name (1-64 of a-z 0-9 . _ -, starting with "
                         "a letter), not '%s'"},
                    TL__ADMIN_JSON(
                        struct tickets_args,
                        "a JSON array of objects: id, device, hostname, title, description, "
                        "tier, status, assignee (null if none), created, updated, severity (S1.."
                        "S4), category, vendor, vendor_case, follow_up (null if none)"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_tickets,
    .example = "tierline-relay tickets --data /var/lib/tierline --status open --assignee bob\n",
};

/* ---- ticket show ------------------------------------------------------------------- */

static void print_ticket(json_t *t)
{
    char created[32], updated[32];
    tl_format_utc(json_integer_value(json_object_get(t, "created")), created);
    tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
    char title[1024], hostname[1100], assignee[300];
    printf("%s  %s\n", tl__cmd_member(t, "id"), tl__cmd_shown(title, sizeof title, t, "title"));
    printf("  device:   %s (%s)\n", tl__cmd_member(t, "device"),
           tl__cmd_shown(hostname, sizeof hostname, t, "hostname"));
    printf("  tier:     %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(t, "tier")));
    printf("  status:   %s\n", tl__cmd_member(t, "status"));
    printf("  assignee: %s\n", tl__cmd_shown(assignee, sizeof assignee, t, "assignee"));
    printf("  created:  %s\n  updated:  %s\n", created, updated);
    const char *description = json_string_value(json_object_get(t, "description"));
    if (description != NULL && description[0] != '\0') {
        char *body = tl_text_escape_dup(description, TL_TEXT_BODY);
        printf("\n  %s\n", body != NULL ? body : "");
        free(body);
    }
    printf("\nEvidence:\n");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(t, "evidence"), i, item) {
        char kind[80], name[1100];
        printf("  %s %s %10" JSON_INTEGER_FORMAT " bytes  sha256:%s\n",
               tl__cmd_padded(kind, sizeof kind, item, "kind", 12),
               tl__cmd_padded(name, sizeof name, item, "name", 24),
               json_integer_value(json_object_get(item, "size")), tl__cmd_member(item, "hash"));
    }
    printf("\nTimeline:\n");
    json_array_foreach(json_object_get(t, "events"), i, item) {
        char when[32], actor[300], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = tl__cmd_details_line(item);
        printf("  %s  %s %s %s\n", when, tl__cmd_padded(actor, sizeof actor, item, "actor", 16),
               tl__cmd_padded(kind, sizeof kind, item, "kind", 18), details != NULL ? details : "");
        free(details);
    }
}

struct ticket_args {
    const char *data;
    tl__ticket_arg_t ticket;
    int json;
};

static int cmd_ticket(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct ticket_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data;
    int64_t id = args.ticket.id;
    int json_out = args.json;
    tl_store_t *store = NULL;
    json_t *ticket = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_rows_ticket(store, id, &ticket);
    tl_store_close(store);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " ticket: no ticket %s\n", args.ticket.text);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return tl_admin_fail("ticket", rc);
    if (json_out)
        status = tl__admin_print_json(ticket);
    else
        print_ticket(ticket);
    json_decref(ticket);
    return status;
}

static const char *const show[] = {"show", NULL};

const tl_admin_command_t tl_admin_ticket = {
    .name = "ticket",
    .usage = "ticket show T-N [--data DIR] [--json]",
    .summary = "show a ticket with its evidence and timeline",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct ticket_args, "the relay's folder"),
                    TL__ADMIN_JSON(struct ticket_args,
                                   "the ticket as a JSON object, with its evidence and events"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "show",
                                                   .kind = TL_CLI_WORD,
                                                   .words = show,
                                                   .problem = "want 'show T-N'"},
                                                  {.name = "T-N",
                                                   .kind = TL_CLI_CHECK,
                                                   .check = tl__kind_ticket,
                                                   .out = TL_CLI_AT(struct ticket_args, ticket),
                                                   .problem = "want 'show T-N'"},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_ticket,
    .example = "tierline-relay ticket show T-1 --data /var/lib/tierline\n",
};
