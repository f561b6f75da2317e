"""Shared nbgrader settings for every 동행랩 course directory (nbgrader 0.9.6).

A course directory's own ``nbgrader_config.py`` loads this file and adds what is course-specific::

    c = get_config()
    load_subconfig("/path/to/repo/graders/nbgrader_config.py")
    c.CourseDirectory.course_id = "ai-basics"
    c.CourseDirectory.root = "/srv/donghaeng/courses/ai-basics"

(or pass it with ``nbgrader ... --config graders/nbgrader_config.py``).  Nothing here depends on a
course, on the exchange or on authentication.
"""

import os
import sys

c = get_config()  # noqa: F821 - injected by traitlets when the config file is loaded

_HERE = os.path.dirname(os.path.abspath(__file__))  # __file__ is set by traitlets' config loader

# --- Autograde: how long one cell may run -------------------------------------------------------
# The hub passes lab.toml's `autograde_timeout` in this variable; 30 s matches nbgrader's default.
_DEFAULT_TIMEOUT = 30
_raw_timeout = os.environ.get("DONGHAENG_AUTOGRADE_TIMEOUT", "").strip()
try:
    _timeout = int(_raw_timeout) if _raw_timeout else _DEFAULT_TIMEOUT
    if _timeout <= 0:
        raise ValueError(_raw_timeout)
except ValueError:
    print(
        f"donghaeng: ignoring DONGHAENG_AUTOGRADE_TIMEOUT={_raw_timeout!r} (want a positive number of "
        f"seconds); using {_DEFAULT_TIMEOUT}",
        file=sys.stderr,
    )
    _timeout = _DEFAULT_TIMEOUT
# nbgrader's Execute preprocessor redefines `timeout`, so set it on both classes.
c.ExecutePreprocessor.timeout = _timeout
c.Execute.timeout = _timeout

# --- Autograde: learners' code runs in a sandbox ------------------------------------------------
# donghaeng.sandbox wraps nbgrader's own Execute preprocessor: each kernel starts in new user, mount,
# PID and network namespaces (no network, the course folder and homes hidden, only the submission's
# folder visible) with resource limits.  `donghaeng course autograde` passes lab.toml's values in
# these variables; a bad value falls back to the default with a note on stderr.
def _env_int(name, default, minimum=1):
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
        if value < minimum:
            raise ValueError(raw)
        return value
    except ValueError:
        print(f"donghaeng: ignoring {name}={raw!r}; using {default}", file=sys.stderr)
        return default


if os.environ.get("DONGHAENG_AUTOGRADE_SANDBOX", "1") != "0":
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        SaveAutoGrades,
    )

    from donghaeng import sandbox_docker
    from donghaeng.grading.twophase import DockerTwoPhaseExecute, SandboxTwoPhaseExecute
    from donghaeng.sandbox import LimitOutputSize

    # lab.toml's autograde_sandbox: "docker" (a throw-away container of the grader image), "process"
    # (donghaeng.sandbox) or "auto" (docker when the engine answers and the grader image exists).
    _kind = os.environ.get("DONGHAENG_AUTOGRADE_SANDBOX_KIND", "auto")
    _in_docker = _kind != "process" and sandbox_docker.available()
    if _kind == "docker" and not _in_docker:
        print("donghaeng: autograde_sandbox = 'docker' 인데 Docker 엔진이나 grader 이미지를 쓸 수 없어요. "
              "`sudo donghaeng images build grader`로 만들어 주세요. / the Docker sandbox is not available: "
              "build it with `donghaeng images build grader`.", file=sys.stderr)
        sys.exit(2)
    # nbgrader's default autograde_preprocessors, with a sandboxed two-phase Execute (hidden tests run
    # in a clean process, never in the learner's kernel: donghaeng.grading.twophase) and a
    # size-capped LimitOutput.
    c.Autograde.autograde_preprocessors = [
        DockerTwoPhaseExecute if _in_docker else SandboxTwoPhaseExecute, IgnorePattern,
        ClearMetadataPreprocessor, LimitOutputSize, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    for _manager in (c.SandboxKernelManager, c.DockerKernelManager):
        _manager.memory_mb = _env_int("DONGHAENG_AUTOGRADE_MEMORY_MB", 2048)
        _manager.processes = _env_int("DONGHAENG_AUTOGRADE_PROCESSES", 64)
        _manager.cpu_seconds = _env_int("DONGHAENG_AUTOGRADE_CPU_SECONDS", 600)
        _manager.file_mb = _env_int("DONGHAENG_AUTOGRADE_FILE_MB", 64)
        _manager.open_files = _env_int("DONGHAENG_AUTOGRADE_OPEN_FILES", 256)
    _hide = os.environ.get("DONGHAENG_AUTOGRADE_HIDE", "/home")
    c.SandboxKernelManager.hide_paths = [p for p in _hide.split(os.pathsep) if p]
# Output kept per cell in the graded notebook and the feedback (nbgrader's LimitOutput, plus characters).
c.LimitOutput.max_lines = _env_int("DONGHAENG_AUTOGRADE_OUTPUT_LINES", 1000)
c.LimitOutput.max_traceback = 100
c.LimitOutputSize.max_chars = _env_int("DONGHAENG_AUTOGRADE_OUTPUT_CHARS", 100_000)

# --- Cells a learner deleted or changed -------------------------------------------------------
# nbgrader's sanitize steps, with an OverwriteCells that compares a locked cell with what learners
# received (hidden tests removed), so only a real edit is reported (nbgrader #1961).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades, OverwriteKernelspec,
)

