/*
 * Probe "hardware": what the machine is, for the inventory: vendor, model,
 * version and serial number from the firmware's DMI table as the kernel
 * shows it in /sys/class/dmi/id, with the board and the BIOS. The serial
 * number is readable by root only on most systems: it is reported where it
 * can be read, and its absence is said in "serial_note". Boards without DMI
 * (most ARM machines) name their model in /proc/device-tree/model.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUE 256

/* The DMI files reported, and where each goes ("board.name": a member of "board"). */
static const struct {
    const char *file;
    const char *object; /* NULL: the section itself */
    const char *field;
} dmi_files[] = {
    {"sys_vendor", NULL, "vendor"},        {"product_name", NULL, "product"},
    {"product_version", NULL, "version"},  {"product_family", NULL, "family"},
    {"product_serial", NULL, "serial"},    {"chassis_vendor", "chassis", "vendor"},
    {"board_vendor", "board", "vendor"},   {"board_name", "board", "name"},
    {"board_version", "board", "version"}, {"bios_vendor", "bios", "vendor"},
    {"bios_version", "bios", "version"},   {"bios_date", "bios", "date"},
};

/* One value: the file's first line without blanks around it; "" when unreadable or empty. */
static int read_value(const char *dir, const char *file, char *out, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = NULL;
    size_t len = 0;
    out[0] = '\0';
    int rc = tl__diag_read_file(path, size - 1, &text, &len);
    if (rc < 0)
        return rc;
    size_t start = strspn(text, " \t");
    size_t end = start + strcspn(text + start, "\n\r");
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
        end--;
    memcpy(out, text + start, end - start);
    out[end - start] = '\0';
    free(text);
    return 0;
}

int tl__probe_hardware_read_dmi(const char *dir, json_t *section)
{
    int rc = 0;
    size_t found = 0;
    char value[MAX_VALUE];
    bool serial_denied = false;
    for (size_t i = 0; i < sizeof dmi_files / sizeof dmi_files[0]; i++) {
        int got = read_value(dir, dmi_files[i].file, value, sizeof value);
        if (got == -EACCES && strcmp(dmi_files[i].field, "serial") == 0)
            serial_denied = true;
        if (got < 0 || value[0] == '\0')
            continue;
        json_t *target = section;
        if (dmi_files[i].object) {
            target = json_object_get(section, dmi_files[i].object);
            if (!target) {
                target = json_object();
                if (!target || json_object_set_new(section, dmi_files[i].object, target) != 0)
                    return TL_ENOMEM;
            }
        }
        if ((rc = tl__diag_put_text(target, dmi_files[i].field, value)) < 0)
            return rc;
        found++;
    }
    if (found == 0)
        return TL_ENOTFOUND;
    if ((rc = tl__diag_put_text(section, "source", "dmi")) < 0)
        return rc;
    if (serial_denied &&
        (rc = tl__diag_put_text(section, "serial_note", "readable by root only")) < 0)
        return rc;
    return 0;
}

int tl__probe_hardware_run(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    int rc = tl__probe_hardware_read_dmi("/sys/class/dmi/id", section);
    if (rc != TL_ENOTFOUND)
        return rc;
    char model[MAX_VALUE];
    /* The device tree's model is NUL-terminated; read_value keeps what comes before. */
    if (read_value("/proc/device-tree", "model", model, sizeof model) == 0 && model[0]) {
        if ((rc = tl__diag_put_text(section, "product", model)) < 0)
            return rc;
        return tl__diag_put_text(section, "source", "device-tree");
    }
    if ((rc = tl__diag_put_text(section, "source", "none")) < 0)
        return rc;
    return tl__diag_put_text(section, "note", "the firmware describes no model (no DMI table)");
}
