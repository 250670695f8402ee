#!/usr/bin/env python3
"""Self-help first, end to end (docs/kb.md "Self-help"): `tierline-agent help` on a machine that
really has the problem. /var is a small ext2 image mounted in a private mount namespace
(unshare --mount) and filled past 90%: the disks probe reads it as any disk (a tmpfs would not
do: the probe skips memory-backed file systems). A real relay, a real enrolled agent, the
stock OpenSSH client for the technicians. Each case runs in its own process:

    selfhelp.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import time

from catalogue import CatalogueDesk
import technicians
from technicians import Desk
import tlcase
from tlcase import case, check, run, wait_for

ARTICLE = """---
id: var-full-test
title: /var is nearly full
category: disk
when: any disks.mounts where (mount == "/var" and used_percent > 90)
runbook: {runbook}
{params}
words: full, space, var
---
# /var is nearly full

The filler under /var takes the space; the runbook removes it.
"""


def write_kb(runbook="remove-filler", params="param: NAME=filler"):
    kb = os.path.join(technicians.WORK, "kb")
    shutil.rmtree(kb, ignore_errors=True)
    os.makedirs(kb)
    with open(os.path.join(kb, "var-full-test.md"), "w") as f:
        f.write(ARTICLE.format(runbook=runbook, params=params))
    return kb


def write_runbooks(remove=True):
    """remove-filler deletes /var/NAME (or does nothing with remove=False); root-only is
    privileged."""
    catalogue = os.path.join(technicians.WORK, "sh-runbooks")
    os.makedirs(catalogue, exist_ok=True)
    body = 'rm -f "/var/$TL_PARAM_NAME"\n' if remove else ":\n"
    entries = {
        "remove-filler": (False, "#!/bin/sh\necho \"removing /var/$TL_PARAM_NAME\"\n" + body +
                          "echo \"\\033]0;title\\007done\"\n"),
        "root-only": (True, "#!/bin/sh\ntouch /var/root-only-ran\n"),
    }
    for name, (privileged, script) in entries.items():
        path = os.path.join(catalogue, name)
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        params = [] if privileged else [{"name": "NAME", "pattern": "^[a-z]{1,16}$",
                                         "required": True, "description": "a file under /var"}]
        with open(path + ".json", "w") as f:
            json.dump({"name": name, "description": "Remove a filler file from /var",
                       "min_role": "tier3" if privileged else "tier1",
                       "privileged": privileged, "timeout": "30s", "params": params}, f)
    return catalogue


FILLER = "dd if=/dev/zero of=/var/filler bs=1k count=3500 2>/dev/null\n"
# Rotated logs fill /var, beside a live log that must stay: what the shipped article is for.
ROTATED_LOGS = ("mkdir -p /var/log/app\n"
                "dd if=/dev/zero of=/var/log/syslog.1 bs=1k count=1500 2>/dev/null\n"
                "dd if=/dev/zero of=/var/log/kern.log.2.gz bs=1k count=1000 2>/dev/null\n"
                "dd if=/dev/zero of=/var/log/app/app.log.old bs=1k count=900 2>/dev/null\n"
                "dd if=/dev/zero of=/var/log/syslog bs=1k count=40 2>/dev/null\n")


def full_var_argv(desk, kb, catalogue, words, fill):
    """The command for help under a private /var: a 4 MiB ext2 image filled past 90% by fill
    (a sh fragment). kb and catalogue are help's --kb and --runbooks (None: the agent's own, as
    installed). It says on stderr how full /var was, whether the filler is still there after,
    and what is left under /var."""
    image = os.path.join(technicians.WORK, "var.img")
    run("truncate", "-s", "4M", image)
    run("mkfs.ext2", "-q", "-F", image)
    script = ("set -e; mount -o loop \"$1\" /var; shift\n" + fill +
              "used=$(df -P /var | awk 'NR==2 {print $5}')\n"
              "echo \"var-used=$used\" >&2\n"
              "set +e; \"$@\"; status=$?\n"
              "if [ -e /var/filler ]; then echo 'filler=present' >&2; "
              "else echo 'filler=gone' >&2; fi\n"
              "find /var -path /var/lost+found -prune -o -type f -printf 'left=%P\\n' >&2\n"
              "exit $status\n")
    own = [] if kb is None else ["--kb", kb]
    own += [] if catalogue is None else ["--runbooks", catalogue]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", image,
            technicians.BIN + "/tierline-agent", "help"] + list(words) + [
        "--state", desk.agent.dir, "--wait-ms", "20000"] + own


def check_full(err):
    used = int(err.split("var-used=")[1].split("%")[0])
    check(used > 90, "the image is not full enough: %d%%\n%s" % (used, err))


def full_var_help(desk, kb, catalogue, *words, expect=0, fill=FILLER):
    """help under a full private /var (full_var_argv): (stdout, stderr, and whether the filler
    is still there afterwards)."""
    out, err = run(*full_var_argv(desk, kb, catalogue, words, fill), expect=expect, timeout=180)
    check_full(err)
    return out, err, "filler=present" in err


def read_until(fd, text, seconds):
    """What the terminal shows until text appears or fd ends, within seconds (bounded)."""
    seen, deadline = b"", time.monotonic() + seconds
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        seen += chunk
    return seen.decode(errors="replace")


def full_var_help_on_a_terminal(desk, kb, catalogue, answer, *words):
    """help as a user runs it from a terminal (a real pty for stdin and stderr), answering its
    [y/N] question with answer. (stdout, what the terminal showed, whether the filler is still
    there afterwards)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(full_var_argv(desk, kb, catalogue, words + ("--no-wait",), FILLER),
                            stdin=terminal, stdout=subprocess.PIPE, stderr=terminal,
                            start_new_session=True)
    os.close(terminal)
    try:
        shown = read_until(controller, "[y/N] ", 120)
        check("[y/N] " in shown, "no question on the terminal:\n" + shown)
        os.write(controller, answer.encode() + b"\n")
        out, _ = proc.communicate(timeout=120)
        shown += read_until(controller, "\n(never)", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
        os.close(controller)
    check(proc.returncode == 0, "help exited %s:\n%s" % (proc.returncode, shown))
    check_full(shown)
    return out.decode(), shown, "filler=present" in shown


def left_under_var(err):
    return sorted(line[len("left="):] for line in err.splitlines() if line.startswith("left="))


def deflections(desk):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(desk.relay.dir, "relay.db"), uri=True)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM deflections ORDER BY id")]
    finally:
        db.close()


