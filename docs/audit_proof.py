#!/usr/bin/env python3
"""Checks an inclusion proof from `audit prove ENTRY --json` (docs/audit-format.md §18) with
nothing but Python's standard library and the openssl command line (its checks are those of
verify_bundle.py beside it, which checks a whole bundle):

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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_bundle import note_text, root_from_path  # noqa: E402  (one implementation of each)


def fail(reason):
    print("proof FAILS: " + reason)
    sys.exit(1)


def check_signature(note, vkey):
    """The note's text, if one signature line is a good Ed25519 signature by vkey."""
    try:
        text = note_text(note, vkey)
    except ValueError as e:
        sys.exit("audit_proof.py: VKEY: %s" % e)
    if text is None:
        fail("the checkpoint carries no good signature by " + vkey.split("+")[0])
    return text


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
