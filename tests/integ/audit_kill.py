#!/usr/bin/env python3
"""The audit log survives SIGKILL mid-write (docs/audit-format.md §7, §14): a real relay, killed
again and again while technicians' logins are being written to its log, leaves a log whose
complete lines verify (a torn last line at most); on restart it cuts the torn part, goes on from
the last complete entry, and its log, tree and signed checkpoints verify. Each case runs in its
own process:

    audit_kill.py BIN_DIR CASE

Every wait and loop is bounded; nothing here measures speed.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading

import audit_verify
import relay_agent
from relay_agent import Relay
import technicians
import tlcase
from tlcase import case, check, free_port, run, wait_for

ROUNDS = 6


def login_argv(relay, key, known_hosts):
    return ["ssh", "-F", "/dev/null", "-i", key, "-p", str(relay.ssh_port),
            "-o", "UserKnownHostsFile=" + known_hosts, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=5", "carol@127.0.0.1", "whoami"]


class Logins:
    """Technicians logging in, two at a time, until stopped: each login is an audit entry."""

    def __init__(self, argv):
        self.argv = argv
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop) for _ in range(2)]
        for t in self.threads:
            t.start()

    def loop(self):
        for _ in range(2000):  # bounded; stopped long before
            if self.stop.is_set():
                return
            subprocess.run(self.argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def complete_entries(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def relay_verdict(relay):
    out, _ = run(relay_agent.BIN + "/tierline-relay", "audit-verify", "--data", relay.dir,
                 "--json", expect=None)
    return json.loads(out)


@case
def case_sigkill_mid_write_leaves_a_log_that_verifies_and_goes_on():
    relay = Relay("relay")
    relay.ssh_port = free_port()
    keys = relay.add_technicians({"carol": "tier3"})
    argv = login_argv(relay, keys["carol"], relay.write_known_hosts())
    log = os.path.join(relay.dir, "audit.log")
    rng = random.Random(20261204)
    entries = 0
    torn = 0
    vkey = run(relay_agent.BIN + "/tierline-relay", "audit", "pubkey", "--data",
               relay.dir)[0].split("\n")[0]
    for round_number in range(ROUNDS):
        relay.start()
        logins = Logins(argv)
        try:
            # Kill it once entries are flowing, at a moment no one chose.
            start = complete_entries(log)
            wait_for("logins to be written", lambda: complete_entries(log) > start + 3,
                     timeout=60)
            threading.Event().wait(rng.uniform(0.0, 0.4))
            relay.kill(signal.SIGKILL)
        finally:
            logins.end()
        # What the kill left verifies up to its last complete entry, by the independent
        # verifier and by the relay's own, a torn last line at most.
        mine = audit_verify.verify(log)
        check(mine["status"] == "ok", "round %d: %r" % (round_number, mine))
        check(mine["entries"] >= entries, "round %d: entries went from %d to %d" % (
            round_number, entries, mine["entries"]))
        torn += mine["partial"] > 0
        theirs = relay_verdict(relay)
        check(theirs["reason"] is None and theirs["entries"] == mine["entries"] and
              theirs["partial_tail_bytes"] == mine["partial"],
              "round %d: audit-verify %r, independent %r" % (round_number, theirs, mine))
        # The chain verifies to its last complete entry; what the last checkpoint does not cover
        # is reported, by both, as entries not signed yet (format §15): the next start signs it.
        signed = theirs["checkpoints"]
        ours = audit_verify.verify_checkpoints(log, [os.path.join(relay.dir, "audit.checkpoints")],
                                               vkey)
        if signed["ok"]:
            check(ours["status"] == "ok" and signed["covered"] == mine["entries"],
                  "round %d: checkpoints %r, independent %r" % (round_number, signed, ours))
        else:
            check(signed["bad"]["category"] == ours["category"] == "unsigned" and
                  signed["bad"]["first_entry"] == ours["first_entry"] == signed["covered"] + 1
                  and signed["bad"]["last_entry"] == ours["last_entry"] == mine["entries"] and
                  theirs["verdict"] == "broken",
                  "round %d: checkpoints %r, independent %r" % (round_number, signed, ours))
        entries = mine["entries"]
    # The restart cuts a torn tail (on the record as audit.repair) and goes on from there.
    relay.start()
    wait_for("a login after the kills",
             lambda: subprocess.run(argv, capture_output=True, timeout=30,
                                    stdin=subprocess.DEVNULL).returncode == 0, timeout=60)
    check(relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
    last = audit_verify.verify(log)
    check(last["status"] == "ok" and last["partial"] == 0 and last["entries"] > entries,
          "after the restart: %r (%d entries before)" % (last, entries))
    verdict = relay_verdict(relay)
    check(verdict["ok"] is True and verdict["checkpoints"]["ok"] is True and
          verdict["checkpoints"]["checked"] >= 1, "audit-verify after the kills: %r" % verdict)
    with open(log) as f:
        repairs = sum(json.loads(line)["action"] == "audit.repair" for line in f)
    check(repairs <= torn, "%d repairs for %d torn tails" % (repairs, torn))


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("audit_kill.py BIN_DIR", "tl-auditkill-", setup_globals,
                         track_popen=True, home=True))