def ticket_count(desk):
    return len(desk.relay.tickets())


@case
def case_full_var_is_fixed_by_self_help_and_no_ticket_opens():
    desk = Desk(ticket=False)
    kb, catalogue = write_kb(), write_runbooks()
    out, err, filler = full_var_help(desk, kb, catalogue, "my disk is full", "--fix", "1")
    # The match, its evidence and the fix were shown; the fix ran, its output escaped.
    check("1. /var is nearly full (article var-full-test)" in err and
          "disks.mounts[/var].used_percent = " in err and
          "suggested fix: remove-filler (NAME=filler)" in err, "the match shown:\n" + err)
    check("removing /var/filler" in err and "\\x1b]0;title\\x07done" in err and
          "\x1b" not in err, "the runbook's output, escaped:\n" + err)
    check(not filler and "Solved: the check passes now." in err, "not solved:\n" + err)
    check(out == "" and "No ticket was needed" in err, "help said: %r %r" % (out, err))
    check(ticket_count(desk) == 0, "a ticket opened: %r" % desk.relay.tickets())
    rows = wait_for("the deflection on the relay", lambda: deflections(desk))
    check(len(rows) == 1, "deflections: %r" % rows)
    row = rows[0]
    check(row["article"] == "var-full-test" and row["runbook"] == "remove-filler" and
          json.loads(row["args"]) == {"NAME": "filler"} and row["outcome"] == "solved" and
          row["shown"] <= row["applied"] <= row["rechecked"] and
          row["request_id"].startswith("R-"), "the row: %r" % row)
    # The diagnostics it was found on show a full /var: the desk's fingerprint of them.
    check(row["fingerprint"] is not None and len(row["fingerprint"]) == 64,
          "no fingerprint: %r" % row)
    audited = [e for e in desk.audit() if e["action"] == "selfhelp.deflected"]
    check(len(audited) == 1 and audited[0]["details"]["deflection"] == "F-%d" % row["id"] and
          audited[0]["details"]["article"] == "var-full-test" and
          audited[0]["subject"].startswith("D-"), "audit: %r" % audited)
    desk.relay.verify_audit()
    check(desk.agent.status()["queued"] == [], "still queued: %r" % desk.agent.status())


