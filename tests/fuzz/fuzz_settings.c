/*
 * Fuzz target for the relay's and the agent's configuration files
 * (proto/conffile.c, proto/settings.c; docs/configuration.md): relay.conf
 * with the relay's table; the first byte chooses sections on or off.
 *
 * A file that does not parse must change nothing and name FILE:LINE with a
 * reason that holds nothing to escape. One that parses must hold only values
 * that are shown as they are, numbers within their ranges, and show must
 * print every key. Its desk keys (relay/desk/desk_settings.h) are then
 * checked: a refusal names FILE:LINE: and a known key, in one printable line.
 */
#include "proto/err.h"
#include "proto/settings.h"
#include "proto/text.h"
#include "relay/cmd/admin.h"
#include "relay/desk/desk_settings.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tl_settings_t settings, before;
    char why[1024];
    if (size > TL_SETTINGS_FILE_MAX)
        return 0; /* the reader refuses those before parsing */
    if (tl_settings_init(&settings, tl_admin_relay_settings) != 0)
        abort();
    before = settings;
    why[0] = '\0';
    int rc =
        tl_settings_parse(&settings, "/etc/fuzz.conf", (const char *)data, size, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || memcmp(settings.value, before.value, sizeof settings.value) != 0 ||
            strncmp(why, "/etc/fuzz.conf:", 15) != 0 || why[15] < '1' || why[15] > '9' ||
            !tl_text_printable(why, strlen(why), TL_TEXT_LINE))
            abort();
        return 0;
    }
    for (size_t i = 0; i < settings.count; i++) {
        const tl_setting_def_t *def = &settings.defs[i];
        const tl_setting_value_t *value = &settings.value[i];
        if (!value->set)
            continue;
        if (!tl_text_printable(value->text, strlen(value->text), TL_TEXT_LINE))
            abort();
        if (def->kind == TL_SETTING_UINT && (value->number < def->min || value->number > def->max))
            abort();
        if (def->kind == TL_SETTING_PATH && value->from == TL_SETTING_FROM_FILE &&
            value->text[0] != '/')
            abort();
    }
    rc = tl_desk_settings_check(&settings, why, sizeof why);
    if (rc != 0 && (rc != TL_EINVAL || strncmp(why, "/etc/fuzz.conf:", 15) != 0 ||
                    (strstr(why, ": sla_") == NULL && strstr(why, ": retention_") == NULL) ||
                    !tl_text_printable(why, strlen(why), TL_TEXT_LINE)))
        abort();
    FILE *out = fopen("/dev/null", "w");
    if (out != NULL) {
        tl_settings_show(&settings, out);
        fclose(out);
    }
    return 0;
}
