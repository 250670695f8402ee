#!/usr/bin/env python3
"""Tier 4 end to end (docs/desk.md "Vendor hand-off and evidence bundles"): a real relay and
agent, the stock OpenSSH client. The hand-off to a vendor, vendor accounts bound to tickets
until an expiry, and what such an account may and may not do. Each case runs in its own
process:

    vendor.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import datetime
import gzip
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import zlib

import relay_agent
import technicians
from technicians import Desk, Terminal
import tlcase
from tlcase import Failure, case, check, keygen, run, wait_for

BIN = None
WORK = None


def relay_admin(desk, *words, expect=0):
    return run(BIN + "/tierline-relay", *(list(words) + ["--data", desk.relay.dir]),
               expect=expect)


def utc_in(seconds):
    """A UTC time so many seconds from now, as --expires and --follow-up take it."""
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_vendor(desk, name, *options):
    """A tier-4 account with its own key; waits until the serving relay lets it in."""
    desk.keys[name] = keygen(os.path.join(WORK, name), name)
    relay_admin(desk, "user", "add", name, "--role", "tier4", "--key", desk.keys[name] + ".pub",
                *options)
    wait_for(name + "'s login", lambda: desk.ssh(name, "whoami", check_status=None)[0] == 0,
             interval=0.2)


def changes(desk, ticket):
    """The ticket's typed history, as the SLA clocks replay it: [(field, value, actor)]."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(desk.relay.dir, "relay.db"), uri=True)
    try:
        rows = db.execute("SELECT field, value, actor FROM ticket_changes WHERE ticket_id = ? "
                          "ORDER BY id", (int(ticket[2:]),)).fetchall()
    finally:
        db.close()
    return rows


def kinds(shown):
    return [e["kind"] for e in shown["events"]]


# ---- the hand-off --------------------------------------------------------------------------

@case
def case_a_handoff_waits_on_the_vendor_and_shows_its_case():
    desk = Desk()
    desk.ssh("bob", "ticket", "take", desk.ticket)
    before = time.time()
    _, out, _ = desk.ssh("bob", "ticket", "vendor", desk.ticket, "--vendor", "'ACME Printers'",
                         "--case", "CS-20931", "--follow-up", "2d")
    check(out.startswith("%s waiting-vendor (was open): ACME Printers, case CS-20931; follow up "
                         "by " % desk.ticket), "hand-off: %r" % out)
    shown = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    check(shown["status"] == "waiting-vendor" and shown["vendor"] == "ACME Printers" and
          shown["vendor_case"] == "CS-20931", "ticket: %r" % shown)
    follow_up = shown["follow_up"] / 1000.0
    check(before + 2 * 86400 - 5 <= follow_up <= time.time() + 2 * 86400 + 5,
          "follow-up %r is not two days on" % follow_up)
    _, text, _ = desk.ssh("bob", "ticket", "show", desk.ticket)
    check("  vendor:   ACME Printers, case CS-20931; follow up by " in text, "show: " + text)
    handoff = [e for e in shown["events"] if e["kind"] == "vendor.handoff"]
    check(len(handoff) == 1 and handoff[0]["details"] == {
        "vendor": "ACME Printers", "case": "CS-20931", "previous": "open",
        "status": "waiting-vendor", "follow_up": shown["follow_up"]},
          "timeline: %r" % handoff)
    # The status change is in the history the vendor clock replays.
    check(("status", "waiting-vendor", "tech:bob") in changes(desk, desk.ticket),
          "history: %r" % changes(desk, desk.ticket))
    audited = [e for e in desk.audit() if e["action"] == "ticket.vendor"]
    check(len(audited) == 1 and audited[0]["subject"] == desk.ticket, "audit: %r" % audited)
    # The listing carries the case too.
    listed = desk.ssh_json("bob", "tickets", "--tier", "all")["tickets"]
    check(listed[0]["vendor_case"] == "CS-20931", "listing: %r" % listed)

    # The vendor answered by mail: a note from the vendor, which is not the desk's response.
    _, out, _ = desk.ssh("bob", "ticket", "note", desk.ticket, "--from-vendor", "the", "part",
                         "ships", "Monday")
    check(out == "Note added to %s\n" % desk.ticket, "note: %r" % out)
    note = desk.ssh_json("bob", "ticket", "show", desk.ticket)["events"][-1]
    check(note["kind"] == "vendor.note" and note["details"] == {
        "text": "the part ships Monday", "vendor": "ACME Printers"}, "vendor note: %r" % note)

    # Handing it again updates the case without a second change of status; a date is the
    # start of that day, UTC.
    day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).date()
    shown = desk.ssh_json("bob", "ticket", "vendor", desk.ticket, "--vendor", "'ACME Printers'",
                          "--case", "CS-20977", "--follow-up", day.isoformat())
    midnight = datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc)
    check(shown == {"vendor": "ACME Printers", "case": "CS-20977", "previous": "waiting-vendor",
                    "status": "waiting-vendor", "follow_up": int(midnight.timestamp() * 1000),
                    "ticket": desk.ticket}, "--json: %r" % shown)
    statuses = [c for c in changes(desk, desk.ticket) if c[0] == "status"]
    check(statuses.count(("status", "waiting-vendor", "tech:bob")) == 1, "history: %r" % statuses)
    # Without --follow-up there is none.
    desk.ssh("bob", "ticket", "vendor", desk.ticket, "--vendor", "ACME", "--case", "CS-1")
    check(desk.ssh_json("bob", "ticket", "show", desk.ticket)["follow_up"] is None,
          "the follow-up stayed")
    desk.relay.verify_audit()


