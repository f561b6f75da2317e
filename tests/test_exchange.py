"""The exchange service on a real hub: hostile submissions, impersonation, forged times and who may do what.

Learners submit through their own servers (nbgrader's submit, as the JupyterLab panel does) and, to play
a learner who bypasses their server, straight to the service with their own hub token and a hand-made
tar.  Every hostile upload is refused with a Korean message or stamped by the service; nothing outside
the submission reaches ``submitted/``, and the other learner's submissions stay as they were.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import httpx
import nbformat
import pytest
from nbgrader.utils import parse_utc

from donghaeng.services.exchange.hub import grader_token_file

pytestmark = pytest.mark.slow
COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
FOLDER = f"{COURSE}/{ASSIGNMENT}"
NOTEBOOK = f"{FOLDER}/{ASSIGNMENT}.ipynb"
HANGUL = "가"


def run_as(user: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True)


def service(lab, method: str, path: str, token: str | None, **kwargs) -> httpx.Response:
    """A request to the exchange service through the hub's public proxy."""
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.request(method, f"{lab.url}/services/exchange/api/{path}", headers=headers, timeout=60, **kwargs)


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, data: bytes | None = b"x", kind: bytes = tarfile.REGTYPE, target: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, data


def notebook_member(text: str = "{}") -> tuple:
    return member(f"{ASSIGNMENT}.ipynb", text.encode())


def submit_raw(lab, user, body: bytes, **params: str) -> httpx.Response:
    return service(lab, "POST", f"courses/{COURSE}/submissions/{ASSIGNMENT}", user.token,
                   content=body, params=params)


def submit_in_server(user) -> dict:
    r = user.server("POST", "assignments/submit", data={"course_id": COURSE, "assignment_id": ASSIGNMENT})
    assert r.status_code == 200, r.text
    return r.json()


def my_submissions(lab, user) -> list[dict]:
    r = service(lab, "GET", "submissions", user.token, params={"course": COURSE})
    assert r.status_code == 200, r.text
    return r.json()


def open_and_submit(lab, user) -> Path:
    """Release the module, open it (the learner's server fetches it from the service), submit it through
    the toolbar's endpoint and collect it as the trainer does: the collected folder."""
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    opened = user.server("GET", "donghaeng/open", params={"course": COURSE, "assignment": ASSIGNMENT})
    assert opened.status_code == 200 and str(opened.url).endswith(f"lab/tree/{NOTEBOOK}"), opened.text
    r = user.server("POST", "donghaeng/api/submit", json={"path": NOTEBOOK, "request_id": f"{user.name}-1"})
    assert r.status_code == 200 and "월" in r.json()["receipt"], r.text
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    collected = lab.settings.paths.course_dir(COURSE) / "submitted" / user.name / ASSIGNMENT
    assert (collected / f"{ASSIGNMENT}.ipynb").is_file() and (collected / "timestamp.txt").is_file()
    return collected


def grader_token(lab) -> str:
    return grader_token_file(lab.settings, f"grader-{COURSE}").read_text().strip()


@pytest.fixture(scope="module")
def learners(lab, logged_in):
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    ready = {}
    for key in ("learner", "learner2"):
        user = logged_in(key)
        user.spawn()
        # open the module as the learner home does: fetched, or its missing notebook put back (the lab is
        # shared with other test files, where learner2 deleted it)
        r = user.server("GET", "donghaeng/open", params={"course": COURSE, "assignment": ASSIGNMENT})
        assert r.status_code == 200 and str(r.url).endswith(f"lab/tree/{NOTEBOOK}"), r.text
        ready[key] = user
    return ready


@pytest.fixture(scope="module")
def other_submitted(lab, learners) -> dict:
    """learner2's honest submission, which nothing below may change."""
    assert submit_in_server(learners["learner2"])["success"]
    return {s["id"]: s for s in my_submissions(lab, learners["learner2"])}


def home_of(lab, user) -> Path:
    return lab.settings.lab.home_root / user.name


@pytest.mark.parametrize("plant, refusal", [
    (lambda c, d: ["ln", "-s", str(c / "gradebook.db"), str(d / "gb")], "링크"),
    (lambda c, d: ["ln", "-s", str(c / "source"), str(d / "src")], "링크"),
    (lambda c, d: ["ln", str(d / f"{ASSIGNMENT}.ipynb"), str(d / "copy.ipynb")], "하드 링크"),
    (lambda c, d: ["mkfifo", str(d / "pipe")], "특수 파일"),
    (lambda c, d: ["touch", str(d / "bad\nname.txt")], "이름"),
    (lambda c, d: ["truncate", "-s", "200M", str(d / "sparse.bin")], "너무 커요"),
])
def test_learners_server_refuses_what_is_not_the_assignment(lab, learners, other_submitted, plant, refusal):
    """nbgrader submit in the learner's own server refuses links, devices, odd names and sparse giants."""
    learner = learners["learner"]
    folder = home_of(lab, learner) / FOLDER
    cmd = plant(lab.settings.paths.course_dir(COURSE), folder)
    planted = Path(cmd[-1])
    assert run_as(learner.name, *cmd).returncode == 0
    try:
        before = my_submissions(lab, learner)
        result = submit_in_server(learner)
        assert not result["success"] and refusal in result["value"], result
        assert my_submissions(lab, learner) == before  # nothing was received
    finally:
        planted.unlink()


