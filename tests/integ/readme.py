#!/usr/bin/env python3
"""README.md's "Using it", run as written: its code blocks, one command a line,
with real processes on loopback (relay, agent, the stock OpenSSH client, the
console) and each step's success and output checked. Each case runs in its
own process:

    readme.py BIN_DIR CASE

What changes between the README and this run, mechanically and nothing else:
  - /var/lib/tierline becomes a temporary folder;
  - the host names relay.example.com and 0.0.0.0 become 127.0.0.1, and the
    ports 7443 and 2222 become free loopback ports;
  - the placeholder enrollment string ('tl1:…') becomes the one the
    enroll-code step printed;
  - `ssh` gets `-F FILE`, a config naming the technician's key and
    known_hosts file under the technician's home: OpenSSH finds ~/.ssh from
    the password database, not from $HOME;
  - each block runs as one person with a home of their own: a block with
    tierline-relay commands on the relay host, with tierline-agent commands
    on the user's machine, any other on the technician's; all share one
    working folder, which stands for handing files over (bob.pub, made here
    as the README says, and relay.known_hosts);
  - a command ending in `&` stays running in the background, and the next
    step starts once it is ready (listening, or connected);
  - while a command runs, the user answers the questions it raises with
    `tierline-agent approve`, as the README's prose says; `join` runs on a
    pseudo-terminal where a shell command and `exit` are typed;
  - the first `ssh` may be retried for a few seconds while the relay picks
    up the new account, which the README says it does by itself.
Every command of the README must meet exactly one expectation below, and
every expectation a command: a README change that the test does not know
fails it. Every wait is bounded; nothing here measures speed.
"""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import tlcase
from tlcase import Failure, case, check, free_port, keygen, wait_for

