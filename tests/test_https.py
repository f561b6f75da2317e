"""HTTPS on the real proxy: a test CA, configurable-http-proxy serving TLS, the HTTP redirect,
secure cookies, HSTS, a certificate renewal picked up without restarting the hub, and a real
browser that trusts only the test certificate."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from donghaeng.common.settings import SettingsError, load_settings
from labharness import ARTIFACTS, free_port_block, running_lab

PEOPLE = {"learner": ("김하늘", "learner", "ai-basics")}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("동행랩 시험 CA")).issuer_name(_name("동행랩 시험 CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_server_cert(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> x509.Certificate:
    """A leaf for 127.0.0.1/localhost signed by the test CA, written as fullchain.pem + privkey.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                           + ca.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "privkey.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert


def spki_hash(cert: x509.Certificate) -> str:
    """What chromium's --ignore-certificate-errors-spki-list takes: base64(sha256(SubjectPublicKeyInfo))."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return base64.b64encode(digest.finalize()).decode()


def served_serial(port: int, ca_file: Path) -> int:
    """Serial number of the certificate the proxy presents, verified against the test CA."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


@pytest.fixture(scope="module")
def tls():
    folder = Path(tempfile.mkdtemp(prefix="donghaeng-tls-", dir="/var/tmp"))
    ca_key, ca = make_ca(folder)
    leaf = make_server_cert(folder, ca_key, ca)
    try:
        yield {"folder": folder, "ca_key": ca_key, "ca": ca, "leaf": leaf}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def https_lab(tls):
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run as root (as .ci/run does)")
    https_port = free_port_block(2)
    folder = tls["folder"]
    extra = ("[model]\nenabled = false\n"
             f'[lab.https]\nenabled = true\ncert = "{folder / "fullchain.pem"}"\nkey = "{folder / "privkey.pem"}"\n'
             f"port = {https_port}\nhttp_port = {https_port + 1}\n")
    with running_lab(PEOPLE, extra, verify=ssl.create_default_context(cafile=str(folder / "ca.pem"))) as lab:
        yield lab


def test_https_on_without_a_key_file_names_the_missing_file(tmp_path):
    cert = tmp_path / "fullchain.pem"
    cert.write_text("not checked here")
    settings = tmp_path / "lab.toml"
    settings.write_text(f'[lab.https]\nenabled = true\ncert = "{cert}"\nkey = "{tmp_path / "privkey.pem"}"\n',
                        encoding="utf-8")
    with pytest.raises(SettingsError) as error:
        load_settings(settings)
    message = str(error.value)
    assert "lab.https" in message
    assert "https key 파일이 없어요" in message and str(tmp_path / "privkey.pem") in message


def test_https_serves_the_korean_login_page_and_http_redirects(https_lab, tls):
    lab = https_lab
    assert lab.url.startswith("https://127.0.0.1:")
    page = httpx.get(f"{lab.url}/hub/login", verify=lab.verify, timeout=30)
    assert page.status_code == 200 and "동행랩에 로그인해요" in page.text
    assert page.headers["strict-transport-security"] == "max-age=15552000"
    # a client that trusts only the usual CAs refuses the test certificate
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{lab.url}/hub/login", timeout=10)

    https_port = lab.settings.lab.https.port
    redirect = httpx.get(f"http://127.0.0.1:{https_port + 1}/hub/login?next=%2Fhub%2F", timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"{lab.url}/hub/login?next=%2Fhub%2F"


def test_login_cookies_are_secure_and_http_only(https_lab):
    """Every cookie of a first login (form, first-login step, chosen password) is Secure; all but _xsrf HttpOnly."""
    lab = https_lab
    login = lab.logins["learner"]
    xsrf_field = re.compile(r'name="_xsrf" value="([^"]+)"')
    with httpx.Client(base_url=lab.url, verify=lab.verify, timeout=30) as client:
        form = client.get("/hub/login")
        posted = client.post("/hub/login", data={"username": login, "password": lab.passwords[login],
                                                 "_xsrf": xsrf_field.search(form.text).group(1)})
        assert "새 비밀번호 정하기" in posted.text, posted.text
        new = f"{login}-Pw-2026"
        changed = client.post("/hub/change-password", data={
            "new_password": new, "confirm_password": new, "_xsrf": xsrf_field.search(posted.text).group(1)})
        assert changed.status_code == 302, changed.text
        lab.passwords[login] = new
    cookies = [c for r in (form, posted, changed) for c in r.headers.get_list("set-cookie")
               if not c.split(";")[0].endswith('=""')]  # not the ones being cleared
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"_xsrf", "jupyterhub-session-id", "jupyterhub-hub-login"} <= names, cookies
    for cookie in cookies:
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "secure" in flags, cookie
        if not cookie.startswith("_xsrf="):
            assert "httponly" in flags, cookie
    assert changed.headers["strict-transport-security"] == "max-age=15552000"


