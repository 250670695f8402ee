#!/usr/bin/env python3
"""The help desk wired into a real relay (docs/desk.md "Queues, assignment and SLA wiring"):
queues, devices, assignment and taking over, classification from diagnostics, and the SLA
clocks, through the stock OpenSSH client. Tickets are opened by a hand-driven agent with an
enrolled machine's key, so their words and diagnostics are exactly the test's. Where a clock
must have run, the ticket's history is moved back in the relay's database (never a sleep).
Each case runs in its own process:

    desk_queues.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import re
import shlex
import signal
import sqlite3
import struct
import subprocess
import sys
import time

import relay_agent
from relay_agent import Agent, Relay, frame
import sessions_relay
from sessions_relay import SessionAgent, finished
import tlcase
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None
STARTED = []
DESKS = []

ROLES = {"alice": "tier1", "lena": "tier1", "bob": "tier2", "carol": "tier3", "vera": "tier4",
         "audrey": "auditor", "adam": "admin"}
MINUTE = 60000
HOUR = 60 * MINUTE

# /var 97% full: the disk-full rule, S2, disk; the conditions its fingerprint is the hash of.
VAR_FULL = {"schema": 1, "sections": {"disks": {"mounts": [
    {"mount": "/var", "used_percent": 97, "read_only": False}]}}}
VAR_FULL_FINGERPRINT = hashlib.sha256(b"tierline-fingerprint 1\ndisk-full /var\n").hexdigest()
CUPS_FAILED = {"schema": 1, "sections": {"services": {"failed_units": [{"unit": "cups.service"}]}}}

# Every hour counts, targets in hours: results do not depend on the day the test runs.
DESK_24X7 = {"sla": {"calendar": {"24x7": True}, "targets": {
    "S1": {"first_response": "30m", "resolution": "4h"},
    "S2": {"first_response": "1h", "resolution": "8h"},
    "S3": {"first_response": "4h", "resolution": "16h"},
    "S4": {"first_response": "6h", "resolution": "40h"}}}}


class Desk:
    """A relay with desk.json (or none), technician accounts, and a connected machine whose
    agent the test plays."""

    def __init__(self, desk_json=None, leads=()):
        self.relay = Relay("relay", heartbeat_ms=5000)
        self.relay.ssh_port = free_port()
        if desk_json is not None:
            with open(os.path.join(self.relay.dir, "desk.json"), "w") as f:
                f.write(desk_json if isinstance(desk_json, str) else json.dumps(desk_json))
        self.keys = self.relay.add_technicians(ROLES)
        for name in leads:
            self.admin("user", "lead", name, "on")
        self.known_hosts = self.relay.write_known_hosts()
        self.raw = None
        self.relay.start()
        DESKS.append(self)
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", expect=None)[0] == 0)
        self.agent = Agent("agent")
        self.agent.enroll(self.relay.code())
        self.raw = SessionAgent(self.relay, self.agent)
        self.requests = 0

    def admin(self, *words, expect=0):
        return run(BIN + "/tierline-relay", *(list(words) + ["--data", self.relay.dir]),
                   expect=expect)

    def keepalive(self):
        """Answers the relay's heartbeats, so the machine stays online between steps."""
        try:
            if self.raw is not None:
                self.raw.pump(0.01)
                self.raw.sock.settimeout(10)  # as the hand-driven agent's reads expect
        except (Failure, OSError):
            pass

    def upload(self, content, kind="diagnostics", name="diagnostics.json"):
        digest = hashlib.sha256(content).hexdigest()
        msg_type, payload = self.raw.open_upload({"sha256": digest, "size": len(content),
                                                  "kind": kind, "name": name})
        check(msg_type == 33, "upload refused: %r" % payload)
        channel = struct.unpack(">I", payload[4:8])[0]
        for at in range(0, len(content), 32768):
            self.raw.sock.sendall(frame(35, struct.pack(">IB", channel, 0) +
                                        content[at:at + 32768]))
        self.raw.sock.sendall(frame(37, struct.pack(">I", channel)))
        _, close = self.raw.expect(lambda t, p: t == 38)
        check(struct.unpack(">i", close[5:9])[0] == 0, "upload not stored: %r" % close)
        return digest

    def open_ticket(self, title, description="", diagnostics=None, tier=None):
        """The machine opens a ticket, with a diagnostics document if given: its id."""
        evidence = []
        if diagnostics is not None:
            content = json.dumps(diagnostics).encode()
            evidence.append({"sha256": self.upload(content), "kind": "diagnostics",
                             "name": "diagnostics.json", "size": len(content)})
        self.requests += 1
        body = {"type": "ticket.create", "request": "r-%d" % self.requests, "title": title,
                "description": description, "evidence": evidence}
        if tier is not None:
            body["tier"] = tier
        answer = self.raw.control(1000 + self.requests, body)
        check(answer.get("ok") is True, "ticket.create refused: %r" % answer)
        return answer["ticket"]

    def ssh_argv(self, user):
        return ["ssh", "-F", "/dev/null", "-i", self.keys[user], "-p", str(self.relay.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                user + "@127.0.0.1"]

    def ssh(self, user, *words, expect=0):
        """One command as user: (status, stdout, stderr)."""
        self.keepalive()
        # The relay splits the line as a shell would: each word quoted arrives as it is.
        proc = subprocess.run(self.ssh_argv(user) + [shlex.quote(w) for w in words],
                              capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if expect is not None and proc.returncode != expect:
            raise Failure("ssh %s %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                user, " ".join(words), proc.returncode, expect, out, err))
        return proc.returncode, out, err

    def json(self, user, *words):
        return json.loads(self.ssh(user, *(list(words) + ["--json"]))[1])

    def queue(self, user, *words):
        """The ids a listing gives, in its order."""
        return [t["id"] for t in self.json(user, "tickets", *words)["tickets"]]

    def show(self, user, ticket):
        return self.json(user, "ticket", "show", ticket)

    def audit(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def sql(self, statement, *args):
        """A change to the relay's database, made beside the running relay."""
        db = sqlite3.connect(os.path.join(self.relay.dir, "relay.db"), timeout=30)
        try:
            with db:
                rows = db.execute(statement, args).fetchall()
        finally:
            db.close()
        return rows

    def backdate(self, ticket, ms):
        """The ticket's whole history moved ms into the past, as if it had run that long."""
        number = int(ticket[2:])
        self.sql("UPDATE tickets SET created = created - ?, updated = updated - ? WHERE id = ?",
                 ms, ms, number)
        self.sql("UPDATE ticket_changes SET time = time - ? WHERE ticket_id = ?", ms, number)
        self.sql("UPDATE ticket_events SET time = time - ? WHERE ticket_id = ?", ms, number)


def expect_refused(desk, user, words, status, needle):
    """A command refused with status and a message holding needle, and nothing changed."""
    before = desk.relay.tickets()
    audit_before = len(desk.audit())
    got, out, err = desk.ssh(user, *words, expect=None)
    check(got == status and needle in err and out == "",
          "%s %s: exit %d, stdout %r, stderr %r (expected %d, %r)" % (
              user, " ".join(words), got, out, err, status, needle))
    check(desk.relay.tickets() == before, "%s %s changed the tickets" % (user, " ".join(words)))
    return desk.audit()[audit_before:]


# ---- queues ------------------------------------------------------------------------------------

@case
def case_queues_are_the_callers_tier_by_severity_then_due():
    desk = Desk()
    words_s3 = desk.open_ticket("The scanner is slow", tier=1)             # S3, no rule: default
    words_s2 = desk.open_ticket("Cannot save files", diagnostics=VAR_FULL)  # S2 disk
    self_help = desk.open_ticket("How do I add a printer?", tier=0)        # S4: a question
    second_s3 = desk.open_ticket("The scanner is slow again", tier=1)
    expert = desk.open_ticket("The database is slow", tier=3)
    desk.open_ticket("VPN slow", tier=2)
    # The older S3 is due sooner, whatever its number: move the later one an hour back.
    desk.backdate(second_s3, HOUR)

    # Tier 1: its queue and tier 0's self-help tickets, S2 first, then the S3 due soonest.
    check(desk.queue("alice") == [words_s2, second_s3, words_s3, self_help],
          "tier 1's queue: %r" % desk.queue("alice"))
    check(desk.queue("carol") == [expert], "tier 3's queue: %r" % desk.queue("carol"))
    check(len(desk.queue("bob")) == 1, "tier 2's queue: %r" % desk.queue("bob"))
    check(len(desk.queue("audrey")) == 6 and desk.queue("adam") == desk.queue("audrey"),
          "auditors and admins see every queue: %r" % desk.queue("audrey"))
    check(desk.queue("alice", "--tier", "3") == [expert], "--tier 3 for tier 1")
    check(desk.queue("bob", "--tier", "all") == desk.queue("audrey"), "--tier all")
    check(desk.queue("vera") == [], "a vendor sees only what was handed to it")

    # The table: SEV, ONLINE and the SLA due time in their columns, in the same order.
    _, out, _ = desk.ssh("alice", "tickets")
    lines = out.splitlines()
    header = lines[0].split()
    check(header[:9] == ["ID", "SEV", "TIER", "STATUS", "ASSIGNEE", "DEVICE", "ONLINE",
                         "HOSTNAME", "DUE"], "header: %r" % header)
    rows = [line.split() for line in lines[1:]]
    check([r[0] for r in rows] == [words_s2, second_s3, words_s3, self_help], "rows:\n" + out)
    check([r[1] for r in rows] == ["S2", "S3", "S3", "S4"], "severities:\n" + out)
    check(all(r[6] == "yes" for r in rows), "the machine is connected:\n" + out)
    check(re.fullmatch(r"\d{4}-\d\d-\d\d", rows[0][8]) and rows[0][9].endswith("Z"),
          "due time:\n" + out)
    listing = desk.json("alice", "tickets")
    check(set(listing) == {"notices", "tickets"} and listing["notices"] == [], "%r" % listing)
    first = listing["tickets"][0]
    check(set(first) == {"id", "device", "hostname", "title", "description", "tier", "status",
                         "assignee", "created", "updated", "severity", "category", "vendor",
                         "vendor_case", "online", "follow_up", "due", "sla", "breaching"}, "members: %r" % sorted(first))
    check(first["severity"] == "S2" and first["category"] == "disk" and first["online"] is True,
          "first: %r" % first)
    check(first["due"] == first["sla"]["first_response"]["due"] and first["breaching"] == [],
          "the next due time is the first response's: %r" % first)
    check(set(first["sla"]) == {"first_response", "resolution", "vendor"} and
          first["sla"]["vendor"]["state"] == "idle", "clocks: %r" % first["sla"])

    # The machine goes away: ONLINE says so.
    desk.raw.sock.close()
    wait_for("the machine offline", lambda: not desk.relay.devices()[0]["online"])
    check(all(not t["online"] for t in desk.json("alice", "tickets")["tickets"]), "still online")
    _, out, _ = desk.ssh("alice", "tickets")
    check(all(line.split()[6] == "no" for line in out.splitlines()[1:]), "ONLINE:\n" + out)


@case
def case_queue_filters_and_their_bad_values():
    desk = Desk()
    mine = desk.open_ticket("Printer offline")
    other = desk.open_ticket("Monitor flickers")
    done = desk.open_ticket("Mouse broken")
    vendor = desk.open_ticket("ERP crashes at login")
    desk.ssh("alice", "ticket", "take", mine)
    desk.ssh("bob", "ticket", "take", done)
    desk.ssh("bob", "ticket", "resolve", done, "new", "mouse")
    # Another part of the desk hands tickets to vendors: its status and follow-up time.
    number = int(vendor[2:])
    now = int(time.time() * 1000)
    desk.sql("UPDATE tickets SET status = 'waiting-vendor', follow_up = ? WHERE id = ?",
             now - MINUTE, number)
    desk.sql("INSERT INTO ticket_changes (ticket_id, time, field, value, actor) "
             "VALUES (?, ?, 'status', 'waiting-vendor', 'tech:alice')", number, now - HOUR)
    later = desk.open_ticket("Second ERP problem")
    desk.sql("UPDATE tickets SET status = 'waiting-vendor', follow_up = ? WHERE id = ?",
             now + HOUR, int(later[2:]))

    # Without --status, what is still to do; resolved and closed tickets with --status.
    check(done not in desk.queue("alice"), "a resolved ticket in the queue")
    check(desk.queue("alice", "--status", "resolved") == [done], "--status resolved")
    check(done in desk.queue("alice", "--status", "all"), "--status all")
    check(desk.queue("alice", "--mine") == [mine], "--mine")
    check(desk.queue("bob", "--mine") == [], "bob's resolved ticket is done")
    check(desk.queue("bob", "--mine", "--status", "all") == [done], "--mine --status all")
    check(desk.queue("carol", "--assignee", "alice") == [mine], "--assignee")
    check(sorted(desk.queue("alice", "--unassigned")) == sorted([other, vendor, later]),
          "--unassigned: %r" % desk.queue("alice", "--unassigned"))
    check(desk.queue("alice", "--follow-up-due") == [vendor],
          "--follow-up-due: %r" % desk.queue("alice", "--follow-up-due"))
    check(desk.queue("alice", "--follow-up-due", "--tier", "2") == [], "--follow-up-due tier 2")

    for words, needle in ((["--tier", "7"], "--tier wants 0, 1, 2, 3 or 4, or all"),
                          (["--status", "pending"], "--status wants new, open, waiting-user"),
                          (["--unassigned", "--mine"],
                           "--unassigned and --mine or --assignee exclude each other"),
                          (["--breaching", "now"], "unexpected argument 'now'")):
        status, out, err = desk.ssh("alice", "tickets", *words, expect=None)
        check(status == 2 and needle in err and "usage: tickets" in err and out == "",
              "tickets %s: %d %r %r" % (words, status, out, err))


@case
def case_devices_over_ssh_for_technicians():
    desk = Desk()
    first = desk.open_ticket("Printer offline")
    desk.open_ticket("Scanner offline")
    done = desk.open_ticket("Mouse broken")
    desk.ssh("bob", "ticket", "take", done)
    desk.ssh("bob", "ticket", "resolve", done, "replaced")
    devices = desk.json("alice", "devices")
    check(len(devices) == 1, "devices: %r" % devices)
    device = devices[0]
    check(set(device) == {"id", "hostname", "online", "last_seen", "open_tickets"},
          "members: %r" % device)
    check(device["id"] == "D-1" and device["online"] is True and device["open_tickets"] == 2,
          "device: %r" % device)
    _, out, _ = desk.ssh("audrey", "devices")
    header, row = out.splitlines()[0], out.splitlines()[1].split()
    check(header.split()[:3] == ["ID", "HOSTNAME", "ONLINE"], "header: " + header)
    check(row[0] == "D-1" and row[2] == "yes" and row[-1] == "2", "row: %r" % row)
    # A vendor sees the machines of the tickets handed to it, and nothing else.
    check(desk.json("vera", "devices") == [], "a vendor saw every machine")
    desk.admin("user", "lead", "carol", "on")
    desk.admin("user", "grant", "vera", first)
    check([d["id"] for d in desk.json("vera", "devices")] == ["D-1"], "vendor's devices")
    status, out, err = desk.ssh("alice", "devices", "--all", expect=None)
    check(status == 2 and "usage: devices [--json]" in err and out == "", "bad: %r" % err)


# ---- assignment ------------------------------------------------------------------------------

@case
def case_assign_by_a_lead_or_the_assignee_only():
    desk = Desk(leads=("carol",))
    ticket = desk.open_ticket("Printer offline")
    out, _ = desk.admin("user", "list")
    leads = {line.split()[0]: line.split()[3] for line in out.splitlines()[1:]}
    check(out.splitlines()[0].split()[3] == "LEAD" and leads["carol"] == "yes" and
          leads["bob"] == "-", "user list:\n" + out)

    # bob is neither a lead nor the assignee: refused, audited, nothing changed.
    entries = expect_refused(desk, "bob", ["ticket", "assign", ticket, "alice"], 77,
                             "only a lead, an admin or the ticket's assignee")
    denied = [e for e in entries if e["action"] == "access.denied"]
    check(len(denied) == 1 and denied[0]["actor"] == "tech:bob" and
          denied[0]["subject"] == ticket and denied[0]["details"]["to"] == "alice",
          "the refusal is audited: %r" % entries)

    # The lead assigns, with a reason; the ticket opens; alice is told in her next listing.
    _, out, _ = desk.ssh("carol", "ticket", "assign", ticket, "alice", "--reason",
                         "printers are hers")
    check(out == "%s assigned to alice\n" % ticket, "assign: %r" % out)
    shown = desk.show("carol", ticket)
    check(shown["assignee"] == "alice" and shown["status"] == "open", "ticket: %r" % shown)
    event = [e for e in shown["events"] if e["kind"] == "ticket.assigned"][-1]
    check(event["details"] == {"assignee": "alice", "previous": "-",
                               "reason": "printers are hers"}, "event: %r" % event)
    check([e for e in desk.audit() if e["action"] == "ticket.assign"], "assign not audited")
    _, out, _ = desk.ssh("alice", "tickets")
    check(out.startswith("notice ") and ("%s: %s was assigned to you by carol: printers are hers"
                                         % (ticket, ticket)) in out.splitlines()[0],
          "alice's notice:\n" + out)
    check(not desk.ssh("alice", "tickets")[1].startswith("notice"), "the notice came back")

    # The assignee passes it on; the lead takes it back from bob, who is told.
    desk.ssh("alice", "ticket", "assign", ticket, "bob")
    desk.ssh("carol", "ticket", "assign", ticket, "carol")
    notices = desk.json("bob", "tickets")["notices"]
    check([n["text"] for n in notices] == [
        "%s was assigned to you by alice" % ticket,
        "%s was reassigned from you to carol by carol" % ticket], "bob's notices: %r" % notices)
    check(desk.json("bob", "tickets")["notices"] == [], "notices are shown once")
    # An admin may assign; an auditor may not; a vendor does not even see the command.
    desk.ssh("adam", "ticket", "assign", ticket, "bob")
    expect_refused(desk, "audrey", ["ticket", "assign", ticket, "alice"], 77,
                   "permission denied: role auditor may not use 'ticket assign'")
    expect_refused(desk, "alice", ["ticket", "assign", ticket, "alice"], 77,
                   "only a lead, an admin or the ticket's assignee (bob)")
    expect_refused(desk, "bob", ["ticket", "assign", ticket, "bob"], 1,
                   "%s is already assigned to bob" % ticket)
    # Lead off: carol is refused now.
    desk.admin("user", "lead", "carol", "off")
    expect_refused(desk, "carol", ["ticket", "assign", ticket, "alice"], 77,
                   "only a lead, an admin or the ticket's assignee")
    check([e for e in desk.audit() if e["action"] == "user.lead"][-1]["details"] == {"lead": False},
          "user lead not audited")
    desk.relay.verify_audit()


@case
def case_assign_names_unknown_disabled_and_expired_accounts():
    desk = Desk(leads=("carol",))
    ticket = desk.open_ticket("Printer offline")
    desk.admin("user", "disable", "lena")
    desk.sql("UPDATE users SET expires = ? WHERE name = 'vera'", int(time.time() * 1000) - HOUR)
    for words, status, needle in (
            (["zed"], 1, "no account named 'zed'"),
            (["lena"], 1, "the account 'lena' is disabled"),
            (["vera"], 1, "the account 'vera' expired on "),
            (["audrey"], 1, "'audrey' is an auditor account, which works no tickets"),
            (["Zed"], 2, "USER wants an account name"),
            (["bob", "--reason", ""], 2, "--reason needs a text of 1 to 4000 bytes"),
            ([], 2, "USER wants an account name")):
        entries = expect_refused(desk, "carol", ["ticket", "assign", ticket] + words, status,
                                 needle)
        check(not [e for e in entries if e["action"] == "ticket.assign"], "audited as done")
    expect_refused(desk, "carol", ["ticket", "assign", "T-99", "bob"], 1, "no ticket T-99")
    # A resolved ticket is reopened first.
    desk.ssh("carol", "ticket", "resolve", ticket, "fixed")
    expect_refused(desk, "carol", ["ticket", "assign", ticket, "bob"], 1, "reopen it first")
    # The admin's command on the relay host names its bad input too.
    _, err = desk.admin("user", "lead", "zed", "on", expect=1)
    check("no user named 'zed'" in err, "lead of nobody: %r" % err)
    _, err = desk.admin("user", "lead", "bob", "maybe", expect=2)
    check("say on or off" in err, "lead maybe: %r" % err)
    _, err = desk.admin("user", "lead", "bob", expect=2)
    check("say on or off" in err, "lead without on|off: %r" % err)


@case
def case_take_over_needs_a_reason_and_tells_the_holder():
    desk = Desk()
    ticket = desk.open_ticket("Printer offline")
    desk.ssh("bob", "ticket", "take", ticket)
    expect_refused(desk, "carol", ["ticket", "take", ticket], 1,
                   "%s is held by bob; take it over with --steal REASON" % ticket)
    expect_refused(desk, "carol", ["ticket", "take", ticket, "--steal"], 2,
                   "--steal needs a reason")
    expect_refused(desk, "carol", ["ticket", "take", ticket, "--steal", ""], 2,
                   "--steal needs a reason")
    _, out, _ = desk.ssh("carol", "ticket", "take", ticket, "--steal", "bob is on leave")
    check(out == "%s taken over from bob; assigned to carol\n" % ticket, "steal: %r" % out)
    shown = desk.show("carol", ticket)
    taken = [e for e in shown["events"] if e["kind"] == "ticket.taken"][-1]
    check(shown["assignee"] == "carol" and taken["details"] == {
        "assignee": "carol", "previous": "bob", "steal": "bob is on leave"}, "%r" % taken)
    audited = [e for e in desk.audit() if e["action"] == "ticket.take"][-1]
    check(audited["details"]["steal"] == "bob is on leave" and audited["actor"] == "tech:carol",
          "audit: %r" % audited)
    # bob finds out at the top of his next listing, in text and in --json, once.
    _, out, _ = desk.ssh("bob", "tickets")
    check(re.match(r"notice \S+ \S+ %s: %s was taken over from you by carol: bob is on leave\n"
                   % (ticket, ticket), out), "bob's listing:\n" + out)
    check(desk.json("bob", "tickets")["notices"] == [], "the notice is shown once")
    desk.ssh("bob", "ticket", "take", ticket, "--steal", "back from leave")
    notices = desk.json("carol", "tickets")["notices"]
    check(len(notices) == 1 and notices[0]["ticket"] == ticket and
          notices[0]["text"] == "%s was taken over from you by bob: back from leave" % ticket,
          "carol's notice in --json: %r" % notices)
    # Taking one's own or a free ticket needs no reason.
    desk.ssh("bob", "ticket", "take", ticket)
    desk.relay.verify_audit()


# ---- classification ------------------------------------------------------------------------

@case
def case_a_new_ticket_is_classified_from_its_diagnostics():
    desk = Desk()
    ticket = desk.open_ticket("Cannot save my work", "Word shows an error when I save",
                              diagnostics=VAR_FULL)
    shown = desk.show("alice", ticket)
    sha = [e["hash"] for e in shown["evidence"] if e["kind"] == "diagnostics"][0]
    check(shown["severity"] == "S2" and shown["category"] == "disk", "%r" % shown)
    check(shown["fingerprint"] == VAR_FULL_FINGERPRINT, "fingerprint %r" % shown["fingerprint"])
    why = "S2: /var 97% full, diagnostics sha256:" + sha
    check(shown["classification"]["severity"]["why"] == why and
          shown["classification"]["severity"]["by"] == "relay", "%r" % shown["classification"])
    event = [e for e in shown["events"] if e["kind"] == "ticket.classified"]
    check(len(event) == 1 and event[0]["details"]["reasons"][0]["rule"] == "disk-full" and
          event[0]["details"]["diagnostics"] == sha, "timeline: %r" % event)
    _, out, _ = desk.ssh("alice", "ticket", "show", ticket)
    check(re.search(r"\n  severity: S2 +%s\n" % re.escape(why), out) and
          re.search(r"\n  category: disk +disk: /var 97% full", out), "ticket show:\n" + out)
    # Words alone, and diagnostics that are not a document: the words decide, and it says why.
    login = desk.open_ticket("I can't log in", "my password is not accepted")
    check(desk.show("alice", login)["category"] == "account", "words alone")
    junk = desk.open_ticket("Printer jammed", diagnostics=[1, 2, 3])
    shown = desk.show("alice", junk)
    event = [e for e in shown["events"] if e["kind"] == "ticket.classified"][0]
    check(shown["category"] == "printing" and shown["fingerprint"] is None and
          event["details"]["diagnostics_problem"] == "the diagnostics are not a JSON object",
          "unreadable diagnostics: %r" % event)


@case
def case_new_diagnostics_classify_again_but_keep_a_technicians_choice():
    desk = Desk()
    ticket = desk.open_ticket("Cannot print", "the printer shows an error")
    check(desk.show("bob", ticket)["category"] == "printing",
          "start: %r" % desk.show("bob", ticket)["classification"])
    desk.ssh("bob", "ticket", "classify", ticket, "--severity", "S1", "--reason",
             "the whole floor cannot print")

    def diag(document):
        proc = subprocess.Popen(desk.ssh_argv("bob") + ["diag", ticket], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        desk.raw.grant("diag", grant_id="G-%d" % time.monotonic_ns())
        ours, _, _ = desk.raw.expect_open("diag")
        desk.raw.confirm(ours)
        desk.raw.send(ours, json.dumps(document).encode())
        desk.raw.send_eof(ours)
        desk.raw.close(ours, status=0)
        status, out, err = finished(proc)
        check(status == 0, "diag: %d %r" % (status, err))
        return re.search(r"evidence ([0-9a-f]{64})", out).group(1)

    sha = diag(VAR_FULL)
    shown = desk.show("bob", ticket)
    check(shown["severity"] == "S1" and shown["category"] == "disk" and
          shown["fingerprint"] == VAR_FULL_FINGERPRINT, "after diag: %r" % shown)
    event = [e for e in shown["events"] if e["kind"] == "ticket.classified"][-1]
    check(event["actor"] == "relay" and event["details"]["kept"] == ["severity"] and
          event["details"]["diagnostics"] == sha and
          event["details"]["previous"] == {"category": "printing"}, "event: %r" % event)
    check(shown["classification"]["severity"]["by"] == "tech:bob" and
          shown["classification"]["category"]["by"] == "relay", "%r" % shown["classification"])
    # A failed CUPS service instead: the category follows, the fingerprint changes.
    diag(CUPS_FAILED)
    shown = desk.show("bob", ticket)
    check(shown["severity"] == "S1" and shown["category"] == "printing" and
          shown["fingerprint"] == hashlib.sha256(
              b"tierline-fingerprint 1\nservice-failed-printing cups.service\n").hexdigest(),
          "after the second diag: %r" % shown)


@case
def case_classify_needs_a_reason_and_moves_the_sla_target():
    desk = Desk(desk_json=DESK_24X7)
    ticket = desk.open_ticket("The scanner is slow")
    shown = desk.show("bob", ticket)
    category = shown["category"]
    check(shown["severity"] == "S3" and
          shown["sla"]["clocks"]["first_response"]["target_ms"] == 4 * HOUR, "S3: %r" % shown)
    for words, status, needle in (
            (["--severity", "S1"], 2, "--reason TEXT is required"),
            (["--reason", "why"], 2, "say what changes: --severity, --category or both"),
            (["--severity", "S5", "--reason", "why"], 2, "--severity wants S1, S2, S3 or S4"),
            (["--category", "floppy", "--reason", "why"], 2, "--category wants account"),
            (["--severity", "S1", "--reason", ""], 2, "--reason needs a text")):
        expect_refused(desk, "bob", ["ticket", "classify", ticket] + words, status, needle)
    expect_refused(desk, "vera", ["ticket", "classify", ticket, "--severity", "S1", "--reason",
                                  "x"], 77, "permission denied")
    expect_refused(desk, "audrey", ["ticket", "classify", ticket, "--severity", "S1",
                                    "--reason", "x"], 77, "permission denied")
    _, out, _ = desk.ssh("bob", "ticket", "classify", ticket, "--severity", "S1", "--category",
                         "hardware", "--reason", "the scanner is failing")
    check(out == "%s classified: severity S1, category hardware\n" % ticket, "%r" % out)
    shown = desk.show("bob", ticket)
    check(shown["severity"] == "S1" and shown["category"] == "hardware" and
          shown["sla"]["clocks"]["first_response"]["target_ms"] == 30 * MINUTE,
          "the S1 target: %r" % shown["sla"])
    check(shown["classification"]["severity"] == {
        "value": "S1", "by": "tech:bob", "why": "the scanner is failing",
        "time": shown["classification"]["severity"]["time"]}, "%r" % shown["classification"])
    _, out, _ = desk.ssh("bob", "ticket", "show", ticket)
    check("\n  severity: S1           set by bob: the scanner is failing\n" in out, out)
    entry = [e for e in desk.audit() if e["action"] == "ticket.classify"]
    check(len(entry) == 1 and entry[0]["details"]["reason"] == "the scanner is failing" and
          entry[0]["details"]["previous"] == {"severity": "S3", "category": category},
          "audit: %r" % entry)
    rows = desk.sql("SELECT field, value, actor, reason FROM ticket_changes WHERE ticket_id = ? "
                    "AND actor = 'tech:bob'", int(ticket[2:]))
    check(rows == [("severity", "1", "tech:bob", "the scanner is failing"),
                   ("category", "hardware", "tech:bob", "the scanner is failing")],
          "history: %r" % rows)
    desk.ssh("bob", "ticket", "resolve", ticket, "replaced")
    expect_refused(desk, "bob", ["ticket", "classify", ticket, "--severity", "S2", "--reason",
                                 "x"], 1, "reopen it first")


# ---- SLA clocks -----------------------------------------------------------------------------

@case
def case_first_response_is_a_note_not_a_take():
    desk = Desk(desk_json=DESK_24X7)
    ticket = desk.open_ticket("The scanner is slow")
    desk.ssh("alice", "ticket", "take", ticket)
    shown = desk.show("alice", ticket)
    check(shown["first_response"] is None and
          shown["sla"]["clocks"]["first_response"]["state"] == "running",
          "a take answered the user: %r" % shown["sla"])
    # A vendor's note is the vendor's, not the desk's answer.
    desk.admin("user", "lead", "alice", "on")
    desk.admin("user", "grant", "vera", ticket)
    desk.ssh("vera", "ticket", "note", ticket, "we", "are", "looking")
    check(desk.show("alice", ticket)["first_response"] is None, "a vendor's note answered")
    desk.ssh("alice", "ticket", "note", ticket, "restarting", "the", "scanner", "service")
    shown = desk.show("alice", ticket)
    first = shown["first_response"]
    check(first is not None and shown["sla"]["clocks"]["first_response"]["state"] == "met" and
          shown["sla"]["clocks"]["first_response"]["stopped_at"] == first, "%r" % shown["sla"])
    desk.ssh("alice", "ticket", "note", ticket, "a", "second", "note")
    check(desk.show("alice", ticket)["first_response"] == first, "a second response counted")
    rows = desk.sql("SELECT value, actor FROM ticket_changes WHERE ticket_id = ? AND "
                    "field = 'response'", int(ticket[2:]))
    check(rows == [("note", "tech:alice")], "response rows: %r" % rows)
    _, out, _ = desk.ssh("alice", "ticket", "show", ticket)
    check(re.search(r"\nSLA clocks \(UTC\):\n  first response  met +\d+m of 4h +due ", out) and
          re.search(r"\n  resolution      running +\d+m of 16h +due ", out) and
          "\n  vendor          idle\n" in out, "ticket show:\n" + out)


@case
def case_breaching_lists_tickets_by_the_clock_that_warns():
    desk = Desk(desk_json=DESK_24X7)
    fresh = desk.open_ticket("The scanner is slow")                  # S3: 4h to answer
    warned = desk.open_ticket("The plotter is slow")
    breached = desk.open_ticket("The copier is slow")
    answered = desk.open_ticket("The fax is slow")
    desk.backdate(warned, 3 * HOUR + 30 * MINUTE)                    # 87% of 4h
    desk.backdate(breached, 5 * HOUR)                               # past 4h
    desk.backdate(answered, 5 * HOUR)
    desk.ssh("alice", "ticket", "note", answered, "looking", "into", "it")  # answered, late
    listing = desk.json("alice", "tickets", "--breaching")["tickets"]
    by_id = {t["id"]: t for t in listing}
    check(set(by_id) == {warned, breached, answered}, "--breaching: %r" % list(by_id))
    check(by_id[warned]["breaching"] == [{"clock": "first_response", "state": "warning"}] and
          by_id[breached]["breaching"] == [{"clock": "first_response", "state": "breached"}],
          "which clocks: %r" % listing)
    check(by_id[answered]["breaching"] == [{"clock": "first_response", "state": "breached"}] and
          by_id[answered]["sla"]["first_response"]["state"] == "breached",
          "an answer after the due time: %r" % by_id[answered])
    check(fresh not in by_id, "a fresh ticket is breaching")
    _, out, _ = desk.ssh("alice", "tickets", "--breaching")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    check(rows[warned][10] == "warning:first_response" and
          rows[breached][10] == "breached:first_response", "SLA column:\n" + out)
    # All S3: by the next due time, the breached first response's first, then the warned one's,
    # then the answered ticket's resolution.
    check([t["id"] for t in listing] == [breached, warned, answered],
          "order: %r" % [t["id"] for t in listing])
    shown = desk.show("alice", breached)
    check(shown["sla"]["clocks"]["first_response"]["state"] == "breached" and
          shown["sla"]["clocks"]["resolution"]["warning"] is False, "%r" % shown["sla"])


@case
def case_due_times_follow_business_hours_in_the_calendars_zone():
    office = {"sla": {"calendar": {"zone": "Europe/Berlin", "hours": {
        day: "09:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")}},
        "targets": DESK_24X7["sla"]["targets"]}}
    desk = Desk(desk_json=office)
    ticket = desk.open_ticket("The scanner is slow")                 # S3: 4h to answer
    # Opened on Friday 10 January 2025 at 16:30 in Berlin (15:30 UTC).
    number, friday = int(ticket[2:]), 1736523000000
    created = desk.sql("SELECT created FROM tickets WHERE id = ?", number)[0][0]
    desk.backdate(ticket, created - friday)
    shown = desk.show("alice", ticket)
    first = shown["sla"]["clocks"]["first_response"]
    check(shown["sla"]["zone"] == "Europe/Berlin" and first["due"] == friday + 68 * HOUR and
          first["state"] == "breached", "due Monday 12:30 CET: %r" % first)
    _, out, _ = desk.ssh("alice", "ticket", "show", ticket)
    check(re.search(r"\n  first response  breached +\d+h(\d\dm)? of 4h +due 2025-01-13 "
                    r"12:30\+01:00\n", out),
          "ticket show:\n" + out)


@case
def case_a_bad_desk_json_stops_the_relay():
    relay = Relay("relay")
    path = os.path.join(relay.dir, "desk.json")
    cases = (
        ('{"sla": {"calendar": {"zone": "Mars/Olympus_Mons", "hours": {"mon": "09:00-17:00"}}, '
         '"targets": {"S1": {"first_response": "1h", "resolution": "2h"}, '
         '"S2": {"first_response": "1h", "resolution": "2h"}, '
         '"S3": {"first_response": "1h", "resolution": "2h"}, '
         '"S4": {"first_response": "1h", "resolution": "2h"}}}}',
         "sla.calendar.zone: unknown time zone 'Mars/Olympus_Mons'"),
        ('{"sla": {"calendar": {"24x7": true},\n  "targets": }}', "desk.json:2:"),
        ('{"sla": {"calendar": {"24x7": true}, "targets": {"S5": {}}}}',
         "sla.targets: unknown severity 'S5' (S1, S2, S3, S4)"))
    for text, needle in cases:
        with open(path, "w") as f:
            f.write(text)
        out, err = run(BIN + "/tierline-relay", "serve", "--data", relay.dir, "--listen",
                       "127.0.0.1:%d" % relay.port, expect=1, timeout=60)
        check(("refusing to serve: %s: %s" % (path, needle)) in err,
              "desk.json %r: stderr %r" % (text, err))
        check(not relay.accepting(), "the relay listened")
    # Fixed (here: removed), it serves with the default.
    os.unlink(path)
    relay.start()
    check(relay.alive(), "the relay did not start without desk.json")
    relay.kill(signal.SIGTERM)


# ---- the console ----------------------------------------------------------------------------

@case
def case_the_console_runs_the_new_commands():
    desk = Desk(leads=("carol",))
    ticket = desk.open_ticket("Cannot save files", diagnostics=VAR_FULL)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env.update(HOME=WORK, XDG_CONFIG_HOME=os.path.join(WORK, "xdg"),
               XDG_CACHE_HOME=os.path.join(WORK, "cache"),
               TIERLINE_RELAY="127.0.0.1:%d" % desk.relay.ssh_port, TIERLINE_USER="carol",
               TIERLINE_IDENTITY=desk.keys["carol"], TIERLINE_HOST_KEY=desk.relay.fingerprint)

    def console(*words, status=0):
        desk.keepalive()
        proc = subprocess.run([BIN + "/tierline", *words], capture_output=True, timeout=120,
                              env=env, stdin=subprocess.DEVNULL)
        check(proc.returncode == status, "tierline %s: exit %d\n%s\n%s" % (
            " ".join(words), proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout.decode(), proc.stderr.decode()

    check(json.loads(console("devices", "--json")[0])[0]["id"] == "D-1", "tierline devices")
    check(console("ticket", "assign", ticket, "bob")[0] == "%s assigned to bob\n" % ticket,
          "tierline ticket assign")
    console("ticket", "classify", ticket, "--severity", "S1", "--reason", "outage")
    listing = json.loads(console("tickets", "--tier", "all", "--breaching", "--json")[0])
    check(listing["tickets"] == [], "breaching: %r" % listing)
    _, err = console("ticket", "take", ticket, "--steal", status=2)
    check("--steal needs a reason" in err, "tierline take --steal: %r" % err)
    help_text = console("ticket", "take", "--help")[0]
    check("--steal REASON" in help_text, "help: %r" % help_text)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK
    sessions_relay.BIN, sessions_relay.WORK = BIN, WORK


def stop_relays():
    # A clean stop, so that a sanitizer build reports leaks and errors here.
    for desk in DESKS:
        if desk.relay.alive():
            code = desk.relay.kill(signal.SIGTERM)
            check(code == 0, "the relay exited %r on SIGTERM" % code)


if __name__ == "__main__":
    sys.exit(tlcase.main("desk_queues.py BIN_DIR", "tl-desk-", setup_globals, started=STARTED,
                         track_popen=True, home=True, passed=stop_relays, tail=60))
