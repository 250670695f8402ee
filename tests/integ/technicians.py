#!/usr/bin/env python3
"""Technicians end to end: a real relay serving agents over TLS and
technicians over SSH, a real enrolled agent, and the stock OpenSSH client.
Each case runs in its own process:

    technicians.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import gzip
import hashlib
import json
import os
import pty
import queue
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time

import relay_agent
from relay_agent import Agent, Relay
import tlcase
from tlcase import Failure, case, check, free_port, keygen, run, wait_for

BIN = None
WORK = None

ROLES = {"alice": "tier1", "bob": "tier2", "carol": "tier3", "vera": "tier4",
         "audrey": "auditor", "adam": "admin"}


class SessionAgent(Agent):
    """The real agent, started with consent options."""

    def __init__(self, name, extra=()):
        super().__init__(name)
        self.extra = list(extra)

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            # A plain shell for shell sessions: a login shell's start-up files
            # belong to the machine and may be slow or noisy.
            [BIN + "/tierline-agent", "run", "--state", self.dir, "--backoff-max-ms", "400",
             "--log-level", "debug", "--shell", "/bin/sh"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for("the agent's control socket", lambda: self.status().get("running"))
        return self

    def cli(self, *words, expect=0):
        return run(BIN + "/tierline-agent", *(list(words) + ["--state", self.dir]),
                   expect=expect)

    def pending(self):
        out, _ = self.cli("pending", "--json")
        value = json.loads(out)
        return value["questions"] if isinstance(value, dict) else value

    def grants(self):
        out, _ = self.cli("sessions", "--json")
        value = json.loads(out)
        return value["grants"] if isinstance(value, dict) else value

    def question(self, technician):
        """Waits for technician's question and returns it."""
        return wait_for("a consent question from " + technician,
                        lambda: next((q for q in self.pending()
                                      if q.get("technician") == technician), None))


