#!/usr/bin/env python3
"""The web view (docs/web.md) against a real relay and agent: links from the stock OpenSSH
client's `ssh ... web`, pages read in Debian's headless chromium (driven by playwright-core,
tests/integ/browser/drive.js) and with plain HTTP requests. Each case runs in its own process:

    web.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import relay_agent
import replay
import technicians
from technicians import Desk
import tlcase
from tlcase import case, check, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = '<script>alert("x")</script><b id="pwned">bold</b> & "quotes" \x1b[2J'


class Web:
    """A desk whose relay serves the web view on a loopback port."""

    def __init__(self, link_ms=None, recorded=False, extra=()):
        self.port = free_port()
        args = ["--web-listen", "127.0.0.1:%d" % self.port] + list(extra)
        if link_ms is not None:
            args += ["--web-link-ms", str(link_ms)]
        if recorded:
            self.desk, self.grant, self.recording = replay.recorded_session(relay_args=args)
        else:
            self.desk = Desk(relay_args=args)
        self.base = "http://127.0.0.1:%d" % self.port

    def link(self, user):
        """A one-time link, as `ssh user@relay web` prints it."""
        _, out, _ = self.desk.ssh(user, "web")
        url = out.splitlines()[0]
        check(url.startswith(self.base + "/signin?token="), "web printed %r" % out)
        return url

    def get(self, path, cookie=None, method="GET", headers=None, body=None):
        """(status, headers, body bytes) of one plain request, no redirects followed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = dict(headers or {})
            if cookie is not None:
                sent["Cookie"] = cookie
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def sign_in(self, user):
        """Signs user in with a fresh link; returns the cookie ("tl_session=...")."""
        url = self.link(user)
        status, headers, _ = self.get(url[len(self.base):])
        check(status == 303, "sign-in answered %d" % status)
        cookie = dict(headers)["Set-Cookie"]
        return cookie.split(";")[0]

    def browse(self, steps):
        """The steps in one chromium: a result per step, then {cookies, console}."""
        browser_dir = os.path.join(technicians.BIN, "..", "tests", "browser")
        plan = os.path.join(technicians.WORK, "plan.json")
        result = os.path.join(technicians.WORK, "result.json")
        with open(plan, "w") as f:
            json.dump({"chromium": CHROMIUM, "steps": steps}, f)
        env = dict(os.environ, NODE_PATH=os.path.join(browser_dir, "node_modules"))
        proc = subprocess.run(["node", os.path.join(HERE, "browser", "drive.js"), plan, result],
                              capture_output=True, text=True, timeout=180, env=env,
                              stdin=subprocess.DEVNULL)
        check(proc.returncode == 0, "the browser failed: %s %s" % (proc.stdout, proc.stderr))
        with open(result) as f:
            return json.load(f)


