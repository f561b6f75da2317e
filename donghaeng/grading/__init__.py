"""Graders for autograded test cells: prompt rubrics and saved widget answers, with partial credit.

Both return a :class:`~donghaeng.grading.report.Report`; a test cell ends with
``report.explain(points=N)``, which prints one Korean line per criterion and leaves the score as
the cell's value, so nbgrader gives partial credit (see docs/decisions.md).
"""

from donghaeng.grading.report import Line, Report
from donghaeng.grading.rubric import Rubric, RubricError, grade_prompt, load_rubric
from donghaeng.grading.widget_answers import grade_answers

__all__ = ["Line", "Report", "Rubric", "RubricError", "grade_answers", "grade_prompt", "load_rubric"]
