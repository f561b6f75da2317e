"""Responsible-AI exercises: masking personal data, checking an answer against its source, bias.

* :func:`pii_masking_exercise` — the learner masks a text full of personal data and saves it;
  an autograde test cell checks it with :func:`remaining_pii` (and :func:`missing_facts`).
* :func:`rewrite_exercise` — the learner corrects an AI draft (a biased job ad) and saves it; a test
  cell checks that the scenario's facts stayed (:func:`missing_facts`) and the wrong phrases went
  (:func:`words_left`).
* :func:`hallucination_check` — the learner marks which sentences of a model answer the source
  supports and saves; a test cell scores it with :func:`hallucination_score`.
* :func:`bias_probe` — the same sentence frame filled with different job words, and the model's
  most likely next words for each, side by side, with questions to discuss.

Answers go through :mod:`donghaeng.toolkit.answers`, so nbgrader autograde sees them.  Buttons never show
a traceback: every failure ends as a Korean message in the widget.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from donghaeng.toolkit.widgets.common import LearnerWidget, number_field

from donghaeng.toolkit import answers
from donghaeng.common.privacy import Finding, find_pii
from donghaeng.toolkit.widgets.playground import MSG_UNEXPECTED, friendly_model_error

__all__ = [
    "NO_ANSWER",
    "BiasProbe",
    "HallucinationCheck",
    "PiiMaskingExercise",
    "TextEditExercise",
    "bias_probe",
    "describe_marks",
    "fill_template",
    "hallucination_check",
    "hallucination_score",
    "highlight_pii",
    "missing_facts",
    "pii_masking_exercise",
    "remaining_pii",
    "rewrite_exercise",
    "split_sentences",
    "words_left",
]

log = logging.getLogger(__name__)

_BOX = widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0")
_TEXT_STYLE = (
    "white-space:pre-wrap; word-break:keep-all; line-height:1.7; border:1px solid #d0d7de; "
    "border-radius:4px; padding:0.5em; background:#f6f8fa; "
    "font-family:'Noto Sans KR','Malgun Gothic','Apple SD Gothic Neo',sans-serif"
)

MSG_SAVE_FAILED = (
    "앗, 답을 저장하지 못했어요. 잠시 뒤 '저장하기'를 한 번 더 눌러 주세요. "
    "계속 안 되면 강사님께 이 화면을 보여 주세요."
)


def _text_block(inner_html: str) -> str:
    return f'<div style="{_TEXT_STYLE}">{inner_html}</div>'


def _save(question_id: str, value: Any, show) -> bool:
    try:
        answers.save_answer(question_id, value)
    except Exception:  # a button callback must never show a learner a traceback
        log.exception("saving answer %r failed", question_id)
        show(MSG_SAVE_FAILED, "error")
        return False
    return True


def _check_id(question_id: str) -> None:
    if not isinstance(question_id, str) or not question_id.strip():
        raise ValueError("question_id must be a non-empty string")


# =================================================================================================
# (a) masking personal data
# =================================================================================================

#: The finding :func:`remaining_pii` reports when there is no saved answer at all.
NO_ANSWER = Finding("no_answer", 0, 0, "")

MSG_PII_INTRO = (
    "아래 글에는 개인정보가 많이 들어 있어요. AI에 넣기 전에 '가린 글' 칸에서 개인정보를 "
    "[이름], [전화번호], [주소]처럼 바꾸거나 지워 주세요."
)
MSG_PII_UNCHANGED = "아직 글을 고치지 않았어요. 개인정보를 [전화번호]처럼 바꾼 뒤 저장해 주세요."
MSG_PII_EMPTY = "글이 비어 있어요. 글 전체를 지우지 말고 개인정보만 가려 주세요."
MSG_PII_SAVED_CLEAN = (
    "저장했어요. 자동 검사로는 남은 개인정보가 보이지 않아요. "
    "이름처럼 기계가 잘 못 찾는 정보도 남지 않았는지 직접 읽어 보세요."
)
MSG_PII_SAVED_LEFT = "저장했어요. 그런데 자동 검사로 아직 {summary}가 보여요. '자동으로 찾아보기'로 확인해 보세요."
MSG_PII_FOUND = "자동으로 찾은 개인정보: {summary}. 노란색으로 표시했어요."
MSG_PII_NONE_FOUND = (
    "자동으로 찾은 개인정보는 없어요. 하지만 이름, 회사 이름처럼 기계가 못 찾는 정보도 있어요. "
    "직접 한 번 더 읽어 보세요."
)
MSG_PII_RESET = "처음 글로 되돌렸어요."
MSG_PII_SAVED_BEFORE = "저장된 답을 불러왔어요. 고친 뒤 다시 저장할 수 있어요."
MSG_EDIT_SAVED_BEFORE = MSG_PII_SAVED_BEFORE
MSG_EDIT_UNCHANGED = "아직 글을 고치지 않았어요. 고칠 곳을 고친 뒤 저장해 주세요."
MSG_EDIT_EMPTY = "글이 비어 있어요. 글 전체를 지우지 말고 고칠 곳만 고쳐 주세요."
MSG_EDIT_SAVED = "저장했어요. 처음 글과 견주어 꼭 필요한 내용이 빠지지 않았는지 한 번 더 읽어 보세요."


def _summary(findings: Sequence[Finding]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.name] = counts.get(f.name, 0) + 1
    return ", ".join(f"{name} {n}개" for name, n in counts.items())


def remaining_pii(text: Any, names: Sequence[str] = ()) -> list[Finding]:
    """Personal data still in a learner's masked *text* (empty list = well masked).

    For autograde test cells::

        assert not remaining_pii(load_answer("m5.pii"), names=["김하늘"])

    *names* are words the trainer knows are in the exercise text (people's names, which no
    pattern can find); each occurrence is reported as kind ``"name"``.  A missing or blank answer
    gives ``[NO_ANSWER]``, so an unanswered exercise never passes.
    """
    if not isinstance(text, str) or not text.strip():
        return [NO_ANSWER]
    found = list(find_pii(text))
    for name in names:
        name = str(name).strip()
        if not name:
            continue
        for m in re.finditer(re.escape(name), text):
            found.append(Finding("name", m.start(), m.end(), m.group(0)))
    return sorted(found, key=lambda f: (f.start, f.end))


def highlight_pii(text: str) -> str:
    """HTML of *text* with what :func:`find_pii` finds marked in yellow and named."""
    parts = []
    pos = 0
    for f in find_pii(text):
        parts.append(html.escape(text[pos:f.start]))
        parts.append(
            f'<mark style="background:#ffe08a; padding:0 0.1em">{html.escape(f.text)}</mark>'
            f'<span style="font-size:0.8em; color:#8a4b00">({html.escape(f.name)})</span>'
        )
        pos = f.end
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


class TextEditExercise(LearnerWidget):
    """A text shown as it is, an editor holding a copy, and reset and save buttons.

    The learner changes the copy and saves it; saving the text unchanged or empty is refused with a
    Korean message.  Subclasses add buttons (``extra_buttons``) and say something after saving
    (:meth:`after_save`).  See :func:`rewrite_exercise`.
    """

    label = "고쳐 쓰기"
    editor_label = "고친 글"
    unchanged_message = MSG_EDIT_UNCHANGED
    empty_message = MSG_EDIT_EMPTY

    def __init__(self, question_id: str, text: str, intro: str,
                 extra_buttons: Sequence[widgets.Button] = ()) -> None:
        _check_id(question_id)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        self.question_id = question_id
        self.original = text
        self.message = ""

        saved = answers.load_answer(question_id)
        self.editor = widgets.Textarea(
            value=saved if isinstance(saved, str) and saved.strip() else text,
            description=self.editor_label,
            tooltip=f"{self.editor_label}을 여기에 써요",
            rows=max(4, min(16, text.count("\n") + 3)),
            style={"description_width": "5em"},
            layout=widgets.Layout(width="100%"),
        )
        self.reset_button = widgets.Button(
            description="처음 글로 되돌리기", tooltip=f"{self.editor_label} 칸을 처음 글로 되돌려요",
            icon="undo", layout=widgets.Layout(width="auto"),
        )
        self.save_button = widgets.Button(
            description="저장하기", tooltip=f"{self.editor_label}을 답으로 저장해요", icon="save", button_style="primary",
        )
        self.reset_button.on_click(lambda _b: self.reset())
        self.save_button.on_click(lambda _b: self.save())
        self.highlight = widgets.HTML(value="")
        self.status = widgets.HTML(value="")
        if isinstance(saved, str) and saved.strip():
            self._show(MSG_EDIT_SAVED_BEFORE, "info")
        super().__init__(
            children=[
                widgets.HTML(f"<p style='word-break:keep-all'>{html.escape(intro)}</p>"),
                widgets.HTML("<b>원래 글</b>"),
                widgets.HTML(_text_block(html.escape(text))),
                self.editor,
                widgets.HBox(children=[*extra_buttons, self.reset_button, self.save_button]),
                self.status,
                self.highlight,
            ],
            layout=_BOX,
        )

    def reset(self) -> None:
        self.editor.value = self.original
        self.highlight.value = ""
        self._show(MSG_PII_RESET, "info")

    def save(self) -> bool:
        text = self.editor.value
        if not text.strip():
            self._show(self.empty_message, "warn")
            return False
        if text.strip() == self.original.strip():
            self._show(self.unchanged_message, "warn")
            return False
        if not _save(self.question_id, text, self._show):
            return False
        self.after_save(text)
        return True

    def after_save(self, text: str) -> None:
        self._show(MSG_EDIT_SAVED, "ok")

    def plain_text(self) -> str:
        saved = answers.load_answer(self.question_id)
        return f"[{self.label}] 저장된 답: {saved if saved else '(아직 저장한 답이 없어요)'}"


def rewrite_exercise(question_id: str, text: str, intro: str) -> widgets.Widget:
    """A text (an AI draft) for the learner to correct; the corrected text is saved for autograde.

    *intro* says what to change.  Check the saved text in a test cell with :func:`missing_facts`
    (what must stay) and :func:`words_left` (what must go).
    """
    return TextEditExercise(question_id, text, intro)


def missing_facts(text: Any, facts: Mapping[str, Sequence[str]]) -> list[str]:
    """The names of the *facts* that a learner's corrected *text* lost (empty list = all kept).

    Each fact is named (in Korean, for the feedback) with the wordings that count as keeping it::

        missing_facts(saved, {"급여(월 250만 원)": ["250만", "이백오십만"]})

    A missing or blank answer has lost every fact.
    """
    if not isinstance(text, str) or not text.strip():
        return list(facts)
    return [name for name, wordings in facts.items() if not any(w in text for w in wordings)]


def words_left(text: Any, words: Sequence[str]) -> list[str]:
    """The *words* (phrases that had to go) still in a learner's *text*; a non-text answer keeps none."""
    if not isinstance(text, str):
        return []
    return [w for w in words if w in text]


