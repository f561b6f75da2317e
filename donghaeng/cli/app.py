"""``donghaeng``: the one front door for admins and trainers.

Every command wraps the real component: JupyterHub for ``up``, nbgrader's own apps for ``course``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import httpx
import jsonschema
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from donghaeng.deploy import k8s

from donghaeng.hub import queue as classstart

from donghaeng.services import classprepare
from donghaeng.common.cohort import Cohort
from donghaeng.grading.courses import CourseRunner, NbgraderError, StepResult
from donghaeng.deploy.images import images_app
from donghaeng.deploy.checkout import CheckoutError
from donghaeng.deploy.provision import ProvisionError, import_roster, prepare_lab
from donghaeng.common.roster import RosterError, read_roster
from donghaeng.common.settings import REPO_ROOT, SETTINGS_ENV, SPAWNER_ENV, Settings, SettingsError, load_settings

T = TypeVar("T")
console = Console()
err = Console(stderr=True)

app = typer.Typer(
    help="동행랩 관리 도구 / Donghaeng Lab admin & trainer tool.",
    no_args_is_help=True, rich_markup_mode="rich",
)
cohort_app = typer.Typer(help="학습자 명단 관리 / Manage the cohort (accounts).", no_args_is_help=True)
course_app = typer.Typer(help="과제 배포·수집·채점·피드백 / Release, collect, grade, feedback.",
                         no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")
app.add_typer(course_app, name="course")
cert_app = typer.Typer(help="수료증 발급·취소·확인 / Certificates: status, issue, revoke, verify.",
                       no_args_is_help=True)
app.add_typer(cert_app, name="cert")
app.add_typer(images_app, name="images")

SettingsOpt = Annotated[Optional[Path], typer.Option(
    "--settings", "-s", envvar=SETTINGS_ENV,
    help="설정 파일(lab.toml) 경로 / path of the settings file.")]
CourseArg = Annotated[str, typer.Argument(help="과정 아이디 (예: ai-basics) / course id.")]
AssignmentArg = Annotated[str, typer.Argument(help="과제 이름 (예: m1-first-steps) / assignment name.")]


class_app = typer.Typer(help="수업 시작 준비 / Class start: servers ready before learners arrive.",
                        no_args_is_help=True)
app.add_typer(class_app, name="class")


@class_app.command("prepare")
def class_prepare(
    course: Annotated[str, typer.Option("--course", "-c", help="과정 아이디 / course id.")],
    settings_path: SettingsOpt = None,
    concurrency: Annotated[Optional[int], typer.Option(
        help="한 번에 켜는 실습실 수(기본: class_start.spawn_concurrency) / servers started at once.")] = None,
) -> None:
    """수업 전에 과정 학습자들의 실습실을 미리 켜요 / Start a course's learners' servers before class."""
    settings = _settings(settings_path)
    try:
        settings.course(course)
    except KeyError as e:
        err.print(f"[red]{e.args[0]}[/red]")
        raise typer.Exit(2) from e
    logins = classprepare.course_learners(settings, course)
    hub_api = settings.hub_api_url
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("실습실 준비 / preparing servers", total=len(logins))
        report = asyncio.run(classprepare.prepare_servers(
            hub_api, classstart.prepare_token(settings), logins, concurrency or settings.class_start.spawn_concurrency,
            on_ready=lambda _: progress.advance(task)))
    console.print(f"준비됨 {len(report.ready)}명 / ready {len(report.ready)}, "
                  f"실패 {len(report.failed)}명 / failed {len(report.failed)}")
    for login, why in report.failed.items():
        err.print(f"[red]{login}: {why}[/red]")
    if report.failed:
        raise typer.Exit(1)


k8s_app = typer.Typer(help="쿠버네티스(Zero to JupyterHub) / Kubernetes via the z2jh chart.", no_args_is_help=True)
app.add_typer(k8s_app, name="k8s")


@k8s_app.command("values")
def k8s_values(
    output: Annotated[Path, typer.Option("--output", "-o", help="쓸 파일 / file to write.")] = Path("values.yaml"),
    placeholders: Annotated[int, typer.Option(
        min=0, help="수업 시작 몰림에 대비해 비워 두는 학습자 자리 수 / placeholder pods for class-start bursts.")] = 0,
    settings_path: SettingsOpt = None,
) -> None:
    """lab.toml로 z2jh values.yaml을 만들고 차트 스키마로 검사해요 / Generate and validate z2jh values."""
    generated = k8s.values(_settings(settings_path), placeholders)
    try:
        k8s.validate(generated)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path)
        err.print(f"[red]차트 스키마에 맞지 않아요 / does not fit the chart's schema: {where}: {e.message}[/red]")
        raise typer.Exit(1) from e
    output.write_text(k8s.dump(generated), encoding="utf-8")
    console.print(f"[green]만들었어요[/green]: {output}  (helm upgrade --install lab jupyterhub/jupyterhub "
                  f"--values {output})")


def _settings(path: Optional[Path]) -> Settings:
    try:
        return load_settings(path)
    except SettingsError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e


def _runner(settings_path: Optional[Path], course_id: str) -> CourseRunner:
    settings = _settings(settings_path)
    try:
        course = settings.course(course_id)
    except KeyError as e:
        err.print(f"[red]{e.args[0]}[/red]")
        raise typer.Exit(2) from e
    return CourseRunner(settings, course)


def _step(message: str, run: Callable[[], T]) -> T:
    """Run one nbgrader step with a spinner; a failure prints nbgrader's log and exits 1."""
    with console.status(message):
        try:
            return run()
        except NbgraderError as e:
            raise _fail(e) from e


