/*
 * The triage probes (docs/diagnostics.md §5.11-5.18): printers, Wi-Fi, packages, users,
 * internet, kernel messages, the agent itself and the hardware. Their parsers are fed output
 * captured from the real tools, garbage and too much of it; their run functions are run
 * through the diagnostics runner with fake commands first on PATH (a shell script per tool),
 * so a missing, failing or hanging tool is tested on any machine. Network traffic goes to
 * loopback only.
 */
#include "tl_test.h"

#include "agent/diag.h"
#include "tl_version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmpx.h>

/* ---- Helpers ---------------------------------------------------------------------------- */

static char scratch[64]; /* a temporary directory for the case, removed by teardown */

static int make_scratch(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/tl-probes-XXXXXX");
    assert_non_null(mkdtemp(scratch));
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_scratch(void **state)
{
    (void)state;
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Writes scratch/NAME (directories on the way made), with mode. */
static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    for (char *slash = strchr(path + strlen(scratch) + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* A fake program scratch/bin/NAME running the shell script body; scratch/bin goes first on PATH. */
static void fake_command(const char *name, const char *body)
{
    char file[128], script[8192];
    snprintf(file, sizeof file, "bin/%s", name);
    snprintf(script, sizeof script, "#!/bin/sh\n%s\n", body);
    write_file(file, script, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s/bin:%s", scratch, getenv("PATH") ? getenv("PATH") : "");
    if (!strstr(getenv("PATH") ? getenv("PATH") : "", scratch))
        setenv("PATH", path, 1);
}

/* One probe run through the runner, as `diag` runs it: its section (a new reference). */
static json_t *run_probe(const char *name, tl_diag_probe_fn run_fn, int timeout_ms,
                         tl_diag_t *configured)
{
    const struct tl_diag_probe probes[] = {{name, "", run_fn, timeout_ms}};
    tl_diag_t *diag = configured ? configured : tl_diag_new();
    assert_non_null(diag);
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, 1));
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    if (!configured)
        tl_diag_free(diag);
    json_t *section = json_object_get(json_object_get(report, "sections"), name);
    assert_true(json_is_object(section));
    json_incref(section);
    json_decref(report);
    return section;
}

static const char *text_of(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* Asserts that object[key] is the string expected, naming both when not. */
static void assert_text(const json_t *object, const char *key, const char *expected)
{
    const char *value = text_of(object, key);
    if (!value || strcmp(value, expected) != 0)
        fail_msg("%s: expected \"%s\", got %s%s%s", key, expected, value ? "\"" : "",
                 value ? value : "nothing", value ? "\"" : "");
}

static long long int_of(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    if (!json_is_integer(value))
        fail_msg("%s is not an integer", key);
    return json_integer_value(value);
}

/* The section as compact JSON, for messages and exact comparisons (caller frees). */
static char *dump(const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    assert_non_null(text);
    return text;
}

static void assert_dump(const json_t *value, const char *expected)
{
    char *text = dump(value);
    if (strcmp(text, expected) != 0)
        fail_msg("expected %s\n     got %s", expected, text);
    free(text);
}

/* A string of n copies of a line. */
static char *repeat(const char *line, size_t n)
{
    size_t len = strlen(line);
    char *text = malloc(len * n + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * len, line, len);
    text[len * n] = '\0';
    return text;
}

/* ---- printers ------------------------------------------------------------------------------ */

/* `lpstat -p -d` and `lpstat -o` as CUPS 2.4 prints them with LC_ALL=C. */
static const char lpstat_status[] =
    "printer Office is idle.  enabled since Tue 01 Dec 2026 09:00:00 AM UTC\n"
    "printer Lab now printing Lab-17.  enabled since Tue 01 Dec 2026 09:10:00 AM UTC\n"
    "printer Broken disabled since Tue 01 Dec 2026 08:00:00 AM UTC -\n"
    "\tPaper jam in tray 2\n"
    "\tAlerts: media-jam\n"
    "printer Hold is holding new jobs.  enabled since Tue 01 Dec 2026 07:00:00 AM UTC\n"
    "system default destination: Office\n";
static const char lpstat_jobs[] =
    "Lab-17                  alice             1024   Tue 01 Dec 2026 09:10:00 AM UTC\n"
    "Lab-18                  bob               2048   Tue 01 Dec 2026 09:11:00 AM UTC\n"
    "Broken-3                carol              512   Tue 01 Dec 2026 08:01:00 AM UTC\n"
    "Front-desk-9            dave                 1   Tue 01 Dec 2026 08:02:00 AM UTC\n"
    "this is not a job line\n";

static void test_lpstat_queues_default_and_jobs_are_read(void **state)
{
    (void)state;
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_printers_parse(lpstat_status, lpstat_jobs, section));
    assert_dump(
        json_object_get(section, "queues"),
        "[{\"name\":\"Office\",\"state\":\"idle\",\"enabled\":true,\"default\":true,"
        "\"jobs_waiting\":0},{\"name\":\"Lab\",\"state\":\"printing\",\"enabled\":true,"
        "\"default\":false,\"jobs_waiting\":2},{\"name\":\"Broken\",\"state\":\"disabled\","
        "\"enabled\":false,\"default\":false,\"jobs_waiting\":1,\"message\":\"Paper jam in tray "
        "2\"},{\"name\":\"Hold\",\"state\":\"holding new jobs\",\"enabled\":true,\"default\":false,"
        "\"jobs_waiting\":0}]");
    assert_text(section, "default_printer", "Office");
    assert_int_equal(int_of(section, "queue_count"), 4);
    /* The job of a queue not listed (a class, say) counts in the total. */
    assert_int_equal(int_of(section, "jobs_waiting"), 4);
    assert_null(json_object_get(section, "queues_truncated"));
    json_decref(section);
}

static void test_lpstat_without_queues_or_default(void **state)
{
    (void)state;
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_printers_parse("no system default destination\n", "", section));
    assert_dump(section, "{\"default_printer\":null,\"queue_count\":0,\"jobs_waiting\":0,"
                         "\"queues\":[]}");
    json_decref(section);
    /* Without the jobs' listing, no count of them is made up. */
    section = json_object();
    TL_ASSERT_OK(tl__probe_printers_parse("", NULL, section));
    assert_null(json_object_get(section, "jobs_waiting"));
    json_decref(section);
}

static void test_lpstat_garbage_and_too_much_are_bounded(void **state)
{
    (void)state;
    /* 200 queues: 64 are kept; a name longer than a queue name can be is not one. */
    char *many = malloc(200 * 80 + 512);
    assert_non_null(many);
    size_t used = 0;
    for (int i = 0; i < 200; i++)
        used += (size_t)sprintf(many + used, "printer q%d is idle.  enabled since now\n", i);
    used += (size_t)sprintf(many + used, "printer %0200d is idle.  enabled since now\n", 7);
    sprintf(many + used, "printer\nprinter \nprinter x\n\t\nsystem default destination: \n"
                         "\xff\xfe garbage \x01\x02\n");
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_printers_parse(many, "-\n-1\nx-\n--5\n", section));
    assert_int_equal(json_array_size(json_object_get(section, "queues")), 64);
    assert_int_equal(int_of(section, "queue_count"), 64);
    assert_true(json_is_true(json_object_get(section, "queues_truncated")));
    assert_true(json_is_null(json_object_get(section, "default_printer")));
    assert_int_equal(int_of(section, "jobs_waiting"), 1); /* "--5": queue "-", job 5 */
    free(dump(section));
    json_decref(section);
    free(many);

    /* A message that is not UTF-8 and holds control bytes still makes a JSON string. */
    section = json_object();
    TL_ASSERT_OK(tl__probe_printers_parse("printer P disabled since x -\n\t\xc3(\x1b[2Jjam\n", NULL,
                                          section));
    assert_string_equal(text_of(json_array_get(json_object_get(section, "queues"), 0), "message"),
                        "?(?[2Jjam");
    json_decref(section);
}

static void test_printers_probe_reads_lpstat(void **state)
{
    (void)state;
    char body[4096];
    snprintf(
        body, sizeof body,
        "case \"$1\" in\n-p) printf '%%s' '%s' ;;\n-o) printf '%%s' '%s' ;;\n*) exit 9 ;;\nesac",
        lpstat_status, lpstat_jobs);
    fake_command("lpstat", body);
    json_t *section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_text(section, "status", "cups running");
    assert_int_equal(int_of(section, "queue_count"), 4);
    assert_int_equal(int_of(section, "jobs_waiting"), 4);
    assert_text(section, "default_printer", "Office");
    json_decref(section);
}

static void test_printers_probe_scheduler_not_running_is_a_status(void **state)
{
    (void)state;
    fake_command("lpstat", "echo 'lpstat: Scheduler is not running.' >&2\nexit 1");
    json_t *section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_null(json_object_get(section, "error"));
    assert_text(section, "status", "cups not running");
    assert_text(section, "reason", "exit status 1: lpstat: Scheduler is not running.");
    json_decref(section);
}

static void test_printers_probe_failures_are_its_error(void **state)
{
    (void)state;
    /* A failure that is not the scheduler's absence is the section's error, named. */
    fake_command("lpstat", "echo 'lpstat: Forbidden' >&2\nexit 1");
    json_t *section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_text(section, "error", "lpstat -p -d: exit status 1: lpstat: Forbidden");
    json_decref(section);
    /* A hanging lpstat is cut off at its own timeout, within the probe's. */
    fake_command("lpstat", "exec sleep 30");
    section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_text(section, "error", "lpstat -p -d: timed out");
    json_decref(section);
    /* No queue at all is an answer, though lpstat exits 1 for it. */
    fake_command("lpstat", "case \"$1\" in -p) echo 'no system default destination'\n"
                           "echo 'lpstat: No destinations added.' >&2; exit 1 ;; esac");
    section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_text(section, "status", "cups running");
    assert_int_equal(int_of(section, "queue_count"), 0);
    json_decref(section);
    /* The jobs' listing failing leaves the queues and says why. */
    fake_command("lpstat", "case \"$1\" in -p) echo 'printer A is idle.  enabled since x' ;;\n"
                           "*) echo 'lpstat: broken' >&2; exit 1 ;; esac");
    section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_int_equal(int_of(section, "queue_count"), 1);
    assert_null(json_object_get(section, "jobs_waiting"));
    assert_text(section, "jobs_error", "exit status 1: lpstat: broken");
    json_decref(section);
}

static void test_printers_probe_without_cups(void **state)
{
    (void)state;
    char path[512];
    if (tl__diag_find_program("lpstat", path, sizeof path) == 0)
        skip(); /* this machine has CUPS: the case above covers it */
    json_t *section = run_probe("printers", tl__probe_printers_run, 8000, NULL);
    assert_dump(section, "{\"status\":\"cups not installed\"}");
    json_decref(section);
}

/* ---- wifi ---------------------------------------------------------------------------------- */

static const char proc_net_wireless[] =
    "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
    " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
    " wlan0: 0000   54.  -56.  -256        0      0      0      0    157        0\n"
    "  wlx1: 0000    0.    0.     0        0      0      0      0      0        0\n";

static void test_proc_net_wireless_is_read(void **state)
{
    (void)state;
    json_t *interfaces = json_array();
    TL_ASSERT_OK(tl__probe_wifi_parse_proc(proc_net_wireless, interfaces));
    /* A driver that reports no level (0) gives no signal. */
    assert_dump(interfaces, "[{\"name\":\"wlan0\",\"link_quality\":54.0,\"signal_dbm\":-56},"
                            "{\"name\":\"wlx1\",\"link_quality\":0.0}]");
    json_decref(interfaces);
}

static void test_iw_dev_and_link_are_read(void **state)
{
    (void)state;
    json_t *interfaces = json_array();
    TL_ASSERT_OK(tl__probe_wifi_parse_iw_dev("phy#1\n"
                                             "\tInterface wlan1\n"
                                             "\t\tifindex 4\n"
                                             "\t\ttype managed\n"
                                             "phy#0\n"
                                             "\tInterface wlan0\n"
                                             "\t\tifindex 3\n"
                                             "\t\taddr 3c:22:fb:10:2a:91\n"
                                             "\t\tssid Cafe Net\n"
                                             "\t\ttype managed\n"
                                             "\t\tchannel 6 (2437 MHz), width: 20 MHz, center1: "
                                             "2437 MHz\n"
                                             "\t\ttxpower 22.00 dBm\n",
                                             interfaces));
    json_t *wlan1 = json_array_get(interfaces, 0), *wlan0 = json_array_get(interfaces, 1);
    TL_ASSERT_OK(tl__probe_wifi_parse_iw_link("Connected to 00:11:22:33:44:55 (on wlan0)\n"
                                              "\tSSID: Cafe Net\n"
                                              "\tfreq: 2437.0\n"
                                              "\tRX: 3811220931 bytes (2919131 packets)\n"
                                              "\tsignal: -61 dBm\n"
                                              "\ttx bitrate: 72.2 MBit/s MCS 7 short GI\n",
                                              wlan0));
    TL_ASSERT_OK(tl__probe_wifi_parse_iw_link("Not connected.\n", wlan1));
    assert_dump(interfaces, "[{\"name\":\"wlan1\",\"mode\":\"managed\",\"connected\":false},"
                            "{\"name\":\"wlan0\",\"ssid\":\"Cafe Net\",\"mode\":\"managed\","
                            "\"frequency_mhz\":2437,\"signal_dbm\":-61,\"bitrate_mbps\":72.2,"
                            "\"connected\":true}]");
    json_decref(interfaces);
}

static void test_nmcli_terse_fields_are_unescaped(void **state)
{
    (void)state;
    json_t *interfaces = json_array();
    TL_ASSERT_OK(tl__probe_wifi_parse_nmcli(" :Neighbours:40:11:wlp2s0\n"
                                            "*:Cafe\\:Net \\\\ 2:72:6:wlp2s0\n"
                                            "*::abc:x:\n"
                                            "garbage\n",
                                            interfaces));
    assert_dump(interfaces, "[{\"name\":\"wlp2s0\",\"connected\":true,\"ssid\":\"Cafe:Net \\\\ "
                            "2\",\"signal_percent\":72,\"channel\":6}]");
    json_decref(interfaces);
}

static void test_wireless_interfaces_are_found_under_sys_class_net(void **state)
{
    (void)state;
    write_file("net/eth0/operstate", "up\n", 0644);
    write_file("net/wlan0/wireless/x", "", 0644);
    write_file("net/wlp2s0/phy80211/name", "phy0\n", 0644);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/net", scratch);
    json_t *interfaces = json_array();
    TL_ASSERT_OK(tl__probe_wifi_list(dir, interfaces));
    assert_int_equal(json_array_size(interfaces), 2);
    const char *first = text_of(json_array_get(interfaces, 0), "name");
    const char *second = text_of(json_array_get(interfaces, 1), "name");
    assert_true((strcmp(first, "wlan0") == 0 && strcmp(second, "wlp2s0") == 0) ||
                (strcmp(first, "wlp2s0") == 0 && strcmp(second, "wlan0") == 0));
    /* No such directory: nothing, and no error. */
    TL_ASSERT_OK(tl__probe_wifi_list("/nonexistent/tierline/net", interfaces));
    assert_int_equal(json_array_size(interfaces), 2);
    json_decref(interfaces);
}

static void test_wifi_parsers_survive_garbage_and_bound_interfaces(void **state)
{
    (void)state;
    char *many = malloc(64 * 64);
    assert_non_null(many);
    size_t used = 0;
    for (int i = 0; i < 40; i++)
        used += (size_t)sprintf(many + used, " w%d: 0000 %d. -%d. 0\n", i, i, i + 30);
    json_t *interfaces = json_array();
    TL_ASSERT_OK(tl__probe_wifi_parse_proc(many, interfaces));
    assert_int_equal(json_array_size(interfaces), TL__WIFI_MAX_INTERFACES);
    TL_ASSERT_OK(tl__probe_wifi_parse_iw_dev("\tInterface \n\tInterface "
                                             "a-very-long-name-"
                                             "that-is-longer-than-any-interface-name-can-be-"
                                             "anywhere-at-all\n\t\tssid x\n",
                                             interfaces));
    assert_int_equal(json_array_size(interfaces), TL__WIFI_MAX_INTERFACES);
    json_decref(interfaces);
    free(many);

    interfaces = json_array();
    static const char *const junk[] = {
        "", ":", "::::::", "\xff\xfe:\x01", " x:\n y:", " z: zz nan. inf. 1e999."};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        TL_ASSERT_OK(tl__probe_wifi_parse_proc(junk[i], interfaces));
        TL_ASSERT_OK(tl__probe_wifi_parse_nmcli(junk[i], interfaces));
        TL_ASSERT_OK(tl__probe_wifi_parse_iw_dev(junk[i], interfaces));
    }
    /* Nothing that is not a number became one. */
    size_t index;
    json_t *entry;
    json_array_foreach(interfaces, index, entry) {
        assert_null(json_object_get(entry, "link_quality"));
        assert_null(json_object_get(entry, "signal_dbm"));
    }
    free(dump(interfaces));
    json_decref(interfaces);
}

