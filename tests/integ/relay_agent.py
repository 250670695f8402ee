#!/usr/bin/env python3
"""End-to-end tests of the relay and the agent: real processes on loopback,
real TLS 1.3, real SQLite files. Each case runs in its own process:

    relay_agent.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib

import tlcase
from tlcase import Failure, case, check, free_port, keygen, run, wait_for

BIN = None
WORK = None


class Relay:
    def __init__(self, name="relay", heartbeat_ms=300, handshake_ms=1000):
        self.dir = os.path.join(WORK, name)
        self.port = free_port()
        self.heartbeat_ms = heartbeat_ms
        self.handshake_ms = handshake_ms
        self.proc = None
        self.env = None  # None: inherit
        self.options = []  # more serve options
        self.ssh_port = None  # set to serve technicians over SSH too
        self.extra_args = []  # more serve options (the web view's)
        self.log_path = os.path.join(WORK, name + ".log")
        out, _ = run(BIN + "/tierline-relay", "init", "--data", self.dir, "--listen",
                     "127.0.0.1:%d" % self.port)
        self.fingerprint = re.search(r"fingerprint: (SHA256:\S+)", out).group(1)

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-relay", "serve", "--data", self.dir, "--listen",
             "127.0.0.1:%d" % self.port, "--heartbeat-ms",
             str(self.heartbeat_ms), "--handshake-timeout-ms", str(self.handshake_ms),
             "--log-level", "debug"] + self.options +
            (["--ssh-listen", "127.0.0.1:%d" % self.ssh_port] if self.ssh_port else []) +
            self.extra_args,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=self.env)
        wait_for("the relay to listen", self.accepting)
        return self

    def add_technicians(self, roles):
        """Before start(): a key pair and an account for each name: role. {name: key path}."""
        keys = {name: os.path.join(WORK, name) for name in roles}
        # All at once: each is a program start, and the admin commands may run side by side
        # (the store waits for its lock; docs/testing.md).
        tlcase.run_all([tlcase.keygen_args(keys[name], name) for name in roles], timeout=30)
        # A vendor's account always ends (docs/desk.md "Vendor accounts").
        tlcase.run_all([[BIN + "/tierline-relay", "user", "add", name, "--role", role, "--key",
                         keys[name] + ".pub", "--data", self.dir] +
                        (["--expires", "30d"] if role == "tier4" else [])
                        for name, role in roles.items()])
        return keys

    def write_known_hosts(self):
        """A known_hosts file for ssh_port, from host-key: its path."""
        known, _ = run(BIN + "/tierline-relay", "host-key", "--data", self.dir,
                       "--known-hosts", "127.0.0.1:%d" % self.ssh_port)
        path = os.path.join(WORK, "known_hosts")
        with open(path, "w") as f:
            f.write(known)
        return path

    def accepting(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        status = self.proc.returncode if self.proc else None
        self.proc = None
        return status

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def code(self, ttl="10m"):
        out, _ = run(BIN + "/tierline-relay", "enroll-code", "--data", self.dir, "--ttl", ttl)
        return out.strip()

    def tickets(self):
        out, _ = run(BIN + "/tierline-relay", "tickets", "--data", self.dir, "--json")
        return json.loads(out)

    def ticket(self, ticket_id):
        out, _ = run(BIN + "/tierline-relay", "ticket", "show", ticket_id, "--data", self.dir,
                     "--json")
        return json.loads(out)

    def devices(self):
        out, _ = run(BIN + "/tierline-relay", "devices", "--data", self.dir, "--json")
        return json.loads(out)

    def verify_audit(self):
        out, err = run(BIN + "/tierline-relay", "audit-verify", "--data", self.dir, expect=None)
        check("audit log OK" in out, "audit chain does not verify: " + out + err)

    def audit_actions(self):
        with open(os.path.join(self.dir, "audit.log")) as f:
            return [json.loads(line)["action"] for line in f if line.endswith("\n")]

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def evidence_bytes(self, sha256):
        with open(os.path.join(self.dir, "evidence", sha256[:2], sha256), "rb") as f:
            return zlib.decompress(f.read())


class Agent:
    def __init__(self, name):
        self.dir = os.path.join(WORK, name)
        self.proc = None
        self.log_path = os.path.join(WORK, name + ".log")

    def enroll(self, string, expect=0):
        return run(BIN + "/tierline-agent", "enroll", string, "--state", self.dir, expect=expect)

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-agent", "run", "--state", self.dir, "--backoff-max-ms", "400",
             "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for("the agent's control socket", lambda: self.status().get("running"))
        return self

    def status(self):
        out, _ = run(BIN + "/tierline-agent", "status", "--state", self.dir, "--json")
        return json.loads(out)

    def help(self, text, expect=0, wait_ms=20000):
        # The desk's fixtures open their tickets at once: self-help has its own cases
        # (selfhelp.py), and what it would show depends on the machine running the tests.
        out, err = run(BIN + "/tierline-agent", "help", text, "--state", self.dir, "--wait-ms",
                       str(wait_ms), "--no-self-help", expect=expect, timeout=120)
        match = re.search(r"sha256 ([0-9a-f]{64})\) as request (R-[0-9a-f]{32})", err)
        check(match is not None, "help did not report its attachment: " + err)
        return out.strip(), match.group(1), match.group(2), err

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()


def enrolled_pair(relay_name="relay", agent_name="agent", relay=None):
    if relay is None:
        relay = Relay(relay_name).start()
    agent = Agent(agent_name)
    out, _ = agent.enroll(relay.code())
    check(re.search(r"Enrolled as D-\d+", out), "no device id in: " + out)
    return relay, agent


# ---- raw protocol helpers (a hand-made peer, to send what a real agent never would) ----

def frame(msg_type, payload, version=1):
    return struct.pack(">IBB", len(payload) + 2, version, msg_type) + payload


def hello(features=0):
    name = b"raw-test-peer"
    return frame(1, struct.pack(">HHI", 1, 1, features) + struct.pack(">I", len(name)) + name)


def tls_client(relay, agent):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # this peer misbehaves; it does not care who the relay is
    ctx.load_cert_chain(os.path.join(agent.dir, "agent.crt"), os.path.join(agent.dir, "agent.key"))
    raw = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    return ctx.wrap_socket(raw)


def read_frames(sock, timeout=10.0):
    """Reads frames until the relay closes; returns [(type, payload)]."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, ConnectionResetError, socket.timeout, OSError):
        pass
    frames = []
    while len(data) >= 6:
        length, _, msg_type = struct.unpack(">IBB", data[:6])
        frames.append((msg_type, data[6:4 + length]))
        data = data[4 + length:]
    return frames


