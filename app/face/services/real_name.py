"""Identity assurance: a claimed real name, proven by face, bound to one account (BRIEF lesson 11).

- `claim_real_name`: a name and a resident ID number, validated and (where the population connector is
  active) matched against the registry, become the account's *claim* (assurance `claimed`). A claim is not
  exclusive and not proof: anyone holding leaked data can make it, so it unlocks nothing but the face
  verification that proves it, and its answer is the same whether or not the number is claimed or bound
  elsewhere (no "already taken" oracle). Claims are limited per account and per ID number.
- `bind_proven_identity`: a face verification with purpose `real_name` passed for the claimed identity
  (app/face/services/sessions.py); the identity becomes the account's exclusively (assurance `face`). If another
  account held it at `face`, it moves (换绑): that account drops to `none`, its tokens die (its token epoch
  rises, app/accounts/guard.py), it is sent a notification, and the person's drafts, applications, consents, agent
  authorisations and evaluations follow the identity to the new account. Other accounts' mere claims on it end
  silently: they never survive the holder's pass, and nothing tells the claimant why.

Every claim, refusal, bind, rebind and loss is a record in the face-verification log (keyed pseudonyms and
account ids only).

The ID number (GB 11643-1999) is checked here rather than by `stdnum.cn.ric.validate` as a whole, because
that function does too little and, in one respect, too much:
- it does not reject a birth date in the future (or in the 1800s);
- it rejects a region code that was created after the holder's birth year, yet codes are assigned when the
  number is issued (first ID cards: 1984), so 王强 of 二七区 (410103, code since 1983) born in 1978 is valid.
  We accept a region code that is known and was still in use in or after the birth year;
- its `compact` strips separators and its digit test is `str.isdigit`-like; we accept exactly 17 ASCII
  digits and a check character, after trimming surrounding spaces and upper-casing a final `x`.
We use its check-character computation (ISO 7064 MOD 11-2) and its region-code table.

Names: 2 to 30 characters, each a CJK ideograph (including the extension blocks, for rare characters in
names) or 〇, with the middle dot `·` between parts as in minority and transliterated names (买买提·艾力);
the look-alike dots `•`, `・`, `．` and `‧` are normalised to `·`. Names in Latin script belong with
other identity documents (foreigners' permanent residence cards), which this service does not accept yet.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from app.accounts.models import DOT_LOOKALIKES_TEXT, MIDDLE_DOT, NAME_CHARS_BMP, NAME_LENGTH, Citizen
from app.applications.models import (
    AgentAuthorisation,
    Application,
    BundleApplication,
    ConsentReceipt,
    Evaluation,
    PromiseBreach,
)
from app.connectors.services import data_access
from app.connectors.services.runtime import runtime
from app.errors import Conflict, RateLimited, UpstreamUnavailable, ValidationFailed
from app.extensions import db
from app.face.models import FaceSession
from app.face.services import log as face_log
from app.modelbase import utcnow
from app.notifications import services as notifications
from app.notifications.models import Notification
from app.pii import mask_id_number, vault
from app.web import readcache
from app.web.requestid import request_id
from shared_data.client import CallContext

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# Birth dates are China Standard Time dates (UTC+8 all year): a baby born this morning in Zhengzhou was born
# "today" even while it is still yesterday in UTC.
CHINA_TIME = timezone(timedelta(hours=8), "CST")
ID_NUMBER_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
DOT_LOOKALIKES = str.maketrans({lookalike: MIDDLE_DOT for lookalike in DOT_LOOKALIKES_TEXT})
NAME_CHAR = rf"[{NAME_CHARS_BMP}\U00020000-\U0003134f\U00031350-\U000323af]"  # and Extensions B-H
NAME_SHAPE = re.compile(rf"{NAME_CHAR}+(?:{MIDDLE_DOT}{NAME_CHAR}+)*")

# Real-name checks against the population registry: the purpose every such call carries, the context id sent
# in X-Application-Id (no application exists yet; the log records none), and the element asked for.
REAL_NAME_PURPOSE = "实名认证"
REAL_NAME_CONTEXT = "real-name-binding"
REGISTRY_NAME_ELEMENT = "person.name"

MSG_ID_LENGTH = "身份证号码应为18位"
MSG_ID_FORMAT = "身份证号码只能由17位数字和1位数字或X组成"
MSG_ID_CHECK = "身份证号码校验位错误"
MSG_BIRTH_DATE = "出生日期无效"
MSG_REGION = "地区代码无效"
MSG_NAME_LENGTH = "姓名应为2至30个字"
MSG_NAME_CHARS = "姓名只能包含汉字和间隔号“·”"


class RealNameAlreadyBound(Conflict):
    """The caller's own account is face-bound to another identity (says nothing about anyone else)."""

    error, message = "real_name_already_bound", "该账号已刷脸绑定其他实名信息,不能更改"


