"""The trainer dashboard (hub service ``dashboard``) on a real hub with real nbgrader submissions.

Its own lab: learners with hostile names (script tags, spreadsheet formulas), a trainer per course, a
TTT candidate and an admin.  Learners submit m1 through their own servers; the trainer collects,
autogrades and releases feedback with the ``donghaeng course`` commands, and one written answer is
graded by hand through nbgrader's Gradebook API (as formgrader would).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from hubclient import HubUser
from labharness import ARTIFACTS, running_lab, start_hub, stop_hub
from nbgrader.api import Gradebook
from notebooks import solved
from openpyxl import load_workbook
from test_browser import CHROMIUM, CHROMIUM_ARGS, keyboard_login
from test_course_flow import ASSIGNMENT, COURSE, NOTEBOOK, REPO, WIDGET_ANSWER

from donghaeng.common.accounts import ensure_system_user
from donghaeng.services.certification import Store, evaluate
from donghaeng.services.dashboard import calibration, export
from donghaeng.services.exchange.hub import URL as EXCHANGE_PATH, URL_ENV

XSS_NAME = "<script>alert('xss')</script>김"
HOSTILE = {
    "formula": '=HYPERLINK("http://evil.example","클릭")',
    "plus": "+82 1234",
    "minus": "-1+2",
    "at": "@SUM(A1:A9)",
}
PEOPLE = {
    "xss": (XSS_NAME, "learner", COURSE),
    **{key: (name, "learner", COURSE) for key, name in HOSTILE.items()},
    "trainer": ("최은정", "trainer", COURSE),
    "ttt_trainer": ("정미경", "trainer", "ttt"),
    "candidate": ("한가람", "learner", "ttt"),
    "peer": ("윤서진", "learner", "ttt"),
    "admin": ("관리자", "admin", COURSE),
}
POLICY = f"""
[[levels]]
id = "basics"
name = "AI 기초 수료"
course = "{COURSE}"
unlocks = ["ttt"]
manual_grading_done = false
  [[levels.assignments]]
  name = "{ASSIGNMENT}"
  min_percent = 30

[[levels]]
id = "instructor"
name = "공인 AI 강사"
course = "ttt"
min_calibration_kappa = 0.6
min_teachback_checklist = 2

[calibration]
samples_per_attempt = 5
attempts = 2

