#!/usr/bin/env python3
"""Signed catalogue updates end to end (docs/catalogue.md): a real relay, a real enrolled agent
that pinned the catalogue signing key at enrollment, packages signed with
`tierline-relay catalogue sign`, published, fetched and installed by the running agent, and
packages a compromised relay plants in its own data directory (signed by the relay's key, by an
unknown key, changed by one byte, replayed, older, with a path that climbs out, or whose
catalogue does not parse), which the agent refuses, keeping what it had. Packages are also
built here, from docs/catalogue.md, with Python's own Ed25519. Each case runs in its own
process:

    catalogue.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import shutil
import struct
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import relay_agent
from relay_agent import Relay
import technicians
from technicians import Desk, SessionAgent
import tlcase
from tlcase import case, check, run, wait_for

ARTICLE = """---
id: {id}
title: {title}
category: other
when: memory.used_percent >= 0
runbook: say-word
param: WORD=hello
words: catalogue, word
---
# {title}

Always matches: the memory report is there on every machine.
"""


def tree(name, version_word, article_id="catalogue-test", title="The catalogue test article"):
    """runbooks/ with say-word (printing version_word) and kb/ with one article."""
    root = os.path.join(technicians.WORK, name)
    shutil.rmtree(root, ignore_errors=True)
    runbooks, kb = os.path.join(root, "runbooks"), os.path.join(root, "kb")
    os.makedirs(runbooks)
    os.makedirs(kb)
    script = os.path.join(runbooks, "say-word")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%s word=%%s\\n' \"$TL_PARAM_WORD\"\n" % version_word)
    os.chmod(script, 0o755)
    with open(script + ".json", "w") as f:
        json.dump({"name": "say-word", "description": "Print a word", "min_role": "tier1",
                   "privileged": False, "timeout": "30s",
                   "params": [{"name": "WORD", "pattern": "^[a-z]{1,8}$", "required": True,
                               "description": "a short lowercase word"}]}, f)
    with open(os.path.join(kb, article_id + ".md"), "w") as f:
        f.write(ARTICLE.format(id=article_id, title=title))
    return runbooks, kb


class CatalogueDesk(Desk):
    """Desk, but the catalogue signing key is made and trusted before the agent enrolls."""

    def __init__(self, trust=True):
        self.relay = Relay("relay")
        self.relay.ssh_port = tlcase.free_port()
        self.keys = self.relay.add_technicians(technicians.ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", check_status=None)[0] == 0)
        self.admin_key = os.path.join(technicians.WORK, "admin", "catalogue.key")
        os.makedirs(os.path.dirname(self.admin_key))
        out, _ = run(technicians.BIN + "/tierline-relay", "catalogue", "key", "-o",
                     self.admin_key)
        self.admin_fingerprint = out.split("Fingerprint:")[1].split()[0]
        if trust:
            self.trust()
        self.enrollment = self.relay.code()
        policy = os.path.join(technicians.WORK, "policy.json")
        with open(policy, "w") as f:
            json.dump({"unattended": [{"roles": ["tier1"], "scopes": ["fix"]}]}, f)
        self.agent = SessionAgent("agent", ["--policy", policy])
        self.agent.enroll(self.enrollment)
        self.agent.start()
        wait_for("the agent online", lambda: self.agent.status().get("connected"))
        self.ticket, _, _, _ = self.agent.help("the printer says it is offline")

    def trust(self):
        run(technicians.BIN + "/tierline-relay", "catalogue", "trust", self.admin_key + ".pub",
            "--data", self.relay.dir)

    def sign(self, version, runbooks, kb):
        out = os.path.join(technicians.WORK, "catalogue-%d.tlcat" % version)
        run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key", self.admin_key,
            "--runbooks", runbooks, "--kb", kb, "--version", str(version), "-o", out)
        return out

    def publish(self, path, expect=0):
        return run(technicians.BIN + "/tierline-relay", "catalogue", "publish", path, "--data",
                   self.relay.dir, expect=expect)

    def plant(self, version, data):
        """What a compromised relay can do: put any bytes where agents fetch from."""
        folder = os.path.join(self.relay.dir, "catalogue")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "%d.tlcat" % version), "wb") as f:
            f.write(data)
        with open(os.path.join(folder, "published.json"), "w") as f:
            json.dump({"version": version, "size": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}, f)

    def reconnect(self):
        """The agent fetches on connecting: a restart is a new connection."""
        self.agent.stop()
        self.agent.start()
        wait_for("the agent online", lambda: self.agent.status().get("connected"))

    def catalogue(self):
        return self.agent.status()["catalogue"]

    def events(self, action):
        return [e for e in self.audit() if e["action"] == action]

    def fix(self):
        _, out, _ = self.ssh("alice", "fix", self.ticket, "say-word", "WORD=hello")
        return out


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def package(files, version, key, manifest_edit=None, sign_key=None):
    """A package as docs/catalogue.md specifies it. files: {path: (bytes, executable)}."""
    entries, contents = [], b""
    for path in sorted(files):
        data, executable = files[path]
        entries.append({"path": path, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "mode": "0755" if executable else "0644"})
        contents += data
    manifest = json.dumps({"format": "tierline-catalogue-1", "version": version,
                           "created": int(time.time() * 1000), "files": entries},
                          separators=(",", ":")).encode()
    signature = (sign_key or key).sign(manifest)
    if manifest_edit is not None:
        manifest = manifest_edit(manifest)
    return (b"TLCAT01\n" + raw_public(key) + signature + struct.pack(">I", len(manifest)) +
            manifest + contents)


def files_of(runbooks, kb):
    files = {}
    for folder, prefix in ((runbooks, "runbooks/"), (kb, "kb/")):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[prefix + name] = (f.read(), os.access(path, os.X_OK) and
                                        not name.endswith((".json", ".md")))
    return files


def install_first(desk):
    """Version 1 signed, published, fetched and installed; its runbook answers fix."""
    runbooks, kb = tree("v1", "v1")
    desk.publish(desk.sign(1, runbooks, kb))
    desk.reconnect()
    wait_for("version 1 installed", lambda: desk.catalogue()["version"] == 1)
    check(desk.fix().startswith("v1 word=hello"), "fix: %r" % desk.fix())
    return runbooks, kb


@case
def case_a_signed_package_installs_and_serves_fix_help_and_diag():
    desk = CatalogueDesk()
    check(desk.enrollment.endswith("!" + desk.admin_fingerprint),
          "the enrollment string pins no catalogue key: " + desk.enrollment)
    status = desk.agent.status()
    check(status["catalogue_key"] == desk.admin_fingerprint and
          status["catalogue"] == {"version": 0, "previous": 0, "highest": 0, "source": "shipped"},
          "before: %r" % status)
    install_first(desk)
    check(desk.catalogue() == {"version": 1, "previous": 0, "highest": 1, "source": "installed"},
          "after: %r" % desk.catalogue())
    # The article comes from the package too: diag finds it, help shows it.
    out, _ = run(technicians.BIN + "/tierline-agent", "diag", "--json", "--state",
                 desk.agent.dir, "--timeout-ms", "5000", "--lookup", "off", "--connect", "off",
                 timeout=120)
    report = json.loads(out)
    check([p["id"] for p in report["problems"]] == ["catalogue-test"] and
          report["knowledge_base"]["directory"].startswith(desk.agent.dir),
          "diag: %r %r" % (report["problems"], report["knowledge_base"]))
    out, err = run(technicians.BIN + "/tierline-agent", "help", "catalogue word test",
                   "--state", desk.agent.dir, "--wait-ms", "20000", timeout=120)
    check("The catalogue test article (article catalogue-test)" in err and
          "suggested fix: say-word (WORD=hello)" in err, "help: " + err)
    # Both sides recorded it.
    published = desk.events("catalogue.publish")
    check(len(published) == 1 and published[0]["details"]["version"] == 1 and
          published[0]["details"]["signer"] == desk.admin_fingerprint, "publish: %r" % published)
    installed = wait_for("catalogue.installed", lambda: desk.events("catalogue.installed"))
    check(installed[0]["subject"].startswith("D-") and installed[0]["details"]["version"] == 1,
          "installed: %r" % installed)
    check("catalogue installed version=1" in desk.agent.log_text(), "not in the agent's log")
    desk.relay.verify_audit()


def refused(desk, data, version, said, code):
    """Plants data as version, lets the agent fetch it: refused, version 1 unchanged."""
    before = len(desk.events("catalogue.refused"))
    desk.plant(version, data)
    desk.reconnect()
    # The newest report is this package's (one refused by hand may be told first).
    events = wait_for("catalogue.refused of version %d" % version,
                      lambda: [e for e in desk.events("catalogue.refused")[before:]
                               if e["details"].get("sha256") == hashlib.sha256(data).hexdigest()])
    reason = events[0]["details"].get("reason", "")
    check(said in reason, "%s: the reason %r does not say %r" % (code, reason, said))
    check(code in desk.agent.log_text() or said in desk.agent.log_text(),
          "not in the agent's log: " + said)
    check(desk.catalogue()["version"] == 1 and desk.catalogue()["highest"] == 1,
          "%s: the installed catalogue changed: %r" % (code, desk.catalogue()))
    check(desk.fix().startswith("v1 word=hello"), "%s: fix: %r" % (code, desk.fix()))


@case
def case_packages_a_compromised_relay_plants_are_refused():
    desk = CatalogueDesk()
    runbooks, kb = install_first(desk)
    admin = load_key(desk.admin_key)
    relay_key = load_key(os.path.join(desk.relay.dir, "relay.key"))
    evil_runbooks, evil_kb = tree("evil", "evil")
    evil = files_of(evil_runbooks, evil_kb)
    relay_fp = desk.relay.fingerprint
    # The relay's own key, and a key nobody trusts.
    refused(desk, package(evil, 5, relay_key), 5, "signed by %s, not by the trusted" % relay_fp,
            "EUNTRUSTED")
    refused(desk, package(evil, 6, Ed25519PrivateKey.generate()), 6, "not by the trusted",
            "EUNTRUSTED")
    # The admin's public key in front of the relay's signature.
    refused(desk, package(evil, 7, admin, sign_key=relay_key), 7,
            "the signature does not verify", "ESIGNATURE")
    # One byte changed in a file, then in the manifest, after the admin signed.
    good = bytearray(open(desk.sign(8, evil_runbooks, evil_kb), "rb").read())
    good[-3] ^= 0x01
    refused(desk, bytes(good), 8, "does not match its SHA-256", "EMISMATCH")
    refused(desk, package(evil, 9, admin, manifest_edit=lambda m: m.replace(b'"version":9',
                                                                           b'"version":8')),
            9, "the signature does not verify", "ESIGNATURE")
    # An equal version, signed by the admin, and a replay of version 1 itself. Announced as
    # what they are, they are not even fetched; announced as newer, they are refused.
    with open(os.path.join(technicians.WORK, "catalogue-1.tlcat"), "rb") as f:
        replay = f.read()
    desk.plant(1, replay)
    desk.reconnect()
    check(desk.catalogue()["version"] == 1, "replay: %r" % desk.catalogue())
    refused(desk, open(desk.sign(1, evil_runbooks, evil_kb), "rb").read(), 12,
            "version 1 is not newer than the installed version 1", "EOLDER")
    refused(desk, replay, 13, "not newer", "EOLDER")
    # By hand, the same checks and the same words.
    _, err = desk.agent.cli("catalogue", "install", os.path.join(technicians.WORK,
                                                                 "catalogue-1.tlcat"), expect=1)
    check("refused (EOLDER): version 1 is not newer than the installed version 1; the "
          "installed catalogue is unchanged" in err, "install by hand: " + err)
    # A path that climbs out, and a catalogue that does not parse, both signed by the admin.
    climbing = dict(evil)
    climbing["runbooks/../../../evil"] = (b"#!/bin/sh\ntouch /tmp/pwned\n", True)
    refused(desk, package(climbing, 10, admin), 10, "a path a catalogue may not hold",
            "EINVAL")
    broken = dict(evil)
    broken["kb/broken.md"] = (b"---\nid: broken\ncolour: red\n---\nno\n", False)
    refused(desk, package(broken, 11, admin), 11, "the catalogue does not parse", "EINVAL")
    check(not os.path.exists(os.path.join(desk.agent.dir, "catalogue", "5")),
          "a refused version left files")
    check(len(desk.events("catalogue.installed")) == 1, "installed more than version 1")
    desk.relay.verify_audit()


@case
def case_rollback_goes_back_one_and_is_reported():
    desk = CatalogueDesk()
    install_first(desk)
    runbooks, kb = tree("v2", "v2", title="The second article")
    desk.publish(desk.sign(2, runbooks, kb))
    desk.reconnect()
    wait_for("version 2 installed", lambda: desk.catalogue()["version"] == 2)
    check(desk.fix().startswith("v2 word=hello"), "v2 fix: %r" % desk.fix())
    out, _ = desk.agent.cli("catalogue", "rollback")
    check("from catalogue version 2 to 1" in out, "rollback said: " + out)
    check(desk.catalogue() == {"version": 1, "previous": 0, "highest": 2, "source": "installed"},
          "after rollback: %r" % desk.catalogue())
    # Nothing further back.
    _, err = desk.agent.cli("catalogue", "rollback", expect=1)
    check("no previous catalogue" in err, "second rollback: " + err)
    # The running agent runs version 1's runbook at once.
    check(desk.fix().startswith("v1 word=hello"), "after rollback fix: %r" % desk.fix())
    # The relay still publishes 2: the agent does not take it again; it reports the rollback.
    desk.reconnect()
    rolled = wait_for("catalogue.rollback", lambda: desk.events("catalogue.rollback"))
    check(rolled[0]["details"]["version"] == 1 and rolled[0]["details"]["from"] == 2,
          "rollback audit: %r" % rolled)
    check(desk.catalogue()["version"] == 1, "version 2 came back: %r" % desk.catalogue())
    check(desk.fix().startswith("v1 word=hello"), "after rollback fix: %r" % desk.fix())
    check(len(desk.events("catalogue.installed")) == 2, "installed twice only")
    # A newer one still installs.
    runbooks, kb = tree("v3", "v3")
    desk.publish(desk.sign(3, runbooks, kb))
    desk.reconnect()
    wait_for("version 3 installed", lambda: desk.catalogue()["version"] == 3)
    check(desk.catalogue()["previous"] == 1, "previous: %r" % desk.catalogue())


@case
def case_an_agent_enrolled_without_a_catalogue_key_refuses_every_package():
    desk = CatalogueDesk(trust=False)
    check("!" not in desk.enrollment, "a key was pinned: " + desk.enrollment)
    check(desk.agent.status()["catalogue_key"] is None, "status: %r" % desk.agent.status())
    desk.trust()
    runbooks, kb = tree("v1", "v1")
    desk.publish(desk.sign(1, runbooks, kb))
    desk.reconnect()
    events = wait_for("catalogue.refused", lambda: desk.events("catalogue.refused"))
    check("enrolled without one" in events[0]["details"]["reason"], "reason: %r" % events)
    check(desk.catalogue()["source"] == "shipped", "installed: %r" % desk.catalogue())
    out, _ = desk.agent.cli("catalogue")
    check("none (enrolled without one: every package is refused)" in out, out)


@case
def case_publish_refuses_what_the_trusted_key_did_not_sign():
    desk = CatalogueDesk()
    runbooks, kb = tree("v1", "v1")
    relay_key = load_key(os.path.join(desk.relay.dir, "relay.key"))
    bad = os.path.join(technicians.WORK, "relay-signed.tlcat")
    with open(bad, "wb") as f:
        f.write(package(files_of(runbooks, kb), 1, relay_key))
    _, err = desk.publish(bad, expect=1)
    check("EUNTRUSTED" in err and "nothing was published" in err, "publish: " + err)
    desk.publish(desk.sign(2, runbooks, kb))
    _, err = desk.publish(desk.sign(2, runbooks, kb), expect=1)
    check("EOLDER" in err, "republish: " + err)
    # sign refuses a runbook without its metadata and names the file.
    os.remove(os.path.join(runbooks, "say-word.json"))
    _, err = run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key",
                 desk.admin_key, "--runbooks", runbooks, "--kb", kb, "--version", "3", "-o",
                 os.path.join(technicians.WORK, "never.tlcat"), expect=1)
    check(not os.path.exists(os.path.join(technicians.WORK, "never.tlcat")), "a package appeared")
    check("runbooks/say-word has no metadata" in err and "no package was written" in err, err)
    check([e["details"]["version"] for e in desk.events("catalogue.publish")] == [2],
          "publish audit: %r" % desk.events("catalogue.publish"))


@case
def case_publish_fails_closed_when_the_audit_log_cannot_be_written():
    desk = CatalogueDesk()
    runbooks, kb = tree("v1", "v1")
    package_path = desk.sign(1, runbooks, kb)
    log = os.path.join(desk.relay.dir, "audit.log")
    shutil.move(log, log + ".away")
    out, err = desk.publish(package_path, expect=1)
    shutil.move(log + ".away", log)
    check("publish: the audit log cannot be written" in err and "Published" not in out,
          "publish: %r %r" % (out, err))
    folder = os.path.join(desk.relay.dir, "catalogue")
    check(sorted(os.listdir(folder)) == ["admin.pub"], "left behind: %r" % os.listdir(folder))
    out, _ = run(technicians.BIN + "/tierline-relay", "catalogue", "show", "--json", "--data",
                 desk.relay.dir)
    check(json.loads(out)["version"] == 0, "published without an audit entry: " + out)
    check(desk.events("catalogue.publish") == [], "audited: %r" % desk.events("catalogue.publish"))


@case
def case_sign_takes_the_relay_knowledge_base_published_articles():
    desk = CatalogueDesk()
    runbooks, kb = tree("v1", "v1", article_id="from-the-relay", title="From the relay")
    run(technicians.BIN + "/tierline-relay", "kb", "add", os.path.join(kb, "from-the-relay.md"),
        "--runbooks", runbooks, "--data", desk.relay.dir)
    out_path = os.path.join(technicians.WORK, "from-data.tlcat")
    out, _ = run(technicians.BIN + "/tierline-relay", "catalogue", "sign", "--key",
                 desk.admin_key, "--runbooks", runbooks, "--kb-from-data", "--data",
                 desk.relay.dir, "--version", "4", "-o", out_path)
    check("1 runbook(s), 1 article(s)" in out, "sign: " + out)
    desk.publish(out_path)
    desk.reconnect()
    wait_for("version 4 installed", lambda: desk.catalogue()["version"] == 4)
    installed = os.path.join(desk.agent.dir, "catalogue", "4", "kb", "from-the-relay.md")
    with open(installed) as f:
        check("title: From the relay" in f.read(), "the article installed")


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("catalogue.py BIN_DIR", "tl-catalogue-", setup_globals,
                         track_popen=True, home=True))
