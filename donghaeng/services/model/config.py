"""What the hub hands the service: the ``[model]`` limits and the ``[[models]]`` catalogue.

The hub (running as root) serialises the relevant part of ``lab.toml`` into one environment
variable, so the service, running as an unprivileged account, never needs to read the admin's
settings file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from donghaeng.common.settings import ModelEntry, ModelService

CONFIG_ENV = "DONGHAENG_MODEL_SERVICE"


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: ModelService = ModelService()
    models: list[ModelEntry] = Field(default_factory=list)
    state_dir: Path = Field(description="Private folder of the service: engine sockets, logs, usage log.")
    ip: str = "127.0.0.1"
    port: int = 8003
    prefix: str = "/services/model/"

    @property
    def usage_log(self) -> Path:
        return self.state_dir / "usage.jsonl"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> "ServiceConfig":
        """Read the hub's JSON; JupyterHub's service variables give address and prefix."""
        data = json.loads(os.environ[CONFIG_ENV])
        url = os.environ.get("JUPYTERHUB_SERVICE_URL")
        if url:
            from urllib.parse import urlparse

            parsed = urlparse(url)
            data["ip"] = parsed.hostname or data.get("ip", "127.0.0.1")
            data["port"] = parsed.port or data.get("port")
        data["prefix"] = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", data.get("prefix", "/services/model/"))
        return cls(**data)
