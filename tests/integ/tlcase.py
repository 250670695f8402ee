"""What the integration test programs share: a registry of named cases,
the failure they raise, and bounded waiting. Each program runs one case per
process: PROGRAM ARG CASE."""
import socket
import subprocess
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


def wait_for(what, predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise Failure("timed out waiting for " + what)