class Desk:
    """A relay with technician accounts, an enrolled running agent and one ticket."""

    def __init__(self, ticket=True, agent_options=(), relay_options=(), relay_args=()):
        self.relay = Relay("relay")
        self.relay.options = list(relay_options)
        self.relay.extra_args = list(relay_args)
        self.relay.ssh_port = free_port()
        if "ASAN_OPTIONS" in os.environ:
            # Freed memory in AddressSanitizer's quarantine would look like growth.
            self.relay.env = dict(os.environ)
            self.relay.env["ASAN_OPTIONS"] += ":quarantine_size_mb=4"
        self.keys = self.relay.add_technicians(ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", check_status=None)[0] == 0)
        self.agent = SessionAgent("agent", agent_options)
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

    def console(self, user, *words):
        """tierline, the console, as user against this relay: (status, stdout, stderr)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
        env.update(TIERLINE_RELAY="127.0.0.1:%d" % self.relay.ssh_port, TIERLINE_USER=user,
                   TIERLINE_IDENTITY=self.keys[user], TIERLINE_HOST_KEY=self.relay.fingerprint)
        proc = subprocess.run([BIN + "/tierline", *words], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60, env=env)
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode()

    def audit(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def spawn(self, user, *words, stdout=subprocess.PIPE):
        """Starts one ssh command without waiting for it."""
        return subprocess.Popen(self.ssh_argv(user) + list(words), stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.PIPE)

    def evidence_of_kind(self, kind):
        shown = self.relay.ticket(self.ticket)
        return [e for e in shown["evidence"] if e["kind"] == kind]


class Terminal:
    """ssh -tt under a pseudo-terminal, as a technician at a keyboard."""

    def __init__(self, argv, cols=100, rows=30):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvp(argv[0], argv)
        import fcntl
        import struct
        import termios
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.seen = b""
        self.status = None

    def type(self, text):
        os.write(self.fd, text.encode())

    def read_some(self, timeout=0.2):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        self.seen += chunk
        return chunk

    def expect(self, needle, timeout=30.0):
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.seen:
            if time.monotonic() > deadline:
                raise Failure("timed out waiting for %r on the terminal; saw %r" % (
                    needle, self.seen[-2000:]))
            if self.exited() and not self.read_some(0.05):
                raise Failure("ssh ended before %r appeared; saw %r" % (needle, self.seen[-2000:]))
            self.read_some()

    def exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def wait(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                raise Failure("ssh did not end; saw %r" % self.seen[-2000:])
            self.read_some(0.1)
        while self.read_some(0.05):
            pass
        return self.status

    def kill(self):
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            self.wait()


# ---- tickets and evidence over the stock OpenSSH client ---------------------------------

@case
def case_openssh_lists_and_shows_tickets():
    desk = Desk()
    _, out, _ = desk.ssh("alice", "tickets")
    check(desk.ticket in out and "the printer says it is offline" in out, "tickets: " + out)
    listed = desk.ssh_json("alice", "tickets")["tickets"]
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
    # The resolved ticket has left bob's queue, and is his among every status.
    check(desk.ssh_json("bob", "tickets", "--mine")["tickets"] == [], "a resolved ticket to do")
    mine = desk.ssh_json("bob", "tickets", "--mine", "--status", "all")["tickets"]
    check([t["id"] for t in mine] == [desk.ticket], "--mine: %r" % mine)
    check(desk.ssh_json("carol", "tickets", "--mine", "--status", "all")["tickets"] == [],
          "carol has tickets she never took")
    desk.relay.verify_audit()


@case
def case_a_resolved_ticket_takes_nothing_until_reopened():
    desk = Desk()
    desk.ssh("bob", "ticket", "take", desk.ticket)
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "restarted", "cups")
    before = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    audit_before = len(desk.audit())

    # Resolving twice, a note, a session: each refused with the reason, nothing changed.
    status, _, err = desk.ssh("bob", "ticket", "resolve", desk.ticket, "again", check_status=None)
    check(status == 1 and "%s is already resolved" % desk.ticket in err,
          "resolve twice: %d %r" % (status, err))
    status, _, err = desk.ssh("bob", "ticket", "note", desk.ticket, "late", check_status=None)
    check(status == 1 and "is resolved; reopen it first (ticket reopen %s)" % desk.ticket in err,
          "note on a resolved ticket: %d %r" % (status, err))
    status, _, err = desk.ssh("bob", "ticket", "reopen", "T-99", check_status=None)
    check(status == 1 and "no ticket T-99" in err, "reopen of no ticket: %d %r" % (status, err))
    status, out, err = desk.ssh("bob", "run", desk.ticket, "--", "echo", "hi", check_status=None)
    check(status != 0 and "reopen it first" in err and out == "",
          "run on a resolved ticket: %d %r %r" % (status, out, err))
    check(desk.agent.pending() == [], "the user was asked about a resolved ticket")
    after = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    check(after["events"] == before["events"] and after["status"] == "resolved",
          "a refused command changed the ticket: %r" % after["events"][len(before["events"]):])
    check([e["action"] for e in desk.audit()[audit_before:]
           if e["action"].startswith("ticket.")] == [],
          "a refused command was audited as done: %r" % desk.audit()[audit_before:])

    # Reopened, it takes notes again; taking it opens it; closing it twice is refused.
    _, out, _ = desk.ssh("bob", "ticket", "reopen", desk.ticket, "jams", "again")
    check(out == "%s reopened\n" % desk.ticket, "reopen: %r" % out)
    check(desk.ssh_json("bob", "ticket", "show", desk.ticket)["status"] == "reopened", "status")
    status, _, err = desk.ssh("bob", "ticket", "reopen", desk.ticket, check_status=None)
    check(status == 1 and "is already reopened" in err, "reopen twice: %r" % err)
    desk.ssh("bob", "ticket", "note", desk.ticket, "looking", "again")
    desk.ssh("bob", "ticket", "take", desk.ticket)
    check(desk.ssh_json("bob", "ticket", "show", desk.ticket)["status"] == "open",
          "taking a reopened ticket did not open it")
    desk.ssh("bob", "ticket", "close", desk.ticket)
    status, _, err = desk.ssh("bob", "ticket", "close", desk.ticket, check_status=None)
    check(status == 1 and "is already closed" in err, "close twice: %r" % err)
    status, _, err = desk.ssh("bob", "ticket", "resolve", desk.ticket, "x", check_status=None)
    check(status == 1 and "is closed and cannot become resolved" in err,
          "resolve a closed ticket: %r" % err)
    # The close is covered by a signed checkpoint, which the ticket records once it is made
    # (docs/audit-format.md §20).
    wait_for("the close's checkpoint on the ticket", lambda: "checkpoint" in [
        e["kind"] for e in desk.ssh_json("bob", "ticket", "show", desk.ticket)["events"]])
    shown = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    kinds = [e["kind"] for e in shown["events"]]
    check(kinds[-5:] == ["ticket.reopened", "note", "ticket.taken", "ticket.closed", "checkpoint"],
          "timeline: %r" % kinds)
    reopened = [e for e in shown["events"] if e["kind"] == "ticket.reopened"][0]
    check(reopened["details"] == {"previous": "resolved", "reason": "jams again"},
          "reopen details: %r" % reopened["details"])
    actions = [e["action"] for e in desk.audit()]
    check("ticket.reopen" in actions and "ticket.close" in actions, "audit: %r" % actions)
    # A tier-1 account may resolve, so it may reopen and close; an auditor may do none of it.
    status, _, err = desk.ssh("audrey", "ticket", "reopen", desk.ticket, check_status=None)
    check(status == 77, "an auditor reopened a ticket: %d %r" % (status, err))
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
    check(desk.ssh_json("vera", "tickets", "--tier", "all")["tickets"] == [],
          "tier4 sees unassigned tickets")
    status, _, _ = desk.ssh("vera", "ticket", "show", desk.ticket, check_status=None)
    check(status != 0, "tier4 read a ticket not handed to it")
    # help lists only what the role may use.
    _, help_out, _ = desk.ssh("audrey", "help")
    check("ticket note" not in help_out and "tickets" in help_out, "auditor help: " + help_out)


@case
def case_unknown_keys_and_bad_commands_are_refused():
    desk = Desk(ticket=False)
    stranger = os.path.join(WORK, "stranger")
    keygen(stranger)
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


@case
def case_a_disabled_account_is_refused_like_an_unknown_key():
    desk = Desk(ticket=False)
    desk.ssh("bob", "whoami")
    run(BIN + "/tierline-relay", "user", "disable", "bob", "--data", desk.relay.dir)
    # The serving relay takes the change within TL_USERS_RELOAD_MS (relay/desk/users.h).
    wait_for("bob's login refused",
             lambda: desk.ssh("bob", "whoami", check_status=None)[0] == 255, interval=0.5)
    status, out, _ = desk.ssh("bob", "whoami", check_status=None)
    check(status == 255 and out == "", "bob got in: %d %r" % (status, out))
    refused = wait_for("the refusals in the audit log",
                       lambda: [e for e in desk.audit() if e["action"] == "login.failed"])
    check(all(e["actor"] == "tech:bob" and e["details"]["reason"] == "unknown-key"
              for e in refused), "refusals audited as: %r" % refused)
    desk.ssh("alice", "whoami")


@case
def case_disabling_an_account_ends_its_open_connections():
    desk = Desk(ticket=False)
    # Signed-in connections with no command (ssh -N), as a console left open would be.
    held = {user: subprocess.Popen(desk.ssh_argv(user)[:-1] + ["-N", user + "@127.0.0.1"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE) for user in ("alice", "bob")}
    wait_for("both signed in", lambda: all(
        re.search(r"ssh login user=%s " % u, desk.relay.log_text()) for u in held))
    run(BIN + "/tierline-relay", "user", "disable", "bob", "--data", desk.relay.dir)
    wait_for("bob's connection to end", lambda: held["bob"].poll() is not None, interval=0.2)
    err = held["bob"].stderr.read().decode(errors="replace")
    check(held["bob"].returncode == 255 and "account disabled" in err,
          "bob's ssh: exit %s, %r" % (held["bob"].returncode, err))
    check(re.search(r"ssh connection ended addr=\S+ user=bob reason=account-changed",
                    desk.relay.log_text()), "the relay's log does not say why")
    # alice's connection is untouched, and removing her account ends it too.
    check(held["alice"].poll() is None, "alice's connection ended with bob's")
    desk.ssh("alice", "whoami")
    run(BIN + "/tierline-relay", "user", "remove", "alice", "--data", desk.relay.dir)
    wait_for("alice's connection to end", lambda: held["alice"].poll() is not None, interval=0.2)
    err = held["alice"].stderr.read().decode(errors="replace")
    check("account removed or its key changed" in err, "alice's ssh said %r" % err)
    desk.ssh("carol", "whoami")


# ---- sessions on the user's machine, with the user's consent ------------------------------

@case
def case_run_waits_for_the_user_and_is_recorded():
    desk = Desk()
    marker = os.path.join(WORK, "ran")
    # ssh sends one line; the relay splits it like a shell would quote it.
    tech = desk.spawn("bob", "run", desk.ticket, "--", "sh", "-c",
                      shlex.quote("echo out; echo err >&2; touch %s; exit 3" % marker))
    question = desk.agent.question("bob")
    check(question.get("role") == "tier2" and question.get("ticket") == desk.ticket and
          question.get("scopes") == ["exec"], "the question the user sees: %r" % question)
    check(not os.path.exists(marker), "the command ran before the user said yes")
    desk.agent.cli("approve", question["id"])
    out, err = tech.communicate(timeout=60)
    check(tech.returncode == 3, "exit status %d, stderr %r" % (tech.returncode, err))
    check(out.decode() == "out\n" and b"err" in err, "output %r / %r" % (out, err))
    # The grant covers the next command without a new question.
    _, out2, _ = desk.ssh("bob", "run", desk.ticket, "--", "echo", "again")
    check(out2 == "again\n", "second run: %r" % out2)
    check(desk.agent.pending() == [], "a second question was asked")
    transcripts = desk.evidence_of_kind("command")
    check(len(transcripts) == 2, "command transcripts on the ticket: %r" % transcripts)
    first = json.loads(desk.relay.evidence_bytes(transcripts[0]["hash"]))
    check("touch" in json.dumps(first) and first.get("exit_status") == 3,
          "transcript: %r" % first)
    actions = [e["action"] for e in desk.audit()]
    check(any(a.startswith("session.") or a.startswith("consent.") for a in actions),
          "no session events in the audit log: %r" % actions)
    desk.relay.verify_audit()


@case
def case_denied_request_runs_nothing():
    desk = Desk()
    marker = os.path.join(WORK, "ran")
    tech = desk.spawn("bob", "run", desk.ticket, "--", "touch", marker)
    question = desk.agent.question("bob")
    desk.agent.cli("deny", question["id"])
    _, err = tech.communicate(timeout=60)
    check(tech.returncode == 1 and b"declined" in err,
          "denied run: exit %d, stderr %r" % (tech.returncode, err))
    check(not os.path.exists(marker), "a denied command ran")
    check(desk.agent.grants() == [] or all(not g.get("live", True) for g in desk.agent.grants()),
          "a denial left a grant: %r" % desk.agent.grants())


@case
def case_join_records_a_session_that_plays():
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        question = desk.agent.question("bob")
        check(question.get("scopes") == ["shell"], "join asked for %r" % question)
        desk.agent.cli("approve", question["id"])
        term.expect("granted")
        term.type("echo hello-$((6*7))\n")
        term.expect("hello-42")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    recordings = wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))
    blob = desk.relay.evidence_bytes(recordings[0]["hash"])
    cast = gzip.decompress(blob).decode()
    lines = cast.splitlines()
    header = json.loads(lines[0])
    check(header.get("version") == 2, "not asciicast v2: %r" % header)
    events = [json.loads(line) for line in lines[1:]]
    typed = "".join(e[2] for e in events if e[1] == "i")
    shown = "".join(e[2] for e in events if e[1] == "o")
    check("echo hello" in typed, "typed input not recorded: %r" % typed)
    check("hello-42" in shown, "output not recorded")
    path = os.path.join(WORK, "session.cast")
    with open(path, "w") as f:
        f.write(cast)
    # The stock player plays it (under a terminal, as a person would).
    player = Terminal(["asciinema", "play", "-i", "0.1", path])
    player.expect("hello-42", timeout=60)
    check(player.wait(timeout=60) == 0, "asciinema play failed: %r" % player.seen[-500:])


def terminal_reads_a_secret(pid):
    """Whether process pid's terminal reads a line without echo, as password prompts do."""
    import termios
    try:
        fd = os.open("/proc/%d/fd/0" % pid, os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        lflag = termios.tcgetattr(fd)[3]
    finally:
        os.close(fd)
    return bool(lflag & termios.ICANON) and not lflag & termios.ECHO


def type_a_secret(term, password):
    """In a joined shell: bash's `read -s` (echo off), then password typed and read."""
    # bash with its line editor: echo off in raw mode, and still recorded.
    term.type("exec bash --norc --noprofile\n")
    term.type("echo shell-pid-$$\n")
    # Its output, not the echo of the command line: digits after the dash.
    pid_line = re.compile(rb"shell-pid-(\d+)\r?\n")
    wait_for("bash's process id",
             lambda: pid_line.search(term.seen) or (term.read_some() and False))
    shell_pid = int(pid_line.search(term.seen).group(1))
    term.type("read -s secret; echo got-${#secret}\n")
    wait_for("read -s to turn echo off", lambda: terminal_reads_a_secret(shell_pid))
    term.type(password + "\n")
    term.expect("got-%d" % len(password))


@case
def case_a_password_typed_in_a_session_is_never_recorded():
    # docs/technicians.md, "Typed passwords are not recorded": input typed while
    # the terminal does not echo is recorded as a count, never as the bytes.
    desk = Desk()
    password = "Zq7-hunter-61x"
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        term.type("echo before-$((20+1))\n")
        term.expect("before-21")
        type_a_secret(term, password)
        term.type("echo after-$((30+3))\n")
        term.expect("after-33")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    check(password.encode() not in term.seen, "the password was echoed to the technician")
    recordings = wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))
    blob = desk.relay.evidence_bytes(recordings[0]["hash"])
    cast = gzip.decompress(blob).decode()
    events = [json.loads(line) for line in cast.splitlines()[1:]]
    typed = "".join(e[2] for e in events if e[1] == "i")
    markers = [e[2] for e in events if e[1] == "m"]
    check("echo before-$((20+1))" in typed and "echo after-$((30+3))" in typed,
          "visible input not recorded: %r" % typed)
    check("input hidden: %d bytes" % (len(password) + 1) in markers,
          "no hidden-input marker for %d bytes: %r" % (len(password) + 1, markers))
    # Not a trace of the password: in the recording, in anything the relay or
    # the agent keeps, in their logs.
    check(password not in cast, "the password is in the recording")
    for top in (desk.relay.dir, desk.agent.dir, WORK):
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if name.endswith(".gz"):
                    data += gzip.decompress(data)
                check(password.encode() not in data, "the password is in " + path)


