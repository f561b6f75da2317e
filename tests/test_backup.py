"""The restore drill on a real lab: back up mid-class, lose everything, restore, and it is all back.

A learner submits m1 and saves a file of their own, the trainer autogrades and grades the reflection,
a certificate is issued; ``donghaeng backup`` runs while the hub and the learner's server are up.  Then
the data folder, the gradebook and the learner's account and home are destroyed, ``donghaeng restore``
puts them back and ``donghaeng up`` starts the lab again.  A learner's links and FIFO never make root
read or write outside their home, and an archive changed after the backup is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import tarfile
from contextlib import suppress
from pathlib import Path

import httpx
import nbformat
import pytest
from nbgrader.api import Gradebook

from donghaeng.common import database
from donghaeng.common.accounts import remove_system_user
from donghaeng.deploy.backup import backup, restore
from donghaeng.common.cohort import Cohort
from donghaeng.hub.containers import docker_client
from donghaeng.deploy.image_refs import LEARNER_IMAGE
from donghaeng.common.roster import Person
from donghaeng.common.settings import load_settings
from hubclient import HubUser
from labharness import running_lab, start_hub, stop_hub
from notebooks import solved
from test_certification import AI_BASICS, register_assignment, write_grades
from test_course_flow import ASSIGNMENT, COURSE, NOTEBOOK, WIDGET_ANSWER, assignment_action, put_file, run_as
from test_postgres import pg_courses  # noqa: F401 (a fixture: two prepared courses with PostgreSQL gradebooks)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
PEOPLE = {"learner": ("김하늘", "learner", "ai-basics"), "trainer": ("최은정", "trainer", "ai-basics")}
MEMO = "내 메모.txt"
MEMO_TEXT = "오늘 배운 것: 프롬프트에는 맥락을 꼭 적어요.\n"


def tree_digest(folder: Path) -> dict[str, str]:
    """Every regular file below *folder*: relative path -> SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def scores(lab) -> dict[str, tuple[float, float]]:
    """(score, max score) of each module, as the gradebook has them."""
    path = lab.settings.paths.course_dir(COURSE) / "gradebook.db"
    with Gradebook(f"sqlite:///{path}", course_id=COURSE) as gb:
        found = {a: gb.find_submission(a, lab.logins["learner"]) for a in AI_BASICS}
        return {a: (s.score, s.max_score) for a, s in found.items()}


def grade_the_reflection(lab) -> None:
    """What the trainer does in formgrader: full marks for the answer left for manual grading."""
    path = lab.settings.paths.course_dir(COURSE) / "gradebook.db"
    with Gradebook(f"sqlite:///{path}", course_id=COURSE) as gb:
        for notebook in gb.find_submission(ASSIGNMENT, lab.logins["learner"]).notebooks:
            for grade in notebook.grades:
                if grade.needs_manual_grade:
                    grade.manual_score, grade.needs_manual_grade = grade.max_score, False
        gb.db.commit()


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the lab creates system accounts: run the suite as root (as .ci/run does)")
    with running_lab(PEOPLE, "[home]\nenabled = false\n[model]\nenabled = false\n") as lab:
        login = lab.logins["learner"]
        try:
            yield lab, tmp_path_factory.mktemp("backup")
        finally:
            home_root = lab.settings.lab.home_root
            for kept in home_root.glob(f".{login}.*"):  # homes the restores kept aside
                shutil.rmtree(kept, ignore_errors=True)