class IdentityMismatch(ValidationFailed):
    """The population registry holds another name for the number, or does not hold the number."""

    error, message = "identity_mismatch", "姓名与身份证号码不匹配"


class PopulationRegistryUnavailable(UpstreamUnavailable):
    message = "人口信息库暂时无法核验,请稍后再试"


@dataclass(frozen=True)
class ResidentId:
    """A valid resident ID number and what it says."""

    number: str
    birth_date: date
    region_code: str


def id_number_problems(raw: str, *, today: date | None = None) -> tuple[str | None, list[str]]:
    """Normalise `raw` and list what is wrong with it (in Chinese); no problems means it is valid."""
    number = raw.strip()
    if number.endswith("x"):
        number = number[:-1] + "X"
    if len(number) != 18:
        return None, [MSG_ID_LENGTH]
    if not ID_NUMBER_SHAPE.fullmatch(number):
        return None, [MSG_ID_FORMAT]
    problems = []
    birth = _birth_date(number)
    if birth is None or not EARLIEST_BIRTH_DATE <= birth <= (today or datetime.now(CHINA_TIME).date()):
        problems.append(MSG_BIRTH_DATE)
    if not _region_in_use(number[:6], birth.year if birth else None):
        problems.append(MSG_REGION)
    if number[-1] != ric.calc_check_digit(number):
        problems.append(MSG_ID_CHECK)
    return number, problems


def parse_id_number(raw: str, *, today: date | None = None) -> ResidentId:
    """The validated resident ID in `raw`, or ValidationFailed on `id_number` listing every problem."""
    number, problems = id_number_problems(raw, today=today)
    if problems:
        raise ValidationFailed(problems[0], errors={"json": {"id_number": problems}})
    return ResidentId(number=number, birth_date=_birth_date(number), region_code=number[:6])


def _birth_date(number: str) -> date | None:
    try:
        return ric.get_birth_date(number)
    except StdnumError:  # no such day (31 February, month 13, year 0)
        return None


def _region_in_use(code: str, birth_year: int | None) -> bool:
    """Whether `code` is a known county-level code still in use in or after `birth_year`."""
    info = {key: value for _part, props in numdb.get("cn/loc").info(code) for key, value in props.items()}
    county = info.get("county")
    if not county:
        return False
    for entry in county.split(","):
        # Entries look like "金水区" (always in use), "[1983-]金水区" or "[-2010]崇文区" (years in use).
        match = re.match(r"\[(\d*)-(\d*)\]", entry)
        if not match or not match.group(2) or birth_year is None or int(match.group(2)) >= birth_year:
            return True
    return False


def normalise_name(raw: str) -> tuple[str, list[str]]:
    """The name in `raw` (NFC, trimmed, dots unified) and what is wrong with it (in Chinese)."""
    name = unicodedata.normalize("NFC", raw).strip().translate(DOT_LOOKALIKES)
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        return name, [MSG_NAME_LENGTH]
    if not NAME_SHAPE.fullmatch(name):
        return name, [MSG_NAME_CHARS]
    return name, []


