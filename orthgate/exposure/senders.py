"""Who may store: the AE titles of nginx's sender maps and of Orthanc's registrations, as
the program writes them into the hosts' secrets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from orthgate.offline.evaluation import Evaluation


@dataclass(frozen=True)
class Senders:
    """nginx's sender maps and Orthanc's registrations, as written into the secrets."""

    tls_addresses: frozenset[str]  # loopback addresses a certificate maps to
    plain: tuple[tuple[IPv4Network, str], ...]  # geo entries: range -> loopback address
    stores: dict[str, tuple[str, ...]]  # loopback address -> AE titles allowed to store
    check_host: bool
    always_store: bool

    def titles(self, addresses: Iterable[str]) -> tuple[str, ...]:
        if self.always_store:
            return ("any AE title",)
        if not self.check_host:
            return tuple(sorted({t for ts in self.stores.values() for t in ts}))
        return tuple(sorted({t for a in addresses for t in self.stores.get(a, ())}))


def _secret(evaluation: Evaluation, role: str) -> dict[str, Any]:
    for version in evaluation.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        if version.name.endswith(f"-{role}-secret-value"):
            value = json.loads(version.inputs.get("secretString") or "{}")
            return value if isinstance(value, dict) else {}
    return {}


_MAP_LINE = re.compile(r'^\s*"(?P<key>[^"]*)"\s+(?P<address>[0-9.]+);$')
_GEO_LINE = re.compile(r"^\s*(?P<key>[0-9./]+)\s+(?P<address>[0-9.]+);$")


def senders_of(evaluation: Evaluation) -> Senders:
    from orthgate.components.orthanc.configuration import SECRET_NAMES

    # The current secrets only: the retired ones of the earlier release are for older hosts.
    nginx = _secret(evaluation, SECRET_NAMES["tls"])
    maps = nginx.get("senderMaps", "")
    orthanc = json.loads(_secret(evaluation, SECRET_NAMES["config"]).get("orthanc.json", "{}"))
    tls, plain, block = set(), [], ""
    for line in maps.splitlines():
        if line.startswith(("map ", "geo ")):
            block = line.split()[0]
        elif block == "map" and (found := _MAP_LINE.match(line)):
            tls.add(found["address"])
        elif block == "geo" and (found := _GEO_LINE.match(line)):
            plain.append((IPv4Network(found["key"]), found["address"]))
    stores: dict[str, list[str]] = {}
    for entry in orthanc.get("DicomModalities", {}).values():
        if entry.get("AllowStore"):
            stores.setdefault(entry["Host"], []).append(entry["AET"])
    return Senders(
        frozenset(tls),
        tuple(plain),
        {k: tuple(v) for k, v in stores.items()},
        check_host=bool(orthanc.get("DicomCheckModalityHost")),
        always_store=bool(orthanc.get("DicomAlwaysAllowStore")),
    )