static void test_wifi_probe_on_this_machine(void **state)
{
    (void)state;
    json_t *section = run_probe("wifi", tl__probe_wifi_run, 6000, NULL);
    json_t *listed = json_array();
    TL_ASSERT_OK(tl__probe_wifi_list("/sys/class/net", listed));
    if (json_array_size(listed) == 0 && access("/proc/net/wireless", F_OK) != 0) {
        /* No wireless here: the section says so and nothing else. */
        assert_dump(section, "{\"status\":\"no wireless interface\"}");
    } else {
        assert_null(json_object_get(section, "error"));
        assert_non_null(text_of(section, "status"));
    }
    json_decref(listed);
    json_decref(section);
}

/* ---- packages ------------------------------------------------------------------------------ */

static void test_dpkg_states_are_counted(void **state)
{
    (void)state;
    json_t *section = json_object();
    /* installed: ii, hi, iiR; half done: iU, iF, iiR, iW, it; removed, config files: rc, un. */
    TL_ASSERT_OK(tl__probe_packages_parse_dpkg("ii \nii \nrc \niU \niF \nhi \niiR\nun \niW \nit \n"
                                               "x\n\n",
                                               section));
    assert_int_equal(int_of(section, "installed_count"), 4);
    assert_int_equal(int_of(section, "broken_count"), 5);
    json_decref(section);
}

