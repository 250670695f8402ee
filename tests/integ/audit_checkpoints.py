#!/usr/bin/env python3
"""Signed checkpoints of the audit log on a real relay data directory (docs/audit-format.md
§12-§16): the relay makes them, `audit-verify` and the independent verifier (audit_verify.py,
Python and the openssl command line only) accept the clean directory, and on each tampered copy
both name the same checkpoint, reason and entries. Each case runs in its own process:

    audit_checkpoints.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import audit_verify
import relay_agent
import tlcase
from relay_agent import Relay
from tlcase import case, check, run

BIN = None
WORK = None
VERIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit_verify.py")


def relay_cmd(data, *words, expect=0):
    return run(BIN + "/tierline-relay", *(list(words) + ["--data", data]), expect=expect)


def log_lines(data):
    with open(os.path.join(data, "audit.log"), "rb") as f:
        return f.read().split(b"\n")[:-1]


def entries(data):
    return [json.loads(line) for line in log_lines(data)]


def served(relay, codes):
    """The relay serves while `codes` enrollment codes are made (one entry each), then stops
    with SIGTERM, which makes the shutdown checkpoint."""
    relay.start()
    for _ in range(codes):
        relay.code()
    check(relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")


def checkpointed_relay():
    """A data directory with three stored checkpoints (sizes 6, 12, 16: each stop checkpoints
    the log, whose next entry is that checkpoint's audit.checkpoint), an auditor's saved copy of
    the last one, and the audit key as `audit pubkey` prints it."""
    relay = Relay()
    served(relay, 5)
    served(relay, 5)
    served(relay, 3)
    stored = audit_verify.read_notes(os.path.join(relay.dir, "audit.checkpoints"))
    sizes = [int(note.split(b"\n")[1]) for note in stored]
    check(sizes == [6, 12, 16], "stored checkpoints of sizes %r, expected [6, 12, 16]" % sizes)
    kept = os.path.join(WORK, "kept.note")
    out, _ = relay_cmd(relay.dir, "audit", "checkpoint")
    with open(kept, "w") as f:
        f.write(out)
    vkey = relay_cmd(relay.dir, "audit", "pubkey")[0].split("\n")[0]
    return relay, kept, vkey


def both_verdicts(data, kept, vkey):
    """(C verdict, Python verdict) of the checkpoints, as comparable tuples, and the chains'."""
    stored = os.path.join(data, "audit.checkpoints")
    files = [stored, kept]
    proc = subprocess.run([BIN + "/tierline-relay", "audit-verify", "--data", data, "--checkpoint",
                           kept, "--key", vkey, "--json"], capture_output=True, text=True,
                          timeout=60)
    report = json.loads(proc.stdout)
    check(proc.returncode == (0 if report["ok"] else 1), "audit-verify exit %d for %r"
          % (proc.returncode, report))
    bad = report["checkpoints"]["bad"]
    c = ("ok",) if bad is None else (bad["category"], files.index(bad["file"]), bad["index"],
                                      bad["size"], bad["first_entry"], bad["last_entry"])
    py = audit_verify.verify_checkpoints(os.path.join(data, "audit.log"), files, vkey)
    p = ("ok",) if py["status"] == "ok" else (py["category"], py["file"], py["index"], py["size"],
                                              py["first_entry"], py["last_entry"])
    chain_py = audit_verify.verify(os.path.join(data, "audit.log"))["status"]
    chain_c = "ok" if report["reason"] is None else "bad"
    check(chain_c == chain_py, "the chain: audit-verify %s, audit_verify.py %s" % (chain_c, chain_py))
    # The command-line verifier says the same as its function, with its exit status.
    cli = subprocess.run([sys.executable, VERIFIER, os.path.join(data, "audit.log"),
                          "--checkpoints", stored, "--checkpoints", kept, "--key", vkey],
                         capture_output=True, text=True, timeout=120)
    check(cli.returncode == (0 if p == ("ok",) and chain_py == "ok" else 1),
          "audit_verify.py exit %d: %s" % (cli.returncode, cli.stdout + cli.stderr))
    return c, p, chain_py


def tampered_copy(relay, name):
    copy = os.path.join(WORK, name)
    shutil.copytree(relay.dir, copy)
    return copy


def write_lines(data, lines):
    with open(os.path.join(data, "audit.log"), "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))


def rechain(lines, start):
    """Every line from index start on gets the prev and hash a forger would compute."""
    out = list(lines)
    for i in range(start, len(out)):
        prev = json.loads(out[i - 1])["hash"] if i > 0 else "0" * 64
        line = out[i]
        at = line.index(b',"prev":"')
        body = line[:at] + b',"prev":"' + prev.encode() + b'"'
        out[i] = body + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'
    return out


def expect(relay, kept, vkey, name, change, want):
    """Tampers a copy with change(copy), then both verifiers must report want."""
    copy = tampered_copy(relay, name.replace(" ", "-"))
    change(copy)
    c, p, chain = both_verdicts(copy, kept, vkey)
    check(c == p == want, "%s: expected %r, audit-verify %r, audit_verify.py %r"
          % (name, want, c, p))
    return chain


@case
def case_clean_directory_verifies_with_both_verifiers():
    relay, kept, vkey = checkpointed_relay()
    c, p, chain = both_verdicts(relay.dir, kept, vkey)
    check(c == p == ("ok",) and chain == "ok", "clean: audit-verify %r, audit_verify.py %r"
          % (c, p))
    # Each checkpoint is on the record as the entry after its size, naming size and root.
    log = entries(relay.dir)
    recorded = [(e["seq"], e["details"]["size"], e["details"]["root"]) for e in log
                if e["action"] == "audit.checkpoint"]
    notes = audit_verify.read_notes(os.path.join(relay.dir, "audit.checkpoints"))
    check([(size + 1, size, n.split(b"\n")[2].decode()) for n, size in
           zip(notes, (6, 12, 16))] == recorded, "audit.checkpoint entries %r" % recorded)
    # The PEM key works with openssl alone, on the note's text and signature bytes.
    out, _ = relay_cmd(relay.dir, "audit", "pubkey")
    pem = out[out.index("-----BEGIN"):]
    note = notes[-1]
    text = note[:note.rfind(b"\n\n") + 1]
    blob = base64.b64decode(note[note.rfind(b" ") + 1:-1])
    for name, data in (("pub.pem", pem.encode()), ("text", text), ("sig", blob[4:])):
        with open(os.path.join(WORK, name), "wb") as f:
            f.write(data)
    out, _ = run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", os.path.join(WORK, "pub.pem"),
                 "-rawin", "-in", os.path.join(WORK, "text"), "-sigfile", os.path.join(WORK, "sig"))
    check("Signature Verified Successfully" in out, "openssl: " + out)
    check(os.stat(os.path.join(relay.dir, "audit_key")).st_mode & 0o777 == 0o600,
          "audit_key is not 0600")


@case
def case_log_rehashed_after_an_edit_is_placed_between_checkpoints():
    relay, kept, vkey = checkpointed_relay()

    def edit_and_rehash(copy):
        lines = log_lines(copy)
        lines[8] = lines[8].replace(b'"enroll.code"', b'"enroll.cod3"')  # entry 9
        write_lines(copy, rechain(lines, 8))

    # The chain verifies (every hash was redone); the tree at size 12 does not: 7..12.
    chain = expect(relay, kept, vkey, "rehashed", edit_and_rehash,
                      ("root-mismatch", 0, 2, 12, 7, 12))
    check(chain == "ok", "the re-hashed chain should verify on its own")


@case
def case_entries_cut_after_a_saved_checkpoint_are_named():
    relay, kept, vkey = checkpointed_relay()

    def cut(copy):
        # The operator cuts entries 15.. and the stored checkpoint that covered them: only the
        # auditor's saved copy still knows size 16.
        write_lines(copy, log_lines(copy)[:14])
        stored = os.path.join(copy, "audit.checkpoints")
        notes = audit_verify.read_notes(stored)
        with open(stored, "wb") as f:
            f.write(b"".join(n + b"\n" for n in notes[:2]))

    expect(relay, kept, vkey, "cut", cut, ("log-short", 1, 1, 16, 15, 16))


@case
def case_a_checkpoint_signed_by_another_key_is_refused():
    relay, kept, vkey = checkpointed_relay()

    def resign(copy):
        # A forger with a key of their own signs the stored checkpoints again.
        key = os.path.join(WORK, "other.pem")
        run("openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
        stored = os.path.join(copy, "audit.checkpoints")
        notes = [sign_note(n[:n.rfind(b"\n\n") + 1], key) for n in audit_verify.read_notes(stored)]
        with open(stored, "wb") as f:
            f.write(b"".join(n + b"\n" for n in notes))

    expect(relay, kept, vkey, "other key", resign, ("bad-signature", 0, 1, 6, 0, 0))


@case
def case_two_roots_for_one_size_are_a_fork():
    relay, kept, vkey = checkpointed_relay()
    name = vkey.split("+")[0]

    def fork(copy):
        # The key's holder signs a second history of size 12 (another root) for the auditor.
        other = b"%s\n12\n%s\n" % (name.encode(), base64.b64encode(b"\x5a" * 32))
        with open(kept, "wb") as f:
            f.write(sign_note(other, os.path.join(copy, "audit_key"), name))

    expect(relay, kept, vkey, "fork", fork, ("fork", 1, 1, 12, 0, 0))


@case
def case_a_forged_entry_appended_after_the_last_checkpoint_is_unsigned():
    """Entries appended after the last checkpoint, with every hash computed, verify as a chain,
    but no checkpoint covers them (format §15): a stopped relay's log is signed to its end (the
    last checkpoint's own entry aside), so both name the forged entry 18 as `unsigned`, after
    the stored checkpoint 3 of size 16 (entry 17 is that checkpoint's own entry)."""
    relay, kept, vkey = checkpointed_relay()

    def forge(copy):
        lines = log_lines(copy)
        forged = lines[-2].replace(b'"seq":%d' % (len(lines) - 1), b'"seq":%d' % (len(lines) + 1))
        write_lines(copy, rechain(lines + [forged], len(lines)))

    chain = expect(relay, kept, vkey, "appended", forge, ("unsigned", 0, 3, 16, 18, 18))
    check(chain == "ok", "the forged chain should verify on its own")
    # The reason, in words, from both.
    copy = os.path.join(WORK, "appended")
    proc = subprocess.run([BIN + "/tierline-relay", "audit-verify", "--data", copy, "--key", vkey],
                          capture_output=True, text=True, timeout=60)
    check(proc.returncode == 1 and "unsigned: entries 18..18 (leaf index 17 on) are not covered "
          "by a signed checkpoint" in proc.stderr, "audit-verify: %r" % (proc.stderr,))
    cli = subprocess.run([sys.executable, VERIFIER, os.path.join(copy, "audit.log"),
                          "--checkpoints", os.path.join(copy, "audit.checkpoints"), "--key", vkey],
                         capture_output=True, text=True, timeout=120)
    check(cli.returncode == 1 and "unsigned: entries 18..18 are not covered by a signed "
          "checkpoint" in cli.stdout, "audit_verify.py: %r" % (cli.stdout,))


@case
def case_an_entry_written_while_the_relay_was_stopped_is_unsigned_until_it_starts():
    """An admin command run while no relay serves appends an entry no checkpoint covers: both
    verifiers say so, naming it; the next start signs it, and both say OK again."""
    relay, kept, vkey = checkpointed_relay()
    relay_cmd(relay.dir, "enroll-code")
    c, p, chain = both_verdicts(relay.dir, kept, vkey)
    check(c == p == ("unsigned", 0, 3, 16, 18, 18) and chain == "ok",
          "after an admin command: audit-verify %r, audit_verify.py %r" % (c, p))
    relay.start()
    tlcase.wait_for("the start's checkpoint", lambda: len(audit_verify.read_notes(
        os.path.join(relay.dir, "audit.checkpoints"))) == 4, timeout=60)
    check(relay.kill(signal.SIGTERM) == 0, "the relay did not stop cleanly")
    c, p, chain = both_verdicts(relay.dir, kept, vkey)
    check(c == p == ("ok",) and chain == "ok", "after a start: audit-verify %r, audit_verify.py %r"
          % (c, p))


@case
def case_an_older_data_directory_gets_an_audit_key_on_the_record():
    relay = Relay()
    os.unlink(os.path.join(relay.dir, "audit_key"))  # as a directory from before audit keys
    relay_cmd(relay.dir, "audit", "pubkey", expect=1)
    served(relay, 1)
    made = [e for e in entries(relay.dir) if e["action"] == "audit.key"]
    vkey = relay_cmd(relay.dir, "audit", "pubkey")[0].split("\n")[0]
    check(len(made) == 1 and made[0]["details"]["vkey"] == vkey,
          "audit.key entries %r, key %s" % (made, vkey))
    check(os.stat(os.path.join(relay.dir, "audit_key")).st_mode & 0o777 == 0o600,
          "audit_key is not 0600")
    c, p, _ = both_verdicts(relay.dir, write_kept(relay), vkey)
    check(c == p == ("ok",), "audit-verify %r, audit_verify.py %r" % (c, p))


@case
def case_checkpoint_output_and_leaves_survive_a_lost_cache():
    relay = Relay()
    relay_cmd(relay.dir, "audit", "checkpoint", expect=1)  # none yet: said, exit 1
    served(relay, 2)
    first = json.loads(relay_cmd(relay.dir, "audit", "checkpoint", "--json")[0])
    check(first["size"] == 3, "first checkpoint %r" % first)
    # The leaves are a cache: lost or garbled, the next checkpoint still has the log's root.
    os.unlink(os.path.join(relay.dir, "audit.leaves"))
    served(relay, 2)
    with open(os.path.join(relay.dir, "audit.leaves"), "r+b") as f:
        f.seek(40)
        f.write(b"\xff" * 8)
    served(relay, 2)
    c, p, _ = both_verdicts(relay.dir, write_kept(relay), relay_cmd(
        relay.dir, "audit", "pubkey")[0].split("\n")[0])
    check(c == p == ("ok",), "audit-verify %r, audit_verify.py %r" % (c, p))


def write_kept(relay):
    kept = os.path.join(WORK, "kept.note")
    with open(kept, "w") as f:
        f.write(relay_cmd(relay.dir, "audit", "checkpoint")[0])
    return kept


def sign_note(text, key_path, name=None):
    """A C2SP signed note of text by the PEM key at key_path under name (default: text's
    origin line), signed with the openssl command line."""
    name = name or text.split(b"\n")[0].decode()
    pub = os.path.join(WORK, "sign.pub")
    run("openssl", "pkey", "-in", key_path, "-pubout", "-out", pub)
    with open(pub) as f:
        der = base64.b64decode("".join(f.read().split("\n")[1:-2]))
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + der[-32:]).digest()[:4]
    message, signature = os.path.join(WORK, "sign.msg"), os.path.join(WORK, "sign.sig")
    with open(message, "wb") as f:
        f.write(text)
    run("openssl", "pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-in", message, "-out",
        signature)
    with open(signature, "rb") as f:
        blob = base64.b64encode(key_id + f.read())
    return text + b"\n" + audit_verify.EM_DASH + b" " + name.encode() + b" " + blob + b"\n"


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("audit_checkpoints.py BIN_DIR", "tl-checkpoints-", setup_globals,
                         track_popen=True))
