"""`zsb-verify`: check an evidence bundle offline, with nothing but the log's verifier key.

    zsb-verify BUNDLE.json --key VERIFIER_KEY [--key …] [--key-file FILE] [--previous CHECKPOINT_FILE]

Prints one line: what was verified, or the first failure. Exit status 0 when everything verified, 1 when
something did not (the bundle is no evidence), 2 for a usage error or input that cannot be read at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tlog import note
from tlog.bundle import BundleError, load_bundle, verify_bundle

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsb-verify",
        description="Verify a transparency-log evidence bundle offline: the checkpoint's signature, every "
                    "record's hash and inclusion proof, and optionally consistency with a checkpoint you kept.",
        epilog="Exit status: 0 verified, 1 verification failed, 2 usage error or unreadable input.")
    parser.add_argument("bundle", metavar="BUNDLE.json", help="the evidence bundle ('-' reads standard input)")
    parser.add_argument("--key", action="append", default=[], metavar="VERIFIER_KEY",
                        help="a trusted verifier key, <name>+<key ID>+<base64 key> (repeatable)")
    parser.add_argument("--key-file", action="append", default=[], metavar="FILE",
                        help="a file of verifier keys, one a line; blank lines and lines starting with # are "
                             "skipped (repeatable)")
    parser.add_argument("--previous", metavar="CHECKPOINT_FILE",
                        help="a signed checkpoint you kept from before: the bundle's must be consistent with it")
    return parser


def _read(path: str) -> str:
    """A file's text (UTF-8), or standard input for '-'. Raises OSError / UnicodeDecodeError."""
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8")
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def _verifiers(keys: Sequence[str], files: Sequence[str]) -> list[note.Verifier]:
    texts = list(keys)
    for path in files:
        for line in _read(path).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                texts.append(line)
    return [note.Verifier.from_key(text.strip()) for text in texts]


def _usage_error(message: str) -> int:
    print(f"zsb-verify: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        verifiers = _verifiers(args.key, args.key_file)
    except (OSError, UnicodeDecodeError) as exc:
        return _usage_error(f"cannot read a key file: {exc}")
    except note.KeyFormatError as exc:
        return _usage_error(str(exc))
    if not verifiers:
        return _usage_error("no verifier key: give the log's key with --key or --key-file")
    try:
        bundle = load_bundle(_read(args.bundle))
    except (OSError, UnicodeDecodeError) as exc:
        return _usage_error(f"cannot read the bundle: {exc}")
    except BundleError as exc:
        return _usage_error(f"the bundle is not readable: {exc}")
    previous = None
    if args.previous is not None:
        try:
            # Editors and shells add a final newline of their own; a signed note ends in exactly one.
            previous = _read(args.previous).rstrip("\n") + "\n"
        except (OSError, UnicodeDecodeError) as exc:
            return _usage_error(f"cannot read the previous checkpoint: {exc}")
    report = verify_bundle(bundle, verifiers, previous)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