def png_colours(path):
    """How many different byte values the PNG's pixels hold (a blank page has one or two)."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path)
    at, idat = 8, b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    return len(set(zlib.decompress(idat)))


# ---- signing in and reading the desk -------------------------------------------------------

@case
def case_a_link_signs_in_and_the_pages_show_hostile_text_as_text():
    web = Web()
    hostile, _, _, _ = web.desk.agent.help(HOSTILE)
    link = web.link("alice")
    shot_queues = os.path.join(technicians.WORK, "queues.png")
    shot_ticket = os.path.join(technicians.WORK, "ticket.png")
    results = web.browse([
        {"url": link, "waitSelector": "#tickets", "screenshot": shot_queues},
        {"url": web.base + "/ticket/" + hostile, "waitSelector": "#timeline",
         "screenshot": shot_ticket},
    ])
    queues, ticket, extra = results
    check(queues["finalUrl"] == web.base + "/" and queues["status"] == 200,
          "after the link: %s %d" % (queues["finalUrl"], queues["status"]))
    check("alice (tier1)" in queues["text"] and web.desk.ticket in queues["text"] and
          hostile in queues["text"], "the queues: %r" % queues["text"][:600])
    # The hostile title is text: shown with its characters, never markup in the page.
    shown_title = HOSTILE.replace("\x1b", "\\x1b")
    for page in (queues, ticket):
        check(shown_title in page["text"], "the title as text: %r" % page["text"][:800])
        check(not page["pwned"] and '<b id="pwned">' not in page["html"] and
              "<script>alert" not in page["html"],
              "hostile markup in the page: %r" % page["html"][:1500])
    check(ticket["status"] == 200 and "Timeline" in ticket["text"] and "Evidence" in ticket["text"],
          "the ticket page: %r" % ticket["text"][:600])
    cookies = {c["name"]: c for c in extra["cookies"]}
    session = cookies.get("tl_session")
    check(session is not None and session["httpOnly"] and session["sameSite"] == "Strict" and
          not session["secure"], "the session cookie: %r" % extra["cookies"])
    for shot in (shot_queues, shot_ticket):
        check(png_colours(shot) > 8, "%s looks blank" % shot)
    # The link worked once: a second time it is refused, and so is a page without the cookie.
    status, _, body = web.get(link[len(web.base):])
    check(status == 403 and b"already used" in body, "the link again: %d %r" % (status, body))
    status, headers, body = web.get("/")
    check(status == 401 and b"Sign in" in body, "no cookie: %d %r" % (status, body))
    status, headers, _ = web.get("/", cookie="tl_session=" + "0" * 64)
    check(status == 401, "a made-up cookie: %d" % status)
    # The security headers of every page.
    status, headers, _ = web.get("/", cookie="tl_session=%s" % session["value"])
    headers = dict(headers)
    check(status == 200 and "script-src 'self'" in headers["Content-Security-Policy"] and
          "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1]
          .split(";")[0] and headers["X-Frame-Options"] == "DENY" and
          headers["Cache-Control"] == "no-store", "headers: %r" % headers)
    # On the record: the link and the sign-in, each as alice.
    actions = [(e["action"], e["actor"]) for e in web.desk.audit()]
    check(("web.link", "tech:alice") in actions and ("web.signin", "tech:alice") in actions,
          "audit: %r" % actions[-8:])


@case
def case_a_disabled_or_removed_account_loses_its_web_session_and_links():
    web = Web()
    cookies = {user: web.sign_in(user) for user in ("alice", "bob", "carol")}
    link = web.link("bob")  # made, not yet opened
    for user, cookie in cookies.items():
        status, _, _ = web.get("/", cookie=cookie)
        check(status == 200, "%s before: %d" % (user, status))
    tlcase.run(technicians.BIN + "/tierline-relay", "user", "disable", "bob", "--data",
               web.desk.relay.dir)
    wait_for("bob's session to end", lambda: web.get("/", cookie=cookies["bob"])[0] == 401,
             interval=0.2)
    status, _, body = web.get(link[len(web.base):])
    check(status == 403 and b"signed in" not in body, "bob's unused link: %d %r" % (status, body))
    check(re.search(r'web session ended user=bob reason="account disabled"',
                    web.desk.relay.log_text()), "the relay's log does not say why")
    tlcase.run(technicians.BIN + "/tierline-relay", "user", "remove", "carol", "--data",
               web.desk.relay.dir)
    wait_for("carol's session to end", lambda: web.get("/", cookie=cookies["carol"])[0] == 401,
             interval=0.2)
    # alice is untouched.
    status, _, _ = web.get("/", cookie=cookies["alice"])
    check(status == 200, "alice after: %d" % status)


@case
def case_a_link_is_refused_once_its_time_has_passed():
    web = Web(link_ms=1000)
    before = time.monotonic()
    link = web.link("alice")
    # Wait past the link's second (bounded), then open it.
    wait_for("the link's second to pass", lambda: time.monotonic() - before > 1.5, timeout=10)
    status, _, body = web.get(link[len(web.base):])
    check(status == 403 and b"expired" in body, "an old link: %d %r" % (status, body))
    # Taken, even late: a second try does not say "expired" any more.
    status, _, body = web.get(link[len(web.base):])
    check(status == 403 and b"already used" in body, "again: %d %r" % (status, body))
    check("web.signin" not in [e["action"] for e in web.desk.audit()], "signed in anyway")


@case
def case_a_vendor_sees_only_its_tickets_and_tier1_no_audit():
    web = Web()
    vera = web.sign_in("vera")
    status, _, body = web.get("/ticket/" + web.desk.ticket, cookie=vera)
    check(status in (403, 404) and b"printer" not in body,
          "vera and a ticket not hers: %d %r" % (status, body[:400]))
    status, _, body = web.get("/", cookie=vera)
    check(status == 200 and web.desk.ticket.encode() not in body,
          "vera's queue: %d %r" % (status, body[:600]))
    alice = web.sign_in("alice")
    status, _, body = web.get("/audit", cookie=alice)
    check(status == 403 and b"permission denied" in body, "tier1 and /audit: %d %r" % (
        status, body[:400]))


@case
def case_evidence_downloads_with_its_sha256_checked():
    web = Web()
    alice = web.sign_in("alice")
    shown = web.desk.relay.ticket(web.desk.ticket)
    item = shown["evidence"][0]
    status, headers, body = web.get("/ticket/%s/evidence/%s" % (web.desk.ticket, item["hash"]),
                                    cookie=alice)
    headers = dict(headers)
    check(status == 200 and hashlib.sha256(body).hexdigest() == item["hash"] and
          headers["X-Content-SHA256"] == item["hash"], "download: %d %r" % (status, headers))
    status, _, body = web.get("/ticket/%s" % web.desk.ticket, cookie=alice)
    check(status == 200 and item["hash"].encode() in body, "the hash shown: %d" % status)
    status, _, _ = web.get("/ticket/%s/evidence/%s" % (web.desk.ticket, "f" * 64), cookie=alice)
    check(status in (404, 500) or status == 400, "an unknown item: %d" % status)
    status, _, _ = web.get("/ticket/%s/evidence/nothex" % web.desk.ticket, cookie=alice)
    check(status == 400, "not a hash: %d" % status)


# ---- recordings, the audit log, the report ---------------------------------------------------

@case
def case_a_recording_plays_in_the_player_with_its_markers():
    web = Web(recorded=True)
    link = web.link("audrey")
    shot = os.path.join(technicians.WORK, "player.png")
    results = web.browse([
        {"url": link, "waitSelector": "#tickets"},
        {"url": web.base + "/ticket/" + web.desk.ticket, "waitSelector": "a.replay"},
        {"url": web.base + "/replay/" + web.grant, "waitText": "typed-42", "screenshot": shot,
         "timeoutMs": 60000},
    ])
    _, ticket, player, extra = results
    check("play the recording" in ticket["text"], "no recording link: %r" % ticket["text"][:800])
    check(player["waited"] and "typed-42" in player["text"],
          "the player never showed the session: %r %r" % (player["text"][:800],
                                                          extra["console"]))
    check("ap-player" in player["html"] or "ap-terminal" in player["html"],
          "no player in the page: %r" % player["html"][:800])
    check(png_colours(shot) > 8, "the player's screenshot looks blank")
    cast = web.get("/cast/" + web.grant, cookie=web.sign_in("audrey"))
    lines = cast[2].decode().splitlines()
    check(cast[0] == 200 and json.loads(lines[0])["version"] == 2 and
          any(json.loads(line)[1] == "m" for line in lines[1:]),
          "the cast and its markers: %d %r" % (cast[0], lines[:4]))


@case
def case_auditors_search_the_log_and_read_the_report():
    web = Web()
    link = web.link("audrey")
    shot = os.path.join(technicians.WORK, "report.png")
    results = web.browse([
        {"url": link, "waitSelector": "#tickets"},
        {"url": web.base + "/audit?action=web.signin", "waitSelector": "#entries"},
        {"url": web.base + "/report", "waitSelector": "#chart-tiers", "screenshot": shot},
    ])
    _, audit, report, _ = results
    check("verified" in audit["text"] and "web.signin" in audit["text"] and
          "tech:audrey" in audit["text"], "the audit page: %r" % audit["text"][:1200])
    check("not verified" not in audit["text"], "the log did not verify: %r" % audit["text"][:600])
    check(report["status"] == 200 and "Tickets per tier" in report["text"] and
          "<svg" in report["html"], "the report: %r" % report["text"][:600])
    check(png_colours(shot) > 8, "the report's screenshot looks blank")
    # The auditor's search is on the record, as over SSH.
    check("audit.search" in [e["action"] for e in web.desk.audit()], "no audit.search entry")


# ---- bad input --------------------------------------------------------------------------------

@case
def case_bad_requests_get_clear_answers():
    web = Web()
    alice = web.sign_in("alice")
    status, headers, _ = web.get("/", method="POST", cookie=alice, body=b"x=1")
    check(status == 405 and dict(headers).get("Allow") == "GET, HEAD", "POST: %d" % status)
    status, _, _ = web.get("/", cookie=alice, headers={"X-Big": "a" * 40000})
    check(status in (413, 431), "a 40 kB header: %d" % status)
    for path in ("/ticket/T-0x", "/ticket/../etc/passwd", "/nothing", "/ticket/T-999999",
                 "/replay/", "/cast/", "/cast/--force", "/replay/-x"):
        status, _, _ = web.get(path, cookie=alice)
        check(status in (400, 404), "%s: %d" % (path, status))
    for token in ("", "x", "0" * 64, "Z" * 64, "a" * 10000):
        status, _, _ = web.get("/signin?token=" + token)
        check(status in (403, 413, 414, 431), "token %r...: %d" % (token[:8], status))
    status, _, body = web.get("/?tier=--json", cookie=alice)
    check(status == 400, "an option as a value: %d %r" % (status, body[:200]))
    status, _, body = web.get("/?tier=9", cookie=alice)
    check(status == 400, "tier 9: %d %r" % (status, body[:200]))
    # web --json: the link as data.
    shown = web.desk.ssh_json("bob", "web")
    check(shown["url"].startswith(web.base + "/signin?token=") and shown["valid_seconds"] == 60,
          "web --json: %r" % shown)
    # Still serving, and nothing was signed in by any of it.
    status, _, _ = web.get("/", cookie=alice)
    check(status == 200, "after the bad requests: %d" % status)
    signins = [e for e in web.desk.audit() if e["action"] == "web.signin"]
    check(len(signins) == 1, "sign-ins: %r" % signins)


@case
def case_plain_http_off_loopback_and_half_tls_are_refused():
    relay = relay_agent.Relay("plain")
    relay.ssh_port = free_port()
    for extra, says in ((["--web-listen", "0.0.0.0:%d" % free_port()], "not a loopback"),
                        (["--web-listen", "127.0.0.1:%d" % free_port(), "--web-cert",
                          "/nonexistent"], "go together"),
                        (["--web-listen", "nowhere"], "wants ADDR:PORT")):
        proc = subprocess.run([technicians.BIN + "/tierline-relay", "serve", "--data", relay.dir,
                               "--ssh-listen", "127.0.0.1:%d" % relay.ssh_port] + extra,
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        check(proc.returncode != 0 and says in proc.stderr,
              "%r: %d %r" % (extra, proc.returncode, proc.stderr))


@case
def case_web_says_so_when_the_view_is_off():
    desk = Desk()
    status, out, err = desk.ssh("alice", "web", check_status=1)
    check("web view is off" in err and out == "", "web without the view: %r %r" % (out, err))


@case
def case_https_sets_a_secure_cookie():
    key = os.path.join(technicians.WORK, "web.key")
    cert = os.path.join(technicians.WORK, "web.crt")
    tlcase.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
               "-addext", "subjectAltName=IP:127.0.0.1")
    os.chmod(key, 0o600)
    web = Web(extra=["--web-cert", cert, "--web-key", key])
    _, out, _ = web.desk.ssh("alice", "web")
    url = out.splitlines()[0]
    check(url.startswith("https://127.0.0.1:%d/signin?token=" % web.port), "link: %r" % url)
    proc = subprocess.run(["curl", "-sS", "--cacert", cert, "-D", "-", "-o", "/dev/null", url],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    headers = proc.stdout.lower()
    check(proc.returncode == 0 and " 303" in headers.splitlines()[0] and "; secure" in headers and
          "httponly" in headers and "samesite=strict" in headers, "https sign-in: %r %r" % (
              proc.stdout, proc.stderr))


@case
def case_no_link_and_no_session_while_the_audit_log_cannot_be_written():
    web = Web()
    desk = web.desk
    # Logged in before the log is spoiled (a login is itself audited), on a shared connection.
    control = os.path.join(technicians.WORK, "alice.control")
    base = desk.ssh_argv("alice")[:-1]
    master = subprocess.Popen(base + ["-o", "ControlMaster=yes", "-o", "ControlPath=" + control,
                                      "-N", "alice@127.0.0.1"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shared = base + ["-o", "ControlPath=" + control, "alice@127.0.0.1"]
    try:
        wait_for("the shared connection", lambda: os.path.exists(control))
        link = web.link("alice")
        # The log's last line altered in a copy put in its place: the relay writes no more.
        log = os.path.join(desk.relay.dir, "audit.log")
        with open(log, "rb") as f:
            data = f.read()
        last = data.rstrip(b"\n").rfind(b"\n") + 1
        altered = data[:last] + data[last:].replace(b'"time":"2', b'"time":"1', 1)
        check(altered != data, "the last line has no time")
        os.rename(log, log + ".away")
        with open(log, "wb") as f:
            f.write(altered)
        proc = subprocess.run(shared + ["web"], capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        check(proc.returncode == 1 and proc.stdout == b"" and b"no link" in proc.stderr,
              "web without a log: %d %r %r" % (proc.returncode, proc.stdout, proc.stderr))
        status, headers, body = web.get(link[len(web.base):])
        check(status == 503 and "Set-Cookie" not in dict(headers),
              "a sign-in without a log: %d %r" % (status, body[:300]))
    finally:
        master.kill()
        master.wait(timeout=20)


@case
def case_the_relay_stops_cleanly_with_the_view_open():
    web = Web()
    alice = web.sign_in("alice")
    # An idle connection held open, and a page just read: SIGTERM still ends the relay at once.
    idle = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    idle.connect()
    status, _, _ = web.get("/", cookie=alice)
    check(status == 200, "a page before the stop: %d" % status)
    web.desk.relay.proc.send_signal(signal.SIGTERM)
    code = web.desk.relay.proc.wait(timeout=60)
    idle.close()
    with open(web.desk.relay.log_path, errors="replace") as f:
        log = f.read()
    check(code == 0 and "relay stopped" in log and "AddressSanitizer" not in log and
          "LeakSanitizer" not in log, "exit %d, log: %s" % (code, log[-2000:]))


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("web.py BIN_DIR", "tl-web-", setup_globals, track_popen=True,
                         home=True))