@case
def case_a_bad_handoff_is_refused_and_changes_nothing():
    desk = Desk()
    desk.ssh("bob", "ticket", "take", desk.ticket)
    before = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    audit_before = len(desk.audit())
    for words, status, needle in (
            (["T-99", "--vendor", "ACME", "--case", "1"], 1, "tierline: no ticket T-99"),
            ([desk.ticket, "--vendor", "ACME", "--case", "1", "--follow-up", "3x"], 2,
             "tierline: --follow-up: '3x' is not a duration like 2d, 36h or 90m"),
            ([desk.ticket, "--vendor", "ACME", "--case", "1", "--follow-up", "2020-01-01"], 2,
             "tierline: --follow-up: '2020-01-01' is in the past"),
            ([desk.ticket, "--vendor", "ACME", "--case", "1", "--follow-up", "2026-02-30"], 2,
             "is not a date YYYY-MM-DD"),
            ([desk.ticket, "--vendor", "ACME"], 2, "--case"),
            ([desk.ticket, "--case", "1"], 2, "--vendor"),
            ([desk.ticket, "--vendor", "x" * 129, "--case", "1"], 2,
             "--vendor needs a name of 1 to 128 bytes on one line")):
        code, out, err = desk.ssh("bob", "ticket", "vendor", *words, check_status=None)
        check(code == status and needle in err and out == "",
              "ticket vendor %r: %d %r %r" % (words, code, out, err))
    # A note from the vendor on a ticket that waits on none.
    code, _, err = desk.ssh("bob", "ticket", "note", desk.ticket, "--from-vendor", "hi",
                            check_status=None)
    check(code == 1 and "waits on no vendor" in err, "vendor note: %d %r" % (code, err))
    # Resolved: it waits on nobody until reopened.
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "fixed")
    resolved = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    code, _, err = desk.ssh("bob", "ticket", "vendor", desk.ticket, "--vendor", "ACME", "--case",
                            "1", check_status=None)
    check(code == 1 and "is resolved; reopen it first (ticket reopen %s)" % desk.ticket in err,
          "resolved: %d %r" % (code, err))
    after = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    check(after == resolved and after["vendor"] is None and
          after["events"][:len(before["events"])] == before["events"],
          "a refused hand-off changed the ticket: %r" % after)
    check(not [e for e in desk.audit()[audit_before:] if e["action"] == "ticket.vendor"],
          "a refused hand-off was audited as done")
    # Who may hand a ticket out: the desk, not an auditor or a vendor.
    for user in ("audrey", "vera"):
        code, _, err = desk.ssh(user, "ticket", "vendor", desk.ticket, "--vendor", "A",
                                "--case", "1", check_status=None)
        check(code == 77 and "needs ticket.vendor" in err, "%s: %d %r" % (user, code, err))


# ---- vendor accounts -----------------------------------------------------------------------