def check_with_population_registry(name: str, resident_id: ResidentId, citizen: Citizen) -> bool:
    """Confirm with the population registry that `name` belongs to the number; IdentityMismatch if not.

    Asks the active connector providing `person.name` (the population registry), for this one element,
    with the purpose 实名认证 and the citizen as the acting user; the call is logged in the data-access
    chain like any other. No active provider: nothing to check against, so binding rests on the number's
    own validity (the behaviour before connectors existed). A number the registry does not hold is a
    mismatch too, with the same answer: a distinct one would tell anyone which numbers exist. The bureau
    down or timing out: 503, and nothing is claimed. Mismatches are counted per citizen
    (REAL_NAME_MAX_MISMATCHES per REAL_NAME_MISMATCH_WINDOW_SECONDS) so an account cannot probe names.
    Returns whether a registry was asked.
    """
    _refuse_when_probing(citizen)
    context = CallContext(purpose=REAL_NAME_PURPOSE, application_id=REAL_NAME_CONTEXT,
                          acting_user=f"citizen:{citizen.id}", request_id=request_id())
    outcomes: list = []
    result = runtime().prefill(resident_id.number, [REGISTRY_NAME_ELEMENT], context, on_call=outcomes.append)
    data_access.record_calls(outcomes, id_number=resident_id.number, context=context, application_id=None)
    field = result.fields[REGISTRY_NAME_ELEMENT]
    if field.status == "skipped":
        return False
    if field.status in ("failed", "timeout"):
        raise PopulationRegistryUnavailable()
    registered = normalise_name(field.value)[0] if field.status == "ok" and isinstance(field.value, str) else None
    if registered != name:
        _count_mismatch(citizen)
        raise IdentityMismatch()
    return True


def _mismatch_key(citizen: Citizen) -> str:
    return f"real-name-mismatch:{citizen.id}"


def _refuse_when_probing(citizen: Citizen) -> None:
    # The store cannot read a counter without changing it, so reaching the limit sets a marker key that lives
    # as long as the rest of the counting window.
    locked = _mismatch_key(citizen) + ":locked"
    store = current_app.extensions["state"]
    if store.exists(locked):
        raise RateLimited("实名核验失败次数过多,请稍后再试", retry_after=store.ttl(locked))


def _count_mismatch(citizen: Citizen) -> None:
    store = current_app.extensions["state"]
    key = _mismatch_key(citizen)
    failures = store.incr(key, int(current_app.config["REAL_NAME_MISMATCH_WINDOW_SECONDS"]))
    if failures >= int(current_app.config["REAL_NAME_MAX_MISMATCHES"]):
        store.set(key + ":locked", max(1, store.ttl(key)))


CLAIM_LOG_PROVIDER = "real_name_claim"  # the `provider` of claim records: no face adapter is involved


def _claim_record(event: str, citizen: Citizen, pseudonym: str, *, reason: str, request_id: str) -> dict:
    return face_log.record(event, citizen, pseudonym=pseudonym, request_id=request_id, provider=CLAIM_LOG_PROVIDER,
                           adapter_version="1", reason=reason)


def _refuse_over_claim_limits(citizen: Citizen, number_hash: str, *, request_id: str) -> None:
    """Count this claim per account and per ID number; 429 (logged) past either limit within the window."""
    config, store = current_app.config, current_app.extensions["state"]
    window = int(config["REAL_NAME_CLAIM_WINDOW_SECONDS"])
    for key, limit in ((f"real-name-claims:account:{citizen.id}", config["REAL_NAME_MAX_CLAIMS_PER_ACCOUNT"]),
                       (f"real-name-claims:id:{number_hash}", config["REAL_NAME_MAX_CLAIMS_PER_ID_NUMBER"])):
        if store.incr(key, window) > int(limit):
            face_log.append(_claim_record("claim_refused", citizen, number_hash, reason="rate_limited",
                                          request_id=request_id))
            raise RateLimited("实名登记过于频繁,请稍后再试", retry_after=max(1, store.ttl(key)))


