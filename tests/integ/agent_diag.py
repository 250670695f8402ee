#!/usr/bin/env python3
"""tierline-agent diag, run as a user would (docs/diagnostics.md): the JSON parses and has
every section (an error section where this machine lacks the thing, and then only the
error), the text has every heading with the known problems first, bad options are usage
errors (exit 2) with nothing on stdout, --relay reaches a listener, an enrolled agent's diag
checks its own relay (a real one, serving and then stopped), and a knowledge-base
directory whose article is made to fire puts it at the top, with a bad article skipped and
named. Every check of the network stays on loopback: the internet probe is pointed at a
listener here.

Each case is its own test: agent_diag.py BIN_DIR CASE."""
import json
import os
import re
import select
import signal
import socket
import sys

import relay_agent
import tlcase
from tlcase import Failure, case, check, run

SECTIONS = ["system", "cpu", "memory", "disks", "network", "processes", "services", "sockets",
            "time", "logs", "printers", "wifi", "packages", "users", "internet",
            "kernel_messages", "agent", "hardware"]
# Sources every Linux has: these sections are data here, never errors.
ALWAYS = ["system", "cpu", "memory", "processes", "sockets", "users", "internet", "agent",
          "hardware"]

BIN = WORK = None


def env():
    """The environment the agent runs in: its state here, the internet check on loopback."""
    e = dict(os.environ)
    e["TIERLINE_AGENT_STATE"] = os.path.join(WORK, "state")
    e["TIERLINE_DIAG_LOOKUP"] = "localhost"
    e["TIERLINE_DIAG_CONNECT"] = "127.0.0.1:9"
    e.pop("TIERLINE_DIAG_SKIP", None)  # these cases run every probe unless one says otherwise
    return e


def diag(*args, expect=0, skip=None):
    e = env()
    if skip is not None:
        e["TIERLINE_DIAG_SKIP"] = skip
    return run(os.path.join(BIN, "tierline-agent"), "diag", *args, expect=expect, timeout=120,
               env=e)


def report(*args, skip=None):
    out, err = diag("--json", *args, skip=skip)
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise Failure("diag --json is not JSON (%s): %s" % (e, out[:500]))
    check(doc.get("schema") == 1 and isinstance(doc.get("host"), str),
          "bad header: %r" % {k: doc.get(k) for k in ("schema", "host", "collected_at")})
    check(list(doc["sections"]) == SECTIONS,
          "sections %s, expected %s" % (list(doc["sections"]), SECTIONS))
    for name, section in doc["sections"].items():
        check(isinstance(section, dict) and section, "section %s is %r" % (name, section))
        if "error" in section:
            check(list(section) == ["error"] and isinstance(section["error"], str),
                  "section %s: an error section holds one string: %r" % (name, section))
            check(name not in ALWAYS, "section %s is an error here: %s" % (name, section["error"]))
    return doc, err


