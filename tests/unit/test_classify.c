/*
 * Classification of tickets (relay/desk/classify.h, docs/desk.md "Classification and
 * severity"): the 30 labelled tickets of tests/fixtures/desk/classify_tickets.json, each rule on
 * a case that fires it and a near miss that does not, the precedence between rules, citations
 * that are safe to show, and bad input refused with a reason and nothing changed.
 */
#include "diag_doc.h"

#include "proto/buf.h"
#include "proto/text.h"
#include "relay/desk/classify.h"

#include <jansson.h>
#include <stdlib.h>

#define HASH "5f1d2c3b4a5f1d2c3b4a5f1d2c3b4a5f1d2c3b4a5f1d2c3b4a5f1d2c3b4a5f1d"

static char why[512];

/* Classifies title and description with doc's findings (NULL: no diagnostics). */
static tl_classification_t classify(const char *title, const char *description, const json_t *doc)
{
    tl_classification_t out;
    tl_classify_findings_t *findings = doc ? diag_doc_findings(doc) : NULL;
    tl_classify_ticket_t ticket = {title, description, findings, HASH};
    why[0] = '\0';
    int rc = tl_classify_propose(&ticket, &out, why, sizeof why);
    tl_classify_findings_free(findings);
    if (rc != 0)
        fail_msg("classification refused: %s (%s)", why, tl_strerror(rc));
    return out;
}

static bool fired(const tl_classification_t *result, const char *rule)
{
    for (size_t i = 0; i < result->reason_count; i++)
        if (strcmp(result->reasons[i].rule, rule) == 0)
            return true;
    return false;
}

static void print_reasons(const tl_classification_t *result)
{
    print_message("    %s\n    %s\n", result->category_line, result->severity_line);
    for (size_t i = 0; i < result->reason_count; i++)
        print_message("    fired %s: %s\n", result->reasons[i].rule, result->reasons[i].evidence);
}

static void assert_proposal(const tl_classification_t *result, const char *category, int severity)
{
    if (strcmp(tl_classify_category_name(result->category), category) != 0 ||
        result->severity != severity) {
        print_reasons(result);
        fail_msg("expected %s S%d, got %s S%d", category, severity,
                 tl_classify_category_name(result->category), result->severity);
    }
}

/* --- the labelled fixture ------------------------------------------------------------------- */

static void test_fixture_at_least_27_of_30_right(void **state)
{
    (void)state;
    char path[512];
    json_error_t error;
    snprintf(path, sizeof path, "%s/tests/fixtures/desk/classify_tickets.json", TL_SOURCE_DIR);
    json_t *fixture = json_load_file(path, 0, &error);
    if (fixture == NULL)
        fail_msg("%s: %s at line %d", path, error.text, error.line);
    json_t *tickets = json_object_get(fixture, "tickets");
    assert_int_equal(json_array_size(tickets), 30);
    size_t right = 0;
    size_t index;
    json_t *item;
    json_array_foreach(tickets, index, item) {
        json_t *doc = json_object_get(item, "diagnostics");
        json_t *expected = json_object_get(item, "expected");
        const char *want_category = json_string_value(json_object_get(expected, "category"));
        int want_severity = 0;
        TL_ASSERT_OK(tl_classify_severity_parse(
            json_string_value(json_object_get(expected, "severity")), &want_severity));
        char hash[TL_SHA256_HEX_LEN];
        tl_classify_findings_t *findings = NULL;
        if (!json_is_null(doc)) {
            char *text = diag_doc_text(doc, hash);
            int rc = tl_classify_findings_read(text, strlen(text), &findings, why, sizeof why);
            free(text);
            if (rc != 0)
                fail_msg("%s: diagnostics refused: %s",
                         json_string_value(json_object_get(item, "id")), why);
        }
        tl_classify_ticket_t ticket = {json_string_value(json_object_get(item, "title")),
                                       json_string_value(json_object_get(item, "description")),
                                       findings, hash};
        tl_classification_t result;
        TL_ASSERT_OK(tl_classify_propose(&ticket, &result, why, sizeof why));
        tl_classify_findings_free(findings);
        bool ok = strcmp(tl_classify_category_name(result.category), want_category) == 0 &&
                  result.severity == want_severity;
        right += ok;
        if (!ok) {
            print_message("WRONG %s \"%s\": expected %s S%d, proposed %s S%d\n",
                          json_string_value(json_object_get(item, "id")), ticket.title,
                          want_category, want_severity, tl_classify_category_name(result.category),
                          result.severity);
            print_reasons(&result);
        }
    }
    print_message("%zu of 30 tickets right on both category and severity\n", right);
    json_decref(fixture);
    if (right < 27)
        fail_msg("only %zu of 30 right; at least 27 expected", right);
}

/* --- the rules on the user's words ---------------------------------------------------------- */

struct words_case {
    const char *rule;
    const char *text;      /* fires the rule */
    const char *near_miss; /* does not */
};

