"""The prefill engine over the real sandbox bureaus: parallel calls, one deadline, per-field status."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from shared_data.connectors import ConnectorRegistry
from shared_data.elements import UnknownElement
from shared_data.prefill import PrefillEngine

ZHANG_WEI = "410105198503120013"
WANG_QIANG = "410103197811300350"
ZHAO_LEI = "410105199001010636"

# One element from each of four bureaus.
FOUR = ["person.name", "social_insurance.months_paid", "housing_fund.balance", "property.count"]


@pytest.fixture
def registry(specs) -> ConnectorRegistry:
    return ConnectorRegistry(specs.values())


@pytest.fixture
def engine(registry, clients):
    with PrefillEngine(registry, clients, max_workers=8, deadline_seconds=1.5) as engine:
        yield engine


def test_a_full_prefill_with_provenance(engine, context):
    result = engine.prefill(ZHANG_WEI, [*FOUR, "marriage.spouse_name", "person.household_address"], context)
    assert not result.blocked
    values = {element: field.value for element, field in result.fields.items()}
    assert values == {
        "person.name": "张伟",
        "social_insurance.months_paid": 120,
        "housing_fund.balance": 86432.15,
        "property.count": 1,
        "marriage.spouse_name": "王丽",
        "person.household_address": "河南省郑州市金水区经八路街道农业路东段16号院2号楼1单元502号",
    }
    name = result.fields["person.name"]
    assert (name.status, name.locked) == ("ok", True)
    assert name.source.connector == "ga-population" and name.source.bureau == "郑州市公安局"
    assert name.source.trust_level == "A"
    assert name.source.source_updated_at.isoformat() == "2024-03-18T02:12:45+00:00"
    assert name.source.fetched_at is not None and name.source.fetched_at.tzinfo is not None
    assert name.to_dict()["source"]["source_updated_at"] == "2024-03-18T02:12:45Z"
    assert sorted(o.connector_id for o in result.outcomes) == [
        "ga-population",
        "gjj-housing-fund",
        "mz-marriage",
        "rsj-social-insurance",
        "zrzy-property",
    ]  # one call per connector: the population connector was asked once for both of its elements


def test_connectors_are_called_in_parallel(engine, bureaus, context):
    for kind in ("population", "social_insurance", "housing_fund", "property"):
        bureaus.set_mode(kind, "normal", delay_ms=200)
    engine.prefill(ZHANG_WEI, FOUR, context)  # warm the connection pools
    started = time.monotonic()
    result = engine.prefill(ZHANG_WEI, FOUR, context)
    elapsed = time.monotonic() - started
    assert all(field.status == "ok" for field in result.fields.values())
    assert 0.2 <= elapsed < 0.33, elapsed  # four 200 ms calls side by side, far from 800 ms in a row


def test_a_hanging_connector_times_out_its_fields_and_the_call_returns_at_the_deadline(
    registry, clients, bureaus, context
):
    bureaus.set_mode("housing_fund", "hang")
    slow_cap = ConnectorRegistry(dataclasses.replace(spec, timeout_seconds=5.0) for spec in registry)
    with PrefillEngine(slow_cap, clients, max_workers=8, deadline_seconds=0.5) as engine:
        started = time.monotonic()
        result = engine.prefill(ZHANG_WEI, [*FOUR, "housing_fund.account_status"], context)
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.05, elapsed
    for element in ("housing_fund.balance", "housing_fund.account_status"):
        field = result.fields[element]
        assert (field.status, field.value, field.locked) == ("timeout", None, False)
        assert field.source.connector == "gjj-housing-fund" and field.source.fetched_at is None
    assert all(result.fields[element].status == "ok" for element in FOUR if not element.startswith("housing"))
    (outcome,) = [o for o in result.outcomes if o.connector_id == "gjj-housing-fund"]
    assert (outcome.status, outcome.error, outcome.elements_returned) == ("timeout", "deadline_exceeded", ())
    assert 450 <= outcome.latency_ms <= 560


def test_a_person_in_no_registry_is_not_found_everywhere(engine, context):
    result = engine.prefill(ZHAO_LEI, FOUR, context)
    assert {field.status for field in result.fields.values()} == {"not_found"}
    assert all(field.value is None and not field.locked for field in result.fields.values())
    assert {outcome.status for outcome in result.outcomes} == {"not_found"}


def test_an_element_no_connector_provides_is_skipped(engine, context):
    result = engine.prefill(ZHANG_WEI, ["person.name", "tax.taxpayer_status"], context)
    skipped = result.fields["tax.taxpayer_status"]
    assert (skipped.status, skipped.value, skipped.locked, skipped.source) == ("skipped", None, False, None)
    assert [o.connector_id for o in result.outcomes] == ["ga-population"]


def test_an_unknown_element_is_a_programming_error(engine, context):
    with pytest.raises(UnknownElement):
        engine.prefill(ZHANG_WEI, ["person.nickname"], context)


def test_a_record_without_the_datum_gives_not_found_for_that_field_only(engine, context):
    result = engine.prefill(WANG_QIANG, ["person.name", "person.photo"], context)
    assert result.fields["person.name"].status == "ok"
    assert result.fields["person.photo"].status == "not_found"


def test_a_failing_connector_degrades_only_its_own_fields(engine, bureaus, context):
    bureaus.set_mode("social_insurance", "error500")
    bureaus.set_mode("population", "wrong_types")
    result = engine.prefill(ZHANG_WEI, [*FOUR, "person.birth_date"], context)
    assert not result.blocked
    statuses = {element: field.status for element, field in result.fields.items()}
    assert statuses == {
        "person.name": "ok",
        "person.birth_date": "failed",  # wrong type: that field alone
        "social_insurance.months_paid": "failed",
        "housing_fund.balance": "ok",
        "property.count": "ok",
    }
    assert result.fields["social_insurance.months_paid"].error == "http_500"
    assert result.fields["person.birth_date"].error.startswith("type_error")


def test_a_critical_connector_that_is_not_ok_blocks(engine, bureaus, context):
    bureaus.set_mode("social_insurance", "error500")
    result = engine.prefill(ZHANG_WEI, FOUR, context, critical_connectors={"rsj-social-insurance"})
    assert result.blocked and result.blocked_by == ("rsj-social-insurance",)
    assert "rsj-social-insurance: failed (http_500)" in result.blocked_reason
    assert result.fields["person.name"].status == "ok"  # the rest is still there for the app to show


def test_critical_connectors_that_are_ok_or_not_involved_do_not_block(engine, context):
    result = engine.prefill(
        ZHANG_WEI, ["person.name"], context, critical_connectors={"ga-population", "mz-marriage"}
    )
    assert not result.blocked and result.blocked_reason is None


def test_a_critical_connector_that_is_not_active_blocks(engine, context):
    result = engine.prefill(ZHANG_WEI, ["person.name"], context, critical_connectors={"ga-population-old"})
    assert result.blocked and result.blocked_by == ("ga-population-old",)


def test_a_critical_not_found_blocks(engine, context):
    result = engine.prefill(ZHAO_LEI, ["person.name"], context, critical_connectors={"ga-population"})
    assert result.blocked and "not_found" in result.blocked_reason


def test_only_the_needed_elements_are_requested_and_returned(engine, bureaus, context):
    needed = ["person.name", "housing_fund.balance"]
    result = engine.prefill(ZHANG_WEI, needed, context)
    assert list(result.fields) == needed
    assert bureaus.state("population")["journal"][-1]["elements"] == ["person.name"]
    assert bureaus.state("housing_fund")["journal"][-1]["elements"] == ["housing_fund.balance"]
    for kind in ("social_insurance", "property", "business", "marriage"):
        assert bureaus.state(kind)["queries"] == 0  # bureaus with nothing needed are not called at all
    (population,) = [o for o in result.outcomes if o.connector_id == "ga-population"]
    assert population.elements_requested == ("person.name",) == population.elements_returned


def test_on_call_gets_one_outcome_per_connector_call_in_the_calling_thread(
    registry, clients, bureaus, context
):
    bureaus.set_mode("marriage", "hang")
    seen = []

    def on_call(outcome):
        seen.append((outcome, threading.current_thread()))

    with PrefillEngine(registry, clients, max_workers=8, deadline_seconds=0.4) as engine:
        result = engine.prefill(ZHANG_WEI, [*FOUR, "marriage.status"], context, on_call=on_call)
    assert [outcome for outcome, _ in seen] == list(result.outcomes)
    assert len(seen) == 5
    assert {thread for _, thread in seen} == {threading.current_thread()}
    assert {o.connector_id: o.status for o, _ in seen}["mz-marriage"] == "timeout"


def test_a_failing_on_call_still_sees_every_outcome_then_raises(engine, context):
    seen = []

    def on_call(outcome):
        seen.append(outcome.connector_id)
        raise RuntimeError("log store down")

    with pytest.raises(RuntimeError, match="log store down"):
        engine.prefill(ZHANG_WEI, FOUR, context, on_call=on_call)
    assert len(seen) == 4


def test_values_from_lower_trust_sources_are_not_locked(specs, clients, context):
    registry = ConnectorRegistry([dataclasses.replace(specs["population"], trust_level="C")])
    with PrefillEngine(registry, clients, deadline_seconds=1.5) as engine:
        field = engine.prefill(ZHANG_WEI, ["person.name"], context).fields["person.name"]
    assert (field.status, field.value, field.locked, field.source.trust_level) == ("ok", "张伟", False, "C")


def test_a_client_bug_is_a_failed_connector_not_a_failed_prefill(registry, context):
    def broken_factory(spec):
        raise RuntimeError("bug")

    with PrefillEngine(registry, broken_factory, deadline_seconds=1.0) as engine:
        result = engine.prefill(ZHANG_WEI, ["person.name"], context)
    assert result.fields["person.name"].status == "failed"
    assert result.outcomes[0].error == "internal_error"


def test_calls_queued_past_the_deadline_never_start(registry, clients, bureaus, context):
    bureaus.set_mode("population", "slow", delay_ms=600)
    with PrefillEngine(registry, clients, max_workers=1, deadline_seconds=0.3) as engine:
        result = engine.prefill(ZHANG_WEI, ["person.name", "marriage.status"], context)
    errors = {o.connector_id: (o.status, o.error) for o in result.outcomes}
    assert errors == {
        "ga-population": ("timeout", "deadline_exceeded"),
        "mz-marriage": ("timeout", "not_started"),
    }
    time.sleep(0.4)
    assert bureaus.state("marriage")["queries"] == 0
