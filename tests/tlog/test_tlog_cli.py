"""zsb-verify, as an auditor runs it: `python -m tlog` and the installed console script, in a subprocess."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tlog.factory import LOG, make_log
from tlog import note

ROOT_DIR = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "zsb-verify"


@pytest.fixture(scope="module")
def log():
    return make_log(40)


@pytest.fixture
def files(tmp_path, log):
    bundle = log.bundle(range(5, 17), consistency_from=30)
    paths = {
        "bundle": tmp_path / "bundle.json",
        "previous": tmp_path / "checkpoint-30.txt",
        "keys": tmp_path / "keys.txt",
        "bad": tmp_path / "tampered.json",
    }
    paths["bundle"].write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    paths["previous"].write_text(log.checkpoint(30) + "\n", encoding="utf-8")  # an editor's extra newline
    paths["keys"].write_text(f"# the audit log's key\n\n{log.signer.verifier_key()}\n", encoding="utf-8")
    tampered = copy.deepcopy(bundle)
    tampered["records"][3]["payload"]["result"] = "篡改"
    paths["bad"].write_text(json.dumps(tampered), encoding="utf-8")
    return paths


def run(*args: str, command: tuple[str, ...] = (sys.executable, "-m", "tlog"), stdin: str | None = None,
        cwd: Path = ROOT_DIR) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=env, input=stdin)


def test_ok(files, log):
    result = run(files["bundle"], "--key", log.signer.verifier_key())
    root = base64.b64encode(log.tree.root()).decode()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ok: 12 records of {LOG} included in checkpoint size 40 (root {root})\n"
    assert result.stderr == ""


def test_ok_with_key_file_and_previous_checkpoint(files):
    result = run(files["bundle"], "--key-file", files["keys"], "--previous", files["previous"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("consistent with the previous checkpoint of size 30")


def test_bundle_from_standard_input(files, log):
    result = run("-", "--key", log.signer.verifier_key(), stdin=files["bundle"].read_text(encoding="utf-8"))
    assert result.returncode == 0 and result.stdout.startswith("ok: 12 records")


def test_verification_failure(files, log):
    result = run(files["bad"], "--key", log.signer.verifier_key())
    assert result.returncode == 1
    assert result.stdout == "FAILED: record seq 8: record_hash does not match its prev_hash and payload " \
                            "(the record was altered)\n"


def test_untrusted_key_fails(files):
    other = note.Signer.generate("someone.else/log")
    result = run(files["bundle"], "--key", other.verifier_key())
    assert result.returncode == 1 and result.stdout.startswith("FAILED: checkpoint: not signed by a trusted key")


def test_rollback_against_a_kept_checkpoint(tmp_path, files, log):
    kept = tmp_path / "kept.txt"
    kept.write_text(log.checkpoint(40), encoding="utf-8")
    older = tmp_path / "older.json"
    older.write_text(json.dumps(log.bundle([3], size=20)), encoding="utf-8")
    result = run(older, "--key", log.signer.verifier_key(), "--previous", kept)
    assert result.returncode == 1 and "rolled back" in result.stdout


@pytest.mark.parametrize("case", ["no key", "bad key", "missing bundle", "not json", "missing key file",
                                  "missing previous", "no arguments", "unknown option"])
def test_usage_errors(tmp_path, files, log, case):
    key = log.signer.verifier_key()
    not_json = tmp_path / "not.json"
    not_json.write_text("{not json", encoding="utf-8")
    args = {
        "no key": [files["bundle"]],
        "bad key": [files["bundle"], "--key", key[:-2]],
        "missing bundle": [tmp_path / "nope.json", "--key", key],
        "not json": [not_json, "--key", key],
        "missing key file": [files["bundle"], "--key-file", tmp_path / "nope.txt"],
        "missing previous": [files["bundle"], "--key", key, "--previous", tmp_path / "nope.txt"],
        "no arguments": [],
        "unknown option": [files["bundle"], "--key", key, "--verbose"],
    }[case]
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_bundle_is_a_failure_not_a_usage_error(tmp_path, log):
    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    result = run(path, "--key", log.signer.verifier_key())
    assert result.returncode == 1 and result.stdout == "FAILED: bundle: must be a JSON object\n"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is installed by `pip install -e .`")
def test_installed_console_script(tmp_path, files, log):
    # From another directory: the installed command, not the source tree on the path.
    ok = run(files["bundle"], "--key", log.signer.verifier_key(), command=(str(SCRIPT),), cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 12 records of face-verifications")
    failed = run(files["bad"], "--key-file", files["keys"], command=(str(SCRIPT),), cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout.startswith("FAILED: record seq 8")
    usage = run(command=(str(SCRIPT),), cwd=tmp_path)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: zsb-verify")
    help_text = run("--help", command=(str(SCRIPT),), cwd=tmp_path)
    assert help_text.returncode == 0 and "Exit status" in help_text.stdout