static const struct words_case words_cases[] = {
    {"words-ransomware", "A ransom note is on my screen", "A random note is on my screen"},
    {"words-credentials-given", "I typed my password into a fake page",
     "I typed my password wrong twice"},
    {"words-security", "I think I have a virus", "The antivirus wants an update"},
    {"words-many-users", "Nobody on our floor can print", "Nothing prints from my laptop"},
    {"words-cannot-work", "I can't work at all today", "I can work on other things"},
    {"words-login-blocked", "I can't log in this morning", "How do I log in to the portal?"},
    {"words-account", "Please change my password", "My passport photo is wrong"},
    {"words-network-down", "The wifi is down in room 3", "The wifi is slow in room 3"},
    {"words-network", "Question about the VPN", "Question about the vpnx tool"},
    {"words-printing", "The printer is jammed", "Sprint planning board is wrong"},
    {"words-disk-full", "My disk is full", "My disk is fine"},
    {"words-disk", "Low disk space", "Found a diskette"},
    {"words-slow", "Laptop is slow", "Laptop is slowish"},
    {"words-crash", "Excel crashes on start", "Excel updated fine"},
    {"words-software", "Install GIMP", "Instill calm"},
    {"words-hardware", "Keyboard keys stick", "Keynote slides"},
    {"words-clock", "The clock is 10 minutes off", "The clockwork toy"},
    {"words-workaround", "Printing from Excel fails but Word works",
     "Printing fails, nothing works"},
    {"words-request", "How do I set up the printer?", "The printer is jammed"},
};

static void test_each_words_rule_fires_on_its_words_and_not_on_a_near_miss(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof words_cases / sizeof words_cases[0]; i++) {
        const struct words_case *c = &words_cases[i];
        tl_classification_t hit = classify(c->text, "", NULL);
        tl_classification_t miss = classify(c->near_miss, "", NULL);
        if (!fired(&hit, c->rule)) {
            print_reasons(&hit);
            fail_msg("%s did not fire on \"%s\"", c->rule, c->text);
        }
        if (fired(&miss, c->rule)) {
            print_reasons(&miss);
            fail_msg("%s fired on \"%s\"", c->rule, c->near_miss);
        }
    }
}

static void test_words_are_case_blind_and_spell_out_contractions(void **state)
{
    (void)state;
    static const char *const blocked[] = {
        "I CAN'T LOG IN",   "i can\xe2\x80\x99t log in", "I cannot log in",   "I cant log in",
        "I can not log in", "Login doesn't work",        "Login doesnt work", "Login won't work",
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        tl_classification_t result = classify(blocked[i], NULL, NULL);
        if (!fired(&result, "words-login-blocked")) {
            print_reasons(&result);
            fail_msg("\"%s\" was not read as a blocked login", blocked[i]);
        }
    }
    /* A contraction is quoted as the user wrote it. */
    tl_classification_t quoted = classify("I can\xe2\x80\x99t log in", NULL, NULL);
    assert_string_equal(quoted.severity_line,
                        "S2: the user wrote \"log in\" and \"can\xe2\x80\x99t\"");
    /* "print*" matches the words that begin with "print", not those that hold it. */
    tl_classification_t printers = classify("Printers", NULL, NULL);
    tl_classification_t reprint = classify("Reprint it", NULL, NULL);
    assert_true(fired(&printers, "words-printing"));
    assert_false(fired(&reprint, "words-printing"));
}

struct collected {
    char words[16][32];
    size_t count;
};

static int collect(const char *word, size_t len, void *arg)
{
    struct collected *c = arg;
    if (c->count < 16)
        snprintf(c->words[c->count++], sizeof c->words[0], "%.*s", (int)len, word);
    return 0;
}

static void test_words_as_the_rules_see_them(void **state)
{
    (void)state;
    struct collected c = {0};
    const char *text = "Won't START: I/O\xe2\x80\x94"
                       "error, can\xe2\x80\x99t; Dr\xc3\xbc"
                       "cker";
    TL_ASSERT_OK(tl_classify_words(text, strlen(text), collect, &c));
    static const char *const want[] = {"will",
                                       "not",
                                       "start",
                                       "i",
                                       "o",
                                       "error",
                                       "can",
                                       "not",
                                       "dr\xc3\xbc"
                                       "cker"};
    assert_int_equal(c.count, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < c.count; i++)
        assert_string_equal(c.words[i], want[i]);
}

/* A phrase does not run across a sentence's end, nor from the title into the description. */
static void test_phrases_stay_inside_a_sentence(void **state)
{
    (void)state;
    tl_classification_t across = classify("Paper", "Jam. Full disk", NULL);
    assert_false(fired(&across, "words-disk-full"));
    tl_classification_t title_to_description = classify("My disk", "is full", NULL);
    assert_false(fired(&title_to_description, "words-disk-full"));
    tl_classification_t inside = classify("My disk is full", NULL, NULL);
    assert_true(fired(&inside, "words-disk-full"));
}

/* --- the rules on the diagnostics ----------------------------------------------------------- */

struct diag_case {
    const char *rule;
    const char *key; /* the finding's key */
    const char *set[3][2];
    const char *near_miss[3][2];
};

#define LOG(line) "[\"2026-11-23T08:01:02+0100 lt-0412 " line "\"]"
#define MOUNT(name, used, ro)                                                                      \
    "{\"mount\":\"" name "\",\"used_percent\":" #used                                              \
    ",\"inodes_used_percent\":2,\"read_only\":" ro "}"

