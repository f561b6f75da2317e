"""The one place that maps ``lab.toml`` and the cohort onto JupyterHub's traitlets.

``hub/jupyterhub_config.py`` only loads the settings and calls :func:`apply_config`, as TLJH does.
"""

from __future__ import annotations

import shutil

from . import classstart, database, metrics
from .exchange import hub as exchange_hub
from .roles import hub_roles
from .services import managed_service
from .settings import REPO_ROOT, Settings

# What a learner's server token may do: nbgrader's JupyterHubAuthPlugin reads the user's own groups
# to list their courses; nbgrader's exchange steps call the exchange service with it; everything else
# a server needs is in JupyterHub's defaults.
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    "read:users:name!user",
    "read:users:groups!user",
    exchange_hub.ACCESS_SCOPE,
]


def proxy_command() -> list[str]:
    """configurable-http-proxy installed into the project by npm, else one on PATH."""
    local = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy가 없어요. `./lab up`으로 설치해 주세요.")
    return [found]


def internal_ports(settings: Settings) -> dict[str, int]:
    """Loopback ports next to the public one: hub API, proxy API, the lab's services, one per course grader."""
    port = settings.lab.port
    ports = {"hub": port + 1, "proxy_api": port + 2, "model": port + 3,
             "dashboard": port + 4, "home": port + 5, "certificates": port + 6, "pool": port + 7,
             "exchange": port + 8}
    ports.update({course.id: port + 10 + i for i, course in enumerate(settings.courses)})
    return ports


def grader_services(settings: Settings) -> list[dict]:
    """One formgrader (a jupyterhub-singleuser) per course, running as that course's grader."""
    ports = internal_ports(settings)
    services = []
    for course in settings.courses:
        service = managed_service(
            settings, course.grader_user, ports[course.id], "donghaeng.grader_server",
            user=course.grader_user, cwd=str(settings.paths.course_dir(course.id)),
            oauth_no_confirm=True, display=True,
            environment={
                "JUPYTERHUB_USER": course.grader_user,  # nbgrader's exchange needs a user name
                "JUPYTERHUB_DEFAULT_URL": "/formgrader",
                "JUPYTER_CONFIG_PATH": str(settings.paths.jupyter_config),
                "DONGHAENG_AUTOGRADE_TIMEOUT": str(settings.lab.autograde_timeout),
            },
        )
        # Trainers work there as the grader account, whose folders root reads: no shell for them.
        service["command"] = [*service["command"], "--ServerApp.terminals_enabled=False"]
        services.append(service)
    return services


def configure_https(c, settings: Settings) -> None:
    """Where the proxy listens: plain HTTP, or TLS with an HTTP redirect, secure cookies and HSTS."""
    lab, https = settings.lab, settings.lab.https
    if not https.enabled:
        c.JupyterHub.bind_url = f"http://{lab.ip}:{lab.port}"
        return
    c.JupyterHub.bind_url = f"https://{lab.ip}:{https.port}"
    c.JupyterHub.ssl_cert = str(https.cert)  # handed to configurable-http-proxy (--ssl-cert/--ssl-key)
    c.JupyterHub.ssl_key = str(https.key)
    if https.http_port:
        c.ConfigurableHTTPProxy.command = [*c.ConfigurableHTTPProxy.command, "--redirect-port",
                                           str(https.http_port), "--redirect-to", str(https.port)]
    # Secure cookies whatever a request says (JupyterHub trusts X-Forwarded-Proto for its own ones only
    # and leaves _xsrf plain). HSTS is per host: the hub's header covers learners' servers and services too.
    c.JupyterHub.cookie_options = {"secure": True}
    c.JupyterHub.tornado_settings = {
        "xsrf_cookie_kwargs": {"secure": True},
        "headers": {"Strict-Transport-Security": f"max-age={https.hsts_max_age}"}}


