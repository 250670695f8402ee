#!/usr/bin/env python3
"""Signals and terminals end to end (docs/technicians.md "Signals and terminals",
docs/protocol.md §7.7 "pty" and session.signal).

A real relay and a real enrolled agent (technicians.py's Desk) with the stock
OpenSSH client in a real pseudo-terminal; ssh_signal_client (libssh) for the
SSH "signal" requests OpenSSH cannot send; the rogue relay (consent.py) for
what the agent does with notices a relay should never send. Each case runs in
its own process:

    signals.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import fcntl
import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import time

import consent
import technicians
import tlcase
from technicians import Desk, Terminal
from tlcase import Failure, case, check, wait_for

BIN = None
WORK = None


def children_running(parent_pid, argv):
    """Pids of parent_pid's children whose command line is exactly argv."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        # The parent pid is the 2nd field after the command's ")".
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent_pid and fields[0] != "Z" and cmdline == wanted:
            found.append(int(name))
    return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def approve_first(desk, technician="bob"):
    desk.agent.cli("approve", desk.agent.question(technician)["id"])


def transcripts(desk, count):
    found = wait_for("%d command transcripts on the ticket" % count,
                     lambda: len(desk.evidence_of_kind("command")) >= count and
                     desk.evidence_of_kind("command"))
    return [json.loads(desk.relay.evidence_bytes(t["hash"])) for t in found]


class TermEnv:
    """TERM for the ssh clients started inside the block."""

    def __init__(self, value):
        self.value, self.saved = value, None

    def __enter__(self):
        self.saved = os.environ.get("TERM")
        os.environ["TERM"] = self.value

    def __exit__(self, *unused):
        if self.saved is None:
            os.environ.pop("TERM", None)
        else:
            os.environ["TERM"] = self.saved


# ---- Ctrl-C and terminals over the stock OpenSSH client ----------------------------------

@case
def case_ctrl_c_in_a_terminal_stops_the_command_on_the_machine():
    desk = Desk()
    agent_pid = desk.agent.proc.pid
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["run", desk.ticket, "--", "sleep", "100"])
    try:
        approve_first(desk)
        pids = wait_for("sleep 100 running under the agent",
                        lambda: children_running(agent_pid, ["sleep", "100"]))
        term.type("\x03")  # Ctrl-C on the technician's keyboard
        status = term.wait(timeout=60)
    finally:
        term.kill()
    check(status == 128 + signal.SIGINT, "ssh exit status %s, expected %d; terminal: %r" % (
        status, 128 + signal.SIGINT, term.seen[-500:]))
    check(not any(alive(pid) for pid in pids), "sleep 100 still runs on the machine: %r" % pids)
    check(children_running(agent_pid, ["sleep", "100"]) == [], "a sleep 100 is left")
    record = transcripts(desk, 1)[0]
    check(record.get("terminal") is True and record.get("exit_signal") == "INT",
          "transcript: terminal=%r exit_signal=%r" % (record.get("terminal"),
                                                      record.get("exit_signal")))


@case
def case_run_with_t_gets_a_terminal_and_without_it_none():
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["run", desk.ticket, "--", "tty"])
    try:
        approve_first(desk)
        status = term.wait(timeout=60)
    finally:
        term.kill()
    check(status == 0 and re.search(rb"/dev/pts/\d+\r\n", term.seen),
          "ssh -t run tty: status %s, terminal %r" % (status, term.seen[-300:]))
    # Without -t nothing changes: pipes, as before.
    status, out, _ = desk.ssh("bob", "run", desk.ticket, "--", "tty", check_status=None)
    check(status == 1 and out == "not a tty\n", "run tty: status %d, stdout %r" % (status, out))
    # The client's TERM reaches the command when it is a terminal's name; anything else is
    # replaced by the default, never passed on.
    for sent, expected in (("vt100", b"term=[vt100]"),
                           ("x'y;$(id)\x1b[2J", b"term=[xterm-256color]"),
                           ("a" * 200, b"term=[xterm-256color]")):
        with TermEnv(sent):
            term = Terminal(desk.ssh_argv("bob", tty=True) +
                            ["run", desk.ticket, "--", "sh", "-c", "'echo term=[$TERM]'"])
        try:
            status = term.wait(timeout=60)
        finally:
            term.kill()
        check(status == 0 and expected in term.seen,
              "TERM %r: status %s, terminal %r" % (sent, status, term.seen[-300:]))