static const struct diag_case diag_cases[] = {
    {"cryptominer",
     "kdevtmpfsi",
     {{"sections.processes.top_cpu.0.name", "\"kdevtmpfsi\""}},
     {{"sections.processes.top_cpu.0.name", "\"kdevtmpfsi2\""}}},
    {"failed-logins-many",
     "",
     {{"sections.logs.lines",
       "[\"sshd[1]: Failed password for root\",\"sshd[2]: Failed password for root\","
       "\"sshd[3]: Failed password for root\",\"sshd[4]: Failed password for root\","
       "\"sshd[5]: Invalid user admin\",\"sshd[6]: Invalid user admin\","
       "\"sshd[7]: Invalid user admin\",\"sshd[8]: Invalid user admin\","
       "\"sshd[9]: pam_unix(sshd:auth): authentication failure\","
       "\"sshd[10]: pam_unix(sshd:auth): authentication failure\"]"}},
     {{"sections.logs.lines",
       "[\"sshd[1]: Failed password for root\",\"sshd[2]: Failed password for root\"]"}}},
    {"failed-logins",
     "",
     {{"sections.logs.lines",
       LOG("gdm-password][3310]: pam_unix(gdm-password:auth): authentication failure")}},
     {{"sections.logs.lines", LOG("gdm-password][3310]: pam_unix(gdm-password:session): opened")}}},
    {"disk-io-errors",
     "",
     {{"sections.logs.lines", LOG("kernel: I/O error, dev sdb, sector 118813184 op 0x0:(READ)")}},
     {{"sections.logs.lines", LOG("kernel: sdb: cache data unavailable, I/O scheduler mq")}}},
    {"hardware-errors",
     "",
     {{"sections.logs.lines", LOG("kernel: mce: [Hardware Error]: Machine check events logged")}},
     {{"sections.logs.lines", LOG("kernel: microcode: updated early: 0xf0 -> 0xf4")}}},
    {"read-only-system",
     "/home",
     {{"sections.disks.mounts.2", MOUNT("/home", 40, "true")}},
     {{"sections.disks.mounts.2", MOUNT("/media/cdrom", 100, "true")}}},
    {"fs-errors",
     "",
     {{"sections.logs.lines", LOG("kernel: EXT4-fs error (device sda2): ext4_lookup:1855")}},
     {{"sections.logs.lines", LOG("kernel: EXT4-fs (sda2): mounted filesystem with ordered")}}},
    {"disk-full",
     "/var",
     {{"sections.disks.mounts.2", MOUNT("/var", 97.4, "false")}},
     {{"sections.disks.mounts.2", MOUNT("/var", 94.9, "false")}}},
    {"inodes-full",
     "/",
     {{"sections.disks.mounts.0.inodes_used_percent", "96"}},
     {{"sections.disks.mounts.0.inodes_used_percent", "94"}}},
    {"service-failed-storage",
     "home.mount",
     {{"sections.services.failed_units.0", "{\"unit\":\"home.mount\"}"}},
     {{"sections.services.failed_units.0", "{\"unit\":\"homed.service\"}"}}},
    {"oom-kills",
     "",
     {{"sections.logs.lines", LOG("kernel: Out of memory: Killed process 5893 (firefox)")}},
     {{"sections.logs.lines", LOG("java[4410]: java.lang.OutOfMemoryError: heap")}}},
    {"memory-exhausted",
     "",
     {{"sections.memory.used_percent", "97.6"}, {"sections.memory.swap_used_percent", "96"}},
     {{"sections.memory.used_percent", "97.6"}, {"sections.memory.swap_used_percent", "40"}}},
    {"no-interface-up",
     "",
     {{"sections.network.interfaces.1.up", "false"}},
     {{"sections.network.interfaces.1.operstate", "\"dormant\""}}},
    {"no-default-route",
     "",
     {{"sections.network.default_routes", "[]"}},
     {{"sections.network.default_routes.0.gateway", "null"}}},
    {"no-dns",
     "",
     {{"sections.network.dns.nameservers", "[]"}},
     {{"sections.network.dns.search", "[]"}}},
    {"service-failed-network",
     "NetworkManager.service",
     {{"sections.services.failed_units.0", "{\"unit\":\"NetworkManager.service\"}"}},
     {{"sections.services.failed_units.0", "{\"unit\":\"NetworkManager-dispatcher.service\"}"}}},
    {"service-failed-login",
     "sssd.service",
     {{"sections.services.failed_units.0", "{\"unit\":\"sssd.service\"}"}},
     {{"sections.services.failed_units.0", "{\"unit\":\"sssd-kcm.socket\"}"}}},
    {"boot-full",
     "/boot",
     {{"sections.disks.mounts.2", MOUNT("/boot", 97.8, "false")}},
     {{"sections.disks.mounts.2", MOUNT("/boot", 80, "false")}}},
    {"disk-nearly-full",
     "/home",
     {{"sections.disks.mounts.2", MOUNT("/home", 91.3, "false")}},
     {{"sections.disks.mounts.2", MOUNT("/home", 89.9, "false")}}},
    {"mount-unreadable",
     "/mnt/share",
     {{"sections.disks.unreadable",
       "[{\"mount\":\"/mnt/share\",\"error\":\"Stale file handle\"}]"}},
     {{"sections.disks.unreadable", "[]"}}},
    {"disks-timed-out",
     "",
     {{"sections.disks", "{\"error\":\"timed out after 5000 ms\"}"}},
     {{"sections.disks", "{\"error\":\"probe crashed with signal 11 (Segmentation fault)\"}"}}},
    {"service-failed-printing",
     "cups.service",
     {{"sections.services.failed_units.0", "{\"unit\":\"cups.service\"}"}},
     {{"sections.services.failed_units.0", "{\"unit\":\"cupsd-helper.service\"}"}}},
    {"service-failed-security",
     "apparmor.service",
     {{"sections.services.failed_units.0", "{\"unit\":\"apparmor.service\"}"}},
     {{"sections.services.failed_units.0", "{\"unit\":\"apport.service\"}"}}},
    {"service-failed",
     "getty@.service",
     {{"sections.services.failed_units.0", "{\"unit\":\"getty@tty1.service\"}"}},
     {{"sections.services.failed_units", "[]"}}},
    {"segfault",
     "thunderbird",
     {{"sections.logs.lines",
       LOG("kernel: thunderbird[7731]: segfault at 0 ip 00007f3a1c2b1e40 error 4 in libxul.so")}},
     {{"sections.logs.lines", LOG("kernel: thunderbird[7731]: started")}}},
    {"usb-errors",
     "",
     {{"sections.logs.lines", LOG("kernel: usb 1-2: device descriptor read/64, error -71")}},
     {{"sections.logs.lines", LOG("kernel: usb 1-2: USB disconnect, device number 5")}}},
    {"overheating",
     "",
     {{"sections.logs.lines", LOG("kernel: CPU0: Core temperature above threshold, cpu clock "
                                  "throttled")}},
     {{"sections.logs.lines", LOG("kernel: CPU0: Core temperature/speed normal")}}},
    {"memory-high",
     "",
     {{"sections.memory.used_percent", "92"}},
     {{"sections.memory.used_percent", "89"}}},
    {"cpu-hog",
     "tracker-miner-f",
     {{"sections.processes.top_cpu.0", "{\"name\":\"tracker-miner-f\",\"cpu_percent\":98.6}"}},
     {{"sections.processes.top_cpu.0", "{\"name\":\"tracker-miner-f\",\"cpu_percent\":80}"}}},
    {"cpu-busy",
     "",
     {{"sections.cpu.usage.busy_percent", "97"}},
     {{"sections.cpu.usage.busy_percent", "85"}}},
    {"load-high",
     "",
     {{"sections.system.load_average.5m", "8.5"}},
     {{"sections.system.load_average.5m", "7.9"}}},
    {"io-wait",
     "",
     {{"sections.cpu.usage.iowait_percent", "38.5"}},
     {{"sections.cpu.usage.iowait_percent", "20"}}},
    {"clock-unsynced",
     "",
     {{"sections.time.synchronised", "false"}},
     {{"sections.time.source", "\"adjtimex\""}}},
};

