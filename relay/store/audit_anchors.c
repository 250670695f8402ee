/* The audit log checked against its signed checkpoints (relay/store/audit_anchors.h). */
#include "relay/store/audit_anchors.h"
#include "proto/err.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_tree.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One checkpoint as read. */
struct anchor {
    size_t file;
    uint64_t index;
    int valid;   /* signed by the key, of its origin */
    int failure; /* when not: TL_EINVAL (bad note) or TL_EVERIFY (bad signature) */
    tl_checkpoint_t checkpoint;
};

struct anchors {
    struct anchor *items;
    size_t count, cap;
    size_t file;
    const tl_note_verifier_t *verifier;
};

static const char *find_blank(const char *note, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (note[i] == '\n' && note[i + 1] == '\n')
            return note + i;
    return NULL;
}

static int read_anchor(void *arg, uint64_t index, const char *note, size_t len)
{
    struct anchors *all = arg;
    if (all->count == all->cap) {
        size_t cap = all->cap ? all->cap * 2 : 64;
        struct anchor *grown = realloc(all->items, cap * sizeof *grown);
        if (grown == NULL)
            return TL_ENOMEM;
        all->items = grown;
        all->cap = cap;
    }
    struct anchor *a = &all->items[all->count++];
    memset(a, 0, sizeof *a);
    a->file = all->file;
    a->index = index;
    if (all->verifier == NULL) {
        /* Read the size all the same, for the report. */
        const char *blank = find_blank(note, len);
        if (blank != NULL)
            tl_checkpoint_parse(note, (size_t)(blank - note) + 1, &a->checkpoint);
        a->failure = TL_EVERIFY;
        return 0;
    }
    size_t text_len = 0;
    int rc = tl_note_open(note, len, all->verifier, &text_len);
    if (rc == 0)
        rc = tl_checkpoint_parse(note, text_len, &a->checkpoint) == 0 ? 0 : TL_EINVAL;
    if (rc == 0 && strcmp(a->checkpoint.origin, all->verifier->name) != 0)
        rc = TL_EINVAL;
    if (rc == TL_EVERIFY) {
        const char *blank = find_blank(note, len);
        if (blank != NULL)
            tl_checkpoint_parse(note, (size_t)(blank - note) + 1, &a->checkpoint);
    }
    a->valid = rc == 0;
    a->failure = rc == 0 ? 0 : rc == TL_EVERIFY ? TL_EVERIFY : TL_EINVAL;
    return 0;
}

static void fail(tl_audit_anchor_report_t *report, const struct anchor *a, const char *category)
{
    report->failed = 1;
    report->file = a->file;
    report->index = a->index;
    report->size = a->checkpoint.size;
    snprintf(report->category, sizeof report->category, "%s", category);
}

/*
 * 1 when the log's entry number size + 1 is the "audit.checkpoint" entry of the checkpoint a
 * (details naming its size and root), 0 when not, negative when the log cannot be read.
 */
static int own_entry_follows(const char *log_path, const struct anchor *a)
{
    FILE *f = fopen(log_path, "re");
    if (f == NULL)
        return -errno;
    char *line = NULL, root[48];
    size_t cap = 0;
    ssize_t len = 0;
    uint64_t number = 0;
    while (number <= a->checkpoint.size && (len = getline(&line, &cap, f)) > 0 &&
           line[len - 1] == '\n')
        number++;
    int rc = 0;
    if (number == a->checkpoint.size + 1) {
        json_t *entry = json_loadb(line, (size_t)len - 1, 0, NULL);
        json_t *details = json_object_get(entry, "details");
        EVP_EncodeBlock((unsigned char *)root, a->checkpoint.root, TL_MERKLE_HASH_LEN);
        const char *action = json_string_value(json_object_get(entry, "action"));
        const char *signed_root = json_string_value(json_object_get(details, "root"));
        json_t *size = json_object_get(details, "size");
        rc = action != NULL && strcmp(action, "audit.checkpoint") == 0 && json_is_integer(size) &&
             (uint64_t)json_integer_value(size) == a->checkpoint.size && signed_root != NULL &&
             strcmp(signed_root, root) == 0;
        json_decref(entry);
    }
    free(line);
    fclose(f);
    return rc;
}

