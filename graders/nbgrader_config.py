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

import nbgrader
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades, IgnorePattern,
    OverwriteKernelspec, SaveAutoGrades,
)

from donghaeng.grading.preprocessors import HideTestsInFeedback, ReleasedOverwriteCells
from donghaeng.grading.twophase import SandboxedTwoPhaseExecute
from donghaeng.grading.sandbox import LimitOutputSize

c = get_config()  # noqa: F821 - injected by traitlets when the config file is loaded

_HERE = os.path.dirname(os.path.abspath(__file__))  # __file__ is set by traitlets' config loader

# --- Autograde: learners' code runs in a sandbox ------------------------------------------------
# nbgrader's default autograde_preprocessors, with a sandboxed two-phase Execute (hidden tests run in a
# clean process, never in the learner's kernel: donghaeng.grading.twophase; the kernel in a throw-away
# container or in donghaeng.grading.sandbox's namespaces) and a size-capped LimitOutput.  The sandbox kind, the
# timeout and the limits are traitlets that each course's nbgrader_config.py sets from lab.toml's
# [autograde] (donghaeng.grading.courses.autograde_config), so the CLI, the grading pool and formgrader agree.
c.Autograde.autograde_preprocessors = [
    SandboxedTwoPhaseExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutputSize, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata,
]
c.LimitOutput.max_traceback = 100

# --- Cells a learner deleted or changed -------------------------------------------------------
# nbgrader's sanitize steps, with an OverwriteCells that compares a locked cell with what learners
# received (hidden tests removed), so only a real edit is reported (nbgrader #1961).


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

_NBGRADER_TEMPLATES = os.path.join(
    os.path.dirname(os.path.abspath(nbgrader.__file__)), "server_extensions", "formgrader", "templates"
)
# Feedback has an exporter class of its own: formgrader's HTMLExporter reads this file too, and the
# feedback template (which formgrader's settings do not replace) made its submission pages fail.
c.GenerateFeedback.exporter_class = "donghaeng.common.safe_html.FeedbackExporter"
c.FeedbackExporter.extra_template_basedirs = [os.path.join(_HERE, "templates"), _NBGRADER_TEMPLATES]
c.FeedbackExporter.template_name = "donghaeng_feedback"
c.FeedbackExporter.template_file = "donghaeng_feedback.html.j2"

# Learners' markdown and outputs are made inert (no scripts, event handlers, frames or javascript:
# links) on the feedback page and in the formgrader, whose exporter reads this file too: nbconvert's
# sanitizer, with donghaeng.common.safe_html's filters so that nbgrader's templates are covered and Markdown's
# own tags survive.  The home service also serves feedback with a sandboxing Content-Security-Policy.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {
    "clean_html": "donghaeng.common.safe_html.clean_html",
    "strip_files_prefix": "donghaeng.common.safe_html.strip_files_prefix",
}
