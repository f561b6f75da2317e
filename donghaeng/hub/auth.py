"""Roster-based password login for JupyterHub, with a forced password change on first login.

Why not NativeAuthenticator: 1.3.0 fails every login on JupyterHub 6 and offers self sign-up, which
a cohort-based course does not want.  Accounts come only from the roster (``donghaeng cohort
import``); passwords are bcrypt hashes in the cohort database.  A first login with the initial
password never creates a session: it leads to the change form, and only the new password logs in.

A password check costs ~0.25 s of CPU, so failed checks are throttled per account and per client
address before any is spent (:class:`LoginThrottle`).  A password change or reset logs the account
out everywhere (:func:`end_sessions`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import secrets
from collections import OrderedDict
from functools import cached_property, partial
from pathlib import Path

from jupyterhub import orm
from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from jupyterhub.utils import compare_token, hash_token, new_token
from sqlalchemy.orm import Session
from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, List, Unicode, default

from donghaeng.common import safe_fs
from donghaeng.common.cohort import Account, Cohort, PasswordPolicyError
from donghaeng.hub.roles import groups_for
from donghaeng.common.roster import Person, _login_problem

FIRST_LOGIN_COOKIE = "donghaeng-first-login"
FIRST_LOGIN_MINUTES = 15
WRONG_LOGIN = "아이디나 비밀번호가 맞지 않아요. 다시 확인해 주세요."
FIRST_LOGIN_USED = "이 화면은 더 쓸 수 없어요. 비밀번호를 이미 바꿨거나 새로 받았어요. 다시 로그인해 주세요."
CHANGED_MEANWHILE = "그사이 비밀번호가 바뀌었어요. 다시 로그인해 주세요."
# Notes JupyterHub gives the token a server runs with (jupyterhub.user.User.spawn)
SERVER_TOKEN_NOTES = ("Server at ", "retrieved from spawner ")
THROTTLE_KEY_CHARS = 64  # logins are at most 32 characters; a longer "login" is not worth storing


def too_many_failures(seconds: float) -> str:
    """The Korean answer to a throttled try, with the wait rounded up to what a person reads."""
    when = f"{math.ceil(seconds)}초" if seconds < 60 else f"{math.ceil(seconds / 60)}분"
    return f"비밀번호를 여러 번 틀려서 잠시 막아 두었어요. {when} 뒤에 다시 해 주세요."


class FailureBudget:
    """Failed password checks each key may spend: *burst* at once, then one every *interval* seconds.

    A token bucket kept as one float per key (GCRA): the time at which the key's budget is whole
    again.  At most *max_keys* keys are kept; beyond that the key that failed longest ago is
    forgotten, so a flood of made-up logins costs memory once and not without bound.
    """

    def __init__(self, burst: int, interval: float, max_keys: int) -> None:
        self.burst, self.interval, self.max_keys = burst, interval, max_keys
        self._whole_at: OrderedDict[str, float] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds before *key* may fail once more (0: it may now)."""
        whole_at = max(self._whole_at.get(key, now), now)
        return max(0.0, whole_at + self.interval - now - self.burst * self.interval)

    def spend(self, key: str, now: float) -> None:
        self._whole_at[key] = max(self._whole_at.get(key, now), now) + self.interval
        self._whole_at.move_to_end(key)
        while len(self._whole_at) > self.max_keys:
            self._whole_at.popitem(last=False)

    def refund(self, key: str) -> None:
        if key in self._whole_at:
            self._whole_at[key] -= self.interval

    def forget(self, key: str) -> None:
        self._whole_at.pop(key, None)


class LoginThrottle:
    """Failed logins per account (guessing one person's password) and per client address (a loop
    that would keep the hub's CPUs busy with bcrypt).

    A try is charged before its password is checked and refunded when it succeeds, so parallel
    tries cannot outrun the budget.  Logins are keyed as typed, existing or not, so the throttle
    answers an unknown login exactly as a real one and tells nothing about the roster.
    """

    def __init__(self, accounts: FailureBudget, addresses: FailureBudget) -> None:
        self.accounts, self.addresses = accounts, addresses

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def wait(self, login: str, address: str) -> float:
        now = self._now()
        return max(self.accounts.wait(login[:THROTTLE_KEY_CHARS], now), self.addresses.wait(address, now))

    def spend(self, login: str, address: str) -> None:
        now = self._now()
        self.accounts.spend(login[:THROTTLE_KEY_CHARS], now)
        self.addresses.spend(address, now)

    def succeeded(self, login: str, address: str) -> None:
        """The right password: the account starts afresh; the address gets this try back."""
        self.accounts.forget(login[:THROTTLE_KEY_CHARS])
        self.addresses.refund(address)

    def forget_account(self, login: str) -> None:
        self.accounts.forget(login[:THROTTLE_KEY_CHARS])


