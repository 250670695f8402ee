#!/usr/bin/env python3
"""Technicians end to end: a real relay serving agents over TLS and
technicians over SSH, a real enrolled agent, and the stock OpenSSH client.
Each case runs in its own process:

    technicians.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import relay_agent
from relay_agent import Agent, Relay
from tlcase import CASES, Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None

ROLES = {"alice": "tier1", "bob": "tier2", "carol": "tier3", "vera": "tier4",
         "audrey": "auditor", "adam": "admin"}


class Desk:
    """A relay with technician accounts, an enrolled running agent and one ticket."""

    def __init__(self, ticket=True):
        self.relay = Relay("relay")
        self.relay.ssh_port = free_port()
        self.keys = {}
        for name, role in ROLES.items():
            key = os.path.join(WORK, name)
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key)
            run(BIN + "/tierline-relay", "user", "add", name, "--role", role, "--key",
                key + ".pub", "--data", self.relay.dir)
            self.keys[name] = key
        known, _ = run(BIN + "/tierline-relay", "host-key", "--data", self.relay.dir,
                       "--known-hosts", "127.0.0.1:%d" % self.relay.ssh_port)
        self.known_hosts = os.path.join(WORK, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(known)
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", check_status=None)[0] == 0)
        self.agent = Agent("agent")
        self.agent.enroll(self.relay.code())
        self.agent.start()
        wait_for("the agent online", lambda: self.agent.status().get("connected"))
        self.ticket = None
        if ticket:
            self.ticket, self.evidence, _, _ = self.agent.help("the printer says it is offline")

    def ssh_argv(self, user, key=None, tty=False):
        argv = ["ssh", "-F", "/dev/null", "-i", key or self.keys[user], "-p",
                str(self.relay.ssh_port), "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
        if tty:
            argv.append("-tt")
        return argv + [user + "@127.0.0.1"]

    def ssh(self, user, *words, check_status=0, key=None, input_bytes=None, text=True):
        """Runs one command as user; returns (status, stdout, stderr)."""
        proc = subprocess.run(self.ssh_argv(user, key) + list(words), capture_output=True,
                              timeout=60, input=input_bytes,
                              stdin=subprocess.DEVNULL if input_bytes is None else None)
        out, err = proc.stdout, proc.stderr
        if text:
            out, err = out.decode(errors="replace"), err.decode(errors="replace")
        if check_status is not None and proc.returncode != check_status:
            raise Failure("ssh %s %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                user, " ".join(words), proc.returncode, check_status, out, err))
        return proc.returncode, out, err

    def ssh_json(self, user, *words):
        _, out, _ = self.ssh(user, *(list(words) + ["--json"]))
        return json.loads(out)

    def audit(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]


# ---- tickets and evidence over the stock OpenSSH client ---------------------------------

@case
def case_openssh_lists_and_shows_tickets():
    desk = Desk()
    _, out, _ = desk.ssh("alice", "tickets")
    check(desk.ticket in out and "the printer says it is offline" in out, "tickets: " + out)
    listed = desk.ssh_json("alice", "tickets")
    check([t["id"] for t in listed] == [desk.ticket], "tickets --json: %r" % listed)
    shown = desk.ssh_json("alice", "ticket", "show", desk.ticket)
    hashes = [e["hash"] for e in shown["evidence"]]
    check(desk.evidence in hashes, "evidence %s not in %r" % (desk.evidence, hashes))
    # The admin's local view and the technician's agree.
    local = desk.relay.ticket(desk.ticket)
    check(local["title"] == shown["title"] and local["status"] == shown["status"],
          "local %r vs ssh %r" % (local, shown))
    wait_for("alice's login in the audit log",
             lambda: [e for e in desk.audit()
                      if e["action"] == "login.ok" and e["actor"] == "tech:alice"])
    desk.relay.verify_audit()


@case
def case_take_note_resolve_land_on_the_timeline_and_in_the_audit():
    desk = Desk()
    _, out, _ = desk.ssh("bob", "ticket", "take", desk.ticket)
    check("assigned to bob" in out, out)
    desk.ssh("bob", "ticket", "note", desk.ticket, "cleared", "the", "queue;", "'quoted'")
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "printer", "driver", "reinstalled")
    shown = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    check(shown["assignee"] == "bob" and shown["status"] == "resolved", "ticket: %r" % shown)
    timeline = json.dumps(shown["events"])
    # The relay splits the line as documented: the single quotes group, then go.
    check("cleared the queue; quoted" in timeline, "note text changed: " + timeline)
    check("printer driver reinstalled" in timeline, "resolution missing: " + timeline)
    actions = [e["action"] for e in desk.audit()]
    for action in ("ticket.take", "ticket.note", "ticket.resolve"):
        check(action in actions, "%s not audited: %r" % (action, actions))
    mine = desk.ssh_json("bob", "tickets", "--mine")
    check([t["id"] for t in mine] == [desk.ticket], "--mine: %r" % mine)
    check(desk.ssh_json("carol", "tickets", "--mine") == [], "carol has tickets she never took")
    desk.relay.verify_audit()


@case
def case_evidence_get_streams_the_exact_bytes():
    desk = Desk()
    _, blob, _ = desk.ssh("audrey", "evidence", "get", desk.ticket, desk.evidence, text=False)
    check(hashlib.sha256(blob).hexdigest() == desk.evidence,
          "downloaded %d bytes hash to %s" % (len(blob), hashlib.sha256(blob).hexdigest()))
    check(json.loads(blob)["sections"] if b"sections" in blob else json.loads(blob),
          "the diagnostics are not JSON")
    _, again, _ = desk.ssh("alice", "evidence", "get", desk.ticket, desk.evidence[:12], text=False)
    check(again == blob, "a unique prefix gave different bytes")
    status, _, err = desk.ssh("alice", "evidence", "get", desk.ticket, "0" * 64, check_status=None)
    check(status == 1 and err.strip(), "unknown evidence: exit %d, stderr %r" % (status, err))
    status, _, err = desk.ssh("alice", "evidence", "get", desk.ticket, "abc", check_status=None)
    check(status == 2 and "usage" in err, "short prefix: exit %d, stderr %r" % (status, err))
    check("evidence.get" in [e["action"] for e in desk.audit()], "download not audited")


@case
def case_roles_are_enforced_and_denials_audited():
    desk = Desk()
    # The auditor reads but never changes anything.
    desk.ssh("audrey", "ticket", "show", desk.ticket)
    status, _, err = desk.ssh("audrey", "ticket", "note", desk.ticket, "hello", check_status=None)
    check(status == 77 and "permission denied" in err, "auditor note: %d %r" % (status, err))
    status, _, err = desk.ssh("adam", "ticket", "take", desk.ticket, check_status=None)
    check(status == 77, "admin take: %d %r" % (status, err))
    denied = [e for e in desk.audit() if e["action"] == "access.denied"]
    check(len(denied) >= 2, "denials not audited: %r" % denied)
    shown = desk.relay.ticket(desk.ticket)
    check(shown["status"] == "new" and not shown.get("assignee"),
          "a refused command changed the ticket: %r" % shown)
    # A vendor sees nothing that was not handed to it.
    check(desk.ssh_json("vera", "tickets") == [], "tier4 sees unassigned tickets")
    status, _, _ = desk.ssh("vera", "ticket", "show", desk.ticket, check_status=None)
    check(status != 0, "tier4 read a ticket not handed to it")
    # help lists only what the role may use.
    _, help_out, _ = desk.ssh("audrey", "help")
    check("ticket note" not in help_out and "tickets" in help_out, "auditor help: " + help_out)


@case
def case_unknown_keys_and_bad_commands_are_refused():
    desk = Desk(ticket=False)
    stranger = os.path.join(WORK, "stranger")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger)
    status, out, err = desk.ssh("alice", "tickets", key=stranger, check_status=None)
    check(status == 255 and out == "", "stranger got in: %d %r %r" % (status, out, err))
    wait_for("the refused login in the audit log",
             lambda: [e for e in desk.audit() if e["action"] == "login.failed"])
    status, _, err = desk.ssh("alice", "frobnicate", check_status=None)
    check(status == 2 and "usage" in err.lower() or "unknown" in err.lower(),
          "unknown command: %d %r" % (status, err))
    status, _, err = desk.ssh("alice", "ticket", "show", check_status=None)
    check(status == 2, "missing argument: %d %r" % (status, err))
    status, _, err = desk.ssh("alice", "ticket", "show", "T-999", check_status=None)
    check(status == 1 and err.strip(), "no such ticket: %d %r" % (status, err))
    status, _, err = desk.ssh("alice", "ticket", "show", "T-1x", check_status=None)
    check(status == 2, "malformed ticket id: %d %r" % (status, err))
    # The relay still serves everyone.
    desk.ssh("bob", "whoami")
    check(desk.agent.status().get("connected"), "the agent lost its tunnel")


def main():
    global BIN, WORK
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: technicians.py BIN_DIR CASE\ncases: " + " ".join(sorted(CASES)))
        return 2
    BIN = os.path.abspath(sys.argv[1])
    WORK = tempfile.mkdtemp(prefix="tl-tech-")
    relay_agent.BIN, relay_agent.WORK = BIN, WORK
    os.environ["HOME"] = WORK
    started = []
    original_popen = subprocess.Popen

    def tracking_popen(*args, **kwargs):
        proc = original_popen(*args, **kwargs)
        started.append(proc)
        return proc

    subprocess.Popen = tracking_popen
    status = 1
    try:
        CASES[sys.argv[2]]()
        print("PASS " + sys.argv[2])
        status = 0
    except (Failure, subprocess.TimeoutExpired) as failure:
        print("FAIL %s: %s" % (sys.argv[2], failure))
        for name in sorted(os.listdir(WORK)):
            if name.endswith(".log"):
                with open(os.path.join(WORK, name), errors="replace") as f:
                    print("---- %s (last 40 lines)\n%s" % (name, "".join(f.readlines()[-40:])))
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(WORK, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
