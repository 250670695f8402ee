#!/usr/bin/env python3
"""Consent on the agent, end to end (docs/consent.md, docs/protocol.md §7.6-7.9).

A real agent is enrolled with a real relay; then the relay is stopped and the
rogue relay harness (rogue_relay, built from tests/integ/rogue_relay.c) takes
its place with the same key and port, so the agent reconnects to a relay that
asks for anything. Every check is made on what the agent answers, as if the
relay were compromised. Each case runs in its own process:

    consent.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import base64
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import tlcase
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None
EDENIED = 30030
ECHANNEL_IN_USE = 30031
STARTED = []  # every process a case starts, stopped at the end whatever happens
AGENTS = []   # agents a case started: each must stop cleanly when it is over


def started(proc):
    STARTED.append(proc)
    return proc


class Rogue:
    """The rogue relay harness: JSON commands in, JSON events out."""

    def __init__(self, data_dir, port, device, extra=()):
        self.data_dir, self.port, self.device = data_dir, port, device
        self.extra = list(extra)
        self.events = []
        self.lock = threading.Condition()
        self.proc = None

    def start(self):
        self.events = []
        self.proc = started(subprocess.Popen(
            [BIN + "/rogue_relay", "--data", self.data_dir, "--listen",
             "127.0.0.1:%d" % self.port, "--device", self.device, "--heartbeat-ms", "500"] +
            self.extra,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, bufsize=1))
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        self.wait(lambda e: e["event"] == "listening", "the rogue relay to listen")
        return self

    def _read(self, proc):
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line}
            with self.lock:
                self.events.append(event)
                self.lock.notify_all()

    def send(self, command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def wait(self, predicate, what, timeout=30.0, consume=True):
        """The first event (oldest first) matching predicate; removed unless consume=False."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for i, event in enumerate(self.events):
                    if predicate(event):
                        if consume:
                            del self.events[i]
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("timed out waiting for %s; events: %s" % (what, self.events))
                self.lock.wait(left)

    def seen(self, predicate):
        with self.lock:
            return [e for e in self.events if predicate(e)]

    def connected(self):
        return self.wait(lambda e: e["event"] == "connected", "the agent to connect")

    def request(self, body):
        self.send({"request": body})
        sent = self.wait(lambda e: e["event"] in ("sent", "error"), "the request to go out")
        check(sent["event"] == "sent", "request not sent: %s" % sent)
        return sent["request_id"]

    def result(self, request_id, timeout=30.0):
        return self.wait(lambda e: e["event"] == "result" and e["request_id"] == request_id,
                         "the answer to request %d" % request_id, timeout)["body"]

    def open(self, kind, params, tag):
        self.send({"open": kind, "params": params, "id": tag})
        return self.wait(lambda e: e["event"] in ("confirm", "refuse", "error") and
                         e.get("id", tag) == tag, "the agent's answer to channel " + tag)

    def output(self, tag, stream=None):
        """Everything received on channel tag so far (the data events are consumed)."""
        out = b""
        while True:
            try:
                event = self.wait(lambda e: e["event"] == "data" and e["id"] == tag and
                                  (stream is None or e["stream"] == stream), "", timeout=0)
            except Failure:
                return out
            out += base64.b64decode(event["base64"])

    def closed(self, tag, timeout=30.0):
        return self.wait(lambda e: e["event"] == "close" and e["id"] == tag,
                         "channel %s to close" % tag, timeout)

    def ended(self, grant, timeout=30.0):
        return self.wait(lambda e: e["event"] == "control" and
                         e["body"].get("type") == "session.ended" and
                         e["body"].get("grant") == grant,
                         "session.ended for " + grant, timeout)["body"]

    def stop(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None


class Agent:
    def __init__(self, name="agent"):
        self.dir = os.path.join(WORK, name)
        self.log_path = os.path.join(WORK, name + ".log")
        self.proc = None
        AGENTS.append(self)

    def cli(self, *args, expect=0):
        return run(BIN + "/tierline-agent", *args, "--state", self.dir, expect=expect)

    def json(self, *args):
        out, _ = self.cli(*args, "--json")
        return json.loads(out)

    def start(self, *extra):
        self.log = open(self.log_path, "a")
        self.proc = started(subprocess.Popen(
            # A plain shell for shell sessions: a login shell's start-up files
            # belong to the machine and may be slow or noisy.
            [BIN + "/tierline-agent", "run", "--state", self.dir, "--backoff-max-ms", "300",
             "--log-level", "debug", "--shell", "/bin/sh", *extra],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log))
        wait_for("the agent's control socket", self.running)
        return self

    def running(self):
        check(self.proc.poll() is None,
              "the agent exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
        out, _ = run(BIN + "/tierline-agent", "status", "--state", self.dir, "--json")
        return json.loads(out).get("running")

    def stop(self):
        """Stops the agent as a service manager would; it must exit 0 (a sanitizer would not)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise Failure("the agent did not stop within 30 s of SIGTERM")
            check(status == 0, "the agent exited %d on SIGTERM:\n%s" % (status, self.log_text()))
        self.proc = None

    def pending(self):
        return self.json("pending")

    def question(self):
        """Waits for exactly one open question and returns it."""
        questions = wait_for("a question to the user", self.pending)
        check(len(questions) == 1, "expected one question, got %s" % questions)
        return questions[0]

    def grants(self):
        return self.json("sessions")["grants"]

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()


def start_relay(data, port):
    """The real relay on data and port, accepting connections."""
    log = open(os.path.join(WORK, "relay.log"), "a")
    relay = started(subprocess.Popen(
        [BIN + "/tierline-relay", "serve", "--data", data, "--listen", "127.0.0.1:%d" % port,
         "--heartbeat-ms", "300", "--handshake-timeout-ms", "1000"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log))

    def accepting():
        check(relay.poll() is None, "the relay exited with %s" % relay.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for("the relay to listen", accepting)
    return relay


def relay_env():
    """A relay data directory, an enrolled agent, and the relay's port, with no relay running."""
    data = os.path.join(WORK, "relay")
    port = free_port()
    run(BIN + "/tierline-relay", "init", "--data", data, "--listen", "127.0.0.1:%d" % port)
    relay = start_relay(data, port)
    try:
        agent = Agent()
        code, _ = run(BIN + "/tierline-relay", "enroll-code", "--data", data, "--ttl", "10m")
        out, _ = run(BIN + "/tierline-agent", "enroll", code.strip(), "--state", agent.dir)
        match = re.search(r"Enrolled as (D-\d+)", out)
        check(match is not None, "no device id in: " + out)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=20)
    return data, port, match.group(1), agent


def setup(*agent_args, policy=None):
    """Enrolled agent running against the rogue relay; returns (rogue, agent)."""
    data, port, device, agent = relay_env()
    if policy is not None:
        path = os.path.join(WORK, "policy.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        agent_args = ("--policy", path) + agent_args
    rogue = Rogue(data, port, device).start()
    agent.start(*agent_args)
    rogue.connected()
    return rogue, agent


def session_request(technician="alice", role="tier2", scopes=("exec",), ticket="T-1",
                    duration_s=3600, reason="join T-1"):
    return {"type": "session.request", "ticket": ticket, "technician": technician, "role": role,
            "scopes": list(scopes), "reason": reason, "duration_s": duration_s}


def granted(rogue, agent, approve_args=(), **request):
    """Asks, approves as the user, and returns the relay's answer."""
    request_id = rogue.request(session_request(**request))
    question = agent.question()
    agent.cli("approve", question["id"], *approve_args)
    answer = rogue.result(request_id)
    check(answer.get("ok") is True and answer.get("by") == "user", "not granted: %s" % answer)
    return answer


def exec_params(grant, argv, technician="alice"):
    return {"grant": grant, "technician": technician, "argv": argv}


def check_refused(event, needle):
    check(event["event"] == "refuse", "expected a refusal, got %s" % event)
    check(event["reason"] == EDENIED, "refused with %s, expected %d" % (event, EDENIED))
    check(needle in event["message"], "refusal %r does not say %r" % (event["message"], needle))


def check_still_connected(rogue):
    gone = rogue.seen(lambda e: e["event"] == "disconnected")
    check(not gone, "the agent disconnected: %s" % gone)


# ---- cases ---------------------------------------------------------------------------------

@case
def case_approved_request_runs_exec_with_output_and_status():
    rogue, agent = setup()
    request_id = rogue.request(session_request(scopes=["exec"]))
    question = agent.question()
    check(question["technician"] == "alice" and question["role"] == "tier2" and
          question["scopes"] == ["exec"] and question["ticket"] == "T-1" and
          question["duration_s"] == 3600 and re.match(r"Q-\d+$", question["id"]),
          "question: %s" % question)
    out, _ = agent.cli("approve", question["id"])
    check("Granted G-1" in out, "approve said: " + out)
    answer = rogue.result(request_id)
    check(answer["ok"] is True and answer["grant"] == "G-1" and answer["scopes"] == ["exec"] and
          answer["by"] == "user" and answer["expires_ms"] > int(time.time() * 1000),
          "answer: %s" % answer)
    event = rogue.open("exec", exec_params("G-1", ["sh", "-c", "echo hello; echo oops >&2; exit 3"]),
                       "x")
    check(event["event"] == "confirm", "exec not confirmed: %s" % event)
    closed = rogue.closed("x")
    check(closed.get("exit_status") == 3, "exit status: %s" % closed)
    check(rogue.output("x", 0) == b"hello\n", "stdout differs")
    check(rogue.output("x", 1) == b"oops\n", "stderr differs")
    check(agent.pending() == [], "questions left over")


@case
def case_declined_request_gets_edenied():
    rogue, agent = setup()
    request_id = rogue.request(session_request(scopes=["shell"]))
    question = agent.question()
    out, _ = agent.cli("deny", question["id"])
    check("Declined" in out, "deny said: " + out)
    answer = rogue.result(request_id)
    check(answer == {"type": "result", "ok": False, "error": "EDENIED",
                     "message": "the user declined"}, "answer: %s" % answer)
    check(agent.pending() == [] and agent.grants() == [], "something was left or granted")
    # The question is gone: answering it again is an error, not a grant.
    _, err = agent.cli("approve", question["id"], expect=1)
    check("no open question" in err, "approve of an answered question said: " + err)


@case
def case_unanswered_request_times_out():
    rogue, agent = setup("--consent-timeout", "1s")
    request_id = rogue.request(session_request())
    answer = rogue.result(request_id)
    check(answer.get("ok") is False and answer.get("error") == "ETIMEOUT", "answer: %s" % answer)
    check(agent.pending() == [] and agent.grants() == [], "the question outlived its timeout")


@case
def case_policy_grants_inside_its_window_and_asks_outside_it():
    hour = time.localtime().tm_hour
    later = lambda h: "%02d:00" % ((hour + h) % 24)
    policy = {"unattended": [
        {"roles": ["tier2"], "scopes": ["diag", "exec"], "max_duration": "10m"},
        # A window that starts two hours from now: closed at this moment.
        {"roles": ["tier3"], "scopes": ["shell"], "from": later(2), "to": later(3)},
    ]}
    rogue, agent = setup(policy=policy)
    request_id = rogue.request(session_request(scopes=["exec"], duration_s=3600))
    answer = rogue.result(request_id)
    check(answer.get("ok") is True and answer.get("by") == "policy", "answer: %s" % answer)
    check(agent.pending() == [], "the policy asked anyway")
    grant = agent.grants()[0]
    check(grant["expires_ms"] - grant["granted_ms"] == 600 * 1000 and grant["by"] == "policy",
          "the policy's grant is not capped at max_duration: %s" % grant)
    event = rogue.open("exec", exec_params(answer["grant"], ["true"]), "x")
    check(event["event"] == "confirm", "exec under the policy's grant: %s" % event)
    # Outside its window the policy grants nothing: the user is asked.
    request_id = rogue.request(session_request(technician="bob", role="tier3", scopes=["shell"]))
    question = agent.question()
    check(question["technician"] == "bob", "question: %s" % question)
    agent.cli("deny", question["id"])
    check(rogue.result(request_id).get("error") == "EDENIED", "not declined")


@case
def case_live_grant_is_reused_after_the_relay_comes_back():
    rogue, agent = setup()
    first = granted(rogue, agent, scopes=["exec", "diag"])
    rogue.stop()
    rogue.start()
    rogue.connected()
    request_id = rogue.request(session_request(scopes=["exec"]))
    answer = rogue.result(request_id)
    check(answer.get("ok") is True and answer["by"] == "existing" and
          answer["grant"] == first["grant"] and answer["expires_ms"] == first["expires_ms"],
          "after reconnecting: %s (first: %s)" % (answer, first))
    check(agent.pending() == [], "a new question was asked")
    event = rogue.open("exec", exec_params(first["grant"], ["sh", "-c", "echo again"]), "x")
    check(event["event"] == "confirm", "exec after reconnecting: %s" % event)
    rogue.closed("x")
    check(rogue.output("x", 0) == b"again\n", "no output after reconnecting")


@case
def case_end_closes_the_grants_channels_at_once():
    rogue, agent = setup()
    answer = granted(rogue, agent, scopes=["shell", "exec"])
    grant = answer["grant"]
    shell = rogue.open("shell", {"grant": grant, "technician": "alice", "term": "xterm",
                                 "cols": 80, "rows": 24}, "sh")
    check(shell["event"] == "confirm", "shell: %s" % shell)
    sleeper = rogue.open("exec", exec_params(grant, ["sleep", "600"]), "sleep")
    check(sleeper["event"] == "confirm", "exec: %s" % sleeper)
    wait_for("both channels listed", lambda: len(agent.grants()[0]["channels"]) == 2)
    out, _ = agent.cli("end", grant)
    check("Ended " + grant in out, "end said: " + out)
    for tag in ("sh", "sleep"):
        closed = rogue.closed(tag)
        check(closed.get("exit_signal") == "HUP", "%s closed with %s" % (tag, closed))
    ended = rogue.ended(grant)
    check(ended == {"type": "session.ended", "grant": grant, "ticket": "T-1",
                    "reason": "ended by the user"}, "session.ended: %s" % ended)
    check_refused(rogue.open("exec", exec_params(grant, ["true"]), "late"), "was ended")
    listed = agent.grants()[0]
    check(listed["state"] == "ended" and listed["end_reason"] == "ended by the user" and
          listed["channels"] == [], "after end: %s" % listed)
    # Ending what is no longer live is an error for the user, not a silent success.
    _, err = agent.cli("end", grant, expect=1)
    check("no live grant" in err, "second end said: " + err)


@case
def case_expiry_closes_channels_and_refuses_new_ones():
    rogue, agent = setup()
    answer = granted(rogue, agent, approve_args=("--for", "3s"), scopes=["exec"])
    grant = answer["grant"]
    check(rogue.open("exec", exec_params(grant, ["sleep", "600"]), "x")["event"] == "confirm",
          "exec not started")
    closed = rogue.closed("x")
    check(closed.get("exit_signal") == "HUP", "closed with %s" % closed)
    ended = rogue.ended(grant)
    check(ended["reason"] == "expired", "session.ended: %s" % ended)
    check_refused(rogue.open("exec", exec_params(grant, ["true"]), "late"), "expired")
    check(agent.grants()[0]["state"] == "expired", "grant state after expiry")


@case
def case_channels_outside_the_grant_are_refused():
    rogue, agent = setup()
    grant = granted(rogue, agent, scopes=["diag"])["grant"]
    check_refused(rogue.open("exec", exec_params(grant, ["id"]), "scope"),
                  "does not allow exec")
    check_refused(rogue.open("shell", {"grant": grant, "technician": "alice"}, "shell"),
                  "does not allow shell")
    check_refused(rogue.open("runbook", {"grant": grant, "technician": "alice",
                                         "name": "flush-dns"}, "fix"),
                  "does not allow runbook")
    check_refused(rogue.open("diag", {"grant": grant, "technician": "mallory"}, "who"),
                  "not 'mallory'")
    check_refused(rogue.open("diag", {"grant": grant}, "nobody"), "technician")
    check_refused(rogue.open("exec", exec_params("G-99", ["id"]), "unknown"), "no grant 'G-99'")
    check_refused(rogue.open("exec", {"technician": "alice", "argv": ["id"]}, "none"),
                  "names no grant")
    other = rogue.open("upload", {"grant": grant, "technician": "alice"}, "upload")
    check(other["event"] == "refuse" and "unknown channel type" in other["message"],
          "an unknown type: %s" % other)
    check_still_connected(rogue)
    check(agent.grants()[0]["channels"] == [], "a refused channel is listed")
    # The grant itself works for what it allows.
    event = rogue.open("diag", {"grant": grant, "technician": "alice"}, "diag")
    check(event["event"] == "confirm", "diag under its grant: %s" % event)


@case
def case_second_open_naming_a_live_channel_id_is_refused():
    # docs/protocol.md §4.1: one id, one channel. A relay that names its live
    # channel's id again gets ECHANNEL_IN_USE; the live channel carries on.
    rogue, agent = setup()
    granted(rogue, agent, scopes=["exec"])
    first = rogue.open("exec", exec_params("G-1", ["cat"]), "a")
    check(first["event"] == "confirm", "cat not confirmed: %s" % first)
    marker = os.path.join(WORK, "second-ran")
    rogue.send({"open_raw": "exec", "same_id_as": "a", "id": "again",
                "params": exec_params("G-1", ["sh", "-c", "echo second; touch " + marker])})
    answer = rogue.wait(lambda e: e["event"] in ("confirm", "refuse", "error") and
                        e.get("id", "again") == "again", "the agent's answer to the second open")
    check(answer["event"] == "refuse" and answer["reason"] == ECHANNEL_IN_USE,
          "the second open with a live id: %s" % answer)
    check("in use" in answer["message"], "refusal message: %r" % answer["message"])
    # The first channel still answers, only for itself, and ends normally.
    rogue.send({"send_data": {"id": "a", "text": "still here\n"}})
    got = [b""]

    def echoed():
        got[0] += rogue.output("a")
        return b"still here\n" in got[0]

    wait_for("cat to echo on the first channel", echoed)
    rogue.send({"eof": "a"})
    closed = rogue.closed("a")
    got[0] += rogue.output("a")
    check(closed.get("exit_status") == 0, "the first channel ended with %s" % closed)
    check(got[0] == b"still here\n", "the first channel carried %r" % got[0])
    check(not os.path.exists(marker), "the refused command ran")
    check_still_connected(rogue)


@case
def case_welcome_without_a_usable_heartbeat_is_refused():
    # docs/protocol.md §7.10: welcome.heartbeat_ms is a whole number 50..3600000.
    data, port, device, agent = relay_env()
    agent.start()
    for value in ("49", "3600001", "1.5", '"20000"', "none"):
        rogue = Rogue(data, port, device, ["--welcome-heartbeat", value]).start()
        rogue.connected()
        gone = rogue.wait(lambda e: e["event"] == "disconnected",
                          "the agent to leave a welcome with heartbeat_ms %s" % value)
        check(gone["reason"] == "EPROTO", "heartbeat_ms %s: the agent left with %s" % (value, gone))
        check(agent.json("status")["connected"] is False, "connected with heartbeat_ms " + value)
        rogue.stop()
    check("heartbeat_ms is not a whole number 50..3600000" in agent.log_text(), agent.log_text())
    # The bounds themselves are fine.
    for value in ("50", "3600000"):
        rogue = Rogue(data, port, device, ["--welcome-heartbeat", value]).start()
        rogue.connected()
        wait_for("the agent connected with heartbeat_ms " + value,
                 lambda: agent.json("status")["connected"])
        check_still_connected(rogue)
        rogue.stop()


@case
def case_auditor_and_admin_requests_are_refused_without_asking():
    rogue, agent = setup()
    for role in ("auditor", "admin"):
        request_id = rogue.request(session_request(technician="eve", role=role, scopes=["diag"]))
        answer = rogue.result(request_id)
        check(answer.get("ok") is False and answer.get("error") == "EDENIED" and
              role in answer.get("message", ""), "%s: %s" % (role, answer))
    check(agent.pending() == [] and agent.grants() == [], "a question or grant for eve")


@case
def case_malformed_requests_get_einval_and_the_agent_stays():
    rogue, agent = setup()
    bad = [
        {k: v for k, v in session_request().items() if k != "scopes"},
        dict(session_request(), duration_s=5),
        dict(session_request(), scopes=["exec", "exec"]),
        dict(session_request(), role="root"),
        dict(session_request(), technician="al\x1b[2Jice"),
        {"type": "session.frobnicate"},
        {"no": "type"},
    ]
    for body in bad:
        answer = rogue.result(rogue.request(body))
        check(answer.get("ok") is False and answer.get("error") == "EINVAL" and
              answer.get("message"), "%s: %s" % (body, answer))
    # A notice about nothing, and a resize for a channel that is not a shell, change nothing.
    rogue.send({"notify": {"type": "session.cancel", "request_id": 424242}})
    rogue.send({"notify": {"type": "session.resize", "channel": 9, "cols": 0, "rows": 5000}})
    check(agent.pending() == [] and agent.grants() == [], "bad input left state behind")
    check_still_connected(rogue)
    granted(rogue, agent)


@case
def case_withdrawn_request_is_dropped():
    rogue, agent = setup()
    request_id = rogue.request(session_request())
    question = agent.question()
    rogue.send({"notify": {"type": "session.cancel", "request_id": request_id}})
    wait_for("the question to go", lambda: agent.pending() == [])
    _, err = agent.cli("approve", question["id"], expect=1)
    check("no open question" in err, "approve of a withdrawn question said: " + err)
    check(agent.grants() == [], "a withdrawn request was granted")


@case
def case_bad_policy_file_stops_run_naming_the_file():
    _, _, _, agent = relay_env()
    policy = os.path.join(WORK, "bad-policy.json")
    for text, needle in (('{"unattended":[{"roles":["tier2"],"scopes":["shel"]}]}',
                          "unknown scope 'shel'"),
                         ('{"unattended":[{"roles":["tier2"],"scopes":["exec"],'
                          '"days":["someday"]}]}', "unknown day 'someday'"),
                         ('{"unattended": [', "not JSON")):
        with open(policy, "w") as f:
            f.write(text)
        _, err = run(BIN + "/tierline-agent", "run", "--state", agent.dir, "--policy", policy,
                     expect=1, timeout=30)
        check(policy in err and needle in err, "run with %s said: %s" % (text, err))
    _, err = run(BIN + "/tierline-agent", "run", "--state", agent.dir, "--policy",
                 policy + ".missing", expect=1, timeout=30)
    check(policy + ".missing" in err, "a missing --policy file: " + err)
    # The default file is read too, and as strictly.
    shutil.copy(policy, os.path.join(agent.dir, "policy.json"))
    _, err = run(BIN + "/tierline-agent", "run", "--state", agent.dir, expect=1, timeout=30)
    check(os.path.join(agent.dir, "policy.json") in err, "a bad STATE/policy.json: " + err)
    _, err = run(BIN + "/tierline-agent", "run", "--state", agent.dir, "--consent-timeout", "0s",
                 expect=2, timeout=30)
    check("--consent-timeout" in err, "a bad --consent-timeout: " + err)


@case
def case_sessions_json_lists_grants_and_their_channels():
    rogue, agent = setup()
    first = granted(rogue, agent, scopes=["exec", "diag"])
    second = granted(rogue, agent, technician="bob", ticket="T-2", scopes=["shell"])
    event = rogue.open("exec", exec_params(first["grant"], ["sleep", "600"]), "x")
    check(event["event"] == "confirm", "exec: %s" % event)
    listing = agent.json("sessions")
    check(listing["running"] is True, "listing: %s" % listing)
    grants = {g["id"]: g for g in listing["grants"]}
    check(set(grants) == {first["grant"], second["grant"]}, "grants: %s" % listing)
    g1, g2 = grants[first["grant"]], grants[second["grant"]]
    check(g1["technician"] == "alice" and g1["ticket"] == "T-1" and g1["scopes"] == ["diag", "exec"]
          and g1["live"] is True and g1["expires_ms"] == first["expires_ms"] and g1["by"] == "user",
          "first grant: %s" % g1)
    check(len(g1["channels"]) == 1 and g1["channels"][0]["type"] == "exec" and
          g1["channels"][0]["channel"] == event["agent_channel"], "channels: %s" % g1["channels"])
    check(g2["technician"] == "bob" and g2["channels"] == [], "second grant: %s" % g2)
    out, _ = agent.cli("sessions")
    check(first["grant"] in out and "alice" in out and "sleep 600" in out, "text listing: " + out)
    out, _ = agent.cli("end")
    check("Ended 2 grant(s)" in out, "end without an id said: " + out)
    check(all(not g["live"] for g in agent.grants()), "grants live after end")


@case
def case_grants_persist_across_agent_restart():
    rogue, agent = setup()
    first = granted(rogue, agent, scopes=["exec"])
    agent.stop()
    rogue.wait(lambda e: e["event"] == "disconnected", "the agent to go")
    # Recorded on disk: listed without a running agent.
    listing = agent.json("sessions")
    check(listing["running"] is False and listing["grants"][0]["id"] == first["grant"] and
          listing["grants"][0]["live"] is True, "while stopped: %s" % listing)
    with open(os.path.join(agent.dir, "grants.json")) as f:
        check(json.load(f)["grants"][0]["id"] == first["grant"], "grants.json")
    check(os.stat(os.path.join(agent.dir, "grants.json")).st_mode & 0o777 == 0o600,
          "grants.json is not 0600")
    agent.start()
    rogue.connected()
    answer = rogue.result(rogue.request(session_request(scopes=["exec"])))
    check(answer.get("by") == "existing" and answer["grant"] == first["grant"],
          "after restart: %s" % answer)
    event = rogue.open("exec", exec_params(first["grant"], ["sh", "-c", "echo still"]), "x")
    check(event["event"] == "confirm", "exec after restart: %s" % event)
    rogue.closed("x")
    # New grants never reuse an id.
    second = granted(rogue, agent, technician="bob", scopes=["diag"])
    check(second["grant"] == "G-2", "second grant: %s" % second)


@case
def case_shell_resize_reaches_the_terminal():
    rogue, agent = setup()
    grant = granted(rogue, agent, scopes=["shell"])["grant"]
    event = rogue.open("shell", {"grant": grant, "technician": "alice", "term": "xterm",
                                 "cols": 80, "rows": 24}, "sh")
    check(event["event"] == "confirm", "shell: %s" % event)
    # The user's login shell reads the user's startup files first, however long they take.
    rogue.wait(lambda e: e["event"] == "data" and e["id"] == "sh", "the shell's prompt",
               timeout=150, consume=False)
    rogue.send({"notify": {"type": "session.resize", "channel": event["agent_channel"],
                           "cols": 132, "rows": 43}})
    rogue.send({"send_data": {"id": "sh", "text": "stty size; exit\n"}})
    rogue.closed("sh")
    out = rogue.output("sh")
    check(b"43 132" in out, "the terminal size was not changed: %r" % out)


@case
def case_runbook_catalogue_is_listed_without_asking():
    rogue, agent = setup()
    answer = rogue.result(rogue.request({"type": "runbooks.list"}))
    check(answer.get("ok") is True and isinstance(answer.get("runbooks"), list),
          "runbooks.list: %s" % answer)
    check(agent.pending() == [], "runbooks.list asked the user")


@case
def case_attend_without_a_terminal_shows_questions_and_events():
    rogue, agent = setup()
    attend = started(subprocess.Popen([BIN + "/tierline-agent", "attend", "--state", agent.dir],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in attend.stdout], daemon=True).start()

    def expect(needle):
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if needle in line:
                return line
        raise Failure("attend never printed %r; it printed: %s" % (needle, "".join(seen)))

    try:
        expect("No terminal")
        request_id = rogue.request(session_request(scopes=["exec"], reason="check the printer"))
        expect("Technician alice (tier2) asks for: exec")
        expect("ticket T-1, for 1h0m: check the printer")
        expect("approve Q-")
        agent.cli("approve", agent.question()["id"])
        expect("Granted G-1 to alice (tier2)")
        check(rogue.result(request_id)["ok"] is True, "not granted")
        rogue.open("exec", exec_params("G-1", ["true"]), "x")
        expect("[G-1] alice is running")
        agent.cli("end")
        expect("Grant G-1")
        attend.send_signal(signal.SIGINT)
        check(attend.wait(timeout=20) == 0, "attend did not leave cleanly on Ctrl-C")
        expect("Left attended mode")
    finally:
        if attend.poll() is None:
            attend.kill()
            attend.wait()


@case
def case_attend_asks_on_the_terminal():
    rogue, agent = setup()
    pid, master = pty.fork()
    if pid == 0:
        os.execv(BIN + "/tierline-agent", [BIN + "/tierline-agent", "attend", "--state", agent.dir])
    screen = b""

    def expect(needle):
        nonlocal screen
        deadline = time.monotonic() + 30
        while needle.encode() not in screen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("the terminal never showed %r; it shows: %r" % (needle, screen))
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    screen += os.read(master, 4096)
                except OSError:
                    raise Failure("attend ended; the terminal showed: %r" % screen)

    try:
        expect("Attending")
        request_id = rogue.request(session_request(scopes=["shell"]))
        # A shell's question also offers k: keep the grant for its time after the shell ends.
        expect("Allow? [y/N/k]")
        os.write(master, b"y\n")
        answer = rogue.result(request_id)
        check(answer.get("ok") is True and answer["by"] == "user", "answer: %s" % answer)
        expect("Granted G-1")
        # The default is no.
        request_id = rogue.request(session_request(technician="bob", scopes=["exec"]))
        expect("Technician bob")
        os.write(master, b"\n")
        check(rogue.result(request_id).get("error") == "EDENIED", "an empty answer allowed it")
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
              "attend left with status %d" % status)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)


