#!/usr/bin/env python3
"""Agents witness the relay's audit log (docs/protocol.md §7.15, docs/audit-format.md §20): a real
relay and agent and the stock OpenSSH client. The agent keeps the latest checkpoint it saw and,
at each new one, checks a consistency proof; a ticket's close puts its checkpoint on the ticket;
a relay whose data directory was rolled back (a smaller tree, then a tree that does not extend the
one seen) is caught by the agent, which keeps both signed notes and reports them. Each case runs
in its own process:

    witness.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import relay_agent
from relay_agent import Agent, Relay
import technicians
import tlcase
from tlcase import case, check, free_port, wait_for


class Desk:
    """A serving relay with a tier-3 technician and an auditor, and a running agent."""

    def __init__(self):
        self.relay = Relay("relay")
        self.relay.ssh_port = free_port()
        self.keys = self.relay.add_technicians({"carol": "tier3", "audrey": "auditor"})
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("carol", "whoami", status=None)[0] == 0)
        self.agent = Agent("agent")
        self.agent.enroll(self.relay.code())
        self.agent.start()
        self.wait_online()

    def wait_online(self):
        wait_for("the device to be online", lambda: self.relay.devices()[0]["online"])

    def ssh(self, user, *words, status=0):
        argv = ["ssh", "-F", "/dev/null", "-i", self.keys[user], "-p", str(self.relay.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                user + "@127.0.0.1"] + list(words)
        proc = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if status is not None:
            check(proc.returncode == status, "ssh %s %s: exit %d\n%s" % (
                user, " ".join(words), proc.returncode, proc.stderr.decode(errors="replace")))
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def checkpoint(self):
        """The relay's latest signed checkpoint, as an auditor gets it."""
        return json.loads(self.ssh("audrey", "audit", "checkpoint", "--json")[1])

    def witness(self):
        return self.agent.status()["audit_witness"]

    def witnessed(self, size):
        wait_for("the agent to witness size %d" % size, lambda: self.witness()["size"] == size)

    def close_a_ticket(self, title):
        """A ticket from the machine, resolved and closed by tier 3: its close is checkpointed."""
        ticket = self.agent.help(title)[0]
        self.ssh("carol", "ticket", "resolve", ticket, "done")
        self.ssh("carol", "ticket", "close", ticket, "confirmed")
        return ticket

    def restart(self):
        check(self.relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("carol", "whoami", status=None)[0] == 0)
        self.wait_online()

    def log_actions(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]


@case
def case_the_agent_witnesses_each_checkpoint_and_a_close_is_on_its_ticket():
    d = Desk()
    # Nothing signed yet: nothing kept, nothing wrong.
    first = d.witness()
    check(first["size"] == 0 and first["conflicts"] == [], "before: %r" % first)
    ticket = d.close_a_ticket("printer offline")
    cp = d.checkpoint()
    # The relay announced it: the running agent asked for it without reconnecting.
    d.witnessed(cp["size"])
    w = d.witness()
    check(w["key"] and w["conflicts"] == [], "witness: %r" % w)
    pub, _ = tlcase.run(relay_agent.BIN + "/tierline-relay", "audit", "pubkey", "--data",
                        d.relay.dir)
    check(w["key"] in pub, "the pinned key %r is not the relay's audit key %r" % (w["key"], pub))
    # The ticket says which signed tree covers its close.
    shown = json.loads(d.ssh("carol", "ticket", "show", ticket, "--json")[1])
    marks = [e for e in shown["events"] if e["kind"] == "checkpoint"]
    check(len(marks) == 1, "checkpoint events: %r" % shown["events"])
    details = marks[0]["details"]
    check(details["size"] == cp["size"] and details["root"] == cp["root"],
          "ticket's checkpoint %r, relay's %r" % (details, cp))
    text = d.ssh("carol", "ticket", "show", ticket)[1].decode()
    check("checkpoint" in text and str(cp["size"]) in text, "ticket show: %s" % text)
    # A restart signs a shutdown checkpoint; the agent checks on reconnecting that it extends.
    d.restart()
    later = d.checkpoint()
    check(later["size"] > cp["size"], "restart: %r then %r" % (cp, later))
    d.witnessed(later["size"])
    check(d.witness()["conflicts"] == [], "after the restart: %r" % d.witness())
    status = tlcase.run(relay_agent.BIN + "/tierline-agent", "status", "--state",
                        d.agent.dir)[0]
    check("witnessed up to %d entries" % later["size"] in status, "status: %s" % status)