const char *const diag_case_rules[] = {
    "cryptominer",
    "failed-logins-many",
    "failed-logins",
    "disk-io-errors",
    "hardware-errors",
    "read-only-system",
    "fs-errors",
    "disk-full",
    "inodes-full",
    "service-failed-storage",
    "oom-kills",
    "memory-exhausted",
    "no-interface-up",
    "no-default-route",
    "no-dns",
    "service-failed-network",
    "service-failed-login",
    "boot-full",
    "disk-nearly-full",
    "mount-unreadable",
    "disks-timed-out",
    "service-failed-printing",
    "service-failed-security",
    "service-failed",
    "segfault",
    "usb-errors",
    "overheating",
    "memory-high",
    "cpu-hog",
    "cpu-busy",
    "load-high",
    "io-wait",
    "clock-unsynced",
    NULL,
};

/* Every rule of the table has its case here: a new rule cannot come without one. */
static void test_every_rule_has_a_case(void **state)
{
    (void)state;
    tl_buf_t *table = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_classify_rules_markdown(table));
    TL_ASSERT_OK(tl_buf_put_u8(table, 0));
    size_t rules = 0;
    for (const char *p = (const char *)tl_buf_data(table); p != NULL && *p != '\0';) {
        const char *next = strchr(p, '\n');
        if (strncmp(p, "| `", 3) == 0) {
            char id[64];
            const char *end = strchr(p + 3, '`');
            assert_non_null(end);
            snprintf(id, sizeof id, "%.*s", (int)(end - p - 3), p + 3);
            rules++;
            bool covered = false;
            for (size_t i = 0; i < sizeof words_cases / sizeof words_cases[0] && !covered; i++)
                covered = strcmp(words_cases[i].rule, id) == 0;
            for (size_t i = 0; diag_case_rules[i] != NULL && !covered; i++)
                covered = strcmp(diag_case_rules[i], id) == 0;
            if (!covered)
                fail_msg("rule %s has no case in test_classify.c", id);
        }
        p = next ? next + 1 : NULL;
    }
    assert_true(rules > 40);
    tl_buf_free(table);
}

static json_t *changed(const char *const set[3][2])
{
    json_t *doc = diag_doc_new();
    for (int i = 0; i < 3 && set[i][0] != NULL; i++)
        diag_doc_set(doc, set[i][0], set[i][1]);
    return doc;
}

static void test_a_healthy_machine_has_no_findings(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    for (size_t i = 0; i < tl_classify_findings_count(findings); i++)
        print_message("finding %s: %s\n", tl_classify_findings_get(findings, i)->rule,
                      tl_classify_findings_get(findings, i)->fact);
    assert_int_equal(tl_classify_findings_count(findings), 0);
    tl_classify_findings_free(findings);
    json_decref(doc);
}

static void test_each_diagnostics_rule_fires_on_its_condition_and_not_on_a_near_miss(void **state)
{
    (void)state;
    assert_int_equal(sizeof diag_cases / sizeof diag_cases[0],
                     sizeof diag_case_rules / sizeof diag_case_rules[0] - 1);
    for (size_t i = 0; i < sizeof diag_cases / sizeof diag_cases[0]; i++) {
        const struct diag_case *c = &diag_cases[i];
        assert_string_equal(c->rule, diag_case_rules[i]);
        json_t *hit_doc = changed(c->set);
        json_t *miss_doc = changed(c->near_miss);
        tl_classify_findings_t *hit = diag_doc_findings(hit_doc);
        tl_classify_findings_t *miss = diag_doc_findings(miss_doc);
        const tl_classify_finding_t *finding = diag_doc_finding(hit, c->rule);
        if (finding == NULL)
            fail_msg("%s did not fire on %s = %s", c->rule, c->set[0][0], c->set[0][1]);
        if (strcmp(finding->key, c->key) != 0)
            fail_msg("%s: key \"%s\", expected \"%s\"", c->rule, finding->key, c->key);
        if (diag_doc_finding(miss, c->rule) != NULL)
            fail_msg("%s fired on the near miss %s = %s", c->rule, c->near_miss[0][0],
                     c->near_miss[0][1]);
        tl_classify_findings_free(hit);
        tl_classify_findings_free(miss);
        json_decref(hit_doc);
        json_decref(miss_doc);
    }
}

