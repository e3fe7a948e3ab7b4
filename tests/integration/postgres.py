"""A throw-away PostgreSQL cluster that, like RDS with `rds.force_ssl=1`, accepts TLS only.

Debian's PostgreSQL 15 runs as the postgres user inside a lab host; the Orthanc PostgreSQL
index plugin (Debian's orthanc-postgresql) connects to it the way it connects to RDS.
Its server certificate comes from a stand-in for an RDS CA (``RdsCaStandIn``): a root and
an intermediate, both in the bundle a client trusts, as in the region bundles AWS publishes,
and a leaf naming the host the client was told to connect to (the endpoint's DNS name).
"""

from __future__ import annotations

import datetime
import glob
import shutil
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.certs import CA_KEY_USAGE, CertFiles
from tests.integration.netlab import INSTALL_HINT, Host, Process, require

INDEX_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")
READY = "database system is ready to accept connections"
RELOADED = "received SIGHUP, reloading configuration files"


def postgres_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or not INDEX_PLUGIN.exists():
        pytest.fail(
            "PostgreSQL or the Orthanc PostgreSQL plugin is missing (Debian packages "
            f"postgresql, orthanc-postgresql); {INSTALL_HINT}",
            pytrace=False,
        )
    return Path(found[-1]).parent


class RdsCaStandIn:
    """A root CA and an intermediate under it that issues server certificates.

    ``bundle_pem`` is what a client trusts (sslrootcert): the intermediate and the root,
    as in an RDS region bundle; a server presents its leaf only.
    """

    def __init__(self, dest: Path, name: str = "test RDS") -> None:
        self.dest = dest
        dest.mkdir(parents=True, exist_ok=True)
        self._now = datetime.datetime.now(datetime.UTC)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = self._ca(f"{name} Root CA", root_key, None, root_key)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = self._ca(f"{name} intermediate CA", self._key, root, root_key)
        self.bundle_pem = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode() for c in (self._cert, root)
        )

    def _ca(
        self,
        common_name: str,
        key: rsa.RSAPrivateKey,
        issuer: x509.Certificate | None,
        issuer_key: rsa.RSAPrivateKey,
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - datetime.timedelta(minutes=5))
            .not_valid_after(self._now + datetime.timedelta(days=2))
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
                critical=True,
            )
            .add_extension(
                CA_KEY_USAGE,
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(issuer_key, hashes.SHA256())
        )

    def issue(self, host_name: str) -> CertFiles:
        """A server certificate naming ``host_name`` in its DNS SAN, where libpq looks first
        (and only, when there is one). Its CN too when it fits: a CN holds at most 64
        characters, fewer than an RDS endpoint may have (the prod stack's has about 90)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        common_name = host_name if len(host_name) <= 64 else host_name.split(".")[0]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - datetime.timedelta(minutes=5))
            .not_valid_after(self._now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        cert = builder.sign(self._key, hashes.SHA256())
        files = CertFiles(self.dest / f"{host_name}.crt", self.dest / f"{host_name}.key")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        files.key.chmod(0o600)
        return files


def as_postgres(*argv: str) -> list[str]:
    # setpriv execs the command itself: the spawned PID is the server's.
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


class Postgres:
    """A throw-away cluster owned by the postgres user, accepting TLS connections only.

    ``root`` must be traversable by the postgres user (pytest's temporary folders are not).
    Its server certificate names ``server_name`` (give the endpoint Orthanc is told to
    connect to) and comes from ``self.ca``, whose ``bundle_pem`` a verifying client trusts.
    """

    def __init__(self, host: Host, root: Path) -> None:
        require("setpriv")
        self.bin = postgres_binaries()
        self.host = host
        self.data = root / "data"
        self.process: Process | None = None
        self.ca = RdsCaStandIn(root / "pki")

    def _install_certificate(self, files: CertFiles) -> None:
        for source, name in ((files.cert, "server.crt"), (files.key, "server.key")):
            shutil.copy(source, self.data / name)
            shutil.chown(self.data / name, "postgres", "postgres")
        (self.data / "server.key").chmod(0o600)

    def start(self, user: str, password: str, database: str, *, server_name: str) -> None:
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postgres", "postgres")
        self.host.run(as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "reject"))
        self._install_certificate(self.ca.issue(server_name))
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
                # "connection authorized" lines: who logged in, and over which TLS.
                "-c", "log_connections=on",
            ),
            label="postgres",
        )  # fmt: skip
        self.host.wait_for_port(5432, address=self.host.ip, process=self.process)
        # Listening comes first; connections are refused until start-up is over.
        deadline = time.monotonic() + 30
        while READY not in self.process.log_text():
            assert self.process.alive, self.process.log_tail()
            assert time.monotonic() < deadline, self.process.log_tail()
            time.sleep(0.05)
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {database} OWNER {user}")

    def serve_certificate(self, files: CertFiles) -> None:
        """Present another server certificate from now on (PostgreSQL reloads it on SIGHUP)."""
        assert self.process is not None
        reloads = self.process.log_text().count(RELOADED)
        self._install_certificate(files)
        assert self.sql("SELECT pg_reload_conf()") == "t"
        # The postmaster reloads after answering: wait until it says it has.
        deadline = time.monotonic() + 10
        while self.process.log_text().count(RELOADED) == reloads:
            assert time.monotonic() < deadline, self.process.log_tail()
            time.sleep(0.05)

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