def test_a_renewed_certificate_is_served_after_the_documented_reload(https_lab, tls):
    """The certbot deploy hook of docs/admin-guide.md: stop the proxy; the hub restarts it with the new files."""
    lab, port = https_lab, https_lab.settings.lab.https.port
    assert served_serial(port, tls["folder"] / "ca.pem") == tls["leaf"].serial_number
    renewed = make_server_cert(tls["folder"], tls["ca_key"], tls["ca"])
    tls["leaf"] = renewed  # the browser test trusts the certificate served from now on
    pid = int((lab.settings.paths.state / "proxy.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if served_serial(port, tls["folder"] / "ca.pem") == renewed.serial_number:
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("the proxy never came back with the renewed certificate")
    while time.monotonic() < deadline:  # the hub puts its routes back into the new proxy
        login = httpx.get(f"{lab.url}/hub/login", verify=lab.verify, timeout=30)
        if login.status_code == 200:
            break
        time.sleep(0.5)
    assert login.status_code == 200 and "동행랩에 로그인해요" in login.text


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_browser_logs_in_over_https_trusting_only_the_test_certificate(https_lab, tls):
    sync_api = pytest.importorskip("playwright.sync_api")
    lab = https_lab
    login = lab.logins["learner"]
    with sync_api.sync_playwright() as p:
        untrusting = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = untrusting.new_context(ignore_https_errors=False).new_page()
            with pytest.raises(sync_api.Error, match="ERR_CERT_AUTHORITY_INVALID"):
                page.goto(f"{lab.url}/hub/login")
        finally:
            untrusting.close()

        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            *CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(tls['leaf'])}"])
        try:
            context = browser.new_context(locale="ko-KR", ignore_https_errors=False)
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{lab.settings.lab.https.port + 1}/hub/login")  # redirected to https
            assert page.url.startswith(f"{lab.url}/hub/login")
            sync_api.expect(page.locator("h1#login-title")).to_contain_text("동행랩에 로그인해요")
            page.get_by_label("아이디").fill(login)
            page.get_by_label("비밀번호").fill(lab.passwords[login])
            page.locator("#login_submit").click()
            page.wait_for_url(re.compile(r"/hub/change-password|/services/home/"), timeout=60_000)
            if "/hub/change-password" in page.url:  # first login: choose a password
                new = f"{login}-Pw-2026"
                page.locator("#new_password").fill(new)
                page.locator("#confirm_password").fill(new)
                page.locator("#change_submit").click()
                lab.passwords[login] = new
            page.wait_for_url(re.compile(r"/services/home/"), timeout=60_000)
            assert page.url.startswith(f"{lab.url}/services/home/")
            sync_api.expect(page).to_have_title(re.compile("학습 홈"))
            assert page.evaluate("window.isSecureContext") is True
            page.screenshot(path=str(ARTIFACTS / "https-home.png"), full_page=True)
        finally:
            browser.close()