static void hex_of(const tl_merkle_hash_t hash, char out[65])
{
    for (int i = 0; i < TL_MERKLE_HASH_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

int tl_audit_anchors_verify(const char *log_path, const char *const *files, const int *optional,
                            size_t file_count, const tl_note_verifier_t *verifier,
                            tl_audit_anchor_report_t *report)
{
    struct anchors all = {NULL, 0, 0, 0, verifier};
    uint64_t *sizes = NULL;
    tl_merkle_hash_t *roots = NULL;
    int rc = 0;
    memset(report, 0, sizeof *report);
    for (size_t f = 0; f < file_count; f++) {
        all.file = f;
        rc = tl_audit_checkpoints_each(files[f], read_anchor, &all, NULL);
        if (rc == -ENOENT && optional[f])
            rc = 0;
        if (rc != 0) {
            snprintf(report->reason, sizeof report->reason, "checkpoints %s cannot be read: %s",
                     files[f], tl_strerror(rc));
            goto out;
        }
    }
    report->checked = all.count;
    /* 1. Each one signed by the key, of this log. */
    for (size_t i = 0; i < all.count; i++) {
        const struct anchor *a = &all.items[i];
        if (a->valid)
            continue;
        if (verifier == NULL) {
            fail(report, a, "no-key");
            snprintf(report->reason, sizeof report->reason,
                     "no audit key to check the checkpoints with (give --key)");
        } else if (a->failure == TL_EVERIFY) {
            fail(report, a, "bad-signature");
            snprintf(report->reason, sizeof report->reason,
                     "it carries no good signature by the audit key %s (signed by another key, "
                     "or altered)",
                     verifier->name);
        } else {
            fail(report, a, "bad-note");
            snprintf(report->reason, sizeof report->reason,
                     "it is not a signed checkpoint of the log %s", verifier->name);
        }
        rc = TL_EVERIFY;
        goto out;
    }
    /* 2. One root per size. */
    for (size_t j = 0; j < all.count; j++) {
        for (size_t i = 0; i < j; i++) {
            const struct anchor *a = &all.items[i], *b = &all.items[j];
            if (a->checkpoint.size != b->checkpoint.size ||
                memcmp(a->checkpoint.root, b->checkpoint.root, TL_MERKLE_HASH_LEN) == 0)
                continue;
            fail(report, b, "fork");
            report->other_file = a->file;
            report->other_index = a->index;
            snprintf(report->reason, sizeof report->reason,
                     "two roots for size %" PRIu64 ": this one and checkpoint %" PRIu64
                     " of file %zu, both signed by the audit key",
                     b->checkpoint.size, a->index, a->file + 1);
            rc = TL_EVERIFY;
            goto out;
        }
    }
    /* 3. Each root is the log's. */
    sizes = calloc(all.count ? all.count : 1, sizeof *sizes);
    roots = calloc(all.count ? all.count : 1, sizeof *roots);
    if (sizes == NULL || roots == NULL) {
        rc = TL_ENOMEM;
        snprintf(report->reason, sizeof report->reason, "%s", tl_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < all.count; i++)
        sizes[i] = all.items[i].checkpoint.size;
    rc = tl_audit_tree_roots_of_log(log_path, sizes, all.count, roots, &report->log_entries);
    if (rc != 0) {
        snprintf(report->reason, sizeof report->reason,
                 rc == TL_EPROTO ? "audit log %s: line %" PRIu64 " is too long to be an entry"
                                 : "audit log %s cannot be read",
                 log_path, report->log_entries);
        goto out;
    }
    for (size_t i = 0; i < all.count; i++) {
        const struct anchor *a = &all.items[i];
        uint64_t size = a->checkpoint.size;
        if (size > report->log_entries) {
            fail(report, a, "log-short");
            report->first_entry = report->log_entries + 1;
            report->last_entry = size;
            snprintf(report->reason, sizeof report->reason,
                     "the log holds %" PRIu64 " entries but this checkpoint covers %" PRIu64
                     ": entries %" PRIu64 "..%" PRIu64 " were cut",
                     report->log_entries, size, report->first_entry, report->last_entry);
            rc = TL_EVERIFY;
            goto out;
        }
        if (memcmp(roots[i], a->checkpoint.root, TL_MERKLE_HASH_LEN) == 0) {
            if (size > report->last_size)
                report->last_size = size;
            continue;
        }
        /* The largest smaller size whose root matches bounds where the change is. */
        uint64_t good = 0;
        for (size_t k = 0; k < all.count; k++) {
            uint64_t other = all.items[k].checkpoint.size;
            if (other < size && other > good &&
                memcmp(roots[k], all.items[k].checkpoint.root, TL_MERKLE_HASH_LEN) == 0)
                good = other;
        }
        char signed_hex[65], log_hex[65];
        hex_of(a->checkpoint.root, signed_hex);
        hex_of(roots[i], log_hex);
        fail(report, a, "root-mismatch");
        report->first_entry = good + 1;
        report->last_entry = size;
        snprintf(report->reason, sizeof report->reason,
                 "the log's first %" PRIu64 " entries have root %.16s..., the checkpoint signed "
                 "%.16s...: an entry in %" PRIu64 "..%" PRIu64 " was changed",
                 size, log_hex, signed_hex, report->first_entry, report->last_entry);
        rc = TL_EVERIFY;
        goto out;
    }
    /* 4. Nothing past the largest checkpoint but its own entry. */
    const struct anchor *largest = NULL;
    for (size_t i = 0; i < all.count; i++)
        if (largest == NULL || all.items[i].checkpoint.size > largest->checkpoint.size)
            largest = &all.items[i];
    report->covered = report->last_size;
    if (largest != NULL && report->log_entries > report->covered) {
        int own = own_entry_follows(log_path, largest);
        if (own < 0) {
            rc = own;
            snprintf(report->reason, sizeof report->reason, "audit log %s cannot be read: %s",
                     log_path, tl_strerror(rc));
            goto out;
        }
        report->covered += (uint64_t)own;
    }
    if (report->log_entries > report->covered) {
        if (largest != NULL)
            fail(report, largest, "unsigned");
        else
            fail(report, &(struct anchor){0}, "unsigned");
        report->first_entry = report->covered + 1;
        report->last_entry = report->log_entries;
        snprintf(report->reason, sizeof report->reason,
                 "entries %" PRIu64 "..%" PRIu64 " (leaf index %" PRIu64
                 " on) are not covered by a signed checkpoint: the log is proven up to entry "
                 "%" PRIu64,
                 report->first_entry, report->last_entry, report->covered, report->covered);
        rc = TL_EVERIFY;
    }
out:
    free(all.items);
    free(sizes);
    free(roots);
    return rc;
}
