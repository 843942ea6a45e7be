"""Helpers shared by the face-verification tests (conftest modules are not importable by test modules)."""

from __future__ import annotations

import base64
import io

import requests

from app.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET
from identity.wechat import WeChatFaceAdapter

FACE_EXTRA_REASON = "the `face` extra is not installed: pip install 'zhangshangban[face]'"

# The sandbox people whose identities the tests use (app/sandbox/people.py): 张伟 has the astronaut's photo.
ZHANG_WEI = ("张伟", "410105198503120013")
LI_NA = ("李娜", "410102199207040225")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(image, fmt: str = "JPEG", **options) -> bytes:
    """`image` (a Pillow image) saved as `fmt` in memory."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image = image.convert("RGB")
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def open_image(data: bytes):
    """JPEG/PNG bytes as an RGB Pillow image."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


class Phone:
    """Test-side handle on the WeChat stand-in's 'what the phone did' endpoints."""

    def __init__(self, url: str):
        self.url = url

    def did(self, verify_id: str, result: str) -> None:
        response = requests.post(f"{self.url}/_sandbox/face/{verify_id}", json={"result": result}, timeout=5)
        assert response.status_code == 204, response.text

    def queries(self, verify_id: str) -> int:
        return requests.get(f"{self.url}/_sandbox/face/{verify_id}", timeout=5).json()["queries"]

    def expire_tokens(self) -> None:
        assert requests.post(f"{self.url}/_sandbox/tokens/expire", timeout=5).status_code == 204


def make_wechat_adapter(url: str, *, timeout: float = 2.0, **overrides) -> WeChatFaceAdapter:
    """A WeChat face adapter for the stand-in at `url`, with its default credentials."""
    settings = {"base_url": url, "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, "timeout": timeout}
    return WeChatFaceAdapter(**{**settings, **overrides})
