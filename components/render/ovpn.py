"""Client profiles (.ovpn) for AWS Client VPN, in the shape the AWS console exports.

Built from the endpoint's DNS name and the program's own certificates, so no AWS CLI call
is needed. A profile holds a private key: whoever renders one keeps it secret.
"""

from __future__ import annotations

from dataclasses import dataclass

# AWS gives the endpoint a wildcard name; any label in front of it resolves.
ENDPOINT_LABEL = "orthgate"


def endpoint_host(dns_name: str | None, label: str = ENDPOINT_LABEL) -> str:
    """``*.cvpn-endpoint-0abc.prod.clientvpn.eu-central-1.amazonaws.com`` -> a usable host."""
    dns_name = dns_name or ""
    return f"{label}.{dns_name[2:]}" if dns_name.startswith("*.") else dns_name


@dataclass(frozen=True)
class ClientProfileSpec:
    remote_host: str
    port: int
    protocol: str  # "udp" or "tcp"
    server_name: str  # the CN of the endpoint's server certificate
    ca_pem: str
    cert_pem: str
    key_pem: str


def _block(tag: str, pem: str) -> str:
    return f"<{tag}>\n{(pem or '').strip()}\n</{tag}>\n"


def render_client_profile(spec: ClientProfileSpec) -> str:
    if spec.protocol not in ("udp", "tcp"):
        raise ValueError(f"protocol must be udp or tcp, not {spec.protocol!r}")
    return (
        "client\n"
        "dev tun\n"
        f"proto {spec.protocol}\n"
        f"remote {spec.remote_host} {spec.port}\n"
        "remote-random-hostname\n"
        "resolv-retry infinite\n"
        "nobind\n"
        "remote-cert-tls server\n"
        # Beyond the AWS export: accept only the endpoint's own certificate name.
        f"verify-x509-name {spec.server_name} name\n"
        "cipher AES-256-GCM\n"
        "verb 3\n"
        + _block("ca", spec.ca_pem)
        + _block("cert", spec.cert_pem)
        + _block("key", spec.key_pem)
        + "\nreneg-sec 0\n"
    )
