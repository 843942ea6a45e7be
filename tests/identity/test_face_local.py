"""The local (dlib) adapter on public-domain faces; skipped, with the pip command, without the `face` extra."""

from __future__ import annotations

import struct
import zlib

import pytest
from face_helpers import FACE_EXTRA_REASON, LI_NA, ZHANG_WEI, b64, encode, open_image

pytest.importorskip("dlib", reason=FACE_EXTRA_REASON)
pytest.importorskip("PIL", reason=FACE_EXTRA_REASON)

from PIL import Image, ImageEnhance  # noqa: E402

from identity.errors import IdentityDataMissing, InvalidEvidence, ReferenceUnusable  # noqa: E402
from identity.interface import Identity, Outcome  # noqa: E402
from identity.local import LocalFaceAdapter  # noqa: E402


def verify(adapter, identity, evidence):
    session = adapter.start(verification_id="ver_local", identity=identity, purpose="测试")
    return adapter.result(session=session, identity=identity, evidence=evidence)


def one(data: bytes) -> dict:
    return {"image": b64(data)}


# --- same person passes, different people fail ----------------------------------------------------------

VARIANTS = {
    "crop": lambda im: im.crop((30, 0, 256, 226)),
    "rotate_+12": lambda im: im.rotate(12, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)),
    "rotate_-15": lambda im: im.rotate(-15, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "low_contrast": lambda im: ImageEnhance.Contrast(im).enhance(0.6),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "upscaled_2x": lambda im: im.resize((512, 512), Image.Resampling.LANCZOS),
    "large_4x": lambda im: im.resize((1024, 1024), Image.Resampling.BICUBIC),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_same_face_under_changes_passes(local_adapter, zhang_wei, astronaut, variant):
    probe = encode(VARIANTS[variant](open_image(astronaut)), "JPEG", quality=85)
    result = verify(local_adapter, zhang_wei, one(probe))
    assert result.outcome is Outcome.PASS, result
    assert result.similarity >= result.threshold == 0.4


@pytest.mark.parametrize("quality", [15, 40])
def test_the_same_face_survives_jpeg_re_encoding(local_adapter, zhang_wei, astronaut, quality):
    assert verify(local_adapter, zhang_wei, one(encode(open_image(astronaut), "JPEG", quality=quality))).passed


def test_a_png_probe_is_accepted(local_adapter, zhang_wei, astronaut):
    assert verify(local_adapter, zhang_wei, one(encode(open_image(astronaut), "PNG"))).passed


def test_exif_orientation_is_applied(local_adapter, zhang_wei, astronaut):
    # A phone stores a portrait sideways with an orientation flag; 6 = "rotate 90° clockwise to view".
    sideways = open_image(astronaut).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    assert verify(local_adapter, zhang_wei, one(encode(sideways, "JPEG", quality=90, exif=exif.tobytes()))).passed
    # Without the flag the face lies on its side and the frontal detector finds none.
    assert verify(local_adapter, zhang_wei, one(encode(sideways, "JPEG", quality=90))).outcome \
        is Outcome.POOR_QUALITY


def test_different_people_do_not_match(local_adapter, zhang_wei, grace_hopper):
    result = verify(local_adapter, zhang_wei, one(grace_hopper))
    assert result.outcome is Outcome.NO_MATCH and result.provider_code == "no_match"
    assert result.similarity < result.threshold


def test_different_people_do_not_match_the_other_way_round(local_adapter, astronaut, grace_hopper):
    li_na = Identity(*LI_NA, reference_photo=grace_hopper)
    assert verify(local_adapter, li_na, one(astronaut)).outcome is Outcome.NO_MATCH


def test_the_threshold_is_configurable(astronaut, grace_hopper):
    lenient = LocalFaceAdapter(max_distance=0.7)  # too lenient: the two women now "match"
    result = verify(lenient, Identity(*ZHANG_WEI, reference_photo=astronaut), one(grace_hopper))
    assert result.passed and result.threshold == pytest.approx(0.3)
    strict = LocalFaceAdapter(max_distance=0.05)
    probe = encode(ImageEnhance.Brightness(open_image(astronaut)).enhance(1.4), "JPEG", quality=85)
    assert verify(strict, Identity(*ZHANG_WEI, reference_photo=astronaut), one(probe)).outcome is Outcome.NO_MATCH


# --- several probes, several faces ----------------------------------------------------------------------

def test_every_probe_must_match(local_adapter, zhang_wei, astronaut, grace_hopper):
    good = b64(encode(open_image(astronaut), "JPEG", quality=80))
    assert verify(local_adapter, zhang_wei, {"images": [good, good]}).passed
    mixed = verify(local_adapter, zhang_wei, {"images": [good, b64(grace_hopper)]})
    assert mixed.outcome is Outcome.NO_MATCH


def two_people(large: bytes, small: bytes) -> bytes:
    """A composite: `large` at 512 px on the left, `small` at 160 px on the right."""
    canvas = Image.new("RGB", (720, 512), (200, 200, 200))
    canvas.paste(open_image(large).resize((512, int(512 * open_image(large).height / open_image(large).width))),
                 (0, 0))
    canvas.paste(open_image(small).resize((160, int(160 * open_image(small).height / open_image(small).width))),
                 (540, 160))
    return encode(canvas, "JPEG", quality=90)


def test_with_several_faces_the_largest_is_used(local_adapter, zhang_wei, astronaut, grace_hopper):
    assert verify(local_adapter, zhang_wei, one(two_people(astronaut, grace_hopper))).passed
    assert verify(local_adapter, zhang_wei, one(two_people(grace_hopper, astronaut))).outcome is Outcome.NO_MATCH


def test_the_mission_patch_is_not_taken_for_the_face(local_adapter, astronaut):
    # At 512 px with upsampling dlib finds the patch nearly as large as her face (90 vs 91 px).
    from identity.images import load_rgb
    from identity.local import _largest_face, _load_models

    pixels = load_rgb(encode(open_image(astronaut).resize((512, 512)), "PNG"))
    rect = _largest_face(_load_models(), pixels, upsample=1)
    assert rect.top() < 200  # her face is in the upper half; the patch sits lower on the suit


# --- no face, bad images, bad evidence ------------------------------------------------------------------

def test_a_probe_without_a_face_is_poor_quality(local_adapter, zhang_wei):
    result = verify(local_adapter, zhang_wei, one(encode(Image.new("RGB", (320, 240), (30, 120, 200)), "PNG")))
    assert result.outcome is Outcome.POOR_QUALITY and result.provider_code == "no_face"
    assert result.similarity is None and result.threshold == 0.4


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width × height pixels, with a tiny (truncated) body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ({"image": b64(b"%PDF-1.7 not an image at all")}, "not_an_image"),
        ({"image": b64(b"GIF89a\x01\x00\x01\x00")}, "not_an_image"),
        ({"image": b64(b"\xff\xd8\xff\xe0" + b"\0" * 200)}, "not_an_image"),  # a JPEG in name only
        ({"image": "this is not base64!"}, "not_base64"),
        ({"image": b64(huge_png(10_000, 10_000))}, "too_many_pixels"),
        ({"image": b64(huge_png(50_000, 50_000))}, "too_many_pixels"),
        ({"image": 12}, "bad_shape"),
        ({"image": ""}, "bad_shape"),
        ({"images": "abc"}, "bad_shape"),
        ({"images": []}, "bad_shape"),
        ({"images": ["a", "b", "c", "d"]}, "bad_shape"),
        ({"image": "x", "images": ["x"]}, "bad_shape"),
        ({"photo": "x"}, "bad_shape"),
    ],
)
def test_unusable_evidence_is_invalid(local_adapter, zhang_wei, evidence, reason):
    with pytest.raises(InvalidEvidence) as raised:
        verify(local_adapter, zhang_wei, evidence)
    assert raised.value.reason == reason