@case
def case_shell_that_closes_its_terminal_keeps_its_exit_status():
    # A program that closes its terminal before it exits (coreutils do, at
    # exit) must not be hung up on: its own status comes back, not HUP.
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        term.type("exec sh -c 'exec 0<&- 1>&- 2>&-; sleep 1; exit 7'\n")
        status = term.wait()
    finally:
        term.kill()
    check(status == 7, "join ended with %r, not the shell's 7: %r" % (status, term.seen[-300:]))


@case
def case_observer_watches_a_live_shell_read_only():
    desk = Desk()
    shell = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    watcher = None
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        shell.expect("granted")
        watcher = Terminal(desk.ssh_argv("alice", tty=True) + ["join", desk.ticket, "--observe"])
        question = desk.agent.question("alice")
        check(question.get("scopes") == ["observe"], "observe asked for %r" % question)
        desk.agent.cli("approve", question["id"])
        watcher.expect("granted")
        shell.type("echo watched-$((5*5))\n")
        shell.expect("watched-25")
        watcher.expect("watched-25")
        # The observer's keystrokes never reach the shell.
        watcher.type("echo typed-by-observer-$((1+1))\n")
        shell.type("echo after-$((3+3))\n")
        shell.expect("after-6")
        check(b"typed-by-observer-2" not in shell.seen, "the observer typed into the shell")
        shell.type("exit\n")
        shell.wait()
    finally:
        shell.kill()
        if watcher is not None:
            watcher.kill()
    recordings = wait_for("both recordings on the ticket",
                          lambda: len(desk.evidence_of_kind("recording")) >= 2 or None)
    check(recordings, "recordings missing")


