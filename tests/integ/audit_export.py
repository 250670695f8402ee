#!/usr/bin/env python3
"""A ticket's bundle for auditors (docs/audit-format.md §19): a real relay and agent, a session
recorded through the stock OpenSSH client, `audit export` by the auditor, and the reference
verifier docs/verify_bundle.py (python3 and openssl alone) run on it with the audit key kept
outside the relay: OK on the bundle as made, and each tampered copy named by file, line and
reason. Each case runs in its own process:

    audit_export.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import relay_agent
import technicians
from technicians import Desk
import tlcase
from tlcase import case, check, run
import vendor

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VERIFIER = os.path.join(SOURCE, "docs", "verify_bundle.py")
BIN = None
WORK = None


def kept_vkey(desk):
    out, _ = run(BIN + "/tierline-relay", "audit", "pubkey", "--data", desk.relay.dir)
    return out.splitlines()[0]


def verify(path, *args):
    proc = subprocess.run([sys.executable, VERIFIER, path] + list(args), capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def members(blob):
    """The archive's entries in order: [(TarInfo, bytes or None)]."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]


def rewrite(blob, name, change):
    """A copy of the archive with file NAME (within the folder) changed by change(bytes)."""
    out, found = io.BytesIO(), False
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members(blob):
            if info.name.split("/", 1)[-1] == name and data is not None:
                data, found = change(data), True
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    check(found, "no %s in the bundle" % name)
    return out.getvalue()


def file_of(blob, name):
    return [d for i, d in members(blob) if i.name.split("/", 1)[-1] == name][0]


def forger_signs(text, name):
    """A verifier key under name and a signature line over text, by a fresh (forger's) key."""
    key = os.path.join(WORK, "forger.pem")
    if not os.path.exists(key):
        run("openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    public = der[-32:]
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    with open(os.path.join(WORK, "text"), "wb") as f:
        f.write(text)
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in",
                          os.path.join(WORK, "text")], capture_output=True, check=True).stdout
    vkey = "%s+%s+%s" % (name, key_id.hex(), base64.b64encode(b"\x01" + public).decode())
    return vkey, "\u2014 %s %s\n" % (name, base64.b64encode(key_id + sig).decode())


def session_bundle():
    """A relay whose ticket has a recorded shell; the auditor's bundle of it, the kept key."""
    desk = Desk()
    desk.ssh("bob", "ticket", "take", desk.ticket)
    vendor.record_a_shell(desk)
    _, blob, err = desk.ssh("audrey", "audit", "export", "--ticket", desk.ticket, text=False)
    check(err == b"", "audit export said %r" % err)
    return desk, blob, kept_vkey(desk)


def expect_fails(blob, label, vkey, needle):
    path = os.path.join(WORK, label + ".tar")
    with open(path, "wb") as f:
        f.write(blob)
    status, said = verify(path, "--key", vkey)
    check(status == 1 and said.startswith("bundle FAILS: ") and needle in said,
          "%s: exit %d, expected 1 naming %r:\n%s" % (label, status, needle, said))


