"""Pieces the benchmarks share: process-tree CPU accounting, running a
command, sizes and summaries, and a Tierline path on loopback (a relay with
a tier2 technician, an enrolled agent granting tier2 by unattended policy,
and one ticket). Only processes started here are stopped, by their pid."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from openssh_ref import free_port, keygen, wait_until

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
AES_GCM = "aes128-gcm@openssh.com"


def log(*words):
    print(*words, file=sys.stderr, flush=True)


def parse_size(text):
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError("size: N, NK, NM or NG, not %r" % text)
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


def children(pid):
    found = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def tree(roots):
    pids, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in pids:
            pids.add(pid)
            todo += children(pid)
    return pids


def cpu_ticks(pid):
    """utime+stime+cutime+cstime of pid, in clock ticks (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # Fields 14-17 of stat(5); fields[0] here is field 3 (state).
    return sum(int(x) for x in fields[11:15])


def tree_cpu(roots):
    return sum(cpu_ticks(pid) for pid in tree(roots))


def become_subreaper():
    """Orphans of the technician's ssh (ssh does not wait for its
    ProxyCommand) come back to this process, so their CPU can be counted."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans(keep, timeout=30.0):
    """Waits for this process's children other than keep; their CPU seconds."""
    cpu = 0.0
    deadline = time.monotonic() + timeout
    while True:
        strays = [pid for pid in children(os.getpid()) if pid not in keep]
        if not strays:
            return cpu
        for pid in strays:
            try:
                got, _, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if got == pid:
                cpu += usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            raise RuntimeError("processes %r did not end" % strays)
        time.sleep(0.02)


def run(argv, env=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (" ".join(argv), proc.returncode,
                                                   proc.stdout, proc.stderr))
    return proc.stdout, proc.stderr


class TierlinePath:
    """A relay with one tier2 technician, an enrolled agent granting tier2
    exec by unattended policy, and one ticket."""

    def __init__(self, bin_dir, work, scopes=("exec",)):
        self.bin, self.work, self.scopes = bin_dir, work, list(scopes)
        self.procs, self.logs = {}, []
        self.env = dict(os.environ, HOME=work)

    def path(self, name):
        return os.path.join(self.work, name)

    def tl(self, program, *words):
        return run([os.path.join(self.bin, program)] + list(words), env=self.env)

    def spawn(self, name, argv):
        log_file = open(self.path(name + ".log"), "ab")
        self.logs.append(log_file)
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=log_file, env=self.env)

    def start(self):
        relay, agent = self.path("relay"), self.path("agent")
        port, self.ssh_port = free_port(), free_port()
        listen = "127.0.0.1:%d" % port
        self.tl("tierline-relay", "init", "--data", relay, "--listen", listen)
        keygen(self.path("bob"))
        self.tl("tierline-relay", "user", "add", "bob", "--role", "tier2", "--key",
                self.path("bob.pub"), "--data", relay)
        known, _ = self.tl("tierline-relay", "host-key", "--data", relay, "--known-hosts",
                           "127.0.0.1:%d" % self.ssh_port)
        with open(self.path("known_hosts"), "w") as f:
            f.write(known)
        self.spawn("relay", [os.path.join(self.bin, "tierline-relay"), "serve", "--data", relay,
                             "--listen", listen, "--ssh-listen", "127.0.0.1:%d" % self.ssh_port,
                             "--log-level", "info"])
        wait_until("the relay's SSH port", lambda: self._ssh_ok())
        code, _ = self.tl("tierline-relay", "enroll-code", "--data", relay, "--ttl", "10m")
        self.tl("tierline-agent", "enroll", code.strip(), "--state", agent)
        policy = self.path("policy.json")
        with open(policy, "w") as f:
            json.dump({"unattended": [{"roles": ["tier2"], "scopes": self.scopes}]}, f)
        self.spawn("agent", [os.path.join(self.bin, "tierline-agent"), "run", "--state", agent,
                             "--policy", policy, "--shell", "/bin/sh", "--log-level", "info"])
        wait_until("the agent online", lambda: self._agent_connected(), timeout=30)
        out, _ = self.tl("tierline-agent", "help", "throughput benchmark", "--state", agent,
                         "--wait-ms", "20000")
        self.ticket = out.strip()
        if not re.fullmatch(r"T-\d+", self.ticket):
            raise RuntimeError("no ticket from help: %r" % out)
        return self

    def _ssh_ok(self):
        if self.procs["relay"].poll() is not None:
            raise RuntimeError("the relay ended; see " + self.path("relay.log"))
        return subprocess.run(self.ssh_argv() + ["whoami"], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=30).returncode == 0

    def _agent_connected(self):
        if self.procs["agent"].poll() is not None:
            raise RuntimeError("the agent ended; see " + self.path("agent.log"))
        out, _ = self.tl("tierline-agent", "status", "--state", self.path("agent"), "--json")
        return json.loads(out).get("connected")

    def ssh_argv(self, cipher=None):
        return ["ssh", "-F", "/dev/null", "-i", self.path("bob"), "-p", str(self.ssh_port),
                "-o", "UserKnownHostsFile=" + self.path("known_hosts"),
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"] + (
                    ["-c", cipher] if cipher else []) + ["bob@127.0.0.1"]

    def client_argv(self, cipher, *command):
        return self.ssh_argv(cipher) + ["run", self.ticket, "--"] + list(command)

    def processes(self):
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self):
        for name in ("agent", "relay"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for log_file in self.logs:
            log_file.close()


def summary(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)
