"""What the integration test programs share: a registry of named cases,
the failure they raise, and bounded waiting. Each program runs one case per
process: PROGRAM ARG CASE, run by main()."""
import os
import shutil
import random
import socket
import subprocess
import sys
import tempfile
import time

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def free_port():
    """A loopback port nobody listens on, for a program to bind later.

    Picked below the kernel's ephemeral range (ip_local_port_range), so the
    outgoing connections of tests running in parallel cannot take it in the
    time between this check and the program's bind."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, expect=0, timeout=60, env=None, input=None):
    """Runs a program to completion; returns (stdout, stderr)."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL if input is None else None,
                          input=input, env=env)
    if expect is not None and proc.returncode != expect:
        raise Failure("%s exited %d, expected %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), proc.returncode, expect, proc.stdout, proc.stderr))
    return proc.stdout, proc.stderr


def run_all(commands, timeout=60):
    """Runs several programs at once, each to completion: [(stdout, stderr)] in the order
    given. Each must exit 0; the first that does not is raised as run() would."""
    procs = [subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True) for args in commands]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for args, (status, out, err) in zip(commands, results):
        if status != 0:
            raise Failure("%s exited %d, expected 0\nstdout: %s\nstderr: %s" % (
                " ".join(args), status, out, err))
    return [(out, err) for _, out, err in results]


def wait_for(what, predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise Failure("timed out waiting for " + what)


def keygen_args(path, comment=None, passphrase=""):
    args = ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", path]
    if comment is not None:
        args[6:6] = ["-C", comment]
    return args


def keygen(path, comment=None, passphrase=""):
    """Makes an ed25519 key pair at path (and path.pub); returns path."""
    run(*keygen_args(path, comment, passphrase), timeout=30)
    return path


def fingerprint(key_path):
    """The SHA256:... fingerprint of the key pair at key_path."""
    out, _ = run("ssh-keygen", "-l", "-E", "sha256", "-f", key_path + ".pub", timeout=30)
    return out.split()[1]


def print_logs(work, tail):
    """The last tail lines of every .log file in work."""
    for name in sorted(os.listdir(work)):
        if name.endswith(".log"):
            with open(os.path.join(work, name), errors="replace") as f:
                print("---- %s (last %d lines)\n%s" % (name, tail, "".join(f.readlines()[-tail:])))


def main(usage, prefix, setup, started=None, track_popen=False, home=False,
         passed=None, failed=None, cleanup=None, tail=40):
    """Runs the one case named on the command line: PROGRAM ARG CASE.

    usage is "PROGRAM ARG" for the usage line; setup(arg, work) is called with
    the argument made absolute and a fresh temporary folder (removed at the
    end). Every process in started, and with track_popen every process that
    subprocess.Popen starts, is killed at the end whatever happens; with home,
    HOME is the temporary folder. passed() runs after the case and may still
    fail it; failed() runs on a failure before the logs (*.log in the folder)
    are printed; cleanup() runs at the end whatever happens. Returns the exit
    status: 0 passed, 1 failed, 2 usage."""
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: %s CASE\ncases: %s" % (usage, " ".join(sorted(CASES))))
        return 2
    name = sys.argv[2]
    work = tempfile.mkdtemp(prefix=prefix)
    started = [] if started is None else started
    if home:
        os.environ["HOME"] = work
    if track_popen:
        original_popen = subprocess.Popen

        def tracking_popen(*args, **kwargs):
            proc = original_popen(*args, **kwargs)
            started.append(proc)
            return proc

        subprocess.Popen = tracking_popen
    status = 1
    try:
        setup(os.path.abspath(sys.argv[1]), work)
        CASES[name]()
        if passed is not None:
            passed()
        print("PASS " + name)
        status = 0
    except (Failure, subprocess.TimeoutExpired) as failure:
        print("FAIL %s: %s" % (name, failure))
        if failed is not None:
            failed()
        print_logs(work, tail)
    finally:
        if cleanup is not None:
            cleanup()
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    return status