@case
def case_end_and_expiry_close_the_session():
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        term.type("echo joined-$((1+1))\n")
        term.expect("joined-2")
        desk.agent.cli("end")
        term.expect("ended")
        term.wait(timeout=30)
    finally:
        term.kill()
    shown = desk.relay.ticket(desk.ticket)
    check("ended" in json.dumps(shown["events"]), "the end is not on the timeline")
    # A grant given for a few seconds ends by itself.
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"], "--for", "10s")
        term.expect("granted")
        term.type("echo short-$((2+2))\n")
        term.expect("short-4")
        term.wait(timeout=60)
        check(b"expired" in term.seen or b"ended" in term.seen,
              "no word of the expiry: %r" % term.seen[-500:])
    finally:
        term.kill()


@case
def case_roles_without_sessions_are_refused_before_the_user_is_asked():
    desk = Desk()
    status, _, err = desk.ssh("alice", "run", desk.ticket, "--", "id", check_status=None)
    check(status == 77 and "permission denied" in err, "tier1 run: %d %r" % (status, err))
    term = Terminal(desk.ssh_argv("alice", tty=True) + ["join", desk.ticket])
    check(term.wait() == 77, "tier1 join: %r" % term.seen)
    term = Terminal(desk.ssh_argv("audrey", tty=True) + ["join", desk.ticket])
    check(term.wait() == 77, "auditor join: %r" % term.seen)
    term = Terminal(desk.ssh_argv("audrey", tty=True) + ["join", desk.ticket, "--observe"])
    check(term.wait() == 77, "auditor observe: %r" % term.seen)
    check(desk.agent.pending() == [], "the user was asked anyway: %r" % desk.agent.pending())
    denied = [e for e in desk.audit() if e["action"] == "access.denied"]
    check(len(denied) >= 4, "denials not audited: %r" % denied)


