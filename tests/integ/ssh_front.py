#!/usr/bin/env python3
"""The relay's SSH front end (relay/net/ssh_front.c) against the stock OpenSSH
client: real processes on loopback. Each case runs in its own process:

    ssh_front.py HARNESS CASE

HARNESS is tests/integ/ssh_front_harness (the front end with stub users and
commands). Every wait is bounded; nothing here measures speed.
"""
import fcntl
import hashlib
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

import tlcase
from tlcase import Failure, case, check, fingerprint, free_port, keygen, run, wait_for

HARNESS = None
WORK = None
STARTED = []


def popen(args, **kwargs):
    proc = subprocess.Popen(args, **kwargs)
    STARTED.append(proc)
    return proc


def pattern_sha256(size):
    """SHA-256 of `big SIZE`: byte i is i % 251."""
    block = bytes(i % 251 for i in range(251 * 4096))
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)
    digest.update(block[:size % len(block)])
    return digest.hexdigest()


class Harness:
    """The front end on a free loopback port, with alice (tier1) and bob (tier2)."""

    def __init__(self, auth_timeout_ms=None, max_sessions=None, preauth_per_address=None,
                 asan_quarantine_mb=8, keepalive_ms=None, idle_timeout_ms=None):
        self.asan_quarantine_mb = asan_quarantine_mb
        self.port = free_port()
        self.host_key = os.path.join(WORK, "relay.key")
        if not os.path.exists(self.host_key):
            # PEM PKCS#8 Ed25519, as `tierline-relay init` writes its key.
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.host_key],
                           check=True, capture_output=True, timeout=30)
            os.chmod(self.host_key, 0o600)
        host_line = subprocess.run([HARNESS, "--print-host-key", self.host_key], check=True,
                                   capture_output=True, text=True, timeout=30).stdout.strip()
        check(host_line.startswith("ssh-ed25519 "), "host key line: " + host_line)
        self.known_hosts = os.path.join(WORK, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s\n" % (self.port, host_line))
        self.keys = {}
        for name in ("alice", "bob", "stranger"):
            path = os.path.join(WORK, name)
            self.keys[name] = path if os.path.exists(path) else keygen(path, name)
        self.users = os.path.join(WORK, "users")
        with open(self.users, "w") as f:
            for name, role in (("alice", "tier1"), ("bob", "tier2")):
                with open(self.keys[name] + ".pub") as pub:
                    f.write("%s %s %s\n" % (name, role, pub.read().strip()))
        self.args = [HARNESS, "--listen", "127.0.0.1:%d" % self.port, "--host-key",
                     self.host_key, "--users", self.users, "--log-level", "debug"]
        if auth_timeout_ms is not None:
            self.args += ["--auth-timeout-ms", str(auth_timeout_ms)]
        if max_sessions is not None:
            self.args += ["--max-sessions", str(max_sessions)]
        if keepalive_ms is not None:
            self.args += ["--keepalive-ms", str(keepalive_ms)]
        if idle_timeout_ms is not None:
            self.args += ["--idle-timeout-ms", str(idle_timeout_ms)]
        if preauth_per_address is not None:
            self.args += ["--preauth-per-address", str(preauth_per_address)]
        self.log_path = os.path.join(WORK, "harness.log")
        self.proc = None

    def start(self):
        env = dict(os.environ)
        # ASan keeps freed memory in quarantine (256 MiB by default); the memory
        # checks below are about our buffers, not the sanitizer's.
        options = [env["ASAN_OPTIONS"]] if env.get("ASAN_OPTIONS") else []
        env["ASAN_OPTIONS"] = ":".join(options + ["quarantine_size_mb=%d" % self.asan_quarantine_mb])
        self.log = open(self.log_path, "a")
        self.proc = popen(self.args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                          env=env)
        # Not a probe connection: that would itself be a failed login from 127.0.0.1.
        wait_for("the harness to listen", lambda: "harness: listening" in self.log_text() or
                 self.proc.poll() is not None)
        check(self.proc.poll() is None, "harness exited: " + self.log_text())
        HARNESSES.append(self)
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("harness did not stop within 30 s of SIGTERM")
        status = self.proc.returncode
        self.proc = None
        check(status == 0, "harness exited %s after SIGTERM (sanitizer report or unclean stop)"
              % status)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=20.0):
        return wait_for("log line /%s/" % pattern,
                        lambda: re.search(pattern, self.log_text(), re.M), timeout=timeout)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def ssh_args(self, user, *command, key=None, extra=()):
        return ["ssh", "-F", "/dev/null", "-p", str(self.port),
                "-i", self.keys[key or user] if (key or user) in self.keys else key,
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR", *extra, user + "@127.0.0.1", *command]

    def ssh(self, user, *command, key=None, extra=(), timeout=60, env=None):
        """Runs ssh to completion: (exit status, stdout bytes, stderr text)."""
        proc = subprocess.run(self.ssh_args(user, *command, key=key, extra=extra),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              env=env or ssh_env())
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def ssh_popen(self, user, *command, key=None, extra=(), **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("env", ssh_env())
        return popen(self.ssh_args(user, *command, key=key, extra=extra), **kwargs)

    def logins(self, **fields):
        """Login lines the harness wrote, as dicts, filtered by fields."""
        found = []
        for line in self.log_text().splitlines():
            if line.startswith("login "):
                entry = dict(part.split("=", 1) for part in line.split()[1:])
                if all(entry.get(k) == str(v) for k, v in fields.items()):
                    found.append(entry)
        return found


HARNESSES = []


def ssh_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
    env["HOME"] = WORK
    env.update(extra)
    return env


def expect_ok(result, stdout=None, what=""):
    status, out, err = result
    check(status == 0, "%s: exit %d, stderr %r" % (what, status, err))
    if stdout is not None:
        check(out == stdout, "%s: stdout %r, expected %r" % (what, out, stdout))
    return out


def set_window_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyClient:
    """ssh on a pseudo-terminal, as a technician at a terminal runs it: we hold the master."""

    def __init__(self, h, user, *command, cols=100, rows=30, extra=()):
        self.master, slave = os.openpty()
        set_window_size(slave, cols, rows)
        # No local echo: whatever comes back was sent by the relay.
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.proc = h.ssh_popen(user, *command, extra=extra, stdin=slave, stdout=slave,
                                stderr=slave, env=ssh_env(TERM="xterm-256color"),
                                start_new_session=True)
        os.close(slave)
        self.output = b""
        self.closed = False

    def _read(self, timeout):
        if self.closed:
            return False
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: ssh closed the terminal
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.output += chunk
        return True

    def expect(self, pattern, timeout=20.0):
        """Waits until the output matches pattern (bytes regex); returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.output)
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)) and self.closed:
                raise Failure("terminal never showed %r; it shows %r" % (pattern, self.output))

    def send(self, data):
        os.write(self.master, data)

    def resize(self, cols, rows):
        set_window_size(self.master, cols, rows)
        os.kill(self.proc.pid, signal.SIGWINCH)

    def finish(self, timeout=30.0):
        """Reads until ssh closes the terminal; returns its exit status."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(0.2)
        status = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return status


class Feeder(threading.Thread):
    """Writes size random bytes into a pipe, hashing them; counts what the pipe took."""

    def __init__(self, pipe, size, block=1 << 20):
        super().__init__(daemon=True)
        self.pipe, self.size, self.block = pipe, size, block
        self.written = 0
        self.digest = hashlib.sha256()
        self.error = None

    def run(self):
        try:
            while self.written < self.size:
                data = os.urandom(min(self.block, self.size - self.written))
                self.digest.update(data)
                view = memoryview(data)
                while view:
                    n = os.write(self.pipe.fileno(), view[:65536])
                    view = view[n:]
                    self.written += n
            self.pipe.close()
        except OSError as e:
            self.error = e


def read_all(stream):
    """(length, sha256 hex) of everything until EOF."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return total, digest.hexdigest()
        digest.update(chunk)
        total += len(chunk)


def read_until_closed(sock, timeout):
    """Bytes the peer sent until it closed; raises if it is still open at the deadline."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data
        if not chunk:
            return data
        data += chunk
    raise Failure("the front end kept the connection open for %.0f s (got %r)" % (timeout, data))


def banner_socket(port, source):
    """A connection from the loopback address source that waits for the front end's banner
    and sends nothing: (socket, True if the banner came, False if it was closed at once)."""
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    data = b""
    while b"\n" not in data:
        try:
            chunk = sock.recv(256)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            check(data == b"", "closed in the middle of the banner: %r" % data)
            return sock, False
        data += chunk
    check(data.startswith(b"SSH-2.0-"), "not an SSH banner: %r" % data)
    return sock, True


def still_open(sock):
    """False if the peer has closed sock (what it sent before is dropped)."""
    while True:
        ready, _, _ = select.select([sock], [], [], 0)
        if not ready:
            return True
        try:
            if not sock.recv(65536):
                return False
        except (ConnectionResetError, BrokenPipeError):
            return False


def garbage_connection(port, source):
    """Sends what is not SSH from source and waits until the front end closes it."""
    with socket.socket() as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(512))
        read_until_closed(sock, 10)


# ---- cases -----------------------------------------------------------------------------------

def expect_echoed(proc, feeder, size, what):
    """The command echoed every byte the feeder wrote, in order, and exited 0."""
    received, digest = read_all(proc.stdout)
    status = proc.wait(timeout=120)
    feeder.join(timeout=60)
    check(status == 0 and feeder.error is None, "%s: exit %d, feeder %r"
          % (what, status, feeder.error))
    check(received == size and digest == feeder.digest.hexdigest(),
          "%s: %d bytes of %d; same bytes: %s"
          % (what, received, size, digest == feeder.digest.hexdigest()))


@case
def case_exec_output_and_status():
    h = Harness().start()
    expect_ok(h.ssh("alice", "echo", "hello", "world"), b"hello\nworld\n", "echo")
    status, out, err = h.ssh("alice", "fail", "3")
    check(status == 3 and out == b"" and "fail: exiting with 3" in err,
          "fail 3: status %d stdout %r stderr %r" % (status, out, err))
    status, out, err = h.ssh("alice", "fail", "0")
    check(status == 0 and "exiting with 0" in err, "fail 0: %d %r" % (status, err))
    status, out, err = h.ssh("alice", "no-such-command")
    check(status == 2 and "unknown command" in err, "unknown command: %d %r" % (status, err))
    # env requests are refused quietly; the command still runs.
    expect_ok(h.ssh("alice", "echo", "env", extra=("-o", "SendEnv=TL_TEST_VAR"),
                    env=ssh_env(TL_TEST_VAR="x")), b"env\n", "echo with SendEnv")
    entries = h.logins(user="alice", ok=1, reason="publickey")
    check(len(entries) == 5, "5 good logins reported, got %r" % entries)
    check(entries[0]["address"] == "127.0.0.1" and
          entries[0]["key"] == fingerprint(h.keys["alice"]), "login entry %r" % entries[0])
    expect_ok(h.ssh("alice", "sessions"), b"1\n", "sessions")


@case
def case_whoami():
    h = Harness().start()
    out = expect_ok(h.ssh("bob", "whoami"), what="whoami")
    expected = "name=bob role=tier2 address=127.0.0.1 key=%s\n" % fingerprint(h.keys["bob"])
    check(out.decode() == expected, "whoami said %r, expected %r" % (out, expected))


@case
def case_quoting_rules():
    h = Harness().start()
    # One string reaches the relay; each line of output is one word.
    good = [
        ("echo 'a b' \"c \\\"d\\\" \\\\e\" f\\ g h'i'j '' $HOME * ~",
         ["a b", 'c "d" \\e', "f g", "hij", "", "$HOME", "*", "~"]),
        ('echo "x\\ny" \'single \\ back\'', ["x\\ny", "single \\ back"]),
        ("echo\ta\t\tb   c", ["a", "b", "c"]),
        ("echo 'two\nlines'", ["two", "lines"]),
        ("echo " + " ".join("w%d" % i for i in range(63)), ["w%d" % i for i in range(63)]),
        ("echo " + "x" * (8192 - 5), ["x" * (8192 - 5)]),
    ]
    for line, words in good:
        out = expect_ok(h.ssh("alice", line), what="command %r" % line[:60])
        expected = "".join(w + "\n" for w in words).encode()
        check(out == expected, "%r gave %r, expected %r" % (line[:60], out[:200], expected[:200]))
    bad = [
        ("echo 'open", "unterminated single quote"),
        ('echo "open', "unterminated double quote"),
        ("echo trailing\\", "backslash at the end"),
        ("echo " + " ".join("w%d" % i for i in range(64)), "more than 64 words"),
        ("echo " + "x" * 8200, "longer than 8192 bytes"),
        ("echo a\x01b", "control character"),
    ]
    before = h.log_text().count("ssh exec user=")
    for line, message in bad:
        status, out, err = h.ssh("alice", line)
        check(status == 2 and out == b"" and message in err and err.count("\n") == 1,
              "%r: status %d stdout %r stderr %r" % (line[:60], status, out, err))
    check(h.log_text().count("ssh exec user=") == before,
          "a malformed line reached the dispatcher")


@case
def case_big_output_arrives_complete():
    h = Harness().start()
    size = 200_000_000
    proc = h.ssh_popen("alice", "big", str(size), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       extra=("-c", "aes128-gcm@openssh.com"))
    digest = hashlib.sha256()
    received = 0
    while True:
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        received += len(chunk)
    status = proc.wait(timeout=180)
    err = proc.stderr.read().decode(errors="replace")
    check(status == 0, "big: exit %d, stderr %r" % (status, err))
    check(received == size, "big: %d bytes, expected %d" % (received, size))
    check(digest.hexdigest() == pattern_sha256(size), "big: the bytes differ from the pattern")
    h.wait_log(r"ssh exec done user=alice addr=127\.0\.0\.1 command=big status=0 sent=%d" % size)


@case
def case_rekey_while_streaming():
    h = Harness().start()
    size = 30_000_000
    # The client renews the keys every megabyte while the output streams.
    status, out, err = h.ssh("alice", "big", str(size), extra=("-o", "RekeyLimit=1M"),
                             timeout=120)
    check(status == 0 and len(out) == size, "big with rekeys: exit %d, %d bytes, stderr %r"
          % (status, len(out), err))
    check(hashlib.sha256(out).hexdigest() == pattern_sha256(size),
          "big with rekeys: the bytes differ")


@case
def case_unknown_key_and_wrong_user_refused():
    h = Harness().start()
    status, out, err = h.ssh("alice", "echo", "x", key="stranger")
    check(status == 255 and out == b"" and "Permission denied" in err,
          "stranger key: status %d stdout %r stderr %r" % (status, out, err))
    status, out, err = h.ssh("mallory", "echo", "x", key="alice")
    check(status == 255 and out == b"" and "Permission denied" in err,
          "wrong user: status %d stdout %r stderr %r" % (status, out, err))
    check(h.logins(user="alice", ok=0, reason="unknown-key",
                   key=fingerprint(h.keys["stranger"])), "stranger's refusal not reported")
    check(h.logins(user="mallory", ok=0, reason="unknown-key", key=fingerprint(h.keys["alice"])),
          "mallory's refusal not reported")
    check(not h.logins(ok=1), "a refused key logged in: %r" % h.logins(ok=1))
    # Public keys are the only method offered: a client that wants a password has nothing to try.
    status, out, err = h.ssh("alice", "echo", "x", key="stranger",
                             extra=("-o", "PreferredAuthentications=password,keyboard-interactive"))
    check(status == 255 and out == b"" and "Permission denied (publickey)" in err,
          "password login: status %d stderr %r" % (status, err))
    expect_ok(h.ssh("alice", "echo", "still", "fine"), b"still\nfine\n", "alice afterwards")


@case
def case_failed_logins_rate_limited():
    h = Harness().start()
    for attempt in range(10):
        status, _, err = h.ssh("alice", "echo", "x", key="stranger")
        check(status == 255, "attempt %d: status %d %r" % (attempt, status, err))
    check(len(h.logins(ok=0, reason="unknown-key")) == 10,
          "10 refusals expected: %r" % h.logins(ok=0))
    # The eleventh attempt from 127.0.0.1 is refused even with the right key.
    status, out, err = h.ssh("alice", "echo", "x")
    check(status == 255 and out == b"", "rate-limited login: status %d stdout %r" % (status, out))
    check(h.logins(address="127.0.0.1", ok=0, reason="rate-limited"), "no rate-limited report")
    check(not h.logins(ok=1), "a login got through the limit")
    # Another address is not affected.
    expect_ok(h.ssh("alice", "echo", "other", extra=("-o", "BindAddress=127.0.0.2")),
              b"other\n", "from 127.0.0.2")
    check(h.logins(address="127.0.0.2", ok=1), "no login from 127.0.0.2")


@case
def case_one_address_cannot_lock_technicians_out():
    h = Harness(max_sessions=12, preauth_per_address=4, auth_timeout_ms=120000).start()
    # 127.0.0.2 opens 20 connections that never go past the banner: 4 are let in.
    flood = {}
    for source in ("127.0.0.2", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
        flood[source] = []
        for _ in range(20 if source == "127.0.0.2" else 4):
            flood[source].append(banner_socket(h.port, source))
        if source == "127.0.0.2":
            let_in = sum(1 for _, banner in flood[source] if banner)
            check(let_in == 4, "127.0.0.2 got %d connections before authentication, its budget is 4"
                  % let_in)
            check(len(h.logins(address=source, ok=0, reason="address-limit")) == 16,
                  "refusals: %r" % h.logins(address=source, ok=0))
            # What is not SSH is closed, and costs the address nothing.
            for _ in range(12):
                garbage_connection(h.port, source)
    # Four addresses wanted 16 connections, the cap is 12: room was made by closing the
    # connections of the address that held the most.
    check(h.logins(ok=0, reason="evicted"), "no connection was evicted: %r" % h.logins(ok=0))
    # A technician from a fifth address gets in, with the stock OpenSSH client.
    out = expect_ok(h.ssh("alice", "whoami", extra=("-o", "BindAddress=127.0.0.3")),
                    what="alice from 127.0.0.3 beside the flood")
    check(out.startswith(b"name=alice role=tier1 address=127.0.0.3 "), "whoami: %r" % out)
    # No address holds more than its budget, and the relay no more than its cap.
    for source, socks in flood.items():
        held = wait_for("%s to hold at most its budget" % source,
                        lambda: (lambda n: n if n <= 4 else None)(
                            sum(1 for sock, banner in socks if banner and still_open(sock))) or
                        "none", timeout=10)
        print("%s holds %s connections before authentication" % (source, held))
    status, out, err = h.ssh("bob", "sessions", extra=("-o", "BindAddress=127.0.0.7"))
    check(status == 0 and int(out) <= 12, "sessions: %d %r %r" % (status, out, err))
    # The flooding address was never counted as failing to log in: a technician there logs in
    # once a place is free.
    for sock, _ in flood["127.0.0.2"]:
        sock.close()
    out = wait_for("alice's login from 127.0.0.2",
                   lambda: h.ssh("alice", "whoami", extra=("-o", "BindAddress=127.0.0.2"))[1],
                   timeout=20, interval=0.2)
    check(out.startswith(b"name=alice role=tier1 address=127.0.0.2 "), "whoami: %r" % out)
    check(not h.logins(reason="rate-limited"), "rate-limited: %r" % h.logins(reason="rate-limited"))
    for socks in flood.values():
        for sock, _ in socks:
            sock.close()


@case
def case_noise_is_not_a_failed_login():
    # Garbage, clients that leave at the banner and clients that stay silent past the
    # deadline, more than TL_SSH_LOGIN_FAILURES of them from one address: none is a failed
    # login, so a technician behind the same address still gets in.
    h = Harness(auth_timeout_ms=1000).start()
    source = "127.0.0.2"
    for _ in range(12):
        garbage_connection(h.port, source)
    for _ in range(12):
        sock, banner = banner_socket(h.port, source)
        check(banner, "a banner-only client was refused: %r" % h.logins(ok=0))
        sock.close()
    silent = [banner_socket(h.port, source)[0] for _ in range(3)]
    for sock in silent:
        read_until_closed(sock, 15)  # the pre-auth deadline closes it
        sock.close()
    wait_for("every noisy connection reported",
             lambda: len(h.logins(address=source, ok=0)) >= 27, timeout=20)
    reasons = sorted(set(entry["reason"] for entry in h.logins(address=source, ok=0)))
    check("timeout" in reasons and "handshake-failed" in reasons and
          set(reasons) <= {"disconnected", "handshake-failed", "timeout"},
          "refusal reasons from %s: %r" % (source, reasons))
    out = expect_ok(h.ssh("alice", "whoami", extra=("-o", "BindAddress=" + source)),
                    what="alice from the noisy address")
    check(out.startswith(b"name=alice "), "whoami: %r" % out)


@case
def case_keys_tried_before_the_right_one_are_taken_back():
    # A client offering wrong keys before the right one (as one with several keys in its
    # agent does) logs in; those refusals do not count towards the address's limit.
    h = Harness().start()
    for attempt in range(6):
        status, out, err = h.ssh("alice", "echo", "in", key="stranger",
                                 extra=("-i", h.keys["bob"], "-i", h.keys["alice"]))
        check(status == 0 and out == b"in\n", "attempt %d: %d %r %r" % (attempt, status, out, err))
    check(len(h.logins(ok=0, reason="unknown-key")) >= 12,
          "wrong keys not refused first: %r" % h.logins(ok=0))
    # 12 refusals were taken back; real failures still count from zero.
    for attempt in range(9):
        check(h.ssh("alice", "echo", "x", key="stranger")[0] == 255, "stranger %d got in" % attempt)
    expect_ok(h.ssh("alice", "echo", "still"), b"still\n", "alice after 9 real failures")


@case
def case_budget_frees_at_the_pre_auth_deadline():
    h = Harness(preauth_per_address=3, auth_timeout_ms=1500).start()
    idle = [banner_socket(h.port, "127.0.0.2") for _ in range(3)]
    check(all(banner for _, banner in idle), "the budget's connections were refused")
    # The budget is full: a technician from that address is refused for now...
    status, out, err = h.ssh("alice", "echo", "x", extra=("-o", "BindAddress=127.0.0.2"))
    check(status == 255 and out == b"", "over the budget: %d %r %r" % (status, out, err))
    check(h.logins(address="127.0.0.2", reason="address-limit"), "no address-limit refusal")
    # ...until the deadline closes the idle connections.
    for sock, _ in idle:
        read_until_closed(sock, 15)
        sock.close()
    check(len(h.logins(address="127.0.0.2", reason="timeout")) == 3,
          "timeouts: %r" % h.logins(address="127.0.0.2"))
    expect_ok(h.ssh("alice", "echo", "in", extra=("-o", "BindAddress=127.0.0.2")), b"in\n",
              "alice once the deadline freed the budget")


@case
def case_an_idle_connection_is_closed_and_told_why():
    h = Harness(keepalive_ms=300, idle_timeout_ms=1500).start()
    # Data on a channel keeps it: a byte typed every 300 ms for twice the idle limit.
    proc = h.ssh_popen("alice", "cat-input", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    try:
        for _ in range(10):
            proc.stdin.write(b"x")
            proc.stdin.flush()
            time.sleep(0.3)
        proc.stdin.close()
        proc.wait(timeout=30)
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check(proc.returncode == 0 and out == b"x" * 10, "typing kept it open: %r %r %r" % (
        proc.returncode, out, err))
    # No channel at all (ssh -N): closed once the limit passed, with the reason on the client.
    status, out, err = h.ssh("alice", "-N", timeout=30)
    check(status == 255 and "closed after 1 s with no data on its channels" in err,
          "ssh -N: %d %r" % (status, err))
    h.wait_log(r"ssh connection ended addr=127\.0\.0\.1 user=alice reason=idle")
    # The keepalives alone do not count as activity, and a live client answers them.
    check("reason=keepalive" not in h.log_text(), "an answering client counted as gone")


@case
def case_a_client_that_stops_answering_is_dropped():
    h = Harness(keepalive_ms=300).start()
    proc = h.ssh_popen("alice", "-N", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        h.wait_log(r"ssh login user=alice|login user=alice address=\S+ key=\S+ ok=1")
        # A stopped client: the kernel still acknowledges, but nothing answers the keepalives.
        proc.send_signal(signal.SIGSTOP)
        h.wait_log(r"ssh connection ended addr=127\.0\.0\.1 user=alice reason=keepalive",
                   timeout=30)
    finally:
        proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    check(proc.returncode == 255, "ssh after the relay dropped it: %r" % proc.returncode)
    # Others are still served.
    expect_ok(h.ssh("bob", "echo", "still-here"), b"still-here\n", "bob afterwards")


@case
def case_session_without_command_gets_usage():
    h = Harness().start()
    status, out, err = h.ssh("alice", extra=("-T",))
    check(status == 2 and out == b"" and "usage:" in err,
          "no command: status %d stdout %r stderr %r" % (status, out, err))
    # With a terminal too: ssh at a terminal asks for a PTY, then a shell.
    client = PtyClient(h, "alice")
    client.expect(rb"usage: ssh .*\r\n")
    status = client.finish()
    check(status == 2, "no command at a terminal: status %d, terminal %r" % (status, client.output))
    # A command with a PTY (ssh -tt) runs.
    status, out, err = h.ssh("alice", "echo", "x", extra=("-tt",))
    check(status == 0 and out == b"x\r\n", "-tt: status %d stdout %r stderr %r" % (status, out, err))
    # Subsystems (sftp) are refused.
    status, out, err = h.ssh("alice", "sftp", extra=("-s",))
    check(status != 0 and out == b"", "sftp subsystem: status %d stdout %r" % (status, out))
    h.wait_log(r"request=subsystem name=sftp")
    expect_ok(h.ssh("alice", "echo", "ok"), b"ok\n", "echo afterwards")


@case
def case_pty_keystrokes_echoed():
    h = Harness().start()
    client = PtyClient(h, "alice", "cat-input", extra=("-tt",))
    h.wait_log(r"ssh exec user=alice .* command=cat-input")
    client.send(b"hello")
    client.expect(rb"hello")
    client.send(b" world\r")
    client.expect(rb"hello world\r")
    client.send(b"\x04")  # ^D ends cat-input at a terminal
    status = client.finish()
    check(status == 0, "cat-input at a terminal: status %d, terminal %r" % (status, client.output))
    check(client.output.count(b"hello") == 1, "echoed more than once: %r" % client.output)
    h.wait_log(r"^cat-input done received=12$")


def established_sockets(pid, local_port):
    """pid's file descriptors that are established TCP connections to local_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port == local_port and fields[3] == "01":  # TCP_ESTABLISHED
                    inodes.add(fields[9])
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            found.append(int(fd))
    return found


def peer_socket_option(pid, fd, level, option):
    """getsockopt on another process's socket (pidfd_getfd: needs ptrace rights)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_getfd = 438
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if copy < 0:
            raise Failure("pidfd_getfd: " + os.strerror(ctypes.get_errno()))
    finally:
        os.close(pidfd)
    with socket.socket(fileno=copy) as sock:
        return sock.getsockopt(level, option)


@case
def case_technician_connections_have_nodelay():
    # A keystroke's echo must not wait behind Nagle for the client's delayed ACK.
    h = Harness().start()
    client = PtyClient(h, "alice", "cat-input", extra=("-tt",))
    h.wait_log(r"ssh exec user=alice .* command=cat-input")
    fds = established_sockets(h.proc.pid, h.port)
    check(len(fds) >= 1, "no connection socket found in the front end")
    for fd in fds:
        check(peer_socket_option(h.proc.pid, fd, socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
              "TCP_NODELAY is off on the front end's socket fd %d" % fd)
    client.send(b"\x04")
    check(client.finish() == 0, "cat-input did not end cleanly: %r" % client.output)


@case
def case_pty_window_changes_arrive():
    h = Harness().start()
    client = PtyClient(h, "bob", "pty-info", cols=100, rows=30, extra=("-tt",))
    client.expect(rb"pty=1 term=xterm-256color cols=100 rows=30\r\n")
    client.resize(132, 43)
    client.expect(rb"resize cols=132 rows=43\r\n")
    # A size of 0 is ignored; a huge one is clamped (protocol.md §7.7 takes 1..1000).
    client.resize(0, 0)
    h.wait_log(r"ssh window-change ignored user=bob .* cols=0 rows=0")
    client.resize(5000, 3000)
    client.expect(rb"resize cols=1000 rows=1000\r\n")
    client.resize(80, 24)
    client.expect(rb"resize cols=80 rows=24\r\n")
    client.send(b"q")
    client.expect(rb"bye\r\n")
    status = client.finish()
    check(status == 0, "pty-info: status %d, terminal %r" % (status, client.output))
    resizes = re.findall(rb"resize cols=\d+ rows=\d+", client.output)
    check(resizes == [b"resize cols=132 rows=43", b"resize cols=1000 rows=1000",
                      b"resize cols=80 rows=24"], "resize events: %r" % resizes)
    # Without a local terminal, ssh -tt still asks for a PTY, of size 0x0.
    status, out, err = h.ssh("bob", "pty-info", extra=("-tt",), env=ssh_env(TERM="vt100"))
    check(status == 0 and out == b"pty=1 term=vt100 cols=0 rows=0\r\n",
          "-tt without a terminal: status %d stdout %r stderr %r" % (status, out, err))
    status, out, err = h.ssh("bob", "pty-info")
    check(status == 0 and out == b"pty=0 term=- cols=0 rows=0\n",
          "no PTY: status %d stdout %r stderr %r" % (status, out, err))


@case
def case_onlcr_only_with_pty():
    h = Harness().start()
    status, out, err = h.ssh("alice", "lines", "3")
    check(status == 0 and out == b"line 1\nline 2\nline 3\n" and err == "err line\n",
          "no PTY: status %d stdout %r stderr %r" % (status, out, err))
    status, out, err = h.ssh("alice", "lines", "3", extra=("-tt",))
    check(status == 0 and out == b"line 1\r\nline 2\r\nline 3\r\n" and err == "err line\r\n",
          "PTY: status %d stdout %r stderr %r" % (status, out, err))
    status, out, err = h.ssh("alice", "raw-lines", "3", extra=("-tt",))
    check(status == 0 and out == b"line 1\nline 2\nline 3\n" and err == "err line\n",
          "PTY, raw: status %d stdout %r stderr %r" % (status, out, err))
    # Refusals follow the terminal too.
    status, out, err = h.ssh("alice", "echo 'open", extra=("-tt",))
    check(status == 2 and "unterminated single quote\r\n" in err,
          "refusal with PTY: status %d stdout %r stderr %r" % (status, out, err))


def echo_through_cat_input(h, size, extra=()):
    """Pipes size random bytes through cat-input; checks they all come back, in order."""
    proc = h.ssh_popen("alice", "cat-input", extra=extra, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = Feeder(proc.stdin, size)
    feeder.start()
    received, digest = read_all(proc.stdout)
    status = proc.wait(timeout=120)
    feeder.join(timeout=60)
    err = proc.stderr.read().decode(errors="replace")
    check(feeder.error is None and feeder.written == size, "feeder: %r after %d bytes"
          % (feeder.error, feeder.written))
    check(status == 0, "cat-input: exit %d, stderr %r" % (status, err))
    check(received == size and digest == feeder.digest.hexdigest(),
          "cat-input echoed %d bytes, expected %d; same bytes: %s"
          % (received, size, digest == feeder.digest.hexdigest()))


@case
def case_stdin_piped_arrives_intact():
    h = Harness().start()
    size = 10 * 1024 * 1024
    echo_through_cat_input(h, size)
    h.wait_log(r"^cat-input done received=%d$" % size)
    # Again while the client renews the keys every megabyte.
    echo_through_cat_input(h, size, extra=("-o", "RekeyLimit=1M"))
    check(h.log_text().count("cat-input done received=%d" % size) == 2, "second run not done")


@case
def case_input_taken_in_part_is_offered_again():
    h = Harness().start()
    size = 2 * 1024 * 1024 + 7
    # The command takes at most 4093 bytes per offer and resumes from a timer.
    proc = h.ssh_popen("alice", "cat-input", "trickle", "4093", stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = Feeder(proc.stdin, size, block=100_003)
    feeder.start()
    expect_echoed(proc, feeder, size, "trickle")


@case
def case_slow_reader_keeps_memory_bounded():
    h = Harness(asan_quarantine_mb=1).start()
    baseline = h.rss_kib()
    size = 64 * 1024 * 1024
    # The command takes 512 bytes per offer and per turn of the loop: far slower than ssh sends.
    proc = h.ssh_popen("alice", "sink", "512", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    feeder = Feeder(proc.stdin, size)
    feeder.start()
    grown = 0
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        grown = max(grown, h.rss_kib() - baseline)
        time.sleep(0.25)
    status = proc.wait(timeout=60)
    feeder.join(timeout=60)
    out = proc.stdout.read().decode()
    print("slow reader: RSS grew at most %d KiB while %d bytes went through" % (grown, size))
    check(status == 0 and feeder.error is None, "sink: exit %d, feeder %r, stderr %r"
          % (status, feeder.error, proc.stderr.read()))
    expected = "received=%d sha256=%s\n" % (size, feeder.digest.hexdigest())
    check(out == expected, "sink said %r, expected %r" % (out, expected))
    check(grown < 24 * 1024, "RSS grew %d KiB behind a slow reader" % grown)


@case
def case_input_without_reader_is_dropped():
    h = Harness().start()
    # wait-eof has no on_input: its input is read and dropped, and EOF still arrives.
    proc = h.ssh_popen("alice", "wait-eof", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    feeder = Feeder(proc.stdin, 8 * 1024 * 1024)
    feeder.start()
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    feeder.join(timeout=60)
    check(proc.returncode == 0 and out == b"eof\n" and feeder.written == 8 * 1024 * 1024,
          "wait-eof: exit %d stdout %r stderr %r, %d bytes written"
          % (proc.returncode, out, err, feeder.written))


@case
def case_stdin_flood_while_held_keeps_memory_bounded():
    h = Harness(asan_quarantine_mb=1).start()
    baseline = h.rss_kib()
    size = 64 * 1024 * 1024
    proc = h.ssh_popen("alice", "cat-input", "hold", stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = Feeder(proc.stdin, size)
    feeder.start()
    h.wait_log(r"^cat-input holding offered=\d+$")
    wait_for("the client to send a window's worth", lambda: feeder.written >= 1 << 20, timeout=30)
    time.sleep(2)  # room for the flood to go on, if anything let it
    grown = h.rss_kib() - baseline
    written = feeder.written
    print("held input: %d bytes taken from the client, RSS grew %d KiB" % (written, grown))
    check(written < 16 * 1024 * 1024, "the client was not held back: %d bytes written" % written)
    check(grown < 24 * 1024, "RSS grew %d KiB while input was held" % grown)
    check(proc.poll() is None, "the held client exited: %s" % proc.returncode)
    # A second held client that goes away is aborted, with nothing left behind.
    other = h.ssh_popen("bob", "cat-input", "hold", stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    other_feeder = Feeder(other.stdin, size)
    other_feeder.start()
    wait_for("bob's input to be held",
             lambda: h.log_text().count("cat-input holding") >= 2 and other_feeder.written > 0)
    other.kill()
    other.wait(timeout=10)
    h.wait_log(r"^abort command=cat-input received=0$")
    # Released, every byte comes back, in order.
    expect_ok(h.ssh("bob", "release"), b"released 1\n", "release")
    expect_echoed(proc, feeder, size, "after release")


@case
def case_forwarding_refused():
    h = Harness().start()
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(4)
    target.settimeout(1.0)
    target_port = target.getsockname()[1]
    local_port = free_port()
    # -L: the tunnel comes up, but a connection through it is closed at once.
    forward = h.ssh_popen("alice", extra=("-N", "-L", "%d:127.0.0.1:%d" % (local_port, target_port)),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    h.wait_log(r"^login user=alice .* ok=1")

    def connect_local():
        try:
            return socket.create_connection(("127.0.0.1", local_port), timeout=1)
        except OSError:
            return None

    client = wait_for("ssh's local forwarding port", connect_local)
    client.sendall(b"hello?")
    read_until_closed(client, 10)
    client.close()
    try:
        target.accept()
        raise Failure("a forwarded connection reached the target")
    except socket.timeout:
        pass
    h.wait_log(r"request=channel-open type=direct-tcpip")
    forward.terminate()
    forward.wait(timeout=20)
    # -R with ExitOnForwardFailure: the client is told no and gives up.
    status, out, err = h.ssh("alice", extra=("-N", "-o", "ExitOnForwardFailure=yes", "-R",
                                             "0:127.0.0.1:%d" % target_port), timeout=30)
    check(status == 255, "-R: status %d stderr %r" % (status, err))
    h.wait_log(r"request=global type=tcpip-forward")
    # X11: refused, and the command still runs.
    status, out, err = h.ssh("alice", "echo", "x11", extra=("-o", "ForwardX11=yes"),
                             env=ssh_env(DISPLAY="127.0.0.1:99"))
    check(status == 0 and out == b"x11\n", "with X11: status %d out %r err %r" % (status, out, err))
    h.wait_log(r"request=channel type=x11")
    target.close()


@case
def case_garbage_and_silent_clients_are_closed():
    h = Harness(auth_timeout_ms=1500).start()
    silent = socket.create_connection(("127.0.0.1", h.port), timeout=5)
    garbage = socket.create_connection(("127.0.0.1", h.port), timeout=5)
    garbage.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
    bad_kex = socket.create_connection(("127.0.0.1", h.port), timeout=5)
    bad_kex.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + os.urandom(4096))
    # Another technician is served meanwhile.
    expect_ok(h.ssh("alice", "echo", "served"), b"served\n", "echo beside the bad clients")
    for name, sock in (("garbage", garbage), ("bad key exchange", bad_kex)):
        data = read_until_closed(sock, 10)
        check(data == b"" or data.startswith(b"SSH-2.0-"), "%s got %r" % (name, data[:100]))
    started = time.monotonic()
    data = read_until_closed(silent, 15)
    check(data.startswith(b"SSH-2.0-"), "silent client got %r" % data[:100])
    check(time.monotonic() - started < 10, "silent client closed late")
    check(h.logins(ok=0, reason="timeout"), "no timeout reported: %r" % h.logins(ok=0))
    check(len(h.logins(ok=0, reason="handshake-failed")) >= 2,
          "handshake failures not reported: %r" % h.logins(ok=0))
    for sock in (silent, garbage, bad_kex):
        sock.close()
    wait_for("the sessions to be freed",
             lambda: h.ssh("alice", "sessions")[1] == b"1\n", timeout=10, interval=0.2)


@case
def case_stalled_reader_does_not_hold_back_others():
    h = Harness().start()
    baseline = h.rss_kib()
    size = 100_000_000
    # ssh writes into a pipe nobody reads: it stops reading, the SSH window closes.
    stalled = h.ssh_popen("alice", "big", str(size), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    h.wait_log(r"ssh exec user=alice .* command=big")
    time.sleep(3)
    started = time.monotonic()
    expect_ok(h.ssh("bob", "echo", "not", "blocked", timeout=30), b"not\nblocked\n",
              "echo beside a stalled reader")
    check(time.monotonic() - started < 15, "echo took %.1f s" % (time.monotonic() - started))
    cpu_before = h.cpu_seconds()
    time.sleep(2)
    cpu_used = h.cpu_seconds() - cpu_before
    check(cpu_used < 1.0, "the harness used %.2f s of CPU in 2 s while a reader stalled" % cpu_used)
    grown = h.rss_kib() - baseline
    print("stalled reader: RSS grew %d KiB, %.2f s CPU in 2 s" % (grown, cpu_used))
    check(grown < 64 * 1024, "RSS grew %d KiB while a reader stalled" % grown)
    check(stalled.poll() is None, "the stalled ssh exited early: %s" % stalled.returncode)
    # Now it reads: everything arrives, in order.
    digest = hashlib.sha256()
    received = 0
    while True:
        chunk = stalled.stdout.read(1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        received += len(chunk)
    status = stalled.wait(timeout=120)
    check(status == 0 and received == size, "after the stall: exit %d, %d bytes" % (status, received))
    check(digest.hexdigest() == pattern_sha256(size), "after the stall: the bytes differ")


@case
def case_twenty_parallel_clients():
    h = Harness().start()
    procs = []
    for i in range(20):
        user = "alice" if i % 2 else "bob"
        command = ("slow", "300") if i % 5 == 0 else ("echo", "client", str(i))
        procs.append((i, command, h.ssh_popen(user, *command, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE)))
    for i, command, proc in procs:
        out, err = proc.communicate(timeout=120)
        expected = b"slept 300\n" if command[0] == "slow" else b"client\n%d\n" % i
        check(proc.returncode == 0 and out == expected,
              "client %d: exit %d stdout %r stderr %r" % (i, proc.returncode, out, err))
    check(len(h.logins(ok=1)) == 20, "20 logins expected, got %d" % len(h.logins(ok=1)))


@case
def case_client_gone_aborts_command():
    h = Harness().start()
    slow = h.ssh_popen("alice", "slow", "60000", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    h.wait_log(r"ssh exec user=alice .* command=slow")
    slow.kill()
    slow.wait(timeout=10)
    h.wait_log(r"^abort command=slow$", timeout=10)
    big = h.ssh_popen("bob", "big", "1000000000", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(len(big.stdout.read(1 << 20)) == 1 << 20, "big did not start")
    big.kill()
    big.wait(timeout=10)
    h.wait_log(r"^abort command=big sent=\d+$", timeout=10)
    check(h.log_text().count("abort command=") == 2, "on_abort ran more than once")
    wait_for("the sessions to be freed",
             lambda: h.ssh("alice", "sessions")[1] == b"1\n", timeout=10, interval=0.2)


@case
def case_max_sessions():
    h = Harness(max_sessions=3).start()
    idle = [socket.create_connection(("127.0.0.1", h.port), timeout=5) for _ in range(3)]
    wait_for("three connections", lambda: h.log_text().count("ssh connection addr=") >= 3)
    status, out, err = h.ssh("alice", "echo", "x")
    check(status == 255 and out == b"", "over the limit: status %d stdout %r" % (status, out))
    check(h.logins(reason="busy"), "no busy report")
    for sock in idle:
        sock.close()
    wait_for("room again", lambda: h.ssh("alice", "echo", "room")[1] == b"room\n", timeout=10,
             interval=0.2)


@case
def case_stop_with_sessions_open():
    h = Harness().start()
    slow = h.ssh_popen("alice", "slow", "60000", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h.wait_log(r"ssh exec user=alice .* command=slow")
    h.stop()  # checks exit status 0: every handle closed, nothing leaked
    slow.wait(timeout=20)
    check(slow.returncode == 255, "client of a stopped relay exited %d" % slow.returncode)
    check("abort command=slow" in h.log_text(), "the running command was not aborted")


def setup_globals(harness, work):
    global HARNESS, WORK
    HARNESS, WORK = harness, work


def stop_harnesses():
    for h in HARNESSES:
        h.stop()


def stop_harnesses_after_failure():
    for h in HARNESSES:
        try:
            h.stop()
        except Failure as stop_failure:
            print("also: %s" % stop_failure)


if __name__ == "__main__":
    sys.exit(tlcase.main("ssh_front.py HARNESS", "tl-ssh-front-", setup_globals, started=STARTED,
                         passed=stop_harnesses, failed=stop_harnesses_after_failure, tail=60))
