"""Uploads: type by content, size and emptiness checks, and the storage contract over every implementation."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zlib

import pytest
from cryptography.fernet import Fernet
from flask import Flask, request
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import config as config_module
from app.applications.storage import (
    STORAGES,
    InvalidKey,
    LocalDirectoryStorage,
    MemoryStorage,
    UploadNotFound,
    allowed_types,
    check_app_upload,
    check_upload,
    create_storage,
    init_app,
    sniff,
    upload_storage,
)
from app.config import ConfigError
from app.errors import register_error_handlers
from app.pii import PiiVault
from tests.helpers import FACES

MiB = 1024 * 1024
ALLOWED = ["application/pdf", "image/jpeg", "image/png"]
JPEG = (FACES / "astronaut.jpg").read_bytes()


def tiny_png() -> bytes:
    """A valid 1×1 white PNG (signature, IHDR, IDAT, IEND with their CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
            + chunk(b"IEND", b""))


def tiny_pdf() -> bytes:
    """A valid one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PNG = tiny_png()
PDF = tiny_pdf()
# The vault's settings (a fresh key: what one deployment seals, another cannot open).
KEYS = {"DATA_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "PSEUDONYM_KEY": "storage-tests"}


def vault(keys: str = KEYS["DATA_ENCRYPTION_KEYS"]) -> PiiVault:
    return PiiVault(encryption_keys=keys.split(","), pseudonym_key="storage-tests")


# --- sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "mime"), [(PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png")])
def test_real_files_are_recognised(data, mime):
    assert sniff(data) == mime
    assert check_upload(data, allowed=ALLOWED, max_bytes=10 * MiB) == mime


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("身份证复印件\n张三 4101...".encode(), id="text-file-named-pdf"),
        pytest.param(b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", id="html"),
        pytest.param(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20, id="zip"),
        pytest.param(b"<html>%PDF-1.4 ...</html>", id="html-with-pdf-header-inside"),
        pytest.param(b"\n%PDF-1.4\n", id="pdf-header-not-first"),
        pytest.param(b"GIF89a\x01\x00\x01\x00", id="gif"),
        pytest.param(b"\xff\xd8", id="truncated-jpeg-marker"),
        pytest.param(PNG[:7], id="truncated-png-signature"),
    ],
)
def test_other_content_is_not_recognised_and_refused(data):
    assert sniff(data) is None
    with pytest.raises(Exception) as refused:
        check_upload(data, allowed=ALLOWED, max_bytes=10 * MiB)
    assert (refused.value.status_code, refused.value.error) == (422, "upload_type_not_allowed")
    assert "PDF、JPG、PNG" in refused.value.message


def test_a_recognised_type_outside_the_allowed_list_is_refused():
    with pytest.raises(Exception) as refused:
        check_upload(PNG, allowed=["application/pdf"], max_bytes=MiB)
    assert refused.value.error == "upload_type_not_allowed"
    assert refused.value.message == "不支持该文件类型,请上传 PDF 格式的文件"


def test_empty_and_oversized_files():
    with pytest.raises(Exception) as empty:
        check_upload(b"", allowed=ALLOWED, max_bytes=MiB)
    assert (empty.value.status_code, empty.value.error) == (422, "upload_empty")

    limit = len(PDF)
    assert check_upload(PDF, allowed=ALLOWED, max_bytes=limit) == "application/pdf"
    with pytest.raises(Exception) as large:
        check_upload(PDF + b"\n", allowed=ALLOWED, max_bytes=limit)
    assert (large.value.status_code, large.value.error) == (413, "payload_too_large")

    with pytest.raises(Exception) as large:
        check_upload(PDF + b"\0" * (10 * MiB), allowed=ALLOWED, max_bytes=10 * MiB)
    assert large.value.message == "文件过大,单个文件不能超过 10 MB"


def upload_app(**settings) -> Flask:
    """An app with our error handlers and an upload view that raises its own body limit, as recommended."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MiB, UPLOAD_STORAGE="memory", **KEYS, **settings)
    register_error_handlers(app)
    init_app(app)

    @app.post("/upload")
    def upload():
        # The global limit stays small; this endpoint alone accepts a full upload plus multipart overhead.
        request.max_content_length = app.config["UPLOAD_MAX_BYTES"] + 64 * 1024
        data = request.files["file"].read()
        mime = check_app_upload(data)
        stored = upload_storage().put(data)
        return {"type": mime, "sha256": stored.sha256, "size": stored.size}

    return app