@pytest.fixture(scope="module")
def mid_class(drill):
    """A class in progress: a graded submission, an issued certificate, a learner's own file and traps."""
    lab, tmp = drill
    lab.cli("course", "release", COURSE, ASSIGNMENT)
    learner = HubUser.logged_in(lab, "learner")
    learner.spawn()
    assignment_action(learner, "fetch")
    source = nbformat.read(REPO / "assignments" / COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released = nbformat.from_dict(learner.server("GET", f"api/contents/{NOTEBOOK}").json()["content"])
    put_file(learner, NOTEBOOK, nbformat.writes(solved(released, source)))
    put_file(learner, f"{COURSE}/{ASSIGNMENT}/donghaeng_answers.json", json.dumps(WIDGET_ANSWER, ensure_ascii=False))
    assert assignment_action(learner, "submit")["success"]
    lab.cli("course", "collect", COURSE, ASSIGNMENT)
    lab.cli("course", "autograde", COURSE, ASSIGNMENT)
    grade_the_reflection(lab)
    for assignment in AI_BASICS[1:]:  # the other modules' grades as nbgrader stores them
        register_assignment(lab.settings, COURSE, assignment)
    write_grades(lab.settings, COURSE, learner.name, dict.fromkeys(AI_BASICS[1:], 90.0))
    issued = lab.cli("cert", "issue", learner.name, "AI 기초 수료").stdout
    serial = re.search(r"DH-\d{4}-[0-9A-Z]{8}", issued).group(0)
    put_file(learner, MEMO, MEMO_TEXT)

    # Traps in the learner's home: links out of it (to a root-only file and to /etc) and a FIFO.
    outside = tmp / "outside-secret.txt"
    outside.write_text("OUTSIDE-SECRET-7f3a", encoding="utf-8")
    outside.chmod(0o600)
    home = Path(pwd.getpwnam(learner.name).pw_dir)
    for cmd in (["ln", "-s", str(outside), home / "planted-link"], ["ln", "-s", "/etc", home / "etc-link"],
                ["mkfifo", home / "pipe"]):
        assert run_as(learner.name, *map(str, cmd)).returncode == 0
    return learner, serial, outside


def credential_file(lab, serial: str) -> Path:
    return lab.settings.paths.root / "certificates" / "public" / "credentials" / f"{serial}.json"


def test_the_restore_drill(drill, mid_class):
    lab, tmp = drill
    learner, serial, outside = mid_class
    settings = lab.settings
    home = Path(pwd.getpwnam(learner.name).pw_dir)
    submitted = settings.paths.course_dir(COURSE) / "submitted" / learner.name / ASSIGNMENT
    before = {"submitted": tree_digest(submitted), "scores": scores(lab),
              "credential": credential_file(lab, serial).read_bytes(), "outside": outside.stat()}
    score, max_score = before["scores"][ASSIGNMENT]
    assert score == max_score > 6  # 6 autograded points and the reflection graded by hand

    # Mid-class: the hub and the learner's server are running.
    archive = tmp / "mid-class.tar.gz"
    made = lab.cli("backup", "--output", str(archive))
    assert "백업했어요" in made.stdout
    assert "pipe (FIFO)" in made.stderr  # skipped, reported, and the backup did not hang on it
    st = archive.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar}
        contents = b"".join(tar.extractfile(m).read() for m in members.values() if m.isreg())
    assert b"OUTSIDE-SECRET-7f3a" not in contents  # no link was followed
    mine = f"homes/{learner.name}"
    assert members[f"{mine}/planted-link"].issym() and members[f"{mine}/planted-link"].linkname == str(outside)
    assert members[f"{mine}/etc-link"].issym()
    assert not any(n.startswith(f"{mine}/etc-link/") or n == f"{mine}/pipe" for n in members)
    assert members[f"{mine}/{MEMO}"].uname == learner.name

    refused = lab.cli("restore", str(archive), check=False)
    assert refused.returncode == 1 and "실행 중이에요" in " ".join(refused.stderr.split())

    # Disaster: the server, the hub, the whole data folder, the learner's account and home are gone.
    learner.stop()
    stop_hub(lab)
    shutil.rmtree(settings.paths.root)
    remove_system_user(learner.name, settings.lab.learner_group)
    assert not home.exists()

    restored = lab.cli("restore", str(archive))
    assert "복원했어요" in restored.stdout and learner.name in restored.stdout  # its account was made again
    start_hub(lab)

    assert tree_digest(submitted) == before["submitted"]
    assert scores(lab) == before["scores"]
    assert credential_file(lab, serial).read_bytes() == before["credential"]
    assert "유효한 수료증이에요" in lab.cli("cert", "verify", str(credential_file(lab, serial))).stdout
    page = httpx.get(f"{lab.url}/services/certificates/verify/{serial}", timeout=30)
    assert page.status_code == 200 and "유효한 수료증이에요" in page.text

    # The learner logs in with the password they chose and finds their file, theirs again.
    again = HubUser(lab.url, learner.name)
    again.submit_login(lab.passwords[learner.name])
    again.make_token()  # only a logged-in browser can make one
    again.spawn()
    memo = again.server("GET", f"api/contents/{MEMO}", params={"type": "file", "format": "text"}).json()
    assert memo["content"] == MEMO_TEXT
    uid = pwd.getpwnam(learner.name).pw_uid
    assert (home / MEMO).stat().st_uid == uid and home.stat().st_uid == uid
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert os.readlink(home / "planted-link") == str(outside)
    assert not (home / "pipe").exists()
    kept = outside.stat()
    assert outside.read_text(encoding="utf-8") == "OUTSIDE-SECRET-7f3a"
    assert (kept.st_uid, kept.st_mode) == (before["outside"].st_uid, before["outside"].st_mode)

    # Restoring again over a home where the learner replaced their file by a link out of it writes
    # nothing through the link: the home is rebuilt beside it and swapped in.
    again.stop()
    stop_hub(lab)
    (home / MEMO).unlink()
    assert run_as(learner.name, "ln", "-s", str(outside), str(home / MEMO)).returncode == 0
    second = lab.cli("restore", str(archive))
    assert "남겨 두었어요" in second.stdout
    assert outside.read_text(encoding="utf-8") == "OUTSIDE-SECRET-7f3a" and outside.stat().st_uid == 0
    assert not (home / MEMO).is_symlink() and (home / MEMO).read_text(encoding="utf-8") == MEMO_TEXT
    start_hub(lab)


