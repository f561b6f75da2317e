"""How the hub runs the trainer dashboard: its service entry and RBAC roles."""

from __future__ import annotations

from donghaeng.services.certification.policy import load_policy
from donghaeng.hub.services import managed_service
from donghaeng.common.settings import Settings

SERVICE_NAME = "dashboard"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
#: Hub groups that may use the whole dashboard (their course list is narrowed by formgrade-<course>).
STAFF_GROUPS = ("trainer", "admin")
#: What the service reads about people: their groups and last activity (for "inactive" learners).
SERVICE_SCOPES = ["list:users", "read:users", "read:users:name", "read:users:groups", "read:users:activity"]


def calibration_courses(settings: Settings) -> list[str]:
    """Courses whose learners (trainer candidates) grade the rubric calibration samples: those of the
    certification levels that require a calibration kappa."""
    known = {course.id for course in settings.courses}
    levels = load_policy(settings).levels
    return sorted({lv.course for lv in levels if lv.min_calibration_kappa is not None} & known)


def service_spec(settings: Settings, port: int) -> dict:
    """A managed service run as the hub's own user: it reads every course's gradebook (folders of
    the course graders, mode 0700) and the root-only certification database."""
    return managed_service(settings, SERVICE_NAME, port, "donghaeng.services.dashboard",
                           oauth_no_confirm=True, display=True)


def roles(settings: Settings) -> list[dict]:
    """Trainers and admins open the dashboard; trainer candidates reach its calibration page only."""
    if not settings.dashboard.enabled:
        return []
    groups = [*STAFF_GROUPS, *(f"nbgrader-{course}" for course in calibration_courses(settings))]
    return [
        {"name": "dashboard-users", "description": "트레이너 대시보드(후보 강사는 채점 맞추기만)",
         "groups": groups, "scopes": [ACCESS_SCOPE]},
        {"name": "dashboard-service", "description": "The dashboard reads people's groups and last activity",
         "services": [SERVICE_NAME], "scopes": SERVICE_SCOPES},
    ]