def post_file(client, data: bytes, content_type: str | None = None):
    """POST `data` as the multipart field `file` named scan.pdf, as wx.uploadFile sends it."""
    # Encoded here, in memory: the test client's own encoder spools large bodies to a file it never closes.
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), "scan.pdf", content_type=content_type)})
    return client.post("/upload", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_refusals_reach_the_client_in_the_error_shape():
    client = upload_app(UPLOAD_MAX_BYTES=2 * MiB, UPLOAD_ALLOWED_TYPES=["application/pdf"]).test_client()

    ok = post_file(client, PDF + b"\0" * (MiB + 100))
    assert ok.status_code == 200, ok.json
    assert ok.json["type"] == "application/pdf"
    assert ok.json["sha256"] == hashlib.sha256(PDF + b"\0" * (MiB + 100)).hexdigest()

    renamed = post_file(client, b"just text", "application/pdf")
    assert renamed.status_code == 422
    assert renamed.json == {"code": 422, "status": "Unprocessable Entity", "error": "upload_type_not_allowed",
                            "message": "不支持该文件类型,请上传 PDF 格式的文件"}

    empty = post_file(client, b"")
    assert (empty.status_code, empty.json["error"]) == (422, "upload_empty")

    too_large = post_file(client, PDF + b"\0" * (2 * MiB))
    assert (too_large.status_code, too_large.json["error"]) == (413, "payload_too_large")

    far_too_large = post_file(client, b"\0" * (3 * MiB))
    assert (far_too_large.status_code, far_too_large.json["error"]) == (413, "payload_too_large")


# --- the storage contract -----------------------------------------------------------------------------------


@pytest.fixture(params=sorted(STORAGES))
def storage(request, tmp_path):
    """Every registered implementation, built from configuration as the app builds it."""
    return create_storage({"UPLOAD_STORAGE": request.param, "INSTANCE_DIR": str(tmp_path), **KEYS})


TRAVERSAL_KEYS = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "/etc/passwd",
    "ab/cd/" + "a" * 58,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "a" * 63 + "\0",
    "",
    None,
]


class TestStorageContract:
    def test_put_then_open(self, storage):
        stored = storage.put(PDF)
        assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
        assert stored.size == len(PDF)
        assert storage.exists(stored.key)
        assert storage.open(stored.key) == PDF

    def test_same_content_is_stored_once(self, storage):
        first, second = storage.put(PNG), storage.put(bytes(PNG))
        other = storage.put(JPEG)
        assert first == second
        assert other.key != first.key
        storage.delete(first.key)
        assert not storage.exists(second.key)
        assert storage.open(other.key) == JPEG

    def test_delete_and_missing_objects(self, storage):
        stored = storage.put(JPEG)
        storage.delete(stored.key)
        assert not storage.exists(stored.key)
        with pytest.raises(UploadNotFound):
            storage.open(stored.key)
        storage.delete(stored.key)  # deleting again is no error
        with pytest.raises(UploadNotFound):
            storage.open(hashlib.sha256(b"never stored").hexdigest())

    @pytest.mark.parametrize("key", TRAVERSAL_KEYS)
    def test_keys_that_put_never_returns_are_refused(self, storage, key):
        for operation in (storage.open, storage.exists, storage.delete):
            with pytest.raises(InvalidKey):
                operation(key)


# --- the local directory ------------------------------------------------------------------------------------


def test_local_layout_and_permissions(tmp_path):
    storage = LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault())
    stored = storage.put(PDF)
    path = tmp_path / "uploads" / stored.key[:2] / stored.key[2:4] / stored.key
    assert path.is_file()
    storage.put(PDF)
    files = [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert files == [path]  # one copy, and no temporary file left behind
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((tmp_path / "uploads").stat().st_mode) & 0o077 == 0
    # Another process (a new instance on the same directory) sees what this one stored.
    assert LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault()).open(stored.key) == PDF


def test_files_are_encrypted_at_rest_and_open_after_a_key_rotation(tmp_path):
    old_key = KEYS["DATA_ENCRYPTION_KEYS"]
    storage = LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault())
    stored = storage.put(JPEG)
    path = tmp_path / "uploads" / stored.key[:2] / stored.key[2:4] / stored.key
    on_disk = path.read_bytes()
    assert JPEG[:64] not in on_disk and sniff(on_disk) is None  # a copied disk shows no document
    # Another deployment's key opens nothing.
    with pytest.raises(ValueError, match="does not decrypt"):
        LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault(Fernet.generate_key().decode())).open(stored.key)
    # A new key first, the old one after it: the file still opens, and `reencrypt` moves it to the new key.
    new_key = Fernet.generate_key().decode()
    rotated = LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault(f"{new_key},{old_key}"))
    assert rotated.open(stored.key) == JPEG
    rotated.reencrypt(stored.key)
    assert LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault(new_key)).open(stored.key) == JPEG


