"""Per-learner containers: DockerSpawner (one VM) and SwarmSpawner (many), configured from ``[containers]``.

Each learner's server runs in its own container from the learner image, as ``jovyan`` (nbgrader then
takes ``JUPYTERHUB_USER`` as the student id), with a named volume for their home.  Containers sit on
an internal Docker network with inter-container traffic off: they reach the host (hub API, model
service) through the network's gateway and nothing else — not each other, not the internet unless
``allow_internet``.  ``remove = False``: a stopped hub leaves the containers running and re-adopts
them on restart.  Docker faults become Korean messages on the learner's spawn page.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import docker
import requests
from dockerspawner import DockerSpawner, SwarmSpawner
from docker.types import Mount
from traitlets import Bool, Dict, HasTraits, Unicode, default

from donghaeng.hub.queue import SpawnQueue
from donghaeng.services.home.notices import MEMORY_KILL
from donghaeng.deploy.image_refs import IMAGE_PREFIX
from donghaeng.hub.services import LOOPBACK
from donghaeng.common.settings import RoleLimits, Settings
from donghaeng.hub.spawner import LearnerConfigMixin

HOME = "/home/jovyan"
#: Label on every object the lab creates, so admins (and tests) can find them.
LABEL = "org.donghaeng.lab"

DAEMON_DOWN = ("실습실을 만드는 프로그램(Docker)에 연결하지 못했어요. 잠시 뒤 다시 시작해 보시고, 계속되면 "
               "강사나 관리자에게 알려 주세요. / Could not reach Docker, which runs the lab servers; "
               "please try again later or tell your trainer.")
START_FAILED = ("실습실을 켜지 못했어요. 잠시 뒤 다시 시작해 보시고, 계속되면 강사나 관리자에게 알려 주세요. "
                "/ Docker could not start your server; please try again later or tell your trainer.")
IMAGE_MISSING = ("실습실 이미지가 아직 준비되지 않았어요. 강사나 관리자에게 알려 주세요. "
                 "(관리자: `donghaeng images build learner`) / The learner image '{image}' is missing: "
                 "an admin runs `donghaeng images build learner`.")
OOM_NOTICE = ("지난번에 실습실이 쓸 수 있는 메모리({memory})를 다 써서 멈췄어요. 저장한 파일은 그대로 있어요. "
              "큰 데이터는 나눠서 다뤄 보세요. / Last time your server ran out of memory ({memory}) and "
              "was stopped; your saved files are safe.")


class ContainerSpawnError(RuntimeError):
    """A Docker fault, shown to the learner on the spawn page (``jupyterhub_message``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


def learner_image(settings: Settings) -> str:
    """The configured image, else the one ``donghaeng images build learner`` makes."""
    from donghaeng.deploy.image_refs import LEARNER_IMAGE

    return settings.containers.image or LEARNER_IMAGE


def gateway_ip(settings: Settings) -> str:
    """The host's address on the learners' network: the hub and model service listen there."""
    return str(next(ipaddress.ip_network(settings.containers.subnet).hosts()))


def is_local_address(ip: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((ip, 0))
        except OSError:
            return False
    return True


def docker_client() -> docker.APIClient:
    """A client for the daemon the spawners use (``DOCKER_HOST`` and friends, as DockerSpawner reads them)."""
    return docker.APIClient(version="auto", **docker.utils.kwargs_from_env())


def ensure_network(settings: Settings, client: docker.APIClient | None = None) -> None:
    """Create the learners' network if missing: internal unless internet is allowed, no inter-container traffic."""
    conf = settings.containers
    client = client or docker_client()
    if client.networks(names=[conf.network]):
        return
    client.create_network(
        conf.network, driver="bridge", internal=not conf.allow_internet, check_duplicate=True,
        options={"com.docker.network.bridge.enable_icc": "false"}, labels={LABEL: "learners"},
        ipam=docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet=conf.subnet, gateway=gateway_ip(settings))]),
    )