static void test_apt_upgradable_list_is_read(void **state)
{
    (void)state;
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_packages_parse_apt(
        "Listing...\n"
        "openssl/stable-security,stable-security 3.0.15-1~deb12u1 amd64 [upgradable from: "
        "3.0.14-1~deb12u2]\n"
        "bash/stable 5.2.15-2+b7 amd64 [upgradable from: 5.2.15-2+b2]\n"
        "libc6/jammy-updates,jammy-security 2.35-0ubuntu3.8 amd64 [upgradable from: 2.35]\n"
        "N: There is 1 additional version. Please use the '-a' switch to see it\n"
        "no-slash-here 1.0 amd64 [upgradable from: 0.9]\n",
        section));
    assert_int_equal(int_of(section, "upgradable_count"), 3);
    assert_int_equal(int_of(section, "security_upgradable_count"), 2);
    assert_dump(json_object_get(section, "upgradable"), "[\"openssl\",\"bash\",\"libc6\"]");
    assert_null(json_object_get(section, "upgradable_truncated"));
    json_decref(section);
}

static void test_apt_list_is_bounded(void **state)
{
    (void)state;
    char *text = repeat("pkg/stable 1 amd64 [upgradable from: 0]\n", 150);
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_packages_parse_apt(text, section));
    assert_int_equal(int_of(section, "upgradable_count"), 150);
    assert_int_equal(json_array_size(json_object_get(section, "upgradable")), 100);
    assert_true(json_is_true(json_object_get(section, "upgradable_truncated")));
    json_decref(section);
    free(text);
}

