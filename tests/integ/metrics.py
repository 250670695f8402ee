#!/usr/bin/env python3
"""The relay's metrics endpoint, end to end (docs/metrics.md): a real relay with
--metrics-listen, a real enrolled agent and the stock OpenSSH client; scraped
with curl before and after a session, each scrape checked by promtool; and
what an unauthenticated peer can do to the endpoint. Each case runs in its own
process:

    metrics.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import os
import re
import shutil
import socket
import subprocess
import sys

import relay_agent
from relay_agent import Relay, relay_rss_kb
import technicians
from technicians import Desk, write_policy
import tlcase
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None


class MetricsRelay(Relay):
    """The relay, serving metrics on a loopback port of its own."""

    def __init__(self, name="relay", **kwargs):
        super().__init__(name, **kwargs)
        self.metrics_port = free_port()

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-relay", "serve", "--data", self.dir, "--listen",
             "127.0.0.1:%d" % self.port, "--heartbeat-ms", str(self.heartbeat_ms),
             "--log-level", "debug", "--metrics-listen", "127.0.0.1:%d" % self.metrics_port] +
            (["--ssh-listen", "127.0.0.1:%d" % self.ssh_port] if self.ssh_port else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=self.env)
        wait_for("the relay to listen", self.accepting)
        return self

    def scrape(self, source="127.0.0.1"):
        """GET /metrics with curl from source: the body, checked by promtool."""
        proc = subprocess.run(
            ["curl", "--silent", "--show-error", "--fail", "--max-time", "20", "--interface",
             source, "http://127.0.0.1:%d/metrics" % self.metrics_port],
            capture_output=True, timeout=60)
        check(proc.returncode == 0, "curl from %s: exit %d: %s" % (
            source, proc.returncode, proc.stderr.decode(errors="replace")))
        body = proc.stdout.decode()
        lint = subprocess.run([promtool(), "check", "metrics"], input=proc.stdout,
                              capture_output=True, timeout=60)
        check(lint.returncode == 0, "promtool check metrics: %s%s\n%s" % (
            lint.stdout.decode(errors="replace"), lint.stderr.decode(errors="replace"), body))
        return body


def promtool():
    # CI installs Debian's prometheus package (scripts/deps.sh): without it this fails.
    path = shutil.which("promtool")
    if path is None:
        raise Failure("promtool not found: install the 'prometheus' package (scripts/deps.sh)")
    return path


def value(body, series):
    """The value of one sample ("name" or 'name{label="x"}'); None if absent."""
    match = re.search(r"^%s (\S+)$" % re.escape(series), body, re.M)
    return float(match.group(1)) if match else None


def metrics_desk(**kwargs):
    technicians.Relay = MetricsRelay
    return Desk(**kwargs)


@case
def case_a_session_moves_the_counters_and_every_scrape_passes_promtool():
    policy = write_policy([{"roles": ["tier2"], "scopes": ["exec"], "max_duration": "10m"}])
    desk = metrics_desk(agent_options=["--policy", policy])
    relay = desk.relay
    before = relay.scrape()
    check(value(before, "tierline_agents_connected") == 1, "agents: " + before)
    check(value(before, 'tierline_enrollments_total{result="enrolled"}') == 1, before)
    check(value(before, 'tierline_sessions_total{kind="run"}') == 0, before)
    check(value(before, "tierline_relay_start_time_seconds") > 0, before)
    audit_before = value(before, "tierline_audit_entries_total")
    check(audit_before > 0, "the agent's ticket wrote audit entries: " + before)

    _, out, _ = desk.ssh("bob", "run", desk.ticket, "--", "echo", "counted")
    check(out == "counted\n", "run: %r" % out)

    def after_session():
        body = relay.scrape()
        return body if value(body, 'tierline_sessions_active{kind="run"}') == 0 else None
    after = wait_for("the run session to end in the metrics", after_session)
    check(value(after, 'tierline_sessions_total{kind="run"}') == 1, after)
    check(value(after, 'tierline_sessions_total{kind="shell"}') == 0, after)
    check(value(after, 'tierline_relayed_bytes_total{direction="to_technician"}') >= 8, after)
    check(value(after, "tierline_consent_questions_total") == 1, after)
    check(value(after, 'tierline_consent_answers_total{answer="granted"}') == 1, after)
    check(value(after, "tierline_audit_entries_total") > audit_before, after)
    check(value(after, "tierline_agents_connected") == 1, after)
    check(value(after, "tierline_store_job_duration_seconds_count") > 0, after)
    # The ticket gauges come from the storage worker's last gathering, not from this scrape.
    queued = wait_for("the open ticket in the tier-1 gauge", lambda: value(
        relay.scrape(), 'tierline_tickets_queued{tier="1"}') == 1, timeout=60)
    check(queued, "tier-1 queue gauge")

    desk.agent.stop()
    gone = wait_for("the agent gone from the gauge",
                    lambda: value(relay.scrape(), "tierline_agents_connected") == 0)
    check(gone, "agents gauge")


@case
def case_a_non_loopback_address_is_refused_without_metrics_public():
    relay = Relay("relay")
    port = free_port()
    out, err = run(BIN + "/tierline-relay", "serve", "--data", relay.dir, "--listen",
                   "127.0.0.1:%d" % relay.port, "--metrics-listen", "0.0.0.0:%d" % port,
                   expect=1, timeout=60)
    check("not a loopback address" in err and "--metrics-public" in err, "stderr: " + err)
    check(not relay.accepting(), "the relay serves agents after refusing its metrics address")
    # Not an address at all: a bad value, refused as the command line is read (exit 2).
    _, err = run(BIN + "/tierline-relay", "serve", "--data", relay.dir, "--metrics-listen",
                 "localhost", expect=2, timeout=60)
    check("--metrics-listen" in err and "wants ADDR:PORT" in err, "stderr: " + err)


def sockets(port):
    """The machine's TCP sockets on port, as ss shows them (for a failure's message)."""
    try:
        proc = subprocess.run(["ss", "-tan", "sport = :%d or dport = :%d" % (port, port)],
                              capture_output=True, text=True, timeout=30)
    except OSError as error:
        return "(ss: %s)" % error
    return proc.stdout


def http_exchange(port, request, source="127.0.0.1"):
    """Sends request, reads until the relay closes: the response bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20,
                                  source_address=(source, 0)) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@case
