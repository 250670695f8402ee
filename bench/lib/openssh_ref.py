"""The OpenSSH reference path on loopback, built from stock OpenSSH in a
temporary folder: a "bastion" sshd, an "endpoint" sshd, the endpoint's
`ssh -N -R` to the bastion exposing the endpoint's sshd on a bastion-side
port, and a technician's ssh that reaches that port through
`ProxyCommand ssh -W`. Throwaway host and user keys, own configs and
known_hosts; everything on 127.0.0.1. Only the processes started here are
ever stopped, by their pid.

With raw_source (a file), the path also has the two-hop shape: a raw TCP
source on the endpoint side that sends the file to every connection, a
second `-R` of the same `ssh -N -R` exposing it on the bastion, and a
technician's `ssh -W` through the bastion to it (two_hop_argv()); and the
one-hop reference, the technician's ssh straight to the endpoint's sshd
(one_hop_argv()).

Run on its own it builds the path, runs one command through it and tears
it down:  openssh_ref.py [--cipher NAME] [COMMAND...]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SSHD = "/usr/sbin/sshd"


def wait_until(what, predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count):
    """count distinct loopback ports that were free a moment ago: all are
    held open together, so none comes back twice."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def banner(port):
    """True when an SSH server answers on port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.settimeout(2.0)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def stop_processes(procs, timeout=10.0):
    """Asks every running one of procs (Popen objects, None skipped) to end,
    then waits for each; one that does not end in time is killed."""
    procs = [proc for proc in procs if proc is not None]
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# The raw TCP source of the two-hop path: sends the file named by argv[2] to
# every connection on 127.0.0.1:argv[1] with sendfile(), each connection on a
# thread of its own (many technicians stream at once in bench/sessions), then
# closes it. Its CPU is counted with the path's.
RAW_SOURCE = """
import os, socket, sys, threading
def send(conn):
    try:
        with open(sys.argv[2], "rb") as f:
            size, offset = os.fstat(f.fileno()).st_size, 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), f.fileno(), offset, size - offset)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    conn.close()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(128)
while True:
    conn, _ = server.accept()
    threading.Thread(target=send, args=(conn,), daemon=True).start()