def goodbye_code(frames):
    for msg_type, payload in frames:
        if msg_type == 4:
            return struct.unpack(">I", payload[:4])[0]
    return None


# ---- the story -------------------------------------------------------------------------

@case
def case_enroll_run_help_creates_ticket_with_evidence():
    relay, agent = enrolled_pair()
    devices = relay.devices()
    check(len(devices) == 1 and devices[0]["id"] == "D-1", "devices: %r" % devices)
    agent.start()
    wait_for("the device to be online", lambda: relay.devices()[0]["online"])
    ticket_id, sha256, request, _ = agent.help("printer won't print\nit says offline")
    check(re.fullmatch(r"T-\d+", ticket_id), "help printed %r, not a ticket id" % ticket_id)
    ticket = relay.ticket(ticket_id)
    check(ticket["title"] == "printer won't print", "title %r" % ticket["title"])
    check(ticket["tier"] == 1 and ticket["device"] == "D-1", "ticket %r" % ticket)
    hashes = [item["hash"] for item in ticket["evidence"]]
    check(hashes == [sha256], "evidence %r, agent sent %s" % (hashes, sha256))
    stored = relay.evidence_bytes(sha256)
    check(hashlib.sha256(stored).hexdigest() == sha256, "stored evidence does not match its hash")
    report = json.loads(stored)
    check("sections" in report and "system" in report["sections"], "evidence is not diagnostics")
    check(agent.status()["queued"] == [], "the request stayed in the outbox")
    kinds = [event["kind"] for event in ticket["events"]]
    check("ticket.created" in kinds and "evidence.added" in kinds, "timeline %r" % kinds)
    actions = relay.audit_actions()
    for action in ("relay.init", "enroll.code", "enroll.ok", "agent.connect", "evidence.store",
                   "ticket.create"):
        check(action in actions, "audit log lacks %s: %r" % (action, actions))
    relay.verify_audit()
    agent.stop()
    wait_for("the device to go offline", lambda: not relay.devices()[0]["online"])
    wait_for("agent.disconnect in the audit log", lambda: "agent.disconnect" in relay.audit_actions())
    relay.verify_audit()
    check(relay.kill(signal.SIGTERM) == 0, "relay did not exit cleanly on SIGTERM")


@case
def case_help_without_running_agent_delivers_itself():
    relay, agent = enrolled_pair()
    ticket_id, sha256, _, _ = agent.help("disk full")
    check(re.fullmatch(r"T-\d+", ticket_id), "no ticket id: %r" % ticket_id)
    check([e["hash"] for e in relay.ticket(ticket_id)["evidence"]] == [sha256], "evidence hash")
    relay.verify_audit()


@case
def case_request_waits_while_relay_is_down_then_is_delivered():
    relay, agent = enrolled_pair()
    relay.kill()
    _, sha256, request, err = agent.help("vpn drops", expect=75, wait_ms=2000)
    check("saved in" in err, "no queued message: " + err)
    queued = agent.status()["queued"]
    check(queued == [request], "outbox %r" % queued)
    with open(os.path.join(agent.dir, "outbox", request, "evidence-0"), "rb") as f:
        check(hashlib.sha256(f.read()).hexdigest() == sha256, "queued evidence changed")
    agent.start()
    time.sleep(1.0)
    check(agent.status()["queued"] == [request], "request lost while the relay is down")
    relay.start()
    wait_for("the queued request to be delivered", lambda: agent.status()["queued"] == [])
    tickets = relay.tickets()
    check(len(tickets) == 1, "tickets %r" % tickets)
    check([e["hash"] for e in relay.ticket(tickets[0]["id"])["evidence"]] == [sha256],
          "delivered evidence differs")
    relay.verify_audit()
    agent.stop()


@case
def case_agent_survives_relay_restart():
    relay, agent = enrolled_pair()
    agent.start()
    wait_for("online", lambda: relay.devices()[0]["online"])
    relay.kill(signal.SIGTERM)
    relay.start()
    wait_for("the agent to reconnect", lambda: agent.status()["connected"], timeout=30)
    ticket_id, _, _, _ = agent.help("after restart")
    check(re.fullmatch(r"T-\d+", ticket_id), "no ticket after restart")
    agent.stop()


@case
def case_dead_agent_detected_and_comes_back():
    relay, agent = enrolled_pair()
    agent.start()
    wait_for("online", lambda: relay.devices()[0]["online"])
    # A frozen agent answers nothing: the relay must notice within its heartbeat bound
    # (3 x 300 ms here), not wait for TCP to give up.
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for("the frozen agent to be marked offline", lambda: not relay.devices()[0]["online"],
                 timeout=15)
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    wait_for("the agent to be back", lambda: relay.devices()[0]["online"], timeout=30)
    check("agent.disconnect" in relay.audit_actions(), "disconnect not audited")
    relay.verify_audit()
    agent.stop()


@case
def case_relay_answers_pings_sends_none_and_drops_a_silent_agent():
    """docs/protocol.md 7.1: the agent pings, the relay answers and pings no one itself; an agent
    that goes quiet is closed after three intervals (300 ms here) by the relay's one sweep."""
    relay, agent = enrolled_pair()
    raw = RawAgent(relay, agent)
    nonce = struct.pack(">Q", 0x1234567890ABCDEF)
    raw.sock.sendall(frame(2, nonce))
    msg_type, payload = raw.next_frame()
    check((msg_type, payload) == (3, nonce), "answer to PING: %r %r" % (msg_type, payload))
    # Quiet from here on: whatever comes until the relay closes, none of it a PING.
    raw.sock.settimeout(1.0)
    seen, closed = [], False
    deadline = time.monotonic() + 15
    while not closed and time.monotonic() < deadline:
        try:
            msg_type, _ = raw.next_frame()
            seen.append(msg_type)
        except (Failure, ssl.SSLError, ConnectionResetError, OSError) as e:
            closed = not isinstance(e, socket.timeout)
    check(closed, "a silent agent still connected after 15 s (frames %r)" % seen)
    check(2 not in seen, "the relay sent PING: frames %r" % seen)
    wait_for("the silent agent marked offline", lambda: not relay.devices()[0]["online"])
    check("peer silent, closing" in relay.log_text(), "no 'peer silent' line in the relay's log")


