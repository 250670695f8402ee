#!/usr/bin/env python3
"""Checks an inclusion proof from `audit prove ENTRY --json` (docs/audit-format.md §18) with
nothing but Python's standard library and the openssl command line:

    python3 audit_proof.py PROOF.json VKEY

VKEY is the relay's audit verifier key as you kept it (`tierline-relay audit pubkey`, first line).
It checks that the entry's bytes hash to the leaf, that the audit path leads from the leaf to the
root (RFC 9162 §2.1.3.2), and that the checkpoint is signed by VKEY and names that root and size.
Exit status 0 when the proof holds, 1 when it does not (with the reason), 2 on bad arguments.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")


def fail(reason):
    print("proof FAILS: " + reason)
    sys.exit(1)


def root_from_path(index, size, leaf, path):
    """RFC 9162 §2.1.3.2: the root the audit path gives, or None if it has the wrong length."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check_signature(note, vkey):
    """The note's text, if one signature line is a good Ed25519 signature by vkey."""
    # A key name holds no "+"; the key id is hex; the base64 key may hold "+".
    name, key_id, key = vkey.split("+", 2)
    raw = base64.b64decode(key)
    if len(raw) != 33 or raw[0] != 1:
        sys.exit("audit_proof.py: VKEY is not an Ed25519 verifier key")
    public = raw[1:]
    if hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4].hex() != key_id:
        sys.exit("audit_proof.py: VKEY's key id does not match its key")
    split = note.rfind(b"\n\n")
    if split < 0:
        fail("the checkpoint is not a signed note")
    text, signatures = note[:split + 1], note[split + 2:].split(b"\n")
    prefix = "\u2014 ".encode() + name.encode() + b" "
    with tempfile.TemporaryDirectory() as tmp:
        pem = os.path.join(tmp, "pub.pem")
        with open(pem, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" %
                    base64.b64encode(SPKI_ED25519 + public).decode())
        with open(os.path.join(tmp, "text"), "wb") as f:
            f.write(text)
        for line in signatures:
            if not line.startswith(prefix):
                continue
            blob = base64.b64decode(line[len(prefix):])
            if blob[:4].hex() != key_id or len(blob) != 68:
                continue
            with open(os.path.join(tmp, "sig"), "wb") as f:
                f.write(blob[4:])
            proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem,
                                   "-rawin", "-in", os.path.join(tmp, "text"), "-sigfile",
                                   os.path.join(tmp, "sig")], capture_output=True)
            if proc.returncode == 0:
                return text
    fail("the checkpoint carries no good signature by " + name)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: audit_proof.py PROOF.json VKEY")
    with open(argv[1], "rb") as f:
        proof = json.load(f)
    vkey = argv[2].strip()
    entry = proof["entry"].encode()
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    if base64.b64decode(proof["leaf_hash"]) != leaf:
        fail("the entry's bytes do not hash to leaf_hash")
    text = check_signature(proof["checkpoint"].encode(), vkey)
    lines = text.split(b"\n")
    origin, size, root = lines[0].decode(), int(lines[1]), base64.b64decode(lines[2])
    if origin != vkey.split("+")[0]:
        fail("the checkpoint is of another log: " + origin)
    if size != proof["tree_size"]:
        fail("the proof is for size %d, the checkpoint for %d" % (proof["tree_size"], size))
    path = [base64.b64decode(p) for p in proof["audit_path"]]
    if root_from_path(proof["index"], size, leaf, path) != root:
        fail("the audit path does not lead to the signed root")
    seq = json.loads(entry)["seq"]
    print("proof OK: entry %d (seq %d) is in the log %s of %d entries, signed by its audit key" %
          (proof["index"], seq, origin, size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
