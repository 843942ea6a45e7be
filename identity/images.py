"""Careful decoding of face photos: base64 text → size-capped bytes, typed by content → a bounded RGB array.

Only JPEG and PNG are accepted, recognised by their first bytes (never by a file name or a declared type).
The pixel count is checked from the header before any pixel is decoded, so a small file declaring a huge
image (a decompression bomb) costs nothing (no process-wide warning filter is touched: that is not
thread-safe); JPEGs are decoded at a reduced scale when they are larger than
needed, EXIF rotation is applied (phones store portraits sideways plus a flag), and the result is shrunk to
at most `max_side` pixels on its longest side. Pillow and numpy come with the `face` extra and are imported
only when an image is decoded, so this module imports without them.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import TYPE_CHECKING

from identity.errors import FaceVerificationError, InvalidEvidence

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_SIDE", "decode_base64", "load_rgb", "sniff"]

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_BYTES = 2 * 1024 * 1024  # a phone's face photo is a few hundred KB
DEFAULT_MAX_PIXELS = 16_000_000  # 4000 × 4000, above any phone camera's default
DEFAULT_MAX_SIDE = 800  # a face filling a phone photo keeps well over the detector's 80 px at this size
DATA_URL = re.compile(r"data:image/(?:jpeg|jpg|png);base64,", re.IGNORECASE)


def sniff(data: bytes) -> str | None:
    """"JPEG" or "PNG" by the first bytes of `data`, else None."""
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    return None


def decode_base64(text: object, *, max_bytes: int = DEFAULT_MAX_BYTES,
                  error: type[FaceVerificationError] = InvalidEvidence) -> bytes:
    """The JPEG/PNG bytes in base64 `text` (an optional `data:image/…;base64,` prefix and whitespace allowed).

    Raises `error` with reason bad_shape, too_large, not_base64 or not_an_image.
    """
    if not isinstance(text, str) or not text:
        raise error("an image must be a non-empty base64 string", reason="bad_shape")
    # Reject oversized text before copying it: base64 is 4/3 of the bytes; allow line breaks on top.
    if len(text) > (max_bytes + 2) // 3 * 4 * 1.05 + 64:
        raise error(f"the image is larger than {max_bytes} bytes", reason="too_large")
    prefix = DATA_URL.match(text)
    if prefix:
        text = text[prefix.end():]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise error("the image is not valid base64", reason="not_base64") from None
    if len(data) > max_bytes:
        raise error(f"the image is larger than {max_bytes} bytes", reason="too_large")
    if sniff(data) is None:
        raise error("the image is not a JPEG or PNG", reason="not_an_image")
    return data


def load_rgb(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE,
             error: type[FaceVerificationError] = InvalidEvidence) -> np.ndarray:
    """Decode JPEG/PNG `data` to an RGB uint8 array of at most `max_side` px per side.

    Raises `error` with reason not_an_image (unknown type, corrupt or truncated) or too_many_pixels.
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    kind = sniff(data)
    if kind is None:
        raise error("the image is not a JPEG or PNG", reason="not_an_image")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
        width, height = image.size
        if width * height > max_pixels:
            raise error(f"the image has more than {max_pixels} pixels", reason="too_many_pixels")
        if kind == "JPEG":
            image.draft("RGB", (max_side, max_side))  # let libjpeg decode at 1/2, 1/4 or 1/8 scale
        image.load()
        image = ImageOps.exif_transpose(image)
        image = image.convert("RGB")
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        return np.array(image, dtype=np.uint8)
    except FaceVerificationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limit (MAX_IMAGE_PIXELS, 89 M) is checked inside open(), before ours: above it Pillow
        # warns (an error where warnings are errors, as in the tests), above twice that it raises.
        raise error(f"the image has more than {max_pixels} pixels", reason="too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError):
        # What Pillow's decoders raise for corrupt, truncated or unsupported data.
        raise error("the image could not be decoded", reason="not_an_image") from None
