#!/usr/bin/env python3
"""The audit log must never lose, skip or silently restart an entry, and damaged evidence must
never be sent: real relay and agent processes, the stock OpenSSH client, real files. A full disk
is a small tmpfs this script mounts itself (as root) and bind-mounts over the relay's audit log;
everything it mounts is unmounted at the end. Each case runs in its own process:

    audit_durability.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import relay_agent
import technicians
import tlcase
from relay_agent import Agent, RawAgent, Relay
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None
MOUNTS = []  # unmounted in reverse order at the end, whatever happens
VERIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit_verify.py")


class SmallDisk:
    """A tmpfs of a few pages holding the relay's audit log, bind-mounted where the relay
    looks for it; the store and everything else stay on the ordinary disk."""

    def __init__(self, relay, size_kb=64):
        self.dir = os.path.join(WORK, "small-disk")
        os.mkdir(self.dir)
        run("mount", "-t", "tmpfs", "-o", "size=%dk,mode=0700" % size_kb, "tmpfs", self.dir)
        MOUNTS.append(self.dir)
        self.log = os.path.join(self.dir, "audit.log")
        target = os.path.join(relay.dir, "audit.log")
        shutil.copyfile(target, self.log)
        os.chmod(self.log, 0o600)
        run("mount", "--bind", self.log, target)
        MOUNTS.append(target)
        self.filler = os.path.join(self.dir, "filler")

    def fill(self):
        """Writes a file until the disk refuses more (ENOSPC)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(100000):
                try:
                    os.write(fd, b"\0" * 4096)
                except OSError as e:
                    check(e.errno == errno.ENOSPC, "filling the disk failed: %s" % e)
                    return
            raise Failure("a small tmpfs never filled up")
        finally:
            os.close(fd)

    def free(self):
        os.unlink(self.filler)


def unmount_all():
    for path in reversed(MOUNTS):
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
    MOUNTS.clear()


def relay_cmd(relay, *words, expect=0, timeout=60):
    return run(BIN + "/tierline-relay", *(list(words) + ["--data", relay.dir]), expect=expect,
               timeout=timeout)


