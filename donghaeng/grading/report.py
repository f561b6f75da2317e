"""What every 동행랩 grader returns: points per criterion with one Korean feedback line each.

An autograded nbgrader test cell gives partial credit when its last output is a number
(``nbgrader.utils.determine_grade`` reads the ``execute_result``).  A cell therefore ends with
``report.explain(points=N)``: the Korean lines are printed (they reach the learner's feedback page)
and the cell's value is the score, scaled to the cell's *N* points.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Line:
    """One graded criterion or question."""

    name: str
    earned: float
    points: float
    feedback: str

    @property
    def passed(self) -> bool:
        return self.earned >= self.points


@dataclass
class Report:
    """The result of one grader run; ``score``/``max_points`` are the raw (unscaled) points."""

    title: str
    lines: list[Line] = field(default_factory=list)
    note: str = ""  # one line shown before the criteria (e.g. why everything is zero)

    @property
    def score(self) -> float:
        return sum(line.earned for line in self.lines)

    @property
    def max_points(self) -> float:
        return sum(line.points for line in self.lines)

    def scaled(self, points: float | None = None) -> float:
        """The score on a scale of *points* (default: the raw points), rounded to 0.01."""
        if points is None or not self.max_points:
            return round(self.score, 2)
        return round(self.score / self.max_points * points, 2)

    def text(self, points: float | None = None) -> str:
        """The Korean feedback, one line per criterion, ending with the total."""
        out = [f"[{self.title}]"]
        if self.note:
            out.append(self.note)
        for line in self.lines:
            mark = "✔" if line.passed else ("△" if line.earned > 0 else "✘")
            out.append(f"{mark} {line.name} ({_num(line.earned)}/{_num(line.points)}점): {line.feedback}")
        total = points if points is not None else self.max_points
        out.append(f"합계: {_num(self.scaled(points))}/{_num(total)}점")
        return "\n".join(out)

    def explain(self, points: float | None = None) -> float:
        """Print :meth:`text` and return the score: the last line of a partial-credit test cell."""
        print(self.text(points))
        return self.scaled(points)


def _num(value: float) -> str:
    return f"{value:g}"
