"""Finding and masking Korean personal data (donghaeng.common.privacy)."""

from __future__ import annotations

import pytest

from donghaeng.common.privacy import (
    KIND_LABELS,
    Finding,
    card_luhn_ok,
    find_pii,
    mask_pii,
    resident_id_checksum_ok,
)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        # resident / foreigner registration numbers
        ("주민번호는 900101-1234567 이에요.", "resident_id", "900101-1234567"),
        ("주민번호 9001011234567", "resident_id", "9001011234567"),
        ("주민번호: 020229-3456789", "resident_id", "020229-3456789"),
        ("주민번호 900101 - 1234567", "resident_id", "900101 - 1234567"),
        ("외국인등록번호 850315-5123456", "foreigner_id", "850315-5123456"),
        ("외국인등록번호 0503157123456", "foreigner_id", "0503157123456"),
        # phone numbers
        ("연락처 010-1234-5678", "phone", "010-1234-5678"),
        ("연락처 01012345678", "phone", "01012345678"),
        ("연락처 010.1234.5678", "phone", "010.1234.5678"),
        ("연락처 010 1234 5678", "phone", "010 1234 5678"),
        ("구형 011-123-4567", "phone", "011-123-4567"),
        ("사무실 02-123-4567", "phone", "02-123-4567"),
        ("사무실 02-1234-5678.", "phone", "02-1234-5678"),
        ("지점 031-123-4567", "phone", "031-123-4567"),
        ("지점 (031) 123-4567", "phone", "(031) 123-4567"),
        ("인터넷전화 070-1234-5678", "phone", "070-1234-5678"),
        ("안심번호 0505-123-4567", "phone", "0505-123-4567"),
        ("Call +82 10 1234 5678", "phone", "+82 10 1234 5678"),
        ("Call +82-10-1234-5678", "phone", "+82-10-1234-5678"),
        ("Call +82-2-123-4567", "phone", "+82-2-123-4567"),
        ("전화번호는 010-1234-5678입니다.", "phone", "010-1234-5678"),
        # e-mail
        ("메일 kim.hana@example.co.kr 로 주세요.", "email", "kim.hana@example.co.kr"),
        ("<hong_gildong+ai@naver.com>", "email", "hong_gildong+ai@naver.com"),
        ("메일은 lee@company.com.", "email", "lee@company.com"),
        # card numbers
        ("카드 1234-5678-9012-3456", "card", "1234-5678-9012-3456"),
        ("카드 1234 5678 9012 3456 로 결제", "card", "1234 5678 9012 3456"),
        ("카드 4111111111111111", "card", "4111111111111111"),
        ("아멕스 3782-822463-10005", "card", "3782-822463-10005"),
        # addresses
        ("서울특별시 중구 세종대로 110에 있어요.", "address", "서울특별시 중구 세종대로 110"),
        ("경기도 성남시 분당구 판교역로 235 101동 202호", "address", "경기도 성남시 분당구 판교역로 235 101동 202호"),
        ("강남구 테헤란로 123 (역삼동)", "address", "강남구 테헤란로 123 (역삼동)"),
        ("집은 테헤란로 427이에요.", "address", "테헤란로 427"),
        ("사무실은 도산대로45길 12, 3층", "address", "도산대로45길 12"),
        ("중앙로123번길 45", "address", "중앙로123번길 45"),
        ("관악구 봉천동 123-4", "address", "관악구 봉천동 123-4"),
        ("역삼동 123-45번지", "address", "역삼동 123-45번지"),
        ("부산 해운대구 우동 1408-5", "address", "부산 해운대구 우동 1408-5"),
        ("서울 종로구 종로1가 12-3", "address", "서울 종로구 종로1가 12-3"),
        ("제주특별자치도 제주시 첨단로 242", "address", "제주특별자치도 제주시 첨단로 242"),
    ],
)
def test_finds_each_kind(text: str, kind: str, found: str) -> None:
    assert kinds(text) == [(kind, found)]
    assert mask_pii(text) == text.replace(found, KIND_LABELS[kind])


