"""The adapter registry: built-ins, selection by configuration, third-party entry points, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from identity import registry
from identity.errors import ConfigurationError
from identity.interface import FaceVerifier
from identity.local import LocalFaceAdapter
from identity.sandbox import SandboxFaceAdapter
from identity.wechat import WeChatFaceAdapter

INSTALL_HINT = "pip install 'zhangshangban[face]'"


def test_built_in_adapters_are_available_by_name():
    assert {"sandbox", "wechat", "local"} <= set(registry.available())
    assert registry.get("sandbox") is SandboxFaceAdapter
    assert registry.get("wechat") is WeChatFaceAdapter
    assert registry.get("local") is LocalFaceAdapter


def test_the_project_declares_its_adapters_as_entry_points():
    from importlib.metadata import entry_points

    declared = {point.name: point.value for point in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert declared == registry.BUILTIN, "re-run pip install -e . after editing setup.cfg"


@pytest.mark.parametrize("name", ["nope", "", "SANDBOX"])
def test_an_unknown_name_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError) as raised:
        registry.get(name)
    assert raised.value.reason == "unknown_adapter"
    if name:
        assert "sandbox" in str(raised.value)  # the message lists what is available


def test_from_config_selects_the_adapter_by_face_provider():
    adapter = registry.from_config({"FACE_PROVIDER": "sandbox", "FACE_SESSION_TTL_SECONDS": "60"})
    assert isinstance(adapter, SandboxFaceAdapter)
    assert adapter.session_ttl.total_seconds() == 60


def test_from_config_reads_the_wechat_settings():
    adapter = registry.from_config({
        "FACE_PROVIDER": "wechat", "WECHAT_API_BASE": "http://127.0.0.1:9", "WECHAT_APPID": "wx1",
        "WECHAT_SECRET": "s3cret", "WECHAT_TIMEOUT_SECONDS": 1.5,
    })
    try:
        assert isinstance(adapter, WeChatFaceAdapter) and adapter.timeout == 1.5
        assert "s3cret" not in repr(adapter)
    finally:
        adapter.close()


@pytest.mark.parametrize(
    "config",
    [
        {"FACE_PROVIDER": "wechat", "WECHAT_API_BASE": "http://127.0.0.1:9", "WECHAT_APPID": "wx1"},
        {"FACE_PROVIDER": "wechat", "WECHAT_API_BASE": "ftp://x", "WECHAT_APPID": "wx1", "WECHAT_SECRET": "s"},
        {"FACE_PROVIDER": "sandbox", "FACE_SESSION_TTL_SECONDS": "soon"},
        {"FACE_PROVIDER": "sandbox", "FACE_SESSION_TTL_SECONDS": -5},
        {},
    ],
)
def test_bad_settings_are_configuration_errors(config):
    with pytest.raises(ConfigurationError):
        registry.from_config(config)


def test_create_with_unknown_settings_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as raised:
        registry.create("sandbox", colour="blue")
    assert raised.value.reason == "bad_settings"


def test_local_without_the_face_extra_says_how_to_install_it(monkeypatch):
    # A None entry in sys.modules makes the module unfindable, as on a machine without the extra.
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ConfigurationError) as raised:
        registry.from_config({"FACE_PROVIDER": "local"})
    assert INSTALL_HINT in str(raised.value) and "dlib" in str(raised.value)
    assert raised.value.reason == "missing_dependency"
    with pytest.raises(ConfigurationError, match="zhangshangban\\[face\\]"):
        registry.create("local")
    # Naming it is still possible: the class imports without the extra.
    assert registry.get("local") is LocalFaceAdapter


def test_register_adds_an_adapter_class():
    class EchoAdapter(SandboxFaceAdapter):
        name = "echo_test"

    try:
        assert registry.register(EchoAdapter) is EchoAdapter
        assert registry.get("echo_test") is EchoAdapter
        assert "echo_test" in registry.available()
        assert isinstance(registry.create("echo_test"), EchoAdapter)
    finally:
        registry.unregister("echo_test")
    with pytest.raises(ConfigurationError):
        registry.get("echo_test")


def test_register_refuses_non_adapters_bad_names_and_name_clashes():
    with pytest.raises(TypeError):
        registry.register(object)  # type: ignore[arg-type]

    class Nameless(SandboxFaceAdapter):
        name = "Bad Name"

    with pytest.raises(ValueError):
        registry.register(Nameless)

    class Impostor(SandboxFaceAdapter):
        name = "sandbox"

    registry.get("sandbox")  # the real one is registered
    with pytest.raises(ValueError):
        registry.register(Impostor)


@pytest.fixture
def third_party_package(tmp_path, monkeypatch):
    """A tiny installed distribution declaring face adapters through the entry-point group."""
    (tmp_path / "acme_face.py").write_text(textwrap.dedent('''
        from identity.sandbox import SandboxFaceAdapter


        class AcmeFaceAdapter(SandboxFaceAdapter):
            name = "acme"
            version = "2.1"


        class Misnamed(SandboxFaceAdapter):
            name = "something_else"


        class TakeOver(SandboxFaceAdapter):
            name = "wechat"
    '''))
    dist = tmp_path / "acme_face-2.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-face\nVersion: 2.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(f"""
        [{registry.ENTRY_POINT_GROUP}]
        acme = acme_face:AcmeFaceAdapter
        misnamed = acme_face:Misnamed
        broken = acme_face_missing_module:Adapter
        wechat = acme_face:TakeOver
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh_entry_points()
    yield
    for name in ("acme", "misnamed", "broken"):
        registry.unregister(name)
    sys.modules.pop("acme_face", None)
    monkeypatch.undo()
    registry.refresh_entry_points()


def test_third_party_adapters_are_found_through_entry_points(third_party_package):
    assert {"acme", "misnamed", "broken"} <= set(registry.available())
    adapter = registry.create("acme")
    assert type(adapter).__name__ == "AcmeFaceAdapter" and adapter.version == "2.1"
    assert isinstance(adapter, FaceVerifier)


def test_a_broken_or_misnamed_entry_point_is_a_configuration_error(third_party_package):
    with pytest.raises(ConfigurationError) as raised:
        registry.get("broken")
    assert raised.value.reason == "adapter_not_loadable"
    with pytest.raises(ConfigurationError) as raised:
        registry.get("misnamed")
    assert raised.value.reason == "adapter_invalid"


def test_an_entry_point_cannot_take_over_a_built_in_name(third_party_package, caplog):
    assert "wechat" in registry.available()
    assert registry.get("wechat") is WeChatFaceAdapter
    assert "built-in face adapter" in caplog.text


def test_the_library_imports_neither_flask_nor_the_app():
    code = (
        "import sys, identity, identity.registry, identity.sandbox, identity.wechat, identity.local, "
        "identity.images, identity.errors, identity.interface; "
        "from identity import registry; [registry.get(n) for n in ('sandbox', 'wechat', 'local')]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'app', 'werkzeug')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_importing_the_local_adapter_loads_no_model():
    code = "import sys, identity.local; print(sorted(m for m in sys.modules if m in ('dlib', 'numpy', 'PIL')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
