"""tlog.note against the vectors of Go's golang.org/x/mod/sumdb/note (note_test.go) and the C2SP spec."""

from __future__ import annotations

import base64

import pytest

from tlog import note
from tlog.note import KeyFormatError, NoteError, Signer, UnverifiedNoteError, Verifier

# golang.org/x/mod/sumdb/note/note_test.go
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_B64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"


@pytest.fixture
def peter() -> Verifier:
    return Verifier.from_key(PETER_VKEY)


@pytest.fixture
def enoch() -> Verifier:
    return Verifier.from_key(ENOCH_VKEY)


def signature(name: str, b64: str) -> note.Signature:
    raw = base64.b64decode(b64)
    return note.Signature(name, raw[:4], raw[4:])


# ------------------------------------------------------------------------------------------------ keys


def test_go_keys_parse_and_agree():
    signer = Signer.from_key(PETER_SKEY)
    verifier = Verifier.from_key(PETER_VKEY)
    assert signer.name == verifier.name == "PeterNeumann"
    assert signer.key_id == verifier.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier_key() == verifier.verifier_key() == PETER_VKEY
    assert signer.private_key_text() == PETER_SKEY
    assert signer.verifier() == verifier
    assert note.key_id("PeterNeumann", base64.b64decode(PETER_VKEY.split("+", 2)[2])) == bytes.fromhex("c74f20a3")


def _manglings(key: str):
    raw = key.encode()
    for start in range(len(raw) + 1):
        for end in range(start + 1, len(raw) + 1):
            if (start, end) != (0, len(raw)):
                yield raw[start:end].decode()
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] += 1
        yield changed.decode()


@pytest.mark.parametrize(("parse", "key"), [(Verifier.from_key, PETER_VKEY), (Signer.from_key, PETER_SKEY)],
                         ids=["verifier", "signer"])
def test_every_mangling_of_a_key_is_rejected(parse, key):
    accepted = []
    for mangled in _manglings(key):
        try:
            parse(mangled)
        except KeyFormatError:
            continue
        accepted.append(mangled)
    assert accepted == []


@pytest.mark.parametrize("key", [
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length, adjusted ID
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm, adjusted ID
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case key ID
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",  # trailing space
    "Peter+Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "",
])
def test_bad_verifier_keys(key):
    with pytest.raises(KeyFormatError):
        Verifier.from_key(key)


def test_generated_keys_round_trip():
    signer = Signer.generate("zsb.example.gov.cn/audit/face-verifications")
    again = Signer.from_key(signer.private_key_text())
    verifier = Verifier.from_key(signer.verifier_key())
    assert again.key_id == signer.key_id == verifier.key_id
    message = b"hi"
    sig = signer.sign(message)
    assert verifier.verify(message, sig) and verifier.verify(message, again.sign(message))
    assert not verifier.verify(b"hI", sig)
    assert not verifier.verify(message, bytes([sig[0] ^ 1]) + sig[1:])
    assert not verifier.verify(message, sig[:-1])
    assert signer.private_key_text() not in repr(signer)
    assert Signer.generate("x").key_id != Signer.generate("x").key_id


@pytest.mark.parametrize(("name", "valid"), [
    ("PeterNeumann", True), ("example.com/log42", True), ("掌上办/审计", True),
    ("", False), ("a+b", False), ("a b", False), ("a\tb", False), ("a\u00a0b", False), ("a\u3000b", False),
    ("a\nb", False), ("a\x01b", False), ("\ud800", False), (None, False),
])
def test_key_names(name, valid):
    assert note.is_valid_name(name) is valid
    if not valid and isinstance(name, str):
        with pytest.raises(KeyFormatError):
            Signer.generate(name)


# ------------------------------------------------------------------------------------------------ sign


def test_sign_matches_go():
    assert note.sign(TEXT, Signer.from_key(PETER_SKEY)) == TEXT + "\n" + PETER_SIG


def test_sign_rejects_bad_text_and_signers():
    signer = Signer.from_key(PETER_SKEY)
    for text in ("abc", "", "a\x01\n", "a\r\n", "\ud800\n"):
        with pytest.raises(NoteError):
            note.sign(text, signer)
    with pytest.raises(NoteError):
        note.sign(TEXT)
    with pytest.raises(NoteError):
        note.sign(TEXT, signer, Signer.from_key(PETER_SKEY))


def test_several_signers_and_blank_lines_round_trip():
    one, two = Signer.generate("log.example/one"), Signer.generate("witness.example/two")
    text = "first paragraph\n\nsecond — with an em dash\n"
    signed = note.sign(text, one, two)
    opened = note.open(signed, [one.verifier(), two.verifier()])
    assert opened.text == text
    assert [s.name for s in opened.verified] == ["log.example/one", "witness.example/two"]
    assert [s.line for s in opened.verified] == signed.split("\n\n")[-1].splitlines(keepends=True)
    only_one = note.open(signed, [one.verifier()])
    assert [s.name for s in only_one.verified] == ["log.example/one"]
    assert [s.name for s in only_one.unverified] == ["witness.example/two"]
    assert note.open(signed.encode(), [two.verifier()]).text == text


# ------------------------------------------------------------------------------------------------ open