static void test_findings_come_in_table_order(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.time.synchronised", "false");
    diag_doc_set(doc, "sections.disks.mounts.2", MOUNT("/var", 97, "false"));
    diag_doc_set(doc, "sections.processes.top_cpu.0.name", "\"xmrig\"");
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    assert_int_equal(tl_classify_findings_count(findings), 3);
    assert_string_equal(tl_classify_findings_get(findings, 0)->rule, "cryptominer");
    assert_string_equal(tl_classify_findings_get(findings, 1)->rule, "disk-full");
    assert_string_equal(tl_classify_findings_get(findings, 2)->rule, "clock-unsynced");
    assert_null(tl_classify_findings_get(findings, 3));
    tl_classify_findings_free(findings);
    json_decref(doc);
}

/* --- precedence and citations --------------------------------------------------------------- */

static void test_the_citation_names_the_evidence_and_its_hash(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.disks.mounts.2", MOUNT("/var", 97.4, "false"));
    tl_classification_t result = classify("Computer acting weird", NULL, doc);
    assert_proposal(&result, "disk", 2);
    assert_string_equal(result.severity_line, "S2: /var 97% full, diagnostics sha256:" HASH);
    assert_string_equal(result.category_line, "disk: /var 97% full, diagnostics sha256:" HASH);
    assert_string_equal(result.severity_rule, "disk-full");
    json_decref(doc);
}

static void test_the_most_severe_rule_decides(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.services.failed_units.0", "{\"unit\":\"NetworkManager.service\"}");
    /* The user speaks of printing (S3); the machine has no network (S2). */
    tl_classification_t result = classify("Cannot print", "The printer does nothing", doc);
    assert_proposal(&result, "network", 2);
    assert_string_equal(result.reasons[0].rule, "service-failed-network");
    json_decref(doc);
}

static void test_at_equal_severity_the_users_words_come_before_the_diagnostics(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.disks.mounts.2", MOUNT("/home", 91, "false"));
    tl_classification_t result = classify("Thunderbird keeps crashing", NULL, doc);
    assert_proposal(&result, "application", 3);
    assert_true(fired(&result, "disk-nearly-full"));
    json_decref(doc);
}

static void test_among_words_more_matched_words_win_then_the_table_order(void **state)
{
    (void)state;
    /* network: "network"; printing: "printer", "jam": printing has more words. */
    tl_classification_t more = classify("Network printer has a paper jam", NULL, NULL);
    assert_proposal(&more, "printing", 3);
    /* A word in the title counts twice: the title is what the user says the problem is. */
    tl_classification_t title =
        classify("Clock is wrong", "Now some websites show certificate errors", NULL);
    assert_proposal(&title, "other", 3);
    tl_classification_t description =
        classify("Help", "The clock is wrong, now some websites show certificate errors", NULL);
    assert_proposal(&description, "network", 3);
    /* disk: "drive"; hardware: "usb": one word each, and words-disk comes first. */
    tl_classification_t tie = classify("USB drive", NULL, NULL);
    assert_proposal(&tie, "disk", 3);
}

static void test_a_workaround_lowers_the_users_s2_to_s3(void **state)
{
    (void)state;
    tl_classification_t plain = classify("Can't log in to the HR portal", NULL, NULL);
    assert_proposal(&plain, "account", 2);
    tl_classification_t workaround =
        classify("Can't log in to the HR portal", "The same password works everywhere else", NULL);
    assert_proposal(&workaround, "account", 3);
    assert_string_equal(workaround.severity_rule, "words-workaround");
    assert_non_null(strstr(workaround.severity_line, "a workaround, lowered from S2"));
}

static void test_the_users_words_never_lower_below_the_diagnostics_nor_an_s1(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.network.default_routes", "[]");
    tl_classification_t result = classify("No internet", "The phone still works", doc);
    assert_proposal(&result, "network", 2);
    tl_classification_t ransom = classify("Ransom note", "The other laptop still works", NULL);
    assert_proposal(&ransom, "security", 1);
    json_decref(doc);
    /* A request lowers S3 from words, not S3 from the diagnostics. */
    json_t *hot = diag_doc_new();
    diag_doc_set(hot, "sections.cpu.usage.busy_percent", "99");
    tl_classification_t question = classify("How do I check the CPU?", NULL, hot);
    assert_int_equal(question.severity, 3);
    json_decref(hot);
}

static void test_a_request_is_s4(void **state)
{
    (void)state;
    tl_classification_t install = classify("Request: install GIMP", "Could you please?", NULL);
    assert_proposal(&install, "application", 4);
    assert_non_null(strstr(install.severity_line, "a request, lowered from S3"));
}

static void test_with_no_rule_the_ticket_is_other_s3(void **state)
{
    (void)state;
    tl_classification_t result = classify("Help", "Please call me", NULL);
    assert_proposal(&result, "other", 3);
    assert_string_equal(result.category_line, "other: no rule named a category");
    assert_string_equal(result.severity_line, "S3: no rule set a severity (the default)");
    assert_string_equal(result.category_rule, "default");
    assert_int_equal(result.reason_count, 0);
}

static void test_many_users_make_it_s1_whatever_the_category(void **state)
{
    (void)state;
    tl_classification_t result =
        classify("Shared drive is full", "Nobody in accounting can save anything", NULL);
    assert_proposal(&result, "disk", 1);
    assert_string_equal(result.severity_rule, "words-many-users");
    assert_string_equal(result.severity_line, "S1: the user wrote \"Nobody\"");
}