def client_address(request: HTTPServerRequest) -> str:
    """The address the browser connected from, as our proxy reports it.

    JupyterHub lets tornado take ``X-Real-Ip`` over ``X-Forwarded-For`` (``xheaders``), and the proxy
    passes a browser's ``X-Real-Ip`` through unchanged: a loop could name a new address at every try.
    The proxy appends the peer it saw as the last ``X-Forwarded-For`` entry, which a browser cannot
    forge; without the header (no proxy in between) it is the connection's own peer.
    """
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.rsplit(",", 1)[-1].strip() or request.remote_ip


def end_sessions(db: Session, orm_user: orm.User) -> int:
    """Log *orm_user* out everywhere; return how many tokens were revoked.

    The hub finds the user of a login cookie by ``cookie_id``: a new one invalidates every cookie
    issued so far.  Logins to servers and services are OAuth tokens, revoked with every other token
    the person holds, except the ones their servers run with, so that running notebooks go on.
    """
    orm_user.cookie_id = new_token()
    revoked = [token for token in orm_user.api_tokens
               if token.session_id is not None or not (token.note or "").startswith(SERVER_TOKEN_NOTES)]
    for token in revoked:
        db.delete(token)
    db.commit()
    return len(revoked)


class RosterAuthenticator(Authenticator):
    """Authenticate against the cohort database written by ``donghaeng cohort import``."""

    cohort_db = Unicode(help="Path of the cohort SQLite database.").tag(config=True)
    min_password_length = Int(8, help="Minimum length of a learner-chosen password.").tag(config=True)
    course_ids = List(Unicode(), help="Courses configured in lab.toml.").tag(config=True)
    account_failure_burst = Int(
        5, help="Wrong passwords one login may have in a row before it must wait.").tag(config=True)
    account_failure_interval = Float(
        120.0, help="Seconds after which a throttled login may try once more (one try per interval).",
    ).tag(config=True)
    address_failure_burst = Int(
        30, help="Failed logins one client address may have in a row (a class behind one NAT shares it).",
    ).tag(config=True)
    address_failure_interval = Float(
        2.0, help="Seconds after which a throttled address may fail once more: at most one bcrypt per "
        "interval is spent for it.").tag(config=True)
    throttle_max_keys = Int(
        10_000, help="Logins and addresses the throttle remembers at most (about 160 bytes each).",
    ).tag(config=True)
    sign_out_check_interval = Float(
        5.0, help="Seconds between checks for accounts reset by `donghaeng cohort reset-password`, "
        "which are then logged out everywhere.").tag(config=True)

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        return False

    @cached_property
    def cohort(self) -> Cohort:
        return Cohort(Path(self.cohort_db))

    @cached_property
    def throttle(self) -> LoginThrottle:
        return LoginThrottle(
            FailureBudget(self.account_failure_burst, self.account_failure_interval, self.throttle_max_keys),
            FailureBudget(self.address_failure_burst, self.address_failure_interval, self.throttle_max_keys),
        )

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

    async def sign_out_reset_accounts(self, db: Session) -> None:
        """Log out everywhere the accounts an admin reset (the reset runs outside the hub)."""
        for login in await asyncio.to_thread(self.cohort.pending_sign_outs):
            orm_user = orm.User.find(db, login)
            revoked = end_sessions(db, orm_user) if orm_user is not None else 0
            self.throttle.forget_account(login)  # the new initial password may be tried at once
            await asyncio.to_thread(self.cohort.signed_out, login)
            self.log.info("Password of %s was reset: logged out everywhere (%d tokens revoked)",
                          login, revoked)

    def get_handlers(self, app) -> list[tuple[str, type]]:
        # JupyterHub gives an authenticator no start-up hook; get_handlers runs once, with the app,
        # inside the hub's event loop.
        self._sign_out_check = PeriodicCallback(partial(self.sign_out_reset_accounts, app.db),
                                                self.sign_out_check_interval * 1000)
        self._sign_out_check.start()
        return [("/login", RosterLoginHandler), ("/change-password", ChangePasswordHandler),
                ("/first-admin", FirstAdminHandler)]


def refuse_throttled(handler: BaseHandler, seconds: float) -> str:
    """Answer 429 with Retry-After; return the Korean message for the page."""
    handler.set_status(429)
    handler.set_header("Retry-After", str(math.ceil(seconds)))
    return too_many_failures(seconds)