def pick_limits(groups: list[str], limits: dict[str, RoleLimits]) -> RoleLimits:
    """The limits of a person's role (the largest if they have several; learner's if none)."""
    roles = [g for g in groups if g in limits]
    if not roles:
        return limits.get("learner", RoleLimits())
    return max((limits[r] for r in roles), key=lambda lim: (lim.cpu, _bytes(lim.memory)))


def _role_limits(spawner, settings: Settings) -> RoleLimits:
    return pick_limits([g.name for g in spawner.user.groups], settings.containers.limits)


def _label(memory: str) -> str:
    """'1073741824' -> '1G' for the learner's notice."""
    value = int(memory) if memory.isdigit() else 0
    for unit, size in (("G", 1 << 30), ("M", 1 << 20)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return memory


def _bytes(memory: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(memory[:-1]) * units[memory[-1]] if memory[-1] in units else int(memory)


class ContainerFaults(HasTraits):
    """Mixin for Docker spawners: Docker faults and memory kills explained to the learner in Korean.

    A memory kill is told twice: once on the next spawn page (``oom_killed``) and on the learner home
    until the learner has read it (``memory_kill``, kept in the state until the next kill replaces it).
    """

    oom_killed = Bool(False, help="The next spawn page still has to tell about the last memory kill.")
    memory_kill = Dict(help="The last memory kill: {'at': Docker's FinishedAt, 'memory': the limit, '1G'}.")

    async def start(self):
        try:
            return await super().start()
        except docker.errors.ImageNotFound as e:
            self.log.error("Learner image %s missing for %s: run `donghaeng images build learner`",
                           self.image, self.user.name)
            raise ContainerSpawnError(IMAGE_MISSING.format(image=self.image)) from e
        except docker.errors.APIError as e:  # the daemon answered: its reason is the admin's lead
            self.log.error("Docker refused to start %s's server: %s", self.user.name, e)
            raise ContainerSpawnError(START_FAILED) from e
        except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
            self.log.error("Docker unreachable while starting %s's server: %s", self.user.name, e)
            raise ContainerSpawnError(DAEMON_DOWN) from e

    async def pull_image(self, image):
        try:
            await self.docker("inspect_image", image)
        except docker.errors.NotFound as e:  # no registry here: a missing image is an admin's job
            raise docker.errors.ImageNotFound(str(e)) from e

    async def poll(self):
        status = await super().poll()
        if status is not None:
            obj = await self.get_object()
            state = (obj or {}).get("State", {})
            if state.get("OOMKilled") and state.get("FinishedAt") != self.memory_kill.get("at"):
                self.log.warning("%s's container was killed for memory (limit %s)", self.user.name, self.mem_limit)
                self.oom_killed = True
                self.memory_kill = {"at": state.get("FinishedAt", ""), "memory": _label(str(self.mem_limit or ""))}
        return status

    async def progress(self):
        if self.oom_killed:  # first thing on the spawn page after the kill
            self.oom_killed = False
            yield {"progress": 5, "message": OOM_NOTICE.format(memory=self.memory_kill.get("memory", ""))}
        async for event in super().progress():
            yield event

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.memory_kill:
            state.update({MEMORY_KILL: self.memory_kill, "oom_killed": self.oom_killed})
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.oom_killed = state.get("oom_killed", False)
        self.memory_kill = state.get(MEMORY_KILL, {})

    def clear_state(self) -> None:
        # stop() clears the state; the memory kill outlives the container it killed
        oom, kill = self.oom_killed, self.memory_kill
        super().clear_state()
        self.oom_killed, self.memory_kill = oom, kill


class LabDockerSpawner(ContainerFaults, SpawnQueue, LearnerConfigMixin, DockerSpawner):
    """One container per learner on this VM."""


class LabSwarmSpawner(ContainerFaults, SpawnQueue, LearnerConfigMixin, SwarmSpawner):
    """One Swarm service per learner; its task may run on any node of the swarm.

    The server's port is published in host mode: on the node the task runs on, at a port that node
    picks, and the hub connects to ``<that node's address>:<that port>``.  Not through the routing
    mesh (ingress), which needs IPVS in every node's kernel and answers for every service on every
    node; host mode needs only the node's own port forwarding, on one node as on many.
    """

    home_node = Unicode("", help="The swarm node that holds this learner's home volume (the first one their "
                        "server ran on): later starts are placed there too, so their files follow them.")

    @default("extra_endpoint_spec")
    def _publish_on_the_task_node(self) -> dict[str, Any]:
        return {"ports": [{"Protocol": "tcp", "TargetPort": self.port, "PublishMode": "host"}]}

    async def create_object(self):
        """The service, pinned to the learner's home node while that node takes tasks."""
        constraints = [c for c in self.extra_placement_spec.get("constraints") or [] if not c.startswith("node.id==")]
        if self.home_node and await self._takes_tasks(self.home_node):
            constraints.append(f"node.id=={self.home_node}")
        self.extra_placement_spec = {**self.extra_placement_spec, "constraints": constraints or None}
        return await super().create_object()

    async def _takes_tasks(self, node_id: str) -> bool:
        try:
            node = await self.docker("inspect_node", node_id)
        except docker.errors.NotFound:
            node = None
        if node and node["Status"]["State"] == "ready" and node["Spec"]["Availability"] == "active":
            return True
        self.log.warning("%s's home volume is on swarm node %s, which takes no tasks now: placing the server on "
                         "any node, with an empty home there", self.user.name, node_id)
        return False

    async def get_ip_and_port(self) -> tuple[str, int]:
        """The task's node address and the port published there (the service's Endpoint has no
        port in host mode: each task gets its own)."""
        task = await self.get_task()
        ports = task["Status"].get("PortStatus", {}).get("Ports", [])
        published = [p["PublishedPort"] for p in ports if p.get("TargetPort") == self.port]
        if not published:
            raise RuntimeError(f"Service {self.service_name} publishes no port for {self.port}: {ports}")
        node = await self.docker("inspect_node", task["NodeID"])
        self.home_node = task["NodeID"]
        return node_address(node), published[0]

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), **({"home_node": self.home_node} if self.home_node else {})}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.home_node = state.get("home_node", "")

    def clear_state(self) -> None:
        node = self.home_node  # the volume stays on that node when the server stops
        super().clear_state()
        self.home_node = node

    @property
    def mounts(self) -> list[Mount]:
        """Named volumes (the home) as volume mounts; host folders (exchange, config) as bind mounts."""
        return [Mount(target=vol["bind"], source=source, read_only=vol["mode"] == "ro",
                      type="bind" if source.startswith("/") else "volume")
                for source, vol in self.volume_binds.items()]


