#!/usr/bin/env python3
"""The technician console (tierline) against a real relay: real processes on
loopback, real SSH, real SQLite files, pseudo-terminals where a person would
sit. Each case runs in its own process:

    console.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import base64
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
import zlib

import tlcase
from tlcase import Failure, case, check, fingerprint, free_port, run, wait_for

BIN = None
WORK = None
STARTED = []  # processes to kill if a case fails half way
PTY_CHILDREN = []


class Relay:
    """A relay with an SSH front end on loopback, and technicians with their own keys."""

    def __init__(self, name="relay", **users):
        self.dir = os.path.join(WORK, name)
        self.port = free_port()
        self.ssh_port = free_port()
        self.log_path = os.path.join(WORK, name + ".log")
        self.proc = None
        self.keys = {}
        out, _ = run(BIN + "/tierline-relay", "init", "--data", self.dir, "--listen",
                     "127.0.0.1:%d" % self.port)
        self.fingerprint = re.search(r"fingerprint: (SHA256:\S+)", out).group(1)
        for user, role in users.items():
            self.add_user(user, role)

    def add_user(self, name, role):
        """Before start(): a running relay takes up to a second to see a new account."""
        self.keys[name] = keygen(name)
        run(BIN + "/tierline-relay", "user", "add", name, "--role", role, "--key",
            self.keys[name] + ".pub", "--data", self.dir)
        return self.keys[name]

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-relay", "serve", "--data", self.dir, "--listen",
             "127.0.0.1:%d" % self.port, "--ssh-listen", "127.0.0.1:%d" % self.ssh_port,
             "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        STARTED.append(self.proc)
        # The log, not a probe: a probe connection would count as a failed login.
        wait_for("the relay to listen",
                 lambda: ("technicians' SSH listening" in self.log_text() and
                          "relay listening" in self.log_text()) or self.proc.poll() is not None)
        check(self.proc.poll() is None, "relay exited: " + self.log_text())
        return self

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def ssh(self, user, *command):
        """The stock OpenSSH client, for comparison: (status, stdout bytes, stderr text)."""
        proc = subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(self.ssh_port), "-i", self.keys[user],
             "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", user + "@127.0.0.1", *command],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=clean_env())
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def ticket(self, ticket_id):
        out, _ = run(BIN + "/tierline-relay", "ticket", "show", ticket_id, "--data", self.dir,
                     "--json")
        return json.loads(out)

    def exec_lines(self):
        return [line for line in self.log_text().splitlines() if " ssh exec user=" in line]


def keygen(name):
    path = os.path.join(WORK, name)
    return path if os.path.exists(path) else tlcase.keygen(path, name)


def make_ticket(relay, text="printer says offline"):
    """An enrolled machine opens a ticket with its diagnostics: (ticket id, evidence sha256)."""
    state = os.path.join(WORK, "agent")
    code, _ = run(BIN + "/tierline-relay", "enroll-code", "--data", relay.dir, "--ttl", "10m")
    run(BIN + "/tierline-agent", "enroll", code.strip(), "--state", state)
    out, err = run(BIN + "/tierline-agent", "help", text, "--state", state, "--wait-ms", "20000",
                   timeout=120)
    match = re.search(r"sha256 ([0-9a-f]{64})\)", err)
    check(match is not None and re.fullmatch(r"T-\d+", out.strip()),
          "help did not open a ticket: %r %r" % (out, err))
    return out.strip(), match.group(1)


def clean_env(**extra):
    """The console's environment: its own HOME and config directory, no TIERLINE_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env["HOME"] = WORK
    env["XDG_CONFIG_HOME"] = os.path.join(WORK, "xdg")
    env["XDG_CACHE_HOME"] = os.path.join(WORK, "cache")
    env.update(extra)
    return env


def relay_env(relay, user="alice", pin=True, **extra):
    """Settings for relay by environment variables."""
    env = clean_env(TIERLINE_RELAY="127.0.0.1:%d" % relay.ssh_port, TIERLINE_USER=user,
                    TIERLINE_IDENTITY=relay.keys[user])
    if pin:
        env["TIERLINE_HOST_KEY"] = relay.fingerprint
    env.update(extra)
    return env


def config_path():
    return os.path.join(WORK, "xdg", "tierline", "config")


