"""Prompt playground: write a prompt, run it on the lab's model, evaluate the answer and try again.

Three ways of sending a prompt (:data:`MODES`), because the lab's default model is the *base*
Gemma 3 270M, which continues text and was never trained to follow instructions:

* ``"raw"`` — 그대로 이어 쓰기: the text is sent as-is to ``/v1/completions`` and the model writes on.
  The default for a base model; notebooks give pre-filled beginnings (``beginnings=``) to pick from.
* ``"task"`` — 작업 틀에 넣기: the 작업·맥락·참고 자료 fields in a plain completion prompt
  (see :func:`build_prompt`)::

      작업: 회의 일정을 알리는 문자를 써 주세요.
      맥락: 팀원 다섯 명에게 보내요.
      참고: 예) "내일 10시에 3층 회의실에서 만나요."
      답:

  The default of a graded playground (``question_id``) on a base model: rubrics grade those parts.
* ``"chat"`` — 대화하기: the same fields as one user message to ``/v1/chat/completions``.  Offered only
  when the configured model is a chat model (:func:`model_kind`; ``completion_only = false`` in
  ``[[models]]``), and then the default.

Pressing "실행하기" streams the model's answer into the answer box piece by piece.  "A/B 비교"
shows a second prompt next to the first; both run one after the other at temperature 0, so the two
answers differ because of the prompts and not by chance.
Every run goes into a history (newest first, 20 kept) from which an attempt can be loaded again,
and "이 프롬프트를 답으로 저장" saves the prompt with :func:`donghaeng.toolkit.answers.save_answer` so an
autograde test cell can check it (see :func:`missing_parts`).

The model is only touched when "실행하기" is pressed.  Empty prompts, prompts longer than the
model's context window and model-service errors end as a Korean message in the widget, which stays
usable; no exception reaches the learner.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from donghaeng.toolkit.widgets.common import LearnerWidget, number_field

from donghaeng.toolkit import answers
__all__ = [
    "MODES",
    "Attempt",
    "ModelKindBox",
    "PromptPlayground",
    "build_message",
    "build_prompt",
    "friendly_model_error",
    "missing_parts",
    "model_kind",
    "model_kind_box",
    "prompt_playground",
]

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20
# The base model tends to go on with another "답:" or a new "작업:" block after its answer.
STOP = ["\n답:", "\n작업:", "\n맥락:", "\n참고:"]  # OpenAI-compatible servers take at most 4
PARTS = (("task", "작업"), ("context", "맥락"), ("references", "참고"))
#: mode -> the label learners see
MODES = {"raw": "그대로 이어 쓰기", "task": "작업 틀에 넣기", "chat": "대화하기"}
MODE_HELP = {
    "raw": "쓴 글을 그대로 AI에게 줘요. AI는 그 글 뒤에 올 말을 이어 써요. 원하는 글의 첫머리를 써 보세요.",
    "task": ("작업·맥락·참고 자료를 '작업: … 답:' 틀에 넣어 보내요. 작은 기본 모델은 이 틀을 시킨 일로 알아듣지 못하고 "
             "엉뚱하게 이어 쓸 때가 많아요."),
    "chat": "작업·맥락·참고 자료를 메시지 하나로 묶어 대화형 모델에게 보내요. 회사에서 쓰는 AI 비서와 같은 방식이에요.",
}
AB_TEMPERATURE = 0.0  # A/B runs are greedy: the same prompt always gives the same answer

MSG_EMPTY_TASK = "먼저 '작업' 칸에 AI에게 시킬 일을 써 주세요."
MSG_EMPTY_TASK_B = "프롬프트 B의 '작업' 칸도 채워 주세요. (A/B 비교를 끄면 A만 실행해요.)"
MSG_EMPTY_TEXT = "먼저 '시작 글' 칸에 AI가 이어 쓸 글의 첫머리를 써 주세요. '보기 글'에서 하나 골라도 돼요."
MSG_EMPTY_TEXT_B = "프롬프트 B의 '시작 글' 칸도 채워 주세요. (A/B 비교를 끄면 A만 실행해요.)"
MSG_AB_TEMPERATURE = "A/B 비교는 온도 0으로 실행해요. 그래야 두 답이 다른 까닭이 프롬프트 때문인지 알 수 있어요."
MSG_BUSY_HERE = "이미 답을 받고 있어요. 끝날 때까지 잠시만 기다려 주세요."
MSG_RUNNING = "AI가 답을 쓰고 있어요… 잠시만 기다려 주세요."
MSG_FIRST_RUN = "AI가 답을 쓰고 있어요… 처음 한 번은 모델을 준비하느라 1분쯤 걸릴 수 있어요."
MSG_RUNNING_AB = "프롬프트 {label}의 답을 받고 있어요… ({i}/2)"
MSG_DONE = "답을 다 받았어요. 아래 '평가' 질문으로 답을 살펴보세요."
MSG_DONE_AB = "두 답을 다 받았어요. 어느 쪽이 더 나은지, 왜 그런지 비교해 보세요."
MSG_EMPTY_ANSWER = "AI가 아무 말도 하지 않았어요. 작업을 더 구체적으로 쓰거나 온도를 바꿔서 다시 해 보세요."
MSG_TOO_LONG = (
    "프롬프트가 너무 길어요({n}토큰). 이 모델은 답({max_tokens}토큰)까지 합쳐 {ctx}토큰까지만 "
    "다룰 수 있어요. 참고 자료를 줄이거나 '최대 토큰'을 낮춰 보세요."
)
MSG_NO_MODEL = (
    "AI 모델에 연결하지 못했어요. 잠시 뒤 '실행하기'를 다시 눌러 주세요. "
    "계속 안 되면 강사님께 알려 주세요."
)
MSG_UNEXPECTED = (
    "답을 받는 중에 예상하지 못한 문제가 생겼어요. '실행하기'를 다시 눌러 주세요. "
    "계속 안 되면 강사님께 이 화면을 보여 주세요."
)
MSG_STOPPED = "답을 받다가 멈췄어요: {message}"
MSG_B_SKIPPED = "A에서 문제가 생겨서 B는 실행하지 않았어요."
MSG_SAVED = "프롬프트를 답으로 저장했어요. 다시 고치면 한 번 더 저장해 주세요."
MSG_ALREADY_SAVED = "저장된 프롬프트를 불러왔어요. 고친 뒤 다시 저장할 수 있어요."
MSG_SAVE_EMPTY = "저장할 프롬프트가 없어요. 먼저 '작업' 칸을 채워 주세요."
MSG_SAVE_EMPTY_TEXT = "저장할 프롬프트가 없어요. 먼저 '시작 글' 칸을 채워 주세요."
MSG_SAVE_FAILED = (
    "앗, 프롬프트를 저장하지 못했어요. 잠시 뒤 한 번 더 눌러 주세요. "
    "계속 안 되면 강사님께 이 화면을 보여 주세요."
)
MSG_PICK_ATTEMPT = "다시 불러올 시도를 먼저 골라 주세요."
MSG_RELOADED = "{no}번 시도를 프롬프트 A에 다시 불러왔어요. 고쳐서 다시 실행해 보세요."
MSG_NO_HISTORY = "아직 실행한 시도가 없어요."

GUIDE_HTML = """
<div style="line-height:1.6; word-break:keep-all">
<p style="margin:0.2em 0"><b>프롬프트 5단계</b>: <b>작업</b>(무엇을 시킬지) → <b>맥락</b>(누가, 누구에게, 왜) →
<b>참고 자료</b>(예시나 자료) → <b>평가</b>(답 살펴보기) → <b>반복</b>(고쳐서 다시 해 보기)</p>
</div>
"""

EVALUATE_HTML = """
<div style="line-height:1.6; word-break:keep-all">
<p style="margin:0.2em 0"><b>평가</b> — 답을 받으면 이렇게 살펴보세요.</p>
<ul style="margin:0.2em 0">
<li>내가 시킨 작업을 했나요?</li>
<li>사실과 다른 말이나 지어낸 내용은 없나요? (작은 AI는 틀린 말도 자신 있게 해요)</li>
<li>말투와 길이가 쓰임새에 맞나요?</li>
<li>개인정보나 회사 비밀을 넣지는 않았나요?</li>
</ul>
<p style="margin:0.2em 0"><b>반복</b> — 한 번에 하나씩만 바꿔 보세요.</p>
<ul style="margin:0.2em 0">
<li>맥락을 한 줄 더 써 보기 (누가, 누구에게, 왜)</li>
<li>참고 자료에 원하는 답의 예시를 넣어 보기</li>
<li>온도를 낮추면 답이 차분해지고, 높이면 다양해져요</li>
<li>'A/B 비교'로 두 프롬프트를 나란히 견주어 보기</li>
</ul>
</div>
"""


# --- pure helpers -------------------------------------------------------------------------------


def build_prompt(task: str, context: str = "", references: str = "") -> str:
    """The completion prompt for the base model ("작업: …\\n맥락: …\\n참고: …\\n답:").

    Empty parts are left out; with no part at all the prompt is ``""``.
    """
    lines = []
    for (_key, label), value in zip(PARTS, (task, context, references)):
        value = (value or "").strip()
        if value:
            lines.append(f"{label}: {value}")
    if not lines:
        return ""
    lines.append("답:")
    return "\n".join(lines)


def build_message(task: str, context: str = "", references: str = "") -> str:
    """The user message of the chat mode: the filled parts, one per line, without the "답:" cue."""
    return build_prompt(task, context, references).removesuffix("\n답:")


def model_kind(client: Any = None) -> str:
    """``"chat"`` when the lab's model (or *client*'s) is a chat model, else ``"base"``.

    Resolving the lab's client loads no model; a service client asks the service's catalogue once.
    Anything that goes wrong answers ``"base"``: what every model can do.
    """
    try:
        if client is None:
            from donghaeng.toolkit import model_client
            client = model_client.get_client()
        kind = getattr(client, "kind", "base")
    except Exception as e:  # the box and the playground must show up even without a model
        log.warning("model kind unknown: %r", e)
        return "base"
    return "chat" if kind == "chat" else "base"


KIND_BOX_TITLE = "이 실습실의 모델은 어떤 모델일까요?"
KIND_BOX_COMMON = """
<p style="margin:0.3em 0">회사에서 쓰는 AI 비서(챗GPT, 코파일럿 같은 것)도 처음에는 <b>이어 쓰기만 하는 모델</b>이었어요.
아주 많은 글을 읽고 다음 말을 예측하는 법을 익힌 모델이에요. 여기에 사람이 시킨 일을 하고 대화하는 법을
따로 더 가르쳐서 <b>대화형 모델</b>을 만들어요.</p>
"""
KIND_BOX_BASE = """
<p style="margin:0.3em 0">우리 실습실의 모델은 <b>작은 기본 모델</b>(Gemma 3 270M처럼 이어 쓰기만 배운 모델)이에요.
시키는 일을 하도록 배우지 않았어요. 그래서 질문을 하면 답하지 않고, 그 뒤에 올 법한 글을 이어 쓸 때가 많아요.</p>
<ul style="margin:0.2em 0">
<li>예) <b>대한민국의 수도는</b>을 주면 "서울이에요"라고 답하는 대신 " 1990년대 초반부터 2000년대 초…"처럼 글을 이어 가기도 해요.</li>
<li>그래서 이 모델에게는 <b>원하는 글의 첫머리</b>를 주는 것이 가장 잘 통해요. 놀이터의 <b>그대로 이어 쓰기</b>가 그 방법이에요.</li>
<li>보기를 두세 개 보여 주고 빈칸을 남기면(예: "영어: Thank you / 한국어: 고맙습니다 / 영어: Good morning / 한국어:")
  그 모양을 따라 이어 쓰기도 해요.</li>
