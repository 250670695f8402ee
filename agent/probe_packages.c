/*
 * Probe "packages": how many packages are installed and how many updates
 * wait, from what the machine already knows. On dpkg systems:
 * `dpkg-query -W -f '${db:Status-Abbrev}\n'` (installed, and those dpkg left
 * half done) and `apt list --upgradable`, which reads apt's cache and never
 * the network; on rpm systems `rpm -qa` (installed only). Nothing here
 * refreshes a package list: the time of apt's last refresh is reported so
 * that "no updates" can be judged.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DPKG_TIMEOUT_MS 3000
#define APT_TIMEOUT_MS 8000
#define RPM_TIMEOUT_MS 8000
#define MAX_OUTPUT (4 * 1024 * 1024)
#define MAX_UPGRADABLE_NAMES 100

/*
 * One line per package: the wanted state, the current state and an error flag ("ii ",
 * "rc ", "iU ", "iFR"). Installed: current state i. Half done (what `dpkg --audit` reports):
 * half-installed H, unpacked U, half-configured F, triggers awaited W or pending t, or the
 * reinstall-required flag R.
 */
int tl__probe_packages_parse_dpkg(const char *text, json_t *section)
{
    long long installed = 0, broken = 0;
    const char *line = text ? text : "";
    while (*line) {
        size_t len = strcspn(line, "\n");
        if (len >= 2) {
            char status = line[1];
            installed += status == 'i';
            broken += strchr("HUFWt", status) != NULL || (len >= 3 && line[2] == 'R');
        }
        line += len + (line[len] == '\n');
    }
    int rc;
    if ((rc = tl__diag_put_int(section, "installed_count", installed)) < 0 ||
        (rc = tl__diag_put_int(section, "broken_count", broken)) < 0)
        return rc;
    return 0;
}

/*
 * `apt list --upgradable`: "Listing..." then one line per package,
 *   openssl/stable-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]
 * An update from a suite whose name ends in -security counts as a security update.
 */
int tl__probe_packages_parse_apt(const char *text, json_t *section)
{
    int rc = 0;
    long long upgradable = 0, security = 0;
    bool truncated = false;
    json_t *names = json_array();
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!names || !copy) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strstr(line, "[upgradable from:"))
            continue;
        char *slash = strchr(line, '/');
        size_t word = strcspn(line, " \t");
        if (!slash || slash == line || (size_t)(slash - line) > word)
            continue;
        upgradable++;
        char *suites = slash + 1;
        suites[strcspn(suites, " \t")] = '\0';
        /* "stable-security,stable-security": any of the suites. */
        for (char *suite = suites; *suite;) {
            size_t len = strcspn(suite, ",");
            if (len >= 9 && memcmp(suite + len - 9, "-security", 9) == 0) {
                security++;
                break;
            }
            suite += len + (suite[len] == ',');
        }
        *slash = '\0';
        if (json_array_size(names) >= MAX_UPGRADABLE_NAMES) {
            truncated = true;
            continue;
        }
        json_t *name = tl__diag_text(line, strlen(line), 256);
        if (!name || json_array_append_new(names, name) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    if ((rc = tl__diag_put_int(section, "upgradable_count", upgradable)) < 0 ||
        (rc = tl__diag_put_int(section, "security_upgradable_count", security)) < 0 ||
        (truncated && (rc = tl__diag_put_bool(section, "upgradable_truncated", true)) < 0))
        goto out;
    rc = json_object_set(section, "upgradable", names) == 0 ? 0 : TL_ENOMEM;
out:
    json_decref(names);
    free(copy);
    return rc;
}

/* `rpm -qa --qf '%{NAME}\n'`: one installed package a line. */
int tl__probe_packages_parse_rpm(const char *text, json_t *section)
{
    long long installed = 0;
    const char *line = text ? text : "";
    while (*line) {
        size_t len = strcspn(line, "\n");
        installed += len > 0 && strspn(line, " \t\r") < len;
        line += len + (line[len] == '\n');
    }
    return tl__diag_put_int(section, "installed_count", installed);
}

/*
 * Runs argv with its own timeout: 0 with its output in command, or TL_EIO with why it gave
 * none (it could not start, failed, timed out or said more than MAX_OUTPUT bytes).
 */