def case_one_address_flooding_does_not_stop_another_and_memory_stays_bounded():
    relay = MetricsRelay("relay")
    if "ASAN_OPTIONS" in os.environ:
        # Freed memory in AddressSanitizer's quarantine would look like growth.
        relay.env = dict(os.environ)
        relay.env["ASAN_OPTIONS"] += ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    relay.start()
    wait_for("the metrics port", lambda: relay.scrape() is not None)
    # 100 connections from one address, held open and silent.
    flood = []
    try:
        for _ in range(100):
            try:
                flood.append(socket.create_connection(("127.0.0.1", relay.metrics_port),
                                                      timeout=5, source_address=("127.0.0.1", 0)))
            except OSError:
                break
        check(len(flood) >= 10, "only %d connections made" % len(flood))
        body = relay.scrape(source="127.0.0.2")
        check(value(body, "tierline_agents_connected") == 0, "scrape from 127.0.0.2: " + body)
    finally:
        for sock in flood:
            sock.close()
    check("metrics connection refused peer=127.0.0.1 limit=per-address" in relay.log_text(),
          "the flood was not refused per address")
    # The flood's connections end when their peer does: 127.0.0.1 is served again.
    wait_for("127.0.0.1 served again", lambda: http_exchange(
        relay.metrics_port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 "))
    # Request lines of 1 MB: refused after the bound, the relay's memory does not follow.
    # (From an address of their own: the flood's last connections may still be in the listen
    # backlog, each held by the relay until it reads its end.)
    big = b"GET /" + b"a" * (1024 * 1024) + b" HTTP/1.1\r\n\r\n"
    baseline = None
    for i in range(40):
        response = http_exchange(relay.metrics_port, big, source="127.0.0.3")
        check(response.startswith(b"HTTP/1.1 431 "), "1 MB request line %d: %r; sockets:\n%s" % (
            i, response[:80], sockets(relay.metrics_port)))
        if i == 4:
            baseline = relay_rss_kb(relay)
    grown = relay_rss_kb(relay) - baseline
    check(grown < 2048, "relay grew %d KiB over 35 requests of 1 MB" % grown)
    body = relay.scrape(source="127.0.0.2")
    check(value(body, "tierline_agents_connected") == 0, "scrape after: " + body)
    check(relay.alive(), "the relay died")


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("metrics.py BIN_DIR", "tl-metrics-", setup_globals, track_popen=True,
                         home=True))