<li>모델이 작아서 틀린 말을 자신 있게 할 때가 많아요. 회사의 AI 비서는 훨씬 크고 대화도 배웠지만,
  그래도 틀릴 수 있으니 중요한 내용은 사람이 꼭 확인해요.</li>
</ul>
"""
KIND_BOX_CHAT = """
<p style="margin:0.3em 0">우리 실습실에는 강사님이 <b>대화형 모델</b>을 연결해 두었어요. 회사의 AI 비서처럼 시킨 일을
알아듣고 답해요. 놀이터의 <b>대화하기</b>로 작업·맥락·참고 자료를 보내 보세요.</p>
<ul style="margin:0.2em 0">
<li><b>그대로 이어 쓰기</b>도 할 수 있어요. 대화형 모델도 바탕은 다음 말을 예측하는 모델이라는 것을 볼 수 있어요.</li>
<li>회사의 AI 비서보다 작을 수 있어요. 그럴듯하지만 틀린 말도 하니, 중요한 내용은 사람이 꼭 확인해요.</li>
</ul>
"""


class ModelKindBox:
    """The "이 실습실의 모델은 어떤 모델일까요?" box; see :func:`model_kind_box`.

    Plain HTML output (no widget), so it shows in the notebook, in autograde and in feedback alike.
    """

    def __init__(self, kind: str) -> None:
        self.kind = "chat" if kind == "chat" else "base"

    def html(self) -> str:
        body = KIND_BOX_COMMON + (KIND_BOX_CHAT if self.kind == "chat" else KIND_BOX_BASE)
        return (
            '<div role="note" aria-label="' + KIND_BOX_TITLE + '" style="border:1px solid #9ec5fe; '
            'border-left:6px solid #0b5ed7; border-radius:4px; background:#f1f7ff; padding:0.6em 0.9em; '
            'margin:0.5em 0; line-height:1.6; word-break:keep-all">'
            f'<p style="margin:0.2em 0; font-weight:bold">{KIND_BOX_TITLE}</p>{body}</div>'
        )

    def text(self) -> str:
        kind = "대화형 모델" if self.kind == "chat" else "작은 기본 모델(이어 쓰기만 배운 모델)"
        return f"[{KIND_BOX_TITLE}] 우리 실습실의 모델은 {kind}이에요."

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {"text/html": self.html(), "text/plain": self.text()}


def model_kind_box(client: Any = None) -> ModelKindBox:
    """The box that explains, in plain Korean, how the lab's model differs from the chat assistants
    learners use at work; its text follows :func:`model_kind` (base or chat).  Put it last in a cell."""
    return ModelKindBox(model_kind(client))


def missing_parts(saved: Any) -> list[str]:
    """Korean names of the framework parts a saved playground answer leaves empty.

    For autograde test cells: ``assert not missing_parts(load_answer("m3.prompt"))``.  No saved
    answer at all counts as every part missing.
    """
    if not isinstance(saved, dict):
        return [label for _key, label in PARTS]
    return [label for key, label in PARTS if not str(saved.get(key) or "").strip()]


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def friendly_model_error(exc: BaseException) -> str:
    """A Korean message for any error met while talking to the model (never a traceback)."""
    names = _class_names(exc)
    if "ModelError" in names:
        text = str(exc).strip()
        return text or MSG_NO_MODEL
    if isinstance(exc, (ImportError, ConnectionError, TimeoutError)):
        return MSG_NO_MODEL
    return MSG_UNEXPECTED


def _is_prompt_too_long(exc: BaseException) -> bool:
    return "PromptTooLong" in _class_names(exc)


def _html_block(text: str, placeholder: str) -> str:
    shown = html.escape(text) if text else f'<span style="color:#6e7781">{html.escape(placeholder)}</span>'
    return (
        '<div style="white-space:pre-wrap; word-break:keep-all; border:1px solid #d0d7de; '
        'border-radius:4px; padding:0.5em; min-height:3em; background:#f6f8fa; '
        f'font-family:\'Noto Sans KR\',\'Malgun Gothic\',sans-serif">{shown}</div>'
    )


# --- the widget ---------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One run of one prompt."""

    no: int
    label: str  # "A" or "B"
    time: str
    mode: str  # a key of MODES
    text: str  # the beginning of the raw mode
    task: str
    context: str
    references: str
    prompt: str  # what was sent: the text, the task prompt or the chat message
    temperature: float
    top_p: float
    max_tokens: int
    answer: str = ""
    message: str = ""  # Korean error message when the run did not finish

    def title(self) -> str:
        shown = (self.text if self.mode == "raw" else self.task).strip()
        first = shown.splitlines()[0] if shown else ""
        if len(first) > 24:
            first = first[:24] + "…"
        mark = "" if not self.message else " ⚠"
        return (f"{self.no}번 ({self.time}) · {self.label} · {MODES[self.mode]} · 온도 {self.temperature:g} · "
                f"{first}{mark}")


