#!/usr/bin/env python3
"""Auditors over SSH (docs/technicians.md "The audit log", docs/audit-format.md §18): a real
relay and agent, the stock OpenSSH client. The auditor reads everything and changes nothing:
every command `help --json` lists is run as the auditor; audit search, prove, checkpoint and
verify, and a proof checked by docs/audit_proof.py with python3 and openssl alone. Each case
runs in its own process:

    auditor.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys

import audit_verify
import relay_agent
from audit_checkpoints import rechain
from relay_agent import Agent, Relay
import technicians
import tlcase
from tlcase import Failure, case, check, free_port, wait_for

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROOF_TOOL = os.path.join(SOURCE, "docs", "audit_proof.py")
ROLES = technicians.ROLES  # alice tier1, bob tier2, carol tier3, vera tier4, audrey auditor, adam admin

# Every command, and what the auditor may do with it: the words after the name, and the exit
# status expected (77: refused). A command missing here fails the enumeration case.
READS = {
    "tickets": ([], 0), "ticket show": (["T-1"], 0), "ticket export": (["T-1"], 0),
    "devices": ([], 0), "evidence": (["T-1"], 0), "evidence get": (["T-1", "{sha}"], 0),
    "whoami": ([], 0), "help": ([], 0), "problems": ([], 0),
    "problem show": (["P-1"], 1),  # there is no problem: not found, not refused
    "report": ([], 0), "kb": ([], 0),
    "kb show": (["cpu-hog"], 1),  # no article: not found, not refused
    "audit verify": ([], 0), "audit checkpoint": ([], 0),
    "audit search": (["--ticket", "T-1"], 0), "audit prove": (["0"], 0),
    "audit export": (["--ticket", "T-1"], 0),
    "replay": (["no-session"], 1),  # no such session: not found, not refused
    "runbook proposals": ([], 0),
    "runbook proposal": (["1"], 1),  # no proposal: not found, not refused
    "web": ([], 1),  # this relay serves no web view: it says so, nothing is refused
}
CHANGES = {
    "ticket take": ["T-1"], "ticket assign": ["T-1", "alice"],
    "ticket classify": ["T-1", "--severity", "2", "--reason", "worse"],
    "ticket note": ["T-1", "audited"], "ticket ask": ["T-1", "which printer?"],
    "ticket resolve": ["T-1", "fixed"], "ticket reopen": ["T-1"], "ticket close": ["T-1"],
    "ticket escalate": ["T-1", "--to", "2", "--reason", "beyond tier 1"],
    "ticket vendor": ["T-1", "--vendor", "acme"], "diag": ["T-1"], "run": ["T-1", "ls"],
    "join": ["T-1"], "fix": ["T-1", "clean-temp"], "runbooks": ["T-1"],
    "problem open": ["printers offline"], "problem link": ["T-1", "P-1"],
    "problem workaround": ["P-1", "restart the spooler"], "problem state": ["P-1", "fixed"],
    "runbook propose": [],
    "ticket hold": ["T-1", "on", "--reason", "litigation"],
}


class AuditRelay:
    """A serving relay with every role's account, a ticket with evidence from a real agent, and
    a checkpoint that covers them (made at a restart)."""

    def __init__(self):
        self.relay = Relay("relay")
        self.relay.ssh_port = free_port()
        self.keys = self.relay.add_technicians(ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        self.wait_ssh()
        self.agent = Agent("agent")
        self.agent.enroll(self.relay.code())
        self.agent.start()
        wait_for("the device to be online", lambda: self.relay.devices()[0]["online"])
        self.ticket, self.sha, _, _ = self.agent.help("printer offline")
        check(self.ticket == "T-1", "ticket %r" % self.ticket)
        self.restart()

    def wait_ssh(self):
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", status=None)[0] == 0)

    def restart(self):
        """SIGTERM makes the shutdown checkpoint: it covers every entry so far. Returns once the
        agent is back, so its agent.connect entry is not written during a case."""
        check(self.relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
        self.relay.start()
        self.wait_ssh()
        wait_for("the device to be online again", lambda: self.relay.devices()[0]["online"])

    def ssh_argv(self, user, *words):
        return ["ssh", "-F", "/dev/null", "-i", self.keys[user], "-p", str(self.relay.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                user + "@127.0.0.1"] + list(words)

    def ssh(self, user, *words, status=0, input=None):
        """One command as user: (exit status, stdout bytes, stderr text)."""
        proc = subprocess.run(self.ssh_argv(user, *words), capture_output=True, timeout=60,
                              **({"input": input} if input is not None
                                 else {"stdin": subprocess.DEVNULL}))
        if status is not None and proc.returncode != status:
            raise Failure("ssh %s %s: exit %d, expected %d\nstdout: %r\nstderr: %s" % (
                user, " ".join(words), proc.returncode, status, proc.stdout[:2000],
                proc.stderr.decode(errors="replace")))
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def ssh_json(self, user, *words):
        return json.loads(self.ssh(user, *words, "--json")[1])

    def log_bytes(self):
        with open(os.path.join(self.relay.dir, "audit.log"), "rb") as f:
            return f.read()

    def entries(self):
        return [json.loads(line) for line in self.log_bytes().decode().splitlines()]

    def vkey(self):
        out, _ = tlcase.run(relay_agent.BIN + "/tierline-relay", "audit", "pubkey", "--data",
                            self.relay.dir)
        return out.splitlines()[0]


def write(name, data):
    path = os.path.join(technicians.WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@case
def case_auditor_is_refused_every_change_and_reads_everything():
    a = AuditRelay()
    listed = set()
    for user in ROLES:
        listed |= {c["name"] for c in a.ssh_json(user, "help")["commands"]}
    admin = {c["name"] for c in a.ssh_json("adam", "help")["commands"]}
    check(admin <= listed and {"audit verify", "audit search"} <= admin,
          "admin's help: %r" % sorted(admin))
    known = set(READS) | set(CHANGES)
    check(listed == known, "commands not classified here: %r; gone: %r" % (
        sorted(listed - known), sorted(known - listed)))
    for name, words in sorted(CHANGES.items()):
        before = len(a.entries())
        _, _, err = a.ssh("audrey", *name.split(), *words, status=77)
        check("permission denied: role auditor may not use '%s'" % name in err,
              "%s: %r" % (name, err))
        new = a.entries()[before:]
        denied = [e for e in new if e["action"] == "access.denied" and
                  e["actor"] == "tech:audrey" and e["details"]["command"] == name]
        check(len(denied) == 1, "%s: refusal not audited: %r" % (name, new))
        check(all(e["action"] in ("access.denied", "login.ok") for e in new),
              "%s changed something: %r" % (name, [e["action"] for e in new]))
    check(a.relay.ticket("T-1")["status"] == "new" and a.relay.ticket("T-1")["assignee"] is None,
          "the ticket changed: %r" % a.relay.ticket("T-1"))
    for name, (words, status) in sorted(READS.items()):
        words = [w.replace("{sha}", a.sha) for w in words]
        _, _, err = a.ssh("audrey", *name.split(), *words, status=status)
        check("permission denied" not in err, "%s refused: %r" % (name, err))
    # The audit commands are for auditors and admins alone.
    _, _, err = a.ssh("carol", "audit", "search", status=77)
    check("needs audit.read" in err, "tier3 audit search: %r" % err)


@case
def case_search_finds_the_ticket_and_is_itself_audited():
    a = AuditRelay()
    found = a.ssh_json("audrey", "audit", "search", "--ticket", "T-1")
    actions = [e["action"] for e in found["entries"]]
    check("ticket.create" in actions, "search --ticket T-1: %r" % actions)
    log = a.entries()
    for hit in found["entries"]:
        index = hit.pop("index")
        check(log[index] == hit, "leaf %d is not the hit %r" % (index, hit))
    recorded = [e for e in a.entries() if e["action"] == "audit.search"]
    check(len(recorded) == 1 and recorded[0]["actor"] == "tech:audrey" and
          recorded[0]["details"]["query"]["ticket"] == "T-1" and
          recorded[0]["details"]["hits"] == len(found["entries"]), "audit.search: %r" % recorded)
    # Filters, a regex on commands, a limit; and the text shows the hits escaped.
    by_action = a.ssh_json("audrey", "audit", "search", "--action", "enroll.", "--limit", "1")
    check(len(by_action["entries"]) == 1 and by_action["more"] and
          by_action["entries"][0]["action"].startswith("enroll."), "--action: %r" % by_action)
    none = a.ssh_json("audrey", "audit", "search", "--command", "^rm ", "--actor", "audrey")
    check(none["entries"] == [], "--command: %r" % none)
    _, text, _ = a.ssh("adam", "audit", "search", "--ticket", "T-1")
    lines = text.decode().splitlines()
    check(lines[0].startswith("INDEX") and "ticket.create" in text.decode() and
          lines[-1].endswith("read"), "text: %r" % lines)


@case
def case_a_proof_checks_with_python_and_openssl_alone():
    a = AuditRelay()
    found = a.ssh_json("audrey", "audit", "search", "--action", "ticket.create")
    index = found["entries"][0]["index"]
    _, out, _ = a.ssh("audrey", "audit", "prove", str(index), "--json")
    proof = json.loads(out)
    check(proof["index"] == index and proof["seq"] == index + 1, "proof: %r" % proof)
    path = write("proof.json", out)
    vkey = a.vkey()
    proc = subprocess.run([sys.executable, PROOF_TOOL, path, vkey], capture_output=True,
                          timeout=60)
    check(proc.returncode == 0 and b"proof OK" in proc.stdout, "verifier: %r" % (proc,))
    # By seq, the same proof.
    by_seq = a.ssh_json("audrey", "audit", "prove", "seq:%d" % (index + 1))
    check(by_seq == proof, "by seq: %r" % by_seq)
    recorded = [e for e in a.entries() if e["action"] == "audit.prove"]
    check(len(recorded) == 2 and recorded[0]["details"]["index"] == index,
          "audit.prove: %r" % recorded)
    # An altered entry, or a path that leads elsewhere, fails.
    for change in ("entry", "path"):
        bad = dict(proof)
        if change == "entry":
            bad["entry"] = proof["entry"].replace("printer", "Printer", 1)
            bad["leaf_hash"] = proof["leaf_hash"]
        else:
            bad["audit_path"] = list(reversed(proof["audit_path"]))
        bad_path = write("bad-%s.json" % change, json.dumps(bad).encode())
        proc = subprocess.run([sys.executable, PROOF_TOOL, bad_path, vkey], capture_output=True,
                              timeout=60)
        check(proc.returncode == 1 and b"proof FAILS" in proc.stdout,
              "%s: %r" % (change, proc))


def documented_example():
    """docs/audit-format.md's two lines (§9, unwrapped), its checkpoint note and key (§16)."""
    with open(os.path.join(SOURCE, "docs", "audit-format.md"), encoding="utf-8") as f:
        doc = f.read()
    nine = doc[doc.index("## 9. Worked example"):doc.index("## 10.")]
    blocks = [b for b in nine.split("\n\n") if b.startswith("    {\"seq\":")]
    lines = ["".join(part.strip() for part in b.splitlines()).encode() for b in blocks]
    sixteen = doc[doc.index("## 16. Worked example"):doc.index("## 17.")]
    vkey = [l.strip() for l in sixteen.splitlines() if l.strip().startswith(
        "tierline.relay/example+")][0]
    start = sixteen.index("    tierline.relay/example\n")
    note_lines = sixteen[start:].split("\n")[:5]
    note = "\n".join(l[4:] for l in note_lines) + "\n"
    return lines, vkey, note


