"""Find and mask Korean personal data in free text (pure functions, no I/O).

Used by the responsible-AI exercises (a learner masks a text; autograde checks what is left) and by
the model service's usage log (prompts are masked before they are written anywhere).

Kinds found (``kind`` → label that :func:`mask_pii` puts in their place):

* ``resident_id`` → ``[주민등록번호]``: ``YYMMDD-SNNNNNN``; dash or en dash (spaced or not), one
  space, or no separator at all (then S must be 1–8);
* ``foreigner_id`` → ``[외국인등록번호]``: the same shape with S in 5–8;
* ``phone`` → ``[전화번호]``: mobile ``010-1234-5678`` / ``010.1234.5678`` / ``01012345678``, area
  codes ``02-123-4567`` / ``(031) 123-4567``, ``070-…``, ``0505-…`` and ``+82 10 …``;
  business numbers (``1588-1234``, ``080-…``) are not personal and are left alone;
* ``email`` → ``[이메일]``;
* ``card`` → ``[카드번호]``: 4-4-4-4 groups (``-`` or space), 4-6-5 (Amex), or 16 bare digits that
  pass the Luhn check;
* ``address`` → ``[주소]``: road-name (``세종대로 110``, ``도산대로45길 12``) or lot-number
  (``역삼동 123-45``, ``봉천동 123번지``) addresses, with the city/district words in front and
  ``101동 202호`` / ``(역삼동)`` after them.

Registration numbers need a date-like front part (valid month and day) but are masked whatever
their check digit says: numbers issued since October 2020 no longer carry one (see
:func:`resident_id_checksum_ok` for the old rule).  Prices (``12,000원``), dates (``2026-11-25``,
``2026.11.25``), times, years and short numbers are left alone.  Address detection is best effort:
Korean addresses have no fixed shape, so a word ending in 로/길/동 followed by a counter
(``버스로 30분``, ``운동 30-40분``) is not an address, and names are never detected at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "KIND_LABELS",
    "KIND_NAMES",
    "Finding",
    "card_luhn_ok",
    "find_pii",
    "mask_pii",
    "resident_id_checksum_ok",
]

#: Replacement text per kind (what :func:`mask_pii` writes).
KIND_LABELS: dict[str, str] = {
    "resident_id": "[주민등록번호]",
    "foreigner_id": "[외국인등록번호]",
    "phone": "[전화번호]",
    "email": "[이메일]",
    "card": "[카드번호]",
    "address": "[주소]",
}

#: Plain Korean name per kind, for messages shown to learners.  ``name`` and ``no_answer`` are
#: never found here; the masking exercise reports them (trainer-listed names, a missing answer).
KIND_NAMES: dict[str, str] = {
    **{kind: label.strip("[]") for kind, label in KIND_LABELS.items()},
    "name": "이름",
    "no_answer": "저장된 답 없음",
}


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: ``text == source[start:end]``."""

    kind: str
    start: int
    end: int
    text: str

    @property
    def label(self) -> str:
        """The mask label, e.g. ``"[전화번호]"``."""
        return KIND_LABELS.get(self.kind, "[개인정보]")

    @property
    def name(self) -> str:
        """The kind in plain Korean, e.g. ``"전화번호"``."""
        return KIND_NAMES.get(self.kind, "개인정보")


# --- registration numbers ----------------------------------------------------------------------

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29: the year is unknown

# Six digits, a separator (or none), seven digits; never part of a longer digit run.
_REG_NO = re.compile(r"(?<![\d-])(\d{6})(?:(\s?[-\u2013]\s?| )(\d{7})|(\d{7}))(?![\d])")
_REG_NO_AFTER = re.compile(r"-\d")  # "900101-1234567-1" is some other code


def _date_like(front: str) -> bool:
    month, day = int(front[2:4]), int(front[4:6])
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]


def resident_id_checksum_ok(number: str) -> bool:
    """The pre-2020 check digit of a resident or foreigner registration number.

    Numbers issued since October 2020 have a random last digit, so a failed check does **not**
    mean the number is fake; :func:`find_pii` therefore ignores it.
    """
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) != 13:
        return False
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    total = sum(d * w for d, w in zip(digits, weights))
    if digits[6] in (5, 6, 7, 8):  # foreigner registration numbers used 13 instead of 11
        return (13 - total % 11) % 10 == digits[12]
    return (11 - total % 11) % 10 == digits[12]


def _find_registration_numbers(text: str) -> list[Finding]:
    found = []
    for m in _REG_NO.finditer(text):
        front = m.group(1)
        back = m.group(3) or m.group(4)
        if not _date_like(front):
            continue
        if m.group(4) is not None and back[0] not in "12345678":
            continue  # 13 bare digits: only with a real gender/century digit
        if _REG_NO_AFTER.match(text, m.end()):
            continue
        kind = "foreigner_id" if back[0] in "5678" else "resident_id"
        found.append(Finding(kind, m.start(), m.end(), m.group(0)))
    return found


# --- phone numbers ------------------------------------------------------------------------------

