#!/usr/bin/env python3
"""The relay's side of technicians' sessions (relay/sessions/sessions.c): a real relay,
the stock OpenSSH client for the technicians, and a hand-driven agent that
speaks the protocol frame by frame (docs/protocol.md §4, §7.6-7.9) with a
real enrolled agent's key. Each case runs in its own process:

    sessions_relay.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import fcntl
import gzip
import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import termios
import time

import relay_agent
from relay_agent import Agent, RawAgent, Relay, frame
import tlcase
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None
STARTED = []
DESKS = []

ROLES = {"alice": "tier1", "bob": "tier2", "carol": "tier3", "vera": "tier4",
         "audrey": "auditor"}

MIB = 1024 * 1024
FEATURE_INPUT_ACK = 1


class SessionAgent(RawAgent):
    """Plays the agent: answers consent, confirms channels, sends output and exit status."""

    def __init__(self, relay, agent, features=0):
        super().__init__(relay, agent, features)
        self.inbox = []
        self.next_id = 7  # the agent's own channel ids, unlike the relay's
        self.window = {}  # our id -> bytes we may still send
        self.remote = {}  # our id -> the relay's id
        self.received = {}  # our id -> bytes the relay sent
        self.eof = set()

    # -- reading ------------------------------------------------------------------------
    def pump(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(262144)
        except (socket.timeout, ssl.SSLWantReadError):
            return
        if not chunk:
            raise Failure("the relay closed the agent's connection")
        self.buffer += chunk
        while len(self.buffer) >= 6:
            length = struct.unpack(">I", self.buffer[:4])[0]
            if len(self.buffer) < 4 + length:
                break
            msg_type, payload = self.buffer[5], self.buffer[6:4 + length]
            self.buffer = self.buffer[4 + length:]
            self.handle(msg_type, payload)

    def handle(self, msg_type, payload):
        if msg_type == 2:
            self.sock.sendall(frame(3, payload))
        elif msg_type == 36:
            ours, grant = struct.unpack(">II", payload[:8])
            self.window[ours] = self.window.get(ours, 0) + grant
        elif msg_type == 35:
            ours = struct.unpack(">I", payload[:4])[0]
            self.received[ours] = self.received.get(ours, b"") + payload[5:]
        elif msg_type == 37:
            self.eof.add(struct.unpack(">I", payload[:4])[0])
        else:
            self.inbox.append((msg_type, payload))

    def wait(self, what, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            for item in self.inbox:
                if predicate(*item):
                    self.inbox.remove(item)
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("the agent never got " + what)
            self.pump(min(left, 0.2))

    def wait_until(self, what, condition, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("timed out waiting for " + what)
            self.pump(min(left, 0.2))

    # -- control -----------------------------------------------------------------------
    def expect_control(self, kind, timeout=30.0):
        _, payload = self.wait(kind, lambda t, p: t == 64 and json.loads(p[8:]).get("type") == kind,
                               timeout)
        return struct.unpack(">I", payload[:4])[0], json.loads(payload[8:])

    def send_control(self, request_id, body):
        text = json.dumps(body).encode()
        self.sock.sendall(frame(64, struct.pack(">II", request_id, len(text)) + text))

    def grant(self, scope, grant_id="G-1", by="user"):
        request_id, body = self.expect_control("session.request")
        check(body["scopes"] == [scope], "scopes asked: %r" % body)
        self.send_control(request_id, {"type": "result", "ok": True, "grant": grant_id,
                                       "scopes": [scope], "by": by,
                                       "expires_ms": int(time.time() * 1000) + 3600000})
        return body

    # -- channels ----------------------------------------------------------------------
    def expect_open(self, kind=None, timeout=30.0):
        _, payload = self.wait("CHANNEL_OPEN", lambda t, p: t == 32, timeout)
        relay_id, window, max_packet = struct.unpack(">III", payload[:12])
        type_len = struct.unpack(">I", payload[12:16])[0]
        channel_type = payload[16:16 + type_len].decode()
        params_len = struct.unpack(">I", payload[16 + type_len:20 + type_len])[0]
        params = json.loads(payload[20 + type_len:20 + type_len + params_len])
        if kind is not None:
            check(channel_type == kind, "opened %s, expected %s" % (channel_type, kind))
        ours = self.next_id
        self.next_id += 1
        self.window[ours] = window
        self.remote[ours] = relay_id
        self.max_packet = max_packet
        return ours, channel_type, params

    def confirm(self, ours, window=2 * MIB):
        self.sock.sendall(frame(33, struct.pack(">IIII", self.remote[ours], ours, window, 65536)))

    def send(self, ours, data, stream=0, timeout=30.0):
        while data:
            self.wait_until("window to send", lambda: self.window[ours] > 0, timeout)
            n = min(len(data), self.window[ours], 65536)
            self.sock.sendall(frame(35, struct.pack(">IB", self.remote[ours], stream) + data[:n]))
            self.window[ours] -= n
            data = data[n:]

    def ack_input(self, ours, count, hidden):
        """CHANNEL_INPUT_ACK: the terminal took count more bytes, with echo off or on."""
        self.sock.sendall(frame(39, struct.pack(">IIB", self.remote[ours], count,
                                                1 if hidden else 0)))

    def send_eof(self, ours):
        self.sock.sendall(frame(37, struct.pack(">I", self.remote[ours])))

    def close(self, ours, status=None, signal_name=None):
        flags = (1 if status is not None else 0) | (2 if signal_name else 0)
        name = (signal_name or "").encode()
        self.sock.sendall(frame(38, struct.pack(">IBi", self.remote[ours], flags, status or 0) +
                                struct.pack(">I", len(name)) + name))

    def expect_close(self, ours, timeout=30.0):
        self.wait("CHANNEL_CLOSE", lambda t, p: t == 38 and
                  struct.unpack(">I", p[:4])[0] == ours, timeout)


class Desk:
    """A relay with technicians, and enrolled devices each with a ticket."""

    def __init__(self, devices=1):
        self.relay = Relay("relay", heartbeat_ms=5000)
        self.relay.ssh_port = free_port()
        if "ASAN_OPTIONS" in os.environ:
            # Freed memory in ASan's quarantine would look like growth.
            self.relay.env = dict(os.environ)
            self.relay.env["ASAN_OPTIONS"] += (":quarantine_size_mb=1:"
                                               "thread_local_quarantine_size_kb=64")
        self.keys = self.relay.add_technicians(ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", expect=None)[0] == 0)
        self.agents, self.tickets = [], []
        for i in range(devices):
            agent = Agent("agent%d" % (i + 1))
            agent.enroll(self.relay.code())
            ticket, _, _, _ = agent.help("problem on machine %d" % (i + 1))
            self.agents.append(agent)
            self.tickets.append(ticket)
        self.ticket = self.tickets[0]
        DESKS.append(self)

    def connect(self, index=0, features=0):
        raw = SessionAgent(self.relay, self.agents[index], features)
        return raw

    def ssh_argv(self, user, tty=False):
        argv = ["ssh", "-F", "/dev/null", "-i", self.keys[user], "-p", str(self.relay.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
        if tty:
            argv.append("-tt")
        return argv + [user + "@127.0.0.1"]

    def ssh(self, user, *words, expect=0, stdin=b""):
        proc = subprocess.run(self.ssh_argv(user) + list(words), capture_output=True,
                              timeout=120, input=stdin)
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if expect is not None and proc.returncode != expect:
            raise Failure("ssh %s %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                user, " ".join(words), proc.returncode, expect, out, err))
        return proc.returncode, out, err

    def start(self, user, *words, stdin=subprocess.DEVNULL):
        proc = subprocess.Popen(self.ssh_argv(user) + list(words), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return proc

    def audit(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def actions(self):
        return [e["action"] for e in self.audit()]

    def events(self, ticket=None):
        return [e["kind"] for e in self.relay.ticket(ticket or self.ticket)["events"]]

    def evidence(self, kind, ticket=None):
        return [e for e in self.relay.ticket(ticket or self.ticket)["evidence"]
                if e["kind"] == kind]


def finished(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise Failure("ssh did not end: stdout %r stderr %r" % (out[-500:], err[-500:]))
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


# ---- run: output, exit status, transcript ------------------------------------------------------

@case
def case_run_streams_output_and_keeps_a_transcript():
    desk = Desk()
    raw = desk.connect()
    # ssh sends one line; the relay splits it into words (single quotes group).
    proc = desk.start("bob", "run", desk.ticket, "--", "printf", "'hi there\\n'", "--json")
    asked = raw.grant("exec")
    check(asked["ticket"] == desk.ticket and asked["technician"] == "bob" and
          asked["role"] == "tier2" and asked["duration_s"] == 3600 and
          "printf" in asked["reason"], "session.request: %r" % asked)
    ours, _, params = raw.expect_open("exec")
    check(params == {"grant": "G-1", "technician": "bob",
                     "argv": ["printf", "hi there\\n", "--json"]}, "exec params: %r" % params)
    raw.confirm(ours)
    raw.send(ours, b"hi there\n")
    raw.send(ours, b"a warning\n", stream=1)
    raw.send_eof(ours)
    raw.close(ours, status=3)
    raw.expect_close(ours)
    status, out, err = finished(proc)
    check(status == 3, "exit status %d, expected the command's 3; stderr %r" % (status, err))
    check(out == "hi there\n", "stdout %r" % out)
    check("a warning" in err, "the command's stderr did not arrive: %r" % err)
    check("waiting for the user's consent (exec) ..." in err, "no waiting line: %r" % err)
    check(re.search(r"granted G-1 until \d\d:\d\dZ \(by user\)", err), "no grant line: %r" % err)
    items = desk.evidence("command")
    check(len(items) == 1, "transcript evidence: %r" % desk.relay.ticket(desk.ticket)["evidence"])
    stored = desk.relay.evidence_bytes(items[0]["hash"])
    check(hashlib.sha256(stored).hexdigest() == items[0]["hash"], "transcript hash is wrong")
    transcript = json.loads(stored)
    check(transcript["argv"] == ["printf", "hi there\\n", "--json"] and
          transcript["exit_status"] == 3 and transcript["technician"] == "bob" and
          transcript["grant"] == "G-1", "transcript: %r" % transcript)
    check(transcript["stdout"]["text"] == "hi there\n" and
          transcript["stdout"]["bytes"] == 9 and
          transcript["stdout"]["sha256"] == hashlib.sha256(b"hi there\n").hexdigest(),
          "stdout record: %r" % transcript["stdout"])
    check(transcript["stderr"]["text"] == "a warning\n", "stderr record: %r" % transcript["stderr"])
    for action in ("consent.request", "consent.granted", "session.start", "session.end",
                   "evidence.add"):
        check(action in desk.actions(), "%s not audited: %r" % (action, desk.actions()))
    events = desk.events()
    for kind in ("consent.requested", "consent.granted", "session.started", "exec.finished",
                 "evidence.added"):
        check(kind in events, "%s not on the timeline: %r" % (kind, events))
    # What ran shows under "already tried" for the next tier.
    shown = json.loads(desk.ssh("bob", "ticket", "show", desk.ticket, "--json")[1])
    check(any(e["kind"] == "exec.finished" for e in shown["already_tried"]),
          "already tried: %r" % shown["already_tried"])
    desk.relay.verify_audit()


@case
def case_run_passes_stdin_and_signals():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("carol", "run", desk.ticket, "--", "cat", stdin=subprocess.PIPE)
    proc.stdin.write(b"typed by the technician\n")
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it again
    raw.grant("exec")
    ours, _, _ = raw.expect_open("exec")
    raw.confirm(ours)
    raw.wait_until("stdin and its EOF", lambda: ours in raw.eof)
    check(raw.received.get(ours) == b"typed by the technician\n",
          "stdin on the machine: %r" % raw.received.get(ours))
    raw.send(ours, raw.received[ours])
    raw.close(ours, signal_name="KILL")
    status, out, _ = finished(proc)
    check(status == 128 + 9, "a command killed by SIGKILL gave exit %d, expected 137" % status)
    check(out == "typed by the technician\n", "stdout %r" % out)
    transcript = json.loads(desk.relay.evidence_bytes(desk.evidence("command")[0]["hash"]))
    check(transcript["exit_signal"] == "KILL" and transcript["exit_status"] is None,
          "transcript outcome: %r" % transcript)


# ---- diag ----------------------------------------------------------------------------------------

@case
def case_diag_is_kept_as_evidence():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("alice", "diag", desk.ticket)
    asked = raw.grant("diag")
    check(asked["duration_s"] == 900 and asked["reason"] == "diag " + desk.ticket,
          "diag request: %r" % asked)
    ours, _, params = raw.expect_open("diag")
    check(params == {"grant": "G-1", "technician": "alice"}, "diag params: %r" % params)
    raw.confirm(ours)
    report = json.dumps({"schema": 1, "host": "laptop",
                         "sections": {"logs": {"lines": ["x" * 100] * 6000}}}).encode()
    raw.send(ours, report)  # several windows' worth: the relay must keep granting
    raw.send_eof(ours)
    raw.close(ours, status=0)
    status, out, err = finished(proc)
    check(status == 0, "diag exit %d: %s" % (status, err))
    digest = hashlib.sha256(report).hexdigest()
    match = re.search(r"evidence ([0-9a-f]{64}) (diagnostics-\d{8}T\d{6}Z-([0-9a-f]{12})\.json) "
                      r"\((\d+) bytes\) added to " + desk.ticket, out)
    check(match and match.group(1) == digest and match.group(3) == digest[:12] and
          int(match.group(4)) == len(report), "diag output %r, report %s" % (out, digest))
    items = desk.evidence("diagnostics")
    check([e["hash"] for e in items if e["name"] == match.group(2)] == [digest],
          "diagnostics evidence: %r" % items)
    check(desk.relay.evidence_bytes(digest) == report, "stored report differs")
    check("evidence.add" in desk.actions(), "evidence not audited")
    desk.relay.verify_audit()


# ---- consent refused, offline, roles ------------------------------------------------------------

@case
def case_denied_or_unanswered_consent_ends_with_a_message():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("bob", "run", desk.ticket, "--", "reboot")
    request_id, _ = raw.expect_control("session.request")
    raw.send_control(request_id, {"type": "result", "ok": False, "error": "EDENIED",
                                  "message": "the user declined"})
    status, _, err = finished(proc)
    check(status == 1 and "the user declined" in err, "denied: %d %r" % (status, err))
    proc = desk.start("bob", "join", desk.ticket, "--observe")
    status, _, err = finished(proc)
    check(status == 2 and "join needs a terminal: use ssh -t" in err,
          "join without a terminal: %d %r" % (status, err))
    proc = desk.start("bob", "diag", desk.ticket)
    request_id, _ = raw.expect_control("session.request")
    raw.send_control(request_id, {"type": "result", "ok": False, "error": "ETIMEOUT",
                                  "message": "nobody answered"})
    status, _, err = finished(proc)
    check(status == 1 and "nobody answered on the machine" in err, "timeout: %d %r" % (status, err))
    # A grant the relay cannot use (its id would name a file) is refused, not used.
    proc = desk.start("bob", "diag", desk.ticket)
    request_id, _ = raw.expect_control("session.request")
    raw.send_control(request_id, {"type": "result", "ok": True, "grant": "../../x",
                                  "expires_ms": 1, "by": "user", "scopes": ["diag"]})
    status, _, err = finished(proc)
    check(status == 1 and "malformed grant" in err, "bad grant: %d %r" % (status, err))
    check([t for t, _ in raw.inbox if t == 32] == [], "a channel was opened without a grant")
    denied = [e for e in desk.audit() if e["action"] == "consent.denied"]
    check([e["details"]["error"] for e in denied] == ["EDENIED", "ETIMEOUT", "EPROTO"],
          "consent.denied entries: %r" % denied)
    check(desk.events().count("consent.denied") == 3, "timeline: %r" % desk.events())
    desk.relay.verify_audit()


@case
def case_grant_expiry_outside_its_range_is_refused():
    # docs/protocol.md §7.10: expires_ms is a whole number 1..253402300799999.
    desk = Desk()
    raw = desk.connect()
    for expires in (0, -1, 253402300800000, 2 ** 62, 1.5, "1"):
        proc = desk.start("bob", "diag", desk.ticket)
        request_id, _ = raw.expect_control("session.request")
        raw.send_control(request_id, {"type": "result", "ok": True, "grant": "G-1",
                                      "expires_ms": expires, "by": "user", "scopes": ["diag"]})
        status, _, err = finished(proc)
        check(status == 1 and "malformed grant" in err,
              "expires_ms %r: %d %r" % (expires, status, err))
    check([t for t, _ in raw.inbox if t == 32] == [], "a channel was opened on a bad grant")
    denied = [e["details"]["error"] for e in desk.audit() if e["action"] == "consent.denied"]
    check(denied == ["EPROTO"] * 6, "consent.denied entries: %r" % denied)
    desk.relay.verify_audit()


@case
def case_offline_device_gets_a_clear_error():
    desk = Desk()
    status, _, err = desk.ssh("bob", "run", desk.ticket, "--", "ls", expect=None)
    check(status == 1 and "device D-1 is offline; the request can be retried when it connects"
          in err, "offline: %d %r" % (status, err))
    status, _, err = desk.ssh("bob", "run", "T-99", "--", "ls", expect=None)
    check(status == 1 and "no ticket T-99" in err, "no ticket: %d %r" % (status, err))
    for words in (["run", desk.ticket], ["run", desk.ticket, "--for", "5s", "--", "ls"],
                  ["diag", desk.ticket, "--bogus"], ["fix", desk.ticket],
                  ["fix", desk.ticket, "Bad_Name"], ["fix", desk.ticket, "x", "lower=1"]):
        status, _, err = desk.ssh("bob", *words, expect=None)
        check(status == 2 and "usage" in err, "%r: %d %r" % (words, status, err))


@case
def case_roles_refuse_sessions_and_denials_are_audited():
    desk = Desk()
    raw = desk.connect()
    for user, words in (("alice", ["run", desk.ticket, "--", "ls"]),
                        ("alice", ["join", desk.ticket]),
                        ("audrey", ["join", desk.ticket]),
                        ("audrey", ["join", desk.ticket, "--observe"]),
                        ("audrey", ["diag", desk.ticket])):
        status, _, err = desk.ssh(user, *words, expect=None)
        check(status == 77 and "permission denied" in err, "%s %r: %d %r" % (user, words,
                                                                            status, err))
    denied = [e for e in desk.audit() if e["action"] == "access.denied"]
    check(len(denied) == 5 and all(e["subject"] == desk.ticket for e in denied),
          "denials audited: %r" % denied)
    check({e["details"]["needs"] for e in denied} == {"run", "shell", "observe", "diag"},
          "needs: %r" % [e["details"] for e in denied])
    # A vendor only observes, and only on tickets bound to its account.
    status, _, err = desk.ssh("vera", "diag", desk.ticket, expect=None)
    check(status == 77 and "permission denied" in err, "tier4 diag: %d %r" % (status, err))
    proc = subprocess.run(desk.ssh_argv("vera", tty=True) + ["join", desk.ticket, "--observe"],
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    said = (proc.stdout + proc.stderr).decode(errors="replace")
    check(proc.returncode == 1 and "no ticket" in said,
          "tier4 on a ticket not bound to it: %d %r" % (proc.returncode, said))
    raw.pump(0.5)
    check([t for t, _ in raw.inbox if t in (32, 64)] == [], "the machine was asked anyway")
    _, help_text, _ = desk.ssh("alice", "help")
    check("join T-N" in help_text and "run T-N" not in help_text, "tier1 help: " + help_text)
    desk.relay.verify_audit()


# ---- the end of a grant, the end of the connection ----------------------------------------------

@case
def case_grant_ended_on_the_machine_ends_the_session():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("bob", "run", desk.ticket, "--", "sleep", "600")
    raw.grant("exec", grant_id="G-4")
    ours, _, _ = raw.expect_open("exec")
    raw.confirm(ours)
    raw.send(ours, b"started\n")
    # As the agent does (protocol.md §7.8): close with HUP, then say why.
    raw.close(ours, signal_name="HUP")
    raw.send_control(0, {"type": "session.ended", "grant": "G-4", "ticket": desk.ticket,
                         "reason": "ended by the user"})
    status, out, err = finished(proc)
    check(status == 1 and "session ended on the machine: ended by the user" in err,
          "exit %d, stderr %r" % (status, err))
    check(out == "started\n", "output before the end: %r" % out)
    wait_for("grant.ended on the timeline", lambda: "grant.ended" in desk.events())
    check("grant.end" in desk.actions(), "grant end not audited")
    # A notification naming another device's ticket changes nothing there.
    other = Agent("other")
    other.enroll(desk.relay.code())
    other_ticket, _, _, _ = other.help("someone else's problem")
    raw.send_control(0, {"type": "session.ended", "grant": "G-4", "ticket": other_ticket,
                         "reason": "x"})
    raw.send_control(0, {"type": "session.ended", "grant": "../bad", "ticket": "nope"})
    desk.ssh("bob", "whoami")
    check("grant.ended" not in desk.events(other_ticket), "another device's ticket was written")


@case
def case_agent_disconnect_ends_sessions():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("bob", "run", desk.ticket, "--", "sleep", "600")
    raw.grant("exec")
    ours, _, _ = raw.expect_open("exec")
    raw.confirm(ours)
    raw.send(ours, b"partial\n")
    # A second technician waits for consent while the machine goes away.
    waiting = desk.start("carol", "diag", desk.ticket)
    raw.expect_control("session.request")
    raw.sock.close()
    status, out, err = finished(proc)
    check(status == 1 and "the machine went offline" in err, "exit %d %r" % (status, err))
    status, _, err = finished(waiting)
    check(status == 1 and "the machine went offline" in err, "waiting: %d %r" % (status, err))
    transcript = json.loads(desk.relay.evidence_bytes(desk.evidence("command")[0]["hash"]))
    check(transcript["stdout"]["text"] == "partial\n" and transcript["ended_by"] == "offline",
          "transcript: %r" % transcript)
    desk.relay.verify_audit()


@case
def case_technician_leaving_cancels_and_closes():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("bob", "diag", desk.ticket)
    request_id, _ = raw.expect_control("session.request")
    proc.kill()
    proc.wait()
    _, cancel = raw.expect_control("session.cancel")
    check(cancel["request_id"] == request_id, "cancel names %r, asked %d" % (cancel, request_id))
    wait_for("consent.cancel in the audit", lambda: "consent.cancel" in desk.actions())
    proc = desk.start("bob", "run", desk.ticket, "--", "sleep", "600")
    raw.grant("exec")
    ours, _, _ = raw.expect_open("exec")
    raw.confirm(ours)
    raw.send(ours, b"running\n")
    proc.kill()
    proc.wait()
    raw.expect_close(ours)  # the relay ends the channel: the agent stops the process
    raw.close(ours, signal_name="HUP")
    wait_for("the transcript", lambda: desk.evidence("command"))
    ends = [e for e in desk.audit() if e["action"] == "session.end"]
    check(ends and ends[-1]["details"].get("ended_by") == "technician", "session.end: %r" % ends)


@case
def case_relay_stopping_mid_session_keeps_the_record():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("bob", "run", desk.ticket, "--", "sleep", "600")
    raw.grant("exec")
    ours, _, _ = raw.expect_open("exec")
    raw.confirm(ours)
    raw.send(ours, b"before the stop\n")
    # The technician has it, so the relay has seen it.
    check(b"before the stop" in read_until(proc.stdout.fileno(), b"before the stop"),
          "output did not reach the technician")
    waiting = desk.start("carol", "diag", desk.ticket)
    raw.expect_control("session.request")
    code = desk.relay.kill(signal.SIGTERM)
    check(code == 0, "the relay exited %r on SIGTERM with sessions open" % code)
    for tech in (proc, waiting):
        status, _, _ = finished(tech)
        check(status != 0, "a session that was cut short ended with status 0")
    # What was recorded before the stop is all there.
    desk.relay.start()
    ends = [e for e in desk.audit() if e["action"] == "session.end"]
    check(len(ends) == 1, "session.end entries: %r" % ends)
    transcript = json.loads(desk.relay.evidence_bytes(desk.evidence("command")[0]["hash"]))
    check(transcript["stdout"]["text"] == "before the stop\n", "transcript %r" % transcript)
    desk.relay.verify_audit()


# ---- flow control ----------------------------------------------------------------------------------

@case
def case_technician_who_stops_reading_holds_back_only_their_session():
    desk = Desk(devices=2)
    first, second = desk.connect(0), desk.connect(1)
    # bob reads nothing: ssh's stdout is a pipe nobody drains.
    stalled = desk.start("bob", "run", desk.ticket, "--", "yes")
    first.grant("exec")
    ours, _, _ = first.expect_open("exec")
    first.confirm(ours)
    baseline = rss_kib(desk.relay.proc.pid)
    block = b"y\n" * 32768
    sent = 0
    while sent < 512 * MIB:
        if first.window[ours] == 0:
            # Bounded: no more window within a few seconds means the relay holds back.
            try:
                first.wait_until("more window", lambda: first.window[ours] > 0, timeout=3)
            except Failure:
                break
        n = min(len(block), first.window[ours])
        first.sock.sendall(frame(35, struct.pack(">IB", first.remote[ours], 0) + block[:n]))
        first.window[ours] -= n
        sent += n
    check(sent < 32 * MIB, "the relay let %d MiB through to a technician who reads nothing" %
          (sent // MIB))
    grown = rss_kib(desk.relay.proc.pid) - baseline
    check(grown < 32 * 1024, "relay grew %d KiB holding a stalled session" % grown)
    # Meanwhile another technician's session on another machine flows.
    proc = desk.start("carol", "run", desk.tickets[1], "--", "echo", "second")
    second.grant("exec")
    theirs, _, _ = second.expect_open("exec")
    second.confirm(theirs)
    second.send(theirs, b"second\n" * 100000)  # 700 KB: past one window's half, adjusts needed
    second.close(theirs, status=0)
    status, out, _ = finished(proc)
    check(status == 0 and out == "second\n" * 100000, "second session: %d, %d bytes" %
          (status, len(out)))
    check(first.window[ours] == 0, "the stalled session got window meanwhile")
    stalled.kill()
    stalled.wait()
    first.expect_close(ours)
    first.close(ours, signal_name="HUP")
    wait_for("the stalled session's transcript", lambda: desk.evidence("command"))
    transcript = json.loads(desk.relay.evidence_bytes(desk.evidence("command")[0]["hash"]))
    check(transcript["stdout"]["bytes"] == sent and transcript["stdout"]["truncated"] and
          len(transcript["stdout"]["text"]) == 1024 * 1024, "transcript stdout: %r" %
          {k: v for k, v in transcript["stdout"].items() if k != "text"})


# ---- runbooks ------------------------------------------------------------------------------------

CATALOGUE = [
    {"name": "restart-service", "description": "Restart a systemd service", "min_role": "tier1",
     "privileged": True, "params": [{"name": "SERVICE", "pattern": "^[a-z.@-]{1,64}$",
                                     "required": True, "description": "unit name"}]},
    {"name": "flush-dns", "description": "Flush the DNS cache\x1b[31m", "min_role": "tier1",
     "privileged": False, "params": []},
    {"name": "clean-temp", "description": "Remove old temporary files", "min_role": "tier2",
     "privileged": False, "params": [{"name": "DAYS", "pattern": "^[0-9]{1,3}$",
                                      "required": False, "description": "age"}]},
]


def answer_catalogue(raw):
    request_id, _ = raw.expect_control("runbooks.list")
    raw.send_control(request_id, {"type": "result", "ok": True, "runbooks": CATALOGUE})


@case
def case_runbooks_and_fix():
    desk = Desk()
    raw = desk.connect()
    proc = desk.start("alice", "runbooks", desk.ticket)
    answer_catalogue(raw)
    status, out, err = finished(proc)
    check(status == 0 and re.search(r"^NAME\s+PRIV\s+MIN-ROLE\s+PARAMS\s+DESCRIPTION", out, re.M)
          and re.search(r"^restart-service\s+yes\s+tier1\s+SERVICE\s", out, re.M) and
          re.search(r"^clean-temp\s+no\s+tier2\s+\[DAYS\]\s", out, re.M), "runbooks: %r" % out)
    check("\x1b" not in out, "the machine's text reached the terminal unfiltered")
    proc = desk.start("alice", "fix", desk.ticket, "restart-servce", "SERVICE=cups")
    answer_catalogue(raw)
    status, _, err = finished(proc)
    check(status == 1 and "did you mean: restart-service" in err, "typo: %d %r" % (status, err))
    proc = desk.start("bob", "fix", desk.ticket, "restart-service", "SERVICE=cups")
    answer_catalogue(raw)
    status, _, err = finished(proc)
    check(status == 77 and "fix.privileged" in err, "privileged by tier2: %d %r" % (status, err))
    check([e for e in desk.audit() if e["action"] == "access.denied" and
           e["details"].get("runbook") == "restart-service"], "privileged refusal not audited")
    proc = desk.start("carol", "fix", desk.ticket, "restart-service")
    answer_catalogue(raw)
    status, _, err = finished(proc)
    check(status == 1 and "needs SERVICE=VALUE" in err, "missing argument: %d %r" % (status, err))
    proc = desk.start("carol", "fix", desk.ticket, "restart-service", "SERVICE=cups",
                      "--reason", "'printer stuck'")
    answer_catalogue(raw)
    asked = raw.grant("fix")
    check(asked["reason"] == "printer stuck" and asked["duration_s"] == 1800, "fix: %r" % asked)
    ours, _, params = raw.expect_open("runbook")
    check(params == {"grant": "G-1", "technician": "carol", "name": "restart-service",
                     "args": {"SERVICE": "cups"}}, "runbook params: %r" % params)
    raw.confirm(ours)
    raw.send(ours, b"cups.service restarted\n")
    raw.close(ours, status=0)
    status, out, err = finished(proc)
    check(status == 0 and out == "cups.service restarted\n", "fix: %d %r %r" % (status, out, err))
    transcript = json.loads(desk.relay.evidence_bytes(desk.evidence("runbook")[0]["hash"]))
    check(transcript["runbook"] == "restart-service" and transcript["args"] == {"SERVICE": "cups"}
          and transcript["exit_status"] == 0, "runbook transcript: %r" % transcript)
    check("fix.finished" in desk.events(), "timeline: %r" % desk.events())
    desk.relay.verify_audit()


# ---- join: a terminal through the relay, recorded -------------------------------------------------

def read_until(fd, needle, timeout=30.0):
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("terminal never showed %r; it showed %r" % (needle, seen[-300:]))
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def run_in_terminal(argv, timeout=60.0):
    """Runs a program on a pseudo-terminal (asciinema wants one); returns what it printed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        else:
            raise Failure("%s did not end" % argv[0])
    finally:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return out


