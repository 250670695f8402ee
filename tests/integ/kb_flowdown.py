#!/usr/bin/env python3
"""Fixes that flow down, end to end (docs/kb.md "Drafts from resolved tickets", "Publishing"): a
tier-3 technician resolves a ticket with `ticket resolve T --kb`, the draft is listed with
`kb --drafts` over the stock OpenSSH client, an admin publishes it with `tierline-relay kb
publish`, `catalogue sign --kb-from-data` carries it in a signed package, and the real agent
installs it and shows it in `tierline-agent help` on the machine whose problem it describes (a
/var really full: a small ext2 image in a private mount namespace, as in selfhelp.py). A draft
is in no package before it is published. The refusals of kb publish leave the articles and the
audit log as they were. Each case runs in its own process:

    kb_flowdown.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import shutil
import struct
import sys

import catalogue
import desk_queues
import technicians
import tlcase
from tlcase import case, check, run, wait_for

DRAFT_WHEN = 'any disks.mounts where (mount == "/var" and used_percent >= 95)'


def package_files(path):
    """The paths a signed package holds (docs/catalogue.md: magic, key, signature, manifest)."""
    with open(path, "rb") as f:
        data = f.read()
    check(data.startswith(b"TLCAT01\n"), "not a package: %r" % data[:16])
    at = 8 + 32 + 64
    size = struct.unpack(">I", data[at:at + 4])[0]
    manifest = json.loads(data[at + 4:at + 4 + size])
    return [entry["path"] for entry in manifest["files"]]


def sign_from_data(desk, runbooks, version):
    out_path = os.path.join(technicians.WORK, "from-data-%d.tlcat" % version)
    out, _ = run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key",
                 desk.admin_key, "--runbooks", runbooks, "--kb-from-data", "--data",
                 desk.relay.dir, "--version", str(version), "-o", out_path)
    return out_path, out


def in_full_var(desk, *argv, expect=0):
    """argv with /var a 4 MiB ext2 image filled to the last block, in a private mount
    namespace: (stdout, stderr)."""
    image = os.path.join(technicians.WORK, "var.img")
    run("truncate", "-s", "4M", image)
    run("mkfs.ext2", "-q", "-F", image)
    script = ("set -e; mount -o loop \"$1\" /var; shift\n"
              "dd if=/dev/zero of=/var/filler bs=1k count=8192 2>/dev/null || true\n"
              "used=$(df -P /var | awk 'NR==2 {print $5}')\n"
              "echo \"var-used=$used\" >&2\n"
              "exec \"$@\"\n")
    out, err = run("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                   image, *argv, expect=expect, timeout=180)
    used = int(err.split("var-used=")[1].split("%")[0])
    check(used >= 95, "the image is not full enough: %d%%\n%s" % (used, err))
    return out, err


def admin_kb(desk_dir, *words, expect=0):
    return run(technicians.BIN + "/tierline-relay", "kb", *words, "--data", desk_dir,
               expect=expect)


@case
def case_a_tier3_fix_reaches_the_machine_as_a_signed_article():
    desk = catalogue.CatalogueDesk()
    runbooks, _ = catalogue.install_first(desk)
    # The user asks for help on a machine whose /var is full; the ticket carries its
    # diagnostics, and the desk's disk-full rule fires on them.
    out, err = in_full_var(desk, technicians.BIN + "/tierline-agent", "help",
                           "cannot save my files", "--no-self-help", "--state", desk.agent.dir,
                           "--wait-ms", "20000")
    ticket = out.strip()
    check(ticket.startswith("T-"), "no ticket: %r\n%s" % (out, err))
    shown = desk.ssh_json("alice", "ticket", "show", ticket)
    check(shown["category"] == "disk", "not classified from the diagnostics: %r" % shown)
    # Tier 1 runs a runbook that works, then it reaches tier 3, who resolves it with --kb.
    desk.ssh("alice", "ticket", "take", ticket)
    _, fixed, _ = desk.ssh("alice", "fix", ticket, "say-word", "WORD=hello")
    check(fixed.startswith("v1 word=hello"), "fix: %r" % fixed)
    desk.ssh("alice", "ticket", "escalate", ticket, "--to", "tier3", "--reason", "'var again'")
    desk.ssh("carol", "ticket", "take", ticket)
    draft_id = "ticket-" + ticket[2:]
    desk.ssh("carol", "ticket", "resolve", ticket, "--kb", "freed", "/var", "with", "say-word")
    # kb --drafts lists it; kb (the published articles) does not.
    drafts = desk.ssh_json("carol", "kb", "--drafts")
    check([d["id"] for d in drafts] == [draft_id] and drafts[0]["state"] == "draft" and
          drafts[0]["needs_editing"] is None and drafts[0]["ticket"] == ticket,
          "kb --drafts: %r" % drafts)
    _, text, _ = desk.ssh("carol", "kb", "--drafts")
    check(draft_id in text, "kb --drafts text: %r" % text)
    published = desk.ssh_json("carol", "kb")
    check(draft_id not in [a["id"] for a in published], "kb: %r" % published)
    shown = desk.ssh_json("carol", "kb", "show", draft_id)
    # Its conditions are the rules that fired on the ticket's diagnostics: the full /var, and
    # whatever else this machine shows (an unsynchronised clock, say), all true there.
    check(DRAFT_WHEN in shown["when"] and DRAFT_WHEN in shown["recheck"] and
          shown["runbook"] == "say-word" and shown["params"] == {"WORD": "hello"} and
          "freed \\/var with say\\-word" in shown["body"], "the draft: %r" % shown)
    # Before it is published, a package signed from the relay's data does not carry it.
    path, said = sign_from_data(desk, runbooks, 2)
    check("0 article(s)" in said, "sign: " + said)
    check(not [p for p in package_files(path) if p.startswith("kb/")],
          "a draft was signed: %r" % package_files(path))
    # The admin publishes it; the next package carries it to the agent.
    out, _ = admin_kb(desk.relay.dir, "publish", draft_id)
    check(out.startswith("Published %s: " % draft_id), "publish: " + out)
    path, said = sign_from_data(desk, runbooks, 3)
    check("1 article(s)" in said and "kb/%s.md" % draft_id in package_files(path),
          "sign: %s %r" % (said, package_files(path)))
    desk.publish(path)
    desk.reconnect()
    wait_for("version 3 installed", lambda: desk.catalogue()["version"] == 3)
    # help on the machine, /var full again: the article from tier 3 is what it shows.
    _, err = in_full_var(desk, technicians.BIN + "/tierline-agent", "help", "disk full again",
                         "--state", desk.agent.dir, "--wait-ms", "20000")
    check("(article %s)" % draft_id in err and "suggested fix: say-word (WORD=hello)" in err,
          "help: " + err)
    actions = [(e["action"], e["subject"]) for e in desk.audit()
               if e["action"] in ("kb.draft", "kb.publish")]
    check(actions == [("kb.draft", draft_id), ("kb.publish", draft_id)], "audit: %r" % actions)
    desk.relay.verify_audit()


# ---- kb publish on a relay whose tickets a hand-driven agent opens ---------------------------


def drafted(desk, title, diagnostics):
    """A ticket opened with diagnostics (or none), taken and resolved by carol with --kb: the
    draft's id."""
    ticket = desk.open_ticket(title, diagnostics=diagnostics)
    desk.ssh("carol", "ticket", "take", ticket)
    desk.ssh("carol", "ticket", "resolve", ticket, "--kb", "cleaned", "up")
    return "ticket-" + ticket[2:]