[teachback]
checklist = [
  {{ id = "goal", text = "학습 목표를 한 문장으로 말했어요" }},
  {{ id = "practice", text = "학습자가 직접 해 보는 시간이 시범보다 길었어요" }},
  {{ id = "check", text = "설명이나 예를 요구하는 확인 질문을 했어요" }},
]
"""
DASH = "/services/dashboard"


# -- without a hub ------------------------------------------------------------------------------
def test_cohen_kappa_on_known_examples():
    # Wikipedia's example: 50 items, both "yes" 20, A yes/B no 5, A no/B yes 10, both "no" 15:
    # p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, plain kappa = 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert calibration.cohen_kappa(a, b, [0, 1], "none") == pytest.approx(0.4)
    # quadratic weights by hand: observed disagreement (1,2) and (2,1) at 1/4 each, weight 1 -> 0.5;
    # marginals (1/4, 1/4, 1/2) both sides -> expected weighted disagreement 1.375; 1 - 0.5/1.375
    assert calibration.cohen_kappa([0, 1, 2, 2], [0, 2, 2, 1], [0, 1, 2]) == pytest.approx(1 - 0.5 / 1.375)
    assert calibration.cohen_kappa([0, 1, 2, 2], [0, 2, 2, 1], [0, 1, 2], "none") == pytest.approx(
        1 - (1 - 0.5) / (1 - (1 / 16 + 1 / 16 + 1 / 4)))
    assert calibration.cohen_kappa([0, 1, 2], [0, 1, 2], [0, 1, 2]) == 1.0
    assert calibration.cohen_kappa([0, 1, 2], [2, 1, 0], [0, 1, 2]) < 0  # systematic disagreement


def masters(rubric: calibration.RubricSet, samples) -> dict[str, int]:
    """The form fields a candidate who grades exactly like the masters would send."""
    return {calibration.field_name(s, c): s.master[c.id] for s in samples for c in rubric.criteria}


def test_calibration_uses_the_real_m1_rubric_with_enough_samples():
    rubric = calibration.load_sets()["m1-reflection"]
    key = (REPO / "assignments" / "ai-basics" / "answer-keys" / "m1-first-steps.md").read_text(encoding="utf-8")
    assert "문제 4 루브릭 (3점)" in key and "문제 4 루브릭 (3점)" in rubric.rubric
    assert rubric.totals == [0, 1, 2, 3]  # the rubric's own scale, as formgrader records it
    assert [c.scores for c in rubric.criteria] == [[0, 1]] * 3
    assert len(rubric.samples) >= 15
    assert {s.total() for s in rubric.samples} == {0, 1, 2, 3}


def test_each_attempt_draws_other_samples_over_the_whole_scale():
    rubric = calibration.load_sets()["m1-reflection"]
    first = calibration.draw(rubric, "kim", 1, 10)
    assert calibration.draw(rubric, "kim", 1, 10) == first  # the form and its POST agree
    assert {s.total() for s in first} == set(rubric.totals)
    second = calibration.draw(rubric, "kim", 2, 10, seen={s.id for s in first})
    assert {s.total() for s in second} == set(rubric.totals)
    assert len({s.id for s in second} - {s.id for s in first}) >= 8  # mostly answers not seen yet
    assert [s.id for s in calibration.draw(rubric, "lee", 1, 10)] != [s.id for s in first]  # per candidate


def test_calibration_scores_the_total_and_names_only_drifting_criteria():
    rubric = calibration.load_sets()["m1-reflection"]
    samples = calibration.draw(rubric, "kim", 1, 10)
    exact = calibration.grade(rubric, "kim", 1, samples, masters(rubric, samples))
    assert exact.kappa == 1.0 and exact.drift == ()
    lenient = {**masters(rubric, samples), **{calibration.field_name(s, rubric.criteria[1]): 1 for s in samples}}
    result = calibration.grade(rubric, "kim", 1, samples, lenient)
    mine = [sum(lenient[calibration.field_name(s, c)] for c in rubric.criteria) for s in samples]
    assert result.kappa == pytest.approx(calibration.cohen_kappa(mine, [s.total() for s in samples], [0, 1, 2, 3]))
    assert result.kappa < 1
    assert len(result.drift) == 1 and "「조심할 점」" in result.drift[0] and "후하게" in result.drift[0]
    # the sentence says nothing about any one answer
    assert not any(s.answer in result.drift[0] or s.id in result.drift[0] for s in samples)
    fields = masters(rubric, samples)
    first = calibration.field_name(samples[0], rubric.criteria[0])
    with pytest.raises(calibration.CalibrationError, match="빠진 답안: 1번"):
        calibration.grade(rubric, "kim", 1, samples, {k: v for k, v in fields.items() if k != first})
    with pytest.raises(calibration.CalibrationError, match="루브릭에 없는 점수"):
        calibration.grade(rubric, "kim", 1, samples, {**fields, first: 7})


def test_attempts_are_limited_and_numbered_once(tmp_path):
    from donghaeng.services.certification import CertificationError
    from donghaeng.common.settings import Course, Lab, Settings

    settings = Settings(lab=Lab(data_dir=tmp_path), courses=[Course(id="ttt", title="TTT")])
    rubric = calibration.load_sets()["m1-reflection"]
    seen: set[str] = set()
    for number in (1, 2, 3):
        upcoming = calibration.next_attempt(settings, rubric, "kim", allowed=3, size=10)
        assert upcoming.attempt == number
        seen |= {s.id for s in upcoming.samples}
        result = calibration.grade(rubric, "kim", number, upcoming.samples, masters(rubric, upcoming.samples))
        calibration.record(settings, result, "kim")
    assert seen == {s.id for s in rubric.samples}, "three attempts rotate through every answer"
    assert calibration.next_attempt(settings, rubric, "kim", allowed=3, size=10) is None
    with pytest.raises(CertificationError, match="이미 냈어요"):  # a replayed form
        calibration.record(settings, result, "kim")
    assert [a.attempt for a in Store.of(settings).calibration_attempts("kim")] == [1, 2, 3]


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1", "-1", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_like_text_is_neutralised(text):
    assert export.neutralise(text) == "'" + text
    book = load_workbook(io.BytesIO(export.to_xlsx([["이름"], [export.neutralise(text)]], "t")))
    cell = book.active["A2"]
    assert cell.data_type == "s" and cell.value.startswith("'")  # (XML stores a lone CR as a newline)
    assert cell.value[1:].strip() == text.strip()
    assert export.neutralise(-3.5) == -3.5 and export.neutralise("김하늘") == "김하늘"


# -- on a real hub --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dash_lab():
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run as root (as .ci/run does)")
    with tempfile.TemporaryDirectory(prefix="dashboard-policy-") as folder:
        policy = Path(folder) / "certification.toml"
        policy.write_text(POLICY, encoding="utf-8")
        extra = f'[model]\nenabled = false\n[dashboard]\nenabled = true\n[certification]\npolicy = "{policy}"\n'
        with running_lab(PEOPLE, extra) as lab:
            yield lab


@pytest.fixture(scope="module")
def users(dash_lab):
    cache: dict[str, HubUser] = {}

    def get(key: str) -> HubUser:
        if key not in cache:
            cache[key] = HubUser.logged_in(dash_lab, key)
        return cache[key]

    return get


def nbgrader_as(lab, user: HubUser, *args: str) -> None:
    """Run an nbgrader app as the learner's own account, as their server would (their hub token
    lets nbgrader's JupyterHub auth plugin find their courses)."""
    settings = lab.settings
    entry = ensure_system_user(user.name, settings.lab.learner_group, settings.lab.home_root)
    env = {"HOME": entry.pw_dir, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "JUPYTER_CONFIG_PATH": str(settings.paths.jupyter_config), "JUPYTERHUB_USER": user.name,
           "JUPYTERHUB_API_TOKEN": user.token, "JUPYTERHUB_API_URL": f"{lab.url}/hub/api",
           URL_ENV: f"{lab.url}{EXCHANGE_PATH}"}  # the exchange service, as learners' servers are told
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=entry.pw_dir, env=env, check=False,
                         capture_output=True, text=True, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    assert run.returncode == 0, run.stdout + run.stderr