def test_a_changed_archive_is_refused(drill, mid_class):
    lab, tmp = drill
    _, serial, _ = mid_class
    archive = tmp / "for-tampering.tar.gz"
    lab.cli("backup", "--output", str(archive))
    credential = f"data/certificates/public/credentials/{serial}.json"
    tampered = tmp / "tampered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as out:
        for member in src:
            data = src.extractfile(member).read() if member.isreg() else None
            if member.name == credential:  # a forged level on an issued credential
                data = data.replace("AI 기초 수료".encode(), "공인 AI 강사".encode())
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    marker = credential_file(lab, serial).read_bytes()
    refused = lab.cli("restore", str(tampered), "--force", check=False)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 1
    assert "체크섬" in said and credential in said and "아무것도 복원하지 않았어요" in said
    assert credential_file(lab, serial).read_bytes() == marker
    assert not list(lab.settings.paths.root.parent.glob(".*restoring*"))
    not_ours = tmp / "not-a-backup.tar.gz"
    with tarfile.open(not_ours, "w:gz") as out:
        out.add(REPO / "pyproject.toml", arcname="data/pyproject.toml")
    refused = lab.cli("restore", str(not_ours), "--force", check=False)
    assert refused.returncode == 1 and "동행랩 백업 파일이 아니에요" in " ".join(refused.stderr.split())


def in_volume(client, volume: str, script: str) -> str:
    """Run *script* as root in a throw-away learner container with *volume* at /v; return its output."""
    config = client.create_host_config(binds={volume: {"bind": "/v", "mode": "rw"}}, network_mode="none")
    container = client.create_container(LEARNER_IMAGE, command=["sh", "-c", script], user="root", host_config=config)
    try:
        client.start(container)
        assert client.wait(container, timeout=60)["StatusCode"] == 0, client.logs(container)
        return client.logs(container).decode()
    finally:
        client.remove_container(container, force=True)


def test_home_volumes_keep_owners_modes_and_links(tmp_path):
    """Docker mode: each learner's home volume goes in and comes back through Docker's archive API."""
    import docker

    if os.geteuid() != 0:
        pytest.skip("backup and restore run as root")
    try:
        client = docker_client()
        client.ping()
        client.inspect_image(LEARNER_IMAGE)
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker daemon or learner image here: {e}")
    login = f"vol{secrets.token_hex(3)}"
    data = tmp_path / "data"
    settings_path = tmp_path / "lab.toml"
    settings_path.write_text(f'[lab]\ndata_dir = "{data}"\nspawner = "docker"\n', encoding="utf-8")
    settings = load_settings(settings_path)
    Cohort(settings.paths.cohort_db).import_people([Person(login, "문볼륨", "learner", ())])
    volume = settings.containers.volume_name.format(username=login)
    client.create_volume(volume)
    try:
        in_volume(client, volume, "cd /v && mkdir -p 'work/새 폴더' && printf '안녕' > 'work/새 폴더/메모.txt' && "
                                  "chmod 640 'work/새 폴더/메모.txt' && ln -s /etc/shadow shadow-link && mkfifo pipe && "
                                  "chown -R 1234:2345 work && chown -h 1234:2345 shadow-link")
        report = backup(settings, tmp_path / "volumes.tar.gz")
        assert f"volumes/{volume}/pipe (링크·파일·폴더가 아님 / not a file, folder or link)" in report.skipped
        client.remove_volume(volume, force=True)
        restore(settings, tmp_path / "volumes.tar.gz")
        shown = in_volume(client, volume, "cd /v && stat -c '%n %u:%g %a' 'work/새 폴더/메모.txt' shadow-link && "
                                          "cat 'work/새 폴더/메모.txt' && readlink shadow-link && ls")
        assert "work/새 폴더/메모.txt 1234:2345 640" in shown and "shadow-link 1234:2345 777" in shown
        assert "안녕" in shown and "/etc/shadow" in shown and "pipe" not in shown
    finally:
        with suppress(docker.errors.DockerException):
            client.remove_volume(volume, force=True)


def test_postgresql_gradebooks_are_dumped_and_restored(pg_courses):
    """[database]: each course's gradebook goes in as a pg_dump and comes back, readable again by the
    read-only role that root's services use."""
    settings, (runner, _) = pg_courses
    course_id = runner.course.id
    url = database.gradebook_url(settings, course_id)
    with Gradebook(url, course_id=course_id) as gb:
        gb.add_student("kept_student", first_name="보존")
    archive = settings.paths.root.parent / "pg.tar.gz"
    assert f"database/course-{course_id}.dump" in backup(settings, archive).databases
    with Gradebook(url, course_id=course_id) as gb:
        gb.remove_student("kept_student")
    restore(settings, archive, force=True)  # force: only the probe of a hub on this lab's default port
    with database.reader_gradebook(settings, course_id) as gb:
        assert gb.find_student("kept_student").first_name == "보존"
