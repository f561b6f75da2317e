"""nbgrader auth plugin: course membership comes from the cohort, never from nbgrader.

nbgrader's JupyterHubAuthPlugin also adds and removes hub group members when a trainer edits the
gradebook's student list.  Here the roster is the one source of who is in a course (the hub's
groups are managed by the authenticator), so those two calls are deliberately no-ops; reading a
learner's courses from their hub groups is inherited unchanged.
"""

from nbgrader.auth import JupyterHubAuthPlugin


class CohortAuthPlugin(JupyterHubAuthPlugin):
    def add_student_to_course(self, student_id: str, course_id: str) -> None:
        self.log.debug("Course membership of %s is managed by the roster", student_id)

    def remove_student_from_course(self, student_id: str, course_id: str) -> None:
        self.log.debug("Course membership of %s is managed by the roster", student_id)