class RosterLoginHandler(LoginHandler):
    """The stock login form, plus the throttle and the detour to the change form on first login.

    bcrypt costs ~0.25 s of CPU per check, and a class logs in all at once: a first login checks a
    password once and hashes the new one once, nothing more.
    """

    first_login: Account | None = None  # set by RosterAuthenticator.authenticate

    async def post(self) -> None:
        auth: RosterAuthenticator = self.authenticator
        username = self.get_argument("username", default="", strip=True)
        password = self.get_argument("password", default="")
        login, address = auth.normalize_username(username), client_address(self.request)
        wait = auth.throttle.wait(login, address)
        if wait:
            message = refuse_throttled(self, wait)
            self.finish(await self._render(login_error=message, username=username[:32]))
            return
        auth.throttle.spend(login, address)
        user = await self.login_user({"username": username, "password": password})
        if user or self.first_login is not None:
            auth.throttle.succeeded(login, address)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        if self.first_login is not None:
            # The signed cookie names the account, fingerprints the initial password (the change form
            # refuses it as the new one without another bcrypt check) and the stored hash (the form
            # works only while that hash is current: once, and not after a reset).
            account = self.first_login
            value = "\n".join((account.login, keyed_digest(self, "password", account.login, password),
                               keyed_digest(self, "hash", account.login, account.password_hash)))
            self.set_signed_cookie(FIRST_LOGIN_COOKIE, value, expires_days=FIRST_LOGIN_MINUTES / 1440,
                                   path=self.hub.base_url, httponly=True, secure=self.request.protocol == "https")
            self.finish(await render_change_form(self, first_login=True))
            return
        self.set_status(403)
        self.finish(await self._render(login_error=WRONG_LOGIN, username=username[:32]))


def keyed_digest(handler: BaseHandler, kind: str, login: str, secret: str) -> str:
    """A digest keyed with the hub's cookie secret, to compare a password or hash without bcrypt."""
    return hmac.new(handler.settings["cookie_secret"], f"{kind}\0{login}\0{secret}".encode(),
                    "sha256").hexdigest()


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
    """Set a new password: right after a first login, or any time while logged in.

    Either way the account is then logged out everywhere else, and logged in again here.
    """

    async def _pending_first_login(self) -> tuple[Account, str] | None:
        """(account, digest of its initial password) while a first login is under way.

        None without the cookie, and once the stored hash is no longer the one the cookie was issued
        for: the password was set with it already, or reset since.
        """
        value = self.get_signed_cookie(FIRST_LOGIN_COOKIE, max_age_days=FIRST_LOGIN_MINUTES / 1440)
        parts = (value or b"").decode().split("\n")
        if len(parts) != 3:
            return None
        login, password_digest, hash_digest = parts
        account = await asyncio.to_thread(self.authenticator.cohort.get, login)
        if account is None or not account.must_change or not hmac.compare_digest(
                hash_digest, keyed_digest(self, "hash", login, account.password_hash)):
            return None
        return account, password_digest

    async def get(self) -> None:
        first_login = await self._pending_first_login() is not None
        if not first_login and self.current_user is None:
            self.redirect(self.settings["login_url"])
            return
        self.finish(await render_change_form(self, first_login=first_login))

    async def post(self) -> None:
        auth: RosterAuthenticator = self.authenticator
        pending = await self._pending_first_login()
        new = self.get_argument("new_password", "")
        if pending is not None:
            account, password_digest = pending
            same_as_now = hmac.compare_digest(keyed_digest(self, "password", account.login, new),
                                              password_digest)
        else:
            user = self.current_user
            if user is None:
                if self.get_cookie(FIRST_LOGIN_COOKIE):
                    self.clear_cookie(FIRST_LOGIN_COOKIE, path=self.hub.base_url)
                    raise web.HTTPError(403, FIRST_LOGIN_USED)
                raise web.HTTPError(403, "로그인이 필요해요. 다시 로그인해 주세요.")
            current = self.get_argument("current_password", "")
            address = client_address(self.request)
            wait = auth.throttle.wait(user.name, address)
            if wait:
                self.finish(await render_change_form(self, False, refuse_throttled(self, wait)))
                return
            auth.throttle.spend(user.name, address)
            account = await auth.verify(user.name, current)
            if account is None:
                self.set_status(400)
                self.finish(await render_change_form(self, False, "지금 쓰는 비밀번호가 맞지 않아요."))
                return
            auth.throttle.succeeded(user.name, address)
            same_as_now = new == current
        changed = False
        if new != self.get_argument("confirm_password", ""):
            error = "새 비밀번호 두 칸이 서로 달라요. 같게 입력해 주세요."
        elif same_as_now:
            error = "지금 비밀번호와 다른 새 비밀번호를 정해 주세요."
        else:
            try:
                changed = await asyncio.to_thread(auth.cohort.set_password, account.login, new,
                                                  auth.min_password_length, account.password_hash)
                error = None
            except PasswordPolicyError as e:
                error = str(e)
        if error:
            self.set_status(400)
            self.finish(await render_change_form(self, pending is not None, error))
            return
        self.clear_cookie(FIRST_LOGIN_COOKIE, path=self.hub.base_url)
        if not changed:  # reset or changed elsewhere since the form was checked
            raise web.HTTPError(403, CHANGED_MEANWHILE)
        # The password was checked a moment ago and has just been set: log in without checking it again.
        account = await asyncio.to_thread(auth.cohort.get, account.login)
        if account is None:  # removed from the roster meanwhile
            raise web.HTTPError(403, WRONG_LOGIN)
        user = await self.auth_to_user(auth._auth_model(account))
        revoked = end_sessions(self.db, user.orm_user)
        self.set_login_cookie(user)
        self.log.info("%s changed the password: logged out elsewhere (%d tokens revoked), logged in here",
                      user.name, revoked)
        self.redirect(self.get_next_url(user))