@pytest.mark.parametrize("members, refusal", [
    ([member("gb", None, tarfile.SYMTYPE, "/srv/donghaeng/courses/ai-basics/gradebook.db")], "링크"),
    ([member("src", None, tarfile.SYMTYPE, "../../courses/ai-basics/source")], "링크"),
    ([member("copy.ipynb", None, tarfile.LNKTYPE, f"{ASSIGNMENT}.ipynb")], "하드 링크"),
    ([member("pipe", None, tarfile.FIFOTYPE)], "특수 파일"),
    ([member("null", None, tarfile.CHRTYPE)], "특수 파일"),
    ([member("bad\nname.txt")], "이름"),
    ([member("../escape.txt")], "이름"),
    ([member("/etc/escape.txt")], "이름"),
    ([member(f"tiny/{i}.txt") for i in range(10_000)], "너무 많아요"),
])
def test_service_refuses_hostile_archives(lab, learners, other_submitted, members, refusal):
    """A learner who bypasses their server and uploads a hand-made tar gets the same refusals."""
    learner = learners["learner"]
    before = my_submissions(lab, learner)
    r = submit_raw(lab, learner, tar_of(notebook_member(), *members))
    assert r.status_code in (413, 422), r.text
    assert refusal in r.json()["message"]
    assert any(HANGUL <= ch <= "힣" for ch in r.json()["message"])
    assert my_submissions(lab, learner) == before


def test_service_refuses_a_giant_before_reading_it(lab, learners):
    """A header claiming a 200 MB file is refused on the header alone (nothing close to that is sent)."""
    info = tarfile.TarInfo("sparse.bin")
    info.size = 200 << 20
    body = info.tobuf(tarfile.PAX_FORMAT) + b"\0" * 4096
    r = submit_raw(lab, learners["learner"], body)
    assert r.status_code == 422 and "너무 커요" in r.json()["message"], r.text