def terminal_run(argv, needles, then_interrupt):
    """Runs argv on a new pseudo-terminal until it has shown every needle; returns (status, screen)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    screen = b""
    try:
        deadline = time.monotonic() + 60
        while not all(n.encode() in screen for n in needles):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("the terminal never showed %s; it shows: %r" % (needles, screen))
            if select.select([master], [], [], left)[0]:
                try:
                    screen += os.read(master, 4096)
                except OSError:
                    break  # the program ended
        if then_interrupt:
            os.kill(pid, signal.SIGINT)
        while time.monotonic() < deadline + 30:  # what it says until it ends
            if select.select([master], [], [], 1.0)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
        _, status = os.waitpid(pid, 0)
        pid = 0
        return status, screen
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)


@case
def case_help_from_a_terminal_stays_attending():
    data, port, _, agent = relay_env()
    start_relay(data, port)
    agent.start()
    wait_for("the agent to connect", lambda: agent.json("status")["connected"])
    help_argv = [BIN + "/tierline-agent", "help", "printer says offline", "--state", agent.dir,
                 "--wait-ms", "60000"]
    status, screen = terminal_run(help_argv, ["T-1", "Attending"], then_interrupt=True)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
          "help left with status %d: %r" % (status, screen))
    check(b"Left attended mode" in screen, "help did not leave cleanly: %r" % screen)
    status, screen = terminal_run(help_argv + ["--no-wait"], ["T-2"], then_interrupt=False)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and b"Attending" not in screen,
          "help --no-wait: status %d, %r" % (status, screen))


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work


def stop_agents():
    for agent in AGENTS:
        agent.stop()


if __name__ == "__main__":
    sys.exit(tlcase.main("consent.py BIN_DIR", "tl-consent-", setup_globals, started=STARTED,
                         passed=stop_agents, tail=60))
