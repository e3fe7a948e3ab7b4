"""Certificate authorities and leaf certificates on pulumi-tls.

One CA per trust domain (DICOM, Client VPN): a CA never signs for another domain. Lifetimes
are given in days and converted to the hours pulumi-tls wants. Each certificate carries an
early-renewal window, so a ``pulumi up`` inside it issues a fresh one; a CA renews early
enough that every leaf it signs ends before the CA does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from orthgate.components.crl import build_crl

HOURS_PER_DAY = 24
# Leaves are re-issued by the first `pulumi up` within this many days of their expiry.
LEAF_RENEWAL_DAYS = 30


def hours(days: int) -> int:
    return days * HOURS_PER_DAY


@dataclass(frozen=True)
class IssuedCertificate:
    """A key pair and its certificate. ``private_key_pem`` is a Pulumi secret."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    expires_at: pulumi.Output[str]
    validity_days: int


class CertificateAuthority:
    """A self-signed CA for one trust domain, and the leaves it issues.

    ``longest_leaf_days`` is the longest lifetime of any leaf this CA will sign; the CA
    renews that long (plus a margin) before it expires, so no leaf outlives its CA.
    """

    def __init__(
        self,
        name: str,
        *,
        common_name: str,
        trust_domain: str,
        validity_days: int,
        longest_leaf_days: int,
        rsa_bits: int,
        opts: pulumi.ResourceOptions,
    ) -> None:
        renew_days = longest_leaf_days + LEAF_RENEWAL_DAYS
        if validity_days <= 2 * renew_days:
            raise ValueError(
                f"CA {name}: {validity_days} days is too short for leaves of "
                f"{longest_leaf_days} days"
            )
        self.name = name
        self.trust_domain = trust_domain
        self.validity_days = validity_days
        self.longest_leaf_days = longest_leaf_days
        self._opts = opts
        key = tls.PrivateKey(f"{name}-key", algorithm="RSA", rsa_bits=rsa_bits, opts=opts)
        cert = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=key.private_key_pem,
            subject={
                "common_name": common_name,
                "organization": "orthgate",
                "organizational_unit": trust_domain,
            },
            is_ca_certificate=True,
            set_subject_key_id=True,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            validity_period_hours=hours(validity_days),
            early_renewal_hours=hours(renew_days),
            # The subject only names the CA. Earlier releases wrote the stack name in full
            # (past X.509's 64 characters for long stack names); a changed subject would
            # replace the CA and every certificate it signed, so a deployed CA keeps its own.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(ignore_changes=["subject"])
            ),
        )
        self._key_pem = key.private_key_pem
        self.cert_pem: pulumi.Output[str] = cert.cert_pem
        self.expires_at: pulumi.Output[str] = cert.validity_end_time

    def revocation_list(self, serials: Sequence[str]) -> pulumi.Output[str]:
        """A CRL (PEM) of ``serials`` (hex, as ``parse_serial`` reads them) signed by this CA
        and valid as long as it is (components/crl.py). Public: signed with the CA key, it
        carries only the signature, so unlike the key it is not a secret."""
        revoked = tuple(serials)
        return pulumi.Output.unsecret(
            pulumi.Output.all(self.cert_pem, self._key_pem).apply(
                # Only a harness that computes nothing leaves the PEMs empty.
                lambda v: build_crl(v[0], v[1], revoked) if v[0] and v[1] else None
            )
        )

    def issue_server(
        self,
        name: str,
        *,
        common_name: str | pulumi.Input[str],
        dns_names: pulumi.Input[Sequence[str]],
        ip_addresses: pulumi.Input[Sequence[str]] = (),
        validity_days: int,
    ) -> IssuedCertificate:
        return self._issue(
            name,
            common_name=common_name,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            validity_days=validity_days,
            uses=["digital_signature", "key_encipherment", "server_auth"],
        )

    def issue_client(
        self,
        name: str,
        *,
        common_name: str,
        validity_days: int,
        opts: pulumi.ResourceOptions | None = None,
        unit: str | None = None,
    ) -> IssuedCertificate:
        """A clientAuth leaf; ``opts`` lets another component own it (e.g. a proxy site).
        ``unit``: the subject's organizational unit, the CA's trust domain by default (a
        kind of sender of its own keeps two kinds' certificates of one name apart)."""
        return self._issue(
            name,
            common_name=common_name,
            dns_names=[],
            ip_addresses=[],
            validity_days=validity_days,
            uses=["digital_signature", "key_encipherment", "client_auth"],
            opts=opts,
            unit=unit,
        )

    def _issue(
        self,
        name: str,
        *,
        common_name: pulumi.Input[str],
        dns_names: pulumi.Input[Sequence[str]],
        ip_addresses: pulumi.Input[Sequence[str]],
        validity_days: int,
        uses: list[str],
        opts: pulumi.ResourceOptions | None = None,
        unit: str | None = None,
    ) -> IssuedCertificate:
        if validity_days > self.longest_leaf_days:
            raise ValueError(
                f"{name}: {validity_days} days exceeds what CA {self.name} was sized for "
                f"({self.longest_leaf_days})"
            )
        opts = opts or self._opts
        key = tls.PrivateKey(f"{name}-key", algorithm="RSA", rsa_bits=2048, opts=opts)
        request = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            subject={
                "common_name": common_name,
                "organization": "orthgate",
                "organizational_unit": unit or self.trust_domain,
            },
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            opts=opts,
        )
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=self._key_pem,
            ca_cert_pem=self.cert_pem,
            allowed_uses=uses,
            set_subject_key_id=True,
            validity_period_hours=hours(validity_days),
            early_renewal_hours=hours(LEAF_RENEWAL_DAYS),
            opts=opts,
        )
        return IssuedCertificate(
            cert_pem=cert.cert_pem,
            private_key_pem=pulumi.Output.secret(key.private_key_pem),
            expires_at=cert.validity_end_time,
            validity_days=validity_days,
        )
