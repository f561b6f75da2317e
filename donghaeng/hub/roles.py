"""Roles: which hub groups a person belongs to and what each group may do (JupyterHub RBAC).

Group names follow nbgrader's convention (``nbgrader-<course>`` for everyone in a course,
``formgrade-<course>`` for its trainers), so nbgrader's JupyterHubAuthPlugin finds a learner's courses.
"""

from __future__ import annotations

from collections.abc import Collection

from donghaeng.services.certification.hub import roles as certification_roles
from donghaeng.services.dashboard.hub import roles as dashboard_roles
from donghaeng.services.exchange.hub import roles as exchange_roles
from donghaeng.hub import queue as classstart
from donghaeng.services.home.hub import roles as home_roles
from donghaeng.services.model.hub import roles as model_roles
from donghaeng.common.roster import ROLES, Person
from donghaeng.common.settings import Settings


def groups_for(person: Person, course_ids: Collection[str]) -> list[str]:
    """The hub groups of *person*; courses no longer in lab.toml are skipped, the account is kept."""
    groups = [person.role]
    for course_id in person.courses:
        if course_id not in course_ids:
            continue
        groups.append(f"nbgrader-{course_id}")
        if person.role == "trainer":
            groups.append(f"formgrade-{course_id}")
    return groups


def hub_roles(settings: Settings) -> list[dict]:
    """RBAC roles: a course's trainers reach only that course's formgrader service."""
    roles: list[dict] = [{"name": f"donghaeng-{role}", "groups": [role], "scopes": ["self"]} for role in ROLES]
    for course in settings.courses:
        roles.append({
            "name": f"formgrade-{course.id}",
            "description": f"{course.title}: 채점 도구(formgrader)",
            "groups": [f"formgrade-{course.id}"],
            "scopes": [f"access:services!service={course.grader_user}"],
        })
        roles.append({
            "name": f"{course.grader_user}-service",
            "description": "The course's formgrader reads who is in the course",
            "services": [course.grader_user],
            "scopes": ["list:users", "read:users:name", "read:users:groups", "list:groups",
                       f"read:groups!group=nbgrader-{course.id}"],
        })
    roles.extend(model_roles(settings))  # who may use the shared model service
    roles.extend(classstart.roles(settings))  # idle culler, `donghaeng class prepare`
    roles.extend(dashboard_roles(settings))  # trainers/admins (and calibration candidates) open the dashboard
    roles.extend(certification_roles(settings))  # the TTT gate manages course groups
    roles.extend(home_roles(settings))  # everyone opens the learner home
    roles.extend(exchange_roles(settings))  # everyone fetches and submits; graders collect and return feedback
    return roles