@case
def case_stty_size_follows_a_resize():
    desk = Desk()
    script = "stty size; read a; stty size; read b; stty size; read c; stty size"
    term = Terminal(desk.ssh_argv("bob", tty=True) +
                    ["run", desk.ticket, "--", "sh", "-c", "'%s'" % script], cols=100, rows=30)
    sizes = re.compile(rb"^(\d+) (\d+)\r$", re.M)

    def shown():
        return [(int(r), int(c)) for r, c in sizes.findall(term.seen)]

    def next_size(count):
        return wait_for("size %d from stty" % count,
                        lambda: len(shown()) >= count or (term.read_some() and False))

    try:
        approve_first(desk)
        next_size(1)
        set_size(term.fd, 132, 43)
        os.kill(term.pid, signal.SIGWINCH)
        term.type("\n")
        next_size(2)
        # A size of 0 is refused (the terminal keeps its size), one past 1000 clamped.
        set_size(term.fd, 0, 0)
        os.kill(term.pid, signal.SIGWINCH)
        term.type("\n")
        next_size(3)
        set_size(term.fd, 60000, 50000)
        os.kill(term.pid, signal.SIGWINCH)
        term.type("\n")
        next_size(4)
        status = term.wait(timeout=60)
    finally:
        term.kill()
    check(shown() == [(30, 100), (43, 132), (43, 132), (1000, 1000)] and status == 0,
          "stty sizes %r (rows, cols), status %s" % (shown(), status))


# ---- SSH "signal" requests (libssh client) ------------------------------------------------

