"""tlog: the cryptography of a transparency log, and the offline verifier of its evidence bundles.

Flask-free and database-free on purpose: an auditor runs `zsb-verify` (tlog.cli) with neither the service nor
its database, so everything here depends on the standard library and `cryptography` alone (an import-linter
contract in setup.cfg keeps it that way).

- tlog.merkle: RFC 9162 Merkle trees (hashing, proof verification, and proof plans for a store of complete
  subtrees).
- tlog.note: C2SP signed notes with Ed25519 keys (the Go sumdb/note key formats).
- tlog.checkpoint: C2SP tlog-checkpoint, the signed tree head.
- tlog.records: how the service commits a record to a leaf (and its older hash chain).
- tlog.bundle: the evidence bundle format and its verification; tlog.cli is its command line.
"""