def _common(c, settings: Settings, spawner: str) -> None:
    """Traitlets shared by the Docker and Swarm spawners."""
    conf, paths = settings.containers, settings.paths
    s = getattr(c, spawner)
    s.image = learner_image(settings)
    s.cmd = [f"{IMAGE_PREFIX}/bin/jupyterhub-singleuser"]
    s.notebook_dir = HOME
    s.volumes = {conf.volume_name: HOME}  # nbgrader's exchange is a hub service reached over HTTP
    shared = (paths.jupyter_config, paths.learner_config, paths.solutions)
    for folder in shared:  # Swarm, unlike `docker run`, refuses a bind mount whose source is missing
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    s.read_only_volumes = {str(p): str(p) for p in shared}
    s.learner_config_dir = str(paths.learner_config)
    s.mem_limit = lambda spawner: _bytes(_role_limits(spawner, settings).memory)  # bytes: Swarm wants a number
    s.cpu_limit = lambda spawner: _role_limits(spawner, settings).cpu
    s.pull_policy = "never"
    s.name_template = "donghaeng-{username}"


def prepare(settings: Settings) -> None:
    """The learners' network (docker mode), made before the hub starts; Docker down still lets the hub
    start, and learners get DAEMON_DOWN on their spawn page."""
    if settings.lab.spawner != "docker":
        return
    try:
        ensure_network(settings)
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        print(f"donghaeng: Docker unreachable, cannot prepare network {settings.containers.network}: {e}")