def claim_real_name(citizen: Citizen, raw_name: str, raw_id_number: str, *, request_id: str) -> Citizen:
    """Record the claim of a name and ID number for `citizen` (module docstring); idempotent for the same pair.

    An account at `face` keeps its identity: the same pair is a no-op, another is 409 `real_name_already_bound`.
    An account at `none` or `claimed` may claim (or correct its claim) within the limits.
    """
    name, name_problems = normalise_name(raw_name)
    number, id_problems = id_number_problems(raw_id_number)
    problems = {field: msgs for field, msgs in (("name", name_problems), ("id_number", id_problems)) if msgs}
    if problems:
        first = (problems.get("id_number") or problems["name"])[0]
        raise ValidationFailed(first, errors={"json": problems})
    resident_id = parse_id_number(number)

    pii = vault()
    number_hash = pii.pseudonym(number)
    same = citizen.id_number_hash == number_hash and citizen.real_name == name
    if citizen.assurance == "face":
        if same:
            return citizen
        raise RealNameAlreadyBound()
    if same and citizen.assurance == "claimed":
        return citizen
    _refuse_over_claim_limits(citizen, number_hash, request_id=request_id)
    try:
        asked_registry = check_with_population_registry(name, resident_id, citizen)
    except (IdentityMismatch, PopulationRegistryUnavailable, RateLimited) as exc:
        reason = {IdentityMismatch: "identity_mismatch", PopulationRegistryUnavailable: "registry_unavailable"}
        face_log.append(_claim_record("claim_refused", citizen, number_hash, request_id=request_id,
                                      reason=reason.get(type(exc), "rate_limited")))
        raise

    if citizen.id_number_hash not in (None, number_hash):
        # A corrected claim: sessions opened to prove the previous one end (410), rather than fail and count.
        db.session.execute(
            sa.update(FaceSession).where(FaceSession.citizen_id == citizen.id, FaceSession.status == "created")
            .values(status="expired", reason="claim_changed"), execution_options={"synchronize_session": False})
    citizen.real_name_encrypted = pii.encrypt(name)
    citizen.id_number_encrypted = pii.encrypt(number)
    citizen.id_number_hash = number_hash
    citizen.id_number_masked = mask_id_number(number)
    citizen.assurance = "claimed"
    citizen.claimed_at = utcnow()
    citizen.bound_at = None
    citizen.face_verified_until = None
    row = _claim_record("claim_recorded", citizen, number_hash, request_id=request_id,
                        reason="registry_match" if asked_registry else "number_valid")
    with face_log.appending(row):
        db.session.commit()
    return citizen


# What follows the identity to the account that proves it: the person's own records, by their citizen_id.
PERSON_RECORDS = (Application, BundleApplication, ConsentReceipt, AgentAuthorisation, Evaluation, PromiseBreach)


