#!/usr/bin/env python3
"""What one party can do to a real relay's front doors, and what the relay
does about it: out of file descriptors, SSH connections held before
authentication, failed logins in the audit log, lines in the relay's own log.
Real processes on loopback (the agents' TLS port, the technicians' SSH port,
the stock OpenSSH client, real SQLite and audit files). Each case runs in its
own process:

    relay_limits.py BIN_DIR CASE

Loopback addresses other than 127.0.0.1 (127.0.0.2, 127.0.0.3, ...) stand
for different clients; Linux routes all of 127.0.0.0/8 to lo without setup.
Every wait is bounded; nothing here measures speed.
"""
import errno
import json
import os
import re
import resource
import select
import socket
import ssl
import subprocess
import sys
import time

import relay_agent
from relay_agent import Agent, Relay, frame, hello
from ssh_front import banner_socket, garbage_connection, still_open
import tlcase
from tlcase import Failure, case, check, free_port, keygen, run, wait_for

BIN = None
WORK = None


class LimitsRelay(Relay):
    """A relay serving agents and technicians, started with extra serve options."""

    def __init__(self, extra=(), handshake_ms=1000):
        super().__init__("relay", handshake_ms=handshake_ms)
        self.ssh_port = free_port()
        self.extra = list(extra)
        self.keys = self.add_technicians({"alice": "tier1", "bob": "tier2"})
        self.known_hosts = self.write_known_hosts()

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-relay", "serve", "--data", self.dir, "--listen",
             "127.0.0.1:%d" % self.port, "--heartbeat-ms", str(self.heartbeat_ms),
             "--handshake-timeout-ms", str(self.handshake_ms), "--log-level", "debug",
             "--ssh-listen", "127.0.0.1:%d" % self.ssh_port] + self.extra,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=self.env)
        wait_for("the relay to listen", self.accepting)
        # Not a probe connection, which would be a refused login of its own.
        wait_for("the SSH port", lambda: "technicians' SSH listening" in self.log_text())
        return self

    def ssh_argv(self, user, source="127.0.0.1", key=None):
        return ["ssh", "-F", "/dev/null", "-i", key or self.keys[user], "-p", str(self.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BindAddress=" + source,
                user + "@127.0.0.1"]

    def ssh(self, user, *words, source="127.0.0.1", key=None, timeout=60):
        """Runs one command as user from the loopback address source: (status, stdout, stderr)."""
        proc = subprocess.run(self.ssh_argv(user, source, key) + list(words),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return (proc.returncode, proc.stdout.decode(errors="replace"),
                proc.stderr.decode(errors="replace"))

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def open_sockets(self):
        """Sockets the relay holds: its listeners and its connections."""
        fd_dir = "/proc/%d/fd" % self.proc.pid
        count = 0
        for name in os.listdir(fd_dir):
            try:
                count += os.readlink(os.path.join(fd_dir, name)).startswith("socket:")
            except FileNotFoundError:
                pass  # closed meanwhile
        return count

    def audit(self):
        with open(os.path.join(self.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def stop(self):
        """SIGTERM, and a clean exit within 30 s."""
        self.proc.terminate()
        status = self.proc.wait(timeout=30)
        check(status == 0, "the relay exited %d after SIGTERM" % status)
        self.proc = None


def connect_from(source, port, timeout=5.0):
    """A TCP connection from the loopback address source to the relay's port."""
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_peer(sock, timeout):
    """True once the peer closed sock (EOF or reset) within timeout; False if it is still open.
    Whatever the peer sent before is read and dropped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return False
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def accept_failure_lines(relay, listener):
    """The relay's "accept failed" lines for one listener: [(error, suppressed or None)]."""
    found = []
    for line in relay.log_text().splitlines():
        m = re.search(r"accept failed listener=%s error=(\S+)(?: suppressed=(\d+))?$" % listener,
                      line)
        if m:
            found.append((m.group(1), int(m.group(2)) if m.group(2) else None))
    return found


def failures_logged(lines):
    """Connections turned away that the lines account for: one per line of its own, plus
    every suppressed count."""
    return sum(1 if suppressed is None else suppressed for _, suppressed in lines)


# ---- out of file descriptors ------------------------------------------------------------------

@case
def case_out_of_descriptors_is_logged_rate_limited_and_survived():
    # Held TLS connections keep their descriptor for the whole handshake timeout.
    relay = LimitsRelay(handshake_ms=120000).start()
    check(relay.ssh("alice", "whoami")[0] == 0, "alice cannot log in before the flood")
    # A table with room for ten more descriptors than the relay holds now.
    limit = relay.open_fds() + 10
    resource.prlimit(relay.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
    started = time.monotonic()
    flood = {"agents": [], "ssh": []}
    dropped = {"agents": 0, "ssh": 0}
    for listener, port in (("agents", relay.port), ("ssh", relay.ssh_port)):
        for _ in range(60):
            flood[listener].append(connect_from("127.0.0.2", port))
        # The connections the relay could not take are closed at once, not left hanging.
        wait_for("the relay to log the %s listener's accept failures" % listener,
                 lambda: accept_failure_lines(relay, listener), timeout=30)
    for listener in flood:
        for sock in flood[listener]:
            if closed_by_peer(sock, 0.5 if listener == "agents" else 2.0):
                dropped[listener] += 1
    print("dropped while out of descriptors: %r" % dropped)
    check(dropped["agents"] > 20, "the agents' listener dropped only %d of 60" % dropped["agents"])
    # Rate-limited: one line, then at most one more per 10 s, each counting what it stands for.
    for listener in flood:
        lines = accept_failure_lines(relay, listener)
        check(all(error in ("EMFILE", "ENFILE") for error, _ in lines),
              "%s: accept failed for another reason: %r" % (listener, lines))
        allowed = 2 + int((time.monotonic() - started) / 10)
        check(len(lines) <= allowed,
              "%s: %d accept-failure lines in %.0f s (at most %d): one per attempt?"
              % (listener, len(lines), time.monotonic() - started, allowed))
    for listener in flood:
        lines = wait_for("the count of the %s listener's suppressed failures" % listener,
                         lambda: (lambda found: found if failures_logged(found) >= dropped[listener]
                                  else None)(accept_failure_lines(relay, listener)), timeout=30)
        check(any(suppressed for _, suppressed in lines),
              "no suppressed count in the %s lines: %r" % (listener, lines))
        check(failures_logged(lines) == dropped[listener],
              "the %s lines account for %d failures, the clients saw %d dropped: %r"
              % (listener, failures_logged(lines), dropped[listener], lines))
    # The flood ends: both doors work again, without a restart.
    for listener in flood:
        for sock in flood[listener]:
            sock.close()
    status, out, err = wait_for("alice's login after the flood",
                                lambda: (lambda r: r if r[0] == 0 else None)(
                                    relay.ssh("alice", "whoami")), timeout=30)
    check(out.startswith("alice"), "whoami after the flood: %r" % out)
    agent = Agent("agent")
    out, _ = agent.enroll(relay.code())
    check(relay.devices(), "no device enrolled after the flood: %s" % out)
    check(relay.alive(), "the relay died")


# ---- SSH connections before authentication ---------------------------------------------------

@case
def case_one_address_cannot_lock_technicians_out_of_the_relay():
    relay = LimitsRelay(extra=["--ssh-max-connections", "10", "--ssh-preauth-per-address", "3",
                               "--ssh-auth-timeout-ms", "120000"]).start()
    flood = []
    # 127.0.0.2 opens 30 connections that stop at the banner: its budget of 3 gets in.
    results = [banner_socket(relay.ssh_port, "127.0.0.2") for _ in range(30)]
    flood += results
    let_in = sum(1 for _, banner in results if banner)
    check(let_in == 3, "127.0.0.2 got %d connections before authentication, not 3" % let_in)
    # Garbage from it is closed at once, and is not a failed login.
    for _ in range(12):
        garbage_connection(relay.ssh_port, "127.0.0.2")
    # Three more addresses bring it to 12 wanted, over the cap of 10.
    for source in ("127.0.0.4", "127.0.0.5", "127.0.0.6"):
        flood += [banner_socket(relay.ssh_port, source) for _ in range(3)]
    # Connections were evicted to make room: the relay closed some that had their banner. (Not
    # looked for in the relay's log: 127.0.0.2's lines are over their budget by now.)
    wait_for("a connection evicted at the cap",
             lambda: any(banner and not still_open(sock) for sock, banner in flood), timeout=10)
    # A technician from another address gets in with the stock OpenSSH client.
    status, out, err = relay.ssh("alice", "whoami", source="127.0.0.3")
    check(status == 0 and "alice" in out, "alice beside the flood: %d %r %r" % (status, out, err))
    for sock, banner in flood:
        sock.close()
    # And one from the flooding address, once its connections are gone: its garbage did not
    # count against it.
    status, out, err = wait_for("bob's login from 127.0.0.2",
                                lambda: (lambda r: r if r[0] == 0 else None)(
                                    relay.ssh("bob", "whoami", source="127.0.0.2")), timeout=20)
    check("bob" in out, "bob from 127.0.0.2: %r" % out)
    check("reason=rate-limited" not in relay.log_text(), "an address was rate-limited")


@case
def case_serve_auth_timeout_closes_idle_connections():
    relay = LimitsRelay(extra=["--ssh-auth-timeout-ms", "1000"]).start()
    # Three addresses: each one's lines stay within its log budget.
    idle = [banner_socket(relay.ssh_port, source) for source in ("127.0.0.2", "127.0.0.4",
                                                                  "127.0.0.5")]
    check(all(banner for _, banner in idle), "idle connections refused")
    for sock, _ in idle:
        check(closed_by_peer(sock, 15), "an idle connection outlived the pre-auth deadline")
        sock.close()
    check(relay.log_text().count("reason=timeout") >= 3, "timeouts not logged")
    # Limits out of range are usage errors, said on stderr.
    for option, value in (("--ssh-preauth-per-address", "0"), ("--ssh-max-connections", "many"),
                          ("--ssh-auth-timeout-ms", "10")):
        _, err = run(BIN + "/tierline-relay", "serve", "--data", relay.dir, option, value,
                     expect=2)
        check(option in err, "%s %s: %r" % (option, value, err))


# ---- refused logins in the audit log ----------------------------------------------------------

def connect_and_close(port, source):
    with socket.socket() as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))


def login_entries(relay):
    """The audit log's entries about refused logins: (own login.failed, login.failures)."""
    entries = relay.audit()
    return ([e for e in entries if e["action"] == "login.failed"],
            [e for e in entries if e["action"] == "login.failures"])


def summed(summaries, address):
    """count and kinds of an address, summed over its minutes."""
    count, kinds = 0, {}
    for entry in summaries:
        if entry["details"]["address"] == address:
            count += entry["details"]["count"]
            for kind, n in entry["details"]["kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + n
    return count, kinds


def check_chain(relay):
    relay.verify_audit()
    verifier = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit_verify.py")
    run(sys.executable, verifier, os.path.join(relay.dir, "audit.log"))  # exit 0: the chain holds


@case
def case_refused_logins_are_counted_per_address_and_minute():
    relay = LimitsRelay().start()
    before = len(relay.audit())
    sockets = relay.open_sockets()
    stranger = keygen(os.path.join(WORK, "stranger"))
    new_keys = [keygen(os.path.join(WORK, "new%d" % i)) for i in range(6)]
    started = time.time()
    # 1000 connect-and-close from one address: one entry, not a thousand.
    for _ in range(1000):
        connect_and_close(relay.ssh_port, "127.0.0.2")
    # 15 logins with an unknown key: 10 refused keys, then 5 refused at connect.
    for _ in range(15):
        status, _, _ = relay.ssh("alice", "whoami", source="127.0.0.4", key=stranger)
        check(status == 255, "the stranger got in")
    # 6 keys never seen from 127.0.0.5: the first 4 get an entry of their own.
    for key in new_keys:
        relay.ssh("alice", "whoami", source="127.0.0.5", key=key)
    for _ in range(20):
        garbage_connection(relay.ssh_port, "127.0.0.6")
    # Everything reported before the relay stops, which writes the minute's counts: each
    # connection reports its refusal when it is closed. (The relay's log has only the first
    # lines of each address by now.)
    wait_for("the relay to close every connection",
             lambda: relay.open_sockets() <= sockets, timeout=60)
    relay.stop()
    minutes = int(time.time() // 60) - int(started // 60) + 1
    own, summaries = login_entries(relay)
    print("%d own entries, %d summaries over %d minute(s) for 1041 refusals"
          % (len(own), len(summaries), minutes))
    count, kinds = summed(summaries, "127.0.0.2")
    check(count == 1000 and set(kinds) <= {"handshake-failed", "disconnected", "address-limit"},
          "127.0.0.2: count %d kinds %r" % (count, kinds))
    check(summed(summaries, "127.0.0.4") == (15, {"unknown-key": 10, "rate-limited": 5}),
          "127.0.0.4: %r" % (summed(summaries, "127.0.0.4"),))
    check(summed(summaries, "127.0.0.5") == (6, {"unknown-key": 6}),
          "127.0.0.5: %r" % (summed(summaries, "127.0.0.5"),))
    check(summed(summaries, "127.0.0.6") == (20, {"handshake-failed": 20}),
          "127.0.0.6: %r" % (summed(summaries, "127.0.0.6"),))
    for address in ("127.0.0.2", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
        entries = [e for e in summaries if e["details"]["address"] == address]
        check(len(entries) <= minutes, "%s has %d summaries in %d minute(s)"
              % (address, len(entries), minutes))
        for entry in entries:
            check(entry["actor"] == "relay" and re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", entry["details"]["minute"]),
                "summary entry: %r" % entry)
    # Own entries: the stranger's key once, and 4 of the 6 new keys.
    check(sorted((e["details"]["address"], e["details"]["reason"]) for e in own) ==
          [("127.0.0.4", "unknown-key")] + [("127.0.0.5", "unknown-key")] * 4,
          "own entries: %r" % [e["details"] for e in own])
    check(len(relay.audit()) - before <= minutes * 97, "more entries than the stated bound")
    check_chain(relay)


@case
def case_refused_logins_are_written_when_their_minute_ends():
    relay = LimitsRelay().start()
    for _ in range(5):
        garbage_connection(relay.ssh_port, "127.0.0.2")
    # Written once the minute is over, while the relay runs.
    wait_for("the minute's count in the audit log",
             lambda: summed(login_entries(relay)[1], "127.0.0.2")[0] >= 5, timeout=150,
             interval=0.5)
    check(relay.alive(), "the relay stopped")
    summaries = login_entries(relay)[1]
    # One entry, or two if the connections straddled a minute's end.
    check(1 <= len(summaries) <= 2 and
          summed(summaries, "127.0.0.2") == (5, {"handshake-failed": 5}),
          "summaries: %r" % summaries)
    check_chain(relay)


# ---- lines in the relay's own log ------------------------------------------------------------

SUMMARY = re.compile(r"log lines over the per-address budget suppressed=(\d+) peer=(\S+)$")
BUDGET = 10  # lines per address and minute (docs/technicians.md "Limits")


def lines_about(relay, address):
    """The relay's log lines that name address (as addr=, address= or peer=), summaries apart."""
    pattern = re.compile(r"=%s(\s|$)" % re.escape(address))
    return [line for line in relay.log_text().splitlines()
            if pattern.search(line) and not SUMMARY.search(line)]


def suppressed_counts(relay, address):
    """The counts of the summary lines for address, in order."""
    found = []
    for line in relay.log_text().splitlines():
        m = SUMMARY.search(line)
        if m and m.group(2) == address:
            found.append(int(m.group(1)))
    return found


def stranger_tls(relay, source, cert, key):
    """A TLS connection to the agents' port from source with a key the relay does not know."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # it floods; it does not care who the relay is
    ctx.load_cert_chain(cert, key)
    sock = connect_from(source, relay.port, timeout=10)
    return ctx.wrap_socket(sock)


def closed_within(sock, timeout=10):
    """Reads until the relay closes sock; fails if it is still open after timeout."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return
        except socket.timeout:
            break
    raise Failure("the relay kept a flooding connection open for %.0f s" % timeout)


@case
def case_one_address_cannot_flood_the_relays_log():
    relay = LimitsRelay().start()
    cert, key = os.path.join(WORK, "stranger.crt"), os.path.join(WORK, "stranger.key")
    run("openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", key, "-out", cert,
        "-subj", "/CN=stranger", "-days", "1")
    started = time.monotonic()
    # 2,000 connections from 127.0.0.2, each of which the relay used to log at least once
    # (each a refused login, a failed handshake or a rejected peer).
    for _ in range(1000):
        connect_and_close(relay.ssh_port, "127.0.0.2")
    for _ in range(400):
        garbage_connection(relay.ssh_port, "127.0.0.2")
    for _ in range(400):
        with connect_from("127.0.0.2", relay.port, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(512))
            closed_within(sock)
    for _ in range(200):
        with stranger_tls(relay, "127.0.0.2", cert, key) as sock:
            sock.sendall(hello() + frame(200, b"nope"))  # not a message type: rejected
            closed_within(sock)
    flooded = time.monotonic()
    # A technician from another address still gets in, and is still logged, before login too.
    status, out, err = relay.ssh("alice", "whoami", source="127.0.0.3")
    check(status == 0 and out.startswith("alice"), "alice beside the flood: %d %r %r"
          % (status, out, err))
    wait_for("alice's login in the relay's log",
             lambda: "ssh login user=alice role=tier1 addr=127.0.0.3 " in relay.log_text())
    check(any("ssh connection addr=127.0.0.3 " in line for line in lines_about(relay, "127.0.0.3")),
          "127.0.0.3's connection was not logged: it shared the flood's budget")
    # The flooding address got its budget of lines per minute, no more.
    windows = int((time.monotonic() - started) // 60) + 1
    flood_lines = lines_about(relay, "127.0.0.2")
    print("127.0.0.2: %d lines in %.0f s of flood" % (len(flood_lines), flooded - started))
    check(len(flood_lines) <= windows * BUDGET,
          "%d lines about 127.0.0.2 in %d minute(s) (budget %d a minute):\n%s"
          % (len(flood_lines), windows, BUDGET, "\n".join(flood_lines[-20:])))
    # When its minute ends, the relay says how many it held back, while it runs.
    counts = wait_for("a summary of 127.0.0.2's held-back lines",
                      lambda: suppressed_counts(relay, "127.0.0.2"), timeout=150, interval=0.5)
    check(relay.alive() and counts[0] > 0, "summary %r" % counts)
    # At a stop, the rest; the lines written and held back account for every connection.
    relay.stop()
    windows = int((time.monotonic() - started) // 60) + 1
    flood_lines, counts = lines_about(relay, "127.0.0.2"), suppressed_counts(relay, "127.0.0.2")
    print("127.0.0.2: %d lines written, held back %r" % (len(flood_lines), counts))
    check(len(flood_lines) <= windows * BUDGET and len(counts) <= windows,
          "%d lines and %d summaries about 127.0.0.2 in %d minute(s)"
          % (len(flood_lines), len(counts), windows))
    check(len(flood_lines) + sum(counts) >= 2000,
          "%d lines written and %d held back for 2,000 connections"
          % (len(flood_lines), sum(counts)))


@case
def case_agent_connections_are_admitted_no_faster_than_the_accept_rate():
    """A crowd of enrolled agents connecting at once (the load generator, the agent's own tunnel
    code) is let in no faster than agent_accept_rate: the rest wait in the kernel's backlog, all
    get in, and a technician's command answers meanwhile."""
    rate, count = 20, 60
    # Nothing under 1, and a clear word about it.
    _, err = run(BIN + "/tierline-relay", "serve", "--data", os.path.join(WORK, "none"),
                 "--agent-accept-rate", "0", expect=2)
    check("--agent-accept-rate wants 1..1000000" in err, "serve with rate 0: %r" % err)
    relay = LimitsRelay(extra=["--agent-accept-rate", str(rate)]).start()
    crowd = os.path.join(WORK, "crowd")
    os.makedirs(crowd)
    codes, _ = run(BIN + "/tierline-relay", "enroll-code", "--data", relay.dir, "--ttl", "10m",
                   "--count", str(count), "--address", "127.0.0.1:%d" % relay.port)
    out, _ = run(BIN + "/tierline-loadgen", "enroll", "--agents", crowd, "--first", "0",
                 input=codes, timeout=120)
    check("enrolled=%d" % count in out, "enrollment: %r" % out)
    loadgen = subprocess.Popen(
        [BIN + "/tierline-loadgen", "run", "--agents", crowd, "--count", str(count), "--connect",
         "127.0.0.1:%d" % relay.port, "--ramp", "100000", "--report-ms", "100", "--duration",
         "300"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    reports = []
    try:
        # While they come in, tier2's `tickets` answers through the stock ssh client.
        answered = 0
        for line in loadgen.stdout:
            match = re.match(r"t_ms=(\d+) connected=(\d+)", line)
            if match:
                reports.append((int(match.group(1)), int(match.group(2))))
            if reports and reports[-1][1] >= count:
                break
            check(not reports or reports[-1][0] < 240000,
                  "the crowd is not in after 240 s: %r" % reports[-5:])
            if answered < 3 and reports and reports[-1][1] < count:
                status, out, err = relay.ssh("bob", "tickets")
                check(status == 0, "tickets during the crowd: %d %r %r" % (status, out, err))
                answered += 1
    finally:
        loadgen.terminate()
        loadgen.wait(timeout=30)
    check(reports and reports[-1][1] == count, "connected: %r" % reports[-5:])
    check(answered > 0, "no command ran while the crowd came in: %r" % reports[:5])
    # The bucket holds a tenth of a second's connections (at least one): letting count in takes
    # at least (count - burst) / rate seconds from the load generator's start.
    burst = max(1, rate // 10)
    least_ms = (count - burst) * 1000 // rate
    print("%d agents in after %d ms (rate %d a second: at least %d ms)"
          % (count, reports[-1][0], rate, least_ms))
    check(reports[-1][0] >= least_ms, "%d agents were let in within %d ms, faster than %d a "
          "second" % (count, reports[-1][0], rate))
    check(relay.alive(), "the relay ended")


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("relay_limits.py BIN_DIR", "tl-limits-", setup_globals, track_popen=True,
                         home=True))
