"""Real-name binding: validate a resident ID number and a name, then bind them to a citizen account.

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

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from app.errors import Conflict, RateLimited, UpstreamUnavailable, ValidationFailed
from app.extensions import db
from app.models.base import utcnow
from app.models.citizen import Citizen
from app.pii import mask_id_number, vault
from app.requestid import request_id
from app.services import data_access
from app.services.runtime import runtime
from shared_data.client import CallContext

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# Birth dates are China Standard Time dates (UTC+8 all year): a baby born this morning in Zhengzhou was born
# "today" even while it is still yesterday in UTC.
CHINA_TIME = timezone(timedelta(hours=8), "CST")
ID_NUMBER_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
MIDDLE_DOT = "·"
DOT_LOOKALIKES = str.maketrans({"•": MIDDLE_DOT, "・": MIDDLE_DOT, "．": MIDDLE_DOT, "‧": MIDDLE_DOT})
# CJK Unified Ideographs, Extension A, Extensions B-H, and 〇.
NAME_CHAR = r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f\U00031350-\U000323af]"
NAME_SHAPE = re.compile(rf"{NAME_CHAR}+(?:{MIDDLE_DOT}{NAME_CHAR}+)*")
NAME_LENGTH = (2, 30)

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


class IdNumberTaken(Conflict):
    error, message = "id_number_taken", "该身份证号码已绑定其他账号"


class RealNameAlreadyBound(Conflict):
    error, message = "real_name_already_bound", "该账号已绑定其他实名信息,不能更改"


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


def mask_name(name: str) -> str:
    """`张伟` → `张*`: the first character only."""
    return name[:1] + "*" * (len(name) - 1)


def real_name_of(citizen: Citizen) -> str | None:
    """The citizen's bound name, decrypted (for masking or for a registry check; never for logs)."""
    return vault().decrypt(citizen.real_name_encrypted) if citizen.real_name_encrypted else None


def profile(citizen: Citizen) -> dict:
    """What the citizen may see of their own record: identity masked, never the plaintext."""
    name = real_name_of(citizen)
    return {
        "id": citizen.id,
        "real_name_verified": citizen.real_name_verified,
        "real_name": mask_name(name) if name else None,
        "id_number": citizen.id_number_masked,
        "face_verified_until": citizen.face_verified_until,
        "created_at": citizen.created_at,
    }


def check_with_population_registry(name: str, resident_id: ResidentId, citizen: Citizen) -> None:
    """Confirm with the population registry that `name` belongs to the number; IdentityMismatch if not.

    Asks the active connector providing `person.name` (the population registry), for this one element,
    with the purpose 实名认证 and the citizen as the acting user; the call is logged in the data-access
    chain like any other. No active provider: nothing to check against, so binding rests on the number's
    own validity (the behaviour before connectors existed). A number the registry does not hold is a
    mismatch too, with the same answer: a distinct one would tell anyone which numbers exist. The bureau
    down or timing out: 503, and nothing is bound. Mismatches are counted per citizen
    (REAL_NAME_MAX_MISMATCHES per REAL_NAME_MISMATCH_WINDOW_SECONDS) so an account cannot probe names.
    """
    _refuse_when_probing(citizen)
    context = CallContext(purpose=REAL_NAME_PURPOSE, application_id=REAL_NAME_CONTEXT,
                          acting_user=f"citizen:{citizen.id}", request_id=request_id())
    outcomes: list = []
    result = runtime().prefill(resident_id.number, [REGISTRY_NAME_ELEMENT], context, on_call=outcomes.append)
    data_access.record_calls(outcomes, id_number=resident_id.number, context=context, application_id=None)
    field = result.fields[REGISTRY_NAME_ELEMENT]
    if field.status == "skipped":
        return
    if field.status in ("failed", "timeout"):
        raise PopulationRegistryUnavailable()
    registered = normalise_name(field.value)[0] if field.status == "ok" and isinstance(field.value, str) else None
    if registered != name:
        _count_mismatch(citizen)
        raise IdentityMismatch()


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


def bind_real_name(citizen: Citizen, raw_name: str, raw_id_number: str) -> Citizen:
    """Bind a name and ID number to `citizen`; idempotent for the same pair, 409 for any other change."""
    name, name_problems = normalise_name(raw_name)
    number, id_problems = id_number_problems(raw_id_number)
    problems = {field: msgs for field, msgs in (("name", name_problems), ("id_number", id_problems)) if msgs}
    if problems:
        first = (problems.get("id_number") or problems["name"])[0]
        raise ValidationFailed(first, errors={"json": problems})
    resident_id = parse_id_number(number)

    pii = vault()
    number_hash = pii.pseudonym(number)
    if citizen.id_number_hash is not None:
        if citizen.id_number_hash == number_hash and real_name_of(citizen) == name:
            return citizen
        raise RealNameAlreadyBound()
    holder = db.session.scalar(select(Citizen.id).where(Citizen.id_number_hash == number_hash))
    if holder is not None:
        raise IdNumberTaken()

    check_with_population_registry(name, resident_id, citizen)

    citizen.real_name_encrypted = pii.encrypt(name)
    citizen.id_number_encrypted = pii.encrypt(number)
    citizen.id_number_hash = number_hash
    citizen.id_number_masked = mask_id_number(number)
    citizen.real_name_verified_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        # Another account bound the same number between our check and our write.
        db.session.rollback()
        raise IdNumberTaken() from None
    return citizen