def _fail(e: NbgraderError) -> typer.Exit:
    err.print(f"[red]{e}[/red]")
    if e.log:
        err.print("[dim]nbgrader 기록(마지막 부분) / nbgrader log tail:[/dim]")
        err.print(e.log[-3000:], markup=False, highlight=False)
    return typer.Exit(1)


@app.command()
def up(
    settings_path: SettingsOpt = None,
    demo: Annotated[bool, typer.Option(help="데모 학습자 명단을 넣어요 / load the demo cohort.")] = False,
    spawner: Annotated[Optional[str], typer.Option(
        help="설정 파일의 lab.spawner 대신: local, docker, swarm / overrides lab.spawner.")] = None,
    admin_roster: Annotated[Optional[Path], typer.Option(
        "--admin-roster", exists=True, dir_okay=False,
        help="이 명단의 관리자 줄만 가져와요(첫 관리자) / import the admin rows of this roster.")] = None,
) -> None:
    """허브를 시작해요 / Start the hub (prepares folders, courses and accounts first).

    Without --demo no demo cohort is imported: the first admin comes from --admin-roster, or from the
    one-time token printed here for /hub/first-admin while the cohort has no admin.
    """
    if spawner:
        os.environ[SPAWNER_ENV] = spawner  # the hub's own load_settings() sees it too
    settings = _settings(settings_path)
    try:
        report = prepare_lab(settings, demo=demo)
    except (ProvisionError, RosterError, CheckoutError) as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from e
    except NbgraderError as e:
        raise _fail(e) from e
    if demo:
        _print_demo_accounts(settings, report.initial_passwords if report else {})
    else:
        _first_admin(settings, admin_roster)
    if settings.lab.spawner != "local" and not settings.containers.image:
        _images_in_step_with_the_code(swarm=settings.lab.spawner == "swarm")
    console.print(f"[bold green]동행랩을 시작해요[/bold green]: {settings.lab.public_url}  "
                  "(멈추려면 Ctrl+C / Ctrl+C to stop)")
    hub = Path(sys.executable).parent / "jupyterhub"
    os.environ[SETTINGS_ENV] = str(settings.source)
    os.chdir(settings.paths.state)
    sys.stdout.flush()  # what was printed (the first-admin token) must not be lost in a buffer by exec
    os.execv(hub, [str(hub), "-f", str(REPO_ROOT / "hub" / "jupyterhub_config.py")])


def _images_in_step_with_the_code(swarm: bool = False) -> None:
    """Learners' containers run the toolkit copied into the learner image, with settings written from
    this checkout: rebuild the images whose inputs changed (an unchanged build is skipped in seconds);
    in swarm mode, also load the learner image onto the nodes labelled with their engine."""
    from donghaeng.deploy.images import ImageError, build_images, distribute_to_swarm

    try:
        build_images(["learner", "grader"], console=console)
        if swarm:
            distribute_to_swarm(console)
    except ImageError as e:  # e.g. Docker is down: the hub still starts and explains it to learners
        err.print(f"[yellow]{e}[/yellow]")


