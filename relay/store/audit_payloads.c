/* The log's payloads against the evidence store, tombstones counted (relay/store/audit_payloads.h).
 */
#include "relay/store/audit_payloads.h"

#include "proto/err.h"
#include "relay/store/audit_query.h"

#include <string.h>

/* The entries of one action (or prefix), every one of them up to the search's bound. */
static int entries_of(const char *log_path, const char *action, json_t **hits)
{
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.action = action, .limit = TL_AUDIT_SEARCH_LIMIT_MAX};
    return tl_audit_search(log_path, &query, hits, &report);
}

static const char *detail(json_t *entry, const char *name)
{
    return json_string_value(json_object_get(json_object_get(entry, "details"), name));
}

static const char *action_of(json_t *entry)
{
    return json_string_value(json_object_get(entry, "action"));
}

int tl_audit_payload_tombstone(const char *log_path, const char *ticket, const char *hash,
                               json_t **entry)
{
    json_t *hits = NULL;
    *entry = NULL;
    int rc = entries_of(log_path, TL_AUDIT_ACTION_TOMBSTONE, &hits);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *hit;
    rc = TL_ENOTFOUND;
    json_array_foreach(hits, i, hit) {
        const char *named = detail(hit, "sha256"), *of = detail(hit, "ticket");
        if (named != NULL && strcmp(named, hash) == 0 &&
            (ticket == NULL || (of != NULL && strcmp(of, ticket) == 0))) {
            *entry = json_incref(hit);
            rc = 0;
            break;
        }
    }
    json_decref(hits);
    return rc;
}

/* The first tombstone in tombstones naming hash, or NULL. */
static json_t *tombstone_of(json_t *tombstones, const char *hash)
{
    size_t i;
    json_t *hit;
    json_array_foreach(tombstones, i, hit) {
        const char *named = detail(hit, "sha256");
        if (named != NULL && strcmp(named, hash) == 0)
            return hit;
    }
    return NULL;
}

struct tally {
    json_t *bad;
    size_t checked, pruned, present;
};

/* One payload entry: checked once per hash (seen holds the hashes done). */
static void check_one(tl_evidence_store_t *store, json_t *hit, json_t *tombstones, json_t *seen,
                      struct tally *all, struct tally *recordings, FILE *text)
{
    const char *hash = detail(hit, "sha256"), *action = action_of(hit);
    int recording = strcmp(action, "session.recorded") == 0;
    if (hash != NULL && json_object_get(seen, hash) != NULL)
        return;
    if (hash != NULL)
        json_object_set_new(seen, hash, json_true());
    char reason[200] = "";
    all->checked++;
    recordings->checked += recording;
    json_t *tombstone = hash != NULL ? tombstone_of(tombstones, hash) : NULL;
    int checked = hash == NULL || !tl_evidence_hash_valid(hash) ? TL_EINVAL
                  : store == NULL                               ? TL_ENOTFOUND
                                  : tl_evidence_verify(store, hash, reason, sizeof reason);
    if (checked == TL_ENOTFOUND && tombstone != NULL) {
        all->pruned++;
        recordings->pruned += recording;
        return;
    }
    if (checked == 0 && tombstone != NULL) {
        all->present++;
        if (text != NULL)
            fprintf(text,
                    "payload %s is tombstoned at entry %" JSON_INTEGER_FORMAT
                    " (evidence.prune) but still present: checked as any other (a tombstone is "
                    "a claim, not a licence; retention prune finishes an interrupted run)\n",
                    hash, json_integer_value(json_object_get(tombstone, "index")));
    }
    if (checked == 0)
        return;
    if (checked == TL_EINVAL)
        snprintf(reason, sizeof reason, "the entry names no valid sha256");
    else if (checked == TL_ENOTFOUND)
        snprintf(reason, sizeof reason, "missing from the evidence store, and no tombstone");
    json_t *item = json_pack("{s:O, s:O, s:s, s:s, s:s}", "index", json_object_get(hit, "index"),
                             "seq", json_object_get(hit, "seq"), "action", action, "sha256",
                             hash != NULL ? hash : "", "reason", reason);
    json_array_append(all->bad, item);
    if (recording)
        json_array_append(recordings->bad, item);
    json_decref(item);
    if (text != NULL)
        fprintf(text,
                "%s BROKEN: entry %" JSON_INTEGER_FORMAT " (seq %" JSON_INTEGER_FORMAT
                ", %s) names sha256 %.64s: %s\n",
                recording ? "recording" : "evidence",
                json_integer_value(json_object_get(hit, "index")),
                json_integer_value(json_object_get(hit, "seq")), action, hash != NULL ? hash : "-",
                reason);
}