/* --- text that is shown --------------------------------------------------------------------- */

static void assert_line_is_safe(const char *line)
{
    size_t len = strlen(line);
    assert_true(len < TL_CLASSIFY_LINE_SIZE);
    if (!tl_text_utf8_valid(line, len) || !tl_text_printable(line, len, TL_TEXT_LINE))
        fail_msg("line not safe to show: %s", line);
}

static void test_the_users_words_are_quoted_escaped(void **state)
{
    (void)state;
    tl_classification_t result = classify("Locked\a\x1b out",
                                          "\x9b"
                                          "2J",
                                          NULL);
    assert_line_is_safe(result.category_line);
    assert_line_is_safe(result.severity_line);
    assert_string_equal(result.severity_line,
                        "S2: the user wrote \"Locked\\x07\\x1b out\" and \"Locked\"");
}

static void test_the_machines_words_are_quoted_escaped_and_clipped(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    char mount[300];
    memset(mount, 'x', sizeof mount);
    memcpy(mount, "/mnt/\\u001b[2J", 14);
    mount[sizeof mount - 1] = '\0';
    char value[400];
    snprintf(value, sizeof value, "{\"mount\":\"%s\",\"used_percent\":99,\"read_only\":false}",
             mount);
    diag_doc_set(doc, "sections.disks.mounts.2", value);
    tl_classification_t result = classify("", NULL, doc);
    assert_line_is_safe(result.category_line);
    assert_line_is_safe(result.severity_line);
    assert_non_null(strstr(result.severity_line, "S2: /mnt/\\x1b[2Jxxx"));
    assert_non_null(strstr(result.severity_line, TL_TEXT_ELLIPSIS " 99% full, diagnostics"));
    json_decref(doc);
}

static void test_text_that_is_not_utf8_is_read_and_shown_escaped(void **state)
{
    (void)state;
    tl_classification_t result = classify("Dr\xfc"
                                          "cker jammed \xff\xfe",
                                          "printer \xc3", NULL);
    assert_proposal(&result, "printing", 3);
    assert_line_is_safe(result.category_line);
    assert_string_equal(result.category_line, "printing: the user wrote \"jammed\"");
}

static void test_huge_texts_are_refused_and_change_nothing(void **state)
{
    (void)state;
    char *title = malloc(TL_CLASSIFY_TEXT_MAX + 2);
    assert_non_null(title);
    memset(title, 'a', TL_CLASSIFY_TEXT_MAX + 1);
    title[TL_CLASSIFY_TEXT_MAX + 1] = '\0';
    tl_classification_t out, before;
    memset(&out, 0x5a, sizeof out);
    before = out;
    tl_classify_ticket_t ticket = {title, NULL, NULL, NULL};
    TL_ASSERT_RC(TL_EINVAL, tl_classify_propose(&ticket, &out, why, sizeof why));
    assert_string_equal(why,
                        "the title is 65537 bytes, more than the 65536 a classification reads");
    assert_memory_equal(&out, &before, sizeof out);
    ticket = (tl_classify_ticket_t){"Printer", title, NULL, NULL};
    TL_ASSERT_RC(TL_EINVAL, tl_classify_propose(&ticket, &out, why, sizeof why));
    assert_non_null(strstr(why, "the description is 65537 bytes"));
    /* At the limit it is read, words at its very end included. */
    memcpy(title + TL_CLASSIFY_TEXT_MAX - 11, " locked out", 11);
    title[TL_CLASSIFY_TEXT_MAX] = '\0';
    ticket = (tl_classify_ticket_t){title, title, NULL, NULL};
    TL_ASSERT_OK(tl_classify_propose(&ticket, &out, why, sizeof why));
    assert_proposal(&out, "account", 2);
    assert_line_is_safe(out.severity_line);
    free(title);
}

static void test_a_bad_evidence_hash_is_refused(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    tl_classification_t out;
    static const char *const bad[] = {
        NULL, "", "abc", HASH "0",
        "5F1D2C3B4A5F1D2C3B4A5F1D2C3B4A5F1D2C3B4A5F1D2C3B4A5F1D2C3B4A5F1D"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_classify_ticket_t ticket = {"Printer", NULL, findings, bad[i]};
        TL_ASSERT_RC(TL_EINVAL, tl_classify_propose(&ticket, &out, why, sizeof why));
        assert_string_equal(
            why, "the diagnostics' evidence hash is not 64 lowercase hexadecimal digits");
    }
    /* Without diagnostics no hash is needed. */
    tl_classify_ticket_t ticket = {"Printer", NULL, NULL, "abc"};
    TL_ASSERT_OK(tl_classify_propose(&ticket, &out, why, sizeof why));
    tl_classify_findings_free(findings);
    json_decref(doc);
}

/* --- bad diagnostics ------------------------------------------------------------------------ */

static void assert_refused(const char *json, size_t len, const char *reason)
{
    tl_classify_findings_t *sentinel = (tl_classify_findings_t *)&why;
    tl_classify_findings_t *findings = sentinel;
    why[0] = '\0';
    TL_ASSERT_RC(TL_EINVAL, tl_classify_findings_read(json, len, &findings, why, sizeof why));
    assert_ptr_equal(findings, sentinel);
    if (strstr(why, reason) == NULL)
        fail_msg("the reason \"%s\" does not say \"%s\"", why, reason);
}

static void assert_changed_refused(const char *path, const char *value, const char *reason)
{
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, path, value);
    char *text = diag_doc_text(doc, NULL);
    assert_refused(text, strlen(text), reason);
    free(text);
    json_decref(doc);
}