def _first_admin(settings: Settings, admin_roster: Optional[Path]) -> None:
    """Admins from the roster's admin rows; with none in the cohort, a one-time token for the web page."""
    from donghaeng.hub.auth import issue_first_admin_token
    from donghaeng.common.cohort import write_password_file

    cohort = Cohort(settings.paths.cohort_db)
    if admin_roster:
        try:
            admins = [p for p in read_roster(admin_roster, [c.id for c in settings.courses]) if p.role == "admin"]
        except RosterError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from e
        if not admins:
            err.print(f"[red]{admin_roster}에 관리자(역할: 관리자/admin) 줄이 없어요 / no admin rows[/red]")
            raise typer.Exit(1)
        passwords = cohort.import_people(admins).initial_passwords
        if passwords:
            write_password_file(settings.paths.passwords, passwords)
        for login, password in passwords.items():
            console.print(f"관리자 {login}: 처음 비밀번호 {password}  (처음 로그인하면 새 비밀번호를 정해요)")
    if any(a.person.role == "admin" for a in cohort.accounts()):
        return
    token = issue_first_admin_token(settings.paths.state)
    console.print(
        "[bold]아직 관리자가 없어요.[/bold] 아래 주소에서 이 토큰으로 첫 관리자를 만들어 주세요(한 번만 쓸 수 있고, "
        "다시 보여 주지 않아요).\nNo admin yet: set one up at this address with this one-time token.\n"
        f"  주소 / address: {settings.lab.public_url}/hub/first-admin\n  토큰 / token: {token}",
        highlight=False)


def _print_demo_accounts(settings: Settings, new_passwords: dict[str, str]) -> None:
    table = Table(title="데모 계정 / Demo accounts")
    for col in ("아이디 / login", "이름 / name", "역할 / role", "과정 / courses", "처음 비밀번호 / first password"):
        table.add_column(col)
    for account in Cohort(settings.paths.cohort_db).accounts():
        p = account.person
        password = new_passwords.get(p.login) or ("(이미 바꿨어요 / changed)" if not account.must_change
                                                   else "(이전에 발급 / issued before)")
        table.add_row(p.login, p.name, p.role, ", ".join(p.courses), password)
    console.print(table)
    console.print("처음 로그인하면 새 비밀번호를 정해요. 잊었다면: donghaeng cohort reset-password 아이디\n"
                  "First login asks for a new password. Forgot it? donghaeng cohort reset-password LOGIN")


@cohort_app.command("import")
def cohort_import(
    roster: Annotated[Path, typer.Argument(help="명단 파일 .csv 또는 .xlsx / roster file.", exists=True,
                                           dir_okay=False)],
    settings_path: SettingsOpt = None,
) -> None:
    """명단을 가져와요(여러 번 해도 같아요) / Import a roster; re-importing changes nothing."""
    settings = _settings(settings_path)
    try:
        report, password_file = import_roster(settings, roster)
    except RosterError as e:
        err.print(f"[red]{e}[/red]\n아무것도 바꾸지 않았어요. 고친 뒤 다시 가져와 주세요. / Nothing was changed.")
        raise typer.Exit(1) from e
    except NbgraderError as e:
        raise _fail(e) from e
    console.print(f"새 계정 {len(report.created)}명, 바뀐 계정 {len(report.updated)}명, "
                  f"그대로 {len(report.unchanged)}명 / created {len(report.created)}, "
                  f"updated {len(report.updated)}, unchanged {len(report.unchanged)}")
    if password_file:
        console.print(f"처음 비밀번호는 관리자만 읽을 수 있는 파일에 있어요 / initial passwords: {password_file}")


@cohort_app.command("list")
def cohort_list(settings_path: SettingsOpt = None) -> None:
    """계정 목록을 보여줘요 / List accounts."""
    settings = _settings(settings_path)
    table = Table()
    for col in ("아이디", "이름", "역할", "과정", "비밀번호"):
        table.add_column(col)
    for a in Cohort(settings.paths.cohort_db).accounts():
        table.add_row(a.login, a.person.name, a.person.role, ", ".join(a.person.courses),
                      "처음 비밀번호" if a.must_change else "설정함")
    console.print(table)


