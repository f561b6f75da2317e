"""The trainer dashboard (hub service ``dashboard``) on a real hub with real nbgrader submissions.

Its own lab: learners with hostile names (script tags, spreadsheet formulas), a trainer per course, a
TTT candidate and an admin.  Learners submit m1 through their own servers; the trainer collects,
autogrades and releases feedback with the ``donghaeng course`` commands, and one written answer is
graded by hand through nbgrader's Gradebook API (as formgrader would).
"""

from __future__ import annotations

import csv
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
from labharness import ARTIFACTS, running_lab
from nbgrader.api import Gradebook
from notebooks import solved
from openpyxl import load_workbook
from test_browser import CHROMIUM, CHROMIUM_ARGS, keyboard_login
from test_course_flow import ASSIGNMENT, COURSE, NOTEBOOK, REPO, WIDGET_ANSWER

from donghaeng.accounts import ensure_system_user
from donghaeng.certification import Store, calibration_kappa
from donghaeng.dashboard import calibration, export
from donghaeng.exchange.hub import URL as EXCHANGE_PATH, URL_ENV

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


def test_calibration_refuses_incomplete_or_unknown_grades():
    rubric = calibration.load_sets()["ttt-reflection"]
    grades = {s.id: s.master for s in rubric.samples}
    assert calibration.grade(rubric, "someone", grades).kappa == 1.0
    with pytest.raises(calibration.CalibrationError, match="빠진 예시: s2"):
        calibration.grade(rubric, "someone", {k: v for k, v in grades.items() if k != "s2"})
    with pytest.raises(calibration.CalibrationError, match="루브릭에 없는 점수"):
        calibration.grade(rubric, "someone", {**grades, "s1": 7})


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


@pytest.mark.slow
def test_candidate_calibrates_and_the_kappa_is_stored(cohort, users):
    candidate = users("candidate")
    start = dashboard(candidate, "")
    assert start.url.path.endswith(f"{DASH}/calibration") and "채점 맞추기" in start.text
    assert dashboard(candidate, "courses/ttt").status_code == 403  # candidates see no cohort
    form = dashboard(candidate, "calibration/ttt-reflection").text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form).group(1)
    rubric = calibration.load_sets()["ttt-reflection"]
    grades = {f"grade-{s.id}": str(s.master) for s in rubric.samples}
    incomplete = candidate.http.post(f"{DASH}/calibration/ttt-reflection",
                                     data={**grades, "grade-s3": "", "_xsrf": xsrf})
    assert incomplete.status_code == 400 and "빠진 예시: s3" in incomplete.text
    assert 'value="2" required' in incomplete.text and "checked" in incomplete.text  # nothing lost
    grades["grade-s1"] = "1"  # one answer graded a level lower than the master
    done = candidate.http.post(f"{DASH}/calibration/ttt-reflection", data={**grades, "_xsrf": xsrf})
    assert done.status_code == 200, done.text
    expected = calibration.cohen_kappa([1 if s.id == "s1" else s.master for s in rubric.samples],
                                       [s.master for s in rubric.samples], rubric.scores)
    assert f"{expected:.2f}" in done.text and "예시 8개" in done.text
    # only the agreement figure: no master grade or master's note per sample (kappa = 1 on the next try)
    assert "마스터 점수" not in done.text.replace("마스터 점수는 보여 드리지 않아요", "")
    assert not any(s.note and s.note in done.text for s in rubric.samples)
    assert calibration_kappa(cohort.settings, candidate.name) == pytest.approx(expected)
    no_xsrf = candidate.http.post(f"{DASH}/calibration/ttt-reflection", data=grades)
    assert no_xsrf.status_code == 403
    overview = dashboard(users("ttt_trainer"), "calibration").text
    assert "한가람" in overview and f"{expected:.2f}" in overview


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