def learner_host(settings: Settings) -> str:
    """Where learners' containers reach the hub and its services: docker, this machine's address on the
    learners' network; swarm, this manager's swarm address.  Loopback when neither is this machine's."""
    try:
        address = gateway_ip(settings) if settings.lab.spawner == "docker" else swarm_hub_address()
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        print(f"donghaeng: Docker unreachable, cannot find the learners' address of this machine: {e}")
        return LOOPBACK
    return address if is_local_address(address) else LOOPBACK


def configure(c, settings: Settings) -> None:
    """Point JupyterHub at containers (``lab.spawner`` = docker or swarm)."""
    conf = settings.containers
    # Always show the spawn page, even for a start that takes two seconds: it carries the notice about a
    # container that was killed for memory (LabDockerSpawner.progress), which a quick start would skip.
    c.JupyterHub.slow_spawn_timeout = 0
    if settings.lab.spawner == "docker":
        c.JupyterHub.spawner_class = LabDockerSpawner
        _common(c, settings, "LabDockerSpawner")
        c.LabDockerSpawner.remove = False  # stopped containers (and running ones) outlive the hub
        c.LabDockerSpawner.network_name = conf.network
        c.LabDockerSpawner.use_internal_ip = True
        c.LabDockerSpawner.extra_host_config = {"pids_limit": conf.pids_limit}
        c.LabDockerSpawner.extra_create_kwargs = {"user": "jovyan", "labels": {LABEL: "learner"}}
    else:
        c.JupyterHub.spawner_class = LabSwarmSpawner
        _common(c, settings, "LabSwarmSpawner")
        c.LabSwarmSpawner.network_name = ""  # tasks sit on their node's default bridge
        c.LabSwarmSpawner.use_internal_ip = False  # the hub reaches them on their node (host-mode port)
        c.LabSwarmSpawner.extra_container_spec = {"user": "jovyan", "labels": {LABEL: "learner"}}


def remove_learners(settings: Settings, logins: list[str]) -> None:
    """Remove these learners' containers and home volumes (their work!)."""
    client = docker_client()
    for login in logins:
        volume = settings.containers.volume_name.format(username=login)
        named = client.containers(all=True, filters={"name": f"^donghaeng-{login}$", "label": LABEL})
        mounting = client.containers(all=True, filters={"volume": volume})  # also a Swarm task's container
        for container_id in {c["Id"] for c in [*named, *mounting]}:
            client.remove_container(container_id, force=True)
        # Docker's name filter matches substrings: learner1's volume name is part of learner10's
        if any(v["Name"] == volume for v in client.volumes(filters={"name": volume}).get("Volumes") or []):
            client.remove_volume(volume, force=True)


def node_address(node: dict[str, Any]) -> str:
    """A swarm node's address as the other nodes reach it (``docker node inspect``)."""
    address = node["Status"].get("Addr", "")
    if address in ("", "0.0.0.0") and node.get("ManagerStatus"):  # a manager listening on every address
        address = node["ManagerStatus"]["Addr"].rsplit(":", 1)[0]
    return address


def swarm_hub_address() -> str:
    """Where learners' servers on any node reach the hub (and the model service, the learner home):
    this manager's swarm address; on a single-node swarm advertised on loopback, the host's address
    on the default bridge, where this node's tasks sit."""
    client = docker_client()
    address = client.info()["Swarm"]["NodeAddr"]
    if ipaddress.ip_address(address).is_loopback:
        config = client.inspect_network("bridge")["IPAM"]["Config"][0]
        # Docker 20.10 leaves out the gateway it picked itself: the subnet's first address
        address = config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    return address
