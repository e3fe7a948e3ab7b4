"""Certificate revocation lists (X.509 v2 CRLs, RFC 5280 section 5), built in the program.

Pure functions of plain values: the PEM texts of a CA's certificate and key and the serials
to revoke in, a PEM CRL out. The program renders the CRL on every ``pulumi up`` and hands it
over as it is (nginx reads it from a host secret; the Client VPN endpoint gets it imported);
nobody fetches a fresh one from a distribution point. Two consequences shape it:

- It is deterministic: the same CA and serials give the same bytes, so an unchanged list
  never changes a secret nor reloads a host. Nothing in it reads the clock.
- It is valid for as long as its CA is: a CRL past its nextUpdate makes OpenSSL-based
  verifiers (nginx, OpenVPN) refuse every client ("CRL has expired"), and no process here
  would issue the next one in time. When the CA renews, the CRL is rebuilt with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from components.config.serials import format_serial, parse_serial


def certificate_serial(cert_pem: str) -> str:
    """The serial of a PEM certificate in canonical form (components/config/serials.py):
    what ``openssl x509 -serial`` and nginx's ``$ssl_client_serial`` print."""
    return format_serial(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number)


def issued_serial(cert_pem: str | None) -> str | None:
    """``certificate_serial`` of a certificate output; None where there is none yet (only
    a harness that computes nothing leaves a certificate empty)."""
    return certificate_serial(cert_pem) if cert_pem else None


def build_crl(ca_cert_pem: str, ca_key_pem: str, revoked_serials: Sequence[str]) -> str:
    """A PEM CRL issued by the CA, listing ``revoked_serials`` (hex, as ``parse_serial``
    reads them; repeated ones once, in ascending order). An empty list gives a valid CRL
    without entries, which nginx needs all the same (``ssl_crl`` takes a file)."""
    ca = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"a CRL is signed with an RSA or EC CA key here, not {type(key).__name__}")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != ca.public_key().public_bytes(*spki):
        raise ValueError("the CA key does not belong to the CA certificate")
    serials = sorted({int(parse_serial(serial), 16) for serial in revoked_serials})

    # Valid from the CA's first day to its last (see the module docstring): built from the
    # certificate, never from the clock, so that the bytes do not change between runs.
    last_update = ca.not_valid_before_utc
    next_update = ca.not_valid_after_utc
    try:
        key_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        # A CA without a Subject Key Identifier: the identifier of RFC 5280 4.2.1.2,
        # method (1), the SHA-1 of its public key.
        key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(key_id, critical=False)
        # RFC 5280 5.2.3 asks for a number that grows with each new CRL of the issuer. The
        # number of entries grows with each revocation as long as entries are only added
        # (what the README asks) and depends on nothing else, so it stays deterministic; a
        # renewed CA is a new issuer and starts its own sequence. nginx and OpenVPN load the
        # one CRL file they are given and do not compare numbers.
        .add_extension(x509.CRLNumber(len(serials)), critical=False)
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            # The true date is not known here, only that it is no later than this; verifiers
            # check that a serial is listed, not when it was revoked.
            .revocation_date(last_update)
            .build()
        )
    if isinstance(key, rsa.RSAPrivateKey):
        # PKCS#1 v1.5 signatures are deterministic (RFC 8017 section 8.2): same bytes in,
        # same signature out.
        crl = builder.sign(key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
    else:
        # ECDSA with a nonce derived from key and message (RFC 6979), deterministic too.
        crl = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return crl.public_bytes(serialization.Encoding.PEM).decode()