@case
def case_a_fix_that_does_not_help_opens_a_ticket_listing_what_was_tried():
    desk = Desk(ticket=False)
    kb, catalogue = write_kb(), write_runbooks(remove=False)
    out, err, filler = full_var_help(desk, kb, catalogue, "my disk is full", "--fix", "1")
    check(filler and "Not solved: the problem is still there (disks.mounts[/var]" in err,
          "solved?\n" + err)
    ticket = out.strip()
    check(ticket.startswith("T-"), "no ticket: %r\n%s" % (out, err))
    check(deflections(desk) == [], "a deflection for an unsolved problem")
    desk.ssh("alice", "ticket", "take", ticket)
    desk.ssh("alice", "ticket", "escalate", ticket, "--to", "tier2", "--reason",
             "'self-help did not free /var'")
    shown = desk.ssh_json("bob", "ticket", "show", ticket)
    rows = shown["escalation"]["summary"]["self_help"]
    check([(r["event"], r["article"], r["title"], r["by"].startswith("agent:D-"))
           for r in rows] == [("shown", "kb:var-full-test", "/var is nearly full", True),
                              ("applied", "kb:var-full-test", "/var is nearly full", True)],
          "self_help rows: %r" % rows)
    check(rows[0]["outcome"] is None and
          rows[1]["outcome"].startswith("not solved: the problem is still there "
                                        "(disks.mounts[/var]"), "outcomes: %r" % rows)
    check(shown["escalation"]["summary"]["tried"] >= 3, "tried: %r" % shown["escalation"])
    # In the readable summary, self-help's rows come first, before the diagnostics.
    _, text, _ = desk.ssh("bob", "ticket", "show", ticket)
    check(re.search(r"\nTried before this escalation: \d+ \(summary sha256:[0-9a-f]{64}\)\n"
                    r"  Self-help \(2\):\n    .*  shown  kb:var-full-test  /var is nearly full\n"
                    r"    .*  applied  kb:var-full-test  /var is nearly full  outcome: not solved: "
                    r"the problem is still there \(disks\.mounts\[/var\][^\n]*\n"
                    r"  Diagnostics \(", text), "the readable summary:\n" + text)
    kinds = [e["action"] for e in desk.audit()]
    check(kinds.count("selfhelp.shown") == 1 and kinds.count("selfhelp.applied") == 1,
          "audit: %r" % kinds)
    desk.relay.verify_audit()


@case
def case_bad_fixes_run_nothing_and_the_ticket_still_opens():
    desk = Desk(ticket=False)
    catalogue = write_runbooks()
    attempts = [
        # (article's runbook and params, help's words, what the error says)
        (("remove-filler", "param: NAME=filler"), ["--fix", "3"],
         "--fix 3: 1 match was shown; nothing was run"),
        (("root-only", ""), ["--fix", "1"],
         "runbook root-only is privileged: self-help never runs it"),
        (("no-such-runbook", ""), ["--fix", "1"],
         "no runbook named 'no-such-runbook' in this machine's catalogue"),
        (("remove-filler", "param: NAME=../etc"), ["--fix", "1"],
         "parameter NAME='../etc' does not match"),
    ]
    for (runbook, params), words, said in attempts:
        kb = write_kb(runbook, params)
        before = ticket_count(desk)
        out, err, filler = full_var_help(desk, kb, catalogue, "my disk is full", *words)
        check(said in err and "nothing was run" in err, "no clear error for %r:\n%s" %
              (words, err))
        check(filler and "Applying" not in err, "something ran for %r:\n%s" % (runbook, err))
        check(out.strip().startswith("T-") and ticket_count(desk) == before + 1,
              "no ticket for %r: %r" % (runbook, out))
    check(deflections(desk) == [], "a deflection: %r" % deflections(desk))
    # Without a terminal and without --fix nothing is applied; --no-self-help shows nothing.
    kb = write_kb()
    _, err, filler = full_var_help(desk, kb, catalogue, "my disk is full")
    check(filler and "run again with --fix 1" in err and "Applying" not in err, err)
    _, err, filler = full_var_help(desk, kb, catalogue, "my disk is full", "--no-self-help")
    check(filler and "Self-help" not in err, err)
    # Usage errors come before anything is gathered or sent.
    for words in (["--fix", "0"], ["--fix", "x"], ["--fix", "1", "--no-self-help"]):
        _, err = run(technicians.BIN + "/tierline-agent", "help", "full", "--state",
                     desk.agent.dir, *words, expect=2)
        check("--fix" in err or "--no-self-help" in err, "usage: %r" % err)


