"""Errors the service answers, as OpenAI-style error objects with Korean messages.

Every error body is ``{"error": {"message": <Korean>, "type": <category>, "code": <HTTP status>,
"reason": <machine-readable reason>, ...extra}}``.  ``code`` is the HTTP status as an integer
(llama.cpp's convention) so a client can map an error event inside a stream the same way as an
HTTP status; ``reason`` says exactly what happened (``queue_full``, ``user_concurrency``, ...).
"""

from __future__ import annotations

import json
from typing import Any

# Categories (OpenAI's error "type" values).
INVALID = "invalid_request_error"
AUTH = "authentication_error"
PERMISSION = "permission_error"
RATE = "rate_limit_error"
SERVER = "server_error"
TIMEOUT = "timeout_error"
NOT_FOUND = "not_found_error"

MSG_NO_TOKEN = "로그인 정보(토큰)가 없어요. JupyterHub에 로그인한 뒤 다시 해 보세요."
MSG_BAD_TOKEN = "로그인 정보(토큰)가 올바르지 않거나 만료됐어요. 페이지를 새로 고친 뒤 다시 해 보세요."
MSG_FORBIDDEN = "이 언어 모델 서비스를 쓸 권한이 없어요. 강사님께 알려 주세요."
MSG_METRICS_FORBIDDEN = "사용 통계는 강사와 관리자만 볼 수 있어요."
MSG_HUB_DOWN = "로그인 정보를 확인하지 못했어요. 잠시 후 다시 시도해 주세요."
MSG_BAD_JSON = "요청 본문이 올바른 JSON 객체가 아니에요. 보낸 내용을 확인해 주세요."
MSG_TOO_LARGE = "요청이 너무 커요({size:,}바이트). {limit:,}바이트보다 작게 보내 주세요."
MSG_UNKNOWN_MODEL = "'{model}' 모델이 없어요. 쓸 수 있는 모델: {known}"
MSG_UNKNOWN_PARAM = "이 서비스가 모르는 설정이에요: {names}. 설정 이름을 확인해 주세요."
MSG_BAD_PARAM = "'{param}' 값이 올바르지 않아요: {why}"
MSG_NO_PROMPT = "프롬프트(prompt)가 비어 있어요. 글을 조금 써 넣고 다시 해 보세요."
MSG_NO_MESSAGES = "대화 내용(messages)이 비어 있어요. {\"role\": \"user\", \"content\": \"...\"} 모양으로 보내 주세요."
MSG_COMPLETION_ONLY = (
    "'{model}' 모델은 채팅용이 아니라 '이어 쓰기'만 하는 기본(base) 모델이에요. "
    "/v1/completions에 prompt로 글의 앞부분을 보내 주세요."
)
MSG_TOO_LONG = (
    "프롬프트가 너무 길어요. 토큰이 {n:,}개인데 이 모델은 한 번에 {limit:,}개까지만 읽을 수 있어요. "
    "글을 줄여서 다시 해 보세요. (maximum context length is {limit}; {n} tokens in the prompt)"
)
MSG_TOO_LONG_UNKNOWN = (
    "프롬프트가 너무 길어요. 이 모델은 한 번에 토큰 {limit:,}개까지만 읽을 수 있어요. "
    "글을 줄여서 다시 해 보세요. (maximum context length is {limit})"
)
MSG_QUEUE_FULL = (
    "지금 기다리는 요청이 많아요(대기 {waiting}/{size}). 잠시 후 다시 시도해 주세요."
)
MSG_USER_CONCURRENCY = (
    "한 사람이 한꺼번에 보낼 수 있는 요청은 {limit}개까지예요. 앞의 요청이 끝나면 잠시 후 다시 시도해 주세요."
)
MSG_RATE_LIMITED = (
    "1분 동안 쓸 수 있는 토큰({limit:,}개)을 다 썼어요. {retry}초 뒤에 다시 시도해 주세요."
)
MSG_QUEUE_TIMEOUT = "기다리는 사람이 많아 차례가 오지 않았어요. 잠시 후 다시 시도해 주세요."
MSG_TIMEOUT = (
    "답을 만드는 데 너무 오래 걸려서 멈췄어요({seconds:g}초). max_tokens를 줄이거나 잠시 후 다시 시도해 주세요."
)
MSG_ENGINE_DOWN = "언어 모델 엔진이 잠시 멈췄어요. 곧 다시 시작돼요. 잠시 후 다시 시도해 주세요."
MSG_ENGINE_STARTING = "언어 모델을 불러오는 중이에요. 잠시 후 다시 시도해 주세요."
MSG_ENGINE_MISSING = (
    "언어 모델 엔진(llama-server)이 설치되지 않았어요. 관리자에게 `./lab up`을 다시 실행해 달라고 알려 주세요."
)
MSG_MODEL_FILE_MISSING = "언어 모델 파일을 찾지 못했어요. 관리자에게 알려 주세요."
MSG_UPSTREAM = "언어 모델이 답을 만들지 못했어요. 잠시 후 다시 시도해 주세요. (엔진: {detail})"
MSG_NO_TOKENIZE = "이 모델은 토큰 나누기(tokenize)를 지원하지 않아요."
MSG_NOT_FOUND = (
    "이 주소는 없어요. /v1/models, /v1/completions, /v1/chat/completions, /v1/tokenize를 써 보세요."
)


#: On refusals made because the lab is busy: OpenAI's SDKs honour ``x-should-retry`` and would
#: otherwise retry 429/503 by themselves, adding load to a full queue and making a learner wait
#: minutes for an answer the widget can give now ("busy, try again in N s", from Retry-After).
NO_AUTO_RETRY = {"x-should-retry": "false"}


class ServiceError(Exception):
    """An error answered to the client as an OpenAI-style error object."""

    def __init__(self, status: int, message: str, *, type: str = INVALID, reason: str = "error",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.reason = reason
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.status,
                          "reason": self.reason, **self.extra}}

    def sse(self) -> bytes:
        """The error as one Server-Sent Event (for a stream that already started)."""
        return b"data: " + json.dumps(self.body(), ensure_ascii=False).encode() + b"\n\n"


def bad_param(param: str, why: str) -> ServiceError:
    return ServiceError(400, MSG_BAD_PARAM.format(param=param, why=why), reason="invalid_param", param=param)


def too_long(n_prompt: int | None, limit: int) -> ServiceError:
    msg = MSG_TOO_LONG.format(n=n_prompt, limit=limit) if n_prompt else MSG_TOO_LONG_UNKNOWN.format(limit=limit)
    return ServiceError(400, msg, reason="context_length_exceeded", n_prompt_tokens=n_prompt, n_ctx=limit)


def engine_down(reason: str = "engine_unavailable", message: str = MSG_ENGINE_DOWN) -> ServiceError:
    return ServiceError(503, message, type=SERVER, reason=reason, headers={"Retry-After": "5"})
