#!/usr/bin/env python3
"""Checks a ticket's evidence bundle (docs/audit-format.md §19, §22) with Python's standard
library and the openssl command line alone, against the audit key YOU kept (`tierline-relay audit
pubkey`): verify_bundle.py T-4.tar --key VKEY (or --key-file FILE, or --trust-bundle-key).
Exit 0 OK, 1 the first failure (file, line, reason), 2 usage."""
import argparse, base64, hashlib, json, os, subprocess, sys, tarfile, tempfile
b64, sha = base64.b64decode, lambda data: hashlib.sha256(data).hexdigest()

def root_from_path(index, size, leaf, path):
    """RFC 9162 §2.1.3.2: the root the audit path gives, or None if it has the wrong length."""
    fn, sn, r = index, size - 1, leaf
    for p in path if index < size else [None]:
        if sn == 0 or p is None:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None

def ed25519_verify(public, data, signature):
    """openssl pkeyutl -verify with a raw Ed25519 public key (32 bytes, put in a DER key)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (("pub.der", bytes.fromhex("302a300506032b6570032100") + public),
                              ("data", data), ("sig", signature)):
            open(os.path.join(tmp, name), "wb").write(content)
        return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                               "-inkey", "pub.der", "-rawin", "-in", "data", "-sigfile", "sig"],
                              cwd=tmp, capture_output=True).returncode == 0

def note_text(note, vkey):
    """The note's text if signed by vkey (NAME+ID+KEY), else None; ValueError for a bad vkey."""
    name, key_id, key = vkey.split("+", 2)  # a name holds no "+"; the base64 key may
    raw = base64.b64decode(key)
    if len(raw) != 33 or raw[0] != 1 or sha(name.encode() + b"\n" + raw)[:8] != key_id:
        raise ValueError("not an Ed25519 verifier key whose id matches its key")
    split = note.rfind(b"\n\n")
    text, prefix = note[:split + 1], "\u2014 ".encode() + name.encode() + b" "
    for line in note[split + 2:].split(b"\n") if split >= 0 else []:
        blob = base64.b64decode(line[len(prefix):]) if line.startswith(prefix) else b""
        if len(blob) == 68 and blob[:4].hex() == key_id and ed25519_verify(raw[1:], text, blob[4:]):
            return text
    return None

def check(ok, where, reason, why):
    if not ok:  # the first failure ends it
        sys.exit(print("bundle FAILS: %s: %s: %s" % (where, reason, why)) or 1)

