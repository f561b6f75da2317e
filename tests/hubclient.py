"""A browser-like HTTP client for the hub: real login form, xsrf cookies, spawn, user API."""

from __future__ import annotations

import re
import time

import httpx

XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


class HubUser:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.http = httpx.Client(base_url=url, follow_redirects=True, timeout=60)
        self.token: str | None = None

    def _xsrf(self, page: str) -> str:
        match = XSRF_FIELD.search(page)
        assert match, "form without _xsrf field"
        return match.group(1)

    def submit_login(self, password: str) -> httpx.Response:
        page = self.http.get("/hub/login")
        return self.http.post("/hub/login", data={
            "username": self.name, "password": password, "_xsrf": self._xsrf(page.text)})

    def change_password(self, form_page: str, new: str, confirm: str | None = None,
                        current: str | None = None) -> httpx.Response:
        """Submit the change form (*current*: the password asked for when already logged in)."""
        data = {"new_password": new, "confirm_password": confirm or new, "_xsrf": self._xsrf(form_page)}
        if current is not None:
            data["current_password"] = current
        return self.http.post("/hub/change-password", data=data)

    @classmethod
    def logged_in(cls, lab, key: str) -> "HubUser":
        """Log roster member *key* in (choosing a password on first login) with an API token."""
        login = lab.logins[key]
        user = cls(lab.url, login)
        page = user.submit_login(lab.passwords[login])
        if "새 비밀번호 정하기" in page.text:  # first login: choose a password of our own
            new = f"{login}-Pw-2026"
            user.change_password(page.text, new)
            lab.passwords[login] = new
        user.make_token()
        return user

    def stop(self, timeout: float = 60) -> None:
        self.api("DELETE", f"/hub/api/users/{self.name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api("GET", f"/hub/api/users/{self.name}").json()["servers"]:
                return
            time.sleep(0.3)
        raise TimeoutError(f"server of {self.name} did not stop")

    def _api_headers(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path="/hub/") or ""}

    def make_token(self) -> str:
        r = self.http.post(f"/hub/api/users/{self.name}/tokens", json={"note": "test"},
                           headers=self._api_headers())
        r.raise_for_status()
        self.token = r.json()["token"]
        return self.token

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Call with this user's API token (hub API or their own server)."""
        assert self.token, "make_token() first"
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def spawn(self, timeout: float = 120) -> float:
        """Start this user's server and wait until it is ready; return the seconds it took."""
        start = time.monotonic()
        r = self.api("POST", f"/hub/api/users/{self.name}/server")
        assert r.status_code in (201, 202) or "already running" in r.text, r.text
        while time.monotonic() - start < timeout:
            model = self.api("GET", f"/hub/api/users/{self.name}").json()
            server = model["servers"].get("")
            if server and server["ready"]:
                return time.monotonic() - start
            time.sleep(0.5)
        raise TimeoutError(f"server of {self.name} not ready after {timeout}s")

    def server(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.api(method, f"/user/{self.name}/{path.lstrip('/')}", **kwargs)
