"""A long-lived ``nbgrader autograde``: one process grades many submissions, one after another.

``python -m donghaeng.grading.worker ASSIGNMENT`` runs in the course folder as the course's grader
account (see :meth:`donghaeng.grading.courses.CourseRunner.autograde`).  It reads one student id per line
on stdin and answers each with one JSON line ``{"student", "ok", "log"}`` on stdout, after nbgrader's
own :class:`~nbgrader.converters.Autograde` converter has graded that student's submission, exactly
as ``nbgrader autograde ASSIGNMENT --student ID --force`` would (same config files, preprocessors
and gradebook).

Why a worker: a fresh ``nbgrader`` process costs about 1.5 s of CPU in imports alone, more than
grading a short notebook; a pool of workers pays it once per worker rather than once per learner.
Each submission still gets its own converter, its own sandboxed kernel and its own log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import traceback

from nbgrader.apps.baseapp import NbGrader
from nbgrader.converters import Autograde, NbGraderException


class AutogradeWorker(NbGrader):
    name = "donghaeng-autograde-worker"
    description = "Autograde the students named on stdin, one JSON line each on stdout."

    def start(self) -> None:
        super().start()
        if len(self.extra_args) != 1:
            self.fail("usage: python -m donghaeng.grading.worker ASSIGNMENT")
        assignment = self.extra_args[0]
        # The answers get a private copy of stdout; anything else printed (by nbgrader, a
        # preprocessor or a library) goes to stderr and cannot corrupt them.
        answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        for line in sys.stdin:
            student = line.strip()
            if student:
                answers.write(json.dumps(self.grade(assignment, student), ensure_ascii=False) + "\n")

    def grade(self, assignment: str, student: str) -> dict[str, object]:
        """Autograde one submission; its log is captured in the command line's format."""
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(logging.Formatter("[%(name)s | %(levelname)s] %(message)s"))
        self.log.addHandler(handler)
        self.coursedir.assignment_id, self.coursedir.student_id = assignment, student
        ok = True
        try:
            converter = Autograde(coursedir=self.coursedir, parent=self)
            converter.force = True
            converter.start()
        except NbGraderException:
            ok = False  # nbgrader has logged why
        except Exception:  # noqa: BLE001 - one submission's crash must not end the others' grading
            self.log.error("%s", traceback.format_exc())
            ok = False
        finally:
            self.log.removeHandler(handler)
        return {"student": student, "ok": ok, "log": buffer.getvalue()}


if __name__ == "__main__":
    AutogradeWorker.launch_instance()