def verify(files, vkey):
    for name in ("audit/entries.log", "audit/proofs.json", "audit/checkpoint", "audit/audit.vkey",
                 "timeline.json", "MANIFEST", "MANIFEST.sig", "relay.pem"):
        check(name in files, name, "missing", "the bundle does not hold it")
    check(files["audit/audit.vkey"].decode().strip() == vkey, "audit/audit.vkey", "bad-key",
          "the bundle names another audit key than the one given")
    text = note_text(files["audit/checkpoint"], vkey)
    check(text is not None, "audit/checkpoint", "bad-signature", "not signed by the audit key")
    origin, size, root = text.decode().split("\n")[:3]
    size, root = int(size), b64(root)
    check(origin == vkey.split("+")[0], "audit/checkpoint", "bad-note", "of another log")
    proofs = json.loads(files["audit/proofs.json"])
    check(proofs["tree_size"] == size and b64(proofs["root"]) == root, "audit/proofs.json",
          "bad-proof", "not for the checkpoint's tree")
    lines, proofs = files["audit/entries.log"].split(b"\n"), proofs["proofs"]
    check(lines.pop() == b"", "audit/entries.log", "bad-entry", "its last line has no line feed")
    last, named, tombstones = None, {}, set()  # tombstones: payloads retention removed
    for k, line in enumerate(lines, 1):
        check(k <= len(proofs), "audit/entries.log line %d" % k, "no-proof",
              "proofs.json holds only %d" % len(proofs))
        proof, entry, body, suffix = proofs[k - 1], json.loads(line), line[:-75], line[-75:]
        where = "audit/entries.log line %d (leaf %d, seq %s)" % (k, proof["index"], entry["seq"])
        check(suffix.startswith(b',"hash":"') and suffix.endswith(b'"}') and
              sha(body) == entry["hash"] == suffix[9:73].decode(), where, "bad-hash",
              "its hash is not the SHA-256 of its bytes")
        if last is not None and entry["seq"] == last["seq"] + 1:
            check(entry["prev"] == last["hash"], where, "bad-prev", "not linked to the line before")
        leaf = hashlib.sha256(b"\x00" + line).digest()
        check(leaf == b64(proof["leaf_hash"]), where, "bad-leaf", "not the leaf its proof names")
        check(last is None or proof["index"] > proofs[k - 2]["index"], where, "bad-order",
              "entries out of the log's order")
        check(root_from_path(proof["index"], size, leaf, [b64(p) for p in proof["audit_path"]])
              == root, where, "bad-proof", "its audit path does not lead to the signed root")
        d, last = entry["details"], entry
        tombstones |= {d["sha256"]} if entry["action"] == "evidence.prune" else set()
        for h in [d.get("sha256"), d.get("recording")] + list(d.get("evidence") or []):
            named.setdefault(h, k)
    check(len(proofs) == len(lines), "audit/entries.log", "missing-entry",
          "%d entries, but proofs.json proves %d" % (len(lines), len(proofs)))
    items = json.loads(files["timeline.json"])["evidence"]
    pruned = [item["sha256"] for item in items if "path" not in item]  # removed by retention:
    for h in pruned:  # only a tombstone explains a payload's absence
        check(h in tombstones, "timeline.json", "missing", "%s is not in the bundle, and no "
              "tombstone entry (evidence.prune) names it" % h)
    for h, path in ((item["sha256"], item["path"]) for item in items if "path" in item):
        check(path in files, path, "missing", "the bundle does not hold it")
        check(h in named, path, "unaudited", "no audit entry here names its SHA-256 %s" % h)
        check(sha(files[path]) == h, path, "bad-evidence", "its SHA-256 is %s; line %d of "
              "audit/entries.log names %s" % (sha(files[path]), named[h], h))
    # MANIFEST: signed by the relay the audit key is named after, listing every file.
    public = b64(b"".join(files["relay.pem"].strip().split(b"\n")[1:-1]))[-32:]
    fp = base64.urlsafe_b64encode(hashlib.sha256(b"\0\0\0\x0bssh-ed25519\0\0\0 " + public).digest())
    check(origin == "tierline.relay/" + fp.decode().rstrip("="), "relay.pem", "bad-relay-key",
          "not the key of the relay that owns the audit key")
    check(ed25519_verify(public, files["MANIFEST"], files["MANIFEST.sig"]), "MANIFEST.sig",
          "bad-signature", "MANIFEST is not signed by relay.pem")
    listed = dict(l.split("  ", 1)[::-1] for l in files["MANIFEST"].decode().splitlines())
    for name in sorted(set(files) - {"MANIFEST", "MANIFEST.sig", "relay.pem"} | set(listed)):
        check(name in files and sha(files[name]) == listed.get(name), name, "bad-manifest",
              "not as MANIFEST lists it")
    return ("%d audit entries proved against the checkpoint of size %d, %d evidence files, %d "
            "files signed in MANIFEST, %d payloads pruned by retention" % (
                len(lines), size, len(items) - len(pruned), len(listed), len(pruned)))

def main():
    parser = argparse.ArgumentParser(description="Checks a ticket's evidence bundle.")
    parser.add_argument("bundle")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--key", help="the audit verifier key you kept (NAME+ID+KEY)")
    key.add_argument("--key-file", help="a file whose first line is that key")
    key.add_argument("--trust-bundle-key", action="store_true", help="the bundle's own key")
    args = parser.parse_args()
    if not (args.key or args.key_file or args.trust_bundle_key):
        parser.error("give the audit key you kept (--key or --key-file); the bundle's own "
                     "(--trust-bundle-key) proves only that the bundle agrees with itself")
    if args.trust_bundle_key:
        print("warning: trusting the bundle's own audit key: this shows the bundle agrees with "
              "itself, not that the relay you know made it", file=sys.stderr)
    try:
        vkey = args.key or (open(args.key_file).readline() if args.key_file else "")
        with tarfile.open(args.bundle) as tar:
            folder = tar.getmembers()[0].name.rstrip("/") + "/"
            files = {m.name[len(folder):]: tar.extractfile(m).read() for m in tar.getmembers()
                     if m.isfile() and m.name.startswith(folder)}
        vkey = (vkey or files.get("audit/audit.vkey", b"").decode()).strip()
        note_text(b"", vkey)  # the key is checked before anything else
    except OSError as e:
        parser.error("cannot read %s: %s" % (e.filename, e.strerror or e))
    except (tarfile.TarError, IndexError):
        parser.error("%s is not a tar archive" % args.bundle)
    except ValueError as e:
        parser.error("the audit key %r: %s" % (vkey, e))
    try:
        return print("bundle OK: %s: %s" % (folder.rstrip("/"), verify(files, vkey))) or 0
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
        return print("bundle FAILS: malformed: %r" % e) or 1

if __name__ == "__main__":
    sys.exit(main())
