"""tlog.records: the fixed definitions of how a record is hashed (chain link and salted leaf)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tlog import merkle, records


def test_canonical_json():
    payload = {"b": 1, "a": {"z": [1, 2.5, None, True], "y": "通过"}, "c": "x y"}
    assert records.canonical_json(payload) == '{"a":{"y":"通过","z":[1,2.5,null,true]},"b":1,"c":"x y"}'.encode()
    # What the service puts in a bundle (json.loads of these bytes) hashes to the same bytes again.
    assert records.canonical_json(json.loads(records.canonical_json(payload))) == records.canonical_json(payload)


def test_datetimes_have_one_spelling():
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2026, 3, 1, 16, 30, 5, 123, tzinfo=beijing)
    assert records.iso_utc(moment) == "2026-03-01T08:30:05.000123Z"
    assert records.iso_utc(moment.astimezone(UTC)) == "2026-03-01T08:30:05.000123Z"
    assert records.canonical_json({"at": moment, "day": date(2026, 3, 1)}) == (
        b'{"at":"2026-03-01T08:30:05.000123Z","day":"2026-03-01"}')


def test_unknown_types_are_refused():
    with pytest.raises(TypeError):
        records.canonical_json({"x": {1, 2}})
    with pytest.raises(TypeError):
        records.canonical_json({"x": b"bytes"})


def test_record_hash():
    payload = {"result": "通过", "seq": 1}
    expected = hashlib.sha256(b"0" * 64 + b"\n" + records.canonical_json(payload)).hexdigest()
    assert records.record_hash("0" * 64, payload) == expected
    assert records.record_hash("1" * 64, payload) != expected


def test_leaf_is_a_salted_commitment():
    payload = {"result": "通过"}
    salt = bytes(range(16))
    data = records.leaf_data(salt, payload)
    assert data == hashlib.sha256(b"zsb-log-leaf/v1\x00" + salt + records.canonical_json(payload)).digest()
    assert records.record_leaf_hash(salt, payload) == merkle.hash_leaf(data)
    assert records.leaf_data(bytes(16), payload) != data  # another salt, another leaf
    assert records.leaf_data(salt, {"result": "未通过"}) != data