def write_catalogue():
    """A runbook catalogue with one harmless runbook."""
    catalogue = os.path.join(WORK, "runbooks")
    os.makedirs(catalogue)
    script = os.path.join(catalogue, "say-word")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf 'word=%s canary=%s\\n' \"$TL_PARAM_WORD\" "
                "\"${TL_CANARY:-unset}\"\n")
    os.chmod(script, 0o755)
    with open(script + ".json", "w") as f:
        json.dump({"name": "say-word", "description": "Print a word", "min_role": "tier1",
                   "privileged": False, "timeout": "30s",
                   "params": [{"name": "WORD", "pattern": "^[a-z]{1,8}$", "required": True,
                               "description": "a short lowercase word"}]}, f)
    return catalogue


def write_policy(rules):
    path = os.path.join(WORK, "policy.json")
    with open(path, "w") as f:
        json.dump({"unattended": rules}, f)
    return path


@case
def case_runbooks_run_with_validated_parameters():
    catalogue = write_catalogue()
    policy = write_policy([{"roles": ["tier1", "tier2"], "scopes": ["fix"]}])
    os.environ["TL_CANARY"] = "leaked"
    desk = Desk(agent_options=["--runbooks", catalogue, "--policy", policy])
    _, out, _ = desk.ssh("alice", "runbooks", desk.ticket)
    check("say-word" in out and "WORD" in out, "runbooks: " + out)
    _, out, _ = desk.ssh("alice", "fix", desk.ticket, "say-word", "WORD=hello")
    check("word=hello canary=unset" in out, "runbook output: %r" % out)
    status, out, err = desk.ssh("alice", "fix", desk.ticket, "say-word", "WORD=rm;-rf",
                                check_status=None)
    check(status != 0 and "WORD" in err and "word=" not in out,
          "bad parameter: exit %d, %r %r" % (status, out, err))
    status, _, err = desk.ssh("alice", "fix", desk.ticket, "no-such-runbook", check_status=None)
    check(status != 0 and err.strip(), "unknown runbook: %d %r" % (status, err))
    check(desk.agent.pending() == [], "the policy should have answered")
    check(len(desk.evidence_of_kind("runbook")) >= 1, "runbook run not recorded")