static void test_rpm_list_is_counted(void **state)
{
    (void)state;
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_packages_parse_rpm("bash\nglibc\n\n  \nkernel", section));
    assert_int_equal(int_of(section, "installed_count"), 3);
    json_decref(section);
}

static void test_packages_probe_with_dpkg_and_apt(void **state)
{
    (void)state;
    fake_command("dpkg-query", "printf 'ii \\nii \\niF \\nrc \\n'");
    fake_command("apt", "echo 'WARNING: apt does not have a stable CLI interface.' >&2\n"
                        "echo 'Listing...'\n"
                        "echo 'curl/stable-security 7.88.1-10+deb12u8 amd64 [upgradable from: "
                        "7.88.1-10+deb12u7]'");
    json_t *section = run_probe("packages", tl__probe_packages_run, 12000, NULL);
    assert_text(section, "manager", "dpkg");
    assert_int_equal(int_of(section, "installed_count"), 2);
    assert_int_equal(int_of(section, "broken_count"), 1);
    assert_int_equal(int_of(section, "upgradable_count"), 1);
    assert_int_equal(int_of(section, "security_upgradable_count"), 1);
    assert_true(json_is_boolean(json_object_get(section, "reboot_required")));
    json_decref(section);
}

static void test_packages_probe_tool_failures(void **state)
{
    (void)state;
    /* apt failing leaves what dpkg said, and says why there is no count of updates. */
    fake_command("dpkg-query", "printf 'ii \\n'");
    fake_command("apt", "echo 'E: The package cache file is corrupted' >&2\nexit 100");
    json_t *section = run_probe("packages", tl__probe_packages_run, 12000, NULL);
    assert_int_equal(int_of(section, "installed_count"), 1);
    assert_null(json_object_get(section, "upgradable_count"));
    assert_text(section, "updates_note",
                "apt list: exit status 100: E: The package cache file is corrupted");
    json_decref(section);
    /* dpkg failing is the section's error. */
    fake_command("dpkg-query", "echo 'dpkg-query: error: parsing file' >&2\nexit 2");
    section = run_probe("packages", tl__probe_packages_run, 12000, NULL);
    assert_dump(section, "{\"error\":\"dpkg-query -W: exit status 2: dpkg-query: error: "
                         "parsing file\"}");
    json_decref(section);
}

/* ---- users --------------------------------------------------------------------------------- */

static struct utmpx login_record(short type, const char *user, const char *line, const char *host,
                                 pid_t pid, long when)
{
    struct utmpx record;
    memset(&record, 0, sizeof record);
    record.ut_type = type;
    record.ut_pid = pid;
    strncpy(record.ut_user, user, sizeof record.ut_user);
    strncpy(record.ut_line, line, sizeof record.ut_line);
    strncpy(record.ut_host, host, sizeof record.ut_host);
    record.ut_tv.tv_sec = when;
    return record;
}

static void test_login_records_become_sessions(void **state)
{
    (void)state;
    struct utmpx records[6];
    records[0] = login_record(USER_PROCESS, "alice", "tty1", "", 700, 1796112000);
    records[1] = login_record(USER_PROCESS, "bob", "pts/0", "198.51.100.7\x1b[2J", 801, 1796115600);
    records[2] = login_record(DEAD_PROCESS, "carol", "pts/1", "", 900, 1796115600);
    records[3] = login_record(LOGIN_PROCESS, "LOGIN", "tty2", "", 901, 1796115600);
    records[4] = login_record(USER_PROCESS, "alice", "pts/2", "", 950, 1796119200);
    /* A user name that fills its field has no NUL: it is read within the field alone. */
    records[5] = login_record(USER_PROCESS, "", "pts/3", "", 960, 1796119200);
    memset(records[5].ut_user, 'u', sizeof records[5].ut_user);
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_users_parse(records, 6, section));
    assert_int_equal(int_of(section, "session_count"), 4);
    assert_int_equal(int_of(section, "user_count"), 3);
    json_t *sessions = json_object_get(section, "sessions");
    json_t *bob = json_array_get(sessions, 1);
    assert_dump(bob, "{\"user\":\"bob\",\"terminal\":\"pts/0\",\"host\":\"198.51.100.7?[2J\","
                     "\"since\":\"2026-12-01T09:00:00Z\",\"pid\":801}");
    assert_true(json_is_null(json_object_get(json_array_get(sessions, 0), "host")));
    char expected[64];
    memset(expected, 'u', sizeof records[5].ut_user);
    expected[sizeof records[5].ut_user] = '\0';
    assert_text(json_array_get(sessions, 3), "user", expected);
    assert_string_equal(json_string_value(json_array_get(json_object_get(section, "users"), 0)),
                        "alice");
    json_decref(section);
}

