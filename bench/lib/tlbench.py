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
import threading
import time

from openssh_ref import stop_processes, free_port, free_ports, keygen, wait_until

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
            stop_processes([self.procs.get(name)])
        for log_file in self.logs:
            log_file.close()


def summary(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def raise_nofile():
    """Raises the soft limit on open files to the hard one; the new limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid):
    """The resident set of pid in KiB (VmRSS), 0 if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TierlineFleet(TierlinePath):
    """One relay with many tier2 technicians (t01, t02, ...), each with a key
    of their own, and as many enrolled agents, each with its own state
    folder, an unattended policy granting tier2 the scopes, and one ticket.
    Technician i (0-based) works on agent i's ticket."""

    def __init__(self, bin_dir, work, count, scopes=("exec",), parallel=8):
        super().__init__(bin_dir, work, scopes)
        self.count, self.parallel = count, parallel
        width = max(2, len(str(count)))
        self.users = ["t%0*d" % (width, i + 1) for i in range(count)]
        self.agents = ["agent%0*d" % (width, i + 1) for i in range(count)]
        self.tickets = [None] * count

    def start(self):
        from concurrent.futures import ThreadPoolExecutor
        relay = self.path("relay")
        port, self.ssh_port = free_ports(2)
        self.listen = "127.0.0.1:%d" % port
        self.tl("tierline-relay", "init", "--data", relay, "--listen", self.listen)
        with ThreadPoolExecutor(self.parallel) as pool:
            list(pool.map(lambda user: keygen(self.path(user)), self.users))
        # The store has one writer at a time: accounts and codes one by one.
        for user in self.users:
            self.tl("tierline-relay", "user", "add", user, "--role", "tier2", "--key",
                    self.path(user + ".pub"), "--data", relay)
        codes = []
        for _ in self.agents:
            code, _ = self.tl("tierline-relay", "enroll-code", "--data", relay, "--ttl", "30m")
            codes.append(code.strip())
        known, _ = self.tl("tierline-relay", "host-key", "--data", relay, "--known-hosts",
                           "127.0.0.1:%d" % self.ssh_port)
        with open(self.path("known_hosts"), "w") as f:
            f.write(known)
        with open(self.path("policy.json"), "w") as f:
            json.dump({"unattended": [{"roles": ["tier2"], "scopes": self.scopes}]}, f)
        # Every technician connects from 127.0.0.1 at the same moment: the address may hold as
        # many logins under way as the OpenSSH side's MaxStartups allows (100), not the
        # default 32 meant for one stranger.
        self.spawn("relay", [os.path.join(self.bin, "tierline-relay"), "serve", "--data", relay,
                             "--listen", self.listen, "--ssh-listen",
                             "127.0.0.1:%d" % self.ssh_port, "--log-level", "info",
                             "--ssh-preauth-per-address", "100"])
        wait_until("the relay's SSH port", lambda: self.whoami(0))
        # The relay counts an enrollment against the address's five failures
        # a minute while it is in progress (a success gives it back): at most
        # four at once from here.
        self._enrolling = threading.Semaphore(4)
        with ThreadPoolExecutor(self.parallel) as pool:
            list(pool.map(self._start_agent, range(self.count), codes))
        return self

    def _start_agent(self, index, code):
        name = self.agents[index]
        state = self.path(name)
        with self._enrolling:
            self.tl("tierline-agent", "enroll", code, "--state", state)
        self.spawn(name, [os.path.join(self.bin, "tierline-agent"), "run", "--state", state,
                          "--policy", self.path("policy.json"), "--shell", "/bin/sh",
                          "--log-level", "info"])
        wait_until("%s online" % name, lambda: self.agent_status(index).get("connected"),
                   timeout=60)
        out, _ = self.tl("tierline-agent", "help", "benchmark machine %d" % (index + 1),
                         "--state", state, "--wait-ms", "30000")
        ticket = out.strip()
        if not re.fullmatch(r"T-\d+", ticket):
            raise RuntimeError("no ticket from help for %s: %r" % (name, out))
        self.tickets[index] = ticket

    def agent_status(self, index):
        name = self.agents[index]
        if self.procs[name].poll() is not None:
            raise RuntimeError("%s ended; see %s" % (name, self.path(name + ".log")))
        out, _ = self.tl("tierline-agent", "status", "--state", self.path(name), "--json")
        return json.loads(out)

    def agent_channels(self, index):
        """The channels open on agent index, over all its grants."""
        out, _ = self.tl("tierline-agent", "sessions", "--state", self.path(self.agents[index]),
                         "--json")
        answer = json.loads(out)
        if not answer.get("running"):
            raise RuntimeError("%s is not running; see %s" % (
                self.agents[index], self.path(self.agents[index] + ".log")))
        return sum(len(grant.get("channels") or []) for grant in answer["grants"])

    def whoami(self, index):
        """True when technician index can sign in and the relay answers."""
        if self.procs["relay"].poll() is not None:
            raise RuntimeError("the relay ended; see " + self.path("relay.log"))
        proc = subprocess.run(self.user_ssh_argv(index) + ["whoami"], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=30)
        return proc.returncode == 0 and self.users[index].encode() in proc.stdout

    def user_ssh_argv(self, index, cipher=None):
        user = self.users[index]
        return ["ssh", "-F", "/dev/null", "-i", self.path(user), "-p", str(self.ssh_port),
                "-o", "UserKnownHostsFile=" + self.path("known_hosts"),
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"] + (
                    ["-c", cipher] if cipher else []) + [user + "@127.0.0.1"]

    def ssh_argv(self, cipher=None):
        return self.user_ssh_argv(0, cipher)

    def client_argv(self, cipher, *command):
        return self.user_client_argv(0, cipher, *command)

    def user_client_argv(self, index, cipher, *command):
        """Technician index runs command on agent index's machine."""
        return self.user_ssh_argv(index, cipher) + ["run", self.tickets[index], "--"] + list(
            command)

    def stop(self):
        # The agents first (all at once), so none reconnects to a relay that
        # is going away; then the relay.
        for group in (self.agents, ["relay"]):
            stop_processes([self.procs.get(name) for name in group])
        for log_file in self.logs:
            log_file.close()