@case
def case_join_bridges_a_terminal_and_keeps_a_recording():
    desk = Desk()
    raw = desk.connect()
    argv = desk.ssh_argv("bob", tty=True) + ["join", desk.ticket]
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execvp(argv[0], argv)
    try:
        raw.grant("shell")
        ours, _, params = raw.expect_open("shell")
        check(params["cols"] == 100 and params["rows"] == 30 and params["grant"] == "G-1" and
              params["term"], "shell params: %r" % params)
        raw.confirm(ours)
        raw.send(ours, b"user@laptop:~$ ")
        read_until(fd, b"user@laptop:~$ ")
        os.write(fd, b"echo hello\r")
        raw.wait_until("the keystrokes", lambda: b"echo hello\r" in raw.received.get(ours, b""))
        raw.send(ours, b"echo hello\r\nhello from the machine\r\nuser@laptop:~$ ")
        read_until(fd, b"hello from the machine")
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 43, 132, 0, 0))
        _, resize = raw.expect_control("session.resize")
        check(resize == {"type": "session.resize", "channel": ours, "cols": 132, "rows": 43},
              "resize: %r (the agent's channel is %d)" % (resize, ours))
        raw.send_eof(ours)
        raw.close(ours, status=0)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                raise Failure("ssh -tt join did not end")
            select.select([fd], [], [], 0.2)
            try:
                os.read(fd, 65536)
            except OSError:
                pass
        pid = 0
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "join exit %r" % status)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    wait_for("the recording as evidence", lambda: desk.evidence("recording"))
    item = desk.evidence("recording")[0]
    check(re.fullmatch(r"recording-shell-\d{8}T\d{6}Z-%s\.cast\.gz" % item["hash"][:12],
                       item["name"]), "recording name %r" % item["name"])
    # Written to DATA/recordings while the session ran, under the ticket and grant.
    recordings = os.path.join(desk.relay.dir, "recordings")
    files = os.listdir(recordings)
    on_disk = re.escape(desk.ticket) + r"-G-1-\d{8}T\d{6}Z-\d+\.cast\.gz"
    check(len(files) == 1 and re.fullmatch(on_disk, files[0]), "recording files: %r" % files)
    with open(os.path.join(recordings, files[0]), "rb") as f:
        check(hashlib.sha256(f.read()).hexdigest() == item["hash"], "the file and evidence differ")
    cast = os.path.join(WORK, "session.cast")
    with open(cast, "wb") as f:
        f.write(gzip.decompress(desk.relay.evidence_bytes(item["hash"])))
    shown = run_in_terminal(["asciinema", "cat", cast])
    check(b"hello from the machine" in shown, "asciinema cat: %r" % shown[-600:])
    with open(cast) as f:
        events = [json.loads(line) for line in f.read().splitlines()[1:] if line]
    check(any(e[1] == "i" and "echo hello" in e[2] for e in events), "no input events")
    check(any(e[1] == "r" and e[2] == "132x43" for e in events), "no resize event")
    recorded = [e for e in desk.audit() if e["action"] == "session.recorded"]
    check(recorded and recorded[0]["details"]["sha256"] == item["hash"],
          "session.recorded: %r" % recorded)
    desk.relay.verify_audit()