def test_submission_is_stamped_with_the_callers_id_and_the_services_time(lab, learners, other_submitted):
    """Claiming learner2's id and back-dating timestamp.txt: filed under the caller, at the service's time."""
    learner, learner2 = learners["learner"], learners["learner2"]
    nb = nbformat.writes(nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"]))
    start = datetime.now(timezone.utc)
    r = submit_raw(lab, learner, tar_of(
        member(f"{ASSIGNMENT}.ipynb", nb.encode()),
        member("timestamp.txt", b"2000-01-01 00:00:00.000000 UTC"),
        member("submission_secret.txt", b"chosen-by-the-learner")),
        student=learner2.name, student_id=learner2.name)
    end = datetime.now(timezone.utc)
    assert r.status_code == 200, r.text
    stamp = parse_utc(r.json()["timestamp"]).replace(tzinfo=timezone.utc)
    assert start <= stamp <= end
    assert r.json()["id"].startswith(f"{learner.name}+{ASSIGNMENT}+")
    # learner2's own submissions are exactly what they were
    assert {s["id"]: s for s in my_submissions(lab, learner2)} == other_submitted

    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    submitted = lab.settings.paths.course_dir(COURSE) / "submitted"
    mine = submitted / learner.name / ASSIGNMENT
    assert parse_utc((mine / "timestamp.txt").read_text()).replace(tzinfo=timezone.utc) == stamp
    assert (mine / "submission_secret.txt").read_text() != "chosen-by-the-learner"
    files = sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*"))
    assert files == sorted([f"{ASSIGNMENT}.ipynb", "timestamp.txt", "submission_secret.txt"]), files
    theirs = submitted / learner2.name / ASSIGNMENT / "timestamp.txt"
    assert theirs.read_text() == max(s["timestamp"] for s in other_submitted.values())  # their latest
    for path in submitted.rglob("*"):  # nothing of the course came along
        assert not path.is_symlink() and path.name not in ("gb", "src", "gradebook.db"), path


def test_submitting_in_the_server_records_the_services_time(lab, learners):
    """A submission through nbgrader in the learner's server is stamped by the service, now."""
    learner = learners["learner"]
    assert submit_in_server(learner)["success"]
    newest = max(parse_utc(s["timestamp"]) for s in my_submissions(lab, learner))
    assert (datetime.now(timezone.utc).replace(tzinfo=None) - newest).total_seconds() < 60


def test_feedback_only_reaches_its_learner(lab, learners):
    learner, learner2 = learners["learner"], learners["learner2"]
    sub = my_submissions(lab, learner)[-1]
    r = service(lab, "PUT", f"courses/{COURSE}/feedback", grader_token(lab), content="<p>잘했어요</p>".encode(),
                params={"student": learner.name, "assignment": ASSIGNMENT, "timestamp": sub["timestamp"],
                        "notebook": ASSIGNMENT})
    assert r.status_code == 200, r.text

    def feedback_files(user) -> dict[str, bytes]:
        r = service(lab, "GET", f"courses/{COURSE}/feedback", user.token, params={"assignment": ASSIGNMENT})
        assert r.status_code == 200, r.text
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    # (the lab is shared with other test files: earlier feedback may be there too)
    assert feedback_files(learner)[f"{ASSIGNMENT}/{sub['timestamp']}/{ASSIGNMENT}.html"] == "<p>잘했어요</p>".encode()
    assert "<p>잘했어요</p>".encode() not in feedback_files(learner2).values()
    # nbgrader's fetch_feedback in the learner's server puts it under the submission's time
    r = learner.server("POST", "assignments/fetch_feedback", data={"course_id": COURSE, "assignment_id": ASSIGNMENT})
    assert r.json()["success"], r.text
    html = home_of(lab, learner) / FOLDER / "feedback" / sub["timestamp"] / f"{ASSIGNMENT}.html"
    assert html.read_text() == "<p>잘했어요</p>"


def test_learners_cannot_release_collect_or_read_others(lab, learners, logged_in):
    learner, learner2 = learners["learner"], learners["learner2"]
    theirs = my_submissions(lab, learner2)[0]["id"]
    attempts = [
        ("PUT", f"courses/{COURSE}/assignments/{ASSIGNMENT}", {"params": {"force": "1"}, "content": tar_of(notebook_member())}),
        ("DELETE", f"courses/{COURSE}/assignments/{ASSIGNMENT}", {}),
        ("GET", f"courses/{COURSE}/submission", {"params": {"id": theirs}}),
        ("PUT", f"courses/{COURSE}/feedback", {"params": {"student": learner.name, "assignment": ASSIGNMENT,
                                                           "timestamp": "x", "notebook": ASSIGNMENT}, "content": b"x"}),
    ]
    for method, path, kwargs in attempts:
        r = service(lab, method, path, learner.token, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["message"] == "이 과정에서 그 일을 할 권한이 없어요."
    # asking for everyone's submissions lists only my own
    listed = service(lab, "GET", "submissions", learner.token, params={"course": COURSE, "student": learner2.name})
    assert {s["student_id"] for s in listed.json()} == {learner.name}
    # a trainer of another course sees nothing of this one
    other = logged_in("ttt_trainer")
    r = service(lab, "GET", f"courses/{COURSE}/assignments/{ASSIGNMENT}", other.token)
    assert r.status_code == 403
    # released files and the formgrader still there: the grader was not affected
    assert json.loads(service(lab, "GET", "released", learner.token, params={"course": COURSE}).text)[0][
        "assignment_id"] == ASSIGNMENT


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_anonymous_requests_are_refused(lab, learners, token):
    for method, path in [("GET", "released"), ("GET", "submissions"),
                         ("POST", f"courses/{COURSE}/submissions/{ASSIGNMENT}"),
                         ("GET", f"courses/{COURSE}/assignments/{ASSIGNMENT}")]:
        r = service(lab, method, path, token, content=b"" if method == "POST" else None)
        assert r.status_code == 403, (method, path, r.text)
        assert "토큰" in r.json()["message"]


def test_store_is_private_to_the_service(lab, learners):
    store = lab.settings.paths.exchange
    assert oct(store.stat().st_mode & 0o777) == "0o700"
    learner = learners["learner"]
    assert run_as(learner.name, "ls", str(store)).returncode != 0
    assert not (lab.settings.paths.root / "exchange").exists()  # no world-writable exchange folder any more


def test_formgrader_sees_releases_through_the_service(lab, learners, logged_in):
    """The course's formgrader (nbgrader's own API in the grader's server) lists the release from the service."""
    trainer = logged_in("trainer")
    r = trainer.http.get("/services/grader-ai-basics/formgrader/api/assignments")
    assert r.status_code == 200, r.text
    status = {a["name"]: a["status"] for a in r.json()}
    assert status[ASSIGNMENT] == "released", status
