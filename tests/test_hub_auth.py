"""Logging in to the real hub: roster passwords, first-login change, wrong input, roles."""

from __future__ import annotations

import pytest

from hubclient import HubUser

pytestmark = pytest.mark.slow
NEW_PASSWORD = "새봄-2026-lab"


def test_login_page_is_korean(lab):
    page = HubUser(lab.url, "x").http.get("/hub/login")
    assert page.status_code == 200
    assert "동행랩에 로그인해요" in page.text and "아이디" in page.text and "비밀번호" in page.text


def test_wrong_password_and_unknown_user_get_the_same_korean_message(lab):
    learner = HubUser(lab.url, lab.logins["learner2"])
    wrong = learner.submit_login("not-the-password")
    unknown = HubUser(lab.url, "nobody_here").submit_login("whatever-123")
    for response in (wrong, unknown):
        assert response.status_code == 403
        assert "아이디나 비밀번호가 맞지 않아요" in response.text
    assert "jupyterhub-session-id" not in learner.http.cookies


def test_first_login_forces_a_new_password(lab):
    login = lab.logins["newcomer"]  # nobody else logs in with this account
    user = HubUser(lab.url, login)
    form = user.submit_login(lab.passwords[login])
    assert "새 비밀번호 정하기" in form.text
    # the initial password alone gives no session: the home page still asks to log in
    assert "동행랩에 로그인해요" in user.http.get("/hub/home").text

    mismatch = user.change_password(form.text, "abcd-1234", "abcd-9999")
    assert mismatch.status_code == 400 and "서로 달라요" in mismatch.text
    too_short = user.change_password(form.text, "a1")
    assert too_short.status_code == 400 and "이상으로" in too_short.text
    same = user.change_password(form.text, lab.passwords[login])
    assert same.status_code == 400 and "다른 새 비밀번호" in same.text

    done = user.change_password(form.text, NEW_PASSWORD)
    assert done.status_code == 200 and "/hub/" in str(done.url) and "로그인해요" not in done.text

    # the old password no longer works; the new one logs straight in
    assert HubUser(lab.url, login).submit_login(lab.passwords[login]).status_code == 403
    user = HubUser(lab.url, login)
    again = user.submit_login(NEW_PASSWORD)
    assert again.status_code == 200 and "새 비밀번호 정하기" not in again.text
    lab.passwords[login] = NEW_PASSWORD

    # later, while logged in: the current password is asked for, and the new one must differ
    form = user.http.get("/hub/change-password")
    wrong = user.change_password(form.text, "later-2027-lab", current="not-my-password1")
    assert wrong.status_code == 400 and "맞지 않아요" in wrong.text
    same = user.change_password(form.text, NEW_PASSWORD, current=NEW_PASSWORD)
    assert same.status_code == 400 and "다른 새 비밀번호" in same.text
    changed = user.change_password(form.text, "later-2027-lab", current=NEW_PASSWORD)
    assert changed.status_code == 200 and "로그인해요" not in changed.text
    assert HubUser(lab.url, login).submit_login(NEW_PASSWORD).status_code == 403
    assert HubUser(lab.url, login).submit_login("later-2027-lab").status_code == 200
    lab.passwords[login] = "later-2027-lab"


def test_groups_follow_the_roster(lab, logged_in):
    trainer = logged_in("trainer")
    model = trainer.api("GET", f"/hub/api/users/{trainer.name}").json()
    assert {"trainer", "nbgrader-ai-basics", "formgrade-ai-basics"} <= set(model["groups"])
    learner = logged_in("learner")
    groups = set(learner.api("GET", f"/hub/api/users/{learner.name}").json()["groups"])
    assert groups == {"learner", "nbgrader-ai-basics"}


def test_only_the_course_trainer_reaches_its_formgrader(lab, logged_in):
    trainer, ttt_trainer, learner = logged_in("trainer"), logged_in("ttt_trainer"), logged_in("learner")
    ok = trainer.http.get("/services/grader-ai-basics/formgrader")
    assert ok.status_code == 200 and "formgrader" in ok.text.lower()
    for user in (ttt_trainer, learner):
        denied = user.http.get("/services/grader-ai-basics/formgrader")
        assert denied.status_code == 403, (user.name, denied.status_code)
    assert ttt_trainer.http.get("/services/grader-ttt/formgrader").status_code == 200
