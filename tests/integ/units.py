#!/usr/bin/env python3
"""The systemd units (packaging/systemd/) and what the programs tell systemd.

    units.py BUILD_DIR CASE

BUILD_DIR is the build tree (its bin/ holds the programs). systemd itself
does not run here: `systemd-analyze verify` checks the units, with their
ExecStart pointed at the built programs, and the programs are started as a
Type=notify unit would start them: $NOTIFY_SOCKET names a datagram socket
this test binds, and $JOURNAL_STREAM names the file their stderr goes to, as
systemd's journal stream would be named.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import tlcase
from tlcase import case, check, run

BUILD = None
WORK = None
STARTED = []
UNITS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                      "packaging", "systemd"))


def verify(unit_text, name):
    """systemd-analyze verify on a copy of a unit; returns its complaints about the unit."""
    check(shutil.which("systemd-analyze"), "systemd-analyze is not installed (Debian's systemd)")
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(unit_text)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    # Lines about other units (the host's own) are not ours to judge.
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if name in line]
    return proc.returncode, ours


def built_unit(name):
    """The shipped unit with its programs taken from the build tree."""
    with open(os.path.join(UNITS, name)) as f:
        text = f.read()
    return text.replace("/usr/bin/", os.path.join(BUILD, "bin") + "/")


@case
def case_units_verify():
    for name in ("tierline-relay.service", "tierline-agent.service"):
        status, complaints = verify(built_unit(name), name)
        check(status == 0 and not complaints,
              "systemd-analyze verify %s: exit %d\n%s" % (name, status, "\n".join(complaints)))


@case
def case_a_broken_unit_is_caught():
    # The check above would say nothing if verify accepted anything: a misspelt directive and
    # a program that is not there must be reported.
    text = built_unit("tierline-relay.service").replace("ProtectSystem=strict",
                                                        "ProtectSystme=strict")
    _, complaints = verify(text, "tierline-relay.service")
    check(any("ProtectSystme" in line for line in complaints),
          "a misspelt directive went unnoticed: %s" % complaints)
    text = built_unit("tierline-relay.service").replace("bin/tierline-relay ", "bin/no-such ")
    status, complaints = verify(text, "tierline-relay.service")
    check(status != 0 or complaints, "a missing program went unnoticed")


class NotifySocket:
    """The service manager's end: a datagram socket in WORK, as $NOTIFY_SOCKET names it."""

    def __init__(self):
        self.path = os.path.join(WORK, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(30)

    def expect(self, what):
        try:
            message = self.sock.recv(4096).decode()
        except socket.timeout:
            raise tlcase.Failure("no notification came, expected %s" % what)
        check(message.split("\n")[0] == what, "expected %s, got %r" % (what, message))
        return dict(line.split("=", 1) for line in message.split("\n"))


def start_as_unit(args, notify, log_name):
    """Starts a program with $NOTIFY_SOCKET set and stderr a file $JOURNAL_STREAM names."""
    log_path = os.path.join(WORK, log_name)
    log = open(log_path, "w")
    st = os.fstat(log.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=notify.path,
               JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=env,
                            stdin=subprocess.DEVNULL)
    log.close()
    STARTED.append(proc)
    return proc, log_path


def check_priorities(log_path):
    with open(log_path) as f:
        lines = f.read().splitlines()
    check(lines, "%s is empty" % log_path)
    for line in lines:
        match = re.match(r"<(\d)>\d{4}-\d\d-\d\dT\S+ (\w+) ", line)
        check(match, "%s: a line without its priority: %r" % (log_path, line))
        levels = {"debug": "7", "info": "6", "warn": "4", "error": "3"}
        check(levels.get(match.group(2)) == match.group(1),
              "%s: priority %s for level %s" % (log_path, match.group(1), match.group(2)))


def stop(proc, notify):
    proc.send_signal(signal.SIGTERM)
    notify.expect("STOPPING=1")
    check(proc.wait(timeout=30) == 0, "exit status %s after SIGTERM" % proc.returncode)


@case
def case_relay_and_agent_notify_ready_and_log_with_priorities():
    relay_bin = os.path.join(BUILD, "bin", "tierline-relay")
    agent_bin = os.path.join(BUILD, "bin", "tierline-agent")
    data = os.path.join(WORK, "relay")
    port = tlcase.free_port()
    run(relay_bin, "init", "--data", data, "--listen", "127.0.0.1:%d" % port)
    notify = NotifySocket()
    relay, relay_log = start_as_unit([relay_bin, "serve", "--data", data], notify, "relay.log")
    ready = notify.expect("READY=1")
    check(ready.get("MAINPID") == str(relay.pid),
          "READY=1 named MAINPID %s, the relay is %d" % (ready.get("MAINPID"), relay.pid))
    # Ready means listening: a connection succeeds at once, without retrying.
    socket.create_connection(("127.0.0.1", port), timeout=10).close()

    string, _ = run(relay_bin, "enroll-code", "--data", data, "--ttl", "10m")
    state = os.path.join(WORK, "agent")
    run(agent_bin, "enroll", string.strip(), "--state", state)
    agent, agent_log = start_as_unit([agent_bin, "run", "--state", state], notify, "agent.log")
    ready = notify.expect("READY=1")
    check(ready.get("MAINPID") == str(agent.pid), "the agent's READY=1 named %s" % ready)
    stop(agent, notify)
    stop(relay, notify)
    check_priorities(relay_log)
    check_priorities(agent_log)


@case
def case_without_a_service_manager_lines_are_unchanged():
    # A log file that is not the journal stream: no priorities, whatever JOURNAL_STREAM says.
    relay_bin = os.path.join(BUILD, "bin", "tierline-relay")
    data = os.path.join(WORK, "relay")
    run(relay_bin, "init", "--data", data, "--listen", "127.0.0.1:%d" % tlcase.free_port())
    env = dict(os.environ, JOURNAL_STREAM="1:1")
    env.pop("NOTIFY_SOCKET", None)
    _, err = run(relay_bin, "serve", "--data", data, "--ssh-listen", "not-an-address",
                 expect=None, env=env)
    check(err and not err.startswith("<"), "stderr has priorities: %r" % err[:200])


def setup_globals(build_dir, work):
    global BUILD, WORK
    BUILD, WORK = build_dir, work


if __name__ == "__main__":
    sys.exit(tlcase.main("units.py BUILD_DIR", "tl-units-", setup_globals, started=STARTED))