@case
def case_a_request_without_self_help_opens_a_ticket_without_rows():
    """--no-self-help sends a request as an older agent does, with no selfhelp member: the
    ticket opens as before, with no self-help row on it."""
    desk = Desk(ticket=False)
    out, _ = run(technicians.BIN + "/tierline-agent", "help", "the printer is offline",
                 "--no-self-help", "--state", desk.agent.dir, "--wait-ms", "20000", timeout=120)
    ticket = out.strip()
    check(ticket.startswith("T-"), "no ticket: %r" % out)
    shown = desk.ssh_json("alice", "ticket", "show", ticket)
    kinds = [e["kind"] for e in shown["events"]]
    check("ticket.created" in kinds and not any(k.startswith("selfhelp.") for k in kinds),
          "events: %r" % kinds)


def utc_in(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def funnel(desk, *words):
    return desk.ssh_json("alice", "report", *words)["self_help"]["total"]


@case
def case_the_report_counts_each_stage_and_deflects_only_what_held():
    desk = Desk(ticket=False)
    kb, catalogue = write_kb(), write_runbooks()
    # The relay's knowledge base has the article too: its counts move with the outcomes.
    run(technicians.BIN + "/tierline-relay", "kb", "add", os.path.join(kb, "var-full-test.md"),
        "--runbooks", catalogue, "--data", desk.relay.dir)
    full_var_help(desk, kb, catalogue, "my disk is full", "--fix", "1")
    wait_for("the deflection on the relay", lambda: deflections(desk))
    now = funnel(desk)
    check((now["suggested"], now["applied"], now["recheck_passed"], now["recheck_failed"]) ==
          (1, 1, 1, 0) and (now["deflected"], now["came_back"], now["watching"]) == (0, 0, 1),
          "within its 72 hours: %r" % now)
    # Once 72 hours have passed with no ticket for it, it is a deflection.
    later = funnel(desk, "--until", utc_in(73 * 3600))
    check((later["deflected"], later["came_back"], later["watching"]) == (1, 0, 0),
          "after 72 hours: %r" % later)
    listed = desk.ssh_json("alice", "kb")
    counts = [(a["id"], a["suggested"], a["applied"], a["recheck_passed"]) for a in listed
              if a["id"] == "var-full-test"]
    check(counts == [("var-full-test", 1, 1, 1)], "kb counts: %r" % listed)
    # The same problem comes back to the desk from the same machine: not a deflection after all.
    out, err, _ = full_var_help(desk, kb, catalogue, "my disk is full again", "--no-self-help")
    check(out.strip().startswith("T-"), "no ticket: %r %r" % (out, err))
    later = funnel(desk, "--until", utc_in(73 * 3600))
    check((later["deflected"], later["came_back"]) == (0, 1), "came back: %r" % later)
    # A fix that does not help: applied, re-check failed, no deflection.
    write_runbooks(remove=False)
    full_var_help(desk, kb, catalogue, "my disk is full", "--fix", "1")
    now = funnel(desk)
    check((now["suggested"], now["applied"], now["recheck_passed"], now["recheck_failed"]) ==
          (2, 2, 1, 1), "a failed fix: %r" % now)
    runbooks = desk.ssh_json("alice", "report")["self_help"]["runbooks"]
    check(runbooks == [{"runbook": "remove-filler", "applied": 2, "recheck_passed": 1,
                        "recheck_failed": 1, "rate": 0.5}], "runbook rates: %r" % runbooks)
    _, text, _ = desk.ssh("alice", "report")
    check("Self-help: 2 suggested, 2 applied, 1 re-checks passed (1 failed)" in text and
          "var-full-test" in text, "text: %r" % text)


@case
def case_on_a_terminal_yes_applies_the_fix_and_no_opens_the_ticket():
    desk = Desk(ticket=False)
    kb, catalogue = write_kb(), write_runbooks()
    # No: nothing runs, and the ticket carries the article shown, declined.
    out, shown, filler = full_var_help_on_a_terminal(desk, kb, catalogue, "n", "my disk is full")
    check("Apply the suggested fix remove-filler (NAME=filler) now? [y/N] " in shown and
          "Not applied." in shown and "Applying" not in shown and filler,
          "declined:\n" + shown)
    ticket = out.strip()
    check(ticket.startswith("T-"), "no ticket: %r\n%s" % (out, shown))
    rows = [(e["kind"], e["details"]) for e in desk.ssh_json("alice", "ticket", "show",
                                                             ticket)["events"]
            if e["kind"].startswith("selfhelp.")]
    check(len(rows) == 1 and rows[0][0] == "selfhelp.shown" and
          "var-full-test" in json.dumps(rows[0][1]) and "declined" in json.dumps(rows[0][1]),
          "the ticket's self-help rows: %r" % rows)
    check(deflections(desk) == [], "a deflection: %r" % deflections(desk))
    # Anything but y or yes is no; y applies it, the check passes, no ticket opens.
    before = ticket_count(desk)
    out, shown, filler = full_var_help_on_a_terminal(desk, kb, catalogue, "y", "my disk is full")
    check("Applying remove-filler (NAME=filler)..." in shown and
          "Solved: the check passes now." in shown and not filler, "applied:\n" + shown)
    check(out == "" and ticket_count(desk) == before, "a ticket opened: %r" % out)
    rows = wait_for("the deflection on the relay", lambda: deflections(desk))
    check([r["article"] for r in rows] == ["var-full-test"], "deflections: %r" % rows)


SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


@case
def case_the_shipped_article_and_runbook_fix_a_var_full_of_rotated_logs():
    """The issue's own test, with what ships: the articles and runbooks of the source tree,
    signed by the admins' key into the catalogue the relay publishes, installed by the running
    agent; the user's /var really full of rotated logs; help with no --kb or --runbooks."""
    desk = CatalogueDesk()
    kb_files = sorted(os.path.join(SOURCE, "kb", name) for name in os.listdir(
        os.path.join(SOURCE, "kb")) if name.endswith(".md"))
    runbooks = os.path.join(SOURCE, "agent", "runbooks")
    run(technicians.BIN + "/tierline-relay", "kb", "add", *kb_files, "--data", desk.relay.dir)
    package = os.path.join(technicians.WORK, "shipped-1.tlcat")
    run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key", desk.admin_key,
        "--runbooks", runbooks, "--kb-from-data", "--data", desk.relay.dir, "--version", "1",
        "-o", package)
    desk.publish(package)
    desk.reconnect()
    wait_for("the shipped catalogue installed", lambda: desk.catalogue()["version"] == 1)
    tickets_before = ticket_count(desk)

    out, err, _ = full_var_help(desk, None, None, "my disk is full", "--fix", "1",
                                fill=ROTATED_LOGS)
    check("1. Logs are filling /var (article var-log-full)" in err and
          "disks.mounts[/var].used_percent = " in err and
          "suggested fix: clean-old-logs (APT_CACHE=yes, KEEP_DAYS=0)" in err and
          "you may apply it yourself" in err, "the shipped match shown:\n" + err)
    check("result: OK: 3 files deleted" in err and "Solved: the check passes now." in err,
          "not solved:\n" + err)
    check(left_under_var(err) == ["log/syslog"], "left under /var: %r" % left_under_var(err))
    check(out == "" and "No ticket was needed" in err, "help said: %r %r" % (out, err))
    check(ticket_count(desk) == tickets_before, "a ticket opened: %r" % desk.relay.tickets())
    rows = wait_for("the deflection on the relay", lambda: deflections(desk))
    check([(r["article"], r["runbook"], json.loads(r["args"]), r["outcome"]) for r in rows] ==
          [("var-log-full", "clean-old-logs", {"APT_CACHE": "yes", "KEEP_DAYS": "0"},
            "solved")], "deflections: %r" % rows)
    later = funnel(desk, "--until", utc_in(73 * 3600))
    check((later["suggested"], later["applied"], later["recheck_passed"], later["deflected"],
           later["came_back"]) == (1, 1, 1, 1, 0), "the report, 73 hours on: %r" % later)
    listed = [a for a in desk.ssh_json("alice", "kb") if a["id"] == "var-log-full"]
    check([(a["suggested"], a["applied"], a["recheck_passed"]) for a in listed] == [(1, 1, 1)],
          "kb counts: %r" % listed)
    desk.relay.verify_audit()