@case
def case_join_records_input_the_agent_hid_as_a_count():
    # An agent that announces CHANNEL_INPUT_ACK says which input its terminal
    # took with echo off; the recording keeps a count of those bytes, never them.
    desk = Desk()
    raw = desk.connect(features=FEATURE_INPUT_ACK)
    argv = desk.ssh_argv("bob", tty=True) + ["join", desk.ticket]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    typed = []

    def type_line(text):
        os.write(fd, text)
        typed.append(text)
        want = b"".join(typed)
        raw.wait_until("the keystrokes %r" % text,
                       lambda: raw.received.get(ours, b"") == want)

    try:
        raw.grant("shell")
        ours, _, _ = raw.expect_open("shell")
        raw.confirm(ours)
        raw.send(ours, b"$ ")
        read_until(fd, b"$ ")
        type_line(b"sudo -v\r")
        raw.ack_input(ours, 8, hidden=False)
        raw.send(ours, b"sudo -v\r\n[sudo] password for user: ")
        read_until(fd, b"password for user: ")
        type_line(b"pa55-w0rd-77\r")
        raw.ack_input(ours, 5, hidden=True)
        raw.ack_input(ours, 8, hidden=True)
        raw.send(ours, b"\r\n$ ")
        read_until(fd, b"\r\n$ ")
        type_line(b"echo after\r")
        raw.ack_input(ours, 11, hidden=False)
        raw.send(ours, b"echo after\r\nafter\r\n$ ")
        read_until(fd, b"after\r\n$ ")
        # Typed, but the session ends before the agent says how it was taken.
        type_line(b"never-acked\r")
        raw.send_eof(ours)
        raw.close(ours, status=0)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                raise Failure("ssh -tt join did not end")
            select.select([fd], [], [], 0.2)
            try:
                os.read(fd, 65536)
            except OSError:
                pass
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    wait_for("the recording as evidence", lambda: desk.evidence("recording"))
    item = desk.evidence("recording")[0]
    text = gzip.decompress(desk.relay.evidence_bytes(item["hash"])).decode()
    events = [json.loads(line) for line in text.splitlines()[1:] if line]
    kept = [e[1:] for e in events if e[1] in ("i", "m")]
    check(kept == [["i", "sudo -v\r"], ["m", "input hidden: 13 bytes"], ["i", "echo after\r"],
                   ["m", "input hidden: 12 bytes"],
                   ["m", "end dropped_events=0 dropped_bytes=0"]],
          "input and markers recorded: %r" % kept)
    # No trace of the hidden bytes anywhere the relay keeps things.
    for root, _, files in os.walk(desk.relay.dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            if name.endswith(".gz"):
                data += gzip.decompress(data)
            for secret in (b"pa55-w0rd", b"never-acked"):
                check(secret not in data, "%r found in %s" % (secret, os.path.join(root, name)))
    check(b"pa55-w0rd" not in open(desk.relay.log_path, "rb").read(), "the relay logged it")
    desk.relay.verify_audit()


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


def stop_relays():
    # A clean stop, so that a sanitizer build reports leaks and errors here.
    for desk in DESKS:
        code = desk.relay.kill(signal.SIGTERM)
        check(code == 0, "the relay exited %r on SIGTERM" % code)


if __name__ == "__main__":
    sys.exit(tlcase.main("sessions_relay.py BIN_DIR", "tl-sess-", setup_globals, started=STARTED,
                         track_popen=True, home=True, passed=stop_relays, tail=60))