@cohort_app.command("reset-password")
def cohort_reset_password(login: str, settings_path: SettingsOpt = None) -> None:
    """새 처음 비밀번호를 발급해요 / Issue a new first-login password."""
    settings = _settings(settings_path)
    try:
        password = Cohort(settings.paths.cohort_db).reset_password(login)
    except KeyError as e:
        err.print(f"[red]'{login}' 계정이 없어요 / no such account.[/red]")
        raise typer.Exit(1) from e
    console.print(f"{login}: {password}  (다음 로그인 때 새 비밀번호를 정해요)")


@course_app.command("release")
def course_release(course: CourseArg, assignment: AssignmentArg, settings_path: SettingsOpt = None) -> None:
    """과제를 만들어 학습자에게 배포해요 / Generate and release an assignment."""
    runner = _runner(settings_path, course)
    _step("과제를 만들고 배포하고 있어요… / releasing…", lambda: runner.release(assignment))
    console.print(f"[green]배포했어요[/green]: {course}/{assignment}")


@course_app.command("collect")
def course_collect(course: CourseArg, assignment: AssignmentArg, settings_path: SettingsOpt = None) -> None:
    """제출물을 모아요 / Collect submissions."""
    runner = _runner(settings_path, course)
    students = _step("제출물을 모으고 있어요… / collecting…", lambda: runner.collect(assignment))
    console.print(f"제출한 학습자 {len(students)}명 / {len(students)} submissions: {', '.join(students)}")


@course_app.command("autograde")
def course_autograde(course: CourseArg, assignment: AssignmentArg, settings_path: SettingsOpt = None,
                     force: bool = typer.Option(False, "--force", help="이미 채점한 제출물도 다시 채점 / regrade all"),
                     ) -> None:
    """모은 제출물을 격리된 커널에서 동시에 자동 채점해요 / Autograde collected submissions (sandboxed, parallel)."""
    runner = _runner(settings_path, course)
    try:
        total = len(runner.submitted(assignment))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("자동 채점 / autograding", total=total)
            result = runner.autograde(assignment, on_step=lambda _: progress.advance(task), force=force)
    except NbgraderError as e:
        raise _fail(e) from e
    for student, log in result.failed.items():
        err.print(f"[red]{student}: 채점하지 못했어요(제출물은 그대로 있어요) / could not grade (submission kept)[/red]")
        err.print(log[-1500:], markup=False, highlight=False)
    console.print(_autograde_table(f"{course}/{assignment} 자동 채점 결과 / autograde summary", result))
    console.print(f"채점 {len(result.ok)}명 · 이미 채점돼 건너뜀 {len(result.skipped)}명(--force로 다시 채점) · "
                  f"채점 전에 0점 {len(result.refused)}명 · 채점 못 함 {len(result.failed)}명")
    if result.failed:
        raise typer.Exit(1)


AUTOGRADE_STATUS = {
    "graded": "[green]채점했어요[/green]",
    "skipped": "그대로예요(이미 채점)",
    "refused": "[yellow]채점 전에 0점[/yellow]",
    "failed": "[red]채점하지 못했어요[/red]",
}


def _autograde_table(title: str, result: StepResult) -> Table:
    """학습자 · 점수/만점 · 상태 · 이유: one row per submission, reasons for every zero."""
    table = Table(title=title)
    for col in ("학습자", "점수/만점", "상태", "이유"):
        table.add_column(col, overflow="fold")
    for outcome in result.outcomes.values():
        score = "-" if outcome.score is None else f"{outcome.score:g}"
        max_score = "-" if outcome.max_score is None else f"{outcome.max_score:g}"
        status = AUTOGRADE_STATUS[outcome.status]
        if outcome.needs_manual:
            status += " · 강사 채점 남음"
        table.add_row(outcome.student, f"{score}/{max_score}", status,
                      "\n".join(outcome.reasons))
    return table


@course_app.command("feedback")
def course_feedback(course: CourseArg, assignment: AssignmentArg, settings_path: SettingsOpt = None) -> None:
    """피드백을 만들어 돌려줘요 / Generate and release feedback."""
    runner = _runner(settings_path, course)
    _step("피드백을 만들고 있어요… / generating feedback…", lambda: runner.feedback(assignment))
    console.print(f"[green]피드백을 돌려줬어요[/green]: {course}/{assignment}")


