"""The local face adapter: offline 1:1 comparison with dlib, for offline deployments and demos.

**It does no liveness detection.** A printed photo or a screen held up to the camera passes if it shows the
right face, so `capabilities.liveness` is False and a matter that requires liveness cannot be satisfied by
it: the app must check `capabilities.satisfies(liveness=True)` and refuse. It does not compare against an
authoritative source either, only against the reference photo the app passes in (from the population
registry connector). dlib's 99.38% on LFW says nothing about the false-match rate at 1e-4 that identity
proofing needs: production identity evidence comes from an authoritative provider (`wechat`).

Method (the pipeline of the `face_recognition` package, calling dlib directly): dlib's HOG frontal face
detector, the 5-point shape predictor and the ResNet face encoder (128-d), with the model files of the PyPI
package `face_recognition_models`; Euclidean distance between encodings; same person when the distance is
at most `max_distance` (default 0.6, face_recognition's tolerance). We do not depend on the
`face_recognition` package itself: it requires the `dlib` sdist, which pip would compile (cmake, C++, many
minutes) next to the prebuilt `dlib-bin` wheel, and on import it loads two models we do not use (100 MB)
and sets Pillow's LOAD_TRUNCATED_IMAGES for the whole process.

- Faces: the largest face in each image is used (the astronaut's mission patch is detected as a face too);
  faces within 10% of the largest area are told apart by detector confidence. Detection runs without
  upsampling first and with `upsample` only if nothing was found (small faces, e.g. a 256 px reference).
- Evidence: `{"images": [<base64 JPEG/PNG>, …]}` (1 to `max_probes`) or `{"image": <base64>}`. Every probe
  must match; the reported similarity is the worst probe's.
- Scores: `similarity = 1 − distance`, `threshold = 1 − max_distance` (so 0.4 by default); pass iff
  `distance <= max_distance`, i.e. similarity >= threshold.
- Outcomes vs exceptions: bytes the client sent that are unusable as sent (wrong shape, not base64, not a
  JPEG/PNG by content, corrupt, too large, too many pixels) → InvalidEvidence; a probe photo without a
  detectable face → outcome `poor_quality` (the citizen can take another photo); a reference photo that is
  missing → IdentityDataMissing, unusable (not an image, no face) → ReferenceUnusable.
- Nothing is kept: images, pixel arrays and encodings live in local variables of one call, which are
  cleared before it returns or raises (so error reporters that capture frame locals find nothing); the
  adapter instance holds settings only, and the models are shared read-only per process.
"""

from __future__ import annotations

import importlib.util
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from identity.errors import (
    ConfigurationError,
    IdentityDataMissing,
    InvalidEvidence,
    ReferenceUnusable,
)
from identity.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, decode_base64, load_rgb, sniff
from identity.interface import (
    Capabilities,
    FaceResult,
    FaceVerifier,
    Identity,
    Outcome,
    ProviderSession,
    check_verification_id,
    utcnow,
)

INSTALL_HINT = "pip install 'zhangshangban[face]'"
REQUIRED_MODULES = ("dlib", "numpy", "PIL", "face_recognition_models")
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
ENCODER_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
DEFAULT_MAX_DISTANCE = 0.6
DEFAULT_TTL_SECONDS = 300.0
TIE_AREA_RATIO = 0.9  # faces at least this fraction of the largest one's area count as equally large


@dataclass(frozen=True)
class _Models:
    """dlib's detector, shape predictor and encoder; one set per process, used under `lock`."""

    detector: Any
    shape_predictor: Any
    encoder: Any
    lock: threading.Lock


_models: _Models | None = None
_models_lock = threading.Lock()


def _model_dir() -> Path:
    # Locate face_recognition_models' files without importing it: its __init__ imports pkg_resources,
    # which warns (and is gone in setuptools 81).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            f"the 'local' face adapter needs face_recognition_models: {INSTALL_HINT}", reason="missing_dependency"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _load_models() -> _Models:
    """The process's dlib models, loaded on first use (about 0.5 s and 30 MB)."""
    global _models
    with _models_lock:
        if _models is None:
            import dlib

            directory = _model_dir()
            paths = {name: directory / name for name in (SHAPE_MODEL, ENCODER_MODEL)}
            missing = [name for name, path in paths.items() if not path.is_file()]
            if missing:
                raise ConfigurationError(
                    f"face model files missing ({', '.join(missing)}): reinstall with {INSTALL_HINT}",
                    reason="missing_dependency",
                )
            _models = _Models(
                detector=dlib.get_frontal_face_detector(),
                shape_predictor=dlib.shape_predictor(str(paths[SHAPE_MODEL])),
                encoder=dlib.face_recognition_model_v1(str(paths[ENCODER_MODEL])),
                # dlib's encoder runs its network on per-object buffers: one call at a time per process.
                lock=threading.Lock(),
            )
        return _models


