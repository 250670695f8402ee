#!/usr/bin/env python3
"""Runbook proposals end to end (docs/kb.md "Runbook proposals"): a tier-3 technician proposes a
runbook with `ssh ... runbook propose < script` (the stock OpenSSH client), an admin accepts it
with `tierline-relay runbook proposals accept`, `catalogue sign --runbooks-from-data` puts it in
a package signed with the admins' key, `catalogue publish` serves it, the real agent installs it,
and a tier-1 technician with a fix grant runs it on the machine. Before all that it runs
nowhere. Bad proposals and bad decisions are refused with a clear error and nothing stored or
changed. Each case runs in its own process:

    runbook_proposals.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import shutil
import subprocess
import sys

import catalogue
import kb_flowdown
import technicians
import tlcase
from tlcase import case, check, run, wait_for

SCRIPT = """#!/bin/sh
# tierline-runbook
# {"name": "greet-user", "description": "Print a greeting for WHO",
#  "min_role": "tier1", "privileged": false, "timeout": "30s",
#  "params": [{"name": "WHO", "pattern": "^[a-z]{1,8}$", "required": true,
#              "description": "whom to greet"}]}
# end tierline-runbook
printf 'greetings %s from a proposed runbook\\n' "$TL_PARAM_WHO"
"""


def admin(desk, *words, expect=0):
    return run(technicians.BIN + "/tierline-relay", "runbook", "proposals", *words, "--data",
               desk.relay.dir, expect=expect)


def propose(desk, user, script, *words, expect=0):
    data = script.encode() if isinstance(script, str) else script
    return desk.ssh(user, "runbook", "propose", *words, input_bytes=data, check_status=expect)


def console_propose(desk, user, script):
    """runbook propose through the console, which forwards stdin: (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env.update(TIERLINE_RELAY="127.0.0.1:%d" % desk.relay.ssh_port, TIERLINE_USER=user,
               TIERLINE_IDENTITY=desk.keys[user], TIERLINE_HOST_KEY=desk.relay.fingerprint)
    proc = subprocess.run([technicians.BIN + "/tierline", "runbook", "propose"],
                          input=script.encode(), capture_output=True, timeout=60, env=env)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode()


def state(desk):
    """What a refusal must leave as it was: every proposal and the audit log."""
    proposals, _ = admin(desk, "--state", "all", "--json")
    with open(os.path.join(desk.relay.dir, "audit.log"), "rb") as f:
        return json.loads(proposals), f.read()


@case
def case_an_accepted_proposal_reaches_the_machine_signed_and_runs_there():
    desk = catalogue.CatalogueDesk()
    runbooks, _ = catalogue.install_first(desk)
    # Tier 3 proposes the fix from the ticket, over SSH.
    _, out, err = propose(desk, "carol", SCRIPT, "--ticket", desk.ticket)
    check(out.startswith("Proposal 1 stored: runbook greet-user") and "pending" in out and
          "an admin reviews it" in out, "propose: %r %r" % (out, err))
    listed = desk.ssh_json("carol", "runbook", "proposals")
    check([(p["id"], p["name"], p["state"], p["ticket"], p["proposed_by"]) for p in listed] ==
          [(1, "greet-user", "pending", desk.ticket, "tech:carol")], "proposals: %r" % listed)
    _, shown, _ = desk.ssh("audrey", "runbook", "proposal", "1")
    check("state:    pending" in shown and "printf 'greetings %s" in shown and
          '"min_role": "tier1"' in shown, "proposal 1: %r" % shown)
    # Pending, it runs nowhere: the machine's catalogue lacks it, and a package signed from the
    # relay's data does not carry it.
    status, _, err = desk.ssh("alice", "fix", desk.ticket, "greet-user", "WHO=ann",
                              check_status=None)
    check(status != 0 and "greet-user" in err, "a pending proposal ran: %d %r" % (status, err))
    path, said = kb_flowdown.sign_from_data(desk, runbooks, 2)
    check("runbooks/greet-user" not in kb_flowdown.package_files(path), "signed while pending")
    # An admin reads it and accepts it.
    out, _ = admin(desk, "show", "1")
    check("proposal 1  runbook greet-user" in out and "-- script (greet-user) --" in out,
          "show: %r" % out)
    out, _ = admin(desk, "accept", "1")
    check(out.startswith("Accepted proposal 1: runbook greet-user"), "accept: %r" % out)
    accepted = json.loads(admin(desk, "--state", "accepted", "--json")[0])
    check([(p["id"], p["state"], p["decided_by"]) for p in accepted] == [(1, "accepted", "admin")]
          and accepted[0]["decided"] is not None, "accepted: %r" % accepted)
    # Signed into a catalogue with the runbooks of the folder, published, installed.
    out_path = os.path.join(technicians.WORK, "proposals-3.tlcat")
    out, _ = run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key",
                 desk.admin_key, "--runbooks", runbooks, "--runbooks-from-data",
                 "--kb-from-data", "--data", desk.relay.dir, "--version", "3", "-o", out_path)
    files = kb_flowdown.package_files(out_path)
    check("2 runbook(s)" in out and "runbooks/greet-user" in files and
          "runbooks/greet-user.json" in files and "runbooks/say-word" in files,
          "sign: %s %r" % (out, files))
    desk.publish(out_path)
    desk.reconnect()
    wait_for("version 3 installed", lambda: desk.catalogue()["version"] == 3)
    # Tier 1, with the user's standing fix grant, runs it on the machine.
    _, out, err = desk.ssh("alice", "fix", desk.ticket, "greet-user", "WHO=ann")
    check(out.startswith("greetings ann from a proposed runbook"), "fix: %r %r" % (out, err))
    actions = [(e["action"], e["subject"], e["actor"]) for e in desk.audit()
               if e["action"].startswith("runbook.")]
    check(actions == [("runbook.propose", "greet-user", "tech:carol"),
                      ("runbook.accept", "greet-user", "admin")], "audit: %r" % actions)
    desk.relay.verify_audit()