static json_t *tally_json(const struct tally *t, int ok, int with_present)
{
    json_t *o = json_pack("{s:b, s:I, s:I, s:O}", "ok", ok, "checked", (json_int_t)t->checked,
                          "pruned", (json_int_t)t->pruned, "bad", t->bad);
    if (o != NULL && with_present)
        json_object_set_new(o, "still_present", json_integer((json_int_t)t->present));
    return o;
}

int tl_audit_payloads_verify(const char *log_path, tl_evidence_store_t *store, json_t *verdict,
                             FILE *text)
{
    json_t *recorded = NULL, *evidence = NULL, *files = NULL, *tombstones = json_array(),
           *seen = json_object();
    struct tally all = {json_array(), 0, 0, 0}, recordings = {json_array(), 0, 0, 0};
    int rc = tombstones != NULL && seen != NULL && all.bad != NULL && recordings.bad != NULL
                 ? 0
                 : TL_ENOMEM;
    if (rc == 0)
        rc = entries_of(log_path, "session.recorded", &recorded);
    if (rc == 0)
        rc = entries_of(log_path, "evidence.", &evidence);
    if (rc == 0)
        rc = entries_of(log_path, "files.", &files);
    if (rc != 0) {
        if (text != NULL)
            fprintf(text, "payloads not checked: %s\n", tl_strerror(rc));
        goto out;
    }
    size_t i;
    json_t *hit;
    json_array_foreach(evidence, i, hit) {
        if (strcmp(action_of(hit), TL_AUDIT_ACTION_TOMBSTONE) == 0)
            json_array_append(tombstones, hit);
    }
    json_array_foreach(recorded, i, hit) {
        check_one(store, hit, tombstones, seen, &all, &recordings, text);
    }
    json_array_foreach(evidence, i, hit) {
        const char *action = action_of(hit);
        if (strcmp(action, "evidence.add") == 0 || strcmp(action, "evidence.store") == 0)
            check_one(store, hit, tombstones, seen, &all, &recordings, text);
    }
    /* A file copied with scp or sftp is kept as evidence under the hash its entry names. */
    json_array_foreach(files, i, hit) {
        const char *action = action_of(hit);
        if (strcmp(action, "files.pull") == 0 || strcmp(action, "files.push") == 0)
            check_one(store, hit, tombstones, seen, &all, &recordings, text);
    }
    if (json_array_size(all.bad) != 0)
        rc = TL_EVERIFY;
    else if (text != NULL)
        fprintf(text,
                "payloads OK: %zu checked against their entries (%zu recordings), %zu payload%s "
                "pruned by retention\n",
                all.checked, recordings.checked, all.pruned, all.pruned == 1 ? "" : "s");
out:
    json_object_set_new(
        verdict, "recordings",
        tally_json(&recordings, json_array_size(recordings.bad) == 0 && rc == 0, 0));
    json_object_set_new(verdict, "payloads", tally_json(&all, rc == 0, 1));
    if (rc == TL_EVERIFY) {
        json_object_set_new(verdict, "ok", json_false());
        const char *was = json_string_value(json_object_get(verdict, "verdict"));
        if (was != NULL && strcmp(was, "ok") == 0)
            json_object_set_new(verdict, "verdict", json_string("broken"));
    }
    json_decref(recorded);
    json_decref(evidence);
    json_decref(files);
    json_decref(tombstones);
    json_decref(seen);
    json_decref(all.bad);
    json_decref(recordings.bad);
    return rc;
}