static void test_login_records_are_bounded(void **state)
{
    (void)state;
    struct utmpx *records = calloc(300, sizeof *records);
    assert_non_null(records);
    for (int i = 0; i < 300; i++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", i % 7);
        records[i] = login_record(USER_PROCESS, user, "pts/9", "", 100 + i, 0);
    }
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_users_parse(records, 300, section));
    assert_int_equal(int_of(section, "session_count"), 256);
    assert_int_equal(int_of(section, "user_count"), 7);
    assert_true(json_is_true(json_object_get(section, "truncated")));
    json_decref(section);
    /* Garbage records: types and bytes no login program writes. */
    memset(records, 0xA5, 300 * sizeof *records);
    section = json_object();
    TL_ASSERT_OK(tl__probe_users_parse(records, 300, section));
    assert_int_equal(int_of(section, "session_count"), 0);
    json_decref(section);
    free(records);
}

static void test_users_probe_on_this_machine(void **state)
{
    (void)state;
    json_t *section = run_probe("users", tl__probe_users_run, 2000, NULL);
    assert_null(json_object_get(section, "error"));
    assert_int_equal(int_of(section, "session_count"),
                     (long long)json_array_size(json_object_get(section, "sessions")));
    json_decref(section);
}

/* ---- kernel messages ------------------------------------------------------------------------ */

static void test_dmesg_lines_are_counted_and_the_last_kept(void **state)
{
    (void)state;
    char *text = malloc(64 * 1024);
    assert_non_null(text);
    size_t len =
        (size_t)sprintf(text, "kern  :emerg : [    0.205087] RDSEED32 is broken.\n"
                              "kern  :err   : [   12.000001] ata1: COMRESET failed (errno=-16)\n"
                              "kern  :warn  : [    0.361033] amd_pstate: CPPC disabled.\n"
                              "               Please enable it if your BIOS has it.\n"
                              "user  :crit  : [   14.5] something\n");
    for (int i = 0; i < 60; i++)
        len += (size_t)sprintf(text + len, "kern  :warn  : [ %4d.000000] warning %d\n", i, i);
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_kernel_parse_dmesg(text, len, false, section));
    assert_int_equal(int_of(section, "error_count"), 3);
    assert_int_equal(int_of(section, "warning_count"), 61);
    assert_int_equal(int_of(section, "line_count"), 50);
    assert_true(json_is_true(json_object_get(section, "truncated")));
    json_t *lines = json_object_get(section, "lines");
    assert_string_equal(json_string_value(json_array_get(lines, 49)),
                        "kern  :warn  : [   59.000000] warning 59");
    json_decref(section);

    /* Output that starts inside a line: that line is neither shown nor counted. */
    section = json_object();
    static const char cut[] = "rr   : [1] half a line\nkern  :err   : [2] whole\n";
    TL_ASSERT_OK(tl__probe_kernel_parse_dmesg(cut, strlen(cut), true, section));
    assert_int_equal(int_of(section, "error_count"), 1);
    assert_dump(json_object_get(section, "lines"), "[\"kern  :err   : [2] whole\"]");
    json_decref(section);
    free(text);
}

static void test_dmesg_text_is_redacted(void **state)
{
    (void)state;
    static const char text[] = "kern  :err   : [ 5.1] usb: token=abc123def password=hunter2\n";
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_kernel_parse_dmesg(text, strlen(text), false, section));
    assert_string_equal(json_string_value(json_array_get(json_object_get(section, "lines"), 0)),
                        "kern  :err   : [ 5.1] usb: token=[REDACTED] password=[REDACTED]");
    json_decref(section);
}