# -- the first admin of a lab started without a roster ---------------------------------------------
FIRST_ADMIN_TOKEN = "first-admin-token"  # in the root-only state folder, next to the cohort database
FIRST_ADMIN_GONE = "이 주소는 더 쓸 수 없어요. 첫 관리자 계정을 이미 만들었어요. 로그인해 주세요."
FIRST_ADMIN_WRONG = "토큰이 맞지 않아요. donghaeng up이 보여 준 토큰을 그대로 넣어 주세요."


def issue_first_admin_token(state: Path) -> str:
    """A new one-time token for ``/hub/first-admin``, replacing any earlier one; only its hash is kept."""
    token = secrets.token_urlsafe(24)
    safe_fs.write_text(state, FIRST_ADMIN_TOKEN, hash_token(token) + "\n", mode=0o600)
    return token


class FirstAdminHandler(BaseHandler):
    """Set up the first admin with the one-time token ``donghaeng up`` printed (labs without ``--demo``).

    The token is claimed by renaming its file, so it works once even when two forms race; a form that
    fails after the claim (a password the policy refuses) gives it back.
    """

    @property
    def token_file(self) -> Path:
        return Path(self.authenticator.cohort_db).parent / FIRST_ADMIN_TOKEN

    async def _render_form(self, error: str | None = None, **values: str) -> None:
        self.finish(await self.render_template(
            "first-admin.html", error=error, done=False, min_length=self.authenticator.min_password_length,
            xsrf=self.xsrf_token.decode("ascii"), action=self.hub.base_url + "first-admin", **values))

    async def get(self) -> None:
        if not self.token_file.exists():
            raise web.HTTPError(404, FIRST_ADMIN_GONE)
        await self._render_form()

    async def post(self) -> None:
        auth: RosterAuthenticator = self.authenticator
        address = client_address(self.request)
        wait = auth.throttle.wait("\0first-admin", address)
        if wait:
            message = refuse_throttled(self, wait)
            await self._render_form(message)
            return
        login = self.get_argument("login", "", strip=True).lower()
        name = self.get_argument("name", "", strip=True)
        new = self.get_argument("new_password", "")
        try:
            stored = self.token_file.read_text().strip()
        except FileNotFoundError:
            raise web.HTTPError(403, FIRST_ADMIN_GONE) from None
        if not compare_token(stored, self.get_argument("token", "", strip=True)):
            auth.throttle.spend("\0first-admin", address)
            self.set_status(403)
            await self._render_form(FIRST_ADMIN_WRONG, login=login, person_name=name)
            return
        error = _login_problem(login) or (
            "이름을 적어 주세요." if not name or len(name) > 50 else
            "새 비밀번호 두 칸이 서로 달라요. 같게 입력해 주세요." if new != self.get_argument("confirm_password", "")
            else None)
        if error is None and await asyncio.to_thread(auth.cohort.get, login) is not None:
            error = "이미 있는 아이디예요. 다른 아이디를 정해 주세요."
        if error is None:
            try:  # the policy check alone: no such account yet, so nothing is written
                await asyncio.to_thread(auth.cohort.set_password, login, new, auth.min_password_length)
            except PasswordPolicyError as e:
                error = str(e)
        if error:
            self.set_status(400)
            await self._render_form(error, login=login, person_name=name)
            return
        claimed = self.token_file.with_name(f".{FIRST_ADMIN_TOKEN}.{secrets.token_hex(6)}")
        try:
            os.rename(self.token_file, claimed)
        except FileNotFoundError:  # another form used it a moment ago
            raise web.HTTPError(403, FIRST_ADMIN_GONE) from None
        try:
            await asyncio.to_thread(auth.cohort.import_people, [Person(login, name, "admin", ())])
            await asyncio.to_thread(auth.cohort.set_password, login, new, auth.min_password_length)
        except BaseException:
            os.rename(claimed, self.token_file)
            raise
        claimed.unlink()
        self.log.info("First admin %s set up with the one-time token", login)
        self.finish(await self.render_template("first-admin.html", done=True, login=login,
                                               login_url=self.settings["login_url"]))
