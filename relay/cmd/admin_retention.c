/*
 * retention prune: removes the evidence payloads past their class's retention (docs/desk.md
 * "Retention", docs/audit-format.md §22), on the relay host. For each reference it prunes (an
 * evidence row of a ticket) it writes a timeline event "evidence.pruned" and a tombstone audit
 * entry "evidence.prune" in one unit of work; only once that unit is committed and its entries
 * are durable in the audit log are the payloads removed. So it fails closed: when the tombstones
 * cannot be written nothing is removed, and a payload is never gone without its tombstone. The
 * audit leaves of the payload's own entries stay as they are. A payload stored once for several
 * tickets goes only when every reference to it may go and none of its tickets is held
 * (relay/desk/retention.h). A run interrupted after its tombstones and before the removals is
 * finished by the next: a payload whose every reference is tombstoned is removed.
 */
#include "relay/cmd/admin_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "relay/desk/desk_config.h"
#include "relay/desk/retention.h"
#include "relay/desk/vendor.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"
#include "relay/store/evidence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROGRAM TL_ADMIN_PROGRAM

struct prune_args {
    const char *data;
    int json;
    int verb;
    int dry_run;
    int64_t now_ms; /* 0: the clock's */
};

static const char *const retention_verbs[] = {"prune", NULL};

static int kind_now(const char *word, void *out, const char **problem)
{
    (void)problem;
    return tl_vendor_date_parse(word, TL_VENDOR_DAY_START, out);
}

/* What a prune found: every evidence row, with its ticket's hold and tombstones. */
struct plan {
    tl_evidence_rows_t rows;
    tl_retention_ref_t *refs;
    int *prune;  /* this run tombstones the reference */
    int *remove; /* this run removes the reference's payload (once per hash: the first) */
    tl_retention_t policy;
    int64_t now_ms;
    const char *policy_file;
};

static void plan_free(struct plan *plan)
{
    tl_evidence_rows_free(&plan->rows);
    free(plan->refs);
    free(plan->prune);
    free(plan->remove);
}

static int plan_read(tl_store_t *store, struct plan *plan)
{
    int rc = tl_store_evidence_read(store, &plan->rows);
    if (rc != 0)
        return rc;
    size_t count = plan->rows.count;
    plan->refs = calloc(count + 1, sizeof *plan->refs);
    plan->prune = calloc(count + 1, sizeof *plan->prune);
    plan->remove = calloc(count + 1, sizeof *plan->remove);
    if (plan->refs == NULL || plan->prune == NULL || plan->remove == NULL)
        return TL_ENOMEM;
    tl_ticket_event_rows_t events = {0};
    int64_t events_of = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const tl_evidence_row_t *row = &plan->rows.rows[i];
        if (row->ticket_id != events_of) {
            tl_ticket_event_rows_free(&events);
            events_of = row->ticket_id;
            rc = tl_store_ticket_events_read(store, row->ticket_id, &events);
        }
        plan->refs[i] = (tl_retention_ref_t){
            .ticket_id = row->ticket_id,
            .hash = row->hash,
            .kind = row->kind,
            .created_ms = row->created,
            .held = rc == 0 && tl_retention_held(&events, NULL),
            .pruned = rc == 0 && tl_retention_pruned(&events, row->hash),
        };
    }
    tl_ticket_event_rows_free(&events);
    if (rc == 0)
        rc = tl_retention_decide(&plan->policy, plan->refs, count, plan->now_ms, plan->prune);
    /* A payload is removed when, after this run, every reference to it is tombstoned. Rows come
     * by hash, then ticket (tl_store_evidence_read), so one hash's references are together. */
    for (size_t start = 0, end; rc == 0 && start < count; start = end) {
        int all = 1;
        for (end = start;
             end < count && strcmp(plan->rows.rows[end].hash, plan->rows.rows[start].hash) == 0;
             end++)
            all = all && (plan->refs[end].pruned || plan->prune[end]);
        plan->remove[start] = all;
    }
    return rc;
}

