"""A throw-away PostgreSQL cluster that, like RDS with `rds.force_ssl=1`, accepts TLS only.

Debian's PostgreSQL 15 runs as the postgres user inside a lab host; the Orthanc PostgreSQL
index plugin (Debian's orthanc-postgresql) connects to it the way it connects to RDS.
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest

from tests.integration.netlab import INSTALL_HINT, Host, Process, make_pki, require

INDEX_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")


def postgres_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or not INDEX_PLUGIN.exists():
        pytest.fail(
            "PostgreSQL or the Orthanc PostgreSQL plugin is missing (Debian packages "
            f"postgresql, orthanc-postgresql); {INSTALL_HINT}",
            pytrace=False,
        )
    return Path(found[-1]).parent


def as_postgres(*argv: str) -> list[str]:
    # setpriv execs the command itself: the spawned PID is the server's.
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


class Postgres:
    """A throw-away cluster owned by the postgres user, accepting TLS connections only.

    ``root`` must be traversable by the postgres user (pytest's temporary folders are not).
    """

    def __init__(self, host: Host, root: Path) -> None:
        require("setpriv")
        self.bin = postgres_binaries()
        self.host = host
        self.data = root / "data"
        self.process: Process | None = None

    def start(self, user: str, password: str, database: str) -> None:
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postgres", "postgres")
        self.host.run(as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "reject"))
        pki = make_pki(self.data.parent / "pki", servers=["db.test"], clients=[])
        for source, name in (
            (pki["db.test"].cert, "server.crt"),
            (pki["db.test"].key, "server.key"),
        ):
            shutil.copy(source, self.data / name)
            shutil.chown(self.data / name, "postgres", "postgres")
        (self.data / "server.key").chmod(0o600)
        (self.data / "pg_hba.conf").write_text(
            "local all postgres peer\n"
            "hostssl all all 0.0.0.0/0 scram-sha-256\n"
            "host all all 0.0.0.0/0 reject\n"
        )
        self.process = self.host.spawn(
            as_postgres(
                str(self.bin / "postgres"), "-D", str(self.data),
                "-c", f"listen_addresses={self.host.ip}",
                "-c", f"unix_socket_directories={self.data}",
                "-c", "ssl=on",
                "-c", "password_encryption=scram-sha-256",
            ),
            label="postgres",
        )  # fmt: skip
        self.host.wait_for_port(5432, address=self.host.ip, process=self.process)
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {database} OWNER {user}")

    def sql(self, statement: str, database: str = "postgres") -> str:
        result = self.host.run(
            as_postgres(
                str(self.bin / "psql"), "-h", str(self.data), "-d", database,
                "-At", "-v", "ON_ERROR_STOP=1", "-c", statement,
            )
        )  # fmt: skip
        return result.stdout.strip()

    def stop(self) -> None:
        if self.process:
            self.process.stop()