@case
def case_bad_proposals_are_refused_and_nothing_is_stored():
    desk = catalogue.CatalogueDesk()
    before = state(desk)
    # A header that does not parse: LINE: reason.
    bad = SCRIPT.replace('"min_role": "tier1"', '"min_role": "tier7"')
    status, out, err = propose(desk, "carol", bad, expect=2)
    check(out == "" and "runbook propose: 4: 'min_role' must be tier1, tier2 or tier3" in err and
          "nothing was stored" in err, "bad header: %r" % err)
    status, out, err = propose(desk, "carol", "#!/bin/sh\necho hi\n", expect=2)
    check("2: the metadata header must follow the #! line" in err, "no header: %r" % err)
    # Empty stdin, and a script over 64 KiB.
    status, out, err = propose(desk, "carol", b"", expect=2)
    check("1: the script is empty" in err, "empty: %r" % err)
    big = SCRIPT + "# " + "x" * (70 * 1024) + "\n"
    status, out, err = propose(desk, "carol", big, expect=2)
    check("larger than 64 KiB" in err and "nothing was stored" in err, "oversize: %r" % err)
    # A name the relay's own runbooks hold.
    shipped = SCRIPT.replace("greet-user", "restart-service")
    status, out, err = propose(desk, "carol", shipped, expect=1)
    check("restart-service is a runbook already, in the runbooks installed with the relay" in err,
          "shipped name: %r" % err)
    # A ticket that does not exist.
    status, out, err = propose(desk, "carol", SCRIPT, "--ticket", "T-999", expect=1)
    check("no ticket T-999" in err, "unknown ticket: %r" % err)
    # Tier 1 and tier 2 may not propose; the refusal is audited.
    for user, role in (("alice", "tier1"), ("bob", "tier2")):
        status, out, err = propose(desk, user, SCRIPT, expect=77)
        check("permission denied: role %s may not use 'runbook propose' (needs "
              "runbook.propose)" % role in err, "%s: %r" % (user, err))
    denied = [(e["actor"], e["details"]["needs"]) for e in desk.audit()
              if e["action"] == "access.denied"]
    check(denied == [("tech:alice", "runbook.propose"), ("tech:bob", "runbook.propose")],
          "denials: %r" % denied)
    proposals, _ = state(desk)
    check(proposals == before[0] == [], "something was stored: %r" % proposals)
    # The same name twice: the second is refused while the first is pending.
    propose(desk, "carol", SCRIPT)
    status, out, err = propose(desk, "carol", SCRIPT, expect=1)
    check("greet-user is a runbook already, in a proposal pending or accepted" in err,
          "twice: %r" % err)
    check(len(state(desk)[0]) == 1, "the second was stored")
    # Tier 1 does not read proposals; the auditor does.
    desk.ssh("alice", "runbook", "proposals", check_status=77)
    check(len(desk.ssh_json("audrey", "runbook", "proposals")) == 1, "the auditor's listing")