@case
def case_a_relay_rolled_back_is_caught_and_reported():
    d = Desk()
    d.close_a_ticket("printer offline")
    d.restart()
    # What the relay holds now is kept aside: a copy to roll back to.
    check(d.relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
    snapshot = d.relay.dir + ".snapshot"
    shutil.copytree(d.relay.dir, snapshot, symlinks=True)
    d.relay.start()
    d.wait_online()
    d.close_a_ticket("scanner offline")
    seen = d.checkpoint()
    d.witnessed(seen["size"])
    # The operator (or an intruder) puts the old directory back: the relay shows an older tree.
    check(d.relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
    shutil.rmtree(d.relay.dir)
    shutil.copytree(snapshot, d.relay.dir, symlinks=True)
    d.relay.start()
    d.wait_online()
    wait_for("the agent to catch the smaller tree",
             lambda: any(c["kind"] == "shrank" for c in d.witness()["conflicts"]))
    w = d.witness()
    check(w["size"] == seen["size"], "the kept checkpoint moved: %r" % w)
    wait_for("the report to reach the relay",
             lambda: all(c["reported"] for c in d.witness()["conflicts"]))
    reports = [e for e in d.log_actions() if e["action"] == "audit.conflict"]
    check(len(reports) == 1 and reports[0]["details"]["kind"] == "shrank" and
          reports[0]["subject"] == "D-1", "audit.conflict entries: %r" % reports)
    # Both signed notes are kept, so anyone with the audit key can check the claim.
    kept = reports[0]["details"]["kept"]
    check("\n%d\n" % seen["size"] in kept and reports[0]["details"]["shown"] != kept,
          "notes: %r" % reports[0]["details"])
    status = tlcase.run(relay_agent.BIN + "/tierline-agent", "status", "--state",
                        d.agent.dir)[0]
    check("CONFLICT shrank" in status, "status: %s" % status)
    # The rolled-back relay writes on until its tree is larger than the one seen: a tree that
    # does not extend it. Bounded: each round adds several entries and a checkpoint.
    for i in range(12):
        if d.checkpoint()["size"] > seen["size"]:
            break
        d.close_a_ticket("round %d" % i)
    check(d.checkpoint()["size"] > seen["size"], "the new branch did not outgrow the old")
    wait_for("the agent to catch the other history",
             lambda: any(c["kind"] == "not-extended" for c in d.witness()["conflicts"]))
    check(d.witness()["size"] == seen["size"], "the kept checkpoint moved: %r" % d.witness())


@case
def case_a_damaged_witness_file_is_said_and_left_as_it_is():
    """The machine's own record, damaged: status says so, the agent does not overwrite it (the
    notes of a conflict may be in it), and the desk goes on."""
    d = Desk()
    d.close_a_ticket("printer offline")
    d.witnessed(d.checkpoint()["size"])
    path = os.path.join(d.agent.dir, "witness.json")
    with open(path, "wb") as f:
        f.write(b"{not json")
    out, _ = tlcase.run(relay_agent.BIN + "/tierline-agent", "status", "--state", d.agent.dir)
    check("witness file cannot be read" in out, "status: %s" % out)
    status = json.loads(tlcase.run(relay_agent.BIN + "/tierline-agent", "status", "--state",
                                   d.agent.dir, "--json")[0])
    check("error" in status["audit_witness"], "status --json: %r" % status["audit_witness"])
    # A new checkpoint is announced; the agent cannot judge it and says so in its log.
    d.close_a_ticket("scanner offline")
    wait_for("the agent to say its witness file is unreadable",
             lambda: "audit witness state unreadable" in open(d.agent.log_path).read())
    with open(path, "rb") as f:
        check(f.read() == b"{not json", "the damaged file was overwritten")
    check(d.relay.devices()[0]["online"], "the device went offline")


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("witness.py BIN_DIR", "tl-witness-", setup_globals, track_popen=True,
                         home=True))
