"""Orthanc's configuration (orthanc.json) behind the nginx TLS terminator.

The rendered file holds no secret. Passwords are merged in on the host at start-up from
Secrets Manager (see ``secret_values``), so the file can travel in user data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orthgate.components.render.paths import ORTHANC_DB_IN_CONTAINER, RDS_CA_IN_CONTAINER
from orthgate.components.render.sender_identity import (
    ANY_PRIVATE_PATH,
    SenderIdentity,
    identity_address,
)

ADMIN_USER = "admin"
# Stable after a minute without new instances; forwarding peers (the DICOM proxy) send a
# study in one association, so this adds at most a minute before a study counts as complete.
STABLE_AGE_SECONDS = 60
# Failed jobs must stay visible long enough for an operator (or a peer) to resubmit them.
JOBS_HISTORY_SIZE = 1000
# Index connections per writer: the Orthanc Book's scalability page suggests more than one
# for concurrency; 5 per host keeps a 20-host fleet far below a small RDS's connection limit.
FLEET_INDEX_CONNECTIONS = 5


@dataclass(frozen=True)
class Sender:
    """A modality or peer allowed to store: its calling AE title, and (on the cloud side)
    what proves it may use that title (components.render.sender_identity)."""

    name: str
    ae_title: str
    identity: SenderIdentity = ANY_PRIVATE_PATH


@dataclass(frozen=True)
class Database:
    host: str
    port: int = 5432
    name: str = "orthanc"


@dataclass(frozen=True)
class OrthancConfigSpec:
    name: str
    ae_title: str
    senders: Sequence[Sender] = ()
    dicom_port: int = 4242
    http_port: int = 8042
    storage: Literal["filesystem", "s3"] = "filesystem"
    storage_directory: str = ORTHANC_DB_IN_CONTAINER
    s3_bucket: str | None = None
    s3_region: str | None = None
    database: Database | None = None  # None: SQLite in storage_directory
    # Several Orthanc servers write to one index and one bucket (a fleet).
    several_writers: bool = False


@dataclass(frozen=True)
class SecretValue:
    """Where in orthanc.json a value from Secrets Manager goes at start-up.

    With ``key``, the secret's field replaces the value. With ``fill_url``, the value is a
    template whose ``{field}`` placeholders take the secret's fields, URL-encoded.
    """

    at: tuple[str, ...]
    secret: str  # which secret, by role: "admin" or "database"
    key: str | None = None
    fill_url: bool = False

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"at": list(self.at), "secret": self.secret}
        if self.fill_url:
            entry["fill"] = "url"
        else:
            entry["key"] = self.key
        return entry


def modality_entry(
    ae_title: str, host: str, port: int, *, may_store: bool, use_tls: bool = False
) -> dict[str, Any]:
    """A DicomModalities entry granting echo and, optionally, store; nothing else."""
    entry: dict[str, Any] = {
        "AET": ae_title,
        "Host": host,
        "Port": port,
        "AllowEcho": True,
        "AllowStore": may_store,
        "AllowFind": False,
        "AllowMove": False,
        "AllowGet": False,
        "AllowNAction": False,
        "AllowNEventReport": False,
    }
    if use_tls:
        entry["UseDicomTls"] = True
    return entry


def sender_entry(sender: Sender) -> dict[str, Any]:
    """A sender of a site proxy, which checks AE titles only. Never dialled: Orthanc only
    needs a syntactically valid peer address."""
    return modality_entry(sender.ae_title, "127.0.0.1", 104, may_store=True)


def registered_entry(sender: Sender) -> dict[str, Any]:
    """A sender of the cloud Orthanc: the host is the loopback address nginx connects from
    for this sender's identity, and Orthanc checks it. Never dialled."""
    return modality_entry(sender.ae_title, identity_address(sender.identity), 104, may_store=True)