@case
def case_the_documented_example_proves_with_the_reference_script():
    # The example key's verifier key holds "+" in its base64, as many do.
    lines, vkey, note = documented_example()
    check(len(lines) == 2 and "+" in vkey.split("+", 2)[2], "example: %r %r" % (lines, vkey))
    leaves = [hashlib.sha256(b"\x00" + line).digest() for line in lines]
    check(leaves[1].hex() ==
          "8c5d81873376619c5f981ed193e3f4eccec280792a967c4e1b4cc8c4500d2d6b", "leaf 1")
    for index in (0, 1):
        proof = {"index": index, "seq": index + 1, "entry": lines[index].decode(),
                 "leaf_hash": base64.b64encode(leaves[index]).decode(), "tree_size": 2,
                 "root": note.split("\n")[2], "checkpoint": note,
                 "audit_path": [base64.b64encode(leaves[1 - index]).decode()]}
        path = write("example-%d.json" % index, json.dumps(proof).encode())
        proc = subprocess.run([sys.executable, PROOF_TOOL, path, vkey], capture_output=True,
                              timeout=60)
        check(proc.returncode == 0 and
              b"proof OK: entry %d (seq %d)" % (index, index + 1) in proc.stdout,
              "leaf %d: %r" % (index, proc))
    # Another key's verifier: the signature does not hold.
    other = "tierline.relay/example+00000000+" + vkey.split("+", 2)[2]
    proc = subprocess.run([sys.executable, PROOF_TOOL, path, other], capture_output=True,
                          timeout=60)
    check(proc.returncode != 0, "another key id: %r" % (proc,))


