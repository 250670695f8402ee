/* The relay's kinds of command-line values, checked for the shared parser (relay/cmd/kinds.h). */
#include "relay/cmd/kinds.h"

#include "proto/err.h"
#include "proto/ids.h"
#include "proto/names.h"
#include "proto/text.h"
#include "relay/desk/tickets.h"
#include "relay/sessions/sessions.h"
#include "relay/store/store.h"

#include <stdio.h>
#include <string.h>

_Static_assert(TL_CLI_WORDS_MAX >= TL_SESSIONS_MAX_ARGS, "a run or fix line fits a word list");

int tl__kind_ticket(const char *word, void *out, const char **problem)
{
    int64_t id;
    if (tl_id_parse(word, TL_ID_TICKET, &id) != 0)
        return TL_EINVAL;
    tl__ticket_arg_t *ticket = out;
    if (ticket != NULL) {
        ticket->id = id;
        snprintf(ticket->text, sizeof ticket->text, "%s", word);
    }
    return 0;
}

int tl__kind_tier(const char *word, void *out, const char **problem)
{
    if (strlen(word) != 1 || word[0] < '0' || word[0] > '4')
        return TL_EINVAL;
    if (out != NULL)
        *(int *)out = word[0] - '0';
    return 0;
}

int tl__kind_status(const char *word, void *out, const char **problem)
{
    if (!tl_ticket_status_valid(word))
        return TL_EINVAL;
    if (out != NULL)
        snprintf(out, 16, "%s", word);
    return 0;
}

int tl__kind_account(const char *word, void *out, const char **problem)
{
    if (!tl_store_user_name_valid(word))
        return TL_EINVAL;
    if (out != NULL)
        snprintf(out, 65, "%s", word);
    return 0;
}

int tl__kind_assignee(const char *word, void *out, const char **problem)
{
    tl__assignee_arg_t *assignee = out;
    int rc = tl__kind_account(word, assignee != NULL ? assignee->name : NULL, problem);
    if (rc == 0 && assignee != NULL)
        assignee->mine = 0;
    return rc;
}

int tl__kind_text_word(const char *word, void *out, const char **problem)
{
    tl__text_arg_t *text = out;
    size_t len = strlen(word);
    if (text == NULL)
        return 0;
    if (text->len + len + 2 > sizeof text->text)
        return TL_EINVAL;
    if (text->words++ > 0)
        text->text[text->len++] = ' ';
    memcpy(text->text + text->len, word, len + 1);
    text->len += len;
    return 0;
}

int tl__kind_evidence_id(const char *word, void *out, const char **problem)
{
    size_t len = strlen(word);
    if (len < 8 || len > 64)
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = word[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return TL_EINVAL;
    }
    if (out != NULL)
        memcpy(out, word, len + 1);
    return 0;
}

/* "90s", "15m", "1h", "1h30m"; a bare number is seconds. 60 s .. 24 h. */
int tl__kind_grant_duration(const char *word, void *out, const char **problem)
{
    uint64_t total = 0, number = 0;
    int digits = 0;
    if (*word == '\0')
        return TL_EINVAL;
    for (const char *p = word; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 6)
                return TL_EINVAL;
            number = number * 10 + (uint64_t)(*p - '0');
            continue;
        }
        uint64_t unit = *p == 's' ? 1 : *p == 'm' ? 60 : *p == 'h' ? 3600 : *p == 'd' ? 86400 : 0;
        if (unit == 0 || digits == 0)
            return TL_EINVAL;
        total += number * unit;
        number = 0;
        digits = 0;
    }
    total += number;
    if (total < 60 || total > 86400)
        return TL_EINVAL;
    if (out != NULL)
        *(uint32_t *)out = (uint32_t)total;
    return 0;
}

int tl__kind_runbook(const char *word, void *out, const char **problem)
{
    if (!tl_runbook_name_valid(word)) {
        *problem = "a runbook name is 1 to 48 of a-z, 0-9 and -";
        return TL_EINVAL;
    }
    if (out != NULL)
        *(const char **)out = word;
    return 0;
}

/* NAME=VALUE with NAME as docs/consent.md allows and VALUE at most 1024 bytes. */
static int runbook_arg_valid(const char *word)
{
    const char *equals = strchr(word, '=');
    return equals != NULL && tl_runbook_param_name_valid(word, (size_t)(equals - word)) &&
           strlen(equals + 1) <= 1024;
}

int tl__kind_runbook_arg(const char *word, void *out, const char **problem)
{
    tl_cli_words_t *args = out;
    if (!runbook_arg_valid(word)) {
        *problem = "runbook arguments are NAME=VALUE, NAME in A-Z, 0-9 and _";
        return TL_EINVAL;
    }
    if (args == NULL)
        return 0;
    size_t name_len = (size_t)(strchr(word, '=') - word);
    for (int j = 0; j < args->count; j++) {
        if (strncmp(args->word[j], word, name_len + 1) == 0) {
            *problem = "a runbook argument is given twice";
            return TL_EINVAL;
        }
    }
    if (args->count >= TL_SESSIONS_MAX_ARGS) {
        *problem = "at most 64 runbook arguments";
        return TL_EINVAL;
    }
    args->word[args->count++] = (char *)word;
    return 0;
}

int tl__kind_command_word(const char *word, void *out, const char **problem)
{
    tl_cli_words_t *command = out;
    if (command != NULL && command->count >= TL_SESSIONS_MAX_ARGS) {
        *problem = "at most 64 words in a command";
        return TL_EINVAL;
    }
    if (strlen(word) > 4096) {
        *problem = "a word of the command is longer than 4096 bytes";
        return TL_EINVAL;
    }
    if (command != NULL)
        command->word[command->count++] = (char *)word;
    return 0;
}

int tl__kind_listen_address(const char *word, void *out, const char **problem)
{
    struct sockaddr_storage address;
    return tl_addr_parse(word, &address) == 0 ? 0 : TL_EINVAL;
}

int tl__kind_host_port(const char *word, void *out, const char **problem)
{
    tl__host_port_t split;
    if (tl_addr_split(word, split.host, &split.port) != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(tl__host_port_t *)out = split;
    return 0;
}
