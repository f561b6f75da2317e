"""A learner's disk fills up: saving says so in Korean, and the last saved notebook is intact."""

from __future__ import annotations

import asyncio
import os
import subprocess

import nbformat
import pytest
from tornado import web

from donghaeng.server.files import LearnerContentsManager


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a learner home (or container volume) that is nearly full."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (as .ci/run runs the suite)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmp_path)], check=True)
    yield tmp_path
    subprocess.run(["umount", str(tmp_path)], check=True)


def notebook(text: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    return {"type": "notebook", "format": "json", "content": nb}


def test_a_full_disk_is_explained_in_korean_and_the_last_save_is_kept(small_disk):
    contents = LearnerContentsManager(root_dir=str(small_disk))
    asyncio.run(contents.save(notebook("첫 번째 답"), "m1.ipynb"))

    with pytest.raises(web.HTTPError) as failed:
        asyncio.run(contents.save(notebook("가" * 2_000_000), "m1.ipynb"))  # ~6 MB of UTF-8: no room
    assert failed.value.status_code == 507
    assert "저장 공간이 가득 차서 저장하지 못했어요" in failed.value.log_message
    assert "마지막으로 저장한 내용은 그대로 있어요" in failed.value.log_message

    kept = asyncio.run(contents.get("m1.ipynb"))
    assert kept["content"].cells[0].source == "첫 번째 답"


def test_other_save_errors_are_left_as_jupyter_reports_them(tmp_path):
    contents = LearnerContentsManager(root_dir=str(tmp_path))
    with pytest.raises(web.HTTPError) as failed:
        asyncio.run(contents.save({"type": "directory"}, "a/b/c"))  # parent folder missing
    assert failed.value.status_code != 507