/* The tombstones: for each reference pruned, its timeline event and audit entry. */
static int stage_tombstones(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    struct plan *plan = arg;
    char pruned[TL_UTC_TEXT];
    tl_format_utc(plan->now_ms, pruned);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < plan->rows.count; i++) {
        if (!plan->prune[i])
            continue;
        const tl_evidence_row_t *row = &plan->rows.rows[i];
        int cls = tl_retention_class_of(row->kind);
        char ticket[TL_ID_TEXT], added[TL_UTC_TEXT];
        tl_id_format(ticket, TL_ID_TICKET, row->ticket_id);
        tl_format_utc(row->created, added);
        json_t *details =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:{s:s, s:i, s:s}, s:s}", "ticket",
                      ticket, "sha256", row->hash, "class", tl_retention_class_name(cls), "kind",
                      row->kind, "name", row->name, "size", (json_int_t)row->size, "added", added,
                      "policy", "class", tl_retention_class_name(cls), "days",
                      plan->policy.days[cls], "file", plan->policy_file, "pruned", pruned);
        char *text =
            details != NULL ? json_dumps(details, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        tl_ticket_event_row_t event = {row->ticket_id, plan->now_ms, "admin",
                                       TL_RETENTION_EVENT_PRUNED, text};
        rc = text != NULL ? tl_store_ticket_event_add(store, &event) : TL_ENOMEM;
        tl_audit_entry_t entry = {"admin", TL_RETENTION_ACTION_PRUNE, ticket, details, 0};
        if (rc == 0)
            rc = tl_audit_chain_stage(chain, &entry, NULL);
        free(text);
        json_decref(details);
    }
    return rc;
}

static void print_plan(const struct plan *plan, int dry_run, json_t *listing)
{
    for (size_t i = 0; i < plan->rows.count; i++) {
        if (!plan->prune[i])
            continue;
        const tl_evidence_row_t *row = &plan->rows.rows[i];
        int cls = tl_retention_class_of(row->kind);
        char ticket[TL_ID_TEXT], added[TL_UTC_TEXT];
        tl_id_format(ticket, TL_ID_TICKET, row->ticket_id);
        tl_format_utc(row->created, added);
        if (listing != NULL) {
            json_array_append_new(
                listing, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "ticket", ticket, "sha256",
                                   row->hash, "class", tl_retention_class_name(cls), "kind",
                                   row->kind, "added", added, "days", plan->policy.days[cls]));
            continue;
        }
        printf("%s %s  %-11s %s  added %s, kept %d days\n", dry_run ? "would prune" : "pruned",
               ticket, tl_retention_class_name(cls), row->hash, added, plan->policy.days[cls]);
    }
}