class Attend:
    """`tierline-agent attend` without a terminal: what it prints, read as it comes."""

    def __init__(self, agent):
        self.proc = subprocess.Popen([BIN + "/tierline-agent", "attend", "--state", agent.dir],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(l) for l in self.proc.stdout],
                         daemon=True).start()
        self.seen = b""
        self.expect("No terminal")

    def expect(self, needle, timeout=30.0):
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("attend never showed %r; it showed %r" % (needle, self.seen))
            try:
                self.seen += self.lines.get(timeout=left)
            except queue.Empty:
                pass
        return self.seen.decode(errors="replace")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@case
def case_runbook_values_are_checked_before_the_user_is_asked():
    catalogue = write_catalogue()
    desk = Desk(agent_options=["--runbooks", catalogue])
    attend = Attend(desk.agent)
    try:
        # A value outside the runbook's rule: refused at once, nobody is asked.
        status, out, err = desk.ssh("alice", "fix", desk.ticket, "say-word", "'WORD=rm;-rf'",
                                    check_status=None)
        check(status == 1 and "say-word" in err and "WORD='rm;-rf' does not match ^[a-z]{1,8}$"
              in err and "a short lowercase word" in err and "the user was not asked" in err,
              "bad value: exit %d, %r %r" % (status, out, err))
        check(desk.agent.pending() == [], "the user was asked: %r" % desk.agent.pending())
        refused = [e for e in desk.audit() if e["action"] == "consent.denied"]
        check(refused and refused[-1]["details"]["error"] == "EINVAL",
              "the refusal is not on the record: %r" % refused)
        # A good value: the question says which runbook, what it does and every value.
        tech = desk.spawn("alice", "fix", desk.ticket, "say-word", "WORD=hello")
        question = desk.agent.question("alice")
        check(question.get("runbook") == {"name": "say-word", "description": "Print a word",
                                          "privileged": False, "args": {"WORD": "hello"}},
              "the question's runbook: %r" % question)
        shown = attend.expect("question " + question["id"])
        check(shown.count("asks for") == 1, "attend showed another question: %s" % shown)
        check("  runbook say-word: Print a word\n    WORD=hello\n" in shown,
              "the question on the machine: %s" % shown)
        out, _ = desk.agent.cli("pending")
        check("runbook say-word: Print a word" in out and "WORD=hello" in out, "pending: " + out)
        desk.agent.cli("approve", question["id"])
        out, err = tech.communicate(timeout=60)
        check(tech.returncode == 0 and b"word=hello" in out, "good value: %r %r" % (out, err))
    finally:
        attend.stop()