@case
def case_verify_with_a_kept_checkpoint_and_a_tampered_log():
    a = AuditRelay()
    _, note, _ = a.ssh("audrey", "audit", "checkpoint")
    details = a.ssh_json("audrey", "audit", "checkpoint")
    check(details["note"].encode() == note and details["size"] > 0, "checkpoint: %r" % details)
    _, out, _ = a.ssh("audrey", "audit", "verify")
    check(b"audit log OK" in out and b"audit checkpoints OK" in out, "verify: %r" % out)
    _, out, _ = a.ssh("audrey", "audit", "verify", "--from-checkpoint", "-", input=note)
    check(b"your checkpoint OK" in out, "verify --from-checkpoint: %r" % out)
    # Someone edits entry 3 in place while the relay is down.
    a.relay.kill(signal.SIGTERM)
    log = os.path.join(a.relay.dir, "audit.log")
    lines = a.log_bytes().split(b"\n")
    check(b'"seq":3,' in lines[2], "line 3: %r" % lines[2])
    lines[2] = lines[2].replace(b'"time":"2', b'"time":"1', 1)
    with open(log, "wb") as f:
        f.write(b"\n".join(lines))
    a.relay.start()
    a.wait_ssh()
    _, _, err = a.ssh("audrey", "audit", "verify", status=1)
    check("BROKEN at seq 3" in err, "tampered: %r" % err)
    verdict = json.loads(a.ssh("audrey", "audit", "verify", "--json", status=1)[1])
    check(not verdict["ok"] and verdict["bad_seq"] == 3 and
          verdict["checkpoints"]["bad"]["category"] == "root-mismatch", "json: %r" % verdict)
    _, _, err = a.ssh("audrey", "audit", "verify", "--from-checkpoint", "-", input=note, status=1)
    check("your checkpoint BROKEN" in err and "root-mismatch" in err, "kept: %r" % err)