def relay_status(relay):
    proc = subprocess.run([BIN + "/tierline-relay", "status", "--data", relay.dir],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def fill_log_disk(relay, disk):
    """Fills the disk, then uses up the room left in the log's last page: enroll-code writes one
    entry each time until one cannot be written (bounded)."""
    disk.fill()
    for _ in range(100):
        proc = subprocess.run([BIN + "/tierline-relay", "enroll-code", "--data", relay.dir],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            check(proc.stdout == "", "a code was printed although its entry was not written: %r"
                  % proc.stdout)
            return
    raise Failure("the audit log never filled its disk")


def audit_entries(relay):
    with open(os.path.join(relay.dir, "audit.log")) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def verify_chain(relay):
    """Both verifiers accept the whole log."""
    relay.verify_audit()
    out, _ = run(sys.executable, VERIFIER, os.path.join(relay.dir, "audit.log"))
    check(out.startswith("audit log OK"), "audit_verify.py: " + out)


def every_ticket_has_its_entry(relay):
    entries = audit_entries(relay)
    for ticket in relay.tickets():
        created = [e for e in entries
                   if e["action"] == "ticket.create" and e["subject"] == ticket["id"]]
        check(len(created) == 1, "%s has %d ticket.create entries (expected 1)"
              % (ticket["id"], len(created)))


def ticket_request(raw, request_id, request, title):
    return raw.control(request_id, {"type": "ticket.create", "request": request, "title": title})


# ---- the log fails while the relay serves ------------------------------------------------

@case
def case_full_disk_under_the_log_refuses_and_loses_nothing():
    relay = Relay("relay", heartbeat_ms=20000)
    disk = SmallDisk(relay)
    relay.start()
    agent = Agent("agent")
    agent.enroll(relay.code())
    raw = RawAgent(relay, agent)
    check(ticket_request(raw, 1, "before", "before the disk filled")["ok"], "first ticket")

    fill_log_disk(relay, disk)
    refused = ticket_request(raw, 2, "during", "while the log cannot be written")
    check(refused["ok"] is False, "a ticket was acknowledged without its audit entry: %r"
          % refused)
    # The agent's help is not acknowledged either: it stays queued on the machine.
    agent.help("help while the log cannot be written", expect=75, wait_ms=3000)
    failing_status = relay_status(relay)

    disk.free()
    raw = RawAgent(relay, agent)  # the agent's own connection replaced the first one
    answer = ticket_request(raw, 3, "during", "while the log cannot be written")
    check(answer["ok"] is True, "the repeated request after space was freed: %r" % answer)
    agent.start()
    wait_for("the queued help to be delivered", lambda: agent.status()["queued"] == [],
             timeout=60)
    titles = sorted(t["title"] for t in relay.tickets())
    check(len(titles) == 3, "tickets: %r" % titles)
    every_ticket_has_its_entry(relay)
    verify_chain(relay)

    # Whoever asked was told why, and so was the operator.
    check("audit log" in refused.get("message", ""), "the refusal says: %r" % refused)
    code, out, _ = failing_status
    check(code == 1 and "FAILING" in out and "no space left on device" in out.lower(),
          "status while the disk was full (exit %d):\n%s" % (code, out))
    check("audit log cannot be written" in relay.log_text(), "the relay did not log it")
    code, out, _ = relay_status(relay)
    check(code == 0 and "healthy" in out, "status after space was freed (exit %d):\n%s"
          % (code, out))
    agent.stop()


@case
def case_technician_refused_while_the_log_fails():
    relay = Relay("relay", heartbeat_ms=20000)
    relay.ssh_port = free_port()
    keys = relay.add_technicians({"alice": "tier1"})
    known_hosts = relay.write_known_hosts()
    disk = SmallDisk(relay)
    relay.start()

    def ssh(*words):
        argv = ["ssh", "-F", "/dev/null", "-i", keys["alice"], "-p", str(relay.ssh_port),
                "-o", "UserKnownHostsFile=" + known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                "alice@127.0.0.1"] + list(words)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr

    wait_for("the SSH port", lambda: ssh("whoami")[0] == 0)
    logins = lambda: len([e for e in audit_entries(relay) if e["action"] == "login.ok"])
    before = logins()

    fill_log_disk(relay, disk)
    status, out, err = ssh("tickets")
    check(status == 1 and out == "" and "audit log" in err,
          "a login the audit log cannot hold was let through: exit %d, stdout %r, stderr %r"
          % (status, out, err))
    code, out, _ = relay_status(relay)
    check(code == 1 and "FAILING" in out and "no space left on device" in out.lower(),
          "status (exit %d):\n%s" % (code, out))

    disk.free()
    wait_for("alice to get in again", lambda: ssh("whoami")[0] == 0, timeout=60)
    check(logins() > before, "no login.ok entry after the log could be written again")
    verify_chain(relay)


@case
def case_log_replaced_while_serving_is_refused_until_restored():
    relay = Relay("relay", heartbeat_ms=20000).start()
    agent = Agent("agent")
    agent.enroll(relay.code())
    raw = RawAgent(relay, agent)
    check(ticket_request(raw, 1, "first", "first")["ok"], "first ticket")
    log = os.path.join(relay.dir, "audit.log")

    # Replaced by an empty file: continuing there would start a new chain.
    os.rename(log, log + ".moved")
    with open(log, "w"):
        pass
    os.chmod(log, 0o600)
    answer = ticket_request(raw, 2, "second", "second")
    check(answer["ok"] is False, "acknowledged into a replaced log: %r" % answer)
    check(os.path.getsize(log) == 0, "the relay wrote a new chain into the replacement")
    code, out, _ = relay_status(relay)
    check(code == 1 and "FAILING" in out and "the database head is seq" in out,
          "status with the log replaced (exit %d):\n%s" % (code, out))

    # Removed altogether: never recreated behind the operator's back.
    os.unlink(log)
    answer = ticket_request(raw, 3, "third", "third")
    check(answer["ok"] is False, "acknowledged with no log: %r" % answer)
    check(not os.path.exists(log), "the relay recreated a removed log")

    os.rename(log + ".moved", log)
    check(ticket_request(raw, 4, "second", "second")["ok"], "second, after the log came back")
    check(ticket_request(raw, 5, "third", "third")["ok"], "third, after the log came back")
    code, out, _ = relay_status(relay)
    check(code == 0, "status after the log came back (exit %d):\n%s" % (code, out))
    check(len(relay.tickets()) == 3, "tickets: %r" % relay.tickets())
    every_ticket_has_its_entry(relay)
    verify_chain(relay)


# ---- a log lost or changed between runs ---------------------------------------------------

def lost_log_story(damage, needles):
    """A relay with some history; damage(log path) while it is stopped; then serve, enroll-code
    and status must all refuse and say what is missing, until audit-recover records the loss."""
    relay = Relay("relay", heartbeat_ms=20000).start()
    agent = Agent("agent")
    agent.enroll(relay.code())
    agent.help("something to audit")
    check(relay.kill(signal.SIGTERM) == 0, "relay did not stop cleanly")
    head = audit_entries(relay)[-1]
    damage(os.path.join(relay.dir, "audit.log"), head)

    proc = subprocess.run([BIN + "/tierline-relay", "serve", "--data", relay.dir, "--listen",
                           "127.0.0.1:%d" % relay.port], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    check(proc.returncode != 0, "serve started on a damaged log")
    for needle in needles(head):
        check(needle in proc.stderr, "serve did not say %r:\n%s" % (needle, proc.stderr))
    proc = subprocess.run([BIN + "/tierline-relay", "enroll-code", "--data", relay.dir],
                          capture_output=True, text=True, timeout=30)
    check(proc.returncode != 0 and proc.stdout == "", "enroll-code issued a code: %r"
          % proc.stdout)
    for needle in needles(head):
        check(needle in proc.stderr, "enroll-code did not say %r:\n%s" % (needle, proc.stderr))
    code, out, _ = relay_status(relay)
    check(code == 1 and all(n in out for n in needles(head)), "status (exit %d):\n%s"
          % (code, out))

    out, _ = relay_cmd(relay, "audit-recover")
    check("Recovered" in out, "audit-recover: " + out)
    relay.start()
    recovery = [e for e in audit_entries(relay) if e["action"] == "audit.recover"]
    check(len(recovery) == 1, "recovery entries: %r" % recovery)
    details = recovery[0]["details"]
    check(details["database_head"] == {"seq": head["seq"], "hash": head["hash"]},
          "the recovery entry does not name the old head: %r" % details)
    check(details["by"]["uid"] == os.getuid() and recovery[0]["actor"] == "admin",
          "who ran it: %r" % details)
    # Serving again, and the chain goes on through the recovery.
    check(re.match(r"tl1:", relay.code()), "enroll-code after recovery")
    agent.help("after the recovery")
    verify_chain(relay)
    every_ticket_has_its_entry_or_lost(relay, details)
    code, out, _ = relay_status(relay)
    check(code == 0, "status after recovery (exit %d):\n%s" % (code, out))
    return details


def every_ticket_has_its_entry_or_lost(relay, details):
    """After a recovery, tickets created before the loss may have lost their entry; the ones
    created since must have theirs."""
    entries = audit_entries(relay)
    created = [e["subject"] for e in entries if e["action"] == "ticket.create"]
    newest = relay.tickets()[-1]["id"]
    check(created.count(newest) == 1, "%s has no ticket.create entry: %r" % (newest, created))


def drop_lines(count):
    def damage(path, head):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        with open(path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines[:-count]))
    return damage


@case
def case_deleted_log_refused_until_recovered():
    details = lost_log_story(lambda path, head: os.unlink(path),
                             lambda head: ["is missing but the database head is seq %d"
                                           % head["seq"], "%d entries missing" % head["seq"]])
    check(details["found"] == "missing" and details["entries_lost"] > 0, "%r" % details)


@case
def case_log_shortened_by_lines_refused_until_recovered():
    details = lost_log_story(drop_lines(2),
                             lambda head: ["audit log ends at seq %d but the database head is "
                                           "seq %d" % (head["seq"] - 2, head["seq"]),
                                           "2 entries missing"])
    check(details["found"] == "short" and details["entries_lost"] == 2, "%r" % details)


@case
def case_edited_last_line_refused_until_recovered():
    def damage(path, head):
        with open(path, "rb") as f:
            data = bytearray(f.read())
        at = data.rindex(b'"details":{') + len(b'"details":{') + 2
        data[at] ^= 0x01
        with open(path, "wb") as f:
            f.write(data)
    details = lost_log_story(damage, lambda head: ["its last entry (seq %d) fails its own check"
                                                   % head["seq"], "bad-hash"])
    check(details["found"] == "damaged" and details.get("damaged_copy"), "%r" % details)
    check(os.path.exists(details["damaged_copy"]), "the damaged log was not kept")


@case
def case_rehashed_last_line_refused_until_recovered():
    # Edited and rehashed: the line checks out on its own; only the stored head tells.
    def damage(path, head):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        line = lines[-1].replace(b'"actor":"', b'"actor":"X', 1)
        body = line[:-75]
        digest = hashlib.sha256(body).hexdigest().encode()
        lines[-1] = body + b',"hash":"' + digest + b'"}'
        with open(path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))
    details = lost_log_story(damage, lambda head: ["diverges from the database at seq %d"
                                                   % head["seq"]])
    check(details["found"] == "diverges", "%r" % details)


# ---- damaged evidence --------------------------------------------------------------------

@case
def case_damaged_evidence_is_never_sent_and_is_listed():
    policy = technicians.write_policy([{"roles": ["tier2"], "scopes": ["exec"]}])
    desk = technicians.Desk(agent_options=["--policy", policy])
    # A large item that compresses badly: the first bytes of a stream would go out long
    # before damage near its end could be noticed.
    desk.ssh("bob", "run", desk.ticket, "--", "sh", "-c",
             "'head -c 900000 /dev/urandom | base64'")
    transcript = wait_for("the transcript on the ticket", lambda: desk.evidence_of_kind("command"))
    sha256 = transcript[0]["hash"]
    out, _ = relay_cmd(desk.relay, "evidence", "verify")
    check(" 0 damaged, 0 missing" in out, "evidence verify on a clean store: " + out)

    path = os.path.join(desk.relay.dir, "evidence", sha256[:2], sha256)
    size = os.path.getsize(path)
    check(size > 512 * 1024, "the item is only %d bytes stored" % size)
    with open(path, "r+b") as f:
        f.seek(size - 100)
        byte = f.read(1)
        f.seek(size - 100)
        f.write(bytes([byte[0] ^ 0x01]))

    status, blob, err = desk.ssh("audrey", "evidence", "get", desk.ticket, sha256,
                                 check_status=None, text=False)
    check(status == 1 and blob == b"" and b"damaged" in err,
          "damaged download: exit %d, %d bytes sent, stderr %r" % (status, len(blob), err))
    gets = [e for e in desk.audit() if e["action"] == "evidence.get" and e["subject"] == sha256]
    check(gets and gets[-1]["details"].get("outcome") == "failed" and
          gets[-1]["details"].get("reason"), "the refused download was not audited: %r" % gets)

    out, _ = relay_cmd(desk.relay, "evidence", "verify", expect=1)
    check(re.search(r"DAMAGED\s+%s\s+tickets: %s\b" % (sha256, desk.ticket), out),
          "evidence verify did not list the damaged item: " + out)
    out, _ = relay_cmd(desk.relay, "evidence", "verify", "--json", expect=1)
    report = json.loads(out)
    check([d["sha256"] for d in report["damaged"]] == [sha256] and
          report["damaged"][0]["tickets"] == [desk.ticket], "--json: %r" % report)
    # The whole items still download.
    _, blob, _ = desk.ssh("audrey", "evidence", "get", desk.ticket, desk.evidence, text=False)
    check(hashlib.sha256(blob).hexdigest() == desk.evidence, "a whole item did not download")
    verify_chain(desk.relay)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("audit_durability.py BIN_DIR", "tl-audit-", setup_globals,
                         track_popen=True, home=True, cleanup=unmount_all))