static int cmd_retention(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct prune_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    char config[4096], audit[4096], evidence_dir[4096], why[768] = "";
    struct plan plan = {0};
    tl_store_t *store = NULL;
    tl_evidence_store_t *evidence = NULL;
    struct stat st;
    if (stat(args.data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, PROGRAM " retention: no relay folder at %s\n", args.data);
        return TL_EXIT_FAILURE;
    }
    int rc = tl_datadir_path(args.data, TL_DESK_CONFIG_FILE, config, sizeof config);
    if (rc == 0)
        rc = tl_datadir_path(args.data, TL_DATADIR_AUDIT, audit, sizeof audit);
    if (rc == 0)
        rc = tl_datadir_path(args.data, TL_DATADIR_EVIDENCE, evidence_dir, sizeof evidence_dir);
    if (rc != 0)
        return tl_admin_fail("retention", rc);
    /* relay.conf's retention_ keys or DATA/desk.json's "retention" (relay/desk/desk_config.h). */
    static tl_settings_t settings;
    if (tl_admin_settings_load(NULL, &settings, why, sizeof why) != 0 ||
        tl_desk_config_retention(config, &settings, &plan.policy, &plan.policy_file, why,
                                 sizeof why) != 0) {
        fprintf(stderr, PROGRAM " retention: %s\n", why);
        return TL_EXIT_FAILURE;
    }
    plan.now_ms = args.now_ms != 0 ? args.now_ms : tl_wall_ms();
    if ((rc = tl__admin_open_store(args.data, &store)) != 0) {
        status = tl_admin_fail("retention: the relay's database", rc);
        goto out;
    }
    if ((rc = plan_read(store, &plan)) != 0) {
        status = tl_admin_fail("retention: reading the evidence", rc);
        goto out;
    }
    size_t tombstones = 0, removed = 0;
    for (size_t i = 0; i < plan.rows.count; i++)
        tombstones += (size_t)plan.prune[i];
    json_t *listing = args.json ? json_array() : NULL;
    if (args.dry_run) {
        for (size_t i = 0; i < plan.rows.count; i++)
            removed += (size_t)plan.remove[i];
        print_plan(&plan, 1, listing);
        goto report;
    }
    if ((rc = tl_evidence_store_open(evidence_dir, NULL, &evidence)) != 0) {
        json_decref(listing);
        status = tl_admin_fail("retention: the evidence store", rc);
        goto out;
    }
    /* The tombstones first, durable in the log, or nothing is removed. */
    if (tombstones > 0) {
        rc = tl_audit_chain_record(store, audit, stage_tombstones, &plan, why, sizeof why);
        if (rc != 0) {
            json_decref(listing);
            fprintf(stderr,
                    PROGRAM " retention prune: the tombstones cannot be written, nothing was "
                            "removed: %s\n",
                    rc == TL_EAUDIT ? why : tl_strerror(rc));
            status = TL_EXIT_FAILURE;
            goto out;
        }
    }
    for (size_t i = 0; i < plan.rows.count; i++) {
        if (!plan.remove[i])
            continue;
        rc = tl_evidence_remove(evidence, plan.rows.rows[i].hash);
        if (rc == 0)
            removed++;
        else if (rc != TL_ENOTFOUND) {
            json_decref(listing);
            fprintf(stderr,
                    PROGRAM " retention prune: %s: %s (its tombstones are written; run "
                            "it again)\n",
                    plan.rows.rows[i].hash, tl_strerror(rc));
            status = TL_EXIT_FAILURE;
            goto out;
        }
    }
    print_plan(&plan, 0, listing);
report:
    if (listing != NULL) {
        json_t *verdict = json_pack("{s:b, s:s, s:o, s:I, s:I}", "dry_run", args.dry_run, "now", "",
                                    "pruned", listing, "tombstones", (json_int_t)tombstones,
                                    "removed", (json_int_t)removed);
        char now[TL_UTC_TEXT];
        tl_format_utc(plan.now_ms, now);
        json_object_set_new(verdict, "now", json_string(now));
        status = tl__admin_print_json(verdict);
        json_decref(verdict);
    } else {
        printf("%s: %zu reference%s %s, %zu payload%s %s\n",
               args.dry_run ? "retention prune --dry-run" : "retention prune", tombstones,
               tombstones == 1 ? "" : "s", args.dry_run ? "would be tombstoned" : "tombstoned",
               removed, removed == 1 ? "" : "s", args.dry_run ? "would be removed" : "removed");
        status = TL_EXIT_OK;
    }
out:
    plan_free(&plan);
    tl_evidence_store_close(evidence);
    tl_store_close(store);
    return status;
}

const tl_admin_command_t tl_admin_retention = {
    .name = "retention",
    .usage = "retention prune [--data DIR] [--dry-run] [--now TIME] [--json]",
    .summary = "remove the evidence payloads past their class's retention (relay.conf or "
               "desk.json), writing a "
               "tombstone audit entry for each first; held tickets keep theirs",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct prune_args, "the relay's folder"),
                    {.name = "dry-run",
                     .help = "list what would go, and change nothing",
                     .out = TL_CLI_AT(struct prune_args, dry_run)},
                    {.name = "now",
                     .metavar = "TIME",
                     .help = "judge ages as at this UTC date or time (2027-06-01, "
                             "2027-06-01T12:00Z) instead of the clock's",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_CHECK,
                     .check = kind_now,
                     .out = TL_CLI_AT(struct prune_args, now_ms),
                     .problem = "--now wants a UTC date or time (2027-06-01, 2027-06-01T12:00Z)"},
                    TL__ADMIN_JSON(struct prune_args,
                                   "an object: dry_run, now, pruned (each ticket, sha256, class, "
                                   "kind, added, days), tombstones, removed"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "prune",
                                                   .kind = TL_CLI_WORD,
                                                   .words = retention_verbs,
                                                   .out = TL_CLI_AT(struct prune_args, verb)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_retention,
    .example = "tierline-relay retention prune --data /var/lib/tierline --dry-run\n"
               "tierline-relay retention prune --data /var/lib/tierline\n",
};