def test_open_one_verified_one_unknown(peter):
    opened = note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert opened.text == TEXT
    assert opened.verified == [signature("PeterNeumann", PETER_B64)]
    assert opened.unverified == [signature("EnochRoot", ENOCH_B64)]


def test_open_both_verified(peter, enoch):
    opened = note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert opened.verified == [signature("PeterNeumann", PETER_B64), signature("EnochRoot", ENOCH_B64)]
    assert opened.unverified == []


def test_open_without_a_trusted_signature():
    with pytest.raises(UnverifiedNoteError) as caught:
        note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert caught.value.note.verified == []
    assert [s.name for s in caught.value.note.unverified] == ["PeterNeumann", "EnochRoot"]
    assert isinstance(caught.value, NoteError)


def test_open_with_a_verifier_given_twice(peter, enoch):
    # The same key listed twice is one key (Go: "unused duplicated verifier" opens).
    assert note.open(TEXT + "\n" + ENOCH_SIG, [enoch, peter, Verifier.from_key(ENOCH_VKEY)]).verified


def test_open_with_an_ambiguous_verifier(peter):
    impostor = Verifier("PeterNeumann", b"\x01" + bytes(32))
    impostor.key_id = peter.key_id  # two different keys with one name and key ID
    with pytest.raises(NoteError, match="ambiguous key PeterNeumann"):
        note.open(TEXT + "\n" + PETER_SIG, [peter, impostor])


def test_open_rejects_too_many_signatures(peter):
    many = "".join(f"— n{i} {PETER_B64}\n" for i in range(101))
    with pytest.raises(NoteError, match="more than 100"):
        note.open(TEXT + "\n" + many, [peter])
    note.open(TEXT + "\n" + PETER_SIG + "".join(f"— n{i} {PETER_B64}\n" for i in range(99)), [peter])


def test_open_rejects_an_invalid_signature(peter):
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann[+]c74f20a3"):
        note.open(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])


def test_open_rejects_tampered_text(peter):
    with pytest.raises(NoteError, match="invalid signature"):
        note.open(TEXT.replace("answer", "Answer") + "\n" + PETER_SIG, [peter])


def test_open_rejects_duplicate_lines(peter):
    # Go drops repeated signature lines; a note with them is not what any honest signer writes.
    with pytest.raises(NoteError, match="repeats"):
        note.open(TEXT + "\n" + PETER_SIG + PETER_SIG, [peter])
    with pytest.raises(NoteError, match="repeats"):
        note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [peter])


def test_open_rejects_two_signatures_by_one_key(peter):
    other = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError):
        note.open(TEXT + "\n" + PETER_SIG + other, [peter])


def test_unknown_keys_sharing_a_name_or_id_are_ignored(peter):
    # "Verifiers MUST ignore signatures from unknown keys, even if they share a name or ID (but not both)".
    same_name = "— PeterNeumann " + base64.b64encode(b"\x00\x00\x00\x01" + bytes(64)).decode() + "\n"
    same_id = "— PeterNeumann2 " + PETER_B64 + "\n"
    opened = note.open(TEXT + "\n" + PETER_SIG + same_name + same_id, [peter])
    assert len(opened.verified) == 1 and len(opened.unverified) == 2


@pytest.mark.parametrize("message", [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "— Bad Name " + PETER_B64,
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG + "\n",
    TEXT + "\n" + "— PeterNeumann\n",
    TEXT + "\n" + "— PeterNeumann  " + PETER_B64 + "\n",
    TEXT + "\n" + "— Peter+Neumann " + PETER_B64 + "\n",
    TEXT + "\n" + "-- PeterNeumann " + PETER_B64 + "\n",
    TEXT + "\n" + "— PeterNeumann x08go/ZJ\n",  # too short for a key ID and a signature
    TEXT + "\n" + "— PeterNeumann " + PETER_B64.rstrip("=") + "\n",  # unpadded
    TEXT + "\n" + "— PeterNeumann " + PETER_B64[:-2] + "N=\n",  # non-canonical padding bits
    TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
    "",
], ids=lambda message: repr(message[-24:]))
def test_open_rejects_malformed_notes(peter, message):
    with pytest.raises(NoteError):
        note.open(message, [peter])


def test_open_rejects_invalid_utf8(peter):
    with pytest.raises(NoteError, match="UTF-8"):
        note.open(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [peter])
    with pytest.raises(NoteError, match="UTF-8"):
        note.open("\ud800" + TEXT + "\n" + PETER_SIG, [peter])
    with pytest.raises(NoteError):
        note.open(None, [peter])


# ---------------------------------------------------------------------------------- C2SP spec examples

SPEC_NOTE = ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
             "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXx"
             "j99ihAQwaqP3ZekRwNtIc=\n")


def test_spec_example_parses(peter):
    # The spec publishes no key for it: it parses, with a blank line inside its text, and stays unverified.
    with pytest.raises(UnverifiedNoteError) as caught:
        note.open(SPEC_NOTE, [peter])
    opened = caught.value.note
    assert opened.text.endswith("sole:\n\ned è subito sera.\n")
    assert [(s.name, len(s.signature)) for s in opened.unverified] == [("quasimodo.example/salvatore", 64)]
