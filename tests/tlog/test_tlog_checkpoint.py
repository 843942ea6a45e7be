"""tlog.checkpoint: the C2SP tlog-checkpoint text, round trip and strict parsing."""

from __future__ import annotations

import base64

import pytest

from tlog import note
from tlog.checkpoint import MAX_SIZE, Checkpoint, CheckpointError

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()

# The example of the C2SP tlog-checkpoint spec.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = SPEC_TEXT + ("\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
                         "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")


def test_round_trip():
    for checkpoint in (Checkpoint("zsb.example.gov.cn/audit/face-verifications", 40, ROOT),
                       Checkpoint("o", 0, ROOT), Checkpoint("o", MAX_SIZE, ROOT, ("ext one", "ext two"))):
        assert Checkpoint.parse(checkpoint.to_text()) == checkpoint
    assert Checkpoint("log", 7, ROOT).to_text() == f"log\n7\n{ROOT_B64}\n"
    assert Checkpoint("log", 7, ROOT, ["x"]).extensions == ("x",)


def test_spec_example():
    checkpoint = Checkpoint.parse(SPEC_TEXT)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.to_text() == SPEC_TEXT
    with pytest.raises(note.UnverifiedNoteError) as caught:  # no key published for it
        note.open(SPEC_NOTE, [])
    assert Checkpoint.parse(caught.value.note.text) == checkpoint


def test_signed_checkpoint():
    signer = note.Signer.generate("zsb.example.gov.cn/audit/face-verifications")
    checkpoint = Checkpoint(signer.name, 12, ROOT)
    opened = note.open(note.sign(checkpoint.to_text(), signer), [signer.verifier()])
    assert Checkpoint.parse(opened.text) == checkpoint


@pytest.mark.parametrize("text", [
    f"log\n007\n{ROOT_B64}\n",  # leading zeros
    f"log\n00\n{ROOT_B64}\n",
    f"log\n-1\n{ROOT_B64}\n",  # negative
    f"log\n+1\n{ROOT_B64}\n",
    f"log\n 1\n{ROOT_B64}\n",
    f"log\n1 \n{ROOT_B64}\n",
    f"log\n1.0\n{ROOT_B64}\n",
    f"log\n1_000\n{ROOT_B64}\n",
    f"log\n١٢\n{ROOT_B64}\n",  # non-ASCII digits
    f"log\n\n{ROOT_B64}\n",
    f"log\n{MAX_SIZE + 1}\n{ROOT_B64}\n",  # beyond uint64
    "log\n1\n",  # missing lines
    "log\n",
    "",
    f"log\n1\n{ROOT_B64}",  # no final newline
    f"\n1\n{ROOT_B64}\n",  # empty origin
    f"log\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
    f"log\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",  # 33-byte root
    f"log\n1\n{ROOT_B64.rstrip('=')}\n",  # unpadded
    f"log\n1\n{ROOT_B64[:-2]}B=\n",  # non-canonical padding bits
    "log\n1\nnot base64!\n",
    f"log\n1\n{ROOT_B64.replace('A', '-')}\n",  # URL-safe alphabet
    f"log\n1\n{ROOT_B64}\n\n",  # an empty extension line
    f"log\n1\n{ROOT_B64}\next\n\n",
])
def test_strict_parsing(text):
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_parse_wants_text():
    with pytest.raises(CheckpointError):
        Checkpoint.parse(SPEC_TEXT.encode())


@pytest.mark.parametrize(("origin", "size", "root", "extensions"), [
    ("", 1, ROOT, ()), ("a\nb", 1, ROOT, ()), ("log", -1, ROOT, ()), ("log", MAX_SIZE + 1, ROOT, ()),
    ("log", True, ROOT, ()), ("log", "1", ROOT, ()), ("log", 1, ROOT[:31], ()), ("log", 1, ROOT_B64, ()),
    ("log", 1, ROOT, ("",)), ("log", 1, ROOT, ("a\nb",)),
])
def test_constructor_validates(origin, size, root, extensions):
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root, extensions)
