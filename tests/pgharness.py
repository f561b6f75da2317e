"""A throwaway PostgreSQL cluster for tests: Debian's postgresql binaries, run as the ``postgres`` account.

``initdb`` makes the cluster in a temporary folder; the server listens on a free loopback port and a
private unix socket, with password (SCRAM) authentication only, as a real install would.  The admin
role's and the hub role's passwords go into a root-only pgpass file, as docs/admin-guide.md tells an
admin to do.
"""

from __future__ import annotations

import glob
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labharness import free_port_block

ACCOUNT = "postgres"  # made by Debian's postgresql package


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server program from Debian's package (not on PATH: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def available() -> bool:
    try:
        pwd.getpwnam(ACCOUNT)
    except KeyError:
        return False
    return pg_bin("initdb") is not None


@dataclass
class Cluster:
    root: Path
    port: int
    admin_password: str
    hub_password: str
    password_file: Path

    def url(self, database: str, user: str | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"postgresql://{who}127.0.0.1:{self.port}/{database}"

    def settings_toml(self) -> str:
        """The ``[database]`` section of a lab that uses this cluster."""
        return (f'[database]\nhub_url = "{self.url("donghaeng_hub", "donghaeng_hub")}"\n'
                f'gradebook_url = "{self.url("dh_{course}")}"\n'
                f'admin_url = "{self.url("postgres", "postgres")}"\n'
                f'password_file = "{self.password_file}"\n')

    def psql(self, sql: str, database: str = "postgres", user: str = "postgres",
             password: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run *sql* with psql over TCP (as any account: the password is given, no file is read)."""
        env = {"PGPASSWORD": password or self.admin_password, "PATH": "/usr/bin:/bin"}
        return subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", user, "-d", database, "-c", sql],
                              capture_output=True, text=True, env=env)


def _as_postgres(*cmd: str) -> None:
    result = subprocess.run(["runuser", "-u", ACCOUNT, "--", *cmd], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started cluster with the hub's role and database made (the admin's one-time steps)."""
    root = Path(tempfile.mkdtemp(prefix="donghaeng-pg-", dir="/var/tmp"))
    entry = pwd.getpwnam(ACCOUNT)
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    admin_password = secrets.token_urlsafe(16)
    (root / "pwfile").write_text(admin_password + "\n")
    for path in (root, sockets, root / "pwfile"):
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    port = free_port_block(1)
    password_file = root / "pgpass"
    try:
        _as_postgres(pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(root / "pwfile"),
                     "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8")
        _as_postgres(pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
                     f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                     "-c fsync=off", "start")
        hub_password = secrets.token_urlsafe(16)
        cluster = Cluster(root, port, admin_password, hub_password, password_file)
        for sql in (f"CREATE ROLE donghaeng_hub LOGIN PASSWORD '{hub_password}'",
                    "CREATE DATABASE donghaeng_hub OWNER donghaeng_hub"):
            result = cluster.psql(sql)
            assert result.returncode == 0, result.stderr
        password_file.write_text(f"127.0.0.1:{port}:*:postgres:{admin_password}\n"
                                 f"127.0.0.1:{port}:*:donghaeng_hub:{hub_password}\n")
        password_file.chmod(0o600)
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            _as_postgres(pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