_SEP = r"[-.\u2013 ]"  # dash, dot, en dash or one space between groups
_AREA = r"(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4])"  # Seoul and provincial area codes, without the 0
_PHONE = re.compile(
    "|".join(
        (
            # international: +82 10 1234 5678, +82-2-123-4567, +82 (0)10-…
            rf"\+\s?82{_SEP}?(?:\(0\)\s?)?0?(?:1[016789]|{_AREA}|70){_SEP}?\d{{3,4}}{_SEP}?\d{{4}}",
            # mobile and VoIP with separators: 010-1234-5678, 010.1234.5678, 070 1234 5678
            rf"0(?:1[016789]|70){_SEP}\d{{3,4}}{_SEP}\d{{4}}",
            # mobile without separators: 01012345678, 0111234567
            r"01[016789]\d{7,8}",
            # area codes with separators: 02-123-4567, 031-1234-5678, (02) 123-4567, 02)123-4567
            rf"\(0{_AREA}\)\s?\d{{3,4}}{_SEP}?\d{{4}}",
            rf"0{_AREA}\)\s?\d{{3,4}}{_SEP}?\d{{4}}",
            rf"0{_AREA}{_SEP}\d{{3,4}}{_SEP}\d{{4}}",
            # personal "safe numbers": 0505-123-4567
            rf"050\d{_SEP}\d{{3,4}}{_SEP}\d{{4}}",
        )
    )
)
def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def _find_phones(text: str) -> list[Finding]:
    found = []
    for m in _PHONE.finditer(text):
        start, end = m.start(), m.end()
        before = text[start - 1] if start else " "
        # Not glued to a number or code on the left ("1.02-…", "A010…"); Hangul is fine ("전화010-…").
        if (before.isalnum() or before in ".,+-_") and not _is_hangul(before):
            continue
        # Not the start of a longer number ("02-123-45678", "010-1234-5678-9").
        if end < len(text) and (text[end].isdigit() or re.match(r"[-.]\d", text[end:end + 2])):
            continue
        found.append(Finding("phone", start, end, m.group(0)))
    return found


# --- e-mail -------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)