@case
def case_a_vendor_account_sees_its_tickets_and_nothing_else():
    desk = Desk()
    other, _, _, _ = desk.agent.help("the scanner is slow")
    add_vendor(desk, "acme", "--tickets", desk.ticket, "--expires", "30d")
    listed = desk.ssh_json("acme", "tickets")["tickets"]
    check([t["id"] for t in listed] == [desk.ticket], "acme's listing: %r" % listed)
    shown = desk.ssh_json("acme", "ticket", "show", desk.ticket)
    check(shown["id"] == desk.ticket, "show: %r" % shown)
    _, items, _ = desk.ssh("acme", "evidence", desk.ticket)
    check(desk.evidence in items, "evidence list: " + items)
    _, blob, _ = desk.ssh("acme", "evidence", "get", desk.ticket, desk.evidence, text=False)
    check(len(blob) > 0, "evidence get gave nothing")
    # The vendor's answer is a note of its own.
    desk.ssh("acme", "ticket", "note", desk.ticket, "firmware", "3.2", "fixes", "this")
    note = desk.ssh_json("bob", "ticket", "show", desk.ticket)["events"][-1]
    check(note["kind"] == "note" and note["actor"] == "tech:acme", "note: %r" % note)

    # Another ticket is answered as one that does not exist, and the attempt is audited.
    audit_before = len(desk.audit())
    for words in (["ticket", "show"], ["evidence"], ["ticket", "note"], ["ticket", "export"]):
        extra = ["hello"] if words == ["ticket", "note"] else []
        missing = desk.ssh("acme", *(words + ["T-99"] + extra), check_status=None)
        hidden = desk.ssh("acme", *(words + [other] + extra), check_status=None)
        check(missing[0] == hidden[0] == 1 and missing[1] == hidden[1] == "" and
              hidden[2] == missing[2].replace("T-99", other),
              "%r on another ticket: %r vs no ticket: %r" % (words, hidden, missing))
    denied = [e for e in desk.audit()[audit_before:] if e["action"] == "access.denied"]
    check(len(denied) == 8 and {e["subject"] for e in denied} == {other, "T-99"} and
          all(e["actor"] == "tech:acme" and
              e["details"]["reason"] == "ticket not bound to the account" for e in denied),
          "denials: %r" % denied)

    # Nothing but reading, notes and watching: every other command is refused before anything.
    for words in (["ticket", "take", desk.ticket], ["diag", desk.ticket],
                  ["run", desk.ticket, "--", "id"], ["fix", desk.ticket, "x"],
                  ["runbooks", desk.ticket], ["ticket", "resolve", desk.ticket, "done"],
                  ["ticket", "vendor", desk.ticket, "--vendor", "A", "--case", "1"]):
        code, _, err = desk.ssh("acme", *words, check_status=None)
        check(code == 77 and "permission denied: role tier4" in err,
              "acme %r: %d %r" % (words, code, err))
    term = Terminal(desk.ssh_argv("acme", tty=True) + ["join", desk.ticket])
    check(term.wait() == 77, "acme join: %r" % term.seen)
    check(desk.agent.pending() == [], "the user was asked: %r" % desk.agent.pending())

    # Observing a bound ticket asks the user; another ticket asks nobody.
    term = Terminal(desk.ssh_argv("acme", tty=True) + ["join", other, "--observe"])
    check(term.wait() == 1 and b"no ticket " + other.encode() in term.seen,
          "observe another ticket: %r" % term.seen)
    term = Terminal(desk.ssh_argv("acme", tty=True) + ["join", desk.ticket, "--observe"])
    try:
        question = desk.agent.question("acme")
        check(question["role"] == "tier4" and question["scopes"] == ["observe"],
              "question: %r" % question)
    finally:
        term.kill()

    # Bound to the other ticket, then unbound again.
    out, _ = relay_admin(desk, "user", "grant", "acme", other)
    check(out.startswith("acme may see %s until " % other), "grant: %r" % out)
    wait_for("the binding", lambda: desk.ssh("acme", "ticket", "show", other,
                                             check_status=None)[0] == 0, interval=0.2)
    check(sorted(t["id"] for t in desk.ssh_json("acme", "tickets")["tickets"]) == sorted([desk.ticket, other]),
          "listing after grant")
    relay_admin(desk, "user", "revoke", "acme", other)
    code, _, err = desk.ssh("acme", "ticket", "show", other, check_status=None)
    check(code == 1 and "no ticket " + other in err, "after revoke: %d %r" % (code, err))
    actions = [e["action"] for e in desk.audit()]
    check("user.grant" in actions and "user.revoke" in actions, "admin changes not audited")
    desk.relay.verify_audit()


@case
def case_a_vendor_session_ends_with_the_vendor_access():
    desk = Desk()
    # The account ends in ten minutes: the user is asked for no longer than that.
    add_vendor(desk, "acme", "--tickets", desk.ticket, "--expires", "10m")
    term = Terminal(desk.ssh_argv("acme", tty=True) + ["join", desk.ticket, "--observe"])
    try:
        question = desk.agent.question("acme")
        check(0 < question["duration_s"] <= 600, "asked for %r s" % question["duration_s"])
    finally:
        term.kill()
    # A binding that ends within the minute leaves no time for a session.
    relay_admin(desk, "user", "grant", "acme", desk.ticket, "--expires", utc_in(15))
    term = Terminal(desk.ssh_argv("acme", tty=True) + ["join", desk.ticket, "--observe"])
    check(term.wait() == 1 and b"too soon for a session" in term.seen,
          "a session at the end of the binding: %r" % term.seen)
    # And once it has ended, the ticket is gone for the vendor.
    wait_for("the binding to end", lambda: desk.ssh("acme", "ticket", "show", desk.ticket,
                                                     check_status=None)[0] == 1,
             timeout=60, interval=0.5)
    check(desk.ssh_json("acme", "tickets")["tickets"] == [], "listing after the binding ended")


