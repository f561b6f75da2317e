"""Entry point of a course's formgrader service: ``jupyterhub-singleuser`` that stops on SIGINT.

JupyterHub stops managed services with SIGINT first.  Without a terminal, jupyter_server installs no
SIGINT handler, so the hub waited for its SIGTERM fallback (~30 s per course) on every restart.

Formgrader serves learners' files as they are (``/formgrader/submission/<id>/<file>``), on the hub's
origin where trainers are logged in; :class:`SandboxedSubmissionFiles` serves them in a CSP sandbox
instead, like jupyter_server's own ``/files/``.  The notebook page itself keeps formgrader's scripts
(it needs them): learners' markdown and outputs there are sanitized (graders/nbgrader_config.py).
"""

import os
import signal
import sys

from jupyterhub.singleuser import main
from nbgrader.server_extensions.formgrader import handlers as formgrader


class SandboxedSubmissionFiles(formgrader.SubmissionFilesHandler):
    """A learner's file as formgrader serves it, with no script of theirs running on the hub's origin."""

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; sandbox"


def _stop_now(signum: int, frame: object) -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # jupyter_server's own clean shutdown path


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _stop_now)
    # formgrader registers its module's handler table when the server loads it
    formgrader.default_handlers[:] = [
        (route[0], SandboxedSubmissionFiles, *route[2:]) if route[1] is formgrader.SubmissionFilesHandler else route
        for route in formgrader.default_handlers
    ]
    sys.exit(main())
