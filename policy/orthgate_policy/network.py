"""Security groups: who may reach the DICOM ports, no remote administration, closed
default groups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.ingress import DEFAULT_SECURITY_GROUP, INGRESS_TYPES, Ingress, read_ingress
from orthgate_policy.ranges import is_world, parse, within_any
from orthgate_policy.settings import DICOM_PROPERTIES, DicomSettings, schema
from orthgate_policy.values import UNKNOWN_STRING_VALUE, UnknownValueError, as_list

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}


def _dicom_findings(rule: Ingress, settings: DicomSettings) -> Iterator[str]:
    ports = sorted(p for p in settings.ports if rule.covers(p))
    if not ports:
        return
    plaintext = [p for p in ports if p != settings.tls_port]
    for cidr in rule.cidrs:
        network = parse(cidr)
        if is_world(network):
            yield (
                f"{rule.where}: DICOM port(s) {_ports(ports)} are open to {cidr}, the whole "
                "Internet; name the sites' ranges instead"
            )
            continue
        if within_any(network, settings.private_ranges):
            continue
        if plaintext:
            yield (
                f"{rule.where}: plaintext DICOM port(s) {_ports(plaintext)} are open to "
                f"{cidr}, which is Internet-routable; plaintext DICOM may come only from "
                "RFC 1918 ranges, security groups or the pack's privateCidrs (a private path)"
            )
        widest = settings.widest_tls_prefix[network.version]
        if settings.tls_port in ports and network.prefixlen < widest:
            yield (
                f"{rule.where}: the DICOM TLS port {settings.tls_port} is open to {cidr}, "
                f"wider than /{widest}; name the sites' own ranges"
            )
    for prefix_list in rule.prefix_lists:
        if prefix_list not in settings.allowed_prefix_lists:
            yield (
                f"{rule.where}: DICOM port(s) {_ports(ports)} are open to prefix list "
                f"{prefix_list}, whose entries the pack cannot see; list it in "
                "allowedPrefixListIds once you have checked them"
            )


def _ports(ports: list[int]) -> str:
    return ", ".join(str(p) for p in ports)


def check_dicom_ingress(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    settings = DicomSettings.from_config(args.get_config())
    rules, postponed = read_ingress(resource_type, props)
    for rule in rules:
        yield from _dicom_findings(rule, settings)
    # What can be judged is reported first; a source known only at update is judged then.
    for rule in rules:
        if rule.unknown_sources and any(rule.covers(p) for p in settings.ports):
            raise UnknownValueError(UNKNOWN_STRING_VALUE, [rule.unknown_sources[0]])
    if postponed is not None:
        raise postponed


def check_admin_ports(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    # Any source at all is refused, so unknown sources do not matter here.
    rules, postponed = read_ingress(resource_type, props)
    yield from _admin_findings(rules)
    if postponed is not None:
        raise postponed


def _admin_findings(rules: list[Ingress]) -> Iterator[str]:
    for rule in rules:
        for port, service in ADMIN_PORTS.items():
            if rule.covers(port):
                yield (
                    f"{rule.where}: port {port} ({service}) is open (ports "
                    f"{rule.ports_text()}, protocol {rule.protocol}); reach hosts through "
                    "SSM Session Manager instead"
                )


def check_default_group(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    for direction in ("ingress", "egress"):
        rules = as_list(props.get(direction), direction)
        if rules:
            yield (
                f"the VPC's default security group declares {len(rules)} {direction} "
                "rule(s); it must have none, so that nothing attached to it by accident "
                "can talk"
            )


DICOM_INGRESS = resource_policy(
    "dicom-ingress-restricted",
    "DICOM ports (104, 2762, 4242, 11112 and the stack's dicomTlsPort) take no ingress "
    "from 0.0.0.0/0 or ::/0; plaintext DICOM only from RFC 1918 ranges or security "
    "groups; from Internet-routable space only the TLS port. From: orthgate README "
    "(security groups limit every DICOM port to the sources allowed to use it), "
    "FSBP EC2.18, HIPAA 164.312(e)(1).",
    INGRESS_TYPES,
    check_dicom_ingress,
    config_schema=schema(DICOM_PROPERTIES),
    remediation="Give each DICOM port the sites' own ranges or the security groups of the "
    "senders; carry plaintext DICOM over a site-to-site VPN, Direct Connect, Client VPN "
    "or an orthgate DICOM proxy, and add such on-premises ranges to privateCidrs.",
)

NO_ADMIN_PORTS = resource_policy(
    "no-remote-admin-ingress",
    "No ingress on port 22 (SSH) or 3389 (RDP) from any source. From: FSBP EC2.19 "
    "(high-risk ports), PCI DSS EC2.13, EC2.14, EC2.53, EC2.54.",
    INGRESS_TYPES,
    check_admin_ports,
    remediation="Remove the rule; use SSM Session Manager (orthgate's hosts have it).",
)

DEFAULT_GROUP_CLOSED = resource_policy(
    "default-security-group-closed",
    "The VPC default security group has no rules. From: FSBP EC2.2.",
    {DEFAULT_SECURITY_GROUP},
    check_default_group,
    remediation="Declare aws.ec2.DefaultSecurityGroup with ingress=[] and egress=[].",
)

POLICIES = [DICOM_INGRESS, NO_ADMIN_PORTS, DEFAULT_GROUP_CLOSED]
