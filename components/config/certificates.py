"""The common names of the certificates the program issues, and their length limit.

X.509 caps a subject's common name at 64 characters (RFC 5280, appendix A.1:
``ub-common-name INTEGER ::= 64``); verifiers and the AWS Certificate Manager import that the
Client VPN needs may refuse a longer one. Every certificate orthgate issues, and where its
common name comes from:

- the DICOM CA and the Client VPN CA: the stack name (``Naming.common_name``, which keeps
  them within 64 characters by itself), so no key of the stack file makes them long;
- the Orthanc server certificate (components/orthanc/server.py): ``orthgate:orthanc.siteName``
  when set, else the load balancer's or host's DNS name, which AWS chooses (past 64
  characters the program falls back to a stack label, see ``orthanc_server_common_name``);
- a DICOM proxy site's client certificate (components/dicom_proxy.py): the site's ``name``;
- a TLS modality's client certificate (components/orthanc/server.py): the modality's
  ``name`` (a DNS label, so never past 63 characters);
- the Client VPN server certificate (components/client_vpn.py):
  ``server.<certificateDomain>``;
- a Client VPN workstation's certificate: ``<workstation>.<certificateDomain>``.

The functions below build those names; ``certificate_problems`` refuses, before anything is
declared, every configuration that would give one of them more than 64 characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from orthgate.components.config.errors import Problem, key_path
from orthgate.components.naming import COMMON_NAME_MAX_LENGTH

if TYPE_CHECKING:
    from orthgate.components.config.settings import Settings


def orthanc_server_common_name(host: str, fallback: str) -> str:
    """The Orthanc server certificate's common name: the host senders call (the site name,
    or the DNS name AWS gave), or ``fallback`` when that is too long to be one; clients
    check the alternative names, which carry every name anyway."""
    return host if host and len(host) <= COMMON_NAME_MAX_LENGTH else fallback


def proxy_site_common_name(site: str) -> str:
    """A DICOM proxy site's client certificate names the site."""
    return site


# The subject the DICOM CA gives a client certificate (components/pki.py): its organization
# and unit after the common name. A TLS modality's unit differs from a site's, so a retired
# modality's certificate never passes for a new site of the same name, nor the other way.
CERTIFICATE_ORGANIZATION = "orthgate"
DICOM_TRUST_DOMAIN = "DICOM"
TLS_MODALITY_UNIT = "DICOM modality"


def client_subject(common_name: str, unit: str = DICOM_TRUST_DOMAIN) -> str:
    """A client certificate's subject as nginx writes it ($ssl_client_s_dn, RFC 2253: the
    last attribute first; pulumi-tls encodes O, OU, CN in that order, as Go does)."""
    return f"CN={common_name},OU={unit},O={CERTIFICATE_ORGANIZATION}"


def tls_modality_common_name(modality: str) -> str:
    """A TLS modality's client certificate names the modality (DNS label: at most 63)."""
    return modality


def reissue_suffix(generation: int) -> str:
    """What a sender's certificate resources add to their names once a certificate of
    theirs was revoked (``generation`` revocations): a new key and certificate. Nothing for
    generation 0, so that certificates issued before revocation existed keep their names."""
    return f"-r{generation}" if generation else ""


def client_vpn_server_name(domain: str) -> str:
    """The Client VPN server certificate's common name (and only DNS name)."""
    return f"server.{domain}"


def workstation_common_name(workstation: str, domain: str) -> str:
    """A Client VPN workstation's certificate common name."""
    return f"{workstation}.{domain}"


def _too_long(name: str, certificate: str) -> str:
    return (
        f"gives the {certificate} the common name '{name}' of {len(name)} characters; "
        f"X.509 allows at most {COMMON_NAME_MAX_LENGTH} (RFC 5280 ub-common-name)"
    )


def certificate_problems(settings: Settings) -> Iterator[Problem]:
    """Every certificate common name the configuration would make longer than 64."""
    site_name = settings.orthanc.site_name
    # The program would quietly name the server otherwise; the operator asked for this name.
    if site_name and len(site_name) > COMMON_NAME_MAX_LENGTH:
        yield Problem(
            ("orthanc", "siteName"),
            _too_long(site_name, "Orthanc server certificate")
            + ": use a name of at most 64 characters",
            site_name,
        )

    for i, proxy in enumerate(settings.dicom_proxies):
        name = proxy_site_common_name(proxy.name)
        if len(name) > COMMON_NAME_MAX_LENGTH:
            yield Problem(
                ("dicomProxies", i, "name"), _too_long(name, "site's client certificate"), name
            )

    vpn = settings.client_vpn
    if not vpn.enabled:
        return  # no Client VPN certificate is issued
    domain = vpn.certificate_domain
    domain_key = key_path(("clientVpn", "certificateDomain"))
    server = client_vpn_server_name(domain)
    if len(server) > COMMON_NAME_MAX_LENGTH:
        limit = COMMON_NAME_MAX_LENGTH - len(client_vpn_server_name(""))
        yield Problem(
            ("clientVpn", "certificateDomain"),
            _too_long(server, "Client VPN server certificate")
            + f": use a domain of at most {limit} characters",
            domain,
        )
    for i, workstation in enumerate(vpn.workstations):
        name = workstation_common_name(workstation, domain)
        if len(name) > COMMON_NAME_MAX_LENGTH:
            yield Problem(
                ("clientVpn", "workstations", i),
                f"with {domain_key} ({len(domain)} characters) "
                + _too_long(name, "workstation's certificate")
                + ": shorten the workstation name or the domain",
                workstation,
            )