def state(desk):
    """What a refused kb publish must leave as it was: every article and the audit log."""
    articles = json.loads(desk.admin("kb", "list", "--json")[0])
    drafts = json.loads(desk.admin("kb", "list", "--drafts", "--json")[0])
    with open(os.path.join(desk.relay.dir, "audit.log"), "rb") as f:
        return articles, drafts, f.read()


@case
def case_kb_publish_refusals_change_nothing():
    desk = desk_queues.Desk()
    ready = drafted(desk, "var is full", desk_queues.VAR_FULL)
    bare = drafted(desk, "it is slow", None)
    listed = {d["id"]: d for d in json.loads(desk.admin("kb", "list", "--drafts", "--json")[0])}
    check(listed[ready]["needs_editing"] is None and
          "no diagnostics" in (listed[bare]["needs_editing"] or ""), "drafts: %r" % listed)
    before = state(desk)
    # An unknown id.
    out, err = desk.admin("kb", "publish", "ticket-999", expect=1)
    check("no article ticket-999" in err and "nothing changed" in err and out == "",
          "unknown: %r %r" % (out, err))
    # A draft that needs editing, without --file.
    out, err = desk.admin("kb", "publish", bare, expect=1)
    check("draft %s needs editing: the ticket has no diagnostics" % bare in err and
          "--file" in err and "nothing changed" in err and out == "", "bare: %r" % err)
    # An edited file that does not parse: FILE:LINE: reason.
    edited = os.path.join(desk_queues.WORK, "edited.md")
    with open(edited, "w") as f:
        f.write("---\nid: %s\ntitle: slow\ncategory: other\nwhen: memory.used_percent >>> 9\n"
                "words: slow\n---\n# Slow\n" % bare)
    out, err = desk.admin("kb", "publish", bare, "--file", edited, expect=2)
    check(edited + ":5: " in err and "nothing changed" in err and out == "",
          "unparsable: %r" % err)
    # An edited file under another id.
    with open(edited, "w") as f:
        f.write("---\nid: other-id\ntitle: slow\ncategory: other\nwhen: memory.used_percent > 90"
                "\nwords: slow\n---\n# Slow\n")
    out, err = desk.admin("kb", "publish", bare, "--file", edited, expect=2)
    check(out == "" and edited + ":2: " in err and "the id stays" in err and
          "nothing changed" in err, "another id: %r" % err)
    check(state(desk) == before, "a refused publish changed something")
    # Published once, then again.
    out, _ = desk.admin("kb", "publish", ready)
    check(out.startswith("Published %s:" % ready), "publish: %r" % out)
    after = state(desk)
    out, err = desk.admin("kb", "publish", ready, expect=1)
    check("%s is published already; nothing changed" % ready in err and out == "",
          "again: %r" % err)
    check(state(desk) == after, "publishing again changed something")
    # The edited file that parses publishes the bare draft, with its text.
    with open(edited, "w") as f:
        f.write("---\nid: %s\ntitle: Memory is short\ncategory: performance\n"
                "when: memory.used_percent > 90\nwords: slow\n---\n# Memory is short\n" % bare)
    out, _ = desk.admin("kb", "publish", bare, "--file", edited)
    check(out.startswith("Published %s: Memory is short" % bare), "edited: %r" % out)
    articles = {a["id"]: a for a in json.loads(desk.admin("kb", "list", "--json")[0])}
    check(sorted(articles) == sorted([ready, bare]) and
          articles[bare]["title"] == "Memory is short" and
          articles[bare]["needs_editing"] is None and
          articles[bare]["published_by"] is not None, "published: %r" % articles)
    publishes = [(e["subject"], e["details"]["edited"]) for e in desk.audit()
                 if e["action"] == "kb.publish"]
    check(publishes == [(ready, False), (bare, True)], "audit: %r" % publishes)
    desk.relay.verify_audit()


@case
def case_kb_publish_fails_closed_when_the_audit_log_cannot_be_written():
    desk = desk_queues.Desk()
    ready = drafted(desk, "var is full", desk_queues.VAR_FULL)
    before = state(desk)
    log = os.path.join(desk.relay.dir, "audit.log")
    shutil.move(log, log + ".away")
    out, err = desk.admin("kb", "publish", ready, expect=1)
    shutil.move(log + ".away", log)
    check("kb publish: the audit log cannot be written" in err and "Published" not in out,
          "publish: %r %r" % (out, err))
    check(state(desk) == before, "published without an audit entry")
    check([e for e in desk.audit() if e["action"] == "kb.publish"] == [], "audited")


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)
    desk_queues.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("kb_flowdown.py BIN_DIR", "tl-kbflow-", setup_globals,
                         track_popen=True, home=True))
