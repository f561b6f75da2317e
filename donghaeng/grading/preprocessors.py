"""Two of nbgrader's steps, corrected for how the lab releases assignments.

* :class:`ReleasedOverwriteCells` — nbgrader's ``OverwriteCells`` compares a submitted locked cell
  with the *source* cell's checksum, but learners received that cell with its hidden tests removed,
  so every hidden-test cell of every submission was reported as changed (nbgrader #1961) and the
  summary told every learner "잠긴 셀이 바뀌었어요".  Here a locked cell that still equals its
  released form counts as unchanged (and is restored silently); only a real edit is reported.
* :class:`HideTestsInFeedback` — nbgrader's feedback prints every test cell's source, hidden tests
  and right answers included (nbgrader #917), so after one cohort the answers circulate.  Feedback
  shows a Korean placeholder instead of a test's code, and keeps only its outputs: the Korean lines
  the graders print and the Korean message of a failed check (see :mod:`donghaeng.grading.checker`).
  The autograded notebook trainers see in formgrader keeps everything.
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from nbgrader.utils import is_locked
from traitlets import Unicode

from donghaeng.grading.twophase import is_test_cell

__all__ = ["HideTestsInFeedback", "ReleasedOverwriteCells"]


class ReleasedOverwriteCells(OverwriteCells):
    """``OverwriteCells`` that reports a locked cell only when it differs from what was released."""

    def _released(self, source: str) -> str:
        cell = NotebookNode(cell_type="code", source=source, metadata=NotebookNode())
        ClearHiddenTests(parent=self, enforce_metadata=False)._remove_hidden_test_region(cell)
        return cell.source

    def preprocess_cell(self, cell, resources, cell_index):  # type: ignore[override]
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and is_locked(cell):
            try:
                source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source = None
            if source is not None and source.locked and cell.source == self._released(source.source):
                cell.source = source.source  # as released: put the hidden tests back without a warning
        return super().preprocess_cell(cell, resources, cell_index)


class HideTestsInFeedback(NbGraderPreprocessor):
    """Replace each test cell's code by a Korean note in the learner's feedback and leave out the code of
    folded cells; keep their outputs."""

    placeholder = Unicode(
        "# 확인 코드는 보여 드리지 않아요. 아래에 나온 결과와 설명을 읽어 주세요.",
        config=True, help="What a learner's feedback shows instead of a test cell's code.",
    )

    def preprocess_cell(self, cell, resources, cell_index):  # type: ignore[override]
        if is_test_cell(cell):
            cell.source = self.placeholder
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [str(output.get("evalue", ""))]
        elif cell.metadata.get("jupyter", {}).get("source_hidden"):
            # folded in the notebook (the code that builds a question): folded in feedback too, outputs kept
            cell.metadata.setdefault("transient", {})["remove_source"] = True
        return cell, resources