static void test_kmsg_records_read_as_dmesg_lines(void **state)
{
    (void)state;
    char line[128];
    static const char error[] = "3,42,5000123,-;ata1: COMRESET failed\n SUBSYSTEM=scsi\n";
    size_t n = tl__probe_kernel_kmsg_line(error, strlen(error), line, sizeof line);
    assert_string_equal(line, "kern  :err   : [    5.000123] ata1: COMRESET failed");
    assert_int_equal(n, strlen(line));
    /* Facility user (1), level warn: priority 12. */
    static const char user_warn[] = "12,7,1,c;from user space";
    tl__probe_kernel_kmsg_line(user_warn, strlen(user_warn), line, sizeof line);
    assert_string_equal(line, "user  :warn  : [    0.000001] from user space");
    /* Below warning, or not a record: nothing. */
    static const char *const none[] = {"6,1,0,-;info",
                                       "7,1,0,-;debug",
                                       "no semicolon",
                                       ";empty head",
                                       "x,1,0,-;word",
                                       "3,1;too short",
                                       "999,1,0,-;facility past the table",
                                       "-3,1,0,-;negative"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        if (tl__probe_kernel_kmsg_line(none[i], strlen(none[i]), line, sizeof line) != 0)
            fail_msg("'%s' gave a line: %s", none[i], line);
    /* A long text is cut to the buffer, and a NUL in it does not end it early. */
    char record[600];
    memset(record, 'k', sizeof record);
    memcpy(record, "4,1,0,-;", 8);
    record[20] = '\0';
    n = tl__probe_kernel_kmsg_line(record, sizeof record, line, sizeof line);
    assert_int_equal(n, sizeof line - 1);
    assert_int_equal(strlen(line), sizeof line - 1);
    assert_non_null(strchr(line, '?'));
}

static void test_kernel_probe_falls_back_when_dmesg_fails(void **state)
{
    (void)state;
    fake_command("dmesg", "echo 'dmesg: read kernel buffer failed: Operation not permitted' >&2\n"
                          "exit 1");
    json_t *section = run_probe("kernel_messages", tl__probe_kernel_messages_run, 5000, NULL);
    assert_null(json_object_get(section, "error"));
    const char *source = text_of(section, "source");
    assert_true(strcmp(source, "/dev/kmsg") == 0 || strcmp(source, "none") == 0);
    const char *note = text_of(section, "note");
    if (!note || !strstr(note, "dmesg failed: exit status 1: dmesg: read kernel buffer failed"))
        fail_msg("note: %s", note ? note : "(none)");
    if (strcmp(source, "/dev/kmsg") == 0)
        assert_true(json_is_array(json_object_get(section, "lines")));
    json_decref(section);
}

static void test_kernel_probe_reads_dmesg(void **state)
{
    (void)state;
    fake_command("dmesg",
                 "test \"$1 $2\" = '--decode --level=emerg,alert,crit,err,warn' || exit 7\n"
                 "echo 'kern  :err   : [   12.000001] EXT4-fs error (device sda1)'");
    json_t *section = run_probe("kernel_messages", tl__probe_kernel_messages_run, 5000, NULL);
    assert_dump(section, "{\"source\":\"dmesg\",\"lines\":[\"kern  :err   : [   12.000001] "
                         "EXT4-fs error (device sda1)\"],\"line_count\":1,\"error_count\":1,"
                         "\"warning_count\":0,\"truncated\":false}");
    json_decref(section);
}

/* ---- the agent ------------------------------------------------------------------------------ */

static void test_proc_stat_start_time_is_read(void **state)
{
    (void)state;
    long long ticks = 0;
    /* The command name may hold spaces and parentheses: the last ')' ends it. */
    TL_ASSERT_OK(tl__probe_agent_parse_stat("4242 (tierline (x) y) S 1 4242 4242 0 -1 4194560 "
                                            "1520 0 0 0 12 3 0 0 20 0 3 0 424242 12345 678\n",
                                            &ticks));
    assert_int_equal(ticks, 424242);
    static const char *const bad[] = {"", "4242 (x", "4242 (x) S 1 2 3",
                                      "4242 (x) S 1 2 3 4 5 6 "
                                      "7 8 9 10 11 12 13 14 "
                                      "15 16 17 18 abc",
                                      "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
                                      "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl__probe_agent_parse_stat(bad[i], &ticks));
    TL_ASSERT_RC(TL_EINVAL, tl__probe_agent_parse_stat(NULL, &ticks));
}

static void test_agent_that_does_not_run(void **state)
{
    (void)state;
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_state_dir(diag, scratch));
    json_t *section = run_probe("agent", tl__probe_agent_run, 4000, diag);
    tl_diag_free(diag);
    assert_text(section, "version", TL_VERSION_STRING);
    assert_text(section, "state_dir", scratch);
    assert_true(json_is_false(json_object_get(section, "enrolled")));
    assert_true(json_is_false(json_object_get(section, "running")));
    assert_text(section, "status", "not running");
    assert_null(json_object_get(section, "pid"));
    json_decref(section);
}

/* Listens on path as the agent does and answers each status request; exits on its own. */
static pid_t fake_agent(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    assert_true(fd >= 0 && strlen(path) < sizeof address.sun_path);
    strcpy(address.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);                /* bounded whatever happens */
        signal(SIGPIPE, SIG_IGN); /* a client that left before its answer costs only itself */
        if (listen(fd, 4) != 0)
            _exit(1);
        for (int served = 0; served < 8; served++) {
            int client = accept(fd, NULL, NULL);
            if (client < 0)
                _exit(1);
            /* The request line, whole: answering early would cut the client's send short. */
            char request[256];
            size_t got = 0;
            ssize_t n;
            while (got < sizeof request &&
                   (n = read(client, request + got, sizeof request - got)) > 0 &&
                   !memchr(request + got, '\n', (size_t)n))
                got += (size_t)n;
            if (n > 0) {
                static const char answer[] = "{\"ok\":true,\"connected\":false,\"link\":"
                                             "\"connecting\",\"device\":\"D-7\",\"pending\":0}\n";
                if (write(client, answer, sizeof answer - 1) < 0) {
                    /* the client is gone: serve the next */
                }
            }
            close(client);
        }
        _exit(0);
    }
    close(fd);
    /* It listens once the socket accepts a connection. */
    for (int tries = 0; tries < 200; tries++) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = connect(probe, (struct sockaddr *)&address, sizeof address);
        if (rc == 0) {
            if (write(probe, "{}\n", 3) < 0) {
                /* answered or not, it listens */
            }
            close(probe);
            return pid;
        }
        close(probe);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("the fake agent never listened");
    return -1;
}

static void test_agent_that_runs_is_found_on_its_socket(void **state)
{
    (void)state;
    char socket_path[128];
    snprintf(socket_path, sizeof socket_path, "%s/agent.sock", scratch);
    pid_t agent = fake_agent(socket_path);
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_state_dir(diag, scratch));
    json_t *section = run_probe("agent", tl__probe_agent_run, 4000, diag);
    tl_diag_free(diag);
    kill(agent, SIGKILL);
    waitpid(agent, NULL, 0);
    assert_true(json_is_true(json_object_get(section, "running")));
    assert_text(section, "status", "running");
    assert_int_equal(int_of(section, "pid"), agent);
    assert_true(int_of(section, "uptime_seconds") >= 0);
    assert_non_null(text_of(section, "started_at"));
    assert_text(section, "link", "connecting");
    json_decref(section);
}