from donghaeng.grading.preprocessors import HideTestsInFeedback, ReleasedOverwriteCells  # noqa: E402

c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateIds, OverwriteKernelspec, ReleasedOverwriteCells, CheckCellMetadata,
]
# nbgrader puts changed locked cells back from the gradebook (checksums); deleted grade cells are
# added back too, so deleting a test cell never earns its points.  The note is Korean
# (donghaeng.grading.submissions.RESTORED_MARK finds it to explain the score).
c.OverwriteCells.add_missing_cells = True
c.OverwriteCells.missing_cell_notification = (
    "이 셀({cell_id})은 제출물에서 지워져 있어서 채점할 때 되살렸어요.\n\n"
)

# --- What learners see where a solution was removed --------------------------------------------
c.ClearSolutions.code_stub = {"python": "# 여기에 답을 써 주세요\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "여기에 답을 써 주세요."

# --- Korean feedback page ------------------------------------------------------------------------
# Learners' feedback shows each test's outputs (Korean lines), never its code: nbgrader's feedback
# prints hidden tests and their right answers (nbgrader #917).
c.GenerateFeedback.preprocessors = [GetGrades, HideTestsInFeedback, CSSHTMLHeaderPreprocessor]
# graders/templates/donghaeng_feedback extends nbgrader's own "feedback" template (see the .j2 file).
# Setting extra_template_basedirs stops nbgrader from adding its template folder itself, so it is
# listed here as well.
import nbgrader  # noqa: E402 - only to locate nbgrader's templates

_NBGRADER_TEMPLATES = os.path.join(
    os.path.dirname(os.path.abspath(nbgrader.__file__)), "server_extensions", "formgrader", "templates"
)
# Feedback has an exporter class of its own: formgrader's HTMLExporter reads this file too, and the
# feedback template (which formgrader's settings do not replace) made its submission pages fail.
c.GenerateFeedback.exporter_class = "donghaeng.safe_html.FeedbackExporter"
c.FeedbackExporter.extra_template_basedirs = [os.path.join(_HERE, "templates"), _NBGRADER_TEMPLATES]
c.FeedbackExporter.template_name = "donghaeng_feedback"
c.FeedbackExporter.template_file = "donghaeng_feedback.html.j2"

# Learners' markdown and outputs are made inert (no scripts, event handlers, frames or javascript:
# links) on the feedback page and in the formgrader, whose exporter reads this file too: nbconvert's
# sanitizer, with donghaeng.safe_html's filters so that nbgrader's templates are covered and Markdown's
# own tags survive.  The home service also serves feedback with a sandboxing Content-Security-Policy.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {
    "clean_html": "donghaeng.safe_html.clean_html",
    "strip_files_prefix": "donghaeng.safe_html.strip_files_prefix",
}