def console(*args, env, stdin=subprocess.DEVNULL, input=None, timeout=120):
    """Runs tierline to completion: (status, stdout bytes, stderr text)."""
    proc = subprocess.run([BIN + "/tierline", *args], stdin=None if input is not None else stdin,
                          input=input, capture_output=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def expect(result, status, what):
    got, out, err = result
    check(got == status, "%s: exit %d, expected %d\nstdout: %r\nstderr: %s" %
          (what, got, status, out[:2000], err))
    return out, err


class Pty:
    """A program on a new pseudo-terminal (stdin, stdout and stderr), driven like a person."""

    def __init__(self, argv, env, cols=80, rows=24):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        PTY_CHILDREN.append(self.pid)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = b""
        self.status = None

    def _read(self, done, timed_out, closed, timeout):
        """Reads the terminal until done(): a Failure saying timed_out, or closed
        if the terminal closes first (None: closing is the end). The deadline."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s; it shows:\n%s" % (timed_out, self.text()))
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if closed is None:
                        break
                    raise Failure("%s; it shows:\n%s" % (closed, self.text()))
                self.output += chunk
        return deadline

    def read_until(self, token, timeout=60.0):
        self._read(lambda: token in self.output,
                   "timed out waiting for %r on the terminal" % (token,),
                   "the terminal closed before %r" % (token,), timeout)
        return self.output

    def read_more(self, after, timeout=60.0):
        """Waits until the terminal shows something past byte offset after."""
        self._read(lambda: len(self.output) > after, "timed out waiting for more on the terminal",
                   "the terminal closed", timeout)
        return self.output

    def write(self, data):
        os.write(self.fd, data)

    def finish(self, timeout=60.0):
        """Reads to the end and waits for the program: its exit status."""
        deadline = self._read(lambda: False, "the program on the terminal did not end", None,
                              timeout)
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() > deadline:
                raise Failure("the program on the terminal did not exit")
            time.sleep(0.05)
        PTY_CHILDREN.remove(self.pid)
        os.close(self.fd)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def text(self):
        return self.output.decode(errors="replace")


def console_pid(shell_pid):
    """The pid of the tierline that the test shell shell_pid is running, or None."""
    try:
        with open("/proc/%d/task/%d/children" % (shell_pid, shell_pid)) as f:
            children = [int(pid) for pid in f.read().split()]
    except OSError:
        return None
    for pid in children:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if f.read().split(b"\0")[0] == (BIN + "/tierline").encode():
                    return pid
        except OSError:
            pass
    return None


# ---- commands pass through ---------------------------------------------------------------

@case
def case_tickets_match_ssh():
    relay = Relay(alice="tier1").start()
    ticket_id, _ = make_ticket(relay)
    env = relay_env(relay)
    for args in (["tickets"], ["tickets", "--json"], ["ticket", "show", ticket_id],
                 ["evidence", ticket_id]):
        out, err = expect(console(*args, env=env), 0, " ".join(args))
        status, ssh_out, ssh_err = relay.ssh("alice", *args)
        check(status == 0, "ssh %s: exit %d %s" % (args, status, ssh_err))
        check(out == ssh_out, "tierline %s differs from ssh:\n%r\n%r" % (args, out, ssh_out))
        check(err == "", "tierline %s wrote to stderr: %r" % (args, err))
    tickets = json.loads(console("tickets", "--json", env=env)[1])["tickets"]
    check([t["id"] for t in tickets] == [ticket_id], "tickets --json: %r" % tickets)


@case
def case_exit_statuses_pass_through():
    relay = Relay(alice="tier2", audrey="auditor").start()
    ticket_id, _ = make_ticket(relay)
    env = relay_env(relay)
    # A word the console does not know is refused at home; the relay's own usage errors come back.
    out, err = expect(console("no-such-command", env=env), 2, "unknown command")
    check("unknown command 'no-such-command'" in err and out == b"", "unknown: %r" % err)
    check(relay.exec_lines() == [], "an unknown command reached the relay")
    out, err = expect(console("ticket", "frobnicate", ticket_id, env=env), 2, "unknown subcommand")
    check("unknown command 'ticket frobnicate'" in err and "usage: tierline ticket show" in err and
          out == b"", "unknown subcommand: %r" % err)
    check(relay.exec_lines() == [], "an unknown subcommand reached the relay")
    out, err = expect(console("tickets", "--bogus", env=env), 2, "bad option")
    check("usage: tickets" in err, "bad option: %r" % err)
    out, err = expect(console("ticket", "show", "T-999", env=env), 1, "missing ticket")
    check("no ticket T-999" in err, "missing ticket: %r" % err)
    out, err = expect(console("ticket", "take", "T-x", env=env), 2, "bad argument")
    check("usage:" in err, "bad argument: %r" % err)
    out, err = expect(console("ticket", "take", ticket_id, env=relay_env(relay, "audrey")), 77,
                      "auditor taking a ticket")
    check("permission denied" in err and out == b"", "denied: %r" % err)
    check(relay.ticket(ticket_id)["assignee"] is None, "a denied take changed the ticket")
    out, err = expect(console("ticket", "take", ticket_id, env=env), 0, "take")
    check(out == ("%s assigned to alice\n" % ticket_id).encode(), "take: %r" % out)


@case
def case_json_passes_through():
    relay = Relay(alice="tier2").start()
    key = relay.keys["alice"]
    out, _ = expect(console("whoami", "--json", env=relay_env(relay)), 0, "whoami --json")
    me = json.loads(out)
    check(me["name"] == "alice" and me["role"] == "tier2" and me["key"] == fingerprint(key),
          "whoami: %r" % me)
    check("run" in me["capabilities"], "capabilities: %r" % me["capabilities"])


@case
def case_words_reach_the_relay_exactly():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    # Quotes, backslashes, a tab, a newline, shell characters and runs of spaces in one word:
    # were it split, the note (its words joined by single spaces) would come back different.
    text = "it's a \"quoted\" \\ back\tslash\nand  $HOME *  ~ `x` 'single'  ;|&"
    expect(console("ticket", "note", ticket_id, text, env=relay_env(relay)), 0, "note")
    notes = [e["details"]["text"] for e in relay.ticket(ticket_id)["events"] if e["kind"] == "note"]
    check(notes == [text], "the note came back as %r, sent %r" % (notes, text))
    # A control character the relay refuses is refused here, before anything is sent.
    before = len(relay.exec_lines())
    out, err = expect(console("ticket", "note", ticket_id, "bell\x07", env=relay_env(relay)), 2,
                      "control character")
    check("argument 4 holds a control character" in err, "control character: %r" % err)
    check(len(relay.exec_lines()) == before, "a refused line reached the relay")


@case
def case_stdin_is_forwarded_with_its_end():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    start_agent(relay, {"unattended": [{"roles": ["tier2"], "scopes": ["exec"]}]})
    data = os.urandom(3 * 1024 * 1024 + 17)
    out, err = expect(console("run", ticket_id, "--", "cat", env=relay_env(relay), input=data),
                      0, "run cat")
    check(hashlib.sha256(out).hexdigest() == hashlib.sha256(data).hexdigest(),
          "cat gave back %d bytes, sent %d" % (len(out), len(data)))
    # The command's own status comes back, and empty input is an immediate end.
    expect(console("run", ticket_id, "--", "sh", "-c", "cat; exit 7", env=relay_env(relay),
                   input=b""), 7, "exit 7")


@case
def case_audit_verify_sends_a_kept_checkpoint_file():
    """`tierline audit verify --from-checkpoint FILE` reads FILE and sends it as the command's
    stdin with `-` (the relay cannot read the auditor's files); `-` passes this stdin through."""
    relay = Relay(audrey="auditor").start()
    env = relay_env(relay, user="audrey")
    # A new relay has signed nothing yet; `audit verify` signs what it wrote first.
    expect(console("audit", "verify", env=env), 0, "audit verify")
    kept, _ = expect(console("audit", "checkpoint", env=env), 0, "audit checkpoint")
    path = os.path.join(WORK, "kept.note")
    with open(path, "wb") as f:
        f.write(kept)
    out, _ = expect(console("audit", "verify", "--from-checkpoint", path, env=env), 0,
                    "verify --from-checkpoint FILE")
    check(b"your checkpoint OK" in out, "verify: %r" % out)
    out, _ = expect(console("audit", "verify", "--from-checkpoint", path, "--json", env=env), 0,
                    "verify --json")
    verdict = json.loads(out)
    check(verdict["ok"] is True and verdict["from_checkpoint"]["ok"] is True and
          verdict["from_checkpoint"]["size"] == int(kept.split(b"\n")[1]), "verdict: %r" % verdict)
    out, _ = expect(console("audit", "verify", "--from-checkpoint", "-", env=env, input=kept), 0,
                    "verify --from-checkpoint -")
    check(b"your checkpoint OK" in out, "verify -: %r" % out)
    # Bad input: a missing file, no FILE, a file that is no note; the relay is asked nothing for
    # the first two.
    before = len(relay.exec_lines())
    _, err = expect(console("audit", "verify", "--from-checkpoint", path + ".missing", env=env),
                    2, "missing file")
    check("cannot read " + path + ".missing" in err, "missing: %r" % err)
    _, err = expect(console("audit", "verify", "--from-checkpoint", env=env), 2, "no FILE")
    check("--from-checkpoint needs one FILE" in err, "no FILE: %r" % err)
    check(len(relay.exec_lines()) == before, "a refused command reached the relay")
    junk = os.path.join(WORK, "junk.note")
    with open(junk, "wb") as f:
        f.write(b"hello\n")
    _, err = expect(console("audit", "verify", "--from-checkpoint", junk, env=env), 2, "junk")
    check("not a checkpoint note" in err, "junk: %r" % err)


@case
def case_keepalives_notice_a_relay_that_stopped_answering():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    start_agent(relay, {"unattended": [{"roles": ["tier2"], "scopes": ["exec"]}]})
    env = relay_env(relay, TIERLINE_KEEPALIVE="1")
    # A command silent for longer than three keepalives: the relay answers them, so it runs on.
    expect(console("run", ticket_id, "--", "sh", "-c", "sleep 4; echo done", env=env), 0,
           "a silent command")
    # The relay stops (as a dead network would look): the console gives up within seconds.
    proc = subprocess.Popen([BIN + "/tierline", "run", ticket_id, "--", "sleep", "60"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    STARTED.append(proc)
    stopped = False
    try:
        # Running on the machine: the agent's second exec session has started.
        def agent_sessions():
            with open(os.path.join(WORK, "agent.log"), errors="replace") as f:
                return f.read().count("session started channel=")
        wait_for("the command to start", lambda: agent_sessions() >= 2)
        relay.proc.send_signal(signal.SIGSTOP)
        stopped = True
        proc.wait(timeout=30)
        err = proc.stderr.read().decode(errors="replace")
    finally:
        if stopped:
            relay.proc.send_signal(signal.SIGCONT)
    check(proc.returncode == 255 and "stopped answering" in err,
          "console with a stopped relay: %r %r" % (proc.returncode, err))
    # A bad setting is named.
    _, err = expect(console("whoami", env=relay_env(relay, TIERLINE_KEEPALIVE="soon")), 2,
                    "a bad keepalive")
    check("TIERLINE_KEEPALIVE" in err and "not a number of seconds" in err, err)


# ---- settings -------------------------------------------------------------------------------

def write_config(text):
    os.makedirs(os.path.dirname(config_path()), exist_ok=True)
    with open(config_path(), "w") as f:
        f.write(text)


def whoami(env, *options):
    status, out, err = console(*options, "whoami", "--json", env=env)
    check(status == 0, "whoami %s: exit %d: %s" % (" ".join(options), status, err))
    return json.loads(out)["name"]


@case
def case_settings_file_then_env_then_command_line():
    relay = Relay(alice="tier1", carol="tier1", dave="tier1").start()
    wrong_port = free_port()
    write_config("# the console's settings\n\n"
                 "relay = 127.0.0.1\nport = %d\nuser = alice\nidentity = %s\nhost_key = %s\n"
                 % (relay.ssh_port, relay.keys["alice"], relay.fingerprint))
    base = clean_env()
    check(whoami(base) == "alice", "the file alone")
    env = clean_env(TIERLINE_USER="carol", TIERLINE_IDENTITY=relay.keys["carol"])
    check(whoami(env) == "carol", "the environment over the file")
    check(whoami(env, "--user", "dave", "--identity", relay.keys["dave"]) == "dave",
          "the command line over the environment")
    check(whoami(env, "--user=dave", "--identity=" + relay.keys["dave"]) == "dave",
          "--option=value")
    # The port: the file's is wrong, the environment's right, the command line's wrong again.
    write_config("relay = 127.0.0.1:%d\nuser = alice\nidentity = %s\nhost_key = %s\n"
                 % (wrong_port, relay.keys["alice"], relay.fingerprint))
    out, err = expect(console("whoami", env=base), 255, "the file's wrong port")
    check("cannot connect to the relay at 127.0.0.1:%d" % wrong_port in err, err)
    env = clean_env(TIERLINE_PORT=str(relay.ssh_port))
    check(whoami(env) == "alice", "TIERLINE_PORT over the file")
    out, err = expect(console("--relay", "127.0.0.1:%d" % wrong_port, "whoami", env=env), 255,
                      "--relay over TIERLINE_PORT")
    check("127.0.0.1:%d" % wrong_port in err, err)
    # A pin from the command line beats a wrong one in the environment.
    env = clean_env(TIERLINE_PORT=str(relay.ssh_port),
                    TIERLINE_HOST_KEY="SHA256:" + "A" * 43)
    expect(console("whoami", env=env), 255, "a wrong pin in the environment")
    check(whoami(env, "--host-key", relay.fingerprint) == "alice", "--host-key over the env")


@case
def case_malformed_settings_are_named():
    relay = Relay(alice="tier2").start()
    good = ("relay = 127.0.0.1\nport = %d\nuser = alice\nidentity = %s\nhost_key = %s\n"
            % (relay.ssh_port, relay.keys["alice"], relay.fingerprint))
    for line, needle in (("relay 127.0.0.1", "expected 'key = value'"),
                         ("colour = blue", "unknown setting 'colour'"),
                         ("port = 99999", "not a port"),
                         ("host_key = SHA256:short", "not a host key fingerprint"),
                         ("user =", "no value for 'user'"),
                         ("port = 2222", "'port' is set twice")):
        write_config("# settings\n" + good + line + "\n")
        out, err = expect(console("whoami", env=clean_env()), 2, "config line %r" % line)
        where = "%s:7:" % config_path()
        check(where in err and needle in err and out == b"",
              "config line %r: %r (want %s ... %s)" % (line, err, where, needle))
    write_config("x" * 5000 + "\n")
    out, err = expect(console("whoami", env=clean_env()), 2, "over-long line")
    check("%s:1: line longer than" % config_path() in err, err)
    write_config(good)
    for variable, value in (("TIERLINE_PORT", "port"), ("TIERLINE_RELAY", "a b"),
                            ("TIERLINE_HOST_KEY", "MD5:xx")):
        out, err = expect(console("whoami", env=clean_env(**{variable: value})), 2, variable)
        check(err.startswith("tierline: %s:" % variable), "%s: %r" % (variable, err))
    out, err = expect(console("--relay", "[::1", "whoami", env=clean_env()), 2, "--relay [::1")
    check("--relay:" in err, err)
    out, err = expect(console("--bogus", "whoami", env=clean_env()), 2, "unknown option")
    check("unknown option '--bogus'" in err, err)
    check(relay.exec_lines() == [] and "ssh login" not in relay.log_text(),
          "a malformed setting still reached the relay")
    check(whoami(clean_env()) == "alice", "the good file after all that")


@case
def case_setup_writes_a_private_config():
    relay = Relay(alice="tier2").start()
    out, err = expect(console("setup", "--relay", "127.0.0.1:%d" % relay.ssh_port, "--user",
                              "alice", "--identity", relay.keys["alice"], "--host-key",
                              relay.fingerprint, env=clean_env()), 0, "setup")
    path = config_path()
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "config mode %o" % os.stat(path).st_mode)
    check(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700, "config dir mode")
    check(relay.fingerprint in out.decode(), "setup did not show the pin: %r" % out)
    check(whoami(clean_env()) == "alice", "whoami with the written config")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write("# mine, keep me\n" + text)
    # The same relay again keeps the pin and the comment; another relay drops the pin.
    expect(console("setup", "--relay", "127.0.0.1:%d" % relay.ssh_port, "--user", "alice",
                   env=clean_env()), 0, "setup again")
    with open(path) as f:
        text = f.read()
    check("# mine, keep me" in text and relay.fingerprint in text, "setup lost lines:\n" + text)
    out, _ = expect(console("setup", "--relay", "other.example:2200", "--user", "alice",
                            env=clean_env()), 0, "setup for another relay")
    with open(path) as f:
        text = f.read()
    check("host_key" not in text and "relay = other.example" in text and "port = 2200" in text,
          "the old pin survived a new relay:\n" + text)
    # Bad input changes nothing.
    for args, needle in ((["--relay", "127.0.0.1:1"], "--relay and --user are required"),
                         (["--relay", "a b", "--user", "x"], "--relay:"),
                         (["--relay", "h", "--user", "x", "--host-key", "nope"], "--host-key:"),
                         (["--relay", "h", "--user", "x", "--colour", "red"], "unknown option")):
        _, err = expect(console("setup", *args, env=clean_env()), 2, "setup %s" % args)
        check(needle in err, "setup %s: %r" % (args, err))
        with open(path) as f:
            check(f.read() == text, "setup %s changed the file" % args)


# ---- shell completion --------------------------------------------------------------------

def bash_complete(env, *words):
    """What bash offers for the last of words, through `tierline completion bash`."""
    script = ('source <("$TL" completion bash) || exit 9\n'
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _tierline_complete\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = dict(env, TL=BIN + "/tierline", PATH=BIN + ":" + env.get("PATH", ""))
    proc = subprocess.run(["bash", "-c", script, "bash", "tierline", *words], env=env,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    check(proc.returncode == 0, "bash: %d %r" % (proc.returncode, proc.stderr))
    return [w for w in proc.stdout.decode().split("\n") if w]


@case
def case_bash_completes_commands_and_options_offline():
    relay = Relay(alice="tier1").start()
    env = relay_env(relay)
    # Before the relay was asked: the built-in list, without connecting.
    check(bash_complete(env, "ru") == ["run", "runbook", "runbooks"], "first word: %r" %
          bash_complete(env, "ru"))
    check(bash_complete(env, "ticket", "es") == ["escalate"], "a group's second word")
    check(bash_complete(env, "report", "--") == ["--csv", "--help", "--json", "--since",
                                                "--until"], "options: %r" %
          bash_complete(env, "report", "--"))
    check(bash_complete(env, "evidence", "get", "T-1", "-") == ["--help", "--output"],
          "the console's own options: %r" % bash_complete(env, "evidence", "get", "T-1", "-"))
    check(bash_complete(env, "--u") == ["--user"], "global options")
    check(bash_complete(env, "--relay", "h", "tick") == ["ticket", "tickets"],
          "after global options")
    check(bash_complete(env, "ticket", "note", "T-1", "some") == [], "a positional")
    check(relay.exec_lines() == [], "completion connected to the relay")
    # Once the relay listed alice's commands, completion offers those only: tier 1 has no run.
    expect(console("help", env=env), 0, "help")
    check(bash_complete(env, "ru") == ["runbooks"], "after help: %r" % bash_complete(env, "ru"))
    # Bad input: another shell is refused; a bad word number gives nothing.
    out, err = expect(console("completion", "zsh", env=env), 2, "completion zsh")
    check(out == b"" and "only bash" in err, "zsh: %r" % err)
    for words in (["0", "tierline"], ["5", "tierline"], ["x"], []):
        out, _ = expect(console("__complete", *words, env=env), 2, "__complete %r" % words)
        check(out == b"", "__complete %r printed %r" % (words, out))


# ---- the relay's host key ----------------------------------------------------------------

@case
def case_pinned_key_mismatch_refused_and_nothing_runs():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    wrong = "SHA256:" + base64_43(hashlib.sha256(b"another relay").digest())
    out, err = expect(console("ticket", "note", ticket_id, "should", "not", "happen",
                              env=relay_env(relay, TIERLINE_HOST_KEY=wrong)), 255, "wrong pin")
    check(out == b"" and relay.fingerprint in err and wrong in err and "TIERLINE_HOST_KEY" in err,
          "the refusal does not show both keys: %s" % err)
    check("host key verification failed" in err, err)
    check(not any(e["kind"] == "note" for e in relay.ticket(ticket_id)["events"]),
          "the command ran despite the wrong key")
    check(relay.exec_lines() == [] and "ssh login user=alice" not in relay.log_text(),
          "the console signed in to a relay with the wrong key")
    write_config("host_key = %s\n" % wrong)
    out, err = expect(console("tickets", env=relay_env(relay, pin=False)), 255, "pin in the file")
    check(config_path() in err, "the refusal does not say where the pin came from: " + err)


def base64_43(digest):
    return base64.b64encode(digest).decode().rstrip("=")


@case
def case_no_pin_without_terminal_refused_with_instructions():
    relay = Relay(alice="tier2").start()
    out, err = expect(console("tickets", env=relay_env(relay, pin=False)), 255, "no pin")
    check(out == b"" and relay.fingerprint in err, "no fingerprint shown: " + err)
    check("--host-key" in err and "tierline setup" in err, "no instructions: " + err)
    check(not os.path.exists(config_path()), "a key was saved without asking")
    check(relay.exec_lines() == [], "a command ran on an unknown relay")


@case
def case_no_pin_at_a_terminal_asks_and_saves():
    relay = Relay(alice="tier2").start()
    env = relay_env(relay, pin=False)
    # No: nothing is saved and nothing runs.
    term = Pty([BIN + "/tierline", "tickets"], env)
    term.read_until(b"[y/N] ")
    check(relay.fingerprint.encode() in term.output, "the prompt does not show the key")
    term.write(b"n\n")
    check(term.finish() == 255, "answering no: exit %s" % term.status)
    check(not os.path.exists(config_path()) and relay.exec_lines() == [],
          "answering no saved the key or ran the command")
    # Yes: the command runs and the key is saved with the relay's address.
    term = Pty([BIN + "/tierline", "tickets"], env)
    term.read_until(b"Trust this relay and save its key? [y/N] ")
    term.write(b"y\n")
    check(term.finish() == 0, "answering yes: exit %s\n%s" % (term.status, term.text()))
    check("ID      SEV TIER STATUS" in term.text(), "tickets did not run: " + term.text())
    with open(config_path()) as f:
        text = f.read()
    check("host_key = %s\n" % relay.fingerprint in text, "key not saved:\n" + text)
    check("port = %d\n" % relay.ssh_port in text, "relay address not saved with the key:\n" + text)
    check(stat.S_IMODE(os.stat(config_path()).st_mode) == 0o600, "config not 0600")
    # The second time: no question.
    term = Pty([BIN + "/tierline", "tickets"], env)
    check(term.finish() == 0 and b"[y/N]" not in term.output,
          "asked again: exit %s\n%s" % (term.status, term.text()))


# ---- signing in ------------------------------------------------------------------------------

@case
def case_wrong_identity_is_a_clear_auth_error():
    relay = Relay(alice="tier2").start()
    stranger = keygen("stranger")
    out, err = expect(console("tickets", env=relay_env(relay, TIERLINE_IDENTITY=stranger)), 255,
                      "unregistered key")
    check(out == b"" and "refused user 'alice'" in err and fingerprint(stranger) in err,
          "unclear auth error: " + err)
    out, err = expect(console("tickets", env=relay_env(relay, TIERLINE_USER="mallory")), 255,
                      "unknown user")
    check("refused user 'mallory'" in err, err)
    missing = os.path.join(WORK, "no-such-key")
    out, err = expect(console("tickets", env=relay_env(relay, TIERLINE_IDENTITY=missing)), 255,
                      "missing identity")
    check("cannot read the identity %s" % missing in err, err)
    garbage = os.path.join(WORK, "garbage-key")
    with open(garbage, "w") as f:
        f.write("not a key\n")
    out, err = expect(console("tickets", env=relay_env(relay, TIERLINE_IDENTITY=garbage)), 255,
                      "garbage identity")
    check("is not a private key" in err, err)
    locked = os.path.join(WORK, "locked")
    tlcase.keygen(locked, passphrase="secret phrase")
    out, err = expect(console("tickets", env=relay_env(relay, TIERLINE_IDENTITY=locked)), 255,
                      "passphrase without a terminal")
    check("passphrase" in err and "no terminal" in err, err)
    check(relay.exec_lines() == [], "a command ran without a good key")
    out, err = expect(console("--relay", "127.0.0.1:%d" % free_port(), "tickets",
                              env=relay_env(relay)), 255, "nothing listening")
    check("cannot connect to the relay" in err, err)


# ---- evidence downloads ------------------------------------------------------------------

@case
def case_evidence_get_writes_the_exact_bytes():
    relay = Relay(alice="tier2").start()
    ticket_id, sha256 = make_ticket(relay)
    env = relay_env(relay)
    target = os.path.join(WORK, "diagnostics.json")
    out, err = expect(console("evidence", "get", ticket_id, sha256, "-o", target, env=env), 0,
                      "evidence get -o")
    with open(target, "rb") as f:
        data = f.read()
    check(hashlib.sha256(data).hexdigest() == sha256, "the file's hash is not the id")
    check(out == b"" and not os.path.exists(target + ".part"), "stdout %r or .part left" % out)
    check("\r" not in err and "\x1b" not in err and "%" not in err,
          "a progress bar on a stderr that is not a terminal: %r" % err)
    # A prefix will do; to stdout, the same bytes.
    out, err = expect(console("evidence", "get", ticket_id, sha256[:10], env=env), 0, "to stdout")
    check(out == data, "stdout differs from the file")
    check("evidence.get" in open(os.path.join(relay.dir, "audit.log")).read(), "not audited")


@case
def case_evidence_progress_bar_only_on_a_terminal():
    relay = Relay(alice="tier2").start()
    ticket_id, sha256 = make_ticket(relay)
    target = os.path.join(WORK, "out.json")
    master, slave = os.openpty()
    proc = subprocess.Popen([BIN + "/tierline", "evidence", "get", ticket_id, sha256, "-o",
                             target], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=relay_env(relay))
    STARTED.append(proc)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            shown += chunk
    os.close(master)
    check(proc.wait(timeout=30) == 0, "exit %s: %r" % (proc.returncode, shown))
    text = shown.decode(errors="replace")
    check(re.search(r"\r\x1b\[K +[0-9.]+ (B|KiB) / [0-9.]+ KiB +\d+% \[", text),
          "no progress bar on the terminal: %r" % text)
    check(text.rstrip("\r\n").split("\r\x1b[K")[-1].startswith("Saved "),
          "the bar was not cleared before the last line: %r" % text)
    with open(target, "rb") as f:
        check(hashlib.sha256(f.read()).hexdigest() == sha256, "bytes differ")


@case
def case_evidence_get_bad_input_leaves_nothing():
    relay = Relay(alice="tier2").start()
    ticket_id, sha256 = make_ticket(relay)
    env = relay_env(relay)
    target = os.path.join(WORK, "item")
    for args, status, needle in (
            ([ticket_id, "0" * 64, "-o", target], 1, "no evidence"),
            ([ticket_id, sha256[:6], "-o", target], 2, "not an evidence id"),
            ([ticket_id, sha256.upper(), "-o", target], 2, "not an evidence id"),
            (["T-999", sha256, "-o", target], 1, "no ticket T-999"),
            ([ticket_id, "-o", target], 2, "usage:"),
            ([ticket_id, sha256, "extra", "-o", target], 2, "unexpected argument"),
            ([ticket_id, sha256, "-o"], 2, "needs one FILE"),
            ([ticket_id, sha256, "-o", target, "-o", target], 2, "needs one FILE"),
            ([ticket_id, sha256, "--bogus", "-o", target], 2, "unknown option")):
        out, err = expect(console("evidence", "get", *args, env=env), status,
                          "evidence get %s" % args)
        check(needle in err and out == b"", "evidence get %s: %r" % (args, err))
        check(not os.path.exists(target) and not os.path.exists(target + ".part"),
              "evidence get %s left a file" % args)
    nowhere = os.path.join(WORK, "no-such-dir", "item")
    out, err = expect(console("evidence", "get", ticket_id, sha256, "-o", nowhere, env=env), 1,
                      "unwritable output")
    check("cannot write" in err, err)


@case
def case_damaged_evidence_leaves_no_file():
    relay = Relay(alice="tier2").start()
    ticket_id, sha256 = make_ticket(relay)
    # Same size, other bytes: the download runs to the end and must then be thrown away.
    path = os.path.join(relay.dir, "evidence", sha256[:2], sha256)
    with open(path, "rb") as f:
        size = len(zlib.decompress(f.read()))
    with open(path, "wb") as f:
        f.write(zlib.compress(b"x" * size))
    target = os.path.join(WORK, "item")
    out, err = expect(console("evidence", "get", ticket_id, sha256, "-o", target,
                              env=relay_env(relay)), 1, "damaged item")
    check("damaged" in err, err)
    check(not os.path.exists(target) and not os.path.exists(target + ".part"),
          "a damaged download was kept")


# ---- join ----------------------------------------------------------------------------------

@case
def case_join_without_a_terminal_refused():
    # Nothing listens there: exit 2 (not 255) shows the console did not even try to connect.
    env = clean_env(TIERLINE_RELAY="127.0.0.1:%d" % free_port(), TIERLINE_USER="alice")
    out, err = expect(console("join", "T-1", env=env), 2, "join without a terminal")
    check("needs a terminal" in err and out == b"", err)
    master, slave = os.openpty()
    try:
        proc = subprocess.run([BIN + "/tierline", "join", "T-1"], stdin=slave,
                              capture_output=True, env=env, timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    check(proc.returncode == 2 and b"needs a terminal" in proc.stderr,
          "join with stdout not a terminal: %d %r" % (proc.returncode, proc.stderr))


def stty_lines(text):
    return re.findall(r"^STTY (\S+)\r?$", text, re.M)


@case
def case_join_restores_the_terminal_after_an_error():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)  # the agent is not running: the device is offline
    # The terminal starts in a mode of its own (no echo, odd erase key), which must come back.
    script = ("stty -echo erase '^H'; echo STTY $(stty -g); %s/tierline join %s; "
              "echo STATUS $?; echo STTY $(stty -g)" % (BIN, ticket_id))
    term = Pty(["/bin/sh", "-c", script], relay_env(relay))
    check(term.finish() == 0, "shell exit %s" % term.status)
    text = term.text()
    modes = stty_lines(text)
    status = re.search(r"STATUS (\d+)", text)
    check(len(modes) == 2 and modes[0] == modes[1],
          "the terminal changed: before %s after %s\n%s" % (modes[:1], modes[1:], text))
    check(status is not None and status.group(1) not in ("0", "255"),
          "join against an offline machine: %s\n%s" % (status and status.group(1), text))
    check("offline" in text, "no reason shown:\n" + text)
    check(any("command=join" in line for line in relay.exec_lines()),
          "join never reached the relay")


def start_agent(relay, policy=None):
    state = os.path.join(WORK, "agent")
    if policy is not None:
        with open(os.path.join(state, "policy.json"), "w") as f:
            json.dump(policy, f)
    log = open(os.path.join(WORK, "agent.log"), "a")
    # A plain shell for shell sessions: a login shell's start-up files belong
    # to the machine and may be slow or noisy.
    agent = subprocess.Popen([BIN + "/tierline-agent", "run", "--state", state, "--log-level",
                              "debug", "--shell", "/bin/sh"],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    STARTED.append(agent)
    wait_for("the agent to connect", lambda: json.loads(run(
        BIN + "/tierline-agent", "status", "--state", state, "--json")[0]).get("connected"))
    return agent, state


def pending_questions(state):
    return json.loads(run(BIN + "/tierline-agent", "pending", "--state", state, "--json")[0])


@case
def case_join_restores_the_terminal_on_sigterm():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    _, state = start_agent(relay)  # attended: the console waits for the user's answer
    script = ("echo STTY $(stty -g); %s/tierline join %s; echo STATUS $?; echo STTY $(stty -g)"
              % (BIN, ticket_id))
    term = Pty(["/bin/sh", "-c", script], relay_env(relay))
    term.read_until(b"STTY ")
    wait_for("the consent question", lambda: pending_questions(state))
    pid = wait_for("the console's pid", lambda: console_pid(term.pid))
    os.kill(pid, signal.SIGTERM)
    check(term.finish() == 0, "shell exit %s" % term.status)
    text = term.text()
    modes = stty_lines(text)
    check(len(modes) == 2 and modes[0] == modes[1], "the terminal changed:\n" + text)
    check("STATUS 143" in text and "interrupted" in text, "SIGTERM: %s" % text)
    wait_for("the question to be withdrawn", lambda: pending_questions(state) == [])


@case
def case_join_session_sizes_and_status():
    relay = Relay(alice="tier2").start()
    ticket_id, _ = make_ticket(relay)
    _, state = start_agent(relay)
    script = ("echo STTY $(stty -g); %s/tierline join %s; echo STATUS $?; echo STTY $(stty -g)"
              % (BIN, ticket_id))
    env = relay_env(relay, TERM="xterm")
    term = Pty(["/bin/sh", "-c", script], env, cols=100, rows=30)
    question = wait_for("the consent question", lambda: pending_questions(state))[0]["id"]
    run(BIN + "/tierline-agent", "approve", question, "--state", state)
    granted = b"(by user)\r\n"
    end_of_grant = term.read_until(granted).index(granted) + len(granted)
    pid = wait_for("the console's pid", lambda: console_pid(term.pid))
    # A window-change with the size it already has (the agent's shell says nothing before
    # its first one, with ssh -t too); then the shell's prompt says it is ready to read.
    os.kill(pid, signal.SIGWINCH)
    term.read_more(end_of_grant)
    term.write(b"stty size; echo MARK$((6*7))\r")
    term.read_until(b"MARK42")
    check(re.search(rb"\b30 100\r?\n", term.output), "the session's size: " + term.text())
    fcntl.ioctl(term.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    # The new size travels on its own; ask until the shell has it (each ask is bounded).
    for attempt in range(20):
        marker = b"R%d" % (1000 + attempt)
        term.write(b"stty size; echo R$((%d+%d))\r" % (1000, attempt))
        seen = term.read_until(marker + b"\r", timeout=20)
        if re.search(rb"\b40 120\r?\n", seen):
            break
    check(re.search(rb"\b40 120\r?\n", term.output), "the new size never arrived: " + term.text())
    term.write(b"exit 3\r")
    check(term.finish() == 0, "shell exit %s" % term.status)
    text = term.text()
    modes = stty_lines(text)
    check("STATUS 3" in text, "the shell's exit status did not come back: " + text)
    check(len(modes) == 2 and modes[0] == modes[1], "the terminal changed:\n" + text)


# ---- the relay's command list (docs/console.md) --------------------------------------------

def cache_file(relay, user="alice"):
    return os.path.join(WORK, "cache", "tierline",
                        "commands-%s@127.0.0.1-%d.json" % (user, relay.ssh_port))


def help_execs(relay):
    return [line for line in relay.exec_lines() if "command=help " in line]


def write_cache(relay, help_doc, user="alice", fetched_ms=None):
    """A cache file as the console writes it, fresh unless fetched_ms says otherwise."""
    path = cache_file(relay, user)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"version": 1, "relay": "127.0.0.1", "port": relay.ssh_port, "user": user,
                   "fetched_ms": int(time.time() * 1000) if fetched_ms is None else fetched_ms,
                   "help": help_doc}, f)
    return path


def relay_help_json(relay, user="alice"):
    status, out, err = relay.ssh(user, "help", "--json")
    check(status == 0, "ssh help --json: %d %s" % (status, err))
    return out


@case
def case_help_lists_the_relays_commands_and_caches_them():
    relay = Relay(alice="tier2", audrey="auditor").start()
    env = relay_env(relay)
    _, ssh_text, _ = relay.ssh("alice", "help")
    ssh_json = relay_help_json(relay)
    out, err = expect(console("help", env=env), 0, "help")
    check(out == ssh_text and err == "", "tierline help differs from ssh:\n%r\n%r\n%s" % (
        out, ssh_text, err))
    check(len(help_execs(relay)) == 3, "help did not ask the relay: %r" % relay.exec_lines())
    # The relay's answer is kept: private, for this relay and user, the document as it came.
    path = cache_file(relay)
    check(os.path.exists(path), "no cache file at %s: %r" % (path, os.listdir(WORK)))
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600 and
          stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700, "cache file modes")
    with open(path) as f:
        cached = json.load(f)
    check(cached["help"] == json.loads(ssh_json) and cached["user"] == "alice" and
          cached["port"] == relay.ssh_port and cached["version"] == 1, "cache: %r" % cached)
    # Reused: help and help --json answer from it without asking again ...
    out, _ = expect(console("help", "--json", env=env), 0, "help --json")
    check(out == ssh_json, "help --json differs from ssh:\n%r\n%r" % (out, ssh_json))
    check(len(help_execs(relay)) == 3, "a fresh cache was not used: %r" % relay.exec_lines())
    # ... COMMAND --help for a role that may not use it says so (the auditor's own list) ...
    audrey = relay_env(relay, "audrey")
    expect(console("help", env=audrey), 0, "audrey's help")
    out, _ = expect(console("run", "T-1", "--help", env=audrey), 0, "audrey's run --help")
    check(b"usage: tierline run T-N" in out and
          b"The relay does not list it for audrey (auditor)" in out, "run --help: %r" % out)
    # ... and with the relay gone, what it said is still there.
    relay.proc.terminate()
    relay.proc.wait(timeout=30)
    out, err = expect(console("help", env=env), 0, "help with the relay stopped")
    check(out == ssh_text and err == "", "help from the cache: %r %r" % (out, err))
    out, _ = expect(console("--help", env=env), 0, "--help with the relay stopped")
    check(b"those it listed for alice (tier2)" in out, "--help does not name the list: %r" % out)
    out, err = expect(console("help", "--refresh", env=env), 255, "help --refresh, relay stopped")
    check("cannot connect to the relay" in err and "cannot list the relay's commands" in err,
          "refresh without a relay: %r" % err)


@case
def case_help_without_relay_or_cache_says_so_and_own_commands_work():
    env = clean_env(TIERLINE_RELAY="127.0.0.1:%d" % free_port(), TIERLINE_USER="alice")
    out, err = expect(console("help", env=env), 255, "help with nothing to ask")
    check(out == b"" and "cannot list the relay's commands" in err and
          "none are cached" in err, "help: %r" % err)
    check(not os.path.exists(os.path.join(WORK, "cache", "tierline")), "a cache was made")
    out, _ = expect(console("--help", env=env), 0, "--help")
    check(b"  setup --relay" in out and b"  run T-N" in out, "--help: %r" % out)
    out, _ = expect(console("evidence", "get", "--help", env=env), 0, "evidence get --help")
    check(b"-o, --output FILE" in out, "evidence get --help: %r" % out)
    expect(console("setup", "--relay", "127.0.0.1:2222", "--user", "alice", env=env), 0, "setup")
    check(os.path.exists(config_path()), "setup wrote nothing")


@case
def case_commands_outside_the_cache_pass_through_to_the_relay():
    relay = Relay(alice="tier2", audrey="auditor").start()
    ticket_id, _ = make_ticket(relay)
    env = relay_env(relay)
    doc = json.loads(relay_help_json(relay))
    # A list without whoami, and with a command this console was not built with.
    doc["commands"] = [c for c in doc["commands"] if c["name"] != "whoami"]
    doc["commands"].append({"name": "ticket teleport", "usage": "ticket teleport T-N TIER",
                            "summary": "send a ticket elsewhere", "options": [],
                            "example": "ticket teleport T-1 3", "capability": "ticket.take"})
    write_cache(relay, doc)
    before = len(relay.exec_lines())
    out, _ = expect(console("ticket", "teleport", "--help", env=env), 0, "a new command's help")
    check(b"usage: tierline ticket teleport T-N TIER" in out and
          b"tierline ticket teleport T-1 3" in out, "ticket teleport --help: %r" % out)
    out, _ = expect(console("ticket", "--help", env=env), 0, "ticket --help")
    check(b"usage: tierline ticket teleport" in out, "the group lacks it: %r" % out)
    check(len(relay.exec_lines()) == before, "a --help reached the relay")
    # whoami is not in the list: the relay still runs it.
    out, _ = expect(console("whoami", "--json", env=env), 0, "whoami outside the cache")
    check(json.loads(out)["name"] == "alice", "whoami: %r" % out)
    # A command the relay does not have: it is the relay that says so.
    out, err = expect(console("ticket", "teleport", ticket_id, "3", env=env), 2, "teleport")
    check("unknown command 'ticket'" in err and out == b"", "teleport: %r" % err)
    out, err = expect(console("no-such-command", env=env), 2, "unknown word with a list")
    check("unknown command 'no-such-command'" in err and "'help' lists the commands" in err,
          "the relay did not judge the word: %r" % err)
    check(any("command=no-such-command" in line for line in relay.exec_lines()),
          "the word never reached the relay")
    # The auditor's list has no ticket take; the relay answers it, with permission denied.
    expect(console("help", env=relay_env(relay, "audrey")), 0, "audrey's help")
    out, err = expect(console("ticket", "take", ticket_id, env=relay_env(relay, "audrey")), 77,
                      "take outside the auditor's list")
    check("permission denied" in err, "take: %r" % err)


@case
def case_a_bad_cache_file_is_named_ignored_and_fetched_again():
    relay = Relay(alice="tier2").start()
    env = relay_env(relay)
    _, ssh_text, _ = relay.ssh("alice", "help")
    path = cache_file(relay)
    other = json.loads(relay_help_json(relay))
    for content, reason in ((b"{\"version\": 1, \"relay\": ", "it is not JSON"),
                            (b" " * (300 * 1024), "it is larger than 260 KiB"),
                            (None, "it is not the list of alice at this relay")):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if content is None:
            write_cache(relay, other, user="alice")
            with open(path) as f:
                stranger = json.load(f)
            stranger["user"] = "mallory"
            content = json.dumps(stranger).encode()
        with open(path, "wb") as f:
            f.write(content)
        # --help names the file and the reason, and lists what the console was built with.
        out, err = expect(console("--help", env=env), 0, "--help with a bad cache")
        check(("ignoring the cached command list %s: %s" % (path, reason)) in err,
              "--help: no clear message: %r" % err)
        check(b"the relay this console was built" in out, "--help used the bad cache: %r" % out)
        asked = len(help_execs(relay))
        out, err = expect(console("help", env=env), 0, "help with a bad cache")
        check(("ignoring the cached command list %s: %s" % (path, reason)) in err,
              "help: no clear message: %r" % err)
        check(out == ssh_text and len(help_execs(relay)) == asked + 1,
              "help did not ask the relay again: %r" % out)
        with open(path) as f:
            check(json.load(f)["help"] == other, "the cache was not written again")
        expect(console("help", env=env), 0, "help after the fetch")
        check(len(help_execs(relay)) == asked + 1, "the new cache was not used")
    # A list older than an hour is asked for again; if the relay cannot answer, it still serves.
    write_cache(relay, other, fetched_ms=int(time.time() * 1000) - 2 * 3600 * 1000)
    asked = len(help_execs(relay))
    expect(console("help", env=env), 0, "help with an old cache")
    check(len(help_execs(relay)) == asked + 1, "an old list was not fetched again")
    write_cache(relay, other, fetched_ms=int(time.time() * 1000) - 2 * 3600 * 1000)
    relay.proc.terminate()
    relay.proc.wait(timeout=30)
    out, err = expect(console("help", env=env), 0, "old cache, relay stopped")
    check(out == ssh_text and "the relay could not be asked again; its list of" in err,
          "old cache without a relay: %r %r" % (out, err))


@case
def case_hostile_text_in_the_cache_is_shown_escaped():
    relay = Relay(alice="tier2")  # never started: a fresh cache needs no relay
    hostile = "\x1b]0;PWNED\x07\x1b[2J\u009b31m"
    write_cache(relay, {"name": "alice\x1b[5m", "role": "tier2", "commands": [
        {"name": "tickets", "usage": "tickets " + hostile, "summary": "list " + hostile,
         "options": [{"name": "--tier", "value": "N" + hostile, "help": "only " + hostile}],
         "example": "tickets --tier 1" + hostile, "capability": "tickets.read"}]})
    env = relay_env(relay)
    shown = "\\x1b]0;PWNED\\x07\\x1b[2J\\u009b31m"
    for args in (["help"], ["--help"], ["tickets", "--help"], ["help", "tickets"]):
        out, err = expect(console(*args, env=env), 0, " ".join(args))
        text = out.decode()
        check(b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out,
              "tierline %s wrote raw control bytes: %r" % (" ".join(args), out))
        check(shown in text, "tierline %s does not show the escapes: %r" % (" ".join(args), text))
    out, _ = expect(console("help", env=env), 0, "help")
    check(b"Commands for alice\\x1b[5m (tier2):" in out, "the name: %r" % out)
    out, _ = expect(console("help", "--json", env=env), 0, "help --json")
    check(b"\x1b" not in out and json.loads(out)["commands"][0]["summary"] == "list " + hostile,
          "help --json: %r" % out)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work


def kill_pty_children():
    for pid in PTY_CHILDREN:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(tlcase.main("console.py BIN_DIR", "tl-console-", setup_globals, started=STARTED,
                         home=True, cleanup=kill_pty_children))