@case
def case_audit_verify_names_first_tampered_entry():
    relay, agent = enrolled_pair()
    agent.help("something to audit")
    relay.verify_audit()
    path = os.path.join(relay.dir, "audit.log")
    with open(path) as f:
        lines = f.readlines()
    check(len(lines) >= 4, "too few audit entries: %d" % len(lines))
    entry = json.loads(lines[2])
    lines[2] = lines[2].replace('"actor":"%s"' % entry["actor"], '"actor":"someone-else"')
    with open(path, "w") as f:
        f.writelines(lines)
    out, err = run(BIN + "/tierline-relay", "audit-verify", "--data", relay.dir, expect=1)
    check(re.search(r"\bseq 3\b", out + err), "first bad entry not named: " + out + err)


@case
def case_control_socket_refuses_other_users():
    relay, agent = enrolled_pair()
    agent.start()
    socket_path = os.path.join(agent.dir, "agent.sock")
    # Open the path up so that only the peer-credential check stands in the way.
    os.chmod(WORK, 0o755)
    os.chmod(agent.dir, 0o755)
    os.chmod(socket_path, 0o777)
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(socket_path)
            s.sendall(b'{"cmd":"status"}\n')
            answer = s.recv(4096)
            os._exit(0 if answer == b"" else 3)
        except (ConnectionResetError, BrokenPipeError):
            os._exit(0)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(child, 0)
    check(os.WEXITSTATUS(status) == 0, "another user got an answer (child status %d)" %
          os.WEXITSTATUS(status))
    check("refused a connection from another user" in agent.log_text(), "refusal not logged")
    check(agent.status()["running"], "the owner lost access")
    agent.stop()


# ---- enrollment codes --------------------------------------------------------------------

@case
def case_expired_code_refused():
    relay = Relay().start()
    string = relay.code(ttl="1s")
    time.sleep(1.5)
    _, err = Agent("agent").enroll(string, expect=1)
    check("expired" in err, "no clear error: " + err)
    check("enroll.failed" in relay.audit_actions(), "failure not audited")
    check(relay.devices() == [], "a device appeared")
    relay.verify_audit()


@case
def case_reused_code_refused():
    relay = Relay().start()
    string = relay.code()
    Agent("first").enroll(string)
    _, err = Agent("second").enroll(string, expect=1)
    check("already used" in err, "no clear error: " + err)
    check(len(relay.devices()) == 1, "second device appeared")
    relay.verify_audit()


@case
def case_wrong_code_refused_and_rate_limited():
    relay = Relay().start()
    string = relay.code()
    code = string[4:23]
    wrong = string.replace(code, "0000-0000-0000-0000")
    for attempt in range(5):
        _, err = Agent("a%d" % attempt).enroll(wrong, expect=1)
        check("unknown enrollment code" in err, "attempt %d: %s" % (attempt, err))
    _, err = Agent("a5").enroll(wrong, expect=1)
    check("too many failed attempts" in err, "not rate-limited: " + err)
    # The limit holds even for the right code from the same address, for a while.
    _, err = Agent("good").enroll(string, expect=1)
    check("too many failed attempts" in err, "rate limit bypassed: " + err)
    actions = relay.audit_actions()
    check(actions.count("enroll.failed") == 7, "failed attempts audited: %r" % actions)
    relay.verify_audit()


@case
def case_rate_limited_enrollment_is_etimeout_on_the_wire_and_in_the_audit():
    # The relay has a code of its own for rate limiting; an agent and the audit log still
    # see ETIMEOUT, as protocol version 1 says (docs/protocol.md §7.2).
    relay = Relay().start()
    string = relay.code()
    wrong = string.replace(string[4:23], "0000-0000-0000-0000")
    for attempt in range(5):
        Agent("a%d" % attempt).enroll(wrong, expect=1)
    _, err = Agent("a5").enroll(wrong, expect=1)
    check("too many failed attempts from this address: try again later (ETIMEOUT)" in err,
          "the agent said: " + err)
    with open(os.path.join(relay.dir, "audit.log")) as f:
        entries = [json.loads(line) for line in f if line.endswith("\n")]
    reasons = [e["details"]["reason"] for e in entries if e["action"] == "enroll.failed"]
    check(reasons == ["ENOTFOUND"] * 5 + ["ETIMEOUT"], "audited reasons: %r" % reasons)
    relay.verify_audit()


@case
def case_enroll_code_count_makes_distinct_single_use_codes():
    relay = Relay().start()
    out, err = run(BIN + "/tierline-relay", "enroll-code", "--data", relay.dir, "--count", "3")
    strings = out.split()
    check(len(strings) == 3 and len(set(strings)) == 3, "three distinct strings: %r" % strings)
    check("3 codes" in err and "single use" in err, "no summary: " + err)
    check(relay.audit_actions().count("enroll.code") == 3, "each code audited")
    for i, string in enumerate(strings):
        Agent("agent%d" % i).enroll(string)
    check(len(relay.devices()) == 3, "three devices: %r" % relay.devices())
    _, err = Agent("again").enroll(strings[0], expect=1)
    check("already used" in err, "a batch code was reusable: " + err)
    relay.verify_audit()