@case
def case_a_fix_only_a_technician_may_apply_is_said_and_carried_on_the_ticket():
    """The shipped printing article suggests restart-service, which runs as root: help says it
    needs a technician, runs nothing, and the ticket's self-help row says why. (Its re-check
    stays the shipped one.)"""
    desk = Desk(ticket=False)
    kb = os.path.join(technicians.WORK, "kb-printing")
    os.makedirs(kb)
    # The shipped article, but true on any machine: no failed cups.service is needed.
    with open(os.path.join(SOURCE, "kb", "printing-service-failed.md")) as f:
        text = f.read().replace('when: any services.failed_units where unit == "cups.service"',
                                "when: memory.used_percent >= 0", 1)
    check("memory.used_percent >= 0" in text, "the shipped article changed: " + text)
    with open(os.path.join(kb, "printing-service-failed.md"), "w") as f:
        f.write(text)
    runbooks = os.path.join(SOURCE, "agent", "runbooks")
    out, err = run(technicians.BIN + "/tierline-agent", "help", "the printer does not print",
                   "--state", desk.agent.dir, "--wait-ms", "20000", "--kb", kb, "--runbooks",
                   runbooks, timeout=120)
    check("suggested fix: restart-service (SERVICE=cups.service)\n   needs a technician: "
          "runbook restart-service is privileged: self-help never runs it" in err and
          "The suggested fix needs a technician: the ticket that opens now carries it" in err and
          "Applying" not in err and "run again with --fix" not in err, "help said:\n" + err)
    ticket = out.strip()
    check(ticket.startswith("T-"), "no ticket: %r\n%s" % (out, err))
    shown = desk.ssh_json("alice", "ticket", "show", ticket)
    rows = [e for e in shown["events"] if e["kind"] == "selfhelp.shown"]
    check(len(rows) == 1 and "not applied: needs a technician: runbook restart-service is "
          "privileged" in json.dumps(rows[0]), "the ticket's row: %r" % rows)
    # --fix on it says the same and runs nothing.
    _, err = run(technicians.BIN + "/tierline-agent", "help", "the printer does not print",
                 "--fix", "1", "--state", desk.agent.dir, "--wait-ms", "20000", "--kb", kb,
                 "--runbooks", runbooks, timeout=120)
    check("cannot apply the fix of match 1: needs a technician: runbook restart-service is "
          "privileged" in err and "nothing was run" in err, "--fix 1:\n" + err)