static void test_agent_enrollment_is_read_from_its_state(void **state)
{
    (void)state;
    write_file("relay.json",
               "{\"host\":\"relay.example\",\"port\":7443,\"fingerprint\":\"SHA256:"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"device\":\"D-42\"}",
               0600);
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_state_dir(diag, scratch));
    json_t *section = run_probe("agent", tl__probe_agent_run, 4000, diag);
    tl_diag_free(diag);
    if (json_object_get(section, "state_error"))
        fail_msg("state: %s", text_of(section, "state_error"));
    assert_true(json_is_true(json_object_get(section, "enrolled")));
    assert_text(section, "device", "D-42");
    assert_text(section, "relay", "relay.example:7443");
    json_decref(section);
    /* A damaged file is said, and the rest still reported. */
    write_file("relay.json", "{not json", 0600);
    diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_state_dir(diag, scratch));
    section = run_probe("agent", tl__probe_agent_run, 4000, diag);
    tl_diag_free(diag);
    assert_non_null(text_of(section, "state_error"));
    assert_text(section, "status", "not running");
    json_decref(section);
}

/* ---- hardware ------------------------------------------------------------------------------ */

static void test_dmi_facts_are_read(void **state)
{
    (void)state;
    write_file("dmi/sys_vendor", "LENOVO\n", 0444);
    write_file("dmi/product_name", "20XW0026GE\n", 0444);
    write_file("dmi/product_version", "ThinkPad X1 Carbon Gen 9  \n", 0444);
    write_file("dmi/product_serial", "PF2ABCDE\n", 0400);
    write_file("dmi/board_vendor", "LENOVO\n", 0444);
    write_file("dmi/board_name", "20XW0026GE\n", 0444);
    write_file("dmi/bios_version", "N32ET86W (1.62 )\n", 0444);
    write_file("dmi/bios_date", "01/04/2024\n", 0444);
    write_file("dmi/product_family", "   \n", 0444);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dmi", scratch);
    json_t *section = json_object();
    TL_ASSERT_OK(tl__probe_hardware_read_dmi(dir, section));
    assert_dump(section, "{\"vendor\":\"LENOVO\",\"product\":\"20XW0026GE\",\"version\":"
                         "\"ThinkPad X1 Carbon Gen 9\",\"serial\":\"PF2ABCDE\",\"board\":{"
                         "\"vendor\":\"LENOVO\",\"name\":\"20XW0026GE\"},\"bios\":{\"version\":"
                         "\"N32ET86W (1.62 )\",\"date\":\"01/04/2024\"},\"source\":\"dmi\"}");
    json_decref(section);
}

static void test_dmi_without_facts_and_with_garbage(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/empty", scratch);
    mkdir(dir, 0755);
    json_t *section = json_object();
    TL_ASSERT_RC(TL_ENOTFOUND, tl__probe_hardware_read_dmi(dir, section));
    TL_ASSERT_RC(TL_ENOTFOUND, tl__probe_hardware_read_dmi("/nonexistent/tierline", section));
    json_decref(section);
    /* A value is one line of at most 255 bytes; control bytes are shown as '?'. */
    char *long_value = repeat("x", 1000);
    write_file("dmi2/sys_vendor", long_value, 0444);
    write_file("dmi2/product_name", "Model\x1b[2J\x01\nsecond line\n", 0444);
    snprintf(dir, sizeof dir, "%s/dmi2", scratch);
    section = json_object();
    TL_ASSERT_OK(tl__probe_hardware_read_dmi(dir, section));
    assert_int_equal(strlen(text_of(section, "vendor")), 255);
    assert_text(section, "product", "Model?[2J?");
    json_decref(section);
    free(long_value);
}

static void test_hardware_probe_on_this_machine(void **state)
{
    (void)state;
    json_t *section = run_probe("hardware", tl__probe_hardware_run, 2000, NULL);
    assert_null(json_object_get(section, "error"));
    const char *source = text_of(section, "source");
    assert_non_null(source);
    if (access("/sys/class/dmi/id/sys_vendor", R_OK) == 0)
        assert_string_equal(source, "dmi");
    json_decref(section);
}

/* ---- internet (loopback only) --------------------------------------------------------------- */

static int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof address;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    *port = ntohs(address.sin_port);
    return fd;
}

static json_t *internet_section(const char *lookup, const char *connect_to)
{
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_lookup(diag, lookup));
    TL_ASSERT_OK(tl_diag_set_connect(diag, connect_to));
    json_t *section = run_probe("internet", tl__probe_internet_run, 8000, diag);
    tl_diag_free(diag);
    return section;
}

static void test_internet_reaches_a_loopback_listener(void **state)
{
    (void)state;
    int port;
    int fd = listen_on_loopback(&port);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    json_t *section = internet_section("localhost", target);
    close(fd);
    json_t *dns = json_object_get(section, "dns"), *tcp = json_object_get(section, "connect");
    assert_text(section, "status", "online");
    assert_true(json_is_true(json_object_get(dns, "resolved")));
    assert_text(dns, "name", "localhost");
    assert_true(json_array_size(json_object_get(dns, "addresses")) >= 1);
    assert_true(json_is_true(json_object_get(tcp, "reachable")));
    assert_text(tcp, "address", target);
    assert_text(tcp, "connected_to", "127.0.0.1");
    json_decref(section);
}

static void test_internet_refused_and_turned_off(void **state)
{
    (void)state;
    int port;
    close(listen_on_loopback(&port)); /* nothing listens there now */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    json_t *section = internet_section("off", target);
    assert_text(section, "status", "no connection");
    assert_dump(json_object_get(section, "dns"), "{\"checked\":false,\"reason\":\"turned off\"}");
    assert_text(json_object_get(section, "connect"), "reason", strerror(ECONNREFUSED));
    json_decref(section);
    section = internet_section("off", "off");
    assert_text(section, "status", "not checked");
    json_decref(section);
}