@pytest.mark.parametrize(
    "text",
    [
        "가격은 12,000원이고 할인하면 9,900원이에요.",
        "총액 1,234,567원, 예산 100,000,000원",
        "마감은 2026-11-25 18:00이에요.",
        "2026.11.25(수) 오후 2시, 2026/11/25, 2026년 11월 25일",
        "1990년에 태어났고 2026년에 졸업해요.",
        "회의 10:00-12:00, 점심 12:30",
        "원주율 3.14, 버전 1.2.3, IP 192.168.0.1, 비율 50%",
        "사원번호 2024-0123, 주문번호 20261125-0001",
        "주민등록번호 앞자리 900101만 쓰세요.",  # six digits alone are a birthday, not an ID
        "생일 991332-1234567",  # month 13 is not a date
        "우편번호 04524",
        "1234567890123",  # thirteen digits that are no date
        "대표번호 1588-1234로 문의하세요.",  # a business number, not personal
        "버스로 30분, 운동 30-40분, 주로 3시에 만나요.",
        "결과로 2가 나왔어요. 친구 3명과 사과 3개.",
        "제1조 2항, 2층 201호, 3동 12",
        "경기 1-0 승리",
        "ISBN 978-89-1234-567-8",
        "1234-5678",
        "카드번호 1234-****-****-3456",  # already masked
        "010-****-5678",  # already masked
        "4111111111111112",  # 16 bare digits failing the Luhn check: an order number
        "",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_masks_a_whole_letter() -> None:
    letter = (
        "안녕하세요, 김하늘입니다.\n"
        "주민등록번호: 900101-2345678\n"
        "휴대전화: 010-9876-5432 / 회사: 02-3456-7890\n"
        "이메일: haneul.kim@example.com\n"
        "주소: 서울특별시 마포구 월드컵북로 396, 101동 1203호\n"
        "카드: 9410-1234-5678-9012\n"
        "수강료 350,000원은 2026-12-01까지 내 주세요."
    )
    masked = mask_pii(letter)
    assert masked == (
        "안녕하세요, 김하늘입니다.\n"
        "주민등록번호: [주민등록번호]\n"
        "휴대전화: [전화번호] / 회사: [전화번호]\n"
        "이메일: [이메일]\n"
        "주소: [주소]\n"
        "카드: [카드번호]\n"
        "수강료 350,000원은 2026-12-01까지 내 주세요."
    )
    assert find_pii(masked) == []  # masking twice changes nothing


def test_findings_point_into_the_text() -> None:
    text = "연락처 010-1234-5678, 메일 a@b.co"
    findings = find_pii(text)
    assert findings == [
        Finding("phone", 4, 17, "010-1234-5678"),
        Finding("email", 22, 28, "a@b.co"),
    ]
    for f in findings:
        assert text[f.start:f.end] == f.text
    assert [f.label for f in findings] == ["[전화번호]", "[이메일]"]
    assert [f.name for f in findings] == ["전화번호", "이메일"]


def test_overlapping_patterns_give_one_finding() -> None:
    # The phone-like local part belongs to the e-mail address.
    assert kinds("01012345678@example.com") == [("email", "01012345678@example.com")]
    assert mask_pii("문의 01012345678@example.com") == "문의 [이메일]"


def test_ordinary_words_before_an_address_are_kept() -> None:
    assert mask_pii("친구 세종대로 110에서 만나요") == "친구 [주소]에서 만나요"


def test_custom_labels() -> None:
    assert mask_pii("010-1234-5678, a@b.co", labels={"email": "***"}) == "[전화번호], ***"


def test_non_text_is_returned_unchanged() -> None:
    assert find_pii(None) == []  # type: ignore[arg-type]
    assert mask_pii("") == ""


def test_registration_checksum_is_reported_but_not_required() -> None:
    # 800101-1000008 satisfies the pre-2020 rule; a random last digit (post-2020 numbers) does not,
    # and both are masked.
    assert resident_id_checksum_ok("800101-1000008")
    assert not resident_id_checksum_ok("800101-1000006")
    assert mask_pii("800101-1000006") == "[주민등록번호]"
    assert not resident_id_checksum_ok("12345")


def test_luhn() -> None:
    assert card_luhn_ok("4111 1111 1111 1111")
    assert not card_luhn_ok("4111 1111 1111 1112")
    assert not card_luhn_ok("1234")
