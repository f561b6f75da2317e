"""Roster-based password login for JupyterHub, with a forced password change on first login.

Why not NativeAuthenticator: 1.3.0 fails every login on JupyterHub 6 and offers self sign-up, which
a cohort-based course does not want.  Accounts come only from the roster (``donghaeng cohort
import``); passwords are bcrypt hashes in the cohort database.  A first login with the initial
password never creates a session: it leads to the change form, and only the new password logs in.
"""

from __future__ import annotations

import asyncio
import hmac
from functools import cached_property
from pathlib import Path

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from tornado import web
from traitlets import Int, List, Unicode, default

from .cohort import Account, Cohort, PasswordPolicyError
from .roles import groups_for

FIRST_LOGIN_COOKIE = "donghaeng-first-login"
FIRST_LOGIN_MINUTES = 15
WRONG_LOGIN = "아이디나 비밀번호가 맞지 않아요. 다시 확인해 주세요."


class RosterAuthenticator(Authenticator):
    """Authenticate against the cohort database written by ``donghaeng cohort import``."""

    cohort_db = Unicode(help="Path of the cohort SQLite database.").tag(config=True)
    min_password_length = Int(8, help="Minimum length of a learner-chosen password.").tag(config=True)
    course_ids = List(Unicode(), help="Courses configured in lab.toml.").tag(config=True)

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        return False

    @cached_property
    def cohort(self) -> Cohort:
        return Cohort(Path(self.cohort_db))

    async def verify(self, username: str, password: str) -> Account | None:
        # bcrypt is deliberately slow: keep it off the hub's event loop
        return await asyncio.to_thread(self.cohort.verify, self.normalize_username(username), password)

    async def authenticate(self, handler, data: dict) -> dict | None:
        account = await self.verify(data.get("username", ""), data.get("password", ""))
        if account is None or account.must_change:
            if account is not None and isinstance(handler, RosterLoginHandler):
                handler.first_login = account  # right password, but it must be changed first
            return None
        return self._auth_model(account)

    def _auth_model(self, account: Account) -> dict:
        person = account.person
        return {"name": person.login, "admin": person.role == "admin",
                "groups": groups_for(person, self.course_ids)}

    async def refresh_user(self, user, handler=None) -> dict | bool:
        """Re-read role and courses from the cohort, so a roster re-import applies without restart."""
        account = await asyncio.to_thread(self.cohort.get, user.name)
        return False if account is None else self._auth_model(account)

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        return self.cohort.get(username) is not None

    def get_handlers(self, app) -> list[tuple[str, type]]:
        return [("/login", RosterLoginHandler), ("/change-password", ChangePasswordHandler)]


class RosterLoginHandler(LoginHandler):
    """The stock login form, plus the detour to the change form on first login.

    bcrypt costs ~0.25 s of CPU per check, and a class logs in all at once: a first login checks a
    password once and hashes the new one once, nothing more.
    """

    first_login: Account | None = None  # set by RosterAuthenticator.authenticate

    async def post(self) -> None:
        username = self.get_argument("username", default="", strip=True)
        password = self.get_argument("password", default="")
        user = await self.login_user({"username": username, "password": password})
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        if self.first_login is not None:
            # the signed cookie names the account and fingerprints the initial password, so the
            # change form can refuse it as the new one without another bcrypt check
            login = self.first_login.login
            self.set_signed_cookie(
                FIRST_LOGIN_COOKIE, f"{login}\n{password_digest(self, login, password)}",
                expires_days=FIRST_LOGIN_MINUTES / 1440, path=self.hub.base_url, httponly=True,
            )
            self.finish(await render_change_form(self, first_login=True))
            return
        self.set_status(403)
        self.finish(await self._render(login_error=WRONG_LOGIN, username=username[:32]))


def password_digest(handler: BaseHandler, login: str, password: str) -> str:
    """A keyed digest (the hub's cookie secret) of a password, to compare without bcrypt."""
    return hmac.new(handler.settings["cookie_secret"], f"{login}\0{password}".encode(), "sha256").hexdigest()


async def render_change_form(handler: BaseHandler, first_login: bool, error: str | None = None) -> str:
    return await handler.render_template(
        "change-password.html",
        first_login=first_login,
        error=error,
        min_length=handler.authenticator.min_password_length,
        next=handler.get_argument("next", default=""),
        xsrf=handler.xsrf_token.decode("ascii"),
        action=handler.hub.base_url + "change-password",
    )


class ChangePasswordHandler(BaseHandler):
    """Set a new password: right after a first login, or any time while logged in."""

    def _pending_first_login(self) -> tuple[str, str] | None:
        """(login, digest of the initial password) while a first login is under way."""
        value = self.get_signed_cookie(FIRST_LOGIN_COOKIE, max_age_days=FIRST_LOGIN_MINUTES / 1440)
        login, _, digest = (value or b"").decode().partition("\n")
        return (login, digest) if login and digest else None

    async def get(self) -> None:
        first_login = self._pending_first_login() is not None
        if not first_login and self.current_user is None:
            self.redirect(self.settings["login_url"])
            return
        self.finish(await render_change_form(self, first_login=first_login))

    async def post(self) -> None:
        auth: RosterAuthenticator = self.authenticator
        pending = self._pending_first_login()
        first_login = pending is not None
        new = self.get_argument("new_password", "")
        if pending is not None:
            login, digest = pending
            same_as_now = hmac.compare_digest(password_digest(self, login, new), digest)
        else:
            user = self.current_user
            if user is None:
                raise web.HTTPError(403, "로그인이 필요해요. 다시 로그인해 주세요.")
            login, current = user.name, self.get_argument("current_password", "")
            if await auth.verify(login, current) is None:
                self.set_status(400)
                self.finish(await render_change_form(self, False, "지금 쓰는 비밀번호가 맞지 않아요."))
                return
            same_as_now = new == current
        if new != self.get_argument("confirm_password", ""):
            error = "새 비밀번호 두 칸이 서로 달라요. 같게 입력해 주세요."
        elif same_as_now:
            error = "지금 비밀번호와 다른 새 비밀번호를 정해 주세요."
        else:
            try:
                await asyncio.to_thread(auth.cohort.set_password, login, new, auth.min_password_length)
                error = None
            except PasswordPolicyError as e:
                error = str(e)
        if error:
            self.set_status(400)
            self.finish(await render_change_form(self, first_login, error))
            return
        self.clear_cookie(FIRST_LOGIN_COOKIE, path=self.hub.base_url)
        # The password was checked a moment ago and has just been set: log in without checking it again.
        account = await asyncio.to_thread(auth.cohort.get, login)
        if account is None:  # removed from the roster meanwhile
            raise web.HTTPError(403, WRONG_LOGIN)
        user = await self.auth_to_user(auth._auth_model(account))
        self.set_login_cookie(user)
        self.log.info("User logged in after changing the password: %s", user.name)
        self.redirect(self.get_next_url(user))
