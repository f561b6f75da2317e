"""Per-request usage log (JSON lines) and its totals per person, course, role or day.

One line per request: time, user, the user's courses and role (from hub groups), model, endpoint,
status, prompt/completion tokens, queueing, time to first token and latency.  Prompt text is not
stored unless ``[model] log_prompts = true``; then only after :func:`donghaeng.common.privacy.mask_pii`
has masked the personal data it finds (if that module is missing, no text is stored at all).

    python -m donghaeng.services.model.usage /srv/donghaeng/model/usage.jsonl --by course
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROLE_GROUPS = ("learner", "trainer", "admin")
COURSE_PREFIX = "nbgrader-"
PROMPT_CHARS = 2000  # at most this much (masked) prompt text per line


def courses_and_role(groups: Iterable[str]) -> tuple[list[str], str | None]:
    groups = list(groups)
    courses = sorted(g[len(COURSE_PREFIX):] for g in groups if g.startswith(COURSE_PREFIX))
    role = next((r for r in ROLE_GROUPS if r in groups), None)
    return courses, role


def masked(text: str) -> str | None:
    """*text* with personal data masked, or None when no masker is installed."""
    try:
        from donghaeng.common.privacy import mask_pii
    except ImportError:
        return None
    return mask_pii(text[:PROMPT_CHARS])


class UsageLog:
    """Appends one JSON line per request; the file is private to the service account."""

    def __init__(self, path: Path, *, log_prompts: bool = False) -> None:
        self.path = path
        self.log_prompts = log_prompts
        self._file = None

    def _open(self):
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        return self._file

    def write(self, *, user: str, groups: Iterable[str], model: str, endpoint: str, status: int,
              prompt_tokens: int | None, completion_tokens: int | None, latency_s: float,
              ttft_s: float | None = None, queue_s: float | None = None, stream: bool = False,
              reason: str | None = None, prompt: str | None = None) -> dict[str, Any]:
        courses, role = courses_and_role(groups)
        record: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": user, "role": role, "courses": courses,
            "model": model, "endpoint": endpoint, "status": status, "stream": stream,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "latency_s": round(latency_s, 4),
            "ttft_s": None if ttft_s is None else round(ttft_s, 4),
            "queue_s": None if queue_s is None else round(queue_s, 4),
        }
        if reason:
            record["reason"] = reason
        if self.log_prompts and prompt:
            text = masked(prompt)
            if text is not None:
                record["prompt_masked"] = text
        self._open().write(json.dumps(record, ensure_ascii=False) + "\n")
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_usage(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a usage log; damaged lines (e.g. a half-written last line) are skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def aggregate(records: Iterable[dict[str, Any]], by: str = "course") -> dict[str, dict[str, Any]]:
    """Totals per ``course`` (a request counts for each of its user's courses), ``role``, ``user``,
    ``model`` or ``day``: requests, errors, users, tokens, mean and worst latency."""
    if by not in ("course", "role", "user", "model", "day"):
        raise ValueError(f"cannot group usage by {by!r}")
    acc: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "requests": 0, "errors": 0, "users": set(), "prompt_tokens": 0, "completion_tokens": 0,
        "latency_sum": 0.0, "latency_max": 0.0})
    for r in records:
        if by == "course":
            keys = r.get("courses") or ["(과정 없음)"]
        elif by == "day":
            keys = [str(r.get("ts", ""))[:10]]
        else:
            keys = [str(r.get(by) or "(없음)")]
        for key in keys:
            a = acc[key]
            a["requests"] += 1
            a["errors"] += int(r.get("status", 200) >= 400)
            a["users"].add(r.get("user"))
            a["prompt_tokens"] += r.get("prompt_tokens") or 0
            a["completion_tokens"] += r.get("completion_tokens") or 0
            latency = float(r.get("latency_s") or 0.0)
            a["latency_sum"] += latency
            a["latency_max"] = max(a["latency_max"], latency)
    out: dict[str, dict[str, Any]] = {}
    for key, a in sorted(acc.items()):
        out[key] = {
            "requests": a["requests"], "errors": a["errors"], "users": len(a["users"]),
            "prompt_tokens": a["prompt_tokens"], "completion_tokens": a["completion_tokens"],
            "mean_latency_s": round(a["latency_sum"] / a["requests"], 3) if a["requests"] else 0.0,
            "max_latency_s": round(a["latency_max"], 3),
        }
    return out


def aggregate_file(path: Path, by: str = "course") -> dict[str, dict[str, Any]]:
    return aggregate(read_usage(path), by)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="언어 모델 사용량 합계 / model usage totals")
    parser.add_argument("log", type=Path)
    parser.add_argument("--by", default="course", choices=["course", "role", "user", "model", "day"])
    args = parser.parse_args(argv)
    totals = aggregate_file(args.log, args.by)
    print(f"{args.by:<20} {'요청':>6} {'오류':>5} {'사람':>5} {'프롬프트 토큰':>12} {'생성 토큰':>10} {'평균(초)':>8}")
    for key, t in totals.items():
        print(f"{key:<20} {t['requests']:>6} {t['errors']:>5} {t['users']:>5} {t['prompt_tokens']:>12} "
              f"{t['completion_tokens']:>10} {t['mean_latency_s']:>8.2f}")


if __name__ == "__main__":
    main()