@case
def case_bad_decisions_change_nothing():
    desk = catalogue.CatalogueDesk()
    propose(desk, "carol", SCRIPT)
    # The console forwards the script on stdin as ssh does.
    status, out, err = console_propose(desk, "carol", SCRIPT.replace("greet-user", "greet-other"))
    check(status == 0 and out.startswith("Proposal 2 stored: runbook greet-other"),
          "console: %d %r %r" % (status, out, err))
    before = state(desk)
    out, err = admin(desk, "accept", "99", expect=1)
    check("no proposal 99" in err and "nothing changed" in err and out == "", "unknown: %r" % err)
    out, err = admin(desk, "reject", "99", "--reason", "no", expect=1)
    check("no proposal 99" in err, "unknown reject: %r" % err)
    out, err = admin(desk, "reject", "1", expect=2)
    check("reject needs --reason TEXT" in err, "no reason: %r" % err)
    out, err = admin(desk, "accept", "x1", expect=2)
    check("a proposal id is a number" in err, "bad id: %r" % err)
    check(state(desk) == before, "a refused decision changed something")
    # Decided once; a second decision either way is refused.
    out, _ = admin(desk, "reject", "1", "--reason", "use restart-service instead")
    check(out.startswith("Rejected proposal 1: runbook greet-user"), "reject: %r" % out)
    after = state(desk)
    out, err = admin(desk, "accept", "1", expect=1)
    check("proposal 1 (greet-user) is rejected already; nothing changed" in err, "again: %r" % err)
    out, err = admin(desk, "reject", "1", "--reason", "again", expect=1)
    check("is rejected already" in err, "reject again: %r" % err)
    check(state(desk) == after, "deciding again changed something")
    shown = desk.ssh_json("carol", "runbook", "proposal", "1")
    check(shown["state"] == "rejected" and shown["reason"] == "use restart-service instead",
          "rejected: %r" % shown)
    every = desk.ssh_json("carol", "runbook", "proposals", "--state", "all")
    pending = desk.ssh_json("carol", "runbook", "proposals")
    check([(p["id"], p["state"]) for p in every] == [(1, "rejected"), (2, "pending")] and
          [p["id"] for p in pending] == [2], "listings: %r %r" % (every, pending))
    _, _, err = desk.ssh("carol", "runbook", "proposals", "--state", "done", check_status=2)
    check("--state wants pending, accepted, rejected or all" in err, "bad state: %r" % err)
    # A rejected name is free again; the pending one is not signed.
    propose(desk, "carol", SCRIPT)
    # The audit log cannot be written: accept fails closed, nothing accepted.
    before = state(desk)
    log = os.path.join(desk.relay.dir, "audit.log")
    shutil.move(log, log + ".away")
    out, err = admin(desk, "accept", "2", expect=1)
    shutil.move(log + ".away", log)
    check("the audit log cannot be written" in err and out == "", "fail closed: %r" % err)
    check(state(desk) == before, "accepted without an audit entry")
    # The name in both the folder and an accepted proposal: sign refuses.
    admin(desk, "accept", "2")
    runbooks, kb = catalogue.tree("dup", "v1")
    shutil.copy(os.path.join(runbooks, "say-word"), os.path.join(runbooks, "greet-other"))
    with open(os.path.join(runbooks, "greet-other.json"), "w") as f:
        json.dump({"name": "greet-other", "description": "d", "min_role": "tier1",
                   "privileged": False}, f)
    out_path = os.path.join(technicians.WORK, "dup.tlcat")
    out, err = run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key",
                   desk.admin_key, "--runbooks", runbooks, "--runbooks-from-data", "--kb", kb,
                   "--data", desk.relay.dir, "--version", "2", "-o", out_path, expect=1)
    check("runbook greet-other is both in %s and accepted proposal 2" % runbooks in err and
          "no package was written" in err and not os.path.exists(out_path), "dup: %r" % err)
    actions = [(e["action"], e["subject"]) for e in desk.audit()
               if e["action"] in ("runbook.accept", "runbook.reject")]
    check(actions == [("runbook.reject", "greet-user"), ("runbook.accept", "greet-other")],
          "audit: %r" % actions)
    desk.relay.verify_audit()


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)
    kb_flowdown.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("runbook_proposals.py BIN_DIR", "tl-proposals-", setup_globals,
                         track_popen=True, home=True))
