"""The public verification service (``/services/certificates/``): no login, read-only, Korean pages.

It runs as an unprivileged account and reads only the public folder (issuer DID, signed credentials,
the signed revocation list), so it can neither issue nor revoke anything.

* ``verify/<serial>``: a page saying whether the certificate is valid, revoked or unknown
* ``verify`` (POST a credential's JSON): the verification result as JSON (or a page, from the form)
* ``credentials/<serial>.json``, ``status/1``, ``issuer``: the public documents themselves
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tornado import web
from tornado.template import Template

from donghaeng.services import runtime as service_runtime
from donghaeng.common.settings import Settings, load_settings
from donghaeng.services.certification.credential import (SERIAL, Verification, credential_file, issuer_file, status_list_file,
                         verify_credential)

MAX_BODY = 1_000_000
SERIAL_PATTERN = f"({SERIAL.pattern.strip('^$')})"
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"

PAGE = Template("""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ issuer }}</title>
<style>
body { font-family: 'NanumGothic', 'Noto Sans KR', sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.6; color: #222; }
.result { border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; }
.ok { background: #e8f5e9; border: 2px solid #2e7d32; } .bad { background: #fdecea; border: 2px solid #c62828; }
dt { font-weight: bold; } dd { margin: 0 0 .5rem 0; } textarea { width: 100%; min-height: 10rem; }
</style></head><body>
<h1>{{ issuer }} 수료증 확인</h1>
{% if result is not None %}
<div class="result {{ 'ok' if result.ok else 'bad' }}" id="result" data-ok="{{ 'true' if result.ok else 'false' }}">
  <p><strong>{{ headline(result) }}</strong></p>
  <p>{{ result.reason }}</p>
  {% if result.serial %}
  <dl>
    <dt>이름</dt><dd id="holder">{{ result.name }}</dd>
    <dt>단계</dt><dd>{{ result.level }}</dd>
    <dt>발급일</dt><dd>{{ result.issued_at[:10] }}</dd>
    <dt>일련번호</dt><dd>{{ result.serial }}</dd>
  </dl>
  {% end %}
</div>
{% end %}
<h2>수료증 파일로 확인하기</h2>
<p>받은 수료증 JSON 파일의 내용을 붙여 넣으면 서명과 취소 여부를 확인해요.</p>
<form method="post" action="{{ prefix }}verify">
<textarea name="credential" aria-label="수료증 JSON"></textarea>
<p><button type="submit">확인하기</button></p>
</form>
</body></html>""")


def headline(result: Verification) -> str:
    if result.ok:
        return "✔ 유효한 수료증이에요"
    return "✘ 취소된 수료증이에요" if result.revoked else "✘ 확인되지 않았어요"


def _result_json(result: Verification) -> dict:
    return {"ok": result.ok, "reason": result.reason, "serial": result.serial, "revoked": result.revoked,
            "name": result.name, "level": result.level, "issued_at": result.issued_at}


class Base(web.RequestHandler):
    @property
    def lab(self) -> Settings:
        return self.application.settings["lab"]

    def page(self, title: str, result: Verification | None) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(PAGE.generate(title=title, result=result, headline=headline,
                                  issuer=self.lab.certification.issuer_name,
                                  prefix=self.application.settings["prefix"]))

    def json_file(self, path: Path) -> None:
        if not path.is_file():
            raise web.HTTPError(404)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Access-Control-Allow-Origin", "*")  # public documents, for any verifier
        self.finish(path.read_bytes())

    def write_error(self, status_code: int, **kwargs) -> None:
        self.page("찾을 수 없어요", Verification(False, "요청한 주소를 찾지 못했어요." if status_code == 404
                                                 else "요청을 처리하지 못했어요."))


class NotFoundHandler(Base):
    def prepare(self) -> None:
        raise web.HTTPError(404)


class IndexHandler(Base):
    def get(self) -> None:
        self.page("수료증 확인", None)


class VerifyPageHandler(Base):
    def get(self, serial: str) -> None:
        path = credential_file(self.lab, serial)
        if not path.is_file():
            self.set_status(404)
            self.page("없는 수료증", Verification(
                False, "동행랩 발급 기록에 없는 일련번호예요. 번호를 다시 확인해 주세요."))
            return
        result = verify_credential(self.lab, json.loads(path.read_text(encoding="utf-8")))
        self.page("수료증 확인", result)


class VerifyPostHandler(Base):
    def post(self) -> None:
        from_form = not self.request.headers.get("Content-Type", "").startswith("application/json")
        raw = self.get_body_argument("credential", "") if from_form else self.request.body.decode("utf-8", "replace")
        try:
            result = verify_credential(self.lab, json.loads(raw))
        except ValueError:
            result = Verification(False, "JSON 형식이 아니에요. 수료증 .json 파일의 내용을 그대로 넣어 주세요.")
        if from_form:
            self.page("수료증 확인", result)
        else:
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(_result_json(result), ensure_ascii=False))


class CredentialHandler(Base):
    def get(self, serial: str) -> None:
        self.json_file(credential_file(self.lab, serial))


class StatusListHandler(Base):
    def get(self) -> None:
        self.json_file(status_list_file(self.lab))


class IssuerHandler(Base):
    def get(self) -> None:
        self.json_file(issuer_file(self.lab))


def make_app(settings: Settings, prefix: str = "/services/certificates/") -> web.Application:
    return web.Application([
        (prefix, IndexHandler),
        (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
        (prefix + f"verify/{SERIAL_PATTERN}", VerifyPageHandler),
        (prefix + "verify", VerifyPostHandler),
        (prefix + f"credentials/{SERIAL_PATTERN}\\.json", CredentialHandler),
        (prefix + "status/1", StatusListHandler),
        (prefix + "issuer", IssuerHandler),
    ], lab=settings, prefix=prefix, default_handler_class=NotFoundHandler, xsrf_cookies=False)


def main() -> None:
    settings = load_settings()
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/certificates/")
    service_runtime.run("certificates", lambda: make_app(settings, prefix), max_body_size=MAX_BODY,
                        default_port=8006)


if __name__ == "__main__":
    main()