class SignalClient:
    """ssh_signal_client running one relay command; signal names go in on its stdin."""

    def __init__(self, desk, user, command, pty=False):
        self.proc = subprocess.Popen(
            [BIN + "/ssh_signal_client"] + (["--pty"] if pty else []) +
            [str(desk.relay.ssh_port), user, desk.keys[user],
             desk.relay.fingerprint, command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = b""

    def expect(self, pattern, timeout=90.0):
        def found():
            chunk = self.proc.stdout.read()
            if chunk:
                self.out += chunk
            return re.search(pattern, self.out)
        return wait_for("%r from the command" % pattern, found, timeout=timeout)

    def signal(self, name):
        self.proc.stdin.write(name + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout=60):
        self.proc.stdin.close()
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.proc.stderr.read().decode(errors="replace")


@case
def case_signal_request_stops_a_command_without_a_terminal():
    desk = Desk()
    command = "run %s -- sh -c 'echo pid=$$; exec sleep 100'" % desk.ticket
    client = SignalClient(desk, "bob", command)
    try:
        approve_first(desk)
        pid = int(client.expect(rb"pid=(\d+)\n").group(1))
        # Names that are no signal of the list are dropped by the relay, and said in its log.
        client.signal(b"BOGUS")
        client.signal(b"SIGTERM")
        wait_for("the relay to log the dropped names",
                 lambda: desk.relay.log_text().count("ssh signal ignored") >= 2)
        check(alive(pid), "an unknown signal name stopped the command")
        client.signal(b"TERM")
        status, err = client.finish()
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
    check(status == 0 and "exit-status %d" % (128 + signal.SIGTERM) in err,
          "client: status %d, stderr %r" % (status, err))
    check(not alive(pid), "sleep 100 (pid %d) still runs" % pid)
    record = transcripts(desk, 1)[0]
    check(record.get("exit_signal") == "TERM" and record.get("terminal") is False and
          [s.get("signal") for s in record.get("signals", [])] == ["TERM"],
          "transcript: exit_signal=%r terminal=%r signals=%r" % (
              record.get("exit_signal"), record.get("terminal"), record.get("signals")))
    log = desk.relay.log_text()
    check('signal="BOGUS" reason=unknown-signal' in log and 'signal="SIGTERM"' in log,
          "the relay's log does not name the dropped signals")


@case
def case_signal_request_in_a_shell_is_a_marker_in_its_recording():
    desk = Desk()
    client = SignalClient(desk, "bob", "join %s" % desk.ticket, pty=True)
    try:
        approve_first(desk)
        # The relay has the agent's confirmation: the session is open.
        wait_for("the shell session to start on the relay",
                 lambda: re.search(r"session started tech=bob .* type=shell",
                                   desk.relay.log_text()), timeout=90)
        shells = wait_for("the shell under the agent",
                          lambda: children_running(desk.agent.proc.pid, ["-sh"]))
        # A signal goes to the terminal's foreground job, as Ctrl-C would: until the shell
        # prompts, that may be a command of its start-up files rather than the shell itself.
        client.expect(rb"[#$] $")
        client.signal(b"KILL")
        status, err = client.finish()
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
    check(status == 0 and "exit-status %d" % (128 + signal.SIGKILL) in err,
          "client: status %d, stderr %r" % (status, err))
    check(not any(alive(pid) for pid in shells), "the shell still runs")
    recordings = wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))
    cast = gzip.decompress(desk.relay.evidence_bytes(recordings[0]["hash"])).decode()
    markers = [e[2] for e in (json.loads(line) for line in cast.splitlines()[1:]) if e[1] == "m"]
    check("signal KILL" in markers, "no signal marker in the recording: %r" % markers)


@case
def case_console_run_from_a_terminal_gets_one_on_the_machine():
    desk = Desk()
    os.environ.update(TIERLINE_RELAY="127.0.0.1:%d" % desk.relay.ssh_port, TIERLINE_USER="bob",
                      TIERLINE_IDENTITY=desk.keys["bob"], TIERLINE_HOST_KEY=desk.relay.fingerprint)
    term = Terminal([BIN + "/tierline", "run", desk.ticket, "--", "sleep", "100"])
    try:
        approve_first(desk)
        pids = wait_for("sleep 100 running under the agent",
                        lambda: children_running(desk.agent.proc.pid, ["sleep", "100"]))
        term.type("\x03")  # raw mode here: the byte goes to the machine's terminal
        status = term.wait(timeout=60)
    finally:
        term.kill()
    check(not any(alive(pid) for pid in pids), "sleep 100 still runs on the machine")
    check(status == 128 + signal.SIGINT, "console exit status %s; terminal %r" % (
        status, term.seen[-500:]))
    # The machine's terminal took the Ctrl-C: not the console's own SIGINT hanging up.
    record = transcripts(desk, 1)[0]
    check(record.get("terminal") is True and record.get("exit_signal") == "INT",
          "transcript: terminal=%r exit_signal=%r ended_by=%r" % (
              record.get("terminal"), record.get("exit_signal"), record.get("ended_by")))
    term = Terminal([BIN + "/tierline", "run", desk.ticket, "--", "tty"])
    try:
        status = term.wait(timeout=60)
    finally:
        term.kill()
    check(status == 0 and re.search(rb"/dev/pts/\d+\r\n", term.seen),
          "console run tty in a terminal: %s %r" % (status, term.seen[-300:]))
    # Not a terminal: as before, pipes.
    status, out, _ = desk.console("bob", "run", desk.ticket, "--", "tty")
    check(status == 1 and out == "not a tty\n", "console run tty: %d %r" % (status, out))


# ---- the agent's own checks, against a relay that sends anything ---------------------------