BIN = None
WORK = None
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTED = []
# The agent's PATH for technicians' commands (agent/session_start.c).
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def using_it_blocks():
    """The code blocks of README.md's "## Using it": lists of command lines."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    section = text.split("\n## Using it\n", 1)
    check(len(section) == 2, "README.md has no '## Using it'")
    section = section[1].split("\n## ", 1)[0]
    blocks, current = [], []
    for line in section.splitlines():
        if line.startswith("    ") and line.strip():
            current.append(line[4:])
        elif current and not line.strip():
            continue
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    check(blocks, "no code blocks in 'Using it'")
    return blocks


class Run:
    """The people, their homes, the shared working folder and the substitutions."""

    def __init__(self):
        self.cwd = os.path.join(WORK, "desk")
        os.makedirs(self.cwd)
        self.homes = {who: os.path.join(WORK, who) for who in ("relay-host", "user", "tech")}
        for home in self.homes.values():
            os.makedirs(home)
        self.data = os.path.join(WORK, "var-lib-tierline")
        self.agent_port, self.ssh_port = free_port(), free_port()
        self.enrollment = None
        self.background = []
        # The technician's key pair, made as the README says, its public half handed over.
        ssh_dir = os.path.join(self.homes["tech"], ".ssh")
        os.makedirs(ssh_dir, mode=0o700)
        keygen(os.path.join(ssh_dir, "id_ed25519"), "bob")
        with open(os.path.join(ssh_dir, "id_ed25519.pub")) as f, \
                open(os.path.join(self.cwd, "bob.pub"), "w") as out:
            out.write(f.read())
        self.ssh_config = os.path.join(self.homes["tech"], "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write("IdentityFile %s/id_ed25519\nUserKnownHostsFile %s/known_hosts\n"
                    "IdentitiesOnly yes\nIdentityAgent none\nBatchMode yes\n"
                    "StrictHostKeyChecking yes\nLogLevel ERROR\n" % (ssh_dir, ssh_dir))

    def env(self, who):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TIERLINE_", "XDG_", "SSH_"))}
        env["HOME"] = self.homes[who]
        env["PATH"] = BIN + ":" + env.get("PATH", "/usr/bin:/bin")
        return env

    def substitute(self, line):
        line = line.replace("/var/lib/tierline", self.data)
        # What `cmake --install` puts in PREFIX/share, the build stages beside its bin/.
        line = line.replace("/usr/local/share/tierline",
                            os.path.join(os.path.dirname(BIN), "share", "tierline"))
        line = line.replace("relay.example.com", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")
        line = re.sub(r"\b7443\b", str(self.agent_port), line)
        line = re.sub(r"\b2222\b", str(self.ssh_port), line)
        if re.search(r"'tl1:[^']*'", line):
            check(self.enrollment is not None, "enroll before enroll-code printed a string")
            line = re.sub(r"'tl1:[^']*'", "'%s'" % self.enrollment, line)
        if line.startswith("ssh "):
            line = "ssh -F %s %s" % (self.ssh_config, line[4:])
        return line

    def shell(self, who, line, timeout=120):
        """Runs one line to its end, answering the user's questions meanwhile."""
        print("$ [%s] %s" % (who, line), flush=True)
        proc = subprocess.Popen(["bash", "-c", line], cwd=self.cwd, env=self.env(who),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        STARTED.append(proc)
        asked = self.answer_questions_until(lambda: proc.poll() is not None, timeout, line)
        out, err = proc.communicate(timeout=30)
        print(out + err, end="", flush=True)
        return proc.returncode, out, err, asked

    def answer_questions_until(self, done, timeout, what):
        """As the user: approves each question the agent shows until done(); how many."""
        asked = 0
        deadline = time.monotonic() + timeout
        while not done():
            check(time.monotonic() < deadline, "%s did not finish in %ds" % (what, timeout))
            if self.agent_running():
                for question in self.pending():
                    self.agent_cli("approve", question["id"])
                    asked += 1
            time.sleep(0.1)
        return asked

    def agent_running(self):
        return any("tierline-agent run" in line for line, _ in self.background)

    def agent_cli(self, *words):
        proc = subprocess.run([BIN + "/tierline-agent", *words], env=self.env("user"),
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        check(proc.returncode == 0, "tierline-agent %s: %d %s" % (
            " ".join(words), proc.returncode, proc.stderr))
        return proc.stdout

    def pending(self):
        value = json.loads(self.agent_cli("pending", "--json"))
        return value["questions"] if isinstance(value, dict) else value

    def start(self, who, line):
        print("$ [%s] %s" % (who, line), flush=True)
        log_path = os.path.join(WORK, "background-%d.log" % len(self.background))
        log = open(log_path, "a")
        proc = subprocess.Popen(["bash", "-c", "exec " + line.rstrip("&").strip()],
                                cwd=self.cwd, env=self.env(who), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        STARTED.append(proc)
        self.background.append((line, proc))
        return proc, log_path

    def relay_json(self, *words):
        out = subprocess.run([BIN + "/tierline-relay", *words, "--data", self.data, "--json"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)


def read_log(path):
    with open(path, errors="replace") as f:
        return f.read()


# ---- what each README command must do ------------------------------------------------------

def expect_ok(needle=None):
    def judge(r, line, status, out, err, asked):
        check(status == 0, "%s: exit %d\n%s%s" % (line, status, out, err))
        if needle is not None:
            check(re.search(needle, out), "%s: no %r in its output:\n%s" % (line, needle, out))
    return judge


def serve_ready(r, line, proc, log_path):
    wait_for("the relay to serve agents and technicians",
             lambda: proc.poll() is not None or
             ("technicians' SSH listening addr=127.0.0.1:%d" % r.ssh_port in read_log(log_path)
              and "relay listening addr=127.0.0.1:%d" % r.agent_port in read_log(log_path)))
    check(proc.poll() is None, "%s exited:\n%s" % (line, read_log(log_path)))


def agent_ready(r, line, proc, log_path):
    wait_for("the agent to connect", lambda: proc.poll() is not None or json.loads(
        r.agent_cli("status", "--json")).get("connected"))
    check(proc.poll() is None, "%s exited:\n%s" % (line, read_log(log_path)))


def enroll_code(r, line, status, out, err, asked):
    expect_ok()(r, line, status, out, err, asked)
    check(re.fullmatch(r"tl1:\S+@127\.0\.0\.1:%d#SHA256:\S+\n" % r.agent_port, out),
          "enroll-code printed %r" % out)
    r.enrollment = out.strip()


def help_prints_ticket(r, line, status, out, err, asked):
    expect_ok()(r, line, status, out, err, asked)
    check(out.strip() == "T-1", "help printed %r, the README says T-1" % out)


def known_hosts_line(r, line, status, out, err, asked):
    expect_ok()(r, line, status, out, err, asked)
    with open(os.path.join(r.cwd, "relay.known_hosts")) as f:
        text = f.read()
    check(text.startswith("[127.0.0.1]:%d ssh-ed25519 " % r.ssh_port), "host-key wrote %r" % text)


def ssh_tickets(r, line, status, out, err, asked):
    check(status == 0 and re.search(r"(?m)^T-1 ", out), "%s: %d %r %r" % (line, status, out, err))


def asked_and_ran(r, line, status, out, err, asked):
    check(asked >= 1, "%s: the user was not asked" % line)
    command = line.split(" -- ", 1)[1].split("#", 1)[0].strip()
    local = subprocess.run(["bash", "-c", command], env={"PATH": AGENT_PATH, "LANG": "C"},
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    check(status == local.returncode, "%s: exit %d; run here it exits %d\n%s%s" % (
        line, status, local.returncode, out, err))
    started = [e for e in r.relay_json("ticket", "show", "T-1")["events"]
               if e["kind"] == "session.started"]
    check(any(e["details"].get("argv") == command.split() for e in started),
          "no session.started with %r on T-1: %r" % (command, started))


def runbook_ran(r, line, status, out, err, asked):
    check(asked >= 1 and status != 77, "%s: exit %d, asked %d\n%s%s" % (
        line, status, asked, out, err))
    runbook = line.split()[3]
    result = re.search(r"(?m)^result: (\S+)", out + err)
    check(("%s: " % runbook) in out and result is not None,
          "%s: the runbook's own lines are missing:\n%s%s" % (line, out, err))
    check((status == 0) == (result.group(1) == "OK:"),
          "%s: exit %d with %r" % (line, status, result.group(0)))


EXPECTATIONS = [
    (r"^tierline-relay init .*--ssh-listen ", expect_ok(r"SSH listener: +127\.0\.0\.1:\d+")),
    (r"^tierline-relay serve .*&$", serve_ready),
    (r"^tierline-relay enroll-code ", enroll_code),
    (r"^tierline-agent enroll ", expect_ok(r"Enrolled as D-1")),
    (r"^tierline-agent run &$", agent_ready),
    (r"^tierline-agent help ", help_prints_ticket),
    (r"^tierline-relay tickets ", expect_ok(r"(?m)^T-1 ")),
    (r"^tierline-relay ticket show T-1 ", expect_ok(r"^T-1  the printer says it is offline")),
    (r"^tierline-relay devices ", expect_ok(r"(?m)^D-1 +yes ")),
    (r"^tierline-relay audit-verify ", expect_ok(r"^audit log OK")),
    (r"^tierline-relay kb add .*/kb/\*\.md ", expect_ok(r"(?m)^Added var-log-full \(disk\)")),
    (r"^tierline-relay user add bob --role tier2 ", expect_ok(r"^Added bob \(tier2\)")),
    (r"^tierline-relay host-key .*--known-hosts .*> relay.known_hosts$", known_hosts_line),
    (r"^cat relay.known_hosts >> ~/.ssh/known_hosts$", expect_ok()),
    (r"^ssh .*bob@.* tickets --tier all$", ssh_tickets),
    (r"^tierline setup --relay .* --user bob$", expect_ok(r"^Wrote ")),
    (r"^tierline ticket show T-1$", expect_ok(r"^T-1  the printer says it is offline")),
    (r"^tierline run T-1 -- ", asked_and_ran),
    (r"^tierline join T-1\b", None),  # on a terminal: join_on_a_terminal
    (r"^tierline fix T-1 ", runbook_ran),
]


def join_on_a_terminal(r, who, line):
    print("$ [%s] %s   (on a terminal)" % (who, line), flush=True)
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(r.cwd)
            os.execve("/bin/bash", ["bash", "-c", line], r.env(who))
        finally:
            os._exit(127)
    seen = b""
    status = None

    def read_some():
        nonlocal seen
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                pass

    def exited():
        nonlocal status
        if status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                status = os.waitstatus_to_exitcode(code)
        return status is not None

    try:
        asked = r.answer_questions_until(lambda: read_some() or b"granted" in seen or exited(),
                                         120, line)
        check(asked >= 1 and b"granted" in seen, "join: asked %d; the terminal shows %r" % (
            asked, seen[-2000:]))
        os.write(fd, b"echo readme-$((6*7))\r")
        wait_for("the shell's answer", lambda: read_some() or b"readme-42" in seen or exited(),
                 timeout=60)
        check(b"readme-42" in seen, "join: no shell output; the terminal shows %r" % seen[-2000:])
        os.write(fd, b"exit\r")
        wait_for("join to end", lambda: read_some() or exited(), timeout=60)
    finally:
        if not exited():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    check(status == 0, "join exited %r; the terminal shows %r" % (status, seen[-2000:]))
    wait_for("the recording on T-1", lambda: [
        e for e in r.relay_json("ticket", "show", "T-1")["evidence"] if e["kind"] == "recording"])


def person(block):
    if any(line.startswith("tierline-relay ") for line in block):
        return "relay-host"
    if any(line.startswith("tierline-agent ") for line in block):
        return "user"
    return "tech"


@case
def case_using_it_runs_as_written():
    r = Run()
    met = set()
    for block in using_it_blocks():
        who = person(block)
        for original in block:
            matches = [i for i, (pattern, _) in enumerate(EXPECTATIONS)
                       if re.search(pattern, original)]
            check(len(matches) == 1, "README command %r meets %d expectations of readme.py" % (
                original, len(matches)))
            met.add(matches[0])
            judge = EXPECTATIONS[matches[0]][1]
            line = r.substitute(original)
            if judge is None:
                join_on_a_terminal(r, who, line)
            elif line.rstrip().endswith("&"):
                proc, log_path = r.start(who, line)
                judge(r, line, proc, log_path)
            else:
                status, out, err, asked = r.shell(who, line)
                retry_until = time.monotonic() + 10
                while (line.startswith("ssh ") and status == 255 and
                       "Permission denied" in err and time.monotonic() < retry_until):
                    time.sleep(0.5)
                    status, out, err, asked = r.shell(who, line)
                judge(r, line, status, out, err, asked)
    unmet = [EXPECTATIONS[i][0] for i in range(len(EXPECTATIONS)) if i not in met]
    check(not unmet, "readme.py expects README commands that are gone: %r" % unmet)
    for line, proc in r.background:
        check(proc.poll() is None, "%s stopped during the run" % line)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work


if __name__ == "__main__":
    sys.exit(tlcase.main("readme.py BIN_DIR", "tl-readme-", setup_globals, started=STARTED,
                         home=True))
