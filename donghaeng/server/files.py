"""Saving in learners' servers: a full disk is explained in Korean, and the last saved copy stays.

jupyter_server answers a save that hit a full disk (or a quota) with "Unexpected error while saving
file: … [Errno 28] No space left on device", which JupyterLab shows as it is.  Its writes are atomic
(a temporary file replaces the old one only when complete), so the notebook on disk is still the last
good save; the learner needs to hear that, and what to do, in plain Korean.
"""

from __future__ import annotations

import errno

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

DISK_FULL = (
    "저장 공간이 가득 차서 저장하지 못했어요. 마지막으로 저장한 내용은 그대로 있어요. "
    "필요 없는 파일(큰 데이터, 이전 작업 폴더)을 지우고 다시 저장하거나 강사님께 알려 주세요. / "
    "The disk is full, so this was not saved; your last save is intact. Delete files you no longer need "
    "and save again, or tell your trainer."
)
FULL = (errno.ENOSPC, errno.EDQUOT)


class LearnerContentsManager(AsyncLargeFileManager):
    """JupyterLab's default contents manager, with the Korean full-disk message (HTTP 507)."""

    async def save(self, model, path=""):
        try:
            return await super().save(model, path)
        except web.HTTPError as e:
            cause = e.__cause__
            if isinstance(cause, OSError) and cause.errno in FULL:
                self.log.warning("Disk full while %s saved %s", self.root_dir, path)
                raise web.HTTPError(507, DISK_FULL) from cause
            raise
