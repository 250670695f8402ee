/*
 * Fuzz target for the agent's consent inputs (agent/consent.c,
 * docs/consent.md): the unattended policy file and the relay's
 * session.request body.
 *
 * The first input byte picks what the rest is:
 *   - even: a policy file, after 8 bytes that make a question to match it
 *     against (role, scopes, weekday, hour, minute, asked duration). A policy
 *     that parses must keep the documented bounds: an integer duration is
 *     accepted only from 1 s to a day (and a consent timeout from 1 s), a
 *     match grants at most what was asked and at most a day, and only for a
 *     session role with at least one scope; a rule that grants one command
 *     at a time ("commands") never does so for a shell, and a command is
 *     allowed only under such a rule. One that does not parse must say why.
 *   - odd: a session.request body as JSON. One that validates must hold
 *     what docs/protocol.md §7.6 allows: names without control characters
 *     and free text (the reason) without NUL, each within its length, a known
 *     role, known distinct scopes, a duration from 60 s to a day.
 */
#include "agent/consent.h"
#include "proto/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const roles[] = {"tier1", "tier2", "tier3", "tier4", "auditor", "admin", "x"};

/* A duration member given as an integer must be from 1 to max seconds. */
static void check_integer_duration(json_t *value, json_int_t max)
{
    if (json_is_integer(value) &&
        (json_integer_value(value) < 1 || json_integer_value(value) > max))
        abort();
}

static void check_policy(const uint8_t *data, size_t size)
{
    uint8_t question[8] = {0};
    size_t head = size < sizeof question ? size : sizeof question;
    memcpy(question, data, head);
    data += head;
    size -= head;

    char problem[256];
    problem[0] = '\0';
    int err = 1;
    tl_policy_t *policy = tl_policy_parse((const char *)data, size, &err, problem, sizeof problem);
    if (policy == NULL) {
        if ((err != TL_EINVAL && err != TL_ENOMEM) || problem[0] == '\0')
            abort();
        return;
    }
    if (err != 0)
        abort();

    /* What was accepted, read again as plain JSON: the integer durations. */
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (doc == NULL)
        abort();
    check_integer_duration(json_object_get(doc, "consent_timeout"), 86400);
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(doc, "unattended"), i, rule)
        check_integer_duration(json_object_get(rule, "max_duration"), 86400);
    json_decref(doc);
    uint64_t timeout = tl_policy_consent_timeout_ms(policy);
    if (timeout != 0 &&
        (timeout < TL_CONSENT_MIN_TIMEOUT_MS || timeout > TL_CONSENT_MAX_TIMEOUT_MS))
        abort();

    const char *role = roles[question[0] % (sizeof roles / sizeof roles[0])];
    unsigned scopes = question[1] & 0x3f;
    struct tm local = {0};
    local.tm_wday = question[2] % 8; /* 7: out of range, must not match */
    local.tm_hour = question[3] % 24;
    local.tm_min = question[4] % 60;
    uint32_t asked = (uint32_t)question[5] << 16 | (uint32_t)question[6] << 8 | question[7];
    uint32_t granted = UINT32_MAX;
    int rc = tl_policy_match(policy, role, scopes, &local, asked, &granted);
    if (rc == 0) {
        if (granted > asked || granted > TL_CONSENT_MAX_DURATION_S || scopes == 0 ||
            local.tm_wday > 6 || strcmp(role, "auditor") == 0 || strcmp(role, "admin") == 0 ||
            strcmp(role, "x") == 0)
            abort();
    } else if (rc != TL_EDENIED || granted != UINT32_MAX) {
        abort();
    }
    /* One command at a time: never for a shell, and a command is allowed only under a rule
     * that grants this request one by one and lists it; an empty command never. */
    int each = -1;
    uint32_t granted_each = 0;
    int decided = tl_policy_decide(policy, role, scopes, &local, asked, &granted_each, &each);
    if (decided != rc || (decided == 0 && (each < 0 || granted_each != granted)) ||
        (decided == 0 && each == 1 && (scopes & TL_SCOPE_SHELL)))
        abort();
    static const char *const commands[] = {"df", "/usr/bin/journalctl", "runbook:flush-dns", ""};
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        int allowed = tl_policy_command_allowed(policy, role, scopes, &local, commands[c]);
        if (allowed != 0 && allowed != TL_EDENIED)
            abort();
        if (allowed == 0 && (decided != 0 || each != 1 || commands[c][0] == '\0'))
            abort();
    }
    tl_policy_free(policy);
}

/* A name: 1..max bytes, no control character. Free text: 0..max bytes, anything but NUL (it
 * is kept as it came and shown escaped, proto/text.h); strlen() already stops at a NUL. */
static void check_text(const char *text, size_t max, int free_text)
{
    size_t len = strlen(text);
    if (len > max || (len == 0 && !free_text))
        abort();
    for (size_t i = 0; i < len && !free_text; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            abort();
    }
}

static void check_request(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (body == NULL)
        return;
    tl_consent_request_t request;
    char message[256];
    message[0] = '\0';
    int rc = tl_consent_request_parse(body, &request, message, sizeof message);
    if (rc == 0) {
        check_text(request.ticket, TL_CONSENT_MAX_NAME, 0);
        check_text(request.technician, TL_CONSENT_MAX_NAME, 0);
        check_text(request.reason, TL_CONSENT_MAX_REASON, 1);
        int known = 0;
        for (size_t i = 0; i + 1 < sizeof roles / sizeof roles[0]; i++)
            known |= strcmp(request.role, roles[i]) == 0;
        if (!known || request.scopes == 0 || (request.scopes & ~0x3fu) != 0 ||
            request.duration_s < TL_CONSENT_MIN_DURATION_S ||
            request.duration_s > TL_CONSENT_MAX_DURATION_S)
            abort();
        /* The scopes, named back, are the ones asked for, each once. */
        json_t *names = tl_scope_names(request.scopes);
        json_t *asked = json_object_get(body, "scopes");
        if (names == NULL || json_array_size(names) != json_array_size(asked))
            abort();
        json_decref(names);
    } else if (rc != TL_EINVAL || message[0] == '\0') {
        abort();
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        check_request(data + 1, size - 1);
    else
        check_policy(data + 1, size - 1);
    return 0;
}