@case
def case_evidence_names_are_distinct_and_say_what_ran():
    policy = write_policy([{"roles": ["tier2"], "scopes": ["exec", "diag"]}])
    desk = Desk(agent_options=["--policy", policy])
    stamp = re.compile(r"\d{8}T\d{6}Z")
    # Runs that start in the same second must still get a name each: batches of three at
    # once until one batch shares a second (a few tries at most on a loaded machine).
    shared = None
    for _ in range(6):
        runs = [desk.spawn("bob", "run", desk.ticket, "--", "/bin/echo", "hello", "world")
                for _ in range(3)]
        for proc in runs:
            out, err = proc.communicate(timeout=60)
            check(proc.returncode == 0 and out == b"hello world\n", "run: %r %r" % (out, err))
        names = [e["name"] for e in desk.evidence_of_kind("command")]
        seconds = [stamp.search(n).group(0) for n in names]
        shared = next((sec for sec in seconds if seconds.count(sec) > 1), None)
        if shared is not None:
            break
    check(shared is not None, "no two runs started in the same second in six tries")
    check(len(set(names)) == len(names), "evidence names repeat: %r" % names)
    transcripts = {e["name"]: e["hash"] for e in desk.evidence_of_kind("command")}
    for name, digest in transcripts.items():
        check(re.fullmatch(r"command-echo-hello-world-\d{8}T\d{6}Z-%s\.json" % digest[:12],
                           name), "a transcript's name does not say what ran: %r" % name)
    _, out, _ = desk.ssh("bob", "diag", desk.ticket)
    _, out2, _ = desk.ssh("bob", "diag", desk.ticket)
    reports = [e["name"] for e in desk.evidence_of_kind("diagnostics")]
    fresh = [n for n in reports if n.startswith("diagnostics-")]
    check(len(fresh) == 2 and len(set(fresh)) == 2 and all(n in out + out2 for n in fresh),
          "diagnostics names: %r (%r %r)" % (reports, out, out2))
    # The session's end on the record names the item.
    ended = [e["details"].get("evidence_name") for e in desk.audit()
             if e["action"] == "session.end"]
    check(all(n in ended for n in transcripts), "session.end does not name the evidence: %r"
          % ended)