@case
def case_enroll_code_bad_count_refused_nothing_made():
    relay = Relay()
    before = relay.audit_actions()
    for bad in ("0", "10001", "-1", "3x", ""):
        _, err = run(BIN + "/tierline-relay", "enroll-code", "--data", relay.dir, "--count", bad,
                     expect=2)
        check("bad --count" in err, "no clear error for %r: %s" % (bad, err))
    check(relay.audit_actions() == before, "audit changed: %r" % relay.audit_actions())
    # The largest batch is accepted, in one transaction and one audit batch.
    out, _ = run(BIN + "/tierline-relay", "enroll-code", "--data", relay.dir, "--count", "10000")
    check(len(set(out.split())) == 10000, "10000 distinct codes")
    check(relay.audit_actions().count("enroll.code") == 10000, "each code audited")
    relay.verify_audit()


@case
def case_malformed_enrollment_string_refused():
    _, err = Agent("agent").enroll("tl1:nonsense", expect=2)
    check("not a valid enrollment string" in err, err)
    check(not os.path.exists(os.path.join(WORK, "agent", "relay.json")), "state written")


@case
def case_enroll_twice_refused():
    relay, agent = enrolled_pair()
    _, err = agent.enroll(relay.code(), expect=1)
    check("already enrolled as D-1" in err, err)


# ---- identities ----------------------------------------------------------------------------

@case
def case_unknown_agent_key_refused():
    relay, agent = enrolled_pair()
    # Same relay and pin, but a key the relay never enrolled.
    stranger = Agent("stranger")
    os.makedirs(stranger.dir, mode=0o700)
    shutil.copy(os.path.join(agent.dir, "relay.json"), stranger.dir)
    run(BIN + "/tierline-agent", "enroll", "x", "--state", stranger.dir, expect=2)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    os.path.join(stranger.dir, "agent.key")], check=True,
                   capture_output=True)
    os.chmod(os.path.join(stranger.dir, "agent.key"), 0o600)
    _, _, _, err = stranger.help("let me in", expect=75, wait_ms=2000)
    check("does not recognise this agent" in err, err)
    check("impersonation" not in err, "an unknown key is no impersonation: " + err)
    check(len(relay.tickets()) == 0, "a stranger opened a ticket")
    # The real agent still works.
    ticket_id, _, _, _ = agent.help("still fine")
    check(re.fullmatch(r"T-\d+", ticket_id), "enrolled agent broken after stranger")
    relay.verify_audit()


@case
def case_relay_with_other_key_refused_by_pin():
    relay, agent = enrolled_pair()
    relay.kill()
    impostor = Relay("impostor")
    impostor.port = relay.port
    impostor.start()
    _, _, request, err = agent.help("who is there", expect=75, wait_ms=2000)
    said = "the relay's key does not match the pinned key: possible impersonation"
    check(said in err, "help did not name the pin mismatch: " + err)
    check("does not recognise this agent" not in err, "help blamed the agent's key: " + err)
    check(agent.status()["queued"] == [request], "request not kept")
    # The running agent says the same in its log and in status.
    agent.start()
    try:
        wait_for("the pin mismatch in the agent's log", lambda: said in agent.log_text())
        check("does not know this agent" not in agent.log_text(), agent.log_text())
        check(impostor.fingerprint in agent.log_text(), "the log does not name the key presented")
        status = wait_for("status naming the mismatch",
                          lambda: agent.status().get("relay_error") == "EPIN" and agent.status())
        check(status["connected"] is False and status["relay_error_text"] == said,
              "status --json: %r" % status)
        out, _ = run(BIN + "/tierline-agent", "status", "--state", agent.dir)
        check(said in out, "status: " + out)
    finally:
        agent.stop()
    check(len(impostor.tickets()) == 0, "the impostor got a ticket")
    check(impostor.devices() == [], "the impostor learned of the device")


# ---- bad bytes on the relay port ---------------------------------------------------------------

def assert_relay_still_serves(relay, agent):
    check(relay.alive(), "relay died")
    ticket_id, _, _, _ = agent.help("still serving?")
    check(re.fullmatch(r"T-\d+", ticket_id), "relay stopped serving")
    relay.verify_audit()


@case
def case_garbage_bytes_closed():
    # A handshake timeout far past the deadline below: only the relay's own
    # refusal of the garbage can end this connection in time.
    relay, agent = enrolled_pair(relay=Relay(handshake_ms=600000).start())
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n" + bytes(range(256)) * 16)
        deadline = time.monotonic() + 30
        closed = False
        for _ in range(10000):  # an alert, then the end of the stream
            left = deadline - time.monotonic()
            if closed or left <= 0:
                break
            s.settimeout(left)
            try:
                closed = s.recv(4096) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                break
        check(closed, "the relay kept a connection that sent garbage open for 30 s")
    wait_for("the relay to log why it closed",
             lambda: "handshake failed peer=unauthenticated reason=TLS failure" in relay.log_text())
    assert_relay_still_serves(relay, agent)


@case
def case_oversized_frame_rejected_with_goodbye():
    relay, agent = enrolled_pair()
    sock = tls_client(relay, agent)
    sock.sendall(hello() + struct.pack(">IBB", 16 * 1024 * 1024, 1, 35))
    code = goodbye_code(read_frames(sock))
    check(code == 30005, "expected GOODBYE EFRAME_SIZE (30005), got %r" % code)
    sock.close()
    assert_relay_still_serves(relay, agent)


@case
def case_unknown_message_and_bad_version_rejected():
    relay, agent = enrolled_pair()
    sock = tls_client(relay, agent)
    sock.sendall(hello() + frame(200, b"nope"))
    check(goodbye_code(read_frames(sock)) == 30007, "unknown type not rejected with EMSG_TYPE")
    sock.close()
    sock = tls_client(relay, agent)
    name = b"future"
    sock.sendall(frame(1, struct.pack(">HHI", 7, 9, 0) + struct.pack(">I", len(name)) + name))
    check(goodbye_code(read_frames(sock)) == 30010, "future-only peer not refused with EVERSION")
    sock.close()
    sock = tls_client(relay, agent)
    sock.sendall(hello() + frame(64, struct.pack(">I", 1) + struct.pack(">I", 8) + b'{"type":'))
    check(goodbye_code(read_frames(sock)) == 30009, "bad JSON not rejected with EMSG_JSON")
    sock.close()
    assert_relay_still_serves(relay, agent)