@course_app.command("release-solutions")
def course_release_solutions(course: CourseArg, assignment: AssignmentArg,
                             settings_path: SettingsOpt = None) -> None:
    """마감 뒤 자가 점검 풀이를 공개해요 / Publish self-check solutions after the deadline."""
    runner = _runner(settings_path, course)
    dest = _step("풀이를 공개하고 있어요… / publishing…", lambda: runner.release_solutions(assignment))
    console.print(f"[green]풀이를 공개했어요[/green]: {dest}  (학습자는 q.solution()으로 봐요)")


def _cert_call(run: Callable[[], T]) -> T:
    """Run a certification step; a refusal prints its Korean reason and exits 1."""
    from rich.markup import escape

    from donghaeng.services.certification import CertificationError

    try:
        return run()
    except (CertificationError, PermissionError) as e:
        reason = str(e) if isinstance(e, CertificationError) else \
            f"권한이 없어요: {e.filename} (관리자 계정(root)으로 실행해 주세요)"
        err.print(f"[red]{escape(reason)}[/red]", highlight=False)
        raise typer.Exit(1) from e


def _operator() -> str:
    return f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'} (cli)"


@cert_app.command("status")
def cert_status(settings_path: SettingsOpt = None,
                course: Annotated[Optional[str], typer.Option(help="이 과정 학습자만 / only this course")] = None,
                login: Annotated[Optional[str], typer.Option(help="이 학습자만 / only this learner")] = None,
                ) -> None:
    """학습자별 수료 단계와 남은 조건을 보여줘요 / Levels held and what is still missing."""
    from donghaeng.services.certification import evaluate

    settings = _settings(settings_path)
    learners = _cert_call(lambda: evaluate(settings, login))
    table = Table(title="수료 현황 / certification status")
    for col in ("아이디", "이름", "받은 단계", "다음 단계에 남은 것"):
        table.add_column(col, overflow="fold")
    for person in learners:
        if course and course not in person.courses:
            continue
        todo = [e for e in person.eligibility.values() if e.level not in person.levels]
        nxt = todo[0] if todo else None
        missing = "모두 받았어요" if nxt is None else (f"{nxt.name}: 발급할 수 있어요" if nxt.eligible
                                                   else f"{nxt.name}:\n" + "\n".join(nxt.missing))
        table.add_row(person.login, person.name, ", ".join(person.levels) or "-", missing)
    console.print(table)


@cert_app.command("issue")
def cert_issue(login: str, level: str, settings_path: SettingsOpt = None) -> None:
    """수료증을 발급해요(기준을 채운 경우만) / Issue a level when the policy allows it."""
    from donghaeng.services.certification import issue

    settings = _settings(settings_path)
    cert = _cert_call(lambda: issue(settings, login, level, _operator()))
    console.print(f"[green]발급했어요[/green]: {cert.serial} {cert.name} ({cert.level})\n"
                  f"PDF: {cert.pdf_path}\n전자 수료증 / credential: {cert.credential_path}")


@cert_app.command("revoke")
def cert_revoke(serial: str, reason: Annotated[str, typer.Option("--reason", help="취소 사유 / why")],
                settings_path: SettingsOpt = None) -> None:
    """수료증을 취소해요(열린 과정도 닫혀요) / Revoke a certificate (closes what it unlocked)."""
    from donghaeng.services.certification import revoke

    settings = _settings(settings_path)
    _cert_call(lambda: revoke(settings, serial, _operator(), reason))
    console.print(f"[yellow]취소했어요[/yellow]: {serial}")


