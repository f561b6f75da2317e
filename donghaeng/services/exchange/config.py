"""What the hub hands the exchange service (one JSON environment variable): light to import in the hub."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

CONFIG_ENV = "DONGHAENG_EXCHANGE_SERVICE"


@dataclass(frozen=True)
class ServiceConfig:
    store: str
    courses: list[str]
    submission: dict[str, int]  # Limits of one submission
    release: dict[str, int]  # Limits of one released assignment

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServiceConfig:
        return cls(**json.loads(os.environ[CONFIG_ENV]))
