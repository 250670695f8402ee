#!/usr/bin/env python3
"""The relay's knowledge base end to end (docs/kb.md "The relay's knowledge base"): an admin adds,
replaces and removes articles with tierline-relay kb on a real relay's folder; technicians and
auditors read them over SSH with the stock OpenSSH client from the running relay. Each case runs
in its own process:

    kb_admin.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import relay_agent
from relay_agent import Relay
import technicians
import tlcase
from tlcase import Failure, case, check, free_port, wait_for

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHIPPED = sorted(glob.glob(os.path.join(SOURCE, "kb", "*.md")))
ROLES = technicians.ROLES  # alice tier1, bob tier2, carol tier3, vera tier4, audrey auditor, adam admin

LIST_KEYS = {"id", "title", "category", "state", "runbook", "revision", "sha256", "added",
             "added_by", "updated", "ticket", "published", "published_by", "suggested", "applied",
             "recheck_passed", "rate", "needs_editing"}
SHOW_KEYS = LIST_KEYS | {"when", "recheck", "params", "words", "body"}


class KbRelay:
    """A serving relay with technician accounts, and the admin's kb command beside it."""

    def __init__(self):
        self.relay = Relay("relay")
        self.relay.ssh_port = free_port()
        self.keys = self.relay.add_technicians(ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", status=None)[0] == 0)

    def kb(self, *words, status=0):
        """tierline-relay kb WORDS --data DIR: (exit status, stdout, stderr)."""
        proc = subprocess.run([relay_agent.BIN + "/tierline-relay", "kb", *words, "--data",
                               self.relay.dir], capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if status is not None and proc.returncode != status:
            raise Failure("kb %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                " ".join(words), proc.returncode, status, out, err))
        return proc.returncode, out, err

    def kb_json(self, *words):
        return json.loads(self.kb(*words, "--json")[1])

    def ssh(self, user, *words, status=0):
        """One command as user over SSH: (exit status, stdout bytes, stderr text)."""
        argv = ["ssh", "-F", "/dev/null", "-i", self.keys[user], "-p", str(self.relay.ssh_port),
                "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                user + "@127.0.0.1"] + list(words)
        proc = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if status is not None and proc.returncode != status:
            raise Failure("ssh %s %s: exit %d, expected %d\nstdout: %r\nstderr: %s" % (
                user, " ".join(words), proc.returncode, status, proc.stdout,
                proc.stderr.decode(errors="replace")))
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def ssh_json(self, user, *words):
        return json.loads(self.ssh(user, *words, "--json")[1])

    def audit(self):
        with open(os.path.join(self.relay.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def kb_audit(self):
        return [(e["action"], e["subject"]) for e in self.audit() if e["action"].startswith("kb.")]

    def db(self, sql, args=()):
        db = sqlite3.connect(os.path.join(self.relay.dir, "relay.db"), timeout=30)
        try:
            db.execute(sql, args)
            db.commit()
        finally:
            db.close()

    def snapshot(self):
        """What a refused command must leave as it was: the articles and the audit log."""
        with open(os.path.join(self.relay.dir, "audit.log"), "rb") as f:
            log = f.read()
        return self.kb_json("list"), log


def write(name, text):
    path = os.path.join(technicians.WORK, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def shipped(article_id):
    with open(os.path.join(SOURCE, "kb", article_id + ".md"), encoding="utf-8") as f:
        return f.read()


def variant(article_id, new_id, *replacements):
    """A shipped article under another id, with (old, new) replacements: its path."""
    text = shipped(article_id).replace("id: " + article_id, "id: " + new_id, 1)
    for old, new in replacements:
        check(old in text, "%s has no %r" % (article_id, old))
        text = text.replace(old, new, 1)
    return write(new_id + ".md", text)


@case
def case_shipped_articles_added_and_read_over_ssh():
    kb = KbRelay()
    check(len(SHIPPED) == 18, "shipped articles: %d" % len(SHIPPED))
    _, out, _ = kb.kb("add", *SHIPPED)
    ids = [os.path.basename(p)[:-3] for p in SHIPPED]
    check(out.splitlines()[-1] == "Added var-log-full (disk): Logs are filling /var" and
          len(out.splitlines()) == 18, "add: %r" % out)
    listed = kb.kb_json("list")
    check([a["id"] for a in listed] == ids, "admin list: %r" % [a["id"] for a in listed])
    check(all(set(a) == LIST_KEYS for a in listed), "list keys: %r" % sorted(listed[0]))

    # Technicians read them from the serving relay, with the stock OpenSSH client.
    over_ssh = kb.ssh_json("alice", "kb")
    check(over_ssh == listed, "kb --json differs from the admin's list")
    tmp = [a for a in over_ssh if a["id"] == "tmp-full"][0]
    check(tmp["title"] == "The disk that holds /tmp is nearly full" and tmp["category"] == "disk"
          and tmp["state"] == "published" and tmp["runbook"] == "clean-temp" and
          tmp["revision"] == 1 and tmp["added_by"] == "admin" and tmp["ticket"] is None and
          tmp["published_by"] == "admin" and (tmp["applied"], tmp["recheck_passed"]) == (0, 0),
          "tmp-full: %r" % tmp)
    cpu = [a for a in over_ssh if a["id"] == "cpu-hog"][0]
    check(cpu["runbook"] is None, "cpu-hog runbook: %r" % cpu)
    disk = kb.ssh_json("bob", "kb", "--category", "disk")
    check([a["id"] for a in disk] == ["home-full", "inodes-exhausted", "tmp-full",
                                      "var-log-full"], "disk: %r" % [a["id"] for a in disk])
    _, text, _ = kb.ssh("carol", "kb")
    lines = text.decode().splitlines()
    # The articles, then each runbook's success rate (none applied yet).
    check(lines[0].split() == ["ID", "CATEGORY", "STATE", "RUNBOOK", "APPLIED", "PASSED",
                               "RATE", "TITLE"] and len(lines) == 22 and
          lines[20].split() == ["RUNBOOK", "APPLIED", "PASSED", "RATE"], "kb: %r" % lines)
    check(lines[18].split()[:6] == ["var-log-full", "disk", "published", "clean-old-logs", "0",
                                    "0"] and lines[18].endswith("  Logs are filling /var"),
          "kb row: %r" % lines[18])

    # One article, whole: as text and as JSON.
    shown = kb.ssh_json("audrey", "kb", "show", "var-log-full")
    check(set(shown) == SHOW_KEYS, "show keys: %r" % sorted(shown))
    check(shown["params"] == {"APT_CACHE": "yes", "KEEP_DAYS": "0"} and
          shown["words"] == ["full", "space", "disk", "var", "log", "logs"] and
          shown["when"].startswith("any disks.mounts where ((mount == \"/var\"") and
          shown["recheck"] == shown["when"] and shown["body"].startswith("# Logs are filling"),
          "show --json: %r" % shown)
    check(kb.kb_json("show", "var-log-full") == shown, "admin show differs")
    _, text, _ = kb.ssh("alice", "kb", "show", "var-log-full")
    text = text.decode()
    expected_head = ("var-log-full  Logs are filling /var\n"
                     "  category:  disk\n"
                     "  state:     published, revision 1, ")
    check(text.startswith(expected_head), "kb show: %r" % text[:200])
    for line in ("  runbook:   clean-old-logs APT_CACHE=yes KEEP_DAYS=0\n",
                 "  words:     full, space, disk, var, log, logs\n",
                 "  outcomes:  suggested 0, applied 0, re-check passed 0 (rate -)\n",
                 "  sha256:    %s\n\n# Logs are filling /var\n" % shown["sha256"]):
        check(line in text, "kb show lacks %r: %r" % (line, text))

    # Who may read: every technician tier that works tickets, auditors and admins; not vendors.
    for user in ("alice", "bob", "carol", "audrey", "adam"):
        kb.ssh(user, "kb", "show", "tmp-full")
    status, out, err = kb.ssh("vera", "kb", status=77)
    check(out == b"" and "needs kb.read" in err, "tier4: %r %r" % (out, err))
    kb.ssh("vera", "kb", "show", "tmp-full", status=77)
    status, _, err = kb.ssh("alice", "kb", "show", "no-such-article", status=1)
    check("no article no-such-article" in err, "unknown: %r" % err)

    check(kb.kb_audit() == [("kb.add", i) for i in ids], "audit: %r" % kb.kb_audit())
    entry = [e for e in kb.audit() if e["subject"] == "tmp-full"][0]
    check(entry["actor"] == "admin" and entry["details"]["sha256"] == tmp["sha256"] and
          entry["details"]["runbook"] == "clean-temp", "kb.add entry: %r" % entry)
    kb.relay.verify_audit()


@case
def case_bad_articles_refused_with_file_line_and_nothing_stored():
    kb = KbRelay()
    kb.kb("add", os.path.join(SOURCE, "kb", "tmp-full.md"))
    before = kb.snapshot()
    good = variant("var-log-full", "good-one")
    cases = [
        # (files, exit status, what stderr must say)
        ([variant("var-log-full", "bad-field", ("where ((mount", "where ((mountpoint"))], 2,
         "bad-field.md:5: when: column 26: mountpoint is not a field of the rows of disks.mounts"
         " (did you mean mount?)"),
        ([write("no-when.md", "---\nid: no-when\ntitle: x\ncategory: disk\n---\ntext\n")], 2,
         "no-when.md: the header has no when"),
        ([variant("var-log-full", "bad-key", ("words:", "colour: red\nwords:"))], 2,
         "bad-key.md:9: unknown key 'colour'"),
        ([variant("var-log-full", "unknown-runbook",
                  ("runbook: clean-old-logs", "runbook: clean-old-log"))], 2,
         "unknown-runbook.md:6: runbook: the catalogue ("),
        ([variant("var-log-full", "bad-param", ("KEEP_DAYS=0", "KEEP_DAYS=lots"))], 2,
         "bad-param.md:8: param: parameter KEEP_DAYS='lots' does not match"),
        ([variant("var-log-full", "foreign-param",
                  ("runbook: clean-old-logs", "runbook: flush-dns"))], 2,
         "foreign-param.md:7: param: runbook flush-dns has no parameter 'APT_CACHE'"),
        ([variant("dns-resolver-failed", "missing-param", ("param: SERVICE=systemd-resolved.service\n",
                                                           ""))], 2,
         "missing-param.md:6: runbook: runbook restart-service needs parameter SERVICE"),
        ([variant("tmp-full", "hostile-title", ("title: The disk", "title: \u009b31mThe disk"))],
         2, "hostile-title.md:3: title: a control character or a byte that is not UTF-8"),
        # A good file with a bad one: all or nothing.
        ([good, variant("var-log-full", "bad-too", ("category: disk", "category: disks"))], 2,
         "bad-too.md:4: "),
        ([good, variant("var-log-full", "good-one")], 2, "id good-one is also the id of"),
        # A taken id, after every file checked: nothing of the batch either.
        ([good, os.path.join(SOURCE, "kb", "tmp-full.md")], 1,
         "tmp-full.md: an article with id tmp-full is already in the knowledge base (kb show "
         "tmp-full; --replace replaces it); nothing was added"),
        ([os.path.join(technicians.WORK, "absent.md")], 1, "absent.md cannot be read"),
    ]
    for files, status, said in cases:
        _, out, err = kb.kb("add", *files, status=status)
        check(said in err and out == "", "kb add %s: %r" % (files, err))
        if status == 2:
            check("refused; nothing was added" in err, "no summary: %r" % err)
        check(kb.snapshot() == before, "kb add %s changed the knowledge base" % files)
    _, _, err = kb.kb("remove", "no-such-article", status=1)
    check(err == "tierline-relay kb remove: no article no-such-article in the knowledge base\n",
          "remove: %r" % err)
    _, _, err = kb.kb("remove", "Not-An-Id", status=2)
    check("an article id is 1 to 48 of a-z, 0-9 and -" in err, "remove bad id: %r" % err)
    kb.kb("add", status=2)
    check(kb.snapshot() == before, "a refused remove changed the knowledge base")
    # Over SSH there is no way to add, whatever the role (logging in is audited; nothing else).
    articles, entries = kb.kb_json("list"), kb.kb_audit()
    for user in ("adam", "carol"):
        status, _, err = kb.ssh(user, "kb", "add", good, status=None)
        check(status == 2, "ssh %s kb add: %d %r" % (user, status, err))
    check((kb.kb_json("list"), kb.kb_audit()) == (articles, entries),
          "ssh kb add changed the knowledge base")


@case
def case_replace_keeps_counts_and_remove_is_audited():
    kb = KbRelay()
    kb.kb("add", os.path.join(SOURCE, "kb", "tmp-full.md"))
    first = kb.kb_json("show", "tmp-full")
    # What self-help counted meanwhile (the agents' reports fill these).
    kb.db("UPDATE kb_articles SET suggested = 9, applied = 4, recheck_passed = 3")
    newer = write("tmp-full.md", shipped("tmp-full").replace(
        "title: The disk that holds /tmp is nearly full", "title: /tmp is nearly full", 1))
    _, out, _ = kb.kb("add", newer, "--replace")
    check(out == "Replaced tmp-full (disk): /tmp is nearly full\n", "replace: %r" % out)
    now = kb.ssh_json("alice", "kb", "show", "tmp-full")
    check(now["title"] == "/tmp is nearly full" and now["revision"] == 2 and
          (now["suggested"], now["applied"], now["recheck_passed"]) == (9, 4, 3) and
          now["added"] == first["added"] and now["sha256"] != first["sha256"],
          "replaced: %r" % now)
    entry = [e for e in kb.audit() if e["action"].startswith("kb.")][-1]
    check(entry["action"] == "kb.replace" and entry["subject"] == "tmp-full" and
          entry["details"]["previous_sha256"] == first["sha256"] and
          entry["details"]["sha256"] == now["sha256"] and entry["details"]["revision"] == 2,
          "kb.replace: %r" % entry)
    # --replace of an id not there yet is an add.
    kb.kb("add", "--replace", os.path.join(SOURCE, "kb", "cpu-hog.md"))
    _, out, _ = kb.kb("remove", "tmp-full")
    check(out == "Removed tmp-full\n", "remove: %r" % out)
    kb.ssh("alice", "kb", "show", "tmp-full", status=1)
    check([a["id"] for a in kb.ssh_json("alice", "kb")] == ["cpu-hog"], "after remove")
    removed = [e for e in kb.audit() if e["action"].startswith("kb.")][-1]
    check(removed["action"] == "kb.remove" and removed["details"]["applied"] == 4 and
          removed["details"]["sha256"] == now["sha256"], "kb.remove: %r" % removed)
    check(kb.kb_audit() == [("kb.add", "tmp-full"), ("kb.replace", "tmp-full"),
                            ("kb.add", "cpu-hog"), ("kb.remove", "tmp-full")],
          "audit: %r" % kb.kb_audit())
    kb.relay.verify_audit()


@case
def case_text_from_the_article_is_escaped_byte_by_byte():
    kb = KbRelay()
    # The body may hold what a terminal would act on; the header may not (refused above).
    path = variant("tmp-full", "hostile", ("# The disk", "# Evil \u009b2J \u202eexe.txt The disk"))
    kb.kb("add", path)
    _, raw, _ = kb.ssh("alice", "kb", "show", "hostile")
    check(b"\n# Evil \\u009b2J \\u202eexe.txt The disk" in raw, "body: %r" % raw[-600:])
    check(b"\xc2\x9b" not in raw and b"\xe2\x80\xae" not in raw, "raw controls in %r" % raw)
    check(kb.ssh_json("alice", "kb", "show", "hostile")["body"].startswith(
        "# Evil \u009b2J \u202eexe.txt The disk"), "--json must keep the bytes")
    # A title another writer put in the store is shown escaped too, in its column.
    kb.db("UPDATE kb_articles SET title = ? WHERE id = 'hostile'",
          ("\x1b]0;owned\x07Evil\x1b[2J\tx\u202e",))
    _, raw, _ = kb.ssh("bob", "kb")
    row = [line for line in raw.split(b"\n") if line.startswith(b"hostile ")][0]
    check(row.endswith(b"  \\x1b]0;owned\\x07Evil\\x1b[2J\\tx\\u202e"), "kb row: %r" % row)
    check(b"\x1b" not in raw and b"\x07" not in raw, "raw escape in %r" % raw)
    _, raw, _ = kb.ssh("bob", "kb", "show", "hostile")
    check(raw.startswith(b"hostile  \\x1b]0;owned\\x07Evil\\x1b[2J\\tx\\u202e\n"),
          "kb show title: %r" % raw[:120])
    check(kb.ssh_json("bob", "kb")[0]["title"] == "\x1b]0;owned\x07Evil\x1b[2J\tx\u202e",
          "--json title")


@case
def case_add_fails_closed_when_the_audit_log_cannot_be_written():
    kb = KbRelay()
    kb.kb("add", os.path.join(SOURCE, "kb", "cpu-hog.md"))
    log = os.path.join(kb.relay.dir, "audit.log")
    shutil.move(log, log + ".away")
    _, out, err = kb.kb("add", os.path.join(SOURCE, "kb", "tmp-full.md"), status=1)
    check("kb add: the audit log cannot be written" in err and out == "", "add: %r" % err)
    _, out, err = kb.kb("remove", "cpu-hog", status=1)
    check("kb remove: the audit log cannot be written" in err and out == "", "remove: %r" % err)
    shutil.move(log + ".away", log)
    check([a["id"] for a in kb.kb_json("list")] == ["cpu-hog"], "changed without an audit entry")
    check(kb.kb_audit() == [("kb.add", "cpu-hog")], "audit: %r" % kb.kb_audit())


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("kb_admin.py BIN_DIR", "tl-kb-", setup_globals, track_popen=True,
                         home=True))