# The shipped clean-old-logs runbook on a private /var (a tmpfs in a mount namespace), run as
# the agent runs runbooks: its fixed environment and the parameters as TL_PARAM_*.
CLEAN_OLD_LOGS_TREE = r"""set -e
mount -t tmpfs tmpfs /var
mkdir -p /var/log/app /var/log/a/b/c/d /var/log/other /var/cache/apt/archives/partial
for f in syslog syslog.1 syslog.2.gz dpkg.log.12 kern.log.old notes.1x app/app.log \
         app/app.log.3.xz app/app.log.4.zst app/app.log.5.bz2 a/b/c/depth4.1 a/b/c/d/depth5.1; do
    echo data > "/var/log/$f"
done
echo old > /var/log/old.1
touch -d '40 days ago' /var/log/old.1
mkdir -p "$OUTSIDE/dir"
echo secret > "$OUTSIDE/secret.1"
echo secret > "$OUTSIDE/dir/inside.gz"
ln -s "$OUTSIDE/secret.1" /var/log/link.1
ln -s "$OUTSIDE/dir" /var/log/linkdir
mount -t tmpfs tmpfs /var/log/other
echo data > /var/log/other/elsewhere.1
echo deb > /var/cache/apt/archives/tool_1.0_amd64.deb
echo deb > /var/cache/apt/archives/partial/half.deb
: > /var/cache/apt/archives/lock
step() {
    echo "=== $1"
    shift
    set +e
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" "$RUNBOOK" 2>&1
    echo "status=$?"
    set -e
    find /var \( -type f -o -type l \) -printf '%P\n' | sort | sed 's/^/left=/'
}
step bad-days TL_PARAM_KEEP_DAYS=x
step bad-apt TL_PARAM_APT_CACHE=maybe
step keep-30-days TL_PARAM_KEEP_DAYS=30 TL_PARAM_APT_CACHE=no
step defaults
umount /var/log/other
mv /var/log /var/log-real
ln -s /var/log-real /var/log
step log-is-a-link
"""