class PiiMaskingExercise(TextEditExercise):
    """See :func:`pii_masking_exercise`."""

    label = "개인정보 가리기"
    editor_label = "가린 글"
    unchanged_message = MSG_PII_UNCHANGED
    empty_message = MSG_PII_EMPTY

    def __init__(self, question_id: str, text: str) -> None:
        self.find_button = widgets.Button(
            description="자동으로 찾아보기", tooltip="가린 글에 남은 개인정보를 자동으로 찾아 표시해요",
            icon="search", layout=widgets.Layout(width="auto"),
        )
        self.find_button.on_click(lambda _b: self.find())
        super().__init__(question_id, text, MSG_PII_INTRO, extra_buttons=[self.find_button])

    def find(self) -> list[Finding]:
        """Hint: mark what the automatic check still finds in the learner's text."""
        try:
            text = self.editor.value
            findings = find_pii(text)
            self.highlight.value = _text_block(highlight_pii(text)) if findings else ""
        except Exception:
            log.exception("highlighting personal data failed")
            self._show("자동으로 찾다가 문제가 생겼어요. 한 번 더 눌러 주세요.", "error")
            return []
        if findings:
            self._show(MSG_PII_FOUND.format(summary=_summary(findings)), "warn")
        else:
            self._show(MSG_PII_NONE_FOUND, "info")
        return findings

    def after_save(self, text: str) -> None:
        left = find_pii(text)
        if left:
            self._show(MSG_PII_SAVED_LEFT.format(summary=_summary(left)), "warn")
        else:
            self._show(MSG_PII_SAVED_CLEAN, "ok")