static void test_diagnostics_that_are_not_a_document_are_refused(void **state)
{
    (void)state;
    assert_refused("", 0, "the diagnostics are empty");
    assert_refused("{\"schema\":1,", 12, "the diagnostics are not JSON: ");
    assert_refused("{} {}", 5, "end of file expected");
    assert_refused("[1,2]", 5, "the diagnostics are not a JSON object");
    assert_refused("\"disks\"", 7, "the diagnostics are not a JSON object");
    assert_refused("{\"sections\":{}}", 15, "the diagnostics have no schema number");
    assert_refused("{\"schema\":\"1\",\"sections\":{}}", 28, "schema is not a whole number");
    assert_refused("{\"schema\":2,\"sections\":{}}", 26,
                   "the diagnostics' schema 2 is not one this relay reads (1)");
    assert_refused("{\"schema\":1}", 12, "the diagnostics have no \"sections\"");
    assert_refused("{\"schema\":1,\"sections\":[]}", 26, "\"sections\" is not an object");
    assert_refused("{\"schema\":1,\"schema\":1,\"sections\":{}}", 36, "duplicate object key");
    char *big = calloc(1, TL_CLASSIFY_DIAGNOSTICS_MAX + 1);
    assert_non_null(big);
    assert_refused(big, TL_CLASSIFY_DIAGNOSTICS_MAX + 1,
                   "the diagnostics are 4194305 bytes, more than the 4194304");
    free(big);
}

static void test_fields_of_the_wrong_type_or_range_are_refused_by_name(void **state)
{
    (void)state;
    assert_changed_refused("sections.disks", "\"full\"",
                           "diagnostics section \"disks\" is not an object");
    assert_changed_refused("sections.disks.mounts", "{}", "diagnostics disks.mounts is not a list");
    assert_changed_refused("sections.disks.mounts.1", "7",
                           "diagnostics disks.mounts[1] is not an object");
    assert_changed_refused("sections.disks.mounts.0.used_percent", "\"97\"",
                           "diagnostics disks.mounts[0].used_percent is not a number");
    assert_changed_refused("sections.disks.mounts.0.used_percent", "150",
                           "diagnostics disks.mounts[0].used_percent is 150, outside 0..100");
    assert_changed_refused("sections.disks.mounts.0.used_percent", "-1", "is -1, outside 0..100");
    assert_changed_refused("sections.disks.mounts.0.read_only", "\"no\"",
                           "disks.mounts[0].read_only is not true or false");
    assert_changed_refused("sections.services.failed_units.0", "{\"unit\":5}",
                           "diagnostics services.failed_units[0].unit is not a string");
    assert_changed_refused("sections.logs.lines.1", "7",
                           "diagnostics logs.lines[1] is not a string");
    assert_changed_refused("sections.memory.total_bytes", "1e300",
                           "diagnostics memory.total_bytes is 1e+300, outside 0..9e+18");
    assert_changed_refused("sections.cpu.usage", "[]", "diagnostics cpu.usage is not an object");
    assert_changed_refused("sections.network.dns.nameservers.0", "1",
                           "network.dns.nameservers[0] is not a string");
    assert_changed_refused("sections.time.synchronised", "1",
                           "diagnostics time.synchronised is not true or false");
    assert_changed_refused("sections.logs", "{\"error\":42}",
                           "section \"logs\" has an error that is not a string");
}

static void test_missing_sections_and_fields_are_unknown_not_errors(void **state)
{
    (void)state;
    tl_classify_findings_t *findings = NULL;
    const char *bare = "{\"schema\":1,\"sections\":{}}";
    TL_ASSERT_OK(tl_classify_findings_read(bare, strlen(bare), &findings, why, sizeof why));
    assert_int_equal(tl_classify_findings_count(findings), 0);
    tl_classify_findings_free(findings);

    /* A document from an agent without some probes: what is there still counts. */
    json_t *doc = diag_doc_new();
    diag_doc_remove(doc, "sections.network");
    diag_doc_remove(doc, "sections.logs");
    diag_doc_remove(doc, "sections.disks.mounts.0.used_percent");
    diag_doc_set(doc, "sections.disks.mounts.2", MOUNT("/var", 99, "false"));
    diag_doc_set(doc, "sections.services", "{\"error\":\"systemctl --failed: exit status 1\"}");
    findings = diag_doc_findings(doc);
    assert_int_equal(tl_classify_findings_count(findings), 1);
    assert_string_equal(tl_classify_findings_get(findings, 0)->rule, "disk-full");
    tl_classify_findings_free(findings);
    json_decref(doc);
}

static void test_strings_of_any_size_are_read_and_clipped(void **state)
{
    (void)state;
    /* A log line of 1 MiB, a failed unit named by 100 KiB: read whole, shown clipped. */
    json_t *doc = diag_doc_new();
    size_t line_len = 1 << 20;
    char *line = malloc(line_len + 1);
    assert_non_null(line);
    memset(line, 'y', line_len);
    memcpy(line + line_len - 20, " I/O error, dev sda ", 20);
    line[line_len] = '\0';
    json_t *lines = json_array();
    json_array_append_new(lines, json_string(line));
    json_object_set_new(json_object_get(json_object_get(doc, "sections"), "logs"), "lines", lines);
    char *unit = malloc(100001);
    assert_non_null(unit);
    memset(unit, 'u', 100000);
    unit[100000] = '\0';
    json_t *units = json_array();
    json_array_append_new(units, json_pack("{ss}", "unit", unit));
    json_object_set_new(json_object_get(json_object_get(doc, "sections"), "services"),
                        "failed_units", units);
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    const tl_classify_finding_t *io = diag_doc_finding(findings, "disk-io-errors");
    const tl_classify_finding_t *failed = diag_doc_finding(findings, "service-failed");
    assert_non_null(io);
    assert_non_null(failed);
    assert_int_equal(strlen(failed->key), 100000);
    assert_line_is_safe(io->fact);
    assert_line_is_safe(failed->fact);
    assert_true(strlen(failed->fact) < 200);
    tl_classify_findings_free(findings);
    tl_classification_t result = classify("slow", NULL, doc);
    assert_proposal(&result, "hardware", 2);
    assert_line_is_safe(result.severity_line);
    free(unit);
    free(line);
    json_decref(doc);
}

