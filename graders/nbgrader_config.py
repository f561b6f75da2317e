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

# --- What learners see where a solution was removed --------------------------------------------
c.ClearSolutions.code_stub = {"python": "# 여기에 답을 써 주세요\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "여기에 답을 써 주세요."

# --- Korean feedback page ------------------------------------------------------------------------
# graders/templates/donghaeng_feedback extends nbgrader's own "feedback" template (see the .j2 file).
# Setting extra_template_basedirs stops nbgrader from adding its template folder itself, so it is
# listed here as well.
import nbgrader  # noqa: E402 - only to locate nbgrader's templates

_NBGRADER_TEMPLATES = os.path.join(
    os.path.dirname(os.path.abspath(nbgrader.__file__)), "server_extensions", "formgrader", "templates"
)
c.HTMLExporter.extra_template_basedirs = [os.path.join(_HERE, "templates"), _NBGRADER_TEMPLATES]
c.HTMLExporter.template_name = "donghaeng_feedback"
c.HTMLExporter.template_file = "donghaeng_feedback.html.j2"