class RawAgent:
    """An enrolled agent's key driven by hand, frame by frame."""

    def __init__(self, relay, agent, features=0):
        self.sock = tls_client(relay, agent)
        self.sock.settimeout(10)
        self.buffer = b""
        self.sock.sendall(hello(features))
        self.next_channel = 1  # each upload its own id: a live id is never reused (§4.1)
        self.expect(lambda t, p: t == 64 and b'"welcome"' in p)

    def next_frame(self):
        while True:
            if len(self.buffer) >= 6:
                length = struct.unpack(">I", self.buffer[:4])[0]
                if len(self.buffer) >= 4 + length:
                    msg_type, payload = self.buffer[5], self.buffer[6:4 + length]
                    self.buffer = self.buffer[4 + length:]
                    return msg_type, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("relay closed the connection")
            self.buffer += chunk

    def expect(self, predicate):
        for _ in range(100):
            msg_type, payload = self.next_frame()
            if msg_type == 2:  # answer heartbeats while waiting
                self.sock.sendall(frame(3, payload))
            elif predicate(msg_type, payload):
                return msg_type, payload
        raise Failure("expected frame never came")

    def open_upload(self, params):
        text = json.dumps(params).encode()
        self.next_channel += 1
        self.sock.sendall(frame(32, struct.pack(">III", self.next_channel, 1 << 20, 65536) +
                                struct.pack(">I", 6) + b"upload" +
                                struct.pack(">I", len(text)) + text))
        return self.expect(lambda t, p: t in (33, 34))

    def control(self, request_id, body):
        text = json.dumps(body).encode()
        self.sock.sendall(frame(64, struct.pack(">II", request_id, len(text)) + text))
        _, payload = self.expect(lambda t, p: t == 64 and struct.unpack(">I", p[:4])[0] ==
                                 request_id)
        return json.loads(payload[8:])


@case
def case_bad_uploads_and_requests_refused_nothing_stored():
    relay, agent = enrolled_pair()
    raw = RawAgent(relay, agent)
    content = b"not what was announced"
    msg_type, payload = raw.open_upload({"sha256": "0" * 64, "size": len(content),
                                         "kind": "file", "name": "x"})
    check(msg_type == 33, "upload refused up front")
    relay_channel = struct.unpack(">I", payload[4:8])[0]
    raw.sock.sendall(frame(35, struct.pack(">IB", relay_channel, 0) + content) +
                     frame(37, struct.pack(">I", relay_channel)))
    _, close = raw.expect(lambda t, p: t == 38)
    flags, status = close[4], struct.unpack(">i", close[5:9])[0]
    check(flags & 1 and status == 30029, "hash mismatch closed with status %d" % status)
    # Too large for the relay: refused before any byte moves.
    msg_type, payload = raw.open_upload({"sha256": "1" * 64, "size": 1 << 40, "kind": "file",
                                         "name": "huge"})
    check(msg_type == 34 and struct.unpack(">I", payload[4:8])[0] == 30004,
          "oversized upload not refused with EFULL")
    # Malformed parameters.
    msg_type, payload = raw.open_upload({"sha256": "../../etc/passwd", "size": 1, "kind": "f",
                                         "name": "n"})
    check(msg_type == 34 and struct.unpack(">I", payload[4:8])[0] == 30002,
          "bad hash not refused with EINVAL")
    # A ticket naming evidence the relay does not hold.
    answer = raw.control(9, {"type": "ticket.create", "request": "r-1", "title": "t",
                             "evidence": [{"sha256": "2" * 64, "kind": "file", "name": "n",
                                           "size": 1}]})
    check(answer["ok"] is False and answer["error"] == "ENOTFOUND", "answer %r" % answer)
    answer = raw.control(10, {"type": "ticket.create", "request": "r-2", "title": "x" * 300})
    check(answer["ok"] is False and answer["error"] == "EINVAL", "answer %r" % answer)
    answer = raw.control(11, {"type": "no.such.request"})
    check(answer["ok"] is False and answer["error"] == "EINVAL", "answer %r" % answer)
    raw.sock.close()
    check(relay.tickets() == [], "a ticket was created from bad requests")
    stored = [name for d in os.listdir(os.path.join(relay.dir, "evidence"))
              if len(d) == 2 for name in os.listdir(os.path.join(relay.dir, "evidence", d))]
    check(stored == [], "evidence stored from bad uploads: %r" % stored)
    check("evidence.store" not in relay.audit_actions(), "bad upload audited as stored")
    assert_relay_still_serves(relay, agent)