class _PromptFields:
    """One prompt: the 시작 글 of the raw mode or the 작업 / 맥락 / 참고 자료 fields, its preview and its answer box."""

    def __init__(self, label: str, mode: str, beginnings: tuple[str, ...] = ()) -> None:
        self.label = label
        self.mode = mode
        suffix = f" ({label})" if label != "A" else ""
        common = {"style": {"description_width": "5.5em"}, "layout": widgets.Layout(width="100%")}
        self.text = widgets.Textarea(
            description="시작 글",
            placeholder="AI가 이어 쓸 글의 첫머리를 써 주세요. 예) 대한민국의 수도는",
            tooltip=f"시작 글{suffix}: AI가 이 글 뒤를 이어 써요",
            rows=3,
            **common,
        )
        self.pick: widgets.Dropdown | None = None
        if beginnings:
            self.pick = widgets.Dropdown(
                options=[(b if len(b) <= 40 else b[:40] + "…", b) for b in beginnings], value=None,
                description="보기 글", tooltip=f"보기 글{suffix}: 고르면 '시작 글' 칸에 들어가요",
                style={"description_width": "5.5em"}, layout=widgets.Layout(width="100%"),
            )
            self.pick.observe(self._on_pick, names="value")
        self.task = widgets.Textarea(
            description="작업",
            placeholder="AI에게 시킬 일을 한 문장으로 써 주세요. 예) 회의 일정을 알리는 문자를 써 주세요.",
            tooltip=f"작업{suffix}: AI에게 시킬 일",
            rows=2,
            **common,
        )
        self.context = widgets.Textarea(
            description="맥락",
            placeholder="누가, 누구에게, 왜 쓰는지 알려 주세요. 예) 팀원 다섯 명에게 보내요.",
            tooltip=f"맥락{suffix}: 누가, 누구에게, 왜",
            rows=2,
            **common,
        )
        self.references = widgets.Textarea(
            description="참고 자료",
            placeholder="예시나 참고할 글을 넣어 주세요. 예) \"내일 10시에 3층 회의실에서 만나요.\"",
            tooltip=f"참고 자료{suffix}: 예시나 참고할 글",
            rows=3,
            **common,
        )
        self.preview = widgets.HTML(value="")
        self.output = widgets.HTML(value="")
        self.answer = ""
        for field in (self.text, self.task, self.context, self.references):
            field.observe(lambda _change: self.update_preview(), names="value")
        self.raw_fields = widgets.VBox(children=[self.text] + ([self.pick] if self.pick else []))
        self.framework_fields = widgets.VBox(children=[self.task, self.context, self.references])
        self.set_mode(mode)
        self.show_answer("")
        self.box = widgets.VBox(
            children=[
                widgets.HTML(f"<b>프롬프트 {html.escape(label)}</b>"),
                self.raw_fields,
                self.framework_fields,
                widgets.HTML("<span>AI에게 보낼 프롬프트 미리 보기</span>"),
                self.preview,
                widgets.HTML(f"<b>답 {html.escape(label)}</b>"),
                self.output,
            ],
            layout=widgets.Layout(flex="1 1 0", min_width="18em", padding="0 0.4em"),
        )

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.text.value = change["new"]

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.raw_fields.layout.display = None if mode == "raw" else "none"
        self.framework_fields.layout.display = "none" if mode == "raw" else None
        self.update_preview()

    def values(self) -> dict[str, str]:
        return {"text": self.text.value, "task": self.task.value, "context": self.context.value,
                "references": self.references.value}

    def set_values(self, task: str, context: str, references: str, text: str | None = None) -> None:
        self.task.value, self.context.value, self.references.value = task, context, references
        if text is not None:
            self.text.value = text

    @property
    def empty(self) -> bool:
        """Nothing to send: the mode's main field (시작 글 or 작업) is blank."""
        return not (self.text if self.mode == "raw" else self.task).value.strip()

    @property
    def prompt(self) -> str:
        """What this prompt sends in its mode: the text as-is, the task prompt, or the chat message."""
        if self.mode == "raw":
            return self.text.value if self.text.value.strip() else ""
        build = build_message if self.mode == "chat" else build_prompt
        return build(self.task.value, self.context.value, self.references.value)

    def update_preview(self) -> None:
        prompt = self.prompt
        note = f"\n\n(글자 {len(prompt)}자)" if prompt else ""
        first = "시작 글" if self.mode == "raw" else "작업"
        self.preview.value = _html_block(prompt + note, f"아직 비어 있어요. '{first}' 칸부터 채워 보세요.")

    def show_answer(self, text: str, note: str = "") -> None:
        self.answer = text
        body = text.lstrip()
        shown = body + (f"\n\n[{note}]" if note else "")
        self.output.value = _html_block(shown, "'실행하기'를 누르면 여기에 답이 나와요.")