def clean_old_logs_steps(out):
    steps, name = {}, None
    for line in out.splitlines():
        if line.startswith("=== "):
            name = line[4:]
            steps[name] = {"out": "", "left": []}
        elif name is not None and line.startswith("left="):
            steps[name]["left"].append(line[5:])
        elif name is not None:
            steps[name]["out"] += line + "\n"
    return steps


@case
def case_clean_old_logs_deletes_rotated_logs_only_and_never_through_links():
    outside = os.path.join(technicians.WORK, "outside")
    runbook = os.path.join(SOURCE, "agent", "runbooks", "clean-old-logs")
    env = dict(os.environ, OUTSIDE=outside, RUNBOOK=runbook)
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           CLEAN_OLD_LOGS_TREE], env=env, capture_output=True, text=True,
                          timeout=120)
    check(proc.returncode == 0, "the tree: %s\n%s" % (proc.stdout, proc.stderr))
    steps = clean_old_logs_steps(proc.stdout + proc.stderr)
    everything = ["cache/apt/archives/lock", "cache/apt/archives/partial/half.deb",
                  "cache/apt/archives/tool_1.0_amd64.deb", "log/a/b/c/d/depth5.1",
                  "log/a/b/c/depth4.1", "log/app/app.log", "log/app/app.log.3.xz",
                  "log/app/app.log.4.zst", "log/app/app.log.5.bz2", "log/dpkg.log.12",
                  "log/kern.log.old", "log/link.1", "log/linkdir", "log/notes.1x",
                  "log/old.1", "log/other/elsewhere.1", "log/syslog", "log/syslog.1",
                  "log/syslog.2.gz"]
    # Parameters that break the rules: refused, nothing deleted.
    for name, said in (("bad-days", "KEEP_DAYS must be a number"),
                       ("bad-apt", "APT_CACHE must be yes or no")):
        step = steps[name]
        check("status=2" in step["out"] and said in step["out"] and
              step["left"] == everything, "%s: %r" % (name, step))
    # KEEP_DAYS=30 takes only the old rotated log; APT_CACHE=no leaves apt's packages.
    step = steps["keep-30-days"]
    check("status=0" in step["out"] and
          step["left"] == [p for p in everything if p != "log/old.1"], "keep 30: %r" % step)
    # The defaults: every rotated log within 4 levels and apt's packages; the live logs, the
    # links, what lies deeper, on another filesystem or outside /var stay.
    step = steps["defaults"]
    check("status=0" in step["out"] and "result: OK: 10 files deleted" in step["out"] and
          step["left"] == ["cache/apt/archives/lock", "log/a/b/c/d/depth5.1", "log/app/app.log",
                           "log/link.1", "log/linkdir", "log/notes.1x",
                           "log/other/elsewhere.1", "log/syslog"], "defaults: %r" % step)
    for path in ("secret.1", "dir/inside.gz"):
        check(os.path.exists(os.path.join(outside, path)), "%s deleted through a link" % path)
    # /var/log itself a link: not followed at all.
    step = steps["log-is-a-link"]
    check("status=0" in step["out"] and "/var/log: not there or a link, skipped" in step["out"],
          "log is a link: %r" % step)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("selfhelp.py BIN_DIR", "tl-selfhelp-", setup_globals, track_popen=True,
                         home=True))