static int run_listed(const tl_diag_t *diag, const char *const argv[], int timeout_ms,
                      struct tl__diag_command *command, char *why, size_t why_size)
{
    char described[300];
    int rc =
        tl__diag_command_run(argv, tl__diag_command_budget(diag, timeout_ms), MAX_OUTPUT, command);
    if (rc < 0) {
        snprintf(why, why_size, "%s: %s", argv[0], tl_strerror(rc));
        return TL_EIO;
    }
    if (command->timed_out || command->exit_status != 0 || command->output_truncated) {
        if (command->output_truncated && !command->timed_out && command->exit_status == 0)
            snprintf(described, sizeof described, "more output than %d bytes", MAX_OUTPUT);
        else
            tl__diag_command_describe(command, described, sizeof described);
        snprintf(why, why_size, "%s %s: %s", argv[0], argv[1], described);
        tl__diag_command_clear(command);
        return TL_EIO;
    }
    return 0;
}

static int dpkg_facts(const tl_diag_t *diag, json_t *section)
{
    static const char *const dpkg_argv[] = {"dpkg-query", "-W", "-f", "${db:Status-Abbrev}\\n",
                                            NULL};
    static const char *const apt_argv[] = {"apt", "list", "--upgradable", NULL};
    struct tl__diag_command command;
    char path[512], why[400];
    int rc;
    if ((rc = tl__diag_put_text(section, "manager", "dpkg")) < 0)
        return rc;
    /* Without the list of what is installed there is nothing to report. */
    if (run_listed(diag, dpkg_argv, DPKG_TIMEOUT_MS, &command, why, sizeof why) < 0)
        return tl__diag_fail(section, TL_EIO, "%s", why);
    rc = tl__probe_packages_parse_dpkg(command.output, section);
    tl__diag_command_clear(&command);
    if (rc < 0)
        return rc;
    /* Debian and Ubuntu leave this file when an update needs a restart to take effect. */
    if ((rc = tl__diag_put_bool(section, "reboot_required",
                                access("/run/reboot-required", F_OK) == 0 ||
                                    access("/var/run/reboot-required", F_OK) == 0)) < 0)
        return rc;
    if (tl__diag_find_program("apt", path, sizeof path) < 0)
        return tl__diag_put_text(section, "updates_note", "apt not installed");
    if (run_listed(diag, apt_argv, APT_TIMEOUT_MS, &command, why, sizeof why) < 0)
        return tl__diag_put_text(section, "updates_note", why);
    rc = tl__probe_packages_parse_apt(command.output, section);
    tl__diag_command_clear(&command);
    if (rc < 0)
        return rc;
    struct stat st;
    if (stat("/var/lib/apt/lists", &st) == 0) {
        char when[32];
        tl__diag_format_time((long long)st.st_mtime, when);
        if ((rc = tl__diag_put_text(section, "lists_updated", when)) < 0)
            return rc;
    }
    return 0;
}

static int rpm_facts(const tl_diag_t *diag, json_t *section)
{
    static const char *const argv[] = {"rpm", "-qa", "--qf", "%{NAME}\\n", NULL};
    struct tl__diag_command command;
    char why[400];
    int rc;
    if ((rc = tl__diag_put_text(section, "manager", "rpm")) < 0)
        return rc;
    if (run_listed(diag, argv, RPM_TIMEOUT_MS, &command, why, sizeof why) < 0)
        return tl__diag_fail(section, TL_EIO, "%s", why);
    rc = tl__probe_packages_parse_rpm(command.output, section);
    tl__diag_command_clear(&command);
    if (rc == 0)
        rc =
            tl__diag_put_text(section, "updates_note", "pending updates are counted with apt only");
    return rc;
}

int tl__probe_packages_run(const tl_diag_t *diag, json_t *section)
{
    char path[512];
    if (tl__diag_find_program("dpkg-query", path, sizeof path) == 0)
        return dpkg_facts(diag, section);
    if (tl__diag_find_program("rpm", path, sizeof path) == 0)
        return rpm_facts(diag, section);
    return tl__diag_put_text(section, "manager", "none");
}