@cert_app.command("verify")
def cert_verify(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="수료증 .json")],
                settings_path: SettingsOpt = None) -> None:
    """전자 수료증(JSON)의 서명과 취소 여부를 확인해요 / Verify a credential file."""
    import json

    from donghaeng.services.certification import verify_credential

    settings = _settings(settings_path)
    try:
        credential = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        credential = None
    result = verify_credential(settings, credential)
    (console if result.ok else err).print(result.reason, markup=False, highlight=False)
    if result.serial:
        console.print(f"{result.serial} · {result.name} · {result.level} · {result.issued_at[:10]}",
                      markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def status(settings_path: SettingsOpt = None) -> None:
    """허브·과정·제출 현황을 보여줘요 / Show hub, courses and submissions."""
    settings = _settings(settings_path)
    url = settings.hub_api_url
    try:
        version = httpx.get(url, timeout=3).json()["version"]
        console.print(f"허브: [green]실행 중[/green] (JupyterHub {version}) {url}")
    except (httpx.HTTPError, ValueError, KeyError):
        console.print(f"허브: [yellow]멈춤[/yellow] / hub not running at {url}")
    accounts = Cohort(settings.paths.cohort_db).accounts() if settings.paths.cohort_db.exists() else []
    console.print(f"계정 {len(accounts)}개 / {len(accounts)} accounts")
    table = Table(title="과정 / courses")
    for col in ("과정", "과제", "배포", "제출", "채점"):
        table.add_column(col)
    for course in settings.courses:
        runner = CourseRunner(settings, course)
        for assignment in runner.assignments():
            released = (settings.paths.exchange / course.id / "outbound" / assignment).is_dir()
            graded = (runner.root / "autograded")
            graded_n = sum(1 for p in graded.glob(f"*/{assignment}")) if graded.is_dir() else 0
            table.add_row(course.id, assignment, "예" if released else "아니요",
                          str(len(runner.submitted(assignment))), str(graded_n))
    console.print(table)


@app.command()
def backup(settings_path: SettingsOpt = None,
           output: Annotated[Optional[Path], typer.Option(
               "--output", "-o", help="백업 파일 경로(기본: /var/backups/donghaeng/…) / archive path.")] = None,
           ) -> None:
    """실습실 전체를 백업 파일 하나로 남겨요(수업 중에도) / Back up every piece of state, even mid-class."""
    from donghaeng.deploy.backup import BackupError, backup as run_backup

    settings = _settings(settings_path)
    try:
        with _file_progress("백업하고 있어요 / backing up") as step:
            report = run_backup(settings, output, step)
    except BackupError as e:
        err.print(f"[red]{escape(str(e))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from e
    console.print(f"[green]백업했어요[/green]: {report.archive} (root만 읽을 수 있어요 / root-only)\n"
                  f"파일 {report.files}개, {report.bytes / 2**20:.1f} MiB · 데이터베이스 {len(report.databases)}개 · "
                  f"홈 {len(report.homes)}개", highlight=False)
    _print_skipped(report.skipped, "알려 드릴 것 / notes")


@app.command()
def restore(archive: Annotated[Path, typer.Argument(help="donghaeng backup이 만든 파일 / the archive.")],
            settings_path: SettingsOpt = None,
            force: Annotated[bool, typer.Option(
                "--force", help="허브가 실행 중이어도 복원해요 / restore even while the hub runs.")] = False,
            ) -> None:
    """백업 파일을 검사한 뒤 되살려요(허브를 멈춘 뒤) / Check an archive, then restore it (hub stopped)."""
    from donghaeng.deploy.backup import BackupError, restore as run_restore

    settings = _settings(settings_path)
    try:
        with _file_progress("검사하고 되살리고 있어요 / checking and restoring") as step:
            report = run_restore(settings, archive, force=force, step=step)
    except BackupError as e:
        err.print(f"[red]{escape(str(e))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from e
    console.print(f"[green]복원했어요[/green]: 파일 {report.files}개, 홈 {len(report.homes)}개. "
                  "이제 sudo donghaeng up으로 시작해요. / Restored; start the lab with `sudo donghaeng up`.",
                  highlight=False)
    for path in report.kept_aside:
        console.print(f"전에 있던 것은 여기 남겨 두었어요(확인 뒤 지워도 돼요) / previous copy kept: {path}",
                      highlight=False)
    if report.created_accounts:
        console.print(f"새로 만든 시스템 계정 / accounts created: {', '.join(report.created_accounts)}")
    _print_skipped(report.skipped, "주의 / notes")


@contextmanager
def _file_progress(description: str) -> Iterator[Callable[[str], None]]:
    """A progress display counting files; yields the callback backup and restore call per file."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("파일 {task.completed}개"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda _member: progress.advance(task)


def _print_skipped(lines: list[str], title: str) -> None:
    if lines:
        err.print(f"[yellow]{title} ({len(lines)}):[/yellow]")
        for line in lines:
            err.print(f"  - {line}", markup=False, highlight=False, soft_wrap=True)