@case
def case_an_expired_vendor_account_is_refused():
    desk = Desk()
    add_vendor(desk, "acme", "--tickets", desk.ticket, "--expires", utc_in(15))
    # A connection opened before the expiry, kept open (OpenSSH's connection sharing).
    control = os.path.join(WORK, "acme.control")
    master = subprocess.Popen(desk.ssh_argv("acme")[:-1] + [
        "-o", "ControlMaster=yes", "-o", "ControlPath=" + control, "-N", "acme@127.0.0.1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    shared = desk.ssh_argv("acme")[:-1] + ["-o", "ControlPath=" + control, "acme@127.0.0.1"]
    try:
        wait_for("the shared connection", lambda: os.path.exists(control))
        check(subprocess.run(shared + ["whoami"], capture_output=True, timeout=60,
                             stdin=subprocess.DEVNULL).returncode == 0, "before the expiry")
        # Once the expiry passes: a new login is refused, and so is the next command on the
        # connection that stayed open.
        wait_for("the expiry", lambda: desk.ssh("acme", "whoami", check_status=None)[0] == 255,
                 timeout=60, interval=0.5)
        proc = subprocess.run(shared + ["ticket", "show", desk.ticket], capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        err = proc.stderr.decode(errors="replace")
        check(proc.returncode == 77 and "permission denied: your account expired at" in err and
              proc.stdout == b"", "a command after the expiry: %d %r" % (proc.returncode, err))
    finally:
        master.kill()
        master.wait(timeout=20)
    # (Logins refused before the relay knew the account are unknown-key.)
    wait_for("the refused login in the audit log, as expired",
             lambda: [e for e in desk.audit() if e["action"] == "login.failed" and
                      e["actor"] == "tech:acme" and e["details"]["reason"] == "expired"])
    denied = [e for e in desk.audit() if e["action"] == "access.denied" and
              e["actor"] == "tech:acme"]
    check(denied and denied[-1]["details"]["reason"] == "account expired",
          "the refused command: %r" % denied)
    # The list says so; the admin can give the account more time.
    users = json.loads(relay_admin(desk, "user", "list", "--json")[0])
    acme = [u for u in users if u["name"] == "acme"][0]
    check(acme["expires"] <= time.time() * 1000 and
          [b["ticket"] for b in acme["tickets"]] == [desk.ticket], "user list: %r" % acme)
    out, _ = relay_admin(desk, "user", "list")
    check([line for line in out.splitlines() if line.startswith("acme ") and " expired " in line],
          "user list: " + out)
    relay_admin(desk, "user", "expires", "acme", "--expires", "1d")
    wait_for("acme's login", lambda: desk.ssh("acme", "whoami", check_status=None)[0] == 0,
             interval=0.5)
    desk.relay.verify_audit()


@case
def case_vendor_accounts_bad_input_is_refused_and_changes_nothing():
    desk = Desk()
    keygen(os.path.join(WORK, "acme"), "acme")
    key = os.path.join(WORK, "acme.pub")
    before = json.loads(relay_admin(desk, "user", "list", "--json")[0])
    for words, status, needle in (
            (["add", "acme", "--role", "tier4", "--key", key], 2, "needs --expires WHEN"),
            (["add", "acme", "--role", "tier2", "--key", key, "--tickets", desk.ticket], 2,
             "--tickets is for tier4 accounts only"),
            (["add", "acme", "--role", "tier4", "--key", key, "--expires", "1d", "--tickets",
              "T-1,,T-2"], 2, "--tickets wants ticket ids"),
            (["add", "acme", "--role", "tier4", "--key", key, "--expires", "yesterday"], 2,
             "--expires: 'yesterday' is not a duration"),
            (["add", "acme", "--role", "tier4", "--key", key, "--expires", "2020-01-01"], 2,
             "is in the past"),
            (["add", "acme", "--role", "tier4", "--key", key, "--expires", "1d", "--tickets",
              desk.ticket + ",T-99"], 1, "no ticket T-99; nothing was added"),
            (["grant", "bob", desk.ticket], 1, "tickets are bound to tier4 accounts only"),
            (["grant", "nobody", desk.ticket], 1, "no user named 'nobody'"),
            (["grant", "vera", "T-x"], 2, "is not a ticket id"),
            (["revoke", "vera", desk.ticket], 1, "vera is not bound to " + desk.ticket),
            (["expires", "nobody", "--expires", "1d"], 1, "no user named 'nobody'"),
            (["expires", "vera"], 2, "--expires WHEN (or never) is required")):
        _, err = relay_admin(desk, "user", *words, expect=status)
        check(needle in err, "user %r: %r" % (words, err))
    check(json.loads(relay_admin(desk, "user", "list", "--json")[0]) == before,
          "a refused change changed the accounts")
    # A binding may not outlast its account.
    relay_admin(desk, "user", "add", "acme", "--role", "tier4", "--key", key, "--expires", "2d")
    _, err = relay_admin(desk, "user", "grant", "acme", desk.ticket, "--expires", "3d", expect=1)
    check("the binding would outlast the account" in err, err)
    # Removing the account removes its bindings.
    relay_admin(desk, "user", "grant", "acme", desk.ticket)
    relay_admin(desk, "user", "remove", "acme")
    relay_admin(desk, "user", "add", "acme", "--role", "tier4", "--key", key, "--expires", "2d")
    acme = [u for u in json.loads(relay_admin(desk, "user", "list", "--json")[0])
            if u["name"] == "acme"][0]
    check(acme["tickets"] == [], "bindings outlived their account: %r" % acme)


# ---- evidence bundles ----------------------------------------------------------------------

# What every bundle holds besides the timeline and the items (docs/audit-format.md §19).
AUDIT_PART = ("audit/entries.log", "audit/proofs.json", "audit/checkpoint", "audit/audit.vkey",
              "verify_bundle.py")

def record_a_shell(desk):
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        term.type("echo bundled-$((6*7))\n")
        term.expect("bundled-42")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))


def run_a_command(desk):
    """A command whose transcript is about a megabyte: the archive goes out in many chunks."""
    proc = desk.spawn("bob", "run", desk.ticket, "--", "sh", "-c",
                      shlex.quote("head -c 900000 /dev/urandom | od -A n -x"),
                      stdout=subprocess.DEVNULL)
    question = desk.agent.question("bob")
    desk.agent.cli("approve", question["id"])
    proc.communicate(timeout=120)
    check(proc.returncode == 0, "run exited %d" % proc.returncode)


def export(desk, user, ticket=None):
    """ssh USER@relay ticket export T > T.tar: the archive's bytes."""
    ticket = ticket or desk.ticket
    _, blob, err = desk.ssh(user, "ticket", "export", ticket, text=False)
    check(err == b"", "export said %r" % err)
    return blob


def documented_check():
    """docs/desk.md: the line that makes the trusted key, and the commands of "Checking a
    bundle" (its lines that start with "$ ")."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                           "desk.md")) as f:
        text = f.read()
    key_line = [line.strip() for line in text.splitlines()
                if line.strip().startswith("tierline-relay host-key") and "--pem" in line][0]
    section = text.split("### Checking a bundle", 1)[1].split("\n#", 1)[0]
    commands = [line.strip()[2:] for line in section.splitlines()
                if line.startswith("    $ ")]
    check(len(commands) == 4 and commands[0].startswith("tar "), "desk.md: %r" % commands)
    return key_line, commands


def shell(command, cwd, expect=0):
    """One line as an auditor types it, under sh; (status, output)."""
    proc = subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    if expect is not None and proc.returncode != expect:
        raise Failure("%s: exit %d\n%s%s" % (command, proc.returncode, proc.stdout, proc.stderr))
    return proc.returncode, proc.stdout + proc.stderr


@case
def case_an_exported_bundle_checks_out_with_tar_sha256sum_and_openssl_alone():
    desk = Desk()
    desk.ssh("bob", "ticket", "take", desk.ticket)
    run_a_command(desk)
    record_a_shell(desk)
    shown = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    blob = export(desk, "bob")
    folder = os.path.join(WORK, "auditor")
    os.makedirs(folder)
    with open(os.path.join(folder, "T-1.tar"), "wb") as f:
        f.write(blob)
    # docs/desk.md, as written there: the trusted copy of the key from the relay's admin, then
    # "Checking a bundle" line by line (T-4 is this ticket, /var/lib/tierline the relay's folder).
    key_line, commands = documented_check()
    shell(key_line.replace("/var/lib/tierline", desk.relay.dir).replace(
        "tierline-relay", os.path.join(BIN, "tierline-relay"), 1), folder)
    cwd, said = folder, ""
    for command in commands:
        command = command.replace("T-4", "T-1")
        if command.startswith("cd "):
            cwd = os.path.join(cwd, command[3:])
            continue
        _, said = shell(command, cwd)
        if command.startswith("openssl"):
            check("Signature Verified Successfully" in said, "openssl: " + said)
    check(said.count(": OK\n") == len(shown["evidence"]) + 1 + len(AUDIT_PART),
          "sha256sum: " + said)
    bundle = os.path.join(folder, "T-1")
    shell("cmp relay.pem ../relay-trusted.pem", bundle)
    _, said = shell("openssl pkeyutl -verify -pubin -inkey relay.pem -rawin -in MANIFEST "
                    "-sigfile MANIFEST.sig", bundle)
    check("Signature Verified Successfully" in said, "openssl with relay.pem: " + said)

    # What it holds: every item under its own SHA-256, the timeline, the recordings.
    with open(os.path.join(bundle, "MANIFEST")) as f:
        listed = dict(reversed(line.rstrip("\n").split("  ", 1)) for line in f)
    hashes = sorted(e["hash"] for e in shown["evidence"])
    check(sorted(h for p, h in listed.items() if p not in AUDIT_PART + ("timeline.json",))
          == hashes, "MANIFEST %r, evidence %r" % (listed, hashes))
    recordings = [p for p in listed if p.startswith("recordings/")]
    check(len(recordings) == 1 and recordings[0].endswith(".cast.gz"), "recordings: %r" % listed)
    with open(os.path.join(bundle, recordings[0]), "rb") as f:
        check("bundled-42" in gzip.decompress(f.read()).decode(), "the recording does not play")
    with open(os.path.join(bundle, "timeline.json")) as f:
        timeline = json.load(f)
    check(timeline["format"] == "tierline-bundle 1" and timeline["ticket"]["id"] == desk.ticket
          and timeline["events"] == shown["events"] and
          [e["sha256"] for e in timeline["evidence"]] == [e["hash"] for e in shown["evidence"]] and
          {e["path"] for e in timeline["evidence"]} ==
          set(listed) - {"timeline.json"} - set(AUDIT_PART) and
          ("status", "open", "tech:bob") in
          [(c["field"], c["value"], c["actor"]) for c in timeline["changes"]] and
          timeline["exported"]["by"] == "tech:bob" and
          timeline["exported"]["relay_key"] == desk.relay.fingerprint,
          "timeline.json: %r" % {k: timeline[k] for k in ("ticket", "exported")})
    # Any tar reads it: every header in bounds, the folder first.
    with tarfile.open(os.path.join(folder, "T-1.tar")) as archive:
        names = archive.getnames()
    check(names[:4] == ["T-1", "T-1/MANIFEST", "T-1/MANIFEST.sig", "T-1/relay.pem"],
          "entries: %r" % names)
    _, listing = shell("tar -tvf T-1.tar", folder)
    check("T-1/timeline.json" in listing, "tar -tv: " + listing)

    # The export is on the record before a byte left: audit log and timeline.
    manifest_hash = hashlib.sha256(open(os.path.join(bundle, "MANIFEST"), "rb").read()).hexdigest()
    exported = [e for e in desk.audit() if e["action"] == "ticket.export"]
    check(len(exported) == 1 and exported[0]["details"]["manifest_sha256"] == manifest_hash and
          exported[0]["details"]["outcome"] == "ok" and
          exported[0]["details"]["bytes"] == len(blob), "audit: %r" % exported)
    after = desk.ssh_json("bob", "ticket", "show", desk.ticket)["events"][-1]
    check(after["kind"] == "ticket.exported" and after["actor"] == "tech:bob", "timeline: %r" % after)

    # --json says what a bundle would hold and sends none.
    summary = desk.ssh_json("bob", "ticket", "export", desk.ticket)
    check(summary["ticket"] == desk.ticket and summary["key"] == desk.relay.fingerprint and
          summary["items"] == len(hashes) and
          sorted(f["sha256"] for f in summary["files"] if "sha256" in f) == hashes,
          "--json: %r" % summary)
    check(len([e for e in desk.audit() if e["action"] == "ticket.export"]) == 1,
          "--json was recorded as an export")
    desk.relay.verify_audit()


@case
def case_a_tampered_bundle_fails_sha256sum_or_openssl():
    desk = Desk()
    blob = export(desk, "audrey")
    trusted, _ = relay_admin(desk, "host-key", "--pem")
    for name, change, tool in (("a file", "evidence", "sha256sum"),
                               ("MANIFEST", "manifest", "openssl"),
                               ("the signature", "signature", "openssl")):
        folder = os.path.join(WORK, change)
        os.makedirs(folder)
        with open(os.path.join(folder, "T-1.tar"), "wb") as f:
            f.write(blob)
        with open(os.path.join(folder, "relay-trusted.pem"), "w") as f:
            f.write(trusted)
        shell("tar -xf T-1.tar", folder)
        bundle = os.path.join(folder, "T-1")
        if change == "evidence":
            path = [p for p in os.listdir(os.path.join(bundle, "evidence"))][0]
            with open(os.path.join(bundle, "evidence", path), "ab") as f:
                f.write(b" ")
        elif change == "manifest":
            with open(os.path.join(bundle, "MANIFEST"), "a") as f:
                f.write("0" * 64 + "  planted.sh\n")
        else:
            with open(os.path.join(bundle, "MANIFEST.sig"), "r+b") as f:
                f.write(b"\0" * 8)
        _, said = shell("openssl pkeyutl -verify -pubin -inkey ../relay-trusted.pem -rawin "
                        "-in MANIFEST -sigfile MANIFEST.sig", bundle,
                        expect=None if tool == "openssl" else 0)
        if tool == "openssl":
            check("Signature Verification Failure" in said, "%s: openssl said %r" % (name, said))
        else:
            status, said = shell("sha256sum -c MANIFEST", bundle, expect=None)
            check(status != 0 and "evidence/%s: FAILED" % path in said,
                  "%s: sha256sum said %r" % (name, said))


@case
def case_an_export_of_damaged_evidence_sends_nothing():
    desk = Desk()
    path = os.path.join(desk.relay.dir, "evidence", desk.evidence[:2], desk.evidence)
    os.chmod(path, 0o600)
    with open(path, "wb") as f:
        f.write(zlib.compress(b"not what was kept"))
    code, out, err = desk.ssh("bob", "ticket", "export", desk.ticket, check_status=None,
                              text=False)
    err = err.decode()
    check(code == 1 and out == b"" and "evidence %s on %s is damaged" % (desk.evidence, desk.ticket)
          in err and "nothing was sent" in err, "export: %d %r %r" % (code, out[:100], err))
    failed = [e for e in desk.audit() if e["action"] == "ticket.export"]
    check(len(failed) == 1 and failed[0]["details"]["outcome"] == "failed", "audit: %r" % failed)
    check("ticket.exported" not in kinds(desk.ssh_json("bob", "ticket", "show", desk.ticket)),
          "a failed export is on the timeline")
    code, out, err = desk.ssh("bob", "ticket", "export", "T-99", check_status=None)
    check(code == 1 and out == "" and "no ticket T-99" in err, "T-99: %d %r" % (code, err))
    code, _, err = desk.ssh("adam", "ticket", "export", desk.ticket, check_status=None)
    check(code == 77 and "needs evidence.get" in err, "admin: %d %r" % (code, err))


# ---- the console: ticket export -o and verify-bundle ---------------------------------------

def console_env(desk, user, pin=True):
    """The console for user, set up only from the environment, with its own home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env["HOME"] = os.path.join(WORK, "console-home")
    env.pop("XDG_CONFIG_HOME", None)
    os.makedirs(os.path.join(env["HOME"], ".ssh"), mode=0o700, exist_ok=True)
    env.update({"TIERLINE_RELAY": "127.0.0.1:%d" % desk.relay.ssh_port, "TIERLINE_USER": user,
                "TIERLINE_IDENTITY": desk.keys[user]})
    if pin:
        env["TIERLINE_HOST_KEY"] = desk.relay.fingerprint
    return env


def console(*args, env, cwd=None):
    proc = subprocess.run([os.path.join(BIN, "tierline"), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, env=env, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def changed_copy(blob, name, edit):
    """A copy of the archive blob with member name's content (bytes) changed in place by edit."""
    import io
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        member = archive.getmember(name)
    data = bytearray(blob)
    start, end = member.offset_data, member.offset_data + member.size
    data[start:end] = edit(bytes(data[start:end]))
    return bytes(data)


@case
def case_the_console_saves_and_checks_a_bundle():
    desk = Desk()
    env = console_env(desk, "bob")
    folder = os.path.join(WORK, "console")
    os.makedirs(folder)
    code, out, err = console("ticket", "export", desk.ticket, "-o", "T-1.tar", env=env, cwd=folder)
    check(code == 0 and out == b"" and err.startswith("Saved ") and
          ": T-1, 7 files, signed by the relay's key %s (checked)" % desk.relay.fingerprint in err,
          "export -o: %d %r %r" % (code, out, err))
    check(sorted(os.listdir(folder)) == ["T-1.tar"], "left behind: %r" % os.listdir(folder))
    bundle = os.path.join(folder, "T-1.tar")
    with open(bundle, "rb") as f:
        blob = f.read()
    # The console checks against its pin for the relay, or the key given; 0 when it holds.
    code, out, err = console("verify-bundle", bundle, env=env)
    check(code == 0 and out.decode() == "%s: OK: T-1, 7 files, signed by %s (the trusted key, "
          "from the console's pin for 127.0.0.1)\n" % (bundle, desk.relay.fingerprint),
          "verify-bundle: %d %r %r" % (code, out, err))
    trusted = os.path.join(folder, "relay-trusted.pem")
    with open(trusted, "w") as f:
        f.write(relay_admin(desk, "host-key", "--pem")[0])
    bare = console_env(desk, "bob", pin=False)
    for words in (["--fingerprint", desk.relay.fingerprint], ["--key", trusted]):
        code, out, err = console("verify-bundle", bundle, *words, env=bare)
        check(code == 0 and b": OK: T-1" in out, "verify-bundle %r: %d %r" % (words, code, err))
    code, out, _ = console("verify-bundle", bundle, "--json", env=env)
    report = json.loads(out)
    check(code == 0 and report["ok"] is True and report["trusted"] is True and
          report["ticket"] == "T-1" and report["key"] == desk.relay.fingerprint and
          report["problem"] is None, "--json: %r" % report)
    # No key to trust: intact, but said so (exit 3).
    code, out, err = console("verify-bundle", bundle, env=bare)
    check(code == 3 and out == b"" and "no trusted key" in err, "no key: %d %r" % (code, err))
    # Signed, but by another relay's key.
    other = relay_agent.Relay("other")
    code, _, err = console("verify-bundle", bundle, "--fingerprint", other.fingerprint, env=bare)
    check(code == 1 and "relay.pem: signed by %s, not by the trusted key %s" % (
        desk.relay.fingerprint, other.fingerprint) in err, "another key: %d %r" % (code, err))

    # Each kind of damage fails, naming the file.
    evidence = [n for n in tarfile.open(bundle).getnames() if n.startswith("T-1/evidence/0")][0]
    flip = lambda b: bytes([b[0] ^ 1]) + b[1:]
    digit = lambda b: (b"1" if b[:1] != b"1" else b"2") + b[1:]
    for what, damaged, needle in (
            ("a changed file", changed_copy(blob, evidence, flip),
             "%s: its SHA-256 is " % evidence[4:]),
            ("a changed MANIFEST", changed_copy(blob, "T-1/MANIFEST", digit),
             "MANIFEST.sig: the signature does not verify with relay.pem: MANIFEST was changed"),
            ("a bad signature", changed_copy(blob, "T-1/MANIFEST.sig", flip),
             "MANIFEST.sig: the signature does not verify"),
            ("a truncated archive", blob[:len(blob) // 2], "the archive is truncated"),
            ("a cut-off end", blob[:-1024], "without its two end blocks")):
        path = os.path.join(folder, "damaged.tar")
        with open(path, "wb") as f:
            f.write(damaged)
        code, out, err = console("verify-bundle", path, env=env)
        check(code == 1 and out == b"" and needle in err and err.startswith(
            "tierline verify-bundle: %s: " % path), "%s: %d %r" % (what, code, err))
        code, out, _ = console("verify-bundle", path, "--json", env=env)
        check(code == 1 and json.loads(out)["ok"] is False, "%s --json: %r" % (what, out))
    # Bad input to the command itself.
    for words, status, needle in ((["verify-bundle"], 2, "usage"),
                                  (["verify-bundle", bundle, "--fingerprint", "abc"], 2,
                                   "--fingerprint wants SHA256:"),
                                  (["verify-bundle", bundle, "--bogus"], 2, "unknown option"),
                                  (["verify-bundle", os.path.join(folder, "none.tar")], 1,
                                   "cannot read it"),
                                  (["verify-bundle", bundle, "--key", bundle], 1,
                                   "not an Ed25519 public key")):
        code, _, err = console(*words, env=env)
        check(code == status and needle in err, "%r: %d %r" % (words, code, err))

    # Without -o the archive passes untouched, as ssh gives it.
    code, out, err = console("ticket", "export", desk.ticket, env=env)
    check(code == 0 and tarfile.open(fileobj=__import__("io").BytesIO(out)).getnames()[0] == "T-1",
          "export to stdout: %d %r" % (code, err))
    # A refused export leaves nothing behind.
    code, _, err = console("ticket", "export", "T-99", "-o", "T-99.tar", env=env, cwd=folder)
    check(code == 1 and "no ticket T-99" in err, "T-99: %d %r" % (code, err))
    check(sorted(os.listdir(folder)) == ["T-1.tar", "damaged.tar", "relay-trusted.pem"],
          "left behind: %r" % os.listdir(folder))


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("vendor.py BIN_DIR", "tl-vendor-", setup_globals, track_popen=True,
                         home=True))