def write_article(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write(text)


@case
def case_probes_left_out_say_so_and_a_bad_list_leaves_none_out():
    # Named probes are not run; their sections say so and every other section is as ever.
    doc, err = report(skip="packages, printers")
    left_out = {"skipped": True, "note": "left out (TIERLINE_DIAG_SKIP)"}
    for name in ("packages", "printers"):
        check(doc["sections"][name] == left_out, "%s: %r" % (name, doc["sections"][name]))
    check(err == "", "stderr: %r" % err)
    check(doc["sections"]["system"].get("hostname"), "system: %r" % doc["sections"]["system"])
    # A name that is no probe, or a list too long: said on stderr, and every probe runs.
    for bad in ("packages,pakages", "packages," * 40):
        doc, err = report(skip=bad)
        check("TIERLINE_DIAG_SKIP is not a list of probe names: every probe runs" in err,
              "%r: stderr %r" % (bad[:40], err))
        check(all("skipped" not in s for s in doc["sections"].values()),
              "%r left a probe out" % bad[:40])
        check(doc["sections"]["packages"].get("manager") or "error" in doc["sections"]["packages"],
              "%r: packages %r" % (bad[:40], doc["sections"]["packages"]))


@case
def case_json_has_every_section():
    doc, _ = report()
    sections = doc["sections"]
    check(sections["network"].get("relay", {}).get("status") == "not configured",
          "relay without --relay: %r" % sections["network"].get("relay"))
    check(sections["internet"]["connect"]["address"] == "127.0.0.1:9",
          "internet check not on loopback: %r" % sections["internet"])
    check(sections["agent"]["status"] == "not running" and
          sections["agent"]["state_dir"] == os.path.join(WORK, "state"),
          "agent: %r" % sections["agent"])
    # The summary comes first, from the build's copy of kb/.
    check(list(doc)[:5] == ["schema", "collected_at", "host", "problems", "knowledge_base"],
          "members: %s" % list(doc))
    kb = doc["knowledge_base"]
    check(kb.get("articles", 0) >= 15 and kb.get("skipped") == [], "knowledge base: %r" % kb)
    check(isinstance(doc["problems"], list), "problems: %r" % doc["problems"])


@case
def case_text_has_every_heading_and_the_summary_first():
    out, _ = diag()
    for name in SECTIONS:
        check("\n== %s: " % name in out, "no heading for %s in:\n%s" % (name, out))
    first_heading = out.index("\n== ")
    summary = max(out.find("Problems found: "), out.find("No known problems found ("))
    check(0 < summary < first_heading, "the summary is not above the sections:\n%s" % out[:2000])


@case
def case_bad_options_are_usage_errors():
    for args, needle in ((["--bogus"], "unknown option '--bogus'"),
                         (["--timeout-ms"], "needs a value"),
                         (["--timeout-ms", "0"], "--timeout-ms"),
                         (["--timeout-ms", "12x"], "--timeout-ms"),
                         (["--relay", "nohostport"], "--relay"),
                         (["--lookup", "two words"], "--lookup wants a host name or 'off'"),
                         (["--connect", "127.0.0.1"], "--connect wants HOST:PORT"),
                         (["--kb"], "needs a value"),
                         (["--state", ""], "needs a value")):
        out, err = diag(*args, expect=2)
        check(needle in err and not out,
              "diag %s: stdout %r, stderr %r" % (" ".join(args), out, err))
    help_text, _ = run(os.path.join(BIN, "tierline-agent"), "--help")
    check("diag [--json]" in help_text, "--help does not list diag: %s" % help_text)


@case
def case_relay_and_internet_reach_loopback_listeners():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        doc, _ = report("--relay", "127.0.0.1:%d" % port, "--lookup", "localhost",
                        "--connect", "127.0.0.1:%d" % port)
        # Both checks connected here: two connections wait to be accepted.
        accepted = 0
        while accepted < 2 and select.select([listener], [], [], 5)[0]:
            listener.accept()[0].close()
            accepted += 1
    relay = doc["sections"]["network"].get("relay")
    check(relay and relay.get("reachable") is True, "relay on port %d: %r" % (port, relay))
    internet = doc["sections"]["internet"]
    check(internet["status"] == "online" and internet["dns"]["resolved"] is True and
          internet["connect"]["connected_to"] == "127.0.0.1", "internet: %r" % internet)
    check(accepted == 2, "the listener saw %d connections, expected 2" % accepted)


def relay_status(*args):
    """network.relay of diag --json: only that is checked here (the whole report is, above), so
    the slow packages probe is left out."""
    out, _ = diag("--json", *args, skip="packages")
    try:
        return json.loads(out)["sections"]["network"]["relay"]
    except (ValueError, KeyError) as e:
        raise Failure("no network.relay in diag --json (%s): %s" % (e, out[:500]))


@case
def case_an_enrolled_agent_checks_its_own_relay_up_and_down():
    relay = relay_agent.Relay("relay").start()
    state = os.path.join(WORK, "state")
    run(os.path.join(BIN, "tierline-agent"), "enroll", relay.code(), "--state", state)
    address = "127.0.0.1:%d" % relay.port
    # Serving: no --relay, and the network probe tries the enrolled relay.
    found = relay_status()
    check(found.get("configured") is True and found.get("source") == "enrolled" and
          found.get("address") == address and found.get("reachable") is True and
          found.get("status") == "reachable" and found.get("connected_to") == "127.0.0.1",
          "relay serving: %r" % found)
    out, _ = diag(skip="packages")
    check(re.search(r"\n  relay\.source: +enrolled\n", out) and
          re.search(r"\n  relay\.address: +%s\n" % re.escape(address), out),
          "the text lacks the relay:\n%s" % out)
    # Stopped: unreachable, with the reason; nothing else of the report changes.
    relay.kill(signal.SIGTERM)
    found = relay_status()
    check(found.get("source") == "enrolled" and found.get("reachable") is False and
          found.get("status") == "unreachable" and found.get("reason") == "Connection refused",
          "relay stopped: %r" % found)
    # --relay still chooses.
    found = relay_status("--relay", "127.0.0.1:9")
    check(found.get("source") == "--relay" and found.get("address") == "127.0.0.1:9",
          "--relay: %r" % found)
    # A damaged relay.json: not configured, and why; the report is whole all the same.
    with open(os.path.join(state, "relay.json"), "w") as f:
        f.write('{"host": ')
    found = relay_status()
    check(found.get("configured") is False and found.get("status") == "not configured" and
          found.get("error") == os.path.join(state, "relay.json") +
          " cannot be read: it is damaged", "damaged relay.json: %r" % found)


@case
def case_known_problems_from_a_knowledge_base_directory():
    kb = os.path.join(WORK, "kb")
    # Fires on any machine whose system section is data; the other never does.
    write_article(kb, "named-host.md",
                  "---\nid: named-host\ntitle: This machine has a name\ncategory: other\n"
                  "when: system.hostname != \"\"\nwords: name\n---\nNothing to do.\n")
    write_article(kb, "negative-memory.md",
                  "---\nid: negative-memory\ntitle: Memory below zero\ncategory: performance\n"
                  "when: memory.total_bytes < 0\n---\nImpossible.\n")
    write_article(kb, "bad.md", "---\nid: bad\ncolour: blue\n---\nx\n")
    doc, err = report("--kb", kb)
    problems = doc["problems"]
    check([p["id"] for p in problems] == ["named-host"], "problems: %r" % problems)
    host = doc["sections"]["system"]["hostname"]
    check(problems[0]["title"] == "This machine has a name" and
          problems[0]["evidence"] == 'system.hostname = "%s"' % host,
          "problem: %r (host %r)" % (problems[0], host))
    summary = doc["knowledge_base"]
    check(summary["directory"] == kb and summary["articles"] == 2, "summary: %r" % summary)
    check([s["file"] for s in summary["skipped"]] == ["bad.md"] and
          summary["skipped"][0]["reason"].startswith("bad.md:3: unknown key 'colour'"),
          "skipped: %r" % summary["skipped"])
    check("knowledge-base article skipped" in err and "bad.md" in err,
          "no log line for the skipped article: %r" % err)

    # The text's summary, then without articles: the packages probe left out (it is above).
    out, _ = diag("--kb", kb, skip="packages")
    top = out[:out.index("\n== ")]
    for line in ("Problems found: 1 (2 articles checked)",
                 "  1. This machine has a name [named-host]",
                 '     evidence: system.hostname = "%s"' % host,
                 "Skipped knowledge-base articles: 1",
                 "  - bad.md:3: unknown key 'colour'"):
        check(line in top, "%r is not in the summary:\n%s" % (line, top))

    # No article holds: said so; no directory: said so, and the report is printed all the same.
    os.remove(os.path.join(kb, "named-host.md"))
    out, _ = diag("--kb", kb, skip="packages")
    check("\nNo known problems found (1 article checked).\n" in out, out[:1000])
    out, _ = diag("--kb", os.path.join(WORK, "nowhere"), skip="packages")
    check("\nKnown problems were not checked: cannot read the knowledge base: " in out and
          "\n== hardware: " in out, out[:1000])


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("agent_diag.py BIN_DIR", "tl-diag-", setup_globals, track_popen=True,
                         home=True))
