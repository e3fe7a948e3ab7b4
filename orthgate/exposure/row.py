"""One row of the exposure table: an endpoint's port, its sources, its path, its senders."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

UNEXPLAINED = "unexplained"
DICOM_TLS = "DICOM TLS"
DICOM_PLAIN = "DICOM (plaintext)"
HTTPS = "HTTPS"
INTERNET = "Internet"


@dataclass(frozen=True)
class Exposure:
    """One way in: an endpoint's port, from these sources, over this path."""

    endpoint: str  # "Orthanc host", "public NLB", "Client VPN endpoint", ...
    port: int | None  # None: a protocol without ports (ESP)
    protocol: str  # tcp, udp, esp
    service: str
    path: str  # "Internet (TLS)", "site-to-site VPN <name>", "Direct Connect", ...
    sources: tuple[str, ...]  # CIDRs, or what a security group stands for
    ae_titles: tuple[str, ...] = ()  # who may store through this row; () for non-DICOM
    authentication: str = ""
    except_sources: tuple[str, ...] = ()  # parts of the sources that belong to other rows
    address: str = ""  # where senders connect, as far as the program decides it
    rules: tuple[str, ...] = ()  # the declared ingress rules this row accounts for
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }

    @property
    def internet(self) -> bool:
        return self.path.startswith(INTERNET)