def relay_rss_kb(relay):
    with open("/proc/%d/status" % relay.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS")


@case
def case_device_cannot_attach_another_devices_evidence():
    relay, victim = enrolled_pair()
    _, sha256, _, _ = victim.help("private diagnostics")
    other = Agent("other")
    other.enroll(relay.code())
    raw = RawAgent(relay, other)
    answer = raw.control(5, {"type": "ticket.create", "request": "steal", "title": "mine now",
                             "evidence": [{"sha256": sha256, "kind": "diagnostics",
                                           "name": "x", "size": 1}]})
    check(answer["ok"] is False and answer["error"] == "ENOTFOUND", "answer %r" % answer)
    raw.sock.close()
    check(len(relay.tickets()) == 1, "a ticket was opened with another device's evidence")
    relay.verify_audit()


@case
def case_committed_but_unaudited_entries_recovered_at_start():
    import sqlite3
    relay, agent = enrolled_pair()
    relay.kill(signal.SIGKILL)
    # What a crash between the store commit and the audit append leaves behind.
    db = sqlite3.connect(os.path.join(relay.dir, "relay.db"))
    db.execute("INSERT INTO audit_pending (time, actor, action, subject, details) "
               "VALUES (0, 'agent:D-1', 'ticket.create', 'T-9', '{\"title\":\"lost\"}')")
    db.commit()
    db.close()
    relay.start()
    with open(os.path.join(relay.dir, "audit.log")) as f:
        entries = [json.loads(line) for line in f]
    last = entries[-1] if entries[-1]["action"] == "ticket.create" else entries[-2]
    check(last["action"] == "ticket.create" and last["subject"] == "T-9", "not recovered")
    check(last["details"] == {"title": "lost", "recovered": True}, "details %r" % last["details"])
    db = sqlite3.connect(os.path.join(relay.dir, "relay.db"))
    left = db.execute("SELECT COUNT(*) FROM audit_pending").fetchone()[0]
    db.close()
    check(left == 0, "pending entries left: %d" % left)
    relay.verify_audit()
    # Normal operation leaves nothing pending once the batch's audit lines
    # are written (they are cleared after the answer may have gone out).
    agent.help("after recovery")

    def pending_left():
        db = sqlite3.connect(os.path.join(relay.dir, "relay.db"))
        try:
            return db.execute("SELECT COUNT(*) FROM audit_pending").fetchone()[0]
        finally:
            db.close()
    wait_for("no pending audit entries after a normal request", lambda: pending_left() == 0)


@case
def case_upload_channels_opened_and_closed_do_not_accumulate():
    relay = Relay("relay")
    # Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
    # default) and would look like growth; keep it small for this measurement.
    if "ASAN_OPTIONS" in os.environ:
        relay.env = dict(os.environ)
        relay.env["ASAN_OPTIONS"] += ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    relay, agent = enrolled_pair(relay=relay.start())
    raw = RawAgent(relay, agent)
    params = {"sha256": "3" * 64, "size": 10, "kind": "file", "name": "n"}
    text = json.dumps(params).encode()

    def open_frame_with(sender_channel):
        return (frame(32, struct.pack(">III", sender_channel, 1 << 20, 65536) +
                      struct.pack(">I", 6) + b"upload" + struct.pack(">I", len(text)) + text))

    # One id for every cycle: each channel is fully closed before the next opens.
    open_frame = open_frame_with(1)
    baseline = None
    for cycle in range(8000):
        raw.sock.sendall(open_frame)
        msg_type, payload = raw.expect(lambda t, p: t in (33, 34))
        check(msg_type == 33, "upload %d refused: %r" % (cycle, payload[:8]))
        relay_channel = struct.unpack(">I", payload[4:8])[0]
        raw.sock.sendall(frame(38, struct.pack(">IBI", relay_channel, 0, 0) +
                               struct.pack(">I", 0)))
        raw.expect(lambda t, p: t == 38)
        if cycle == 500:
            baseline = relay_rss_kb(relay)
    grown = relay_rss_kb(relay) - baseline
    check(grown < 2048, "relay grew %d KiB over 7500 upload channels" % grown)
    # Only a few uploads may be open at once per connection (each with its own id).
    for i in range(4):
        raw.sock.sendall(open_frame_with(10 + i))
        check(raw.expect(lambda t, p: t in (33, 34))[0] == 33, "upload %d refused" % i)
    raw.sock.sendall(open_frame_with(14))
    msg_type, payload = raw.expect(lambda t, p: t in (33, 34))
    check(msg_type == 34 and struct.unpack(">I", payload[4:8])[0] == 30013,
          "fifth concurrent upload not refused with ECHANNEL_LIMIT")
    raw.sock.close()
    assert_relay_still_serves(relay, agent)


@case
def case_reconnect_keeps_device_online():
    # The raw peers answer no ping: a heartbeat far longer than the checks below keeps the relay
    # from dropping the newer one as silent on a loaded machine before it is looked at.
    relay, agent = enrolled_pair(relay=Relay("relay", heartbeat_ms=20000).start())
    first = RawAgent(relay, agent)
    second = RawAgent(relay, agent)  # replaces the first connection
    read_frames(first.sock, timeout=5)
    time.sleep(0.5)
    check(relay.devices()[0]["online"], "device offline while its newer connection is up")
    second.sock.close()
    wait_for("offline after the last connection", lambda: not relay.devices()[0]["online"])


@case
def case_lost_enrollment_state_is_restored():
    relay, agent = enrolled_pair()
    os.unlink(os.path.join(agent.dir, "relay.json"))
    out, _ = agent.enroll(relay.code())
    check("already enrolled as D-1" in out and "restored" in out, out)
    check(agent.status()["enrolled"], "state not restored")
    check(len(relay.devices()) == 1, "a second device appeared")
    ticket_id, _, _, _ = agent.help("after restore")
    check(re.fullmatch(r"T-\d+", ticket_id), "agent broken after restore")


@case
def case_help_gives_up_on_a_frozen_relay():
    relay, agent = enrolled_pair()
    relay.proc.send_signal(signal.SIGSTOP)
    try:
        # run() fails the case if help does not return within its own timeout.
        _, _, request, err = agent.help("frozen relay", expect=75, wait_ms=1500)
        check(agent.status()["queued"] == [request], "request not kept")
    finally:
        relay.proc.send_signal(signal.SIGCONT)


@case
def case_silent_peer_dropped_after_handshake_timeout():
    relay, agent = enrolled_pair()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as s:
        s.settimeout(15)
        started = time.monotonic()
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        check(data == b"", "relay sent %r to a silent peer" % data[:20])
        check(time.monotonic() - started < 14, "silent peer kept open")
    assert_relay_still_serves(relay, agent)


@case
def case_peer_that_stops_reading_holds_back_only_itself():
    relay, agent = enrolled_pair()
    sock = tls_client(relay, agent)
    sock.sendall(hello())
    # Ask for a PONG again and again, and never read one.
    ping = frame(2, struct.pack(">Q", 7))
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sent < 64 * 1024 * 1024:
        try:
            sent += sock.send(ping * 512)
        except (ssl.SSLWantWriteError, BlockingIOError):
            time.sleep(0.01)
        except (ssl.SSLError, OSError):
            break
    # While that peer is stuck, the others are served.
    assert_relay_still_serves(relay, agent)
    sock.close()


def queue_request(agent, title, content):
    request = "R-" + os.urandom(16).hex()
    tmp = os.path.join(agent.dir, "outbox", ".tmp-" + request)
    os.makedirs(tmp, mode=0o700)
    with open(os.path.join(tmp, "evidence-0"), "wb") as f:
        f.write(content)
    body = {"request": request, "title": title, "description": "", "tier": 1,
            "created": int(time.time()),
            "evidence": [{"name": "capture.bin", "kind": "file",
                          "sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                          "path": "evidence-0"}]}
    with open(os.path.join(tmp, "request.json"), "w") as f:
        json.dump(body, f)
    os.rename(tmp, os.path.join(agent.dir, "outbox", request))
    return request


# ---- durability ------------------------------------------------------------------------------

@case
def case_host_key_pins_the_relay_for_openssh():
    relay = Relay("relay")
    line, _ = run(BIN + "/tierline-relay", "host-key", "--data", relay.dir)
    check(line.startswith("ssh-ed25519 "), "not an OpenSSH public key: " + line)
    listed, _ = run("ssh-keygen", "-lf", "/dev/stdin", input=line)
    check(relay.fingerprint in listed.split(),
          "ssh-keygen sees %r, init printed %s" % (listed, relay.fingerprint))
    _, err = run(BIN + "/tierline-relay", "host-key", "--data", relay.dir, "--known-hosts",
                 "no-port", expect=2)
    check("HOST:PORT" in err, "no usage for a bad --known-hosts: " + err)
    # A known_hosts file from host-key lets ssh connect with strict checking.
    key = os.path.join(WORK, "tech")
    keygen(key)
    run(BIN + "/tierline-relay", "user", "add", "tech", "--role", "tier1", "--key", key + ".pub",
        "--data", relay.dir)
    ssh_port = free_port()
    known, _ = run(BIN + "/tierline-relay", "host-key", "--data", relay.dir, "--known-hosts",
                   "127.0.0.1:%d" % ssh_port)
    known_path = os.path.join(WORK, "known_hosts")
    with open(known_path, "w") as f:
        f.write(known)
    log = open(os.path.join(WORK, "relay-ssh.log"), "a")
    subprocess.Popen([BIN + "/tierline-relay", "serve", "--data", relay.dir, "--listen",
                      "127.0.0.1:%d" % relay.port, "--ssh-listen", "127.0.0.1:%d" % ssh_port],
                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    ssh = ["ssh", "-i", key, "-p", str(ssh_port), "-o", "UserKnownHostsFile=" + known_path,
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-F", "/dev/null",
           "tech@127.0.0.1", "whoami"]

    def answered():
        proc = subprocess.run(ssh, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        return proc if proc.returncode == 0 else None
    proc = wait_for("ssh with the pinned host key", answered)
    check("tech" in proc.stdout, "whoami said: " + proc.stdout)


@case
def case_relay_killed_during_uploads_loses_nothing_acknowledged():
    relay, agent = enrolled_pair()
    acknowledged = {}
    for i in range(2):
        ticket_id, sha256, _, _ = agent.help("before the crash %d" % i)
        acknowledged[ticket_id] = sha256
    # Queue large requests while the relay is away (outbox layout: agent/outbox.h), so
    # that uploads are still in flight when the relay dies.
    relay.kill()
    for i in range(6):
        queue_request(agent, "queued %d" % i, os.urandom(12 * 1024 * 1024))
    check(len(agent.status()["queued"]) == 6, "not all requests queued")
    agent.start()
    # Kill the relay while an upload is being written (its temporary file exists), twice.
    in_flight = os.path.join(relay.dir, "evidence", "tmp")
    for round_number in range(2):
        before = set(os.listdir(in_flight)) if os.path.isdir(in_flight) else set()
        relay.start()
        wait_for("an upload in flight", lambda: set(os.listdir(in_flight)) - before,
                 timeout=60, interval=0.002)
        relay.kill(signal.SIGKILL)
        check(set(os.listdir(in_flight)) - before, "the upload finished before the kill")
    relay.start()
    wait_for("the outbox to drain", lambda: agent.status()["queued"] == [], timeout=90)
    for line in agent.log_text().splitlines():
        match = re.search(r"request delivered request=\S+ ticket=(T-\d+)", line)
        if match:
            acknowledged.setdefault(match.group(1), None)
    tickets = relay.tickets()
    titles = sorted(t["title"] for t in tickets)
    expected = sorted(["before the crash %d" % i for i in range(2)] +
                      ["queued %d" % i for i in range(6)])
    check(titles == expected, "tickets after the crashes: %r" % titles)
    for ticket_id, sha256 in acknowledged.items():
        evidence = [e["hash"] for e in relay.ticket(ticket_id)["evidence"]]
        check(len(evidence) == 1, "%s lost its evidence: %r" % (ticket_id, evidence))
        if sha256 is not None:
            check(evidence == [sha256], "%s evidence changed" % ticket_id)
        stored = relay.evidence_bytes(evidence[0])
        check(hashlib.sha256(stored).hexdigest() == evidence[0], "evidence damaged")
    relay.verify_audit()
    agent.stop()


def outbox_names(agent):
    return sorted(os.listdir(os.path.join(agent.dir, "outbox")))


def delivered_ticket(agent, request):
    """The ticket status lists for a delivered request, or None."""
    for item in agent.status().get("delivered", []):
        if item.get("request") == request:
            return item.get("ticket")
    return None


@case
def case_outbox_left_by_a_crash_is_recovered_nothing_acknowledged_lost():
    relay, agent = enrolled_pair()
    # A request the relay acknowledged, whose clean-up was cut short by a SIGKILL: what an
    # older agent left behind was its request.json without the evidence file.
    relay.kill()
    _, _, acknowledged, _ = agent.help("delivered before the crash", expect=75, wait_ms=2000)
    entry = os.path.join(agent.dir, "outbox", acknowledged)
    with open(os.path.join(entry, "request.json")) as f:
        request_json = f.read()
    relay.start()
    agent.start()
    wait_for("the first request to be delivered", lambda: agent.status()["queued"] == [])
    agent.stop()
    tickets = relay.tickets()
    check(len(tickets) == 1, "tickets %r" % tickets)
    acknowledged_ticket = tickets[0]["id"]
    os.makedirs(entry)
    with open(os.path.join(entry, "request.json"), "w") as f:
        f.write(request_json)
    # A queued request whose evidence is gone and that the relay never saw.
    lost = queue_request(agent, "lost its evidence", b"never uploaded")
    os.unlink(os.path.join(agent.dir, "outbox", lost, "evidence-0"))
    # A whole request, queued before the crash: it must still go.
    content = os.urandom(4096)
    waiting = queue_request(agent, "queued before the crash", content)
    # An interrupted write, an interrupted removal, an empty folder.
    os.makedirs(os.path.join(agent.dir, "outbox", ".tmp-R-" + "1" * 32))
    with open(os.path.join(agent.dir, "outbox", ".tmp-R-" + "1" * 32, "evidence-0"), "wb") as f:
        f.write(b"half a write")
    os.makedirs(os.path.join(agent.dir, "outbox", ".trash-R-" + "2" * 32))
    with open(os.path.join(agent.dir, "outbox", ".trash-R-" + "2" * 32, "request.json"), "w") as f:
        f.write("{}")
    os.makedirs(os.path.join(agent.dir, "outbox", "R-" + "3" * 32))

    agent.start()
    wait_for("the outbox to settle", lambda: agent.status()["queued"] == [] and
             delivered_ticket(agent, acknowledged) and delivered_ticket(agent, waiting) and
             agent.status()["set_aside"], timeout=60)
    status = agent.status()
    # The acknowledged request keeps its ticket: asked again, the relay answered the same one.
    check(delivered_ticket(agent, acknowledged) == acknowledged_ticket,
          "status shows %r for the acknowledged request, the relay made %s" %
          (delivered_ticket(agent, acknowledged), acknowledged_ticket))
    titles = sorted(t["title"] for t in relay.tickets())
    check(titles == ["delivered before the crash", "queued before the crash"],
          "tickets after recovery: %r" % titles)
    ticket = relay.ticket(delivered_ticket(agent, waiting))
    check([e["hash"] for e in ticket["evidence"]] == [hashlib.sha256(content).hexdigest()],
          "the queued request lost its evidence: %r" % ticket["evidence"])
    # The one nobody holds is set aside, said so, and kept.
    aside = status["set_aside"]
    check(len(aside) == 1 and aside[0]["request"] == lost and aside[0]["why"] == "damaged" and
          "evidence-0 is missing" in aside[0]["detail"], "set aside: %r" % aside)
    check(outbox_names(agent) == [".lock", "damaged-" + lost], "outbox: %r" % outbox_names(agent))
    text, _ = run(BIN + "/tierline-agent", "status", "--state", agent.dir)
    check("queued:    0 request(s)" in text and acknowledged_ticket in text and
          "damaged" in text, "status says:\n" + text)
    # Asked once, not retried on every connection.
    log = agent.log_text()
    check(log.count("request not delivered request=" + acknowledged) == 0,
          "the acknowledged request was retried:\n" + log)
    relay.verify_audit()
    agent.stop()


@case
def case_help_with_the_relay_down_queues_at_once_and_status_shows_the_ticket_later():
    relay, agent = enrolled_pair()
    relay.kill()
    agent.start()
    wait_for("the agent to find the relay unreachable",
             lambda: agent.status().get("link") == "unreachable")
    # Default --wait-ms: the answer must not wait for it.
    out, err = run(BIN + "/tierline-agent", "help", "the relay is away", "--state", agent.dir,
                   expect=75, timeout=120)
    check("queued: the relay is unreachable" in err, "no queued message: " + err)
    check(out == "", "help printed %r on stdout while queued" % out)
    request = re.search(r"as request (R-[0-9a-f]{32})", err).group(1)
    status = agent.status()
    check(status["queued"] == [request] and status["delivered"] == [], "status %r" % status)
    text, _ = run(BIN + "/tierline-agent", "status", "--state", agent.dir)
    check("the relay is unreachable" in text and request in text, "status says:\n" + text)
    relay.start()
    wait_for("the request to be delivered", lambda: delivered_ticket(agent, request), timeout=60)
    ticket = delivered_ticket(agent, request)
    check(relay.ticket(ticket)["title"] == "the relay is away", "ticket %s" % ticket)
    check(agent.status()["queued"] == [], "still queued after delivery")
    text, _ = run(BIN + "/tierline-agent", "status", "--state", agent.dir)
    check(request + " -> ticket " + ticket in text, "status says:\n" + text)
    agent.stop()


@case
def case_help_without_agent_queues_when_the_relay_refuses_the_connection():
    relay, agent = enrolled_pair()
    relay.kill()
    _, _, request, err = agent.help("nobody home", expect=75)
    check("queued: the relay is unreachable" in err, "no queued message: " + err)
    check(agent.status()["queued"] == [request], "request not kept")


@case
def case_help_on_a_terminal_prints_the_ticket_id_once_delivered():
    relay, agent = enrolled_pair()
    relay.kill()
    agent.start()
    wait_for("the agent to find the relay unreachable",
             lambda: agent.status().get("link") == "unreachable")
    pid, master = pty.fork()
    if pid == 0:
        os.execv(BIN + "/tierline-agent", [BIN + "/tierline-agent", "help", "printer jammed",
                                           "--state", agent.dir])
    screen = b""

    def expect(pattern):
        nonlocal screen
        deadline = time.monotonic() + 60
        while True:
            match = re.search(pattern.encode(), screen)
            if match:
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("the terminal never showed %r; it shows: %r" % (pattern, screen))
            if select.select([master], [], [], left)[0]:
                try:
                    screen += os.read(master, 4096)
                except OSError:
                    raise Failure("help ended; the terminal showed: %r" % screen)

    try:
        expect("queued: the relay is unreachable")
        expect("Waiting here for the ticket id")
        request = expect(r"as request (R-[0-9a-f]{32})").group(1).decode()
        relay.start()
        ticket = expect(r"\n(T-\d+)\r?\n").group(1).decode()
        expect("Ticket %s opened" % ticket)
        check(delivered_ticket(agent, request) == ticket, "status disagrees with the terminal")
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        pid = 0
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
              "help left with status %d after delivery" % status)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    agent.stop()


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work


if __name__ == "__main__":
    sys.exit(tlcase.main("relay_agent.py BIN_DIR", "tl-integ-", setup_globals, track_popen=True,
                         home=True))
