/*
 * Diagnostics documents for the desk's tests: a healthy machine as `tierline-agent diag --json`
 * reports it (docs/diagnostics.md §3), changed one field at a time by a path
 * ("sections.disks.mounts.0.used_percent": names and list indexes, separated by dots; an index
 * one past the end appends).
 */
#ifndef TL_TEST_DIAG_DOC_H
#define TL_TEST_DIAG_DOC_H

#include "tl_test.h"

#include "proto/hash.h"
#include "relay/desk/classify.h"

#include <jansson.h>
#include <stdlib.h>

static const char diag_doc_healthy[] =
    "{\"schema\":1,\"collected_at\":\"2026-11-23T08:14:02Z\",\"host\":\"lt-0412\",\"sections\":{"
    "\"system\":{\"hostname\":\"lt-0412\",\"os\":{\"pretty_name\":\"Ubuntu 22.04.3 LTS\","
    "\"id\":\"ubuntu\"},\"kernel\":{\"name\":\"Linux\",\"release\":\"6.5.0-14-generic\"},"
    "\"arch\":\"x86_64\",\"uptime_seconds\":23911,\"boot_time\":\"2026-11-23T02:35:11Z\","
    "\"load_average\":{\"1m\":0.61,\"5m\":0.74,\"15m\":0.69},\"tasks_total\":311},"
    "\"cpu\":{\"model\":\"Intel(R) Core(TM) i5-1235U\",\"online_cpus\":4,\"configured_cpus\":4,"
    "\"usable_cpus\":4,\"cpuinfo_processors\":4,\"usage\":{\"sample_ms\":200,"
    "\"busy_percent\":6.4,\"user_percent\":4.48,\"system_percent\":1.92,\"iowait_percent\":0.21,"
    "\"steal_percent\":0.0,\"idle_percent\":93.39}},"
    "\"memory\":{\"total_bytes\":17179869184,\"free_bytes\":3550484398,"
    "\"available_bytes\":10651453194,\"buffers_bytes\":327155712,\"cached_bytes\":5325726597,"
    "\"shared_bytes\":640679936,\"swap_total_bytes\":2147483648,\"swap_free_bytes\":2083059138,"
    "\"used_bytes\":6528415990,\"used_percent\":38.0,\"swap_used_bytes\":64424510,"
    "\"swap_used_percent\":3.0},"
    "\"disks\":{\"mounts\":[{\"mount\":\"/\",\"device\":\"/dev/nvme0n1p2\",\"fstype\":\"ext4\","
    "\"size_bytes\":510980309401,\"used_bytes\":236072902943,\"available_bytes\":274907406458,"
    "\"used_percent\":46.2,\"inodes_total\":31187762,\"inodes_used\":966820,"
    "\"inodes_used_percent\":3.1,\"read_only\":false},{\"mount\":\"/boot/efi\","
    "\"device\":\"/dev/nvme0n1p1\",\"fstype\":\"vfat\",\"size_bytes\":536870912,"
    "\"used_bytes\":6442450,\"available_bytes\":530428462,\"used_percent\":1.2,"
    "\"inodes_total\":0,\"inodes_used\":0,\"inodes_used_percent\":0,\"read_only\":false}],"
    "\"skipped_pseudo\":27,\"truncated\":false},"
    "\"network\":{\"interfaces\":[{\"name\":\"lo\",\"up\":true,\"running\":true,"
    "\"loopback\":true,\"addresses\":[\"127.0.0.1/8\",\"::1/128\"],\"operstate\":\"unknown\","
    "\"mtu\":65536},{\"name\":\"wlp0s20f3\",\"up\":true,\"running\":true,\"loopback\":false,"
    "\"addresses\":[\"192.168.1.21/24\"],\"mac\":\"3c:22:fb:10:2a:91\",\"operstate\":\"up\","
    "\"mtu\":1500,\"rx_bytes\":3811220931,\"tx_bytes\":402118822,\"rx_errors\":0,"
    "\"tx_errors\":0}],\"default_routes\":[{\"family\":\"ipv4\",\"gateway\":\"192.168.1.1\","
    "\"interface\":\"wlp0s20f3\",\"metric\":600}],\"dns\":{\"nameservers\":[\"127.0.0.53\"],"
    "\"search\":[\"corp.example\"],\"options\":[\"edns0\"]},\"relay\":{\"configured\":false,"
    "\"status\":\"not configured\"}},"
    "\"processes\":{\"method\":\"sampled\",\"sample_ms\":201,\"process_count\":288,"
    "\"top_cpu\":[{\"pid\":1702,\"user\":\"alice\",\"name\":\"gnome-shell\",\"state\":\"S\","
    "\"cpu_percent\":3.98,\"rss_bytes\":432013312,\"command\":\"/usr/bin/gnome-shell\"},"
    "{\"pid\":4410,\"user\":\"alice\",\"name\":\"firefox\",\"state\":\"S\",\"cpu_percent\":2.99,"
    "\"rss_bytes\":1268776960,\"command\":\"/usr/lib/firefox/firefox\"}],"
    "\"top_memory\":[{\"pid\":4410,\"user\":\"alice\",\"name\":\"firefox\",\"state\":\"S\","
    "\"cpu_percent\":2.99,\"rss_bytes\":1268776960,\"command\":\"/usr/lib/firefox/firefox\"}]},"
    "\"services\":{\"status\":\"systemd running\",\"failed_count\":0,\"failed_units\":[]},"
    "\"sockets\":{\"listening\":[],\"listening_count\":0,\"truncated\":false},"
    "\"time\":{\"source\":\"timedatectl\",\"synchronised\":true,"
    "\"utc_time\":\"2026-11-23T08:14:02Z\",\"timezone\":\"Europe/Berlin\"},"
    "\"logs\":{\"source\":\"journalctl\",\"lines\":["
    "\"2026-11-23T08:01:02+0100 lt-0412 PackageKit[2231]: daemon start\","
    "\"2026-11-23T08:01:09+0100 lt-0412 systemd[1]: Started packagekit.service.\"],"
    "\"line_count\":2,\"truncated\":false}}}";

