#!/usr/bin/env python3
"""What one party can do to a real relay's front doors, and what the relay
does about it: out of file descriptors, SSH connections held before
authentication, and failed logins in the audit log. Real processes on
loopback (the agents' TLS port, the technicians' SSH port, the stock
OpenSSH client, real SQLite and audit files). Each case runs in its own
process:

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
import subprocess
import sys
import time

import relay_agent
from relay_agent import Agent, Relay
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
    check("ssh connection evicted" in relay.log_text(), "no connection evicted at the cap")
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
    idle = [banner_socket(relay.ssh_port, "127.0.0.2") for _ in range(3)]
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


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("relay_limits.py BIN_DIR", "tl-limits-", setup_globals, track_popen=True,
                         home=True))