def bind_proven_identity(citizen: Citizen, session: FaceSession, *, request_id: str) -> bool:
    """Bind the identity a `real_name` session just proved to `citizen` exclusively (module docstring).

    Called after the pass is logged; the bind and its log records are committed together, or nothing is.
    Two passes for one identity at the same moment take turns: every account holding it, the caller's
    included, is locked in id order first (PostgreSQL), and every change is conditional on the identity
    still being where it was read (SQLite reads without locks). The first pass binds the identity and ends
    the other's claim; the second, finding its own claim ended, binds nothing and answers False. The partial
    unique index backs this up: a bind that still collides is retried once, as a move.
    """
    pseudonym = session.citizen_pseudonym
    for attempt in range(2):
        holders = db.session.scalars(
            sa.select(Citizen).where(sa.or_(Citizen.id == citizen.id, Citizen.id_number_hash == pseudonym))
            .order_by(Citizen.id).with_for_update().execution_options(populate_existing=True)
        ).all()
        if citizen.id_number_hash != pseudonym:
            db.session.rollback()  # ends the locks: another account's pass bound the identity meanwhile
            return False
        others = [holder for holder in holders if holder.id != citizen.id]
        moved_from = next((other for other in others if other.assurance == "face"), None)
        rows = [face_log.record("identity_rebound" if moved_from else "identity_bound", citizen, session=session,
                                request_id=request_id,
                                reason=f"from:citizen:{moved_from.id}" if moved_from else "face_pass")]
        try:
            for other in others:  # the old holders let go first: the unique index checks row by row
                record = _release(other, citizen, pseudonym=pseudonym, bound=other is moved_from,
                                  request_id=request_id)
                if record is not None:
                    rows.append(record)
            won = db.session.execute(
                sa.update(Citizen).where(Citizen.id == citizen.id, Citizen.id_number_hash == pseudonym)
                .values(assurance="face", bound_at=utcnow()),
                execution_options={"synchronize_session": False,
                                   **readcache.touching(readcache.account_stamp("citizen", citizen.id))},
            ).rowcount
        except IntegrityError:
            db.session.rollback()
            if attempt:
                raise
            continue
        if not won:  # our own claim ended while we released the others: undo all of it
            db.session.rollback()
            return False
        with face_log.appending(*rows):
            db.session.commit()
        db.session.refresh(citizen)
        return True
    raise AssertionError("unreachable")


def _release(other: Citizen, winner: Citizen, *, pseudonym: str, bound: bool, request_id: str) -> dict | None:
    """`other` loses its standing on the identity `winner` just proved; returns its log record, or None when
    it no longer held the identity (it let go meanwhile)."""
    values = Citizen.without_identity()
    if bound:
        # Every token of the old account dies now (app/accounts/guard.py).
        values["token_epoch"] = Citizen.token_epoch + 1
    released = db.session.execute(
        sa.update(Citizen).where(Citizen.id == other.id, Citizen.id_number_hash == pseudonym).values(**values),
        execution_options={"synchronize_session": False,
                           **readcache.touching(readcache.account_stamp("citizen", other.id))},
    ).rowcount
    if not released:
        return None
    for model in PERSON_RECORDS:
        db.session.execute(sa.update(model).where(model.citizen_id == other.id).values(citizen_id=winner.id),
                           execution_options={"synchronize_session": False, **readcache.touching(
                               readcache.applications_stamp(other.id), readcache.applications_stamp(winner.id))})
    # Messages about the person's applications follow them; the account's own messages stay.
    db.session.execute(
        sa.update(Notification).where(Notification.citizen_id == other.id, Notification.application_id.is_not(None))
        .values(citizen_id=winner.id), execution_options={"synchronize_session": False})
    db.session.execute(
        sa.update(FaceSession).where(FaceSession.citizen_id == other.id, FaceSession.status == "created")
        .values(status="expired", reason="identity_moved"), execution_options={"synchronize_session": False})
    if not bound:
        # A claim only: it ends without a word (a message would tell a squatter that the holder came).
        return face_log.record("claim_dropped", other, pseudonym=pseudonym, request_id=request_id,
                               provider=CLAIM_LOG_PROVIDER, adapter_version="1", reason=f"to:citizen:{winner.id}")
    notifications.enqueue(citizen_id=other.id, application_id=None, kind="identity_moved",
                          data=identity_moved_message())
    return face_log.record("identity_unbound", other, pseudonym=pseudonym, request_id=request_id,
                           reason=f"to:citizen:{winner.id}")


def identity_moved_message(*, at: datetime | None = None) -> dict:
    """Template data telling an account that its face-bound identity moved to another account (换绑)."""
    shown_at = (at or utcnow()).astimezone(CHINA_TIME)
    return {
        "thing1": {"value": "实名身份已换绑"},
        "time2": {"value": shown_at.strftime("%Y年%m月%d日 %H:%M")},
        "thing3": {"value": "已在另一账号刷脸绑定,非本人请重新刷脸"},
    }