@case
def case_a_fresh_bundle_verifies_and_each_tampering_is_named():
    desk, blob, vkey = session_bundle()
    path = os.path.join(WORK, "T-1.tar")
    with open(path, "wb") as f:
        f.write(blob)
    status, said = verify(path, "--key", vkey)
    check(status == 0 and said.startswith("bundle OK: T-1: "), "verifier: %d %s" % (status, said))
    lines = file_of(blob, "audit/entries.log").decode().splitlines()
    entries = [json.loads(line) for line in lines]
    timeline = json.loads(file_of(blob, "timeline.json"))
    recording = [e for e in timeline["evidence"] if e["path"].startswith("recordings/")][0]
    check({"ticket.create", "session.recorded", "session.end"} <=
          {e["action"] for e in entries}, "entries: %r" % [e["action"] for e in entries])
    check(any(e["details"].get("sha256") == recording["sha256"] for e in entries),
          "no entry names the recording %s" % recording["sha256"])
    check("%d audit entries" % len(lines) in said and
          "%d evidence files" % len(timeline["evidence"]) in said, said)
    # Every entry is the log's own line.
    log = desk.relay.dir + "/audit.log"
    with open(log) as f:
        check(set(lines) <= set(f.read().splitlines()), "entries not as the log holds them")
    # The auditor's export is on the record; the bundle's proofs lead to a checkpoint made for it.
    exports = [e for e in desk.audit() if e["action"] == "audit.export"]
    check(len(exports) == 1 and exports[0]["actor"] == "tech:audrey" and
          exports[0]["details"]["audit_entries"] == len(lines), "audit.export: %r" % exports)

    k = 2  # the second entry of the bundle
    edited = lines[k - 1].replace('"time":"2', '"time":"3', 1)
    expect_fails(rewrite(blob, "audit/entries.log", lambda d: d.replace(
        lines[k - 1].encode(), edited.encode())), "edited", vkey,
        "audit/entries.log line %d (leaf %d, seq %d): bad-hash" % (
            k, entries[k - 1]["seq"] - 1, entries[k - 1]["seq"]))
    expect_fails(rewrite(blob, "audit/entries.log", lambda d: d.replace(
        lines[k - 1].encode() + b"\n", b"")), "deleted", vkey,
        "audit/entries.log line %d (leaf %d, seq %d): bad-leaf" % (
            k, entries[k - 1]["seq"] - 1, entries[k]["seq"]))
    swapped = lines[:k - 1] + [lines[k], lines[k - 1]] + lines[k + 1:]
    expect_fails(rewrite(blob, "audit/entries.log", lambda d: "".join(
        line + "\n" for line in swapped).encode()), "swapped", vkey,
        "audit/entries.log line %d (leaf %d, seq %d): bad-leaf" % (
            k, entries[k - 1]["seq"] - 1, entries[k]["seq"]))

    # A forged entry appended with every hash recomputed: its chain hash, link and leaf hold.
    last = entries[-1]
    body = ('{"seq":%d,"time":"%s","actor":"tech:bob","action":"ticket.note","subject":"T-1",'
            '"details":{"text":"nothing happened"},"prev":"%s"' % (
                last["seq"] + 1, last["time"], last["hash"]))
    forged = body + ',"hash":"%s"}' % hashlib.sha256(body.encode()).hexdigest()
    proofs = json.loads(file_of(blob, "audit/proofs.json"))
    proofs["proofs"].append({"index": last["seq"], "seq": last["seq"] + 1,
                             "leaf_hash": base64.b64encode(hashlib.sha256(
                                 b"\x00" + forged.encode()).digest()).decode(),
                             "audit_path": proofs["proofs"][-1]["audit_path"]})
    appended = rewrite(blob, "audit/entries.log", lambda d: d + forged.encode() + b"\n")
    appended = rewrite(appended, "audit/proofs.json", lambda d: json.dumps(proofs).encode())
    expect_fails(appended, "appended", vkey, "audit/entries.log line %d (leaf %d, seq %d): "
                 "bad-proof" % (len(lines) + 1, last["seq"], last["seq"] + 1))

    # A byte flipped in the recording.
    flip = lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 1]) + d[len(d) // 2 + 1:]
    expect_fails(rewrite(blob, recording["path"], flip), "recording", vkey,
                 "%s: bad-evidence" % recording["path"])

    # A checkpoint signed by another key under the relay's name; then the bundle's own key
    # swapped for that key too: against the kept key, both fail.
    note = file_of(blob, "audit/checkpoint")
    text = note[:note.rfind(b"\n\n") + 1]
    name = vkey.split("+")[0]
    forger_vkey, line = forger_signs(text, name)
    resigned = rewrite(blob, "audit/checkpoint", lambda d: text + b"\n" + line.encode())
    expect_fails(resigned, "other-key", vkey, "audit/checkpoint: bad-signature")
    swapped_key = rewrite(resigned, "audit/audit.vkey", lambda d: forger_vkey.encode() + b"\n")
    expect_fails(swapped_key, "swapped-key", vkey, "audit/audit.vkey: bad-key")
    # Only when told to trust the bundle's own key does it use it, and it says what that means.
    with open(os.path.join(WORK, "trusting.tar"), "wb") as f:
        f.write(swapped_key)
    status, said = verify(os.path.join(WORK, "trusting.tar"), "--trust-bundle-key")
    check(status == 1 and "warning: trusting the bundle's own audit key" in said and
          "bad-manifest" in said, "trusting: %s" % said)

    # The console makes the same bundle, kept only once it checks out.
    out = os.path.join(WORK, "console.tar")
    status, _, err = desk.console("audrey", "audit", "export", "--ticket", desk.ticket, "-o", out)
    check(status == 0 and "Saved" in err, "console: %d %s" % (status, err))
    kept = os.path.join(WORK, "kept.vkey")
    with open(kept, "w") as f:
        f.write(vkey + "\n")
    status, said = verify(out, "--key-file", kept)
    check(status == 0 and said.startswith("bundle OK: T-1: "), "console's bundle: " + said)


@case
def case_bad_requests_are_refused_and_the_verifier_says_why():
    desk = Desk()
    _, blob, err = desk.ssh("audrey", "audit", "export", "--ticket", "T-99", check_status=1,
                            text=False)
    check(blob == b"" and b"T-99" in err, "an unknown ticket: %r %r" % (blob[:100], err))
    _, _, err = desk.ssh("audrey", "audit", "export", check_status=2)
    check("--ticket T-N is required" in err, err)
    before = len(desk.audit())
    _, _, err = desk.ssh("alice", "audit", "export", "--ticket", desk.ticket, check_status=77)
    check("permission denied: role tier1 may not use 'audit export'" in err, err)
    denied = [e for e in desk.audit()[before:] if e["action"] != "login.ok"]
    check([e["action"] for e in denied] == ["access.denied"] and
          denied[0]["actor"] == "tech:alice", "refusal not audited: %r" % denied)
    # The reference verifier stays short enough to read in one sitting (the issue asks ~150 lines).
    with open(VERIFIER, "rb") as f:
        check(f.read().count(b"\n") <= 150, "docs/verify_bundle.py is over 150 lines")
    # The verifier: no key, a missing file, not a tar.
    vkey = kept_vkey(desk)
    status, said = verify(os.path.join(WORK, "nothing.tar"), "--key", vkey)
    check(status == 2 and "cannot read %s: No such file" % os.path.join(WORK, "nothing.tar")
          in said, said)
    junk = os.path.join(WORK, "junk.tar")
    with open(junk, "wb") as f:
        f.write(b"not a tar archive\n" * 100)
    status, said = verify(junk, "--key", vkey)
    check(status == 2 and "%s is not a tar archive" % junk in said, said)
    status, said = verify(junk)
    check(status == 2 and "give the audit key you kept" in said, said)
    # A key that is not a verifier key, given with a real bundle.
    _, blob, _ = desk.ssh("audrey", "audit", "export", "--ticket", desk.ticket, text=False)
    bundle = os.path.join(WORK, "T-1.tar")
    with open(bundle, "wb") as f:
        f.write(blob)
    status, said = verify(bundle, "--key", "tierline.relay/x+00000000+AAAA")
    check(status == 2 and "the audit key" in said, "a bad key: %s" % said)
    status, said = verify(bundle, "--key", vkey)
    count = file_of(blob, "audit/entries.log").count(b"\n")
    check(status == 0 and said.startswith("bundle OK: T-1: %d audit entries" % count) and
          count >= 2, said)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)
    vendor.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("audit_export.py BIN_DIR", "tl-auditx-", setup_globals,
                         track_popen=True, home=True))