static inline json_t *diag_doc_new(void)
{
    json_error_t error;
    json_t *doc = json_loads(diag_doc_healthy, 0, &error);
    if (doc == NULL)
        fail_msg("the healthy document does not parse: %s at %d", error.text, error.position);
    return doc;
}

/* The node a path's parent names, and the last segment. */
static inline json_t *diag_doc_parent(json_t *doc, const char *path, char *last, size_t last_size)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", path);
    json_t *node = doc;
    char *segment = copy;
    for (char *dot = strchr(segment, '.'); dot != NULL; dot = strchr(segment, '.')) {
        *dot = '\0';
        node = json_is_array(node) ? json_array_get(node, strtoul(segment, NULL, 10))
                                   : json_object_get(node, segment);
        if (node == NULL)
            fail_msg("no %s in the document (path %s)", segment, path);
        segment = dot + 1;
    }
    snprintf(last, last_size, "%s", segment);
    return node;
}

/* Sets path to value (a JSON text, any type). */
static inline void diag_doc_set(json_t *doc, const char *path, const char *value_json)
{
    json_error_t error;
    char last[256];
    json_t *value = json_loads(value_json, JSON_DECODE_ANY, &error);
    if (value == NULL)
        fail_msg("bad value for %s: %s", path, value_json);
    json_t *parent = diag_doc_parent(doc, path, last, sizeof last);
    if (json_is_array(parent)) {
        size_t index = strtoul(last, NULL, 10);
        if (index == json_array_size(parent))
            assert_int_equal(json_array_append_new(parent, value), 0);
        else
            assert_int_equal(json_array_set_new(parent, index, value), 0);
    } else {
        assert_int_equal(json_object_set_new(parent, last, value), 0);
    }
}

static inline void diag_doc_remove(json_t *doc, const char *path)
{
    char last[256];
    json_t *parent = diag_doc_parent(doc, path, last, sizeof last);
    if (json_is_array(parent))
        assert_int_equal(json_array_remove(parent, strtoul(last, NULL, 10)), 0);
    else
        assert_int_equal(json_object_del(parent, last), 0);
}

/* The document's bytes as the agent would send them, and their evidence hash. */
static inline char *diag_doc_text(const json_t *doc, char hash[TL_SHA256_HEX_LEN])
{
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    if (hash != NULL)
        TL_ASSERT_OK(tl_sha256_hex(text, strlen(text), hash));
    return text;
}

static inline tl_classify_findings_t *diag_doc_findings(const json_t *doc)
{
    char why[256] = "";
    tl_classify_findings_t *findings = NULL;
    char *text = diag_doc_text(doc, NULL);
    int rc = tl_classify_findings_read(text, strlen(text), &findings, why, sizeof why);
    free(text);
    if (rc != 0)
        fail_msg("the document was refused: %s (%s)", why, tl_strerror(rc));
    return findings;
}

/* The first finding of a rule, or NULL. */
static inline const tl_classify_finding_t *diag_doc_finding(const tl_classify_findings_t *findings,
                                                            const char *rule)
{
    for (size_t i = 0; i < tl_classify_findings_count(findings); i++) {
        const tl_classify_finding_t *finding = tl_classify_findings_get(findings, i);
        if (strcmp(finding->rule, rule) == 0)
            return finding;
    }
    return NULL;
}

#endif