def _largest_face(models: _Models, pixels, upsample: int):
    """The largest detected face (ties by detector confidence), or None; tries upsampling only if needed."""
    for times in dict.fromkeys((0, upsample)):
        rects, scores, _ = models.detector.run(pixels, times, 0.0)
        if len(rects):
            faces = list(zip(rects, scores, strict=True))
            largest = max(rect.area() for rect, _ in faces)
            return max((face for face in faces if face[0].area() >= TIE_AREA_RATIO * largest),
                       key=lambda face: face[1])[0]
    return None


def _encode(models: _Models, pixels, upsample: int):
    """The 128-d encoding of the largest face in `pixels`, or None if no face is found."""
    import numpy as np

    rect = _largest_face(models, pixels, upsample)
    if rect is None:
        return None
    shape = models.shape_predictor(pixels, rect)
    return np.array(models.encoder.compute_face_descriptor(pixels, shape, 1))


class LocalFaceAdapter(FaceVerifier):
    """Compares probe photos with the reference photo using dlib; NO liveness detection (module docstring)."""

    name = "local"
    version = "1.0"
    capabilities = Capabilities(
        authoritative_source=False, liveness=False, returns_score=True, needs_reference_photo=True
    )

    def __init__(
        self,
        *,
        max_distance: float = DEFAULT_MAX_DISTANCE,
        session_ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_side: int = DEFAULT_MAX_SIDE,
        max_probes: int = 3,
        upsample: int = 1,
    ):
        if not 0 < max_distance < 2:
            raise ConfigurationError("max_distance must be between 0 and 2", reason="bad_settings")
        if not session_ttl_seconds > 0:
            raise ConfigurationError("session_ttl_seconds must be positive", reason="bad_settings")
        if min(max_image_bytes, max_pixels, max_side, max_probes) < 1 or not 0 <= upsample <= 2:
            raise ConfigurationError("image limits must be positive and upsample 0-2", reason="bad_settings")
        self.max_distance = float(max_distance)
        self.session_ttl = timedelta(seconds=session_ttl_seconds)
        self.max_image_bytes = int(max_image_bytes)
        self.max_pixels = int(max_pixels)
        self.max_side = int(max_side)
        self.max_probes = int(max_probes)
        self.upsample = int(upsample)
        self.check_dependencies()
        _load_models()  # fail at start-up, not at the first citizen's verification

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise ConfigurationError naming the pip command if the `face` extra is not installed."""
        missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"the 'local' face adapter needs the optional face packages (missing: {', '.join(missing)}): "
                f"{INSTALL_HINT}",
                reason="missing_dependency",
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Reads FACE_LOCAL_MAX_DISTANCE (0.6), FACE_SESSION_TTL_SECONDS (300), FACE_LOCAL_MAX_IMAGE_BYTES,
        FACE_LOCAL_MAX_PIXELS, FACE_LOCAL_MAX_SIDE, FACE_LOCAL_MAX_PROBES (3) and FACE_LOCAL_UPSAMPLE (1)."""
        keys = {
            "max_distance": ("FACE_LOCAL_MAX_DISTANCE", float, DEFAULT_MAX_DISTANCE),
            "session_ttl_seconds": ("FACE_SESSION_TTL_SECONDS", float, DEFAULT_TTL_SECONDS),
            "max_image_bytes": ("FACE_LOCAL_MAX_IMAGE_BYTES", int, DEFAULT_MAX_BYTES),
            "max_pixels": ("FACE_LOCAL_MAX_PIXELS", int, DEFAULT_MAX_PIXELS),
            "max_side": ("FACE_LOCAL_MAX_SIDE", int, DEFAULT_MAX_SIDE),
            "max_probes": ("FACE_LOCAL_MAX_PROBES", int, 3),
            "upsample": ("FACE_LOCAL_UPSAMPLE", int, 1),
        }
        settings = {}
        for argument, (key, kind, default) in keys.items():
            value = config.get(key)
            try:
                settings[argument] = default if value is None or value == "" else kind(value)
            except (TypeError, ValueError):
                raise ConfigurationError(f"{key} must be a number", reason="bad_settings") from None
        return cls(**settings)

    def start(self, *, verification_id: str, identity: Identity, purpose: str) -> ProviderSession:
        """A session telling the mini-program which probe photos to upload; needs the reference photo."""
        check_verification_id(verification_id)
        self._reference_bytes(identity)  # refuse now, before the citizen takes photos for nothing
        return ProviderSession(
            provider=self.name,
            verification_id=verification_id,
            provider_session_id=f"local-{secrets.token_hex(12)}",
            client_payload={
                "evidence": {
                    "images": {"min": 1, "max": self.max_probes, "formats": ["jpeg", "png"],
                               "max_bytes": self.max_image_bytes, "encoding": "base64"},
                },
                "liveness": False,
            },
            expires_at=utcnow() + self.session_ttl,
        )

    def result(self, *, session: ProviderSession, identity: Identity, evidence: Mapping[str, Any]) -> FaceResult:
        """Compare every probe photo in `evidence` with the identity's reference photo."""
        self._check_session(session)
        texts = self._probe_texts(evidence)
        reference = self._reference_bytes(identity)
        probes: list[bytes] | None = None
        try:
            # Check every upload before spending CPU on faces: bad input fails fast and cheaply.
            probes = [decode_base64(text, max_bytes=self.max_image_bytes) for text in texts]
            distances = self._distances(reference, probes)
        finally:
            # Drop our references to the photos now (module docstring: nothing is kept).
            reference = probes = texts = None  # noqa: F841
        request_id = f"local-{secrets.token_hex(8)}"
        threshold = round(1 - self.max_distance, 4)
        if distances is None:
            return self._result(Outcome.POOR_QUALITY, threshold=threshold, provider_code="no_face",
                                provider_request_id=request_id)
        worst = max(distances)
        matched = worst <= self.max_distance
        return self._result(
            Outcome.PASS if matched else Outcome.NO_MATCH,
            similarity=round(1 - worst, 4),
            threshold=threshold,
            provider_code="match" if matched else "no_match",
            provider_request_id=request_id,
        )

    # Helpers ---------------------------------------------------------------------------------------------

    def evidence_schema(self) -> dict[str, Any]:
        image = {"type": "string", "minLength": 1, "contentEncoding": "base64",
                 "description": f"a JPEG or PNG photo of at most {self.max_image_bytes} bytes, base64"}
        return {"oneOf": [
            {"type": "object", "required": ["images"], "additionalProperties": False,
             "properties": {"images": {"type": "array", "items": image, "minItems": 1, "maxItems": self.max_probes}}},
            {"type": "object", "required": ["image"], "additionalProperties": False, "properties": {"image": image}},
        ]}

    def _probe_texts(self, evidence: Any) -> list[Any]:
        evidence = self._check_evidence_mapping(evidence)
        if set(evidence) == {"images"}:
            texts = evidence["images"]
            if not isinstance(texts, list) or not 1 <= len(texts) <= self.max_probes:
                raise InvalidEvidence(f"images must be a list of 1 to {self.max_probes} base64 strings",
                                      reason="bad_shape")
            return list(texts)
        if set(evidence) == {"image"}:
            return [evidence["image"]]
        raise InvalidEvidence('local evidence is {"images": [<base64>, …]} or {"image": <base64>}',
                              reason="bad_shape")

    def _reference_bytes(self, identity: Identity) -> bytes:
        if not isinstance(identity, Identity):
            raise TypeError("identity must be an Identity")
        photo = identity.reference_photo
        if not photo:
            raise IdentityDataMissing("reference_photo")
        if not isinstance(photo, bytes | bytearray) or sniff(bytes(photo[:8])) is None:
            raise ReferenceUnusable("the reference photo is not a JPEG or PNG", reason="not_an_image")
        if len(photo) > 4 * self.max_image_bytes:
            raise ReferenceUnusable("the reference photo is too large", reason="too_large")
        return bytes(photo)

    def _distances(self, reference: bytes, probes: list[bytes]) -> list[float] | None:
        """The distance of each probe's largest face to the reference's, or None if a probe shows no face."""
        import numpy as np

        models = _load_models()
        known = pixels = encoding = None
        try:
            pixels = load_rgb(reference, max_pixels=self.max_pixels, max_side=self.max_side, error=ReferenceUnusable)
            with models.lock:
                known = _encode(models, pixels, self.upsample)
            if known is None:
                raise ReferenceUnusable("no face found in the reference photo", reason="no_face")
            distances = []
            for probe in probes:
                pixels = load_rgb(probe, max_pixels=self.max_pixels, max_side=self.max_side)
                with models.lock:
                    encoding = _encode(models, pixels, self.upsample)
                if encoding is None:
                    return None
                distances.append(float(np.linalg.norm(encoding - known)))
            return distances
        finally:
            known = pixels = encoding = None  # noqa: F841
