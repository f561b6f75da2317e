"""Entry point of a course's formgrader service: ``jupyterhub-singleuser`` that stops on SIGINT.

JupyterHub stops managed services with SIGINT first.  Without a terminal, jupyter_server installs no
SIGINT handler, so the hub waited for its SIGTERM fallback (~30 s per course) on every restart.
"""

import os
import signal
import sys

from jupyterhub.singleuser import main


def _stop_now(signum: int, frame: object) -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # jupyter_server's own clean shutdown path


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _stop_now)
    sys.exit(main())