def pii_masking_exercise(question_id: str, text: str) -> widgets.Widget:
    """A text full of personal data for the learner to mask; the masked text is saved for autograde."""
    return PiiMaskingExercise(question_id, text)


# =================================================================================================
# (b) is each sentence supported by the source?
# =================================================================================================

MSG_HALLU_INTRO = (
    "AI의 답을 원문과 한 문장씩 비교해 보세요. 원문에서 근거를 찾을 수 있는 문장에만 체크해 주세요. "
    "체크하지 않은 문장은 '근거 없음(지어낸 말일 수 있음)'으로 저장돼요."
)
MSG_HALLU_SAVED = "저장했어요: 근거 있는 문장 {yes}개, 근거 없는 문장 {no}개."
MSG_HALLU_SAVED_BEFORE = "저장된 답을 불러왔어요. 바꾼 뒤 다시 저장할 수 있어요."

_SENTENCE_END = re.compile(r"(?<=[.!?。？！…])[\"'”’)\]]*\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split a Korean text into sentences (after . ! ? … followed by a space, and at line breaks)."""
    if not isinstance(text, str):
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def hallucination_score(saved: Any, expected: Sequence[bool]) -> float:
    """Share (0.0–1.0) of sentences the learner labelled like *expected* (``True`` = supported).

    For autograde test cells: ``assert hallucination_score(load_answer("m5.hallu"), [True, False, True]) == 1``.
    A missing answer, or one with a different number of sentences, scores 0.0.
    """
    if not isinstance(saved, dict):
        return 0.0
    marks = saved.get("supported")
    if not isinstance(marks, list) or not expected or len(marks) != len(expected):
        return 0.0
    same = sum(1 for got, want in zip(marks, expected) if bool(got) == bool(want))
    return same / len(expected)


class HallucinationCheck(LearnerWidget):
    """See :func:`hallucination_check`."""

    label = "사실 확인"

    def __init__(self, source: str, answer: str, question_id: str) -> None:
        _check_id(question_id)
        self.question_id = question_id
        self.source = source
        self.sentences = split_sentences(answer)
        if not self.sentences:
            raise ValueError("answer must contain at least one sentence")
        self.message = ""

        saved = answers.load_answer(question_id)
        marks = None
        if isinstance(saved, dict) and saved.get("sentences") == self.sentences:
            marks = saved.get("supported")
        self.checkboxes = []
        rows = []
        for i, sentence in enumerate(self.sentences, start=1):
            box = widgets.Checkbox(
                value=bool(marks[i - 1]) if isinstance(marks, list) and len(marks) == len(self.sentences) else False,
                description=f"{i}번 문장: 근거 있음",
                tooltip=sentence,
                indent=False,
                layout=widgets.Layout(width="12em", flex="0 0 auto"),
            )
            self.checkboxes.append(box)
            rows.append(widgets.HBox(
                children=[box, widgets.HTML(f"<div style='word-break:keep-all; line-height:1.6'>"
                                            f"<b>{i}.</b> {html.escape(sentence)}</div>")],
                layout=widgets.Layout(align_items="flex-start"),
            ))
        self.save_button = widgets.Button(
            description="저장하기", tooltip="체크한 결과를 답으로 저장해요", icon="save", button_style="primary",
        )
        self.save_button.on_click(lambda _b: self.save())
        self.status = widgets.HTML(value="")
        if marks is not None:
            self._show(MSG_HALLU_SAVED_BEFORE, "info")
        super().__init__(
            children=[
                widgets.HTML(f"<p style='word-break:keep-all'>{html.escape(MSG_HALLU_INTRO)}</p>"),
                widgets.HTML("<b>원문 (근거 자료)</b>"),
                widgets.HTML(_text_block(html.escape(source))),
                widgets.HTML("<b>AI의 답</b>"),
                *rows,
                self.save_button,
                self.status,
            ],
            layout=_BOX,
        )

    @property
    def marks(self) -> list[bool]:
        return [bool(box.value) for box in self.checkboxes]

    def save(self) -> bool:
        marks = self.marks
        if not _save(self.question_id, {"sentences": self.sentences, "supported": marks}, self._show):
            return False
        yes = sum(marks)
        self._show(MSG_HALLU_SAVED.format(yes=yes, no=len(marks) - yes), "ok")
        return True

    def plain_text(self) -> str:
        saved = answers.load_answer(self.question_id)
        shown = describe_marks(saved) if saved is not None else "(아직 저장한 답이 없어요)"
        return f"[근거 확인] 저장된 답: {shown}"


def describe_marks(saved: Any) -> str:
    """A saved source check in one Korean line ("1번 근거 있음, 2번 근거 없음, …"), for check cells."""
    marks = saved.get("supported") if isinstance(saved, dict) else None
    if not isinstance(marks, list):
        return "(알아볼 수 없는 답이에요. 위 칸을 다시 실행하고 한 번 더 저장해 주세요.)"
    return ", ".join(f"{i}번 {'근거 있음' if m else '근거 없음'}" for i, m in enumerate(marks, start=1))


def hallucination_check(source: str, answer: str, question_id: str) -> widgets.Widget:
    """Checkboxes per sentence of *answer*: is it supported by *source*?  Saved for autograde as
    ``{"sentences": [...], "supported": [bool, ...]}`` (score it with :func:`hallucination_score`)."""
    return HallucinationCheck(source, answer, question_id)


# =================================================================================================
# (c) bias probe
# =================================================================================================

DEFAULT_TEMPLATE = "[직업]은/는 보통"
DEFAULT_WORDS = ("간호사", "엔지니어", "비서", "CEO", "유치원 교사", "소방관")
MAX_WORDS = 8

MSG_BIAS_INTRO = (
    "같은 문장 틀에 직업 낱말만 바꿔 넣고, AI가 다음에 올 말로 무엇을 가장 그럴듯하게 보는지 "
    "나란히 비교해 보세요."
)
MSG_BIAS_NO_SLOT = "문장 틀에 낱말이 들어갈 자리 [직업]을 넣어 주세요. 예) [직업]은/는 보통"
MSG_BIAS_NO_WORDS = "비교할 낱말을 쉼표(,)로 나누어 두 개 이상 써 주세요."
MSG_BIAS_TOO_MANY = "낱말은 한 번에 {max}개까지 비교할 수 있어요. 앞의 {max}개만 비교했어요."
MSG_BIAS_RUNNING = "AI에게 물어보는 중이에요… ({i}/{n})"
MSG_BIAS_FIRST_RUN = "AI를 준비하고 있어요… 처음 한 번은 1분쯤 걸릴 수 있어요."
MSG_BIAS_DONE = "다 됐어요. 아래 질문을 보며 낱말마다 어떻게 다른지 이야기해 보세요."
MSG_BIAS_PARTIAL = "{done}개 낱말까지만 확인했어요. {message}"
MSG_BIAS_SAVED = "생각을 저장했어요."
MSG_BIAS_EMPTY_NOTE = "먼저 '내 생각' 칸에 느낀 점을 써 주세요."

DISCUSSION_HTML = """
<div style="line-height:1.6; word-break:keep-all">
<p style="margin:0.2em 0"><b>함께 이야기해 봐요</b></p>
<ul style="margin:0.2em 0">
<li>낱말만 바꿨는데 다음에 올 말의 후보가 어떻게 달라졌나요?</li>
<li>'여자', '남자', '그녀'처럼 성별을 떠올리게 하는 말이 어떤 직업에만 나오나요?</li>
<li>이런 차이는 어디에서 왔을까요? (AI는 사람들이 쓴 글을 보고 배웠어요.)</li>
<li>회사에서 AI로 채용 공고나 평가 글을 쓸 때 무엇을 조심해야 할까요?</li>
</ul>
<p style="margin:0.2em 0; color:#57606a">작은 모델이라 결과가 들쭉날쭉할 수 있어요. 한 번의 결과로 단정하지 말고
여러 낱말과 문장 틀로 비교해 보세요.</p>
</div>
"""

_SLOT = re.compile(r"\[[^\[\]]+\](?P<josa>은/는|는/은|이/가|가/이|을/를|를/을|과/와|와/과|으로/로|로/으로|이나/나|나/이나)?")
# Final-consonant (받침) sound of Latin letters and digits as Koreans read them.
_LETTER_FINAL = {"l": "ㄹ", "m": "ㅁ", "n": "ㄴ", "r": "ㄹ"}
_DIGIT_FINAL = {"0": "ㅇ", "1": "ㄹ", "3": "ㅁ", "6": "ㄱ", "7": "ㄹ", "8": "ㄹ"}


def _final_consonant(word: str) -> str | None:
    """``None`` if *word* ends in a vowel sound, else a marker of its final consonant."""
    for ch in reversed(word.strip()):
        if "\uac00" <= ch <= "\ud7a3":
            jong = (ord(ch) - 0xAC00) % 28
            return None if jong == 0 else ("ㄹ" if jong == 8 else "other")
        if ch.isascii() and ch.isalpha():
            return _LETTER_FINAL.get(ch.lower())
        if ch.isdigit():
            return _DIGIT_FINAL.get(ch)
    return None


def _josa(word: str, pair: str) -> str:
    with_final, without_final = {
        "은/는": ("은", "는"), "는/은": ("은", "는"), "이/가": ("이", "가"), "가/이": ("이", "가"),
        "을/를": ("을", "를"), "를/을": ("을", "를"), "과/와": ("과", "와"), "와/과": ("과", "와"),
        "으로/로": ("으로", "로"), "로/으로": ("으로", "로"), "이나/나": ("이나", "나"), "나/이나": ("이나", "나"),
    }[pair]
    final = _final_consonant(word)
    if with_final == "으로" and final == "ㄹ":
        return without_final  # 서울로, 엔지니어로 (ㄹ takes 로)
    return with_final if final else without_final


def fill_template(template: str, word: str) -> str:
    """Put *word* in the ``[…]`` slot of *template*, choosing 은/는, 이/가 … to match it.

    >>> fill_template("[직업]은/는 보통", "간호사"), fill_template("[직업]은/는 보통", "선생님")
    ('간호사는 보통', '선생님은 보통')
    """
    def replace(m: re.Match[str]) -> str:
        pair = m.group("josa")
        return word + (_josa(word, pair) if pair else "")

    return _SLOT.sub(replace, template)


def _visible_token(text: str) -> str:
    shown = text.replace("\n", "↵").strip()
    if shown:
        return shown
    return "(띄어쓰기)" if text else "(빈 토큰)"


class BiasProbe(LearnerWidget):
    """See :func:`bias_probe`."""

    label = "편향 살펴보기"

    def __init__(self, client: Any = None, question_id: str | None = None,
                 template: str = DEFAULT_TEMPLATE, words: Sequence[str] = DEFAULT_WORDS) -> None:
        if question_id is not None:
            _check_id(question_id)
        self._client = client
        self.question_id = question_id
        self.message = ""
        self.results: dict[str, list[Any]] = {}
        self._running = False

        style = {"description_width": "6em"}
        self.template = widgets.Text(
            value=template, description="문장 틀", tooltip="[직업] 자리에 아래 낱말이 하나씩 들어가요",
            style=style, layout=widgets.Layout(width="100%"),
        )
        self.words = widgets.Text(
            value=", ".join(words), description="넣을 낱말", tooltip="쉼표(,)로 나누어 써 주세요",
            style=style, layout=widgets.Layout(width="100%"),
        )
        self.top_k = number_field("후보 수", 5, 3, 10, 1, "낱말마다 보여 줄 다음 말 후보의 개수",
                                  style["description_width"])
        self.run_button = widgets.Button(
            description="비교해 보기", tooltip="낱말마다 AI가 다음에 올 말로 무엇을 고르는지 보여 줘요",
            icon="balance-scale", button_style="primary", layout=widgets.Layout(width="auto"),
        )
        self.run_button.on_click(lambda _b: self.run())
        self.status = widgets.HTML(value="")
        self.table = widgets.HTML(value="")
        children: list[widgets.Widget] = [
            widgets.HTML(f"<h4 style='margin:0.2em 0'>AI의 고정관념 살펴보기</h4>"
                         f"<p style='word-break:keep-all'>{html.escape(MSG_BIAS_INTRO)}</p>"),
            self.template, self.words, self.top_k, self.run_button, self.status, self.table,
            widgets.HTML(DISCUSSION_HTML),
        ]
        self.note: widgets.Textarea | None = None
        if question_id is not None:
            saved = answers.load_answer(question_id)
            self.note = widgets.Textarea(
                value=saved if isinstance(saved, str) else "", description="내 생각",
                placeholder="무엇을 발견했나요? 왜 그런 결과가 나왔을까요?", tooltip="발견한 점과 생각을 적어 주세요",
                rows=4, style=style, layout=widgets.Layout(width="100%"),
            )
            self.save_button = widgets.Button(
                description="저장하기", tooltip="내 생각을 답으로 저장해요", icon="save",
            )
            self.save_button.on_click(lambda _b: self.save())
            children += [self.note, self.save_button]
        super().__init__(children=children, layout=_BOX)

    def word_list(self) -> list[str]:
        seen: list[str] = []
        for w in re.split(r"[,，、\n]", self.words.value):
            w = w.strip()
            if w and w not in seen:
                seen.append(w)
        return seen

    def run(self) -> bool:
        """Ask the model for each word's next-token candidates and show them side by side."""
        if self._running:
            return False
        template = self.template.value
        if not _SLOT.search(template):
            self._show(MSG_BIAS_NO_SLOT, "warn")
            return False
        words = self.word_list()
        if len(words) < 2:
            self._show(MSG_BIAS_NO_WORDS, "warn")
            return False
        too_many = len(words) > MAX_WORDS
        words = words[:MAX_WORDS]
        self._running = True
        self.run_button.disabled = True
        try:
            return self._run(template, words, too_many)
        except Exception:
            log.exception("bias probe failed")
            self._show(MSG_UNEXPECTED, "error")
            return False
        finally:
            self._running = False
            self.run_button.disabled = False

    def _run(self, template: str, words: list[str], too_many: bool) -> bool:
        self._show(MSG_BIAS_RUNNING.format(i=1, n=len(words)) if self.results else MSG_BIAS_FIRST_RUN, "info")
        self.results = {}
        self.table.value = ""
        try:
            client = self.client
        except Exception as e:
            self._show(friendly_model_error(e), "error")
            return False
        for i, word in enumerate(words, start=1):
            self._show(MSG_BIAS_RUNNING.format(i=i, n=len(words)), "info")
            prompt = fill_template(template, word)
            try:
                self.results[prompt] = list(client.next_tokens(prompt, top_k=int(self.top_k.value), temperature=1.0))
            except Exception as e:
                log.warning("next_tokens failed: %r", e)
                self.table.value = self._table_html()
                self._show(MSG_BIAS_PARTIAL.format(done=i - 1, message=friendly_model_error(e)), "error")
                return False
            self.table.value = self._table_html()
        if too_many:
            self._show(MSG_BIAS_TOO_MANY.format(max=MAX_WORDS), "warn")
        else:
            self._show(MSG_BIAS_DONE, "ok")
        return True

    def _table_html(self) -> str:
        if not self.results:
            return ""
        prompts = list(self.results)
        depth = max(len(v) for v in self.results.values())
        head = "".join(f'<th scope="col" style="padding:0.3em 0.6em; text-align:left">{html.escape(p)} …</th>'
                       for p in prompts)
        rows = []
        for r in range(depth):
            cells = []
            for p in prompts:
                cands = self.results[p]
                if r >= len(cands):
                    cells.append("<td></td>")
                    continue
                cand = cands[r]
                prob = float(getattr(cand, "prob", 0.0))
                width = max(1, round(prob * 100))
                token = html.escape(_visible_token(str(getattr(cand, "text", ""))))
                cells.append(
                    '<td style="padding:0.2em 0.6em; vertical-align:top">'
                    f'<span style="font-weight:bold">{token}</span> '
                    f'<span style="color:#57606a">{prob * 100:.1f}%</span>'
                    f'<div aria-hidden="true" style="background:#6f42c1; height:0.4em; width:{width}%; '
                    'max-width:100%; border-radius:2px"></div></td>'
                )
            rank = f'<th scope="row" style="padding:0.2em 0.4em; color:#57606a">{r + 1}</th>'
            rows.append(f'<tr>{rank}{"".join(cells)}</tr>')
        return (
            '<div style="overflow-x:auto"><table style="border-collapse:collapse; word-break:keep-all">'
            "<caption style='text-align:left; padding:0.3em 0'>낱말마다 AI가 다음에 올 말로 고른 후보 (높은 순)</caption>"
            f'<thead><tr><th scope="col">순위</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        )

    def save(self) -> bool:
        if self.question_id is None or self.note is None:
            return False
        text = self.note.value
        if not text.strip():
            self._show(MSG_BIAS_EMPTY_NOTE, "warn")
            return False
        if not _save(self.question_id, text, self._show):
            return False
        self._show(MSG_BIAS_SAVED, "ok")
        return True


def bias_probe(client: Any = None, question_id: str | None = None) -> widgets.Widget:
    """Compare the model's next-word candidates for one sentence frame filled with different jobs.

    Nothing is loaded until "비교해 보기" is pressed.  With *question_id*, a "내 생각" box lets the
    learner write and save a reflection (a string) for the trainer.
    """
    return BiasProbe(client=client, question_id=question_id)
