"""Embedded spawner: each learner's server is a local process under their own system account."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import HasTraits, List, Unicode

from donghaeng.common.accounts import AccountError, ensure_system_user
from donghaeng.hub.queue import SpawnQueue


class LearnerConfigMixin(HasTraits):
    """Learners' servers read a config dir that hides instructor tools; staff keep them (every spawner)."""

    learner_config_dir = Unicode(
        "", help="Jupyter config dir that hides instructor tools; put first on learners' config path."
    ).tag(config=True)
    staff_groups = List(Unicode(), ["trainer", "admin"], help="Groups that keep instructor tools.").tag(config=True)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        is_staff = any(group.name in self.staff_groups for group in self.user.groups)
        if self.learner_config_dir and not is_staff:
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
                p for p in (self.learner_config_dir, env.get("JUPYTER_CONFIG_PATH")) if p
            )
        return env


class SystemUserSpawner(SpawnQueue, LearnerConfigMixin, LocalProcessSpawner):
    """LocalProcessSpawner that creates the user's system account on first spawn (as TLJH does)."""

    account_group = Unicode("donghaeng", help="Primary group of accounts the lab creates.").tag(config=True)
    home_root = Unicode("/home", help="Parent folder of the accounts' home folders.").tag(config=True)

    async def start(self):
        try:
            await asyncio.to_thread(ensure_system_user, self.user.name, self.account_group, Path(self.home_root))
        except AccountError as e:
            self.log.error("Cannot prepare account for %s: %s", self.user.name, e)
            raise AccountSpawnError() from e
        return await super().start()


class AccountSpawnError(RuntimeError):
    """Shown to the learner on the hub's failed-start page (via ``jupyterhub_message``)."""

    jupyterhub_message = ("실습 계정을 준비하지 못했어요. 강사나 관리자에게 알려 주세요. / "
                          "Could not prepare your lab account; please tell your trainer.")

    def __init__(self) -> None:
        super().__init__(self.jupyterhub_message)