def test_a_truncated_jpeg_is_invalid(local_adapter, zhang_wei, astronaut):
    with pytest.raises(InvalidEvidence) as raised:
        verify(local_adapter, zhang_wei, one(astronaut[: len(astronaut) // 2]))
    assert raised.value.reason == "not_an_image"


def test_an_oversized_image_is_refused_before_decoding(zhang_wei, astronaut):
    adapter = LocalFaceAdapter(max_image_bytes=10_000)  # the astronaut file is 15.8 KB
    with pytest.raises(InvalidEvidence) as raised:
        verify(adapter, zhang_wei, one(astronaut))
    assert raised.value.reason == "too_large"
    with pytest.raises(InvalidEvidence) as raised:  # far too large: refused from the text length alone
        verify(adapter, zhang_wei, {"image": "A" * 1_000_000})
    assert raised.value.reason == "too_large"


def test_a_data_url_and_line_breaks_are_accepted(local_adapter, zhang_wei, astronaut):
    text = b64(astronaut)
    wrapped = "data:image/jpeg;base64," + "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    assert verify(local_adapter, zhang_wei, {"image": wrapped}).passed


# --- the reference photo --------------------------------------------------------------------------------

def test_an_identity_without_a_reference_photo_cannot_start(local_adapter):
    with pytest.raises(IdentityDataMissing) as raised:
        local_adapter.start(verification_id="v", identity=Identity(*ZHANG_WEI), purpose="测试")
    assert raised.value.field == "reference_photo"


def test_a_reference_that_is_not_an_image_cannot_start(local_adapter):
    with pytest.raises(ReferenceUnusable) as raised:
        local_adapter.start(verification_id="v", identity=Identity(*ZHANG_WEI, reference_photo=b"<html>"),
                            purpose="测试")
    assert raised.value.reason == "not_an_image"


def test_a_reference_without_a_face_is_unusable(local_adapter, astronaut):
    blank = Identity(*ZHANG_WEI, reference_photo=encode(Image.new("RGB", (256, 256), (250, 250, 250)), "JPEG"))
    with pytest.raises(ReferenceUnusable) as raised:
        verify(local_adapter, blank, one(astronaut))
    assert raised.value.reason == "no_face"


# --- honesty and hygiene --------------------------------------------------------------------------------

def test_it_states_that_it_does_no_liveness_detection(local_adapter, zhang_wei, astronaut):
    caps = local_adapter.capabilities
    assert (caps.liveness, caps.authoritative_source, caps.needs_reference_photo) == (False, False, True)
    assert not caps.satisfies(liveness=True)
    assert "NO liveness" in (LocalFaceAdapter.__doc__ or "")
    session = local_adapter.start(verification_id="v", identity=zhang_wei, purpose="测试")
    assert session.client_payload["liveness"] is False
    assert verify(local_adapter, zhang_wei, one(astronaut)).liveness is None


def test_the_adapter_keeps_nothing_of_a_verification(zhang_wei, astronaut):
    adapter = LocalFaceAdapter()
    before = dict(vars(adapter))
    verify(adapter, zhang_wei, one(astronaut))
    with pytest.raises(InvalidEvidence):
        verify(adapter, zhang_wei, {"image": b64(b"GIF89a")})
    assert vars(adapter) == before
    assert all(isinstance(value, int | float | str) or type(value).__name__ == "timedelta"
               for value in vars(adapter).values())


@pytest.mark.parametrize(
    "settings",
    [{"max_distance": 0}, {"max_distance": 2.5}, {"max_probes": 0}, {"upsample": 3}, {"session_ttl_seconds": 0}],
)
def test_bad_settings_are_refused(settings):
    from identity.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        LocalFaceAdapter(**settings)


def test_from_config_reads_its_keys():
    adapter = LocalFaceAdapter.from_config({"FACE_LOCAL_MAX_DISTANCE": "0.5", "FACE_LOCAL_MAX_PROBES": "2"})
    assert (adapter.max_distance, adapter.max_probes, adapter.upsample) == (0.5, 2, 1)