def submit(lab, user: HubUser, solve: bool = False) -> None:
    nbgrader_as(lab, user, "fetch_assignment", ASSIGNMENT, "--course", COURSE)
    if solve:
        path = Path(pwd.getpwnam(user.name).pw_dir) / NOTEBOOK
        source = nbformat.read(REPO / "assignments" / COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
        path.write_text(nbformat.writes(solved(nbformat.read(path, 4), source)), encoding="utf-8")
        answers = path.with_name("donghaeng_answers.json")
        answers.write_text(json.dumps(WIDGET_ANSWER, ensure_ascii=False), encoding="utf-8")
        os.chown(answers, path.stat().st_uid, path.stat().st_gid)
    nbgrader_as(lab, user, "submit", ASSIGNMENT, "--course", COURSE)


@pytest.fixture(scope="module")
def cohort(dash_lab, users):
    """xss: submits a solved m1, autograded, feedback released (a reflection still to grade by hand);
    formula: graded 0 by the trainer (written through the Gradebook API, as formgrader does);
    plus: submits after the collection; minus, at: never logged in."""
    lab = dash_lab
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    submit(lab, users("xss"), solve=True)
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    lab.cli("course", "feedback", COURSE, ASSIGNMENT)
    with Gradebook(f"sqlite:///{lab.settings.paths.course_dir(COURSE) / 'gradebook.db'}", course_id=COURSE) as gb:
        for notebook in gb.add_submission(ASSIGNMENT, users("formula").name).notebooks:
            for grade in notebook.grades:
                grade.auto_score, grade.manual_score, grade.needs_manual_grade = 0, 0, False
        gb.db.commit()
    submit(lab, users("plus"))  # after the collection: submitted, not graded yet
    return lab


def dashboard(user: HubUser, path: str = "", **kwargs):
    """A page of the dashboard as the user's browser gets it (hub OAuth redirects followed)."""
    return user.http.get(f"{DASH}/{path}", **kwargs)


def row_of(page: str, login: str) -> str:
    rows = re.findall(r"<tr>.*?</tr>", page, re.DOTALL)
    found = [r for r in rows if login in r]
    assert found, f"no row for {login}"
    return found[0]


@pytest.mark.slow
def test_trainer_sees_cohort_progress_risks_and_queue(cohort, users):
    trainer, logins = users("trainer"), cohort.logins
    r = dashboard(trainer, f"courses/{COURSE}")
    assert r.status_code == 200, r.text
    page = r.text
    (ARTIFACTS / "dashboard-course.html").write_text(page, encoding="utf-8")
    assert "피드백 있음" in row_of(page, logins["xss"])
    assert "손채점 대기" in row_of(page, logins["xss"])  # the reflection is not graded yet
    assert re.search(r"채점 완료 0/\d+점", row_of(page, logins["formula"]))
    assert "제출함" in row_of(page, logins["plus"])
    assert "시작 전" in row_of(page, logins["minus"]) and "접속 기록 없음" in row_of(page, logins["minus"])
    risk = page.split('id="risk"')[1].split('id="queue"')[0]
    assert f"{ASSIGNMENT} 점수가 낮아요: 0점" in risk
    assert "아직 한 번도 접속하지 않았어요" in risk and "아직 시작하지 않은 과제가 있어요" in risk
    assert logins["xss"] not in risk  # full marks, active, nothing to flag
    queue = page.split('id="queue"')[1].split('id="plots"')[0]
    assert re.search(rf"<th scope=\"row\">{ASSIGNMENT}</th><td>1개</td>", queue)
    assert "2명 채점" in page  # alt text of the plot


@pytest.mark.slow
def test_learner_names_are_escaped_everywhere(cohort, users):
    trainer = users("trainer")
    for path in ("", f"courses/{COURSE}",
                 f"courses/{COURSE}/certify?action=issue&login={cohort.logins['xss']}&level=basics"):
        page = dashboard(trainer, path).text
        assert "<script>alert" not in page
    page = dashboard(trainer, f"courses/{COURSE}").text
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;김" in page


@pytest.mark.slow
def test_score_plots_are_images(cohort, users):
    trainer = users("trainer")
    png = dashboard(trainer, f"courses/{COURSE}/plots/{ASSIGNMENT}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and len(png.content) > 5000
    (ARTIFACTS / "dashboard-plot.png").write_bytes(png.content)
    svg = dashboard(trainer, f"courses/{COURSE}/plots/{ASSIGNMENT}.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    assert dashboard(trainer, f"courses/{COURSE}/plots/nope.png").status_code == 404


@pytest.mark.slow
def test_exports_are_korean_excel_safe(cohort, users):
    trainer, logins = users("trainer"), cohort.logins
    raw = dashboard(trainer, f"courses/{COURSE}/export.csv").content
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Korean Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:2] == ["아이디", "이름"]
    names = {row[0]: row[1] for row in rows[1:]}
    for key, name in HOSTILE.items():
        assert names[logins[key]] == "'" + name
    assert names[logins["xss"]] == XSS_NAME
    book = load_workbook(io.BytesIO(dashboard(trainer, f"courses/{COURSE}/export.xlsx").content))
    cells = [c for row in book.active.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    sheet_names = {row[0].value: row[1].value for row in book.active.iter_rows(min_row=2)}
    for key, name in HOSTILE.items():
        assert sheet_names[logins[key]] == "'" + name
    assert all(not str(c.value).startswith(("=", "+", "-", "@")) for c in cells if c.value is not None)


@pytest.mark.slow
def test_only_own_courses_and_no_learners(cohort, users):
    other = users("ttt_trainer")
    refused = dashboard(other, f"courses/{COURSE}")
    assert refused.status_code == 403 and "이 페이지는 열 수 없어요" in refused.text
    assert f"{COURSE}" not in dashboard(other, "").text.split("<main")[1]
    for path in (f"courses/{COURSE}/export.csv", f"courses/{COURSE}/plots/{ASSIGNMENT}.png"):
        assert dashboard(other, path).status_code == 403
    admin = dashboard(users("admin"), "")
    assert f"courses/{COURSE}" in admin.text and "courses/ttt" in admin.text
    learner = dashboard(users("xss"), f"courses/{COURSE}")
    assert learner.status_code == 403 and "이 페이지는 열 수 없어요" in learner.text  # the hub's Korean page
    assert XSS_NAME not in learner.text and "피드백 있음" not in learner.text


def xsrf_of(page: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)


def instructor_missing(lab, login: str) -> list[str]:
    (status,) = evaluate(lab.settings, login)
    return status.eligibility["instructor"].missing


@pytest.mark.slow
def test_candidate_calibrates_with_limited_attempts_and_sees_no_master_grade(cohort, users):
    candidate = users("candidate")
    start = dashboard(candidate, "")
    assert start.url.path.endswith(f"{DASH}/calibration") and "채점 맞추기" in start.text
    assert dashboard(candidate, "courses/ttt").status_code == 403  # candidates see no cohort
    rubric = calibration.load_sets()["m1-reflection"]
    form = dashboard(candidate, "calibration/m1-reflection").text
    shown = calibration.draw(rubric, candidate.name, 1, 5)
    assert "1번째 기회예요 (모두 2번)" in form and all(s.answer in html.unescape(form) for s in shown)
    assert "문제 4 루브릭 (3점)" in form and not any(s.note in html.unescape(form) for s in shown)
    others = [s for s in rubric.samples if s not in shown]
    assert not any(s.answer in html.unescape(form) for s in others)  # only this attempt's answers
    xsrf = xsrf_of(form)
    strict = {name: "0" for name in masters(rubric, shown)}  # a candidate who gives no point at all
    first = calibration.field_name(shown[0], rubric.criteria[0])
    incomplete = candidate.http.post(f"{DASH}/calibration/m1-reflection",
                                     data={**strict, first: "", "_xsrf": xsrf})
    assert incomplete.status_code == 400 and "빠진 답안: 1번" in incomplete.text
    assert incomplete.text.count("checked") == len(strict) - 1  # nothing the candidate chose is lost
    assert Store.of(cohort.settings).calibration_attempts(candidate.name) == []  # a refused form uses no attempt

    done = candidate.http.post(f"{DASH}/calibration/m1-reflection", data={**strict, "_xsrf": xsrf})
    assert done.status_code == 200, done.text
    assert 'id="kappa">0.00<' in done.text and "남은 기회: 1번" in done.text
    assert "박하게" in done.text and "「" in done.text.split('id="drift"')[1]
    page = html.unescape(done.text)  # only the figure and the drifting criteria: no answer, grade or note
    assert not any(s.answer in page or s.note in page for s in rubric.samples)
    assert "마스터 점수" not in page.replace("마스터 점수는 보여 드리지 않아요", "")
    assert [a.attempt for a in Store.of(cohort.settings).calibration_attempts(candidate.name)] == [1]
    assert any("가장 높은 값 0.00, 남은 기회 1번" in m for m in instructor_missing(cohort, candidate.name))
    replay = candidate.http.post(f"{DASH}/calibration/m1-reflection", data={**strict, "_xsrf": xsrf})
    assert replay.status_code == 400 and "빠진 답안" in replay.text  # attempt 2 shows other answers

    second_form = dashboard(candidate, "calibration/m1-reflection").text
    assert "2번째 기회예요" in second_form
    second = calibration.draw(rubric, candidate.name, 2, 5, seen={s.id for s in shown})
    assert {s.id for s in second} != {s.id for s in shown}
    exact = candidate.http.post(f"{DASH}/calibration/m1-reflection",
                                data={**{k: str(v) for k, v in masters(rubric, second).items()}, "_xsrf": xsrf})
    assert exact.status_code == 200 and 'id="kappa">1.00<' in exact.text and "기회를 모두 썼어요" in exact.text
    assert not any("채점 맞추기" in m for m in instructor_missing(cohort, candidate.name))  # the best attempt counts

    used_up = dashboard(candidate, "calibration/m1-reflection")
    assert used_up.status_code == 403 and "기회(2번)를 모두 썼어요" in used_up.text
    again = candidate.http.post(f"{DASH}/calibration/m1-reflection", data={**strict, "_xsrf": xsrf})
    assert again.status_code == 403 and len(Store.of(cohort.settings).calibration_attempts(candidate.name)) == 2
    no_xsrf = candidate.http.post(f"{DASH}/calibration/m1-reflection", data=strict)
    assert no_xsrf.status_code == 403
    overview = dashboard(users("ttt_trainer"), "calibration").text
    row = row_of(overview, candidate.name)
    assert "한가람" in row and "1.00" in row and "2/2" in row


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_issue_and_revoke_in_the_browser(cohort, users):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    trainer, learner = users("trainer"), cohort.logins["xss"]
    dialogs: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{cohort.url}/hub/login?next={DASH}/courses/{COURSE}")
            keyboard_login(page, trainer.name, cohort.passwords[trainer.name])
            expect(page.get_by_role("heading", level=1)).to_have_text("모두를 위한 AI 기초")
            expect(page.get_by_role("table", name="학습자별 과제 진도 (상태와 점수)")).to_contain_text("피드백 있음")
            expect(page.locator("figure img").first).to_have_attribute("alt", re.compile("2명 채점"))
            for image in page.locator("figure img").all():  # the plots loaded (lazily) and decoded
                image.scroll_into_view_if_needed()
                expect(image).to_have_js_property("complete", True)
                assert image.evaluate("i => i.naturalWidth") > 0
            page.screenshot(path=str(ARTIFACTS / "dashboard-course.png"), full_page=True)

            page.get_by_role("link", name=re.compile("님에게 AI 기초 수료 발급하기")).first.click()
            expect(page.get_by_role("heading", level=1)).to_have_text("수료증을 발급할까요?")
            expect(page.locator("dl")).to_contain_text(XSS_NAME)  # shown as text, never run
            page.screenshot(path=str(ARTIFACTS / "dashboard-confirm.png"), full_page=True)
            page.get_by_role("button", name="네, 발급할게요").click()
            expect(page.get_by_role("status")).to_contain_text("발급했어요")
            issued = [c for c in Store.of(cohort.settings).certificates(learner) if not c.revoked]
            assert [c.level for c in issued] == ["basics"]
            section = page.get_by_role("table", name="학습자별 수료·자격 단계")
            expect(section).to_contain_text(f"발급됨 · {issued[0].serial}")
            page.screenshot(path=str(ARTIFACTS / "dashboard-issued.png"), full_page=True)
            # the TTT course's trainer may not revoke the basics certificate (the gate put the learner in TTT)
            crafted = dashboard(users("ttt_trainer"),
                                f"courses/ttt/certify?action=revoke&login={learner}&serial={issued[0].serial}")
            assert crafted.status_code in (400, 403) and "네, 취소할게요" not in crafted.text
            assert not Store.of(cohort.settings).certificate(issued[0].serial).revoked

            page.get_by_role("link", name=re.compile("AI 기초 수료 취소하기")).click()
            expect(page.get_by_role("heading", level=1)).to_have_text("수료증을 취소할까요?")
            page.get_by_role("button", name="네, 취소할게요").click()  # no reason: the form refuses
            expect(page.get_by_role("heading", level=1)).to_have_text("수료증을 취소할까요?")
            page.get_by_label("취소하는 까닭 (필수)").fill("시험 삼아 발급한 수료증이에요")
            page.get_by_role("button", name="네, 취소할게요").click()
            expect(page.get_by_role("status")).to_contain_text("취소했어요")
            assert Store.of(cohort.settings).certificate(issued[0].serial).revoked
            expect(section).not_to_contain_text(issued[0].serial)

            page.set_viewport_size({"width": 390, "height": 844})  # a phone: the tables scroll, text wraps
            page.screenshot(path=str(ARTIFACTS / "dashboard-mobile.png"), full_page=False)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        finally:
            browser.close()
    assert dialogs == []  # the <script> in a learner's name never ran


@pytest.mark.slow
def test_an_observed_teachback_recorded_by_the_trainer_certifies_and_survives_a_restart(cohort, users):
    """Runs after the calibration test (the candidate's kappa is 1.00 by then) and last: it restarts the hub."""
    trainer, candidate = users("ttt_trainer"), users("candidate")
    login = candidate.name
    assert instructor_missing(cohort, login) == [
        "시범 강의 관찰 기록이 없어요: 트레이너가 시범 강의를 보고 대시보드에 적어야 해요"]
    course_page = dashboard(trainer, "courses/ttt").text
    assert "아직 기록이 없어요" in row_of(course_page.split('id="teachback"')[1], login)
    confirm = dashboard(trainer, f"courses/ttt/certify?action=issue&login={login}&level=instructor")
    refused = trainer.http.post(f"{DASH}/courses/ttt/certify",
                                params={"action": "issue", "login": login, "level": "instructor"},
                                data={"_xsrf": xsrf_of(confirm.text)})
    assert refused.status_code == 400 and "시범 강의 관찰 기록이 없어요" in refused.text
    assert Store.of(cohort.settings).certificates(login) == []

    # learners cannot record a teach-back, their own or a peer's (with a good XSRF token: the role check refuses)
    path = f"courses/ttt/teachback?login={login}"
    assert dashboard(candidate, path).status_code == 403
    peer = users("peer")
    peer_xsrf = xsrf_of(dashboard(peer, "calibration/m1-reflection").text)
    forged = peer.http.post(f"{DASH}/{path}", data={
        "session_date": "2026-11-30", "attended": "yes", "item-goal": "on", "item-practice": "on",
        "item-check": "on", "_xsrf": peer_xsrf})
    assert forged.status_code == 403 and "트레이너와 관리자만" in forged.text
    assert Store.of(cohort.settings).teachback(login, "ttt") is None

    form = dashboard(trainer, path)
    assert form.status_code == 200 and "설명이나 예를 요구하는 확인 질문을 했어요" in form.text
    xsrf = xsrf_of(form.text)
    future = trainer.http.post(f"{DASH}/{path}", data={"session_date": "2999-01-01", "attended": "yes", "_xsrf": xsrf})
    assert future.status_code == 400 and "아직 오지 않은 날짜예요" in future.text
    absent = trainer.http.post(f"{DASH}/{path}", data={"session_date": "2026-11-23", "attended": "no", "_xsrf": xsrf})
    assert absent.status_code == 200 and "시범 강의 기록을 저장했어요" in absent.text
    assert instructor_missing(cohort, login) == ["시범 강의(2026-11-23)에 출석하지 않았어요"]
    done = trainer.http.post(f"{DASH}/{path}", data={
        "session_date": "2026-11-30", "attended": "yes", "item-goal": "on", "item-check": "on",
        "note": "<b>확인 질문</b>이 좋았어요. 다음에는 시범을 더 짧게 해 봐요.", "_xsrf": xsrf})
    assert done.status_code == 200 and "시범 강의 기록을 저장했어요" in done.text
    assert "2/3개" in row_of(done.text.split('id="teachback"')[1], login)
    record = Store.of(cohort.settings).teachback(login, "ttt")
    assert (record.session_date, record.attended, record.checked, record.recorded_by) == (
        "2026-11-30", True, ("goal", "check"), trainer.name)
    assert instructor_missing(cohort, login) == []
    again = dashboard(trainer, path).text  # the note is shown back as text, never as markup
    assert "메모: &lt;b&gt;확인 질문&lt;/b&gt;이 좋았어요" in again and "<b>확인 질문</b>" not in again

    stop_hub(cohort)  # the record is the lab's, not the dashboard process's
    start_hub(cohort)
    page = dashboard(trainer, "courses/ttt")
    assert page.status_code == 200 and "2/3개" in row_of(page.text.split('id="teachback"')[1], login)
    confirm = dashboard(trainer, f"courses/ttt/certify?action=issue&login={login}&level=instructor")
    issued = trainer.http.post(f"{DASH}/courses/ttt/certify",
                               params={"action": "issue", "login": login, "level": "instructor"},
                               data={"_xsrf": xsrf_of(confirm.text)})
    assert issued.status_code == 200 and "발급했어요" in issued.text
    assert [c.level for c in Store.of(cohort.settings).certificates(login)] == ["instructor"]
