"""components/crl.py: revocation lists that real OpenSSL accepts, byte for byte repeatable."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from orthgate.components.config.serials import format_serial
from orthgate.components.crl import build_crl, certificate_serial
from tests.integration.certs import CA_KEY_USAGE

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orthgate"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(key=None, *, subject_key_id: bool = True) -> Ca:
    """A CA like CertificateAuthority's: cert and CRL signing, a Subject Key Identifier."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            CA_KEY_USAGE,
            critical=True,
        )
    )
    if subject_key_id:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    return Ca(builder.sign(key, hashes.SHA256()), key)


def make_leaf(ca: Ca, serial: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"leaf {serial:X}"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def ca() -> Ca:
    return make_ca()


def load(pem: str) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(pem.encode())


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


# --- serials ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "text"),
    [
        (0x0FA9, "0FA9"),
        (0xABC, "0ABC"),  # an even number of digits, as openssl and nginx print it
        (0xFF00, "FF00"),  # high bit set: no sign byte in the text
        (1, "01"),
    ],
)
def test_certificate_serial_is_the_canonical_hex_openssl_prints(ca, serial, text):
    pem = make_leaf(ca, serial)
    assert certificate_serial(pem) == text == format_serial(serial)
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True, text=True
    ).stdout
    assert printed.strip() == f"serial={text}"


# --- the CRL ------------------------------------------------------------------------------------


def test_the_crl_lists_the_serials_once_in_order_signed_by_the_ca(ca):
    pem = build_crl(ca.cert_pem, ca.key_pem, ["0B", "0a", "0B", "01:00", "0x0C"])
    crl = load(pem)
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert crl.issuer.public_bytes() == ca.cert.subject.public_bytes()
    assert [r.serial_number for r in crl] == [0x0A, 0x0B, 0x0C, 0x0100]
    assert {r.revocation_date_utc for r in crl} == {ca.cert.not_valid_before_utc}
    # Valid exactly as long as the CA: nobody issues a next one.
    assert crl.last_update_utc == ca.cert.not_valid_before_utc
    assert crl.next_update_utc == ca.cert.not_valid_after_utc
    key_id = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert key_id.key_identifier == ski.digest
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 4


def test_the_same_inputs_give_the_same_bytes(ca):
    first = build_crl(ca.cert_pem, ca.key_pem, ["0A", "0B"])
    # The same set of serials, written otherwise and in another order.
    assert build_crl(ca.cert_pem, ca.key_pem, ["0b", "0x0A", "0A"]) == first
    assert build_crl(ca.cert_pem, ca.key_pem, []) == build_crl(ca.cert_pem, ca.key_pem, ())
    assert build_crl(ca.cert_pem, ca.key_pem, ["0C"]) != first


def test_rsa_pkcs1v15_signatures_are_deterministic(ca):
    """What makes the bytes repeatable: the same data signed twice gives one signature."""
    a = load(build_crl(ca.cert_pem, ca.key_pem, ["0A"]))
    b = load(build_crl(ca.cert_pem, ca.key_pem, ["0A"]))
    assert a.signature == b.signature
    assert a.tbs_certlist_bytes == b.tbs_certlist_bytes


def test_an_ec_ca_signs_deterministically_too():
    ec_ca = make_ca(ec.generate_private_key(ec.SECP256R1()))
    first = build_crl(ec_ca.cert_pem, ec_ca.key_pem, ["0A"])
    assert build_crl(ec_ca.cert_pem, ec_ca.key_pem, ["0A"]) == first
    assert load(first).is_signature_valid(ec_ca.cert.public_key())


def test_an_empty_list_is_a_valid_crl_without_entries(ca, tmp_path):
    pem = build_crl(ca.cert_pem, ca.key_pem, [])
    crl = load(pem)
    assert len(crl) == 0
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 0
    assert _crl_verifies(ca, pem, tmp_path)


def _crl_verifies(ca: Ca, crl_pem: str, where: Path) -> bool:
    (where / "ca.pem").write_text(ca.cert_pem)
    (where / "crl.pem").write_text(crl_pem)
    result = openssl(
        "crl", "-noout", "-verify", "-CAfile", str(where / "ca.pem"), "-in", str(where / "crl.pem")
    )
    return result.returncode == 0 and "verify OK" in result.stdout + result.stderr


def test_openssl_verifies_the_crl_and_refuses_exactly_the_revoked_leaf(ca, tmp_path):
    revoked, kept = make_leaf(ca, 0x7A11), make_leaf(ca, 0x7A12)
    crl_pem = build_crl(ca.cert_pem, ca.key_pem, [certificate_serial(revoked), "0FA9"])
    assert _crl_verifies(ca, crl_pem, tmp_path)
    text = openssl("crl", "-noout", "-text", "-in", str(tmp_path / "crl.pem")).stdout
    assert "Version 2 (0x1)" in text
    assert "Serial Number: 7A11" in text
    (tmp_path / "revoked.pem").write_text(revoked)
    (tmp_path / "kept.pem").write_text(kept)

    def verify(leaf: str) -> subprocess.CompletedProcess:
        return openssl(
            "verify",
            "-crl_check",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-CRLfile",
            str(tmp_path / "crl.pem"),
            str(tmp_path / leaf),
        )

    refused = verify("revoked.pem")
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    accepted = verify("kept.pem")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.strip().endswith(": OK")


def test_a_ca_without_a_subject_key_id_gets_the_key_id_of_its_public_key(tmp_path):
    bare = make_ca(subject_key_id=False)
    pem = build_crl(bare.cert_pem, bare.key_pem, ["0A"])
    key_id = load(pem).extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    expected = x509.SubjectKeyIdentifier.from_public_key(bare.key.public_key()).digest
    assert key_id.key_identifier == expected
    assert _crl_verifies(bare, pem, tmp_path)


def test_a_key_of_another_ca_is_refused(ca):
    other = make_ca(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="does not belong"):
        build_crl(ca.cert_pem, other.key_pem, [])


@pytest.mark.parametrize("serial", ["", "0", "XYZ", "00", "01" * 21])
def test_a_serial_that_is_none_is_refused(ca, serial):
    with pytest.raises(ValueError, match="serial"):
        build_crl(ca.cert_pem, ca.key_pem, [serial])
