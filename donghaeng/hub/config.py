"""The one place that maps ``lab.toml`` and the cohort onto JupyterHub's traitlets.

``hub/jupyterhub_config.py`` only loads the settings and calls :func:`apply_config`, as TLJH does.
"""

from __future__ import annotations

import shutil

from donghaeng.common import database

from donghaeng.hub import queue as classstart

from donghaeng.services import metrics
from donghaeng.services.exchange import hub as exchange_hub
from donghaeng.hub.roles import hub_roles
from donghaeng.hub.services import LOOPBACK, internal_ports, managed_service, service_token, service_url
from donghaeng.common.settings import REPO_ROOT, Settings

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


def grader_services(settings: Settings) -> list[dict]:
    """One formgrader (a jupyterhub-singleuser) per course, running as that course's grader."""
    ports = internal_ports(settings)
    services = []
    for course in settings.courses:
        service = managed_service(
            settings, course.grader_user, ports[course.id], "donghaeng.grading.formgrader",
            user=course.grader_user, cwd=str(settings.paths.course_dir(course.id)),
            oauth_no_confirm=True, display=True,
            # the token the CLI's nbgrader runs read from the exchange's grader_token_file as well
            api_token=service_token(settings, course.grader_user),
            environment={
                "JUPYTERHUB_USER": course.grader_user,  # nbgrader's exchange needs a user name
                "JUPYTERHUB_DEFAULT_URL": "/formgrader",
                "JUPYTER_CONFIG_PATH": str(settings.paths.jupyter_config),
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
    """``hub/jupyterhub_config.py``'s one call: prepare this machine, then set every traitlet once."""
    prepare_host(settings)
    configure(c, settings, learner_host(settings))


def learner_host(settings: Settings) -> str:
    """The address learners' servers reach the hub and the services they call (model, home, exchange) on:
    loopback for local processes, this machine's address on the learners' network for containers."""
    if settings.lab.spawner == "local":
        return LOOPBACK
    from donghaeng.hub import containers
    return containers.learner_host(settings)


def prepare_host(settings: Settings) -> None:
    """What must exist on this machine before the hub starts: state folder, service accounts, networks."""
    settings.paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.certification.enabled:
        from donghaeng.services.certification import hub as certification_hub

        certification_hub.prepare(settings)
    if settings.model.enabled:
        from donghaeng.services.model import hub as model_hub

        model_hub.prepare(settings)
    if settings.lab.spawner != "local":
        from donghaeng.hub import containers
        containers.prepare(settings)


def configure(c, settings: Settings, host: str) -> None:
    """Set every traitlet on *c* from *settings*, with learners' servers calling back on *host*.  No I/O:
    the config tests (tests/test_hub_config.py) run it for each spawner mode in milliseconds."""
    ports = internal_ports(settings)
    update_hub(c, settings, ports, host)
    update_auth(c, settings)
    update_spawner(c, settings)
    update_services(c, settings, ports, host)


def update_hub(c, settings: Settings, ports: dict[str, int], host: str) -> None:
    """The hub process and its proxy: ports, database, cookie secret, HTTPS, templates."""
    paths = settings.paths
    c.JupyterHub.hub_ip = host
    c.JupyterHub.hub_port = ports["hub"]
    c.ConfigurableHTTPProxy.api_url = service_url(LOOPBACK, ports["proxy_api"])
    c.JupyterHub.db_url = database.hub_url(settings)  # SQLite in the state folder, or [database] hub_url
    c.JupyterHub.cookie_secret_file = str(paths.cookie_secret)
    c.JupyterHub.pid_file = str(paths.state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.pid_file = str(paths.state / "proxy.pid")
    configure_https(c, settings)
    # Learners' servers outlive a hub restart (mid-class fixes); the hub re-adopts them by pid.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.template_paths = [str(REPO_ROOT / "hub" / "templates")]
    template_vars = {"lab_courses": {co.id: co.title for co in settings.courses}}
    if settings.home.enabled:
        from donghaeng.services.home import hub as home_hub

        c.JupyterHub.default_url = home_hub.URL  # where people land after login
        template_vars["learner_home_url"] = home_hub.URL
    c.JupyterHub.template_vars = template_vars
    c.JupyterHub.load_roles = hub_roles(settings)


def update_auth(c, settings: Settings) -> None:
    """Logins from the cohort (donghaeng.hub.auth); hub groups follow it at every login and refresh."""
    from donghaeng.hub.auth import RosterAuthenticator

    c.JupyterHub.authenticator_class = RosterAuthenticator
    c.RosterAuthenticator.cohort_db = str(settings.paths.cohort_db)
    c.RosterAuthenticator.min_password_length = settings.lab.min_password_length
    c.RosterAuthenticator.course_ids = [course.id for course in settings.courses]
    c.Authenticator.any_allow_config = True  # RosterAuthenticator.check_allowed consults the cohort
    c.Authenticator.manage_groups = True
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_age = 60


def update_spawner(c, settings: Settings) -> None:
    """How learners' servers start: a system account per learner (local) or a container (docker, swarm)."""
    lab, paths = settings.lab, settings.paths
    c.Spawner.cmd = [str(lab.user_prefix / "bin" / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120
    if lab.spawner == "local":
        from donghaeng.hub.spawner import SystemUserSpawner

        c.JupyterHub.spawner_class = SystemUserSpawner
        c.SystemUserSpawner.account_group = lab.learner_group
        c.SystemUserSpawner.home_root = str(lab.home_root)
        c.SystemUserSpawner.learner_config_dir = str(paths.learner_config)
    else:
        from donghaeng.hub import containers
        containers.configure(c, settings)
    classstart.configure_spawner(c, settings)  # the start queue, in every mode


def update_services(c, settings: Settings, ports: dict[str, int], host: str) -> None:
    """The lab's hub services, and what learners' servers need to call them (environment, token scopes)."""
    paths = settings.paths
    environment = {
        "JUPYTER_CONFIG_PATH": str(paths.jupyter_config),
        "DONGHAENG_SOLUTIONS_DIR": str(paths.solutions),
        "LANG": "C.UTF-8",
    }
    scopes = list(SERVER_TOKEN_SCOPES)
    services = grader_services(settings)
    services += classstart.services(settings)  # idle culler, `donghaeng class prepare`
    services.append(exchange_hub.service_spec(settings, ports["exchange"], host))  # nbgrader's exchange
    environment.update(exchange_hub.learner_environment(ports["exchange"], host))

    if settings.dashboard.enabled:  # the trainer dashboard (donghaeng.services.dashboard)
        from donghaeng.services.dashboard import hub as dashboard_hub

        services.append(dashboard_hub.service_spec(settings, ports["dashboard"]))

    if settings.certification.enabled:  # certificate verification (public) and the TTT gate's token
        from donghaeng.services.certification import hub as certification_hub

        services += certification_hub.service_specs(settings, ports["certificates"])

    if settings.model.enabled:  # the shared language model service (donghaeng.services.model)
        from donghaeng.services.model import hub as model_hub

        services.append(model_hub.service_spec(settings, ports["model"], host))
        scopes.append(model_hub.ACCESS_SCOPE)
        environment.update(model_hub.learner_environment(settings, ports["model"], host))

    if settings.home.enabled:  # the learner home (donghaeng.services.home)
        from donghaeng.services.home import hub as home_hub

        services.append(home_hub.service_spec(settings, ports["home"], host))
        scopes.append(home_hub.ACCESS_SCOPE)
        environment.update(home_hub.learner_environment(ports["home"], host))

    # Prometheus scrapes the hub, the model service and grading (on the dashboard) with one service token.
    scraped = [name for name, on in (("model", settings.model.enabled), ("dashboard", settings.dashboard.enabled)) if on]
    services.append(metrics.scraper_service(settings))
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, metrics.scraper_role(scraped)]
    c.JupyterHub.authenticate_prometheus = True  # the default, kept on purpose: /hub/metrics needs a token
    c.JupyterHub.services = services
    c.Spawner.server_token_scopes = scopes
    c.Spawner.environment = environment