@case
def case_unattended_policy_grants_without_asking():
    policy = write_policy([{"roles": ["tier2"], "scopes": ["exec", "diag"],
                            "max_duration": "10m"}])
    desk = Desk(agent_options=["--policy", policy])
    _, out, _ = desk.ssh("bob", "run", desk.ticket, "--", "echo", "unattended")
    check(out == "unattended\n", "run under policy: %r" % out)
    grants = desk.agent.grants()
    check(any(g.get("by") == "policy" for g in grants), "grants: %r" % grants)
    _, out, _ = desk.ssh("bob", "diag", desk.ticket)
    check("added to " + desk.ticket in out, "diag: %r" % out)
    reports = desk.evidence_of_kind("diagnostics")
    check(len(reports) == 2, "fresh diagnostics not stored: %r" % reports)
    # Not covered by the policy: the user is asked.
    tech = desk.spawn("carol", "run", desk.ticket, "--", "true")
    desk.agent.question("carol")
    tech.kill()


@case
def case_a_technician_who_stops_reading_holds_back_only_their_session():
    policy = write_policy([{"roles": ["tier2", "tier3"], "scopes": ["exec"]}])
    desk = Desk(agent_options=["--policy", policy])
    baseline = relay_agent.relay_rss_kb(desk.relay)
    # bob's ssh never reads its stdout: the pipe fills, then the SSH window,
    # then the relay's buffer, then the agent's channel window.
    flood = desk.spawn("bob", "run", desk.ticket, "--", "cat", "/dev/zero")
    try:
        time.sleep(3)
        for i in range(3):
            _, out, _ = desk.ssh("carol", "run", desk.ticket, "--", "echo", "still-%d" % i)
            check(out == "still-%d\n" % i, "carol's run: %r" % out)
        grown = relay_agent.relay_rss_kb(desk.relay) - baseline
        check(grown < 64 * 1024, "relay grew %d KiB behind a stalled technician" % grown)
        check(flood.poll() is None, "the flooding session ended by itself")
    finally:
        flood.kill()
        flood.wait()


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("technicians.py BIN_DIR", "tl-tech-", setup_globals, track_popen=True,
                         home=True))
