"""Client VPN and site-to-site VPN: mutual TLS, split tunnel, logging, modern IPsec."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.ranges import parse
from orthgate_policy.values import as_list, dig, is_true, is_unknown, items, known, whole

CLIENT_VPN_ENDPOINT = "aws:ec2clientvpn/endpoint:Endpoint"
CLIENT_VPN_AUTHORIZATION = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
CLIENT_VPN_ROUTE = "aws:ec2clientvpn/route:Route"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"

# Left unset, each tunnel offers AWS's defaults, which include IKEv1, SHA1 and
# Diffie-Hellman group 2 (AWS Site-to-Site VPN User Guide, "Tunnel options for your
# Site-to-Site VPN connection": https://docs.aws.amazon.com/vpn/latest/s2svpn/VPNTunnels.html).
# The lists below are what remains once those are removed.
WIDEST_CLIENT_VPN_PREFIX = 8
MODERN = {
    "IkeVersions": {"ikev2"},
    "Phase1EncryptionAlgorithms": {"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"},
    "Phase2EncryptionAlgorithms": {"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"},
    "Phase1IntegrityAlgorithms": {"SHA2-256", "SHA2-384", "SHA2-512"},
    "Phase2IntegrityAlgorithms": {"SHA2-256", "SHA2-384", "SHA2-512"},
    # 14-18: 2048- to 8192-bit MODP; 19-21: elliptic curves. 2, 5 and the RFC 5114 groups
    # 22-24 are out.
    "Phase1DhGroupNumbers": {14, 15, 16, 17, 18, 19, 20, 21},
    "Phase2DhGroupNumbers": {14, 15, 16, 17, 18, 19, 20, 21},
}


def check_client_vpn_endpoint(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    options = items(props.get("authenticationOptions"), "authenticationOptions")
    kinds = [dig(o, "type") for o in options if isinstance(o, Mapping)]
    if not any(is_unknown(k) or k == "certificate-authentication" for k in kinds):
        yield (
            f"authentication is {kinds or 'not set'}: require certificate-authentication "
            "(mutual TLS) so that a stolen password alone cannot connect"
        )
    split = props.get("splitTunnel")
    if not (is_unknown(split) or is_true(split)):
        yield (
            "splitTunnel is off: every workstation's Internet traffic would go through the "
            "VPC; set splitTunnel=true"
        )
    logging = dig(props, "connectionLogOptions.enabled")
    if not (is_unknown(logging) or is_true(logging)):
        yield "connection logging is off: set connectionLogOptions.enabled=true with a log group"


def check_client_vpn_reach(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    key = (
        "targetNetworkCidr" if resource_type == CLIENT_VPN_AUTHORIZATION else "destinationCidrBlock"
    )
    cidr = known(props.get(key), key)
    # /0 and anything as wide as a /7 (0.0.0.0/1 + 128.0.0.0/1 is the whole Internet).
    if cidr and parse(str(cidr)).prefixlen < WIDEST_CLIENT_VPN_PREFIX:
        what = "authorizes" if resource_type == CLIENT_VPN_AUTHORIZATION else "routes"
        yield (
            f"the Client VPN {what} {cidr}: workstations would reach everything through the "
            "VPC; authorize only the ranges Orthanc is in"
        )


def check_vpn_connection(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    for tunnel in ("tunnel1", "tunnel2"):
        logging = dig(props, f"{tunnel}LogOptions.cloudwatchLogOptions.logEnabled")
        if not (is_unknown(logging) or is_true(logging)):
            yield (
                f"{tunnel}: logging is off; set {tunnel}LogOptions.cloudwatchLogOptions "
                "with logEnabled=true and a log group"
            )
        for option, allowed in MODERN.items():
            key = f"{tunnel}{option}"
            values = props.get(key)
            if is_unknown(values):
                continue
            offered = as_list(values, key)
            if any(is_unknown(v) for v in offered):
                continue
            if not offered:
                yield (
                    f"{key} is unset, so AWS's defaults apply (they include weak choices); "
                    f"list only {_sorted(allowed)}"
                )
                continue
            weak = [v for v in offered if _normal(v) not in allowed]
            if weak:
                yield f"{key} offers {_sorted(weak)}; allow only {_sorted(allowed)}"


def _normal(value: Any) -> Any:
    """14.0 and "14" are group 14; algorithm names are compared as written by AWS."""
    text = whole(value)
    return int(text) if text.isdigit() else str(value).strip()


def _sorted(values: Any) -> str:
    return ", ".join(str(_normal(v)) for v in sorted(values, key=str))


CLIENT_VPN_HARDENED = resource_policy(
    "client-vpn-endpoint-hardened",
    "Client VPN endpoints use certificate (mutual TLS) authentication, split tunnel and "
    "connection logging. From: FSBP EC2.51 (logging), orthgate README (Client VPN).",
    {CLIENT_VPN_ENDPOINT},
    check_client_vpn_endpoint,
    remediation="authenticationOptions=[{type: certificate-authentication, ...}], "
    "splitTunnel=true, connectionLogOptions={enabled: true, cloudwatchLogGroup: ...}.",
)

CLIENT_VPN_NO_WORLD = resource_policy(
    "client-vpn-no-world-authorization",
    "No Client VPN authorization rule or route to 0.0.0.0/0, nor to any range wider than "
    "/8. From: orthgate README (workstations reach Orthanc, nothing else), NIST 800-53 AC-4.",
    {CLIENT_VPN_AUTHORIZATION, CLIENT_VPN_ROUTE},
    check_client_vpn_reach,
    remediation="Authorize and route only the subnets Orthanc and its resolver are in.",
)

SITE_TO_SITE_HARDENED = resource_policy(
    "site-to-site-vpn-hardened",
    "Site-to-site VPN tunnels log to CloudWatch and offer only IKEv2, AES, SHA-2 and "
    "Diffie-Hellman groups 14-21. From: FSBP EC2.171 (logging), NIST SP 800-77r1.",
    {VPN_CONNECTION},
    check_vpn_connection,
    remediation="Set tunnelNIkeVersions=['ikev2'] and the phase 1 and phase 2 algorithm "
    "and group lists on both tunnels, and tunnelNLogOptions with logEnabled=true.",
)

POLICIES = [CLIENT_VPN_HARDENED, CLIENT_VPN_NO_WORLD, SITE_TO_SITE_HARDENED]