static void test_internet_settings_are_checked(void **state)
{
    (void)state;
    tl_diag_t *diag = tl_diag_new();
    static const char *const bad_names[] = {"", "two words", "-flag", "a/b", "x\x1b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_diag_set_lookup(diag, bad_names[i]));
    static const char *const bad_targets[] = {"",           "host",    "host:",    "host:0",
                                              "host:65536", "::1:443", "[::1]443", "a b:1"};
    for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_diag_set_connect(diag, bad_targets[i]));
    TL_ASSERT_OK(tl_diag_set_connect(diag, "[::1]:443"));
    const char *host, *port, *why;
    assert_true(tl_diag_connect(diag, &host, &port, &why));
    assert_string_equal(host, "::1");
    assert_string_equal(port, "443");
    tl_diag_free(diag);

    /* A bad value in the environment is not used: the check says why instead. */
    setenv(TL_DIAG_LOOKUP_ENV, "bad name", 1);
    setenv(TL_DIAG_CONNECT_ENV, "127.0.0.1", 1);
    diag = tl_diag_new();
    json_t *section = run_probe("internet", tl__probe_internet_run, 8000, diag);
    tl_diag_free(diag);
    assert_text(section, "status", "not checked");
    assert_text(json_object_get(section, "dns"), "reason",
                "bad name is not a host name (" TL_DIAG_LOOKUP_ENV ")");
    assert_text(json_object_get(section, "connect"), "reason",
                "127.0.0.1 is not HOST:PORT (" TL_DIAG_CONNECT_ENV ")");
    json_decref(section);
    /* Unset, the documented defaults apply. */
    unsetenv(TL_DIAG_LOOKUP_ENV);
    unsetenv(TL_DIAG_CONNECT_ENV);
    diag = tl_diag_new();
    const char *name;
    assert_true(tl_diag_lookup(diag, &name, &why));
    assert_string_equal(name, TL_DIAG_DEFAULT_LOOKUP);
    assert_true(tl_diag_connect(diag, &host, &port, &why));
    assert_string_equal(host, "1.1.1.1");
    assert_string_equal(port, "443");
    tl_diag_free(diag);
}

static void test_internet_verdicts(void **state)
{
    (void)state;
    assert_string_equal(tl__probe_internet_status(true, true, true, true), "online");
    assert_string_equal(tl__probe_internet_status(true, false, true, true), "name lookups fail");
    assert_string_equal(tl__probe_internet_status(true, false, false, false), "name lookups fail");
    assert_string_equal(tl__probe_internet_status(true, true, true, false), "no connection");
    assert_string_equal(tl__probe_internet_status(false, false, true, false), "no connection");
    assert_string_equal(tl__probe_internet_status(true, false, true, false), "offline");
    assert_string_equal(tl__probe_internet_status(false, false, true, true), "online");
    assert_string_equal(tl__probe_internet_status(false, false, false, false), "not checked");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lpstat_queues_default_and_jobs_are_read),
    cmocka_unit_test(test_lpstat_without_queues_or_default),
    cmocka_unit_test(test_lpstat_garbage_and_too_much_are_bounded),
    cmocka_unit_test_setup_teardown(test_printers_probe_reads_lpstat, make_scratch, remove_scratch),
    cmocka_unit_test_setup_teardown(test_printers_probe_scheduler_not_running_is_a_status,
                                    make_scratch, remove_scratch),
    cmocka_unit_test_setup_teardown(test_printers_probe_failures_are_its_error, make_scratch,
                                    remove_scratch),
    cmocka_unit_test(test_printers_probe_without_cups),
    cmocka_unit_test(test_proc_net_wireless_is_read),
    cmocka_unit_test(test_iw_dev_and_link_are_read),
    cmocka_unit_test(test_nmcli_terse_fields_are_unescaped),
    cmocka_unit_test_setup_teardown(test_wireless_interfaces_are_found_under_sys_class_net,
                                    make_scratch, remove_scratch),
    cmocka_unit_test(test_wifi_parsers_survive_garbage_and_bound_interfaces),
    cmocka_unit_test(test_wifi_probe_on_this_machine),
    cmocka_unit_test(test_dpkg_states_are_counted),
    cmocka_unit_test(test_apt_upgradable_list_is_read),
    cmocka_unit_test(test_apt_list_is_bounded),
    cmocka_unit_test(test_rpm_list_is_counted),
    cmocka_unit_test_setup_teardown(test_packages_probe_with_dpkg_and_apt, make_scratch,
                                    remove_scratch),
    cmocka_unit_test_setup_teardown(test_packages_probe_tool_failures, make_scratch,
                                    remove_scratch),
    cmocka_unit_test(test_login_records_become_sessions),
    cmocka_unit_test(test_login_records_are_bounded),
    cmocka_unit_test(test_users_probe_on_this_machine),
    cmocka_unit_test(test_dmesg_lines_are_counted_and_the_last_kept),
    cmocka_unit_test(test_dmesg_text_is_redacted),
    cmocka_unit_test(test_kmsg_records_read_as_dmesg_lines),
    cmocka_unit_test_setup_teardown(test_kernel_probe_falls_back_when_dmesg_fails, make_scratch,
                                    remove_scratch),
    cmocka_unit_test_setup_teardown(test_kernel_probe_reads_dmesg, make_scratch, remove_scratch),
    cmocka_unit_test(test_proc_stat_start_time_is_read),
    cmocka_unit_test_setup_teardown(test_agent_that_does_not_run, make_scratch, remove_scratch),
    cmocka_unit_test_setup_teardown(test_agent_that_runs_is_found_on_its_socket, make_scratch,
                                    remove_scratch),
    cmocka_unit_test_setup_teardown(test_agent_enrollment_is_read_from_its_state, make_scratch,
                                    remove_scratch),
    cmocka_unit_test_setup_teardown(test_dmi_facts_are_read, make_scratch, remove_scratch),
    cmocka_unit_test_setup_teardown(test_dmi_without_facts_and_with_garbage, make_scratch,
                                    remove_scratch),
    cmocka_unit_test(test_hardware_probe_on_this_machine),
    cmocka_unit_test(test_internet_reaches_a_loopback_listener),
    cmocka_unit_test(test_internet_refused_and_turned_off),
    cmocka_unit_test(test_internet_settings_are_checked),
    cmocka_unit_test(test_internet_verdicts),
};

TL_TEST_MAIN(tests)