def _find_emails(text: str) -> list[Finding]:
    return [Finding("email", m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(text)]


# --- card numbers -------------------------------------------------------------------------------

_CARD_GROUPED = re.compile(r"(?<![\d-])(?:\d{4}([- ])\d{4}\1\d{4}\1\d{4}|\d{4}([- ])\d{6}\2\d{5})(?![\d]|-\d)")
_CARD_BARE = re.compile(r"(?<![\d-])\d{16}(?![\d]|-\d)")


def card_luhn_ok(number: str) -> bool:
    """The Luhn check used by payment card numbers (digits only are read)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _find_cards(text: str) -> list[Finding]:
    found = [Finding("card", m.start(), m.end(), m.group(0)) for m in _CARD_GROUPED.finditer(text)]
    found += [Finding("card", m.start(), m.end(), m.group(0)) for m in _CARD_BARE.finditer(text)
              if card_luhn_ok(m.group(0))]
    return found


# --- addresses ----------------------------------------------------------------------------------

_SIDO = (
    "서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|"
    "광주광역시|광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|"
    "경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|"
    "전라남도|전남|경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주"
)
# Ordinary words that end like a city/county/district and must not start an address.
_NOT_SIGUNGU = frozenset(
    "친구 연구 가구 도구 요구 입구 출구 지구 야구 농구 배구 축구 탁구 기구 용구 문구 창구 항구 "
    "당시 동시 역시 다시 혹시 무시 표시 제시 지시 감시 개시 게시 수시 임시 잠시 즉시 평시 "
    "장군 아군 적군 대군 국군 해군 공군 육군".split()
)
# Ordinary words ending in 로/길 (mostly "by/to …" with the particle 로) that are not road names.
_NOT_ROAD = frozenset(
    "결과로 버스로 회사로 전화로 메일로 문자로 택시로 실제로 대체로 스스로 최초로 정도로 비율로 "
    "순서로 단위로 이유로 종류로 형태로 차례로 카톡로 "
    "지름길 오솔길 산책길 출근길 퇴근길 골목길 귀갓길 등굣길 하굣길 빗길 눈길 밤길 뱃길 물길 "
    "그길 이길 저길 한길 첫길".split()
)
_SIGUNGU = r"[가-힣]{1,6}(?:시|군|구)"
_EUPMYEON = r"[가-힣]{1,6}(?:읍|면)"
_DONG = r"(?:[가-힣]{1,7}\d{0,2}(?:동|리)|[가-힣]{1,5}\d{1,2}가)"
# Road names: 세종대로, 테헤란로, 도산대로45길, 중앙로123번길, 중앙로 123번길, 올림픽로35가길
_ROAD = r"[가-힣]{1,12}\d{0,3}(?:로|길)(?:\s?\d{1,4}(?:번|가)?길)?"
_NUMBER = r"(?:산\s?)?\d{1,5}(?:-\d{1,4})?"

# Counters that make "…로 30" or "…동 3" a quantity rather than an address.
_COUNTER = (
    r"(?:분|초|시간|시|개|원|명|번(?!지|길)|회|일|년|월|주|세|살|정거장|정류장|km|㎞|m(?![a-z])|킬로|미터|"
    r"%|퍼센트|배|대|장|권|잔|병|마리|가지|점|등|위|층|차|달|쪽|줄|건|곳|번째|편|통|박|cm|kg|g(?![a-z]))"
)
# What may follow an address: a boundary, punctuation or a particle ("…110에 살아요").
_FOLLOW = (
    r"(?=$|[\s,.;:)\]」』\"'!?·/~]|에|에서|으로|로|의|이에요|입니다|예요|이고|이며|이라|라고|까지|부터|"
    r"와|과|쪽|근처|앞|뒤|번지|이요|요)"
)
_DETAIL = r"(?:\s?,?\s?\d{1,4}동)?(?:\s?\d{1,5}호)?(?:\s?\d{1,3}층)?"
_PAREN = r"(?:\s?\([가-힣0-9]{1,10}(?:동|리|가)(?:,\s?[가-힣0-9 ]{1,20})?\))?"

_PREFIX = rf"(?:(?:{_SIDO})\s+(?:{_SIGUNGU}\s+){{0,2}}|(?:{_SIGUNGU}\s+){{1,2}})(?:{_EUPMYEON}\s+)?"
_ROAD_ADDRESS = re.compile(
    rf"(?P<prefix>{_PREFIX})?(?P<road>{_ROAD})\s?(?P<num>\d{{1,4}}(?:-\d{{1,4}})?)"
    rf"(?!\d|-\d|\s*{_COUNTER})(?P<detail>{_DETAIL}{_PAREN}){_FOLLOW}"
)
_LOT_ADDRESS = re.compile(
    rf"(?P<prefix>{_PREFIX})?(?P<dong>{_DONG})\s?(?P<num>{_NUMBER})(?P<bunji>\s?번지)?"
    rf"(?!\d|-\d|\s*{_COUNTER})(?P<detail>{_DETAIL}){_FOLLOW}"
)


def _trim_prefix(m: re.Match[str]) -> int:
    """Start of the match, dropping leading prefix words that are ordinary words (친구, 당시, …)."""
    start = m.start()
    prefix = m.group("prefix")
    if not prefix:
        return start
    pos = 0
    for word in prefix.split():
        if word not in _NOT_SIGUNGU:
            break
        pos = prefix.index(word, pos) + len(word)
        while pos < len(prefix) and prefix[pos].isspace():
            pos += 1
    return start + pos


def _address_finding(text: str, m: re.Match[str], start: int) -> Finding | None:
    if start > 0 and text[start - 1].isalnum():
        return None  # starts in the middle of a word
    return Finding("address", start, m.end(), text[start:m.end()])


def _find_addresses(text: str) -> list[Finding]:
    found = []
    for m in _ROAD_ADDRESS.finditer(text):
        start = _trim_prefix(m)
        road = m.group("road")
        if start == m.start("road"):
            # No city or district in front: the "road" word must look like a road name, not a
            # noun with the particle 로 ("버스로", "결과로", "처음으로") or a short word ("바로").
            name = road.split()[0]
            if name.endswith("으로") or name in _NOT_ROAD or (len(name) < 3 and not re.search(r"\d", name)):
                continue
        finding = _address_finding(text, m, start)
        if finding:
            found.append(finding)
    for m in _LOT_ADDRESS.finditer(text):
        start = _trim_prefix(m)
        dong = m.group("dong")
        has_prefix = start < m.start("dong")
        lot_shaped = bool(m.group("bunji")) or ("-" in m.group("num") and len(dong) >= 3)
        if not (has_prefix and len(dong) >= 2) and not lot_shaped:
            continue  # "3동 12", "운동 3" … need a district in front, 번지 or a 123-4 lot number
        finding = _address_finding(text, m, start)
        if finding:
            found.append(finding)
    return found


# --- public API ---------------------------------------------------------------------------------

# When two findings overlap, the one found by an earlier finder wins, then the longer one.
_FINDERS = (_find_emails, _find_registration_numbers, _find_cards, _find_phones, _find_addresses)


def find_pii(text: str) -> list[Finding]:
    """All personal data found in *text*, in order, never overlapping."""
    if not isinstance(text, str) or not text:
        return []
    candidates: list[tuple[int, int, Finding]] = []
    for rank, finder in enumerate(_FINDERS):
        for f in finder(text):
            if f.end > f.start:
                candidates.append((rank, -(f.end - f.start), f))
    candidates.sort(key=lambda c: (c[0], c[1], c[2].start))
    chosen: list[Finding] = []
    for _rank, _neg_len, f in candidates:
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def mask_pii(text: str, labels: dict[str, str] | None = None) -> str:
    """*text* with every finding replaced by its label (``"[전화번호]"``, …).

    *labels* may override the replacement per kind (e.g. ``{"email": "***"}``).
    """
    if not isinstance(text, str) or not text:
        return text
    table = {**KIND_LABELS, **(labels or {})}
    out = []
    pos = 0
    for f in find_pii(text):
        out.append(text[pos:f.start])
        out.append(table.get(f.kind, "[개인정보]"))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