/* --- names and the docs --------------------------------------------------------------------- */

static void test_categories_and_severities_by_name(void **state)
{
    (void)state;
    for (int i = 0; i < TL_CATEGORY_COUNT; i++) {
        enum tl_category category;
        TL_ASSERT_OK(tl_classify_category_parse(tl_classify_category_name(i), &category));
        assert_int_equal(category, i);
    }
    enum tl_category category = TL_CATEGORY_OTHER;
    TL_ASSERT_RC(TL_EINVAL, tl_classify_category_parse("Disk", &category));
    TL_ASSERT_RC(TL_EINVAL, tl_classify_category_parse(NULL, &category));
    assert_null(tl_classify_category_name(TL_CATEGORY_NONE));
    assert_null(tl_classify_category_name(TL_CATEGORY_COUNT));
    int severity = 0;
    TL_ASSERT_OK(tl_classify_severity_parse("s2", &severity));
    assert_int_equal(severity, 2);
    static const char *const bad[] = {"S0", "S5", "S", "S12", "2", "", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_classify_severity_parse(bad[i], &severity));
}

static void test_docs_show_the_rules_as_the_code_has_them(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/docs/desk.md", TL_SOURCE_DIR);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        fail_msg("cannot open %s", path);
    static char doc[1 << 20];
    size_t len = fread(doc, 1, sizeof doc - 1, file);
    fclose(file);
    doc[len] = '\0';
    const char *begin_mark = "<!-- classify rules: made by tl_classify_rules_markdown -->\n";
    const char *end_mark = "<!-- end of classify rules -->";
    char *begin = strstr(doc, begin_mark);
    char *end = begin ? strstr(begin, end_mark) : NULL;
    if (begin == NULL || end == NULL)
        fail_msg("docs/desk.md has no rules table between its markers");
    begin += strlen(begin_mark);
    *end = '\0';
    tl_buf_t *table = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_classify_rules_markdown(table));
    TL_ASSERT_OK(tl_buf_put_u8(table, 0));
    const char *want = (const char *)tl_buf_data(table);
    if (strcmp(begin, want) != 0) {
        size_t line = 1;
        size_t i = 0;
        for (; begin[i] != '\0' && begin[i] == want[i]; i++)
            line += begin[i] == '\n';
        fail_msg("docs/desk.md's rules table differs from the code's at its line %zu:\n"
                 "docs: %.200s\ncode: %.200s",
                 line, begin + i, want + i);
    }
    tl_buf_free(table);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fixture_at_least_27_of_30_right),
    cmocka_unit_test(test_each_words_rule_fires_on_its_words_and_not_on_a_near_miss),
    cmocka_unit_test(test_every_rule_has_a_case),
    cmocka_unit_test(test_words_are_case_blind_and_spell_out_contractions),
    cmocka_unit_test(test_words_as_the_rules_see_them),
    cmocka_unit_test(test_phrases_stay_inside_a_sentence),
    cmocka_unit_test(test_a_healthy_machine_has_no_findings),
    cmocka_unit_test(test_each_diagnostics_rule_fires_on_its_condition_and_not_on_a_near_miss),
    cmocka_unit_test(test_findings_come_in_table_order),
    cmocka_unit_test(test_the_citation_names_the_evidence_and_its_hash),
    cmocka_unit_test(test_the_most_severe_rule_decides),
    cmocka_unit_test(test_at_equal_severity_the_users_words_come_before_the_diagnostics),
    cmocka_unit_test(test_among_words_more_matched_words_win_then_the_table_order),
    cmocka_unit_test(test_a_workaround_lowers_the_users_s2_to_s3),
    cmocka_unit_test(test_the_users_words_never_lower_below_the_diagnostics_nor_an_s1),
    cmocka_unit_test(test_a_request_is_s4),
    cmocka_unit_test(test_with_no_rule_the_ticket_is_other_s3),
    cmocka_unit_test(test_many_users_make_it_s1_whatever_the_category),
    cmocka_unit_test(test_the_users_words_are_quoted_escaped),
    cmocka_unit_test(test_the_machines_words_are_quoted_escaped_and_clipped),
    cmocka_unit_test(test_text_that_is_not_utf8_is_read_and_shown_escaped),
    cmocka_unit_test(test_huge_texts_are_refused_and_change_nothing),
    cmocka_unit_test(test_a_bad_evidence_hash_is_refused),
    cmocka_unit_test(test_diagnostics_that_are_not_a_document_are_refused),
    cmocka_unit_test(test_fields_of_the_wrong_type_or_range_are_refused_by_name),
    cmocka_unit_test(test_missing_sections_and_fields_are_unknown_not_errors),
    cmocka_unit_test(test_strings_of_any_size_are_read_and_clipped),
    cmocka_unit_test(test_categories_and_severities_by_name),
    cmocka_unit_test(test_docs_show_the_rules_as_the_code_has_them),
};

TL_TEST_MAIN(tests)