@case
def case_a_line_appended_to_the_live_log_is_named_unsigned_and_never_signed():
    """While the relay serves, someone appends a forged entry (every hash recomputed) to its log.
    `audit verify` signs what the relay wrote first, so the forged line is the one named: entry
    N+1, `unsigned`, "not covered by a signed checkpoint"; the relay's new checkpoint stops at N."""
    a = AuditRelay()
    _, note, _ = a.ssh("audrey", "audit", "checkpoint")

    def logins():
        return sum(e["action"] == "login.ok" and e["actor"] == "tech:audrey" for e in a.entries())

    before = logins()
    # The kept checkpoint arrives on stdin, so the check waits for it: the login is written first.
    proc = subprocess.Popen(a.ssh_argv("audrey", "audit", "verify", "--from-checkpoint", "-",
                                       "--json"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_for("audrey's login", lambda: logins() == before + 1)
        lines = a.log_bytes().split(b"\n")[:-1]
        forged = lines[-1].replace(b'"seq":%d,' % len(lines), b'"seq":%d,' % (len(lines) + 1), 1)
        forged = rechain(lines + [forged], len(lines))[-1]
        with open(os.path.join(a.relay.dir, "audit.log"), "ab") as f:
            f.write(forged + b"\n")
        out, err = proc.communicate(note, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check(proc.returncode == 1 and out, "audit verify: exit %d, %r" % (proc.returncode, err))
    verdict = json.loads(out)
    bad = verdict["checkpoints"]["bad"]
    first = len(lines) + 1
    check(verdict["entries"] == first and verdict["reason"] is None and
          bad["category"] == "unsigned" and bad["first_entry"] == bad["last_entry"] == first and
          "not covered by a signed checkpoint" in bad["reason"] and
          verdict["checkpoints"]["covered"] == len(lines) and
          verdict["from_checkpoint"]["ok"] is True, "verdict: %r" % verdict)
    stored = audit_verify.read_notes(os.path.join(a.relay.dir, "audit.checkpoints"))
    check(int(stored[-1].split(b"\n")[1]) == len(lines),
          "the relay signed %r, expected size %d" % (stored[-1], len(lines)))


@case
def case_bad_input_is_refused_and_changes_nothing():
    a = AuditRelay()
    other = os.path.join(technicians.WORK, "other.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other], check=True,
                   capture_output=True, timeout=60)
    _, note, _ = a.ssh("audrey", "audit", "checkpoint")
    text = note[:note.rfind(b"\n\n") + 1]
    forged_text = write("forged.text", text)
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", other, "-rawin", "-in",
                          forged_text], check=True, capture_output=True, timeout=60).stdout
    key_id = base64.b64decode(note.rsplit(b" ", 1)[1])[:4]
    forged = note[:note.rfind(b" ") + 1] + base64.b64encode(key_id + sig) + b"\n"
    check(forged != note, "forged note")
    before = a.log_bytes()
    cases = [
        (["audit", "search", "--bogus"], 2, "unknown option '--bogus'", None),
        (["audit", "search", "--command", "(unclosed"], 2, "not a POSIX extended", None),
        (["audit", "search", "--command", "'(a)\\1'"], 2, "back-references", None),
        (["audit", "search", "--command", "x" * 300], 2, "at most 256 bytes", None),
        (["audit", "search", "--limit", "0"], 2, "--limit wants a number from 1 to 10000", None),
        (["audit", "search", "--limit", "10001"], 2, "--limit wants a number", None),
        (["audit", "prove", "abc"], 2, "ENTRY is a leaf index", None),
        (["audit", "prove", "999999"], 1, "no entry 999999: the log holds", None),
        (["audit", "verify", "--from-checkpoint", "kept.note"], 2, "cannot read your files", None),
        (["audit", "verify", "--from-checkpoint", "-"], 2, "not a checkpoint note", b"hello\n"),
        (["audit", "verify", "--from-checkpoint", "-"], 1, "bad-signature", forged),
    ]
    for words, status, message, given in cases:
        _, out, err = a.ssh("audrey", *words, status=status, input=given)
        check(message in err and len(err.strip().splitlines()) <= 4,
              "%s: %r" % (" ".join(words), err))
    after = a.log_bytes()
    new = [json.loads(line) for line in after[len(before):].decode().splitlines()]
    check(after.startswith(before) and
          all(e["action"] in ("login.ok", "audit.checkpoint") for e in new),
          "bad input changed the log: %r" % [e["action"] for e in new])


@case
def case_search_and_proof_are_withheld_while_the_log_cannot_be_written():
    a = AuditRelay()
    base = ["ssh", "-F", "/dev/null", "-i", a.keys["audrey"], "-p", str(a.relay.ssh_port), "-o",
            "UserKnownHostsFile=" + a.known_hosts, "-o", "StrictHostKeyChecking=yes", "-o",
            "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
    # Logged in before the log is spoiled (a login is itself audited), on a shared connection.
    control = os.path.join(technicians.WORK, "audrey.control")
    master = subprocess.Popen(base + ["-o", "ControlMaster=yes", "-o", "ControlPath=" + control,
                                      "-N", "audrey@127.0.0.1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    shared = base + ["-o", "ControlPath=" + control, "audrey@127.0.0.1"]
    log = os.path.join(a.relay.dir, "audit.log")
    try:
        wait_for("the shared connection", lambda: os.path.exists(control))
        # The log's last line altered in a copy put in its place: the relay refuses to write
        # after a line that fails its own check, yet every line a proof reads is intact.
        data = a.log_bytes()
        last = data.rstrip(b"\n").rfind(b"\n") + 1
        altered = data[:last] + data[last:].replace(b'"time":"2', b'"time":"1', 1)
        check(altered != data, "the last line has no time")
        os.rename(log, log + ".away")
        with open(log, "wb") as f:
            f.write(altered)
        for words in (["audit", "search", "--ticket", "T-1"], ["audit", "prove", "0"]):
            proc = subprocess.run(shared + words, capture_output=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
            err = proc.stderr.decode(errors="replace")
            check(proc.returncode == 1 and proc.stdout == b"" and "audit" in err,
                  "%s without a log: %d %r %r" % (" ".join(words), proc.returncode,
                                                  proc.stdout, err))
        os.rename(log + ".away", log)
    finally:
        master.kill()
        master.wait(timeout=20)
    # Once the log is back, searches answer again and the log verifies: whatever of the
    # refused attempts the relay kept waiting for the log is on the record, in the chain.
    found = a.ssh_json("audrey", "audit", "search", "--action", "audit.", "--actor", "audrey")
    check(len(found["entries"]) <= 2 and
          all(e["action"] in ("audit.search", "audit.prove") for e in found["entries"]),
          "after: %r" % found)
    _, out, _ = a.ssh("audrey", "audit", "verify")
    check(b"audit log OK" in out, "verify after: %r" % out)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("auditor.py BIN_DIR", "tl-auditor-", setup_globals, track_popen=True,
                         home=True))
