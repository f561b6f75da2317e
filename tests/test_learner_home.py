"""The learner home service and the learner server extension on a real hub (HTTP, no browser).

Home: courses, module states, deadline and estimated time, the one start button, 다시 시작 after the
server stopped, help requests for trainers only.  Learner server: fetch on open, one submission per
request id, resubmission, late submission refused, broken notebooks refused with a way forward,
restore that keeps the learner's version, failing self-checks reported.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from donghaeng.grading.courses import CourseRunner
from donghaeng.services.home.help import HelpDesk
from donghaeng.services.home.schedule import ScheduleError, korean_time, load_schedule, nbgrader_duedate
from hubclient import HubUser

COURSE, ASSIGNMENT = "ai-basics", "m1-first-steps"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
START_LINK = re.compile(r'<a class="button start" href="([^"]+)" aria-label="([^"]+)">([^<]+)</a>')


# -- without a hub ----------------------------------------------------------------------------

def test_help_desk_keeps_one_open_request_per_notebook_and_only_course_trainers_close_it(tmp_path):
    desk = HelpDesk(tmp_path / "help.sqlite")
    first = desk.ask("kim", "ai-basics", "ai-basics/m1/m1.ipynb", 4, "막혔어요")
    again = desk.ask("kim", "ai-basics", "ai-basics/m1/m1.ipynb", 7, "  여기요 ")
    assert again.id == first.id and again.cell == 7 and again.message == "여기요"
    other = desk.ask("lee", "ttt", "ttt/t1/t1.ipynb", None)
    assert [r.learner for r in desk.open_requests(["ai-basics"])] == ["kim"]
    assert not desk.mark_done(first.id, "ttt-trainer", ["ttt"])  # not their course
    assert desk.mark_done(first.id, "trainer", ["ai-basics"])
    assert desk.open_requests(["ai-basics"]) == [] and desk.open_for_learner("kim") == []
    assert not desk.mark_done(first.id, "trainer", ["ai-basics"])  # already done
    assert desk.get(first.id).done_by == "trainer" and desk.open_for_learner("lee") == [other]


def test_schedule_files_give_titles_minutes_and_korean_deadlines(tmp_path):
    from donghaeng.common.settings import load_settings

    settings = load_settings()
    for course in settings.courses:
        schedule = load_schedule(settings, course)
        source = settings.assignments_dir(course) / "source"
        assert set(schedule) == {p.name for p in source.iterdir() if p.is_dir()}, course.id
        assert all(m.title and m.minutes and m.deadline for m in schedule.values())
    moment = datetime(2027, 3, 12, 9, 0, tzinfo=timezone.utc)
    assert korean_time(moment) == "3월 12일 (금) 오후 6:00"
    assert nbgrader_duedate(moment) == "2027-03-12 09:00:00 UTC"


def test_a_deadline_without_time_zone_is_refused(tmp_path):
    from donghaeng.common.settings import Settings

    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "schedule.toml").write_text('[m1]\ndeadline = 2027-03-12T18:00:00\n', encoding="utf-8")
    settings = Settings(courses=[{"id": "demo", "title": "데모", "assignments": str(folder)}])
    with pytest.raises(ScheduleError, match="time zone"):
        load_schedule(settings, settings.courses[0])


# -- on a real hub ------------------------------------------------------------------------------


def home_page(user: HubUser) -> str:
    r = user.http.get("/services/home/")
    assert r.status_code == 200, r.text
    return r.text


def start_links(page: str) -> dict[str, tuple[str, str]]:
    """aria-label -> (href, visible text) of the start buttons."""
    return {label: (html.unescape(href), text) for href, label, text in START_LINK.findall(page)}


def api(user: HubUser, method: str, path: str, **kwargs):
    return user.server(method, f"donghaeng/api/{path}", **kwargs)


@pytest.fixture(scope="module")
def released(home_lab):
    home_lab.cli("course", "release", COURSE, ASSIGNMENT)
    return home_lab


@pytest.fixture(scope="module")
def learner(released) -> HubUser:
    user = HubUser.logged_in(released, "learner")
    user.spawn()
    return user


@pytest.mark.slow
def test_home_shows_the_released_module_before_start(released, learner):
    page = home_page(learner)
    assert "한지수님, 반가워요" in page and "모두를 위한 AI 기초" in page
    assert "AI 첫걸음" in page and "시작 전" in page
    assert "3월 12일 (금) 오후 6:00" in page and "약 50분" in page
    assert "일 잘하는 AI 활용" not in page  # not released yet
    assert "도움 요청 보기" not in page  # learners get no trainer view
    links = start_links(page)
    assert list(links) == ["AI 첫걸음 시작하기"]
    href, text = links["AI 첫걸음 시작하기"]
    assert text == "시작하기" and href.startswith(f"/hub/spawn/{learner.name}?next=")


@pytest.mark.slow
def test_start_fetches_the_module_and_opens_the_notebook(released, learner):
    href, _ = start_links(home_page(learner))["AI 첫걸음 시작하기"]
    r = learner.http.get(href)
    assert r.status_code == 200
    assert str(r.url).endswith(f"/user/{learner.name}/lab/tree/{NOTEBOOK}")
    assert learner.server("GET", f"api/contents/{NOTEBOOK}").status_code == 200
    page = home_page(learner)
    assert "진행 중" in page and start_links(page)["AI 첫걸음 이어하기"][1] == "이어하기"
    # opening again does not fetch over the learner's work
    learner.server("PUT", f"api/contents/{COURSE}/{ASSIGNMENT}/note.txt",
                   json={"type": "file", "format": "text", "content": "내 메모"})
    assert learner.http.get(href).status_code == 200
    assert learner.server("GET", f"api/contents/{COURSE}/{ASSIGNMENT}/note.txt").json()["content"] == "내 메모"


def inbound(lab, student: str) -> list[Path]:
    return sorted((lab.settings.paths.exchange / COURSE / "inbound").glob(f"{student}+{ASSIGNMENT}+*"))


@pytest.mark.slow
def test_double_submit_makes_one_submission_and_resubmission_makes_another(released, learner):
    before = len(inbound(released, learner.name))
    request_id = str(uuid.uuid4())
    body = {"path": NOTEBOOK, "request_id": request_id}
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: api(learner, "POST", "submit", json=body), range(2)))
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    assert replies[0].json() == replies[1].json()
    assert "월" in replies[0].json()["receipt"]
    assert len(inbound(released, learner.name)) == before + 1
    again = api(learner, "POST", "submit", json={"path": NOTEBOOK, "request_id": str(uuid.uuid4())})
    assert again.status_code == 200 and len(inbound(released, learner.name)) == before + 2
    info = api(learner, "GET", "notebook", params={"path": NOTEBOOK}).json()
    assert info["last_submission"] == again.json()["receipt"] and not info["late"]
    assert "제출함" in home_page(learner)


@pytest.mark.slow
def test_submit_after_the_deadline_is_refused_in_korean(released, learner):
    runner = CourseRunner(released.settings, released.settings.course(COURSE))
    past = nbgrader_duedate(datetime.now(timezone.utc) - timedelta(hours=1))
    future = load_schedule(released.settings, released.settings.course(COURSE))[ASSIGNMENT].deadline
    runner._check("마감일 설정", "db", "assignment", "add", ASSIGNMENT, f"--duedate={past}")
    try:
        count = len(inbound(released, learner.name))
        r = api(learner, "POST", "submit", json={"path": NOTEBOOK, "request_id": str(uuid.uuid4())})
        assert r.status_code == 409 and "마감" in r.json()["message"] and "저장되어 있어요" in r.json()["message"]
        assert len(inbound(released, learner.name)) == count
        assert api(learner, "GET", "notebook", params={"path": NOTEBOOK}).json()["late"]
    finally:
        runner._check("마감일 설정", "db", "assignment", "add", ASSIGNMENT, f"--duedate={nbgrader_duedate(future)}")


@pytest.mark.slow
def test_broken_notebook_is_refused_and_restore_keeps_the_learners_version(released, learner):
    broken = '{"cells": [ 이건 JSON이 아니에요'
    learner.server("PUT", f"api/contents/{NOTEBOOK}", json={"type": "file", "format": "text", "content": broken})
    info = api(learner, "GET", "notebook", params={"path": NOTEBOOK}).json()
    assert info["problems"] and "망가져서" in info["problems"][0]
    count = len(inbound(released, learner.name))
    r = api(learner, "POST", "submit", json={"path": NOTEBOOK, "request_id": str(uuid.uuid4())})
    assert r.status_code == 422 and "원래대로 되돌리기" in r.json()["message"]
    assert len(inbound(released, learner.name)) == count

    restored = api(learner, "POST", "restore", json={"path": NOTEBOOK})
    assert restored.status_code == 200, restored.text
    backup = restored.json()["backup"]
    assert backup.startswith(f"이전 작업/{COURSE}/{ASSIGNMENT}/")
    kept = learner.server("GET", f"api/contents/{backup}", params={"type": "file", "format": "text"}).json()
    assert kept["content"] == broken
    nb = learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"]
    assert nb["cells"] and not api(learner, "GET", "notebook", params={"path": NOTEBOOK}).json()["problems"]

    # deleted question cells are refused too, with the same way forward
    nb["cells"] = [c for c in nb["cells"] if not c["metadata"].get("nbgrader", {}).get("grade")]
    learner.server("PUT", f"api/contents/{NOTEBOOK}", json={"type": "notebook", "content": nb})
    r = api(learner, "POST", "submit", json={"path": NOTEBOOK, "request_id": str(uuid.uuid4())})
    assert r.status_code == 422 and "지워졌어요" in r.json()["message"]
    assert api(learner, "POST", "restore", json={"path": NOTEBOOK}).status_code == 200


@pytest.mark.slow
def test_opening_a_broken_notebook_offers_restore_and_keeps_the_file(released, learner):
    broken = "노트북이 아니에요"
    learner.server("PUT", f"api/contents/{NOTEBOOK}", json={"type": "file", "format": "text", "content": broken})
    href, _ = next(iter(start_links(home_page(learner)).values()))
    page = learner.http.get(href)
    assert page.status_code == 409 and "망가져서" in page.text and "원래대로 되돌리고 열기" in page.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    opened = learner.http.post(str(page.url), data={"_xsrf": xsrf})
    assert opened.status_code == 200 and str(opened.url).endswith(f"lab/tree/{NOTEBOOK}")
    folder = learner.server("GET", f"api/contents/이전 작업/{COURSE}/{ASSIGNMENT}").json()["content"]
    kept = [learner.server("GET", f"api/contents/{f['path']}", params={"type": "file", "format": "text"})
            .json()["content"] for f in folder]
    assert broken in kept
    assert learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"]["cells"]


@pytest.mark.slow
def test_failing_self_check_is_reported_before_submitting(released, learner):
    nb = nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"])
    checks = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    nb.cells[checks[0]].outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="아직", traceback=[])]
    learner.server("PUT", f"api/contents/{NOTEBOOK}", json={"type": "notebook", "content": nb})
    info = api(learner, "GET", "notebook", params={"path": NOTEBOOK}).json()
    assert info["failing_checks"] == [checks[0] + 1]


@pytest.mark.slow
def test_help_request_reaches_the_course_trainer_only(released, learner):
    r = api(learner, "POST", "help", json={"path": NOTEBOOK, "cell": 5, "message": "저장하기가 안 돼요"})
    assert r.status_code == 200, r.text
    assert "도움 요청을 보냈어요" in r.json()["message"]
    assert "도움 요청을 보냈어요" in home_page(learner)
    assert learner.http.get("/services/home/help").status_code == 403

    trainer = HubUser.logged_in(released, "trainer")
    page = trainer.http.get("/services/home/help")
    assert page.status_code == 200
    assert "한지수" in page.text and "5번째 칸" in page.text and "저장하기가 안 돼요" in page.text
    assert "도움 요청 보기 (1건)" in home_page(trainer)
    request_id = re.search(r'action="/services/home/help/(\d+)/done"', page.text).group(1)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    done = trainer.http.post(f"/services/home/help/{request_id}/done", data={"_xsrf": xsrf})
    assert done.status_code == 200 and "해결함으로 표시했어요" in done.text and "한지수" not in done.text
    assert "도움 요청을 보냈어요" not in home_page(learner)


@pytest.mark.slow
def test_home_offers_restart_after_the_server_stopped(released, learner):
    learner.stop()  # as the idle culler does
    page = home_page(learner)
    assert "실습실이 쉬고 있어요" in page
    href, text = next(iter(start_links(page).values()))
    assert text == "다시 시작하기"
    learner.spawn()
    r = learner.http.get(href)
    assert r.status_code == 200 and str(r.url).endswith(f"lab/tree/{NOTEBOOK}")
    assert "실습실이 쉬고 있어요" not in home_page(learner)


@pytest.mark.slow
def test_home_api_refuses_courses_the_person_is_not_in(released, learner):
    r = learner.api("GET", "/services/home/api/module/ttt/t1-class-design")
    assert r.status_code in (403, 404)
    assert json.loads(r.text)["message"]


@pytest.mark.slow
def test_hub_home_links_to_the_learner_home(released, learner):
    page = learner.http.get("/hub/home")
    assert page.status_code == 200
    assert 'href="/services/home/"' in page.text and "학습 홈으로 가기" in page.text