def test_a_file_stored_before_encryption_still_opens_and_is_sealed_by_reencrypt(tmp_path):
    storage = LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault())
    key = hashlib.sha256(PDF).hexdigest()
    legacy = tmp_path / "uploads" / key[:2] / key[2:4] / key
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(PDF)  # as the storage wrote files before they were encrypted
    assert storage.open(key) == PDF
    storage.reencrypt(key)
    assert legacy.read_bytes() != PDF and storage.open(key) == PDF


def test_local_storage_never_reads_outside_its_directory(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"%PDF- not an upload")
    storage = LocalDirectoryStorage(root=tmp_path / "uploads", vault=vault())
    for key in ("../secret", str(secret), "../" * 3 + "secret"):
        with pytest.raises(InvalidKey):
            storage.open(key)


# --- configuration ------------------------------------------------------------------------------------------


def test_defaults_from_the_environment(tmp_path):
    settings = config_module.load("testing", {"INSTANCE_DIR": str(tmp_path)})
    assert settings["UPLOAD_STORAGE"] == "local"
    assert settings["UPLOAD_MAX_BYTES"] == 10 * MiB
    assert allowed_types(settings) == ALLOWED
    storage = create_storage(settings)
    assert isinstance(storage, LocalDirectoryStorage)
    assert storage.root == tmp_path / "uploads"

    settings = config_module.load("testing", {
        "UPLOAD_STORAGE": "memory", "UPLOAD_ALLOWED_TYPES": "application/pdf, image/png", "UPLOAD_MAX_BYTES": "5000",
    })
    assert isinstance(create_storage(settings), MemoryStorage)
    assert allowed_types(settings) == ["application/pdf", "image/png"]
    assert settings["UPLOAD_MAX_BYTES"] == 5000


def test_upload_dir_setting(tmp_path):
    storage = create_storage({"UPLOAD_STORAGE": "local", "UPLOAD_DIR": str(tmp_path / "elsewhere"),
                              "INSTANCE_DIR": str(tmp_path), **KEYS})
    assert storage.root == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere").is_dir()


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"UPLOAD_STORAGE": "s3"}, "UPLOAD_STORAGE must be one of ['local', 'memory'], got 's3'"),
        ({"UPLOAD_STORAGE": "memory", "APP_ENV": "production"}, "UPLOAD_STORAGE=memory"),
        ({"UPLOAD_ALLOWED_TYPES": ["application/pdf", "image/gif"]}, "UPLOAD_ALLOWED_TYPES: image/gif"),
        ({"UPLOAD_ALLOWED_TYPES": []}, "UPLOAD_ALLOWED_TYPES must name"),
        ({"UPLOAD_MAX_BYTES": 0}, "UPLOAD_MAX_BYTES"),
        ({"UPLOAD_MAX_BYTES": "10MB"}, "UPLOAD_MAX_BYTES"),
    ],
)
def test_bad_settings_stop_the_app_naming_the_variable(tmp_path, settings, complaint):
    app = Flask(__name__)
    app.config.update(INSTANCE_DIR=str(tmp_path), UPLOAD_STORAGE="memory", **KEYS)
    app.config.update(settings)
    with pytest.raises(ConfigError) as refused:
        init_app(app)
    assert complaint in str(refused.value)


def test_upload_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="UPLOAD_DIR"):
        create_storage({"UPLOAD_STORAGE": "local", "UPLOAD_DIR": str(tmp_path / "a-file" / "uploads"), **KEYS})


def test_env_variable_that_is_not_a_number():
    with pytest.raises(ConfigError, match="UPLOAD_MAX_BYTES"):
        config_module.load("testing", {"UPLOAD_MAX_BYTES": "10MB"})


def test_app_storage_is_built_at_startup_and_shared():
    app = Flask(__name__)
    app.config.update(UPLOAD_STORAGE="memory", **KEYS)
    init_app(app)
    with app.app_context():
        key = upload_storage().put(PNG).key
    with app.app_context():
        assert upload_storage().open(key) == PNG