def apply_config(c, settings: Settings) -> None:
    """Set every traitlet the lab needs on the JupyterHub config object *c*."""
    from .auth import RosterAuthenticator
    from .spawner import SystemUserSpawner

    lab, paths = settings.lab, settings.paths
    paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)

    ports = internal_ports(settings)
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = ports["hub"]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports['proxy_api']}"
    c.JupyterHub.db_url = database.hub_url(settings)  # SQLite in the state folder, or [database] hub_url
    c.JupyterHub.cookie_secret_file = str(paths.cookie_secret)
    c.JupyterHub.pid_file = str(paths.state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.pid_file = str(paths.state / "proxy.pid")
    configure_https(c, settings)
    # Learners' servers outlive a hub restart (mid-class fixes); the hub re-adopts them by pid.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.template_paths = [str(REPO_ROOT / "hub" / "templates")]
    c.JupyterHub.template_vars = {"lab_courses": {co.id: co.title for co in settings.courses}}

    c.JupyterHub.authenticator_class = RosterAuthenticator
    c.RosterAuthenticator.cohort_db = str(paths.cohort_db)
    c.RosterAuthenticator.min_password_length = lab.min_password_length
    c.Authenticator.any_allow_config = True  # RosterAuthenticator.check_allowed consults the cohort

    c.JupyterHub.spawner_class = SystemUserSpawner
    c.SystemUserSpawner.account_group = lab.learner_group
    c.SystemUserSpawner.home_root = str(lab.home_root)
    c.SystemUserSpawner.learner_config_dir = str(paths.learner_config)
    c.Spawner.cmd = [str(lab.user_prefix / "bin" / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.Spawner.environment = {
        "JUPYTER_CONFIG_PATH": str(paths.jupyter_config),
        "DONGHAENG_SOLUTIONS_DIR": str(paths.solutions),
        "LANG": "C.UTF-8",
    }

    c.RosterAuthenticator.course_ids = [course.id for course in settings.courses]
    c.Authenticator.manage_groups = True  # groups come from the cohort at every login and refresh
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_age = 60
    c.JupyterHub.load_roles = hub_roles(settings)
    c.JupyterHub.services = grader_services(settings)
    classstart.configure(c, settings)  # spawn queue, idle culler, `donghaeng class prepare` service
    exchange_hub.configure(c, settings, ports["exchange"])  # nbgrader's exchange (donghaeng.exchange)

    if settings.dashboard.enabled:  # the trainer dashboard (donghaeng.dashboard)
        from .dashboard import hub as dashboard_hub

        c.JupyterHub.services.append(dashboard_hub.service_spec(settings, ports["dashboard"]))

    if settings.certification.enabled:  # certificate verification (public) and the TTT gate's token
        from .certification import hub as certification_hub

        certification_hub.prepare(settings)
        c.JupyterHub.services.extend(certification_hub.service_specs(settings, ports["certificates"]))

    if settings.model.enabled:  # the shared language model service (donghaeng.modelservice)
        from .modelservice import hub as model_hub

        model_hub.prepare(settings)
        c.JupyterHub.services.append(model_hub.service_spec(settings, ports["model"]))
        c.Spawner.server_token_scopes = [*SERVER_TOKEN_SCOPES, model_hub.ACCESS_SCOPE]
        c.Spawner.environment.update(model_hub.learner_environment(settings, ports["model"]))

    if lab.spawner != "local":  # a container per learner (donghaeng.containers); after
        # the services, whose addresses it moves onto the learners' network
        from . import containers

        containers.configure(c, settings)

    if settings.home.enabled:  # the learner home (donghaeng.home): where people land after login
        from .home import hub as home_hub

        c.JupyterHub.services.append(home_hub.service_spec(settings, ports["home"]))
        c.JupyterHub.default_url = home_hub.URL
        c.JupyterHub.template_vars = {**c.JupyterHub.template_vars, "learner_home_url": home_hub.URL}
        c.Spawner.server_token_scopes = [*c.Spawner.server_token_scopes, home_hub.ACCESS_SCOPE]
        c.Spawner.environment.update(home_hub.learner_environment(ports["home"]))

    # Prometheus scrapes the hub, the model service and grading (on the dashboard) with one service token.
    scraped = [name for name, on in (("model", settings.model.enabled), ("dashboard", settings.dashboard.enabled)) if on]
    metrics.configure(c, settings, scraped)