"""


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return f.read().split()[:2]


class OpenSSHPath:
    """start() builds the path; client_argv() is the technician's command
    line; processes() the long-lived ones; stop() ends them."""

    def __init__(self, cipher=None, work=None, raw_source=None):
        self.cipher = cipher
        self.raw_source = raw_source
        self.own_work = work is None
        self.work = work or tempfile.mkdtemp(prefix="tl-bench-ssh-")
        self.procs = {}
        self.logs = []

    def path(self, name):
        return os.path.join(self.work, name)

    def _sshd_config(self, name, port, host_key):
        """An sshd's config. Every sshd but the bastion's is an endpoint: its
        sessions get SHLVL=1 (`SetEnv`). sshd runs each command as
        `$SHELL -c COMMAND` with the user's login shell, and Debian's bash
        sources ~/.bashrc for such a shell started by sshd; a slow root
        ~/.bashrc (pyenv and the like) would be counted as OpenSSH's, once per
        session. With SHLVL=1 bash counts itself as nested and skips it; bash
        itself still starts."""
        config = self.path(name + "_sshd_config")
        endpoint = ["SetEnv SHLVL=1"] if name != "bastion" else []
        with open(config, "w") as f:
            f.write("\n".join(endpoint + [
                "ListenAddress 127.0.0.1", "Port %d" % port, "HostKey " + host_key,
                "AuthorizedKeysFile " + self.path("authorized_keys"),
                "UsePAM no", "StrictModes no", "PidFile none",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "AllowTcpForwarding yes",
                "GatewayPorts no", "PrintMotd no", "UseDNS no", "LogLevel ERROR",
                "MaxStartups 100:30:200", ""]))
        return config

    def _spawn(self, name, argv):
        log = open(self.path(name + ".log"), "ab")
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log)
        return self.procs[name]

    def start(self):
        # sshd refuses to start without its privilege separation folder,
        # which a machine that never ran sshd as a service lacks.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.bastion_port, self.endpoint_port = free_port(), free_port()
        bastion_key = keygen(self.path("bastion_host"))
        endpoint_key = keygen(self.path("endpoint_host"))
        user_key = keygen(self.path("user"))
        with open(self.path("authorized_keys"), "w") as f:
            f.write(" ".join(user_key) + "\n")
        with open(self.path("known_hosts"), "w") as f:
            f.write("bastion %s\nendpoint %s\n" % (" ".join(bastion_key), " ".join(endpoint_key)))
        for name, port, key in (("bastion", self.bastion_port, "bastion_host"),
                                ("endpoint", self.endpoint_port, "endpoint_host")):
            config = self._sshd_config(name, port, self.path(key))
            self._spawn(name + "_sshd", [SSHD, "-D", "-e", "-f", config])
            wait_until("the %s sshd" % name,
                       lambda name=name, port=port: self._up(name + "_sshd", port))
        # The bastion-side port the endpoint's sshd is exposed on.
        self.forward_port = free_port()
        forwards = ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (self.forward_port, self.endpoint_port)]
        if self.raw_source:
            self.source_port, self.raw_forward_port = free_ports(2)
            self._spawn("source", [sys.executable, "-c", RAW_SOURCE, str(self.source_port),
                                   self.raw_source])
            wait_until("the raw source", lambda: self._listening("source", self.source_port))
            forwards += ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (self.raw_forward_port,
                                                              self.source_port)]
        cipher = ["-o", "Ciphers=" + self.cipher] if self.cipher else []
        proxy = "ssh -F %s %s-W %%h:%%p bastion" % (
            self.path("ssh_config"), ("-c %s " % self.cipher) if self.cipher else "")
        with open(self.path("ssh_config"), "w") as f:
            f.write("\n".join([
                "Host bastion", "  HostName 127.0.0.1", "  Port %d" % self.bastion_port,
                "  HostKeyAlias bastion",
                "Host endpoint", "  HostName 127.0.0.1", "  Port %d" % self.forward_port,
                "  HostKeyAlias endpoint", "  ProxyCommand " + proxy,
                "Host direct", "  HostName 127.0.0.1", "  Port %d" % self.endpoint_port,
                "  HostKeyAlias endpoint",
                "Host *", "  User root", "  IdentityFile " + self.path("user"),
                "  IdentitiesOnly yes", "  UserKnownHostsFile " + self.path("known_hosts"),
                "  StrictHostKeyChecking yes", "  BatchMode yes", "  LogLevel ERROR",
                "  ServerAliveInterval 0", ""]))
        self._spawn("tunnel", ["ssh", "-F", self.path("ssh_config")] + cipher + [
            "-N", "-o", "ExitOnForwardFailure=yes"] + forwards + ["bastion"])
        wait_until("the reverse tunnel", lambda: self._up("tunnel", self.forward_port))
        if self.raw_source:
            wait_until("the raw source's reverse tunnel",
                       lambda: self._listening("tunnel", self.raw_forward_port))
        return self

    def _listening(self, name, port):
        """True when something listens on port (connecting to a raw source
        through its tunnel would start a transfer, so this reads
        /proc/net/tcp instead)."""
        self._alive(name)
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        # local address 0100007F:PORT (127.0.0.1), state 0A (LISTEN).
        return any(row[1] == "0100007F:%04X" % port and row[3] == "0A" for row in rows)

    def _alive(self, name):
        """Raises, with its log, if process name has ended."""
        if self.procs[name].poll() is not None:
            with open(self.path(name + ".log"), errors="replace") as f:
                raise RuntimeError("%s ended: %s" % (name, f.read().strip()))

    def _up(self, name, port):
        self._alive(name)
        return banner(port)

    def client_argv(self, *command):
        cipher = ["-c", self.cipher] if self.cipher else []
        return ["ssh", "-F", self.path("ssh_config")] + cipher + ["endpoint", "--"] + list(command)

    def two_hop_argv(self):
        """The technician's `ssh -W` through the bastion to the raw source."""
        cipher = ["-c", self.cipher] if self.cipher else []
        return ["ssh", "-F", self.path("ssh_config")] + cipher + [
            "-W", "127.0.0.1:%d" % self.raw_forward_port, "bastion"]

    def one_hop_argv(self, *command):
        """The technician's ssh straight to the endpoint's sshd."""
        cipher = ["-c", self.cipher] if self.cipher else []
        return ["ssh", "-F", self.path("ssh_config")] + cipher + ["direct", "--"] + list(command)

    def processes(self):
        """The long-lived processes of the path: {name: pid}."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self):
        for name in ("tunnel", "source", "endpoint_sshd", "bastion_sshd"):
            stop_processes([self.procs.get(name)])
        for log in self.logs:
            log.close()
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)


class OpenSSHFleet(OpenSSHPath):
    """The same shape with many endpoints on one bastion: endpoint i (0-based)
    has an sshd of its own and an `ssh -N -R` of its own exposing it on a
    bastion-side port, and is reached as host `endpointNN` (NN = i + 1)
    through `ProxyCommand ssh -W`. The endpoints share one host key (a
    throwaway one, like every key here). With raw_source (a file), each
    endpoint's `ssh -R` also exposes a raw TCP source sending that file
    (one source process serves them all), reached by host_two_hop_argv()."""

    def __init__(self, count, cipher=None, work=None, raw_source=None):
        super().__init__(cipher, work, raw_source)
        self.count = count
        width = max(2, len(str(count)))
        self.hosts = ["endpoint%0*d" % (width, i + 1) for i in range(count)]

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        # One call, so that no two of the ports are the same.
        ports = free_ports(2 * self.count + 1 + ((self.count + 1) if self.raw_source else 0))
        self.bastion_port = ports[0]
        self.endpoint_ports = ports[1:self.count + 1]
        self.forward_ports = ports[self.count + 1:2 * self.count + 1]
        if self.raw_source:
            self.source_port = ports[2 * self.count + 1]
            self.raw_forward_ports = ports[2 * self.count + 2:]
            self._spawn("source", [sys.executable, "-c", RAW_SOURCE, str(self.source_port),
                                   self.raw_source])
            wait_until("the raw source", lambda: self._listening("source", self.source_port))
        bastion_key = keygen(self.path("bastion_host"))
        endpoint_key = keygen(self.path("endpoint_host"))
        user_key = keygen(self.path("user"))
        with open(self.path("authorized_keys"), "w") as f:
            f.write(" ".join(user_key) + "\n")
        with open(self.path("known_hosts"), "w") as f:
            f.write("bastion %s\nendpoint %s\n" % (" ".join(bastion_key),
                                                     " ".join(endpoint_key)))
        self._write_ssh_config()

        def move_bastion(port):
            self.bastion_port = port
            self._write_ssh_config()
        self._spawn_sshd("bastion")
        self._await("bastion_sshd", lambda: self.bastion_port, move_bastion,
                    lambda: self._spawn_sshd("bastion"))
        for i in range(self.count):
            self._spawn_sshd(i)
        for i, host in enumerate(self.hosts):
            self._await(host + "_sshd", lambda i=i: self.endpoint_ports[i],
                        lambda port, i=i: self.endpoint_ports.__setitem__(i, port),
                        lambda i=i: self._spawn_sshd(i))
        for i in range(self.count):
            self._spawn_tunnel(i)
        for i, host in enumerate(self.hosts):
            def move_forward(port, i=i):
                self.forward_ports[i] = port
                self._write_ssh_config()
            self._await(host + "_tunnel", lambda i=i: self.forward_ports[i], move_forward,
                        lambda i=i: self._spawn_tunnel(i))
            if self.raw_source:
                wait_until(host + "'s raw source tunnel", lambda i=i, host=host: self._listening(
                    host + "_tunnel", self.raw_forward_ports[i]))
        return self

    def _spawn_sshd(self, which):
        """The bastion's sshd ("bastion") or endpoint which's (an index)."""
        if which == "bastion":
            name, port, key = "bastion", self.bastion_port, "bastion_host"
        else:
            name, port, key = self.hosts[which], self.endpoint_ports[which], "endpoint_host"
        config = self._sshd_config(name, port, self.path(key))
        self._spawn(name + "_sshd", [SSHD, "-D", "-e", "-f", config])

    def _spawn_tunnel(self, index):
        cipher = ["-o", "Ciphers=" + self.cipher] if self.cipher else []
        forwards = ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (self.forward_ports[index],
                                                          self.endpoint_ports[index])]
        if self.raw_source:
            forwards += ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (self.raw_forward_ports[index],
                                                               self.source_port)]
        self._spawn(self.hosts[index] + "_tunnel", ["ssh", "-F", self.path("ssh_config")] +
                    cipher + ["-N", "-o", "ExitOnForwardFailure=yes"] + forwards + ["bastion"])

    def _await(self, name, port, move, respawn, attempts=5):
        """Waits until name answers on port(). If it ended instead (most
        likely another process took its port since it was picked), moves it
        to another port and starts it again, a few times."""
        for attempt in range(attempts):
            try:
                return wait_until(name, lambda: self._up(name, port()))
            except RuntimeError as e:
                if self.procs[name].poll() is None or attempt == attempts - 1:
                    raise
                sys.stderr.write("%s; trying another port\n" % e)
                move(free_port())
                respawn()

    def _write_ssh_config(self):
        proxy = "ssh -F %s %s-W %%h:%%p bastion" % (
            self.path("ssh_config"), ("-c %s " % self.cipher) if self.cipher else "")
        lines = ["Host bastion", "  HostName 127.0.0.1", "  Port %d" % self.bastion_port,
                 "  HostKeyAlias bastion"]
        for host, port in zip(self.hosts, self.forward_ports):
            lines += ["Host " + host, "  HostName 127.0.0.1", "  Port %d" % port,
                      "  HostKeyAlias endpoint", "  ProxyCommand " + proxy]
        lines += ["Host *", "  User root", "  IdentityFile " + self.path("user"),
                  "  IdentitiesOnly yes", "  UserKnownHostsFile " + self.path("known_hosts"),
                  "  StrictHostKeyChecking yes", "  BatchMode yes", "  LogLevel ERROR",
                  "  ServerAliveInterval 0", ""]
        with open(self.path("ssh_config") + ".new", "w") as f:
            f.write("\n".join(lines))
        os.replace(self.path("ssh_config") + ".new", self.path("ssh_config"))

    def host_client_argv(self, index, *command):
        """The technician's command line on endpoint index."""
        cipher = ["-c", self.cipher] if self.cipher else []
        return ["ssh", "-F", self.path("ssh_config")] + cipher + [self.hosts[index], "--"] + list(
            command)

    def host_two_hop_argv(self, index):
        """The technician's `ssh -W` through the bastion to endpoint index's raw source."""
        cipher = ["-c", self.cipher] if self.cipher else []
        return ["ssh", "-F", self.path("ssh_config")] + cipher + [
            "-W", "127.0.0.1:%d" % self.raw_forward_ports[index], "bastion"]

    def client_argv(self, *command):
        return self.host_client_argv(0, *command)

    def stop(self):
        names = ([host + "_tunnel" for host in self.hosts] + ["source"] +
                 [host + "_sshd" for host in self.hosts] + ["bastion_sshd"])
        stop_processes([self.procs.get(name) for name in names])
        for log in self.logs:
            log.close()
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv):
    cipher = None
    if argv[:1] == ["--cipher"] and len(argv) >= 2:
        cipher, argv = argv[1], argv[2:]
    ref = OpenSSHPath(cipher)
    try:
        ref.start()
        command = argv or ["echo", "reference path up"]
        return subprocess.run(ref.client_argv(*command), stdin=subprocess.DEVNULL,
                              timeout=120).returncode
    finally:
        ref.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