def render_orthanc_config(spec: OrthancConfigSpec) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Name": spec.name,
        "DicomAet": spec.ae_title,
        "DicomPort": spec.dicom_port,
        "HttpPort": spec.http_port,
        # nginx, in Orthanc's network namespace, fronts both DICOM ports (TLS and plaintext)
        # and the REST API; Orthanc only ever sees nginx.
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "SslEnabled": False,
        "DicomTlsEnabled": False,
        # nginx connects from the loopback address that stands for the sender's identity
        # (its certificate, or its private-path sources); every AE title is registered with
        # exactly one such address and Orthanc checks it. With two entries for one AE
        # title Orthanc 1.10 skips the check: AE titles are unique (the config refuses
        # duplicates), compared exactly, and Orthanc must be called by its own.
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,
        "StrictAetComparison": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowMove": False,
        "DicomAlwaysAllowGet": False,
        "DicomModalities": {sender.name: registered_entry(sender) for sender in spec.senders},
        # A re-sent instance replaces the stored one in place (Orthanc's instance id hashes
        # the PatientID and the study, series and SOP Instance UIDs): a resubmitted study is
        # never duplicated, and a corrected re-send (e.g. PatientName) wins, never dropped.
        "OverwriteInstances": True,
        "UnknownSopClassAccepted": False,
        "StableAge": STABLE_AGE_SECONDS,
        # Jobs belong to the server that runs them; with several writers each one would
        # overwrite the others' saved registry in the shared index (Orthanc Book,
        # "Scalability"). Stores never depend on jobs; a sender retries a failed store.
        "SaveJobs": not spec.several_writers,
        "JobsHistorySize": JOBS_HISTORY_SIZE,
        "ConcurrentJobs": 2,
        "DicomScpTimeout": 60,
        "StorageCompression": False,
        "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
        "HttpDescribeErrors": False,
        "StorageDirectory": spec.storage_directory,
        "IndexDirectory": spec.storage_directory,
    }
    if spec.several_writers:
        config |= {
            # A C-FIND answers from the index alone: another writer's file may not be
            # readable yet, and reading S3 per match is slow (Orthanc Book, "Scalability").
            "StorageAccessOnFind": "Never",
            # Two writers changing one resource's metadata or attachments: the second is
            # told about the conflict instead of silently overwriting (revisions, 1.9.2+).
            "CheckRevisions": True,
        }
    if spec.storage == "s3":
        config["AwsS3Storage"] = {
            "BucketName": spec.s3_bucket,
            "Region": spec.s3_region,
            "StorageStructure": "flat",
            # Credentials come from the instance role through IMDSv2.
            "ConnectionTimeout": 30,
            "RequestTimeout": 1200,
        }
    if spec.database is not None:
        database = spec.database
        config["PostgreSQL"] = {
            "EnableIndex": True,
            "EnableStorage": False,
            # A URI, because the plugin passes Username/Password to libpq unquoted: a
            # password with a space or a backslash (RDS may generate either) fails to log
            # in. The credentials are filled in URL-encoded on the host. verify-full: libpq
            # checks the server's certificate against the region's RDS CA bundle (fetched
            # at first boot, mounted read-only) and its name against the endpoint's DNS
            # name, so nothing inside the VPC can pose as the database and take the login.
            "ConnectionUri": (
                f"postgresql://{{username}}:{{password}}@{database.host}:{database.port}"
                f"/{database.name}?sslmode=verify-full&sslrootcert={RDS_CA_IN_CONTAINER}"
            ),
            # A single host locks the index, so a stray second server cannot corrupt it; a
            # fleet's writers share it (Orthanc 1.9.2+ with the PostgreSQL plugin 4.0+).
            "Lock": not spec.several_writers,
        }
        if spec.several_writers:
            config["PostgreSQL"]["IndexConnectionsCount"] = FLEET_INDEX_CONNECTIONS
    return config


def secret_values(spec: OrthancConfigSpec) -> list[SecretValue]:
    """The secret parts of orthanc.json, filled on the host from Secrets Manager."""
    values = [SecretValue(("RegisteredUsers", ADMIN_USER), "admin", "password")]
    if spec.database is not None:
        values.append(SecretValue(("PostgreSQL", "ConnectionUri"), "database", fill_url=True))
    return values


def to_json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