@case
def case_agent_signals_only_its_live_sessions_and_known_names():
    rogue, agent = consent.setup()
    grant = consent.granted(rogue, agent, scopes=["exec"])["grant"]
    event = rogue.open("exec", consent.exec_params(grant, ["sh", "-c", "echo pid=$$; exec sleep 100"]),
                       "x")
    check(event["event"] == "confirm", "exec: %s" % event)
    ours = event["agent_channel"]
    data = rogue.wait(lambda e: e["event"] == "data" and e["id"] == "x", "the pid", consume=False)
    pid = int(re.search(rb"pid=(\d+)", consent.base64.b64decode(data["base64"])).group(1))
    bad = [
        {"type": "session.signal", "channel": ours + 7, "signal": "KILL"},   # no such channel
        {"type": "session.signal", "channel": 4294967295, "signal": "KILL"},
        {"type": "session.signal", "channel": ours, "signal": "SEGV"},       # not on the list
        {"type": "session.signal", "channel": ours, "signal": "kill"},
        {"type": "session.signal", "channel": ours, "signal": 9},
        {"type": "session.signal", "channel": ours},
        {"type": "session.signal", "channel": -1, "signal": "KILL"},
        {"type": "session.signal", "channel": "x", "signal": "KILL"},
        # and resizes for a channel without a terminal, or of a size out of range
        {"type": "session.resize", "channel": ours, "cols": 100, "rows": 30},
        {"type": "session.resize", "channel": ours, "cols": 0, "rows": 30},
        {"type": "session.resize", "channel": ours, "cols": 100000, "rows": 30},
    ]
    for body in bad:
        rogue.send({"notify": body})
    wait_for("the agent to log the ignored signals",
             lambda: agent.log_text().count("session.signal ignored") >= 8)
    check(alive(pid), "a bad session.signal stopped the command")
    consent.check_still_connected(rogue)
    rogue.send({"notify": {"type": "session.signal", "channel": ours, "signal": "TERM"}})
    closed = rogue.closed("x")
    check(closed.get("exit_signal") == "TERM", "closed with %s" % closed)
    check(not alive(pid), "sleep 100 still runs")

    # An exec with "pty" runs on a terminal; a bad terminal is refused before anything runs.
    for params, needle in (({"term": "x;y", "cols": 80, "rows": 24}, "term"),
                           ({"term": "xterm", "cols": 100000, "rows": 24}, "cols"),
                           ({"term": "xterm", "cols": 80, "rows": 0}, "rows"),
                           ("xterm", "pty")):
        tag = "bad-%s" % needle
        params = dict(consent.exec_params(grant, ["tty"]), pty=params)
        refused = rogue.open("exec", params, tag)
        check(refused["event"] == "refuse" and needle in refused.get("message", ""),
              "pty %r: %s" % (params["pty"], refused))
    params = dict(consent.exec_params(grant, ["sh", "-c", "tty; read a; stty size"]),
                  pty={"term": "vt100", "cols": 80, "rows": 24})
    event = rogue.open("exec", params, "t")
    check(event["event"] == "confirm", "pty exec: %s" % event)
    rogue.wait(lambda e: e["event"] == "data" and e["id"] == "t", "tty's answer", consume=False)
    for cols, rows in ((0, 10), (100000, 10), (132, 43)):
        rogue.send({"notify": {"type": "session.resize", "channel": event["agent_channel"],
                               "cols": cols, "rows": rows}})
    rogue.send({"send_data": {"id": "t", "text": "\n"}})
    closed = rogue.closed("t")
    out = rogue.output("t")
    check(closed.get("exit_status") == 0 and re.search(rb"/dev/pts/\d+\r\n", out) and
          b"43 132" in out, "pty exec: %s, output %r" % (closed, out))


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)
    consent.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("signals.py BIN_DIR", "tl-signals-", setup_globals, track_popen=True,
                         home=True, passed=consent.stop_agents))