class PromptPlayground(LearnerWidget):
    """See :func:`prompt_playground`."""

    label = "프롬프트 놀이터"

    def __init__(self, client: Any = None, question_id: str | None = None, *, mode: str | None = None,
                 beginnings: Iterable[str] = (), text: str = "") -> None:
        if question_id is not None and (not isinstance(question_id, str) or not question_id.strip()):
            raise ValueError("question_id must be a non-empty string or None")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)} or None")
        beginnings = tuple(b for b in beginnings if isinstance(b, str) and b.strip())
        self.question_id = question_id
        self._client = client
        self._running = False
        self._next_no = 1
        self.history: list[Attempt] = []
        self.message = ""
        self.kind = model_kind(client)
        self.modes = [m for m in MODES if m != "chat" or self.kind == "chat"]
        if mode not in self.modes:  # not asked for, or chat on a base model
            mode = "chat" if self.kind == "chat" else ("task" if question_id is not None else "raw")

        self.fields_a = _PromptFields("A", mode, beginnings)
        self.fields_b = _PromptFields("B", mode, beginnings)
        self.fields_b.box.layout.display = "none"
        if text:
            self.fields_a.text.value = text
        elif beginnings:
            self.fields_a.pick.value = beginnings[0]  # type: ignore[union-attr]

        self.mode_select = widgets.RadioButtons(
            options=[(MODES[m], m) for m in self.modes], value=mode, description="보내는 방식",
            tooltip="프롬프트를 AI에게 어떻게 보낼지 골라요", style={"description_width": "5.5em"},
            layout=widgets.Layout(width="auto"),
        )
        self.mode_help = widgets.HTML(value="")
        self.mode_select.observe(lambda change: self._set_mode(change["new"]), names="value")
        self._set_mode(mode)

        self.ab_toggle = widgets.Checkbox(
            value=False,
            description="A/B 비교 (프롬프트 두 개를 나란히 실행)",
            indent=False,
            tooltip="켜면 프롬프트 B 칸이 나타나요. 실행하면 A, B를 차례로 실행해요.",
            layout=widgets.Layout(width="auto"),
        )
        self.ab_toggle.observe(self._on_toggle_ab, names="value")
        self.ab_note = widgets.HTML(value="")

        self.temperature = number_field(
            "온도", 0.7, 0.0, 1.5, 0.1, "온도: 낮으면 차분하고 비슷한 답, 높으면 다양하고 엉뚱한 답이 나와요.", "5.5em")
        self.top_p = number_field(
            "후보 범위", 0.95, 0.1, 1.0, 0.05,
            "후보 범위(top-p): 다음 낱말 후보를 얼마나 넓게 볼지 정해요. 낮으면 흔한 낱말만 골라요.", "5.5em")
        self.max_tokens = number_field(
            "최대 토큰", 64, 16, 256, 8, "최대 토큰: 답의 최대 길이예요. 한글 한 글자가 대개 토큰 1~2개예요.", "5.5em")

        self.run_button = widgets.Button(
            description="실행하기", tooltip="프롬프트를 AI에게 보내고 답을 받아요", icon="play",
            button_style="primary",
        )
        self.run_button.on_click(lambda _b: self.run())
        buttons: list[widgets.Widget] = [self.run_button]
        self.save_button: widgets.Button | None = None
        if question_id is not None:
            self.save_button = widgets.Button(
                description="이 프롬프트를 답으로 저장", tooltip="프롬프트 A를 이 문제의 답으로 저장해요",
                icon="save", layout=widgets.Layout(width="auto"),
            )
            self.save_button.on_click(lambda _b: self.save())
            buttons.append(self.save_button)
        self.status = widgets.HTML(value="")

        self.history_select = widgets.Select(
            options=[], value=None, rows=5, description="지난 시도",
            tooltip="지난 시도를 고르면 아래에 내용이 보여요", style={"description_width": "5.5em"},
            layout=widgets.Layout(width="100%"),
        )
        self.history_select.observe(lambda _c: self._show_selected(), names="value")
        self.history_detail = widgets.HTML(value="")
        self.reload_button = widgets.Button(
            description="이 시도 다시 불러오기", tooltip="고른 시도의 프롬프트와 설정을 프롬프트 A에 다시 넣어요",
            icon="undo", layout=widgets.Layout(width="auto"),
        )
        self.reload_button.on_click(lambda _b: self.reload())
        self._refresh_history()

        self._restore_saved()
        super().__init__(
            children=[
                widgets.HTML("<h4 style='margin:0.2em 0'>프롬프트 놀이터</h4>" + GUIDE_HTML),
                self.mode_select,
                self.mode_help,
                self.ab_toggle,
                widgets.HBox(
                    children=[self.fields_a.box, self.fields_b.box],
                    layout=widgets.Layout(width="100%", flex_flow="row wrap"),
                ),
                widgets.HTML("<b>설정</b>"),
                self.temperature,
                self.ab_note,
                self.top_p,
                self.max_tokens,
                widgets.HBox(children=buttons),
                self.status,
                widgets.HTML(EVALUATE_HTML),
                widgets.HTML("<b>시도 기록</b> (최근 20개, 새것부터)"),
                self.history_select,
                self.reload_button,
                self.history_detail,
            ],
            layout=widgets.Layout(border="1px solid #d0d7de", padding="0.6em", margin="0.5em 0"),
        )

    # -- small helpers -------------------------------------------------------------------------
    @property
    def ab_mode(self) -> bool:
        return bool(self.ab_toggle.value)

    @property
    def mode(self) -> str:
        """How prompts are sent now: a key of :data:`MODES`."""
        return str(self.mode_select.value)

    @property
    def prompt(self) -> str:
        """The assembled prompt A (what "저장" saves)."""
        return self.fields_a.prompt

    def settings(self) -> dict[str, Any]:
        """The settings field values (an A/B run replaces the temperature by :data:`AB_TEMPERATURE`)."""
        return {
            "temperature": round(float(self.temperature.value), 2),
            "top_p": round(float(self.top_p.value), 2),
            "max_tokens": int(self.max_tokens.value),
        }

    def _set_mode(self, mode: str) -> None:
        for fields in (self.fields_a, self.fields_b):
            fields.set_mode(mode)
        self.mode_help.value = (f'<p style="margin:0.2em 0 0.4em 0; color:#37474f; word-break:keep-all">'
                                f"{html.escape(MODE_HELP[mode])}</p>")

    def _on_toggle_ab(self, change: dict[str, Any]) -> None:
        if change["new"]:
            if not any(v.strip() for v in self.fields_b.values().values()):
                self.fields_b.set_values(**self.fields_a.values())  # start B as a copy of A
            self.fields_b.box.layout.display = None
            self.ab_note.value = f'<p style="margin:0.2em 0; color:#37474f">{html.escape(MSG_AB_TEMPERATURE)}</p>'
        else:
            self.fields_b.box.layout.display = "none"
            self.ab_note.value = ""
        self.temperature.disabled = bool(change["new"])

    def _set_busy(self, busy: bool) -> None:
        self._running = busy
        self.run_button.disabled = busy
        self.reload_button.disabled = busy
        self.mode_select.disabled = busy
        if self.save_button is not None:
            self.save_button.disabled = busy

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> bool:
        """Run prompt A (and B in A/B mode); return whether every answer arrived in full."""
        if self._running:
            self._show(MSG_BUSY_HERE, "warn")
            return False
        jobs = [self.fields_a] + ([self.fields_b] if self.ab_mode else [])
        raw = self.mode == "raw"
        if self.fields_a.empty:
            self._show(MSG_EMPTY_TEXT if raw else MSG_EMPTY_TASK, "warn")
            return False
        if self.ab_mode and self.fields_b.empty:
            self._show(MSG_EMPTY_TEXT_B if raw else MSG_EMPTY_TASK_B, "warn")
            return False
        self._set_busy(True)
        try:
            return self._run_jobs(jobs)
        except Exception:  # belt and braces: a button callback must never show a traceback
            log.exception("prompt playground run failed")
            self._show(MSG_UNEXPECTED, "error")
            return False
        finally:
            self._set_busy(False)

    def _run_jobs(self, jobs: list[_PromptFields]) -> bool:
        for fields in jobs:
            fields.show_answer("")
        self._show(MSG_RUNNING if self.history else MSG_FIRST_RUN, "info")
        try:
            client = self.client
        except Exception as e:
            log.warning("model client unavailable: %r", e)
            self._show(friendly_model_error(e), "error")
            return False
        settings = self.settings()
        if len(jobs) > 1:
            settings["temperature"] = AB_TEMPERATURE
        all_ok = True
        for i, fields in enumerate(jobs, start=1):
            if len(jobs) > 1:
                self._show(MSG_RUNNING_AB.format(label=fields.label, i=i), "info")
            ok, error, fatal = self._run_one(client, fields, settings)
            all_ok = all_ok and ok
            if error:
                self._show(error if len(jobs) == 1 else f"프롬프트 {fields.label}: {error}", "error")
                if fatal and i < len(jobs):
                    for rest in jobs[i:]:
                        rest.show_answer("", MSG_B_SKIPPED)
                    break
        if all_ok:
            empty = [f for f in jobs if not f.answer.strip()]
            if empty:
                self._show(MSG_EMPTY_ANSWER, "warn")
            else:
                self._show(MSG_DONE_AB if len(jobs) > 1 else MSG_DONE, "ok")
        return all_ok

    def _run_one(self, client: Any, fields: _PromptFields, settings: dict[str, Any]) -> tuple[bool, str, bool]:
        """Stream one answer into *fields*; return ``(ok, korean_error, stop_the_rest)``."""
        prompt = fields.prompt
        try:
            n_tokens = len(client.tokenize(prompt))
            context_length = int(client.context_length)
        except Exception as e:
            if "TokenizeUnsupported" not in _class_names(e):
                log.warning("tokenize failed: %r", e)
                message = friendly_model_error(e)
                fields.show_answer("", message)
                return False, message, not _is_prompt_too_long(e)
            n_tokens, context_length = 0, 0  # no count: the service itself refuses a prompt that is too long
        if context_length and n_tokens + settings["max_tokens"] > context_length:
            message = MSG_TOO_LONG.format(n=n_tokens, max_tokens=settings["max_tokens"], ctx=context_length)
            fields.show_answer("", message)
            return False, message, False

        attempt = Attempt(
            no=self._next_no, label=fields.label, time=time.strftime("%H:%M:%S"), mode=fields.mode, prompt=prompt,
            **fields.values(), **settings,
        )
        self._next_no += 1
        text = ""
        message = ""
        fatal = False
        try:
            pieces: Iterable[str]
            if fields.mode == "chat":
                pieces = client.chat([{"role": "user", "content": prompt}], **settings)
            else:
                stop = list(STOP) if fields.mode == "task" else None  # raw text goes on as the learner wrote it
                pieces = client.complete(prompt, stop=stop, **settings)
            for piece in pieces:
                if not isinstance(piece, str):
                    piece = str(piece)
                text += piece
                fields.show_answer(text)
        except Exception as e:
            log.warning("completion failed: %r", e)
            message = friendly_model_error(e)
            fatal = not _is_prompt_too_long(e)
            fields.show_answer(text, MSG_STOPPED.format(message=message) if text else message)
        attempt.answer = text
        attempt.message = message
        self._remember(attempt)
        return not message, message, fatal

    # -- history ---------------------------------------------------------------------------------
    def _remember(self, attempt: Attempt) -> None:
        self.history.insert(0, attempt)
        del self.history[HISTORY_LIMIT:]
        self._refresh_history(select=attempt.no)

    def _refresh_history(self, select: int | None = None) -> None:
        self.history_select.options = [(a.title(), a.no) for a in self.history]
        self.history_select.value = select if select is not None else None
        self.reload_button.disabled = not self.history or self._running
        self._show_selected()

    def _selected(self) -> Attempt | None:
        no = self.history_select.value
        return next((a for a in self.history if a.no == no), None)

    def _show_selected(self) -> None:
        attempt = self._selected()
        if attempt is None:
            self.history_detail.value = (
                f"<p style='color:#57606a'>{html.escape(MSG_NO_HISTORY if not self.history else MSG_PICK_ATTEMPT)}</p>"
            )
            return
        answer = attempt.answer.strip() or "(답 없음)"
        note = f"<p style='color:#8a4b00'>{html.escape(attempt.message)}</p>" if attempt.message else ""
        self.history_detail.value = (
            f"<p style='margin:0.3em 0'><b>{html.escape(attempt.title())}</b><br>"
            f"{MODES[attempt.mode]} · 온도 {attempt.temperature:g} · 후보 범위 {attempt.top_p:g} · "
            f"최대 토큰 {attempt.max_tokens}</p>"
            f"<p style='margin:0.2em 0'>프롬프트</p>{_html_block(attempt.prompt, '')}"
            f"<p style='margin:0.2em 0'>답</p>{_html_block(answer, '')}{note}"
        )

    def reload(self) -> bool:
        """Put the selected attempt's prompt and settings back into prompt A."""
        attempt = self._selected()
        if attempt is None:
            self._show(MSG_PICK_ATTEMPT, "warn")
            return False
        if attempt.mode in self.modes:
            self.mode_select.value = attempt.mode
        self.fields_a.set_values(attempt.task, attempt.context, attempt.references, attempt.text)
        if not self.ab_mode:  # an A/B attempt ran at temperature 0; the field keeps the learner's value
            self.temperature.value = attempt.temperature
        self.top_p.value = attempt.top_p
        self.max_tokens.value = attempt.max_tokens
        self.fields_a.show_answer(attempt.answer)
        self._show(MSG_RELOADED.format(no=attempt.no), "info")
        return True

    # -- saving ----------------------------------------------------------------------------------
    def _saved_value(self) -> dict[str, Any]:
        answer = next((a.answer for a in self.history if a.label == "A" and a.prompt == self.prompt), "")
        return {"prompt": self.prompt, "mode": self.mode, **self.fields_a.values(), **self.settings(),
                "answer": answer}

    def save(self) -> bool:
        """Save prompt A as the answer to ``question_id``."""
        if self.question_id is None:
            return False
        if self.fields_a.empty:
            self._show(MSG_SAVE_EMPTY_TEXT if self.mode == "raw" else MSG_SAVE_EMPTY, "warn")
            return False
        try:
            answers.save_answer(self.question_id, self._saved_value())
        except Exception:
            log.exception("saving prompt %r failed", self.question_id)
            self._show(MSG_SAVE_FAILED, "error")
            return False
        self._show(MSG_SAVED, "ok")
        return True

    def _restore_saved(self) -> None:
        if self.question_id is None:
            return
        saved = answers.load_answer(self.question_id)
        if not isinstance(saved, dict):
            return
        if saved.get("mode") in self.modes:
            self.mode_select.value = saved["mode"]
        self.fields_a.set_values(*(str(saved.get(key) or "") for key, _label in PARTS), str(saved.get("text") or ""))
        for slider, key in ((self.temperature, "temperature"), (self.top_p, "top_p"), (self.max_tokens, "max_tokens")):
            try:
                value = type(slider.value)(saved[key])
            except (KeyError, TypeError, ValueError):
                continue
            slider.value = min(max(value, slider.min), slider.max)
        self._show(MSG_ALREADY_SAVED, "info")

    def plain_text(self) -> str:
        if not self.question_id:  # a practice playground: nothing is graded
            return super().plain_text()
        saved = answers.load_answer(self.question_id)
        shown = saved.get("prompt") if isinstance(saved, dict) else None
        return f"[{self.label}] 저장된 프롬프트: {shown or '(아직 없어요)'}"


def prompt_playground(client: Any = None, question_id: str | None = None, *, mode: str | None = None,
                      beginnings: Iterable[str] = (), text: str = "") -> widgets.Widget:
    """The prompt playground widget.

    *client* is a model client (default: :func:`donghaeng.toolkit.model_client.get_client`; its model loads
    on the first "실행하기").  *mode* is the way of sending it starts in (:data:`MODES`): by default
    ``"chat"`` on a chat model, else ``"task"`` with *question_id* and ``"raw"`` without; ``"chat"``
    on a base model falls back to that default.  *beginnings* are pre-filled beginnings of the raw
    mode a learner picks from a list (the first is put in 시작 글 unless *text* is given).

    With *question_id*, "이 프롬프트를 답으로 저장" saves ``{"prompt", "mode", "text", "task",
    "context", "references", "temperature", "top_p", "max_tokens", "answer"}`` for autograde, and a
    saved prompt is loaded back when the cell runs again.
    """
    return PromptPlayground(client=client, question_id=question_id, mode=mode, beginnings=beginnings, text=text)
