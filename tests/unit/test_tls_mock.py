"""Tests for the pulumi-tls mock: real keys and certificates with the provider's semantics."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

import pulumi
import pulumi_tls as tls
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.output import Unknown
from pulumi.runtime import rpc

from orthgate.offline.tls_mock import (
    CERT_REQUEST,
    LOCALLY_SIGNED_CERT,
    PRIVATE_KEY,
    SELF_SIGNED_CERT,
    TLS_TYPES,
    TlsProviderWarning,
    new_tls_resource,
    unwrap_secrets,
)

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


class TlsMocks(pulumi.runtime.Mocks):
    """Sends pulumi-tls resources to the mock; everything else echoes its inputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ in TLS_TYPES:
            return new_tls_resource(args.typ, args.name, args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


def pem_header(kind: str) -> str:
    # Built, not written out: no key-shaped text is committed, even in a test.
    return "-----BEGIN " + kind + "-----\n"


@pytest.fixture(autouse=True)
def _fresh_mocks() -> None:
    # A new monitor per test, so resource names never collide between tests.
    pulumi.runtime.set_mocks(TlsMocks(), project="orthgate", stack="test", preview=False)


# --- helpers for direct calls -----------------------------------------------------------------


def _new(token: str, inputs: dict[str, Any], name: str = "r") -> tuple[str, dict[str, Any]]:
    resource_id, outputs = new_tls_resource(token, name, inputs)
    return resource_id, unwrap_secrets(outputs)


def _key(algorithm: str = "ECDSA", **extra: Any) -> dict[str, Any]:
    if algorithm == "ECDSA":
        extra.setdefault("ecdsaCurve", "P256")  # the P224 default has no OpenSSH forms
    return _new(PRIVATE_KEY, {"algorithm": algorithm, **extra})[1]


def _ca(key: dict[str, Any] | None = None, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    key = key or _key()
    inputs = {
        "privateKeyPem": key["privateKeyPem"],
        "validityPeriodHours": 87600,
        "allowedUses": ["cert_signing", "crl_signing"],
        "isCaCertificate": True,
        "setSubjectKeyId": True,
        "subject": {"commonName": "Test CA", "organization": "orthgate"},
        **extra,
    }
    return key, _new(SELF_SIGNED_CERT, inputs)[1]


def _csr(key: dict[str, Any], **extra: Any) -> str:
    inputs = {"privateKeyPem": key["privateKeyPem"], "subject": {"commonName": "leaf"}, **extra}
    return _new(CERT_REQUEST, inputs)[1]["certRequestPem"]


def _sign(
    ca_key: dict[str, Any], ca_cert: dict[str, Any], csr_pem: str, **extra: Any
) -> tuple[str, dict[str, Any]]:
    inputs = {
        "caPrivateKeyPem": ca_key["privateKeyPem"],
        "caCertPem": ca_cert["certPem"],
        "certRequestPem": csr_pem,
        "validityPeriodHours": 24,
        "allowedUses": ["digital_signature", "server_auth"],
        **extra,
    }
    return _new(LOCALLY_SIGNED_CERT, inputs)


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _ext(cert: x509.Certificate, kind: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(kind)


def _has_ext(cert: x509.Certificate, kind: type) -> bool:
    try:
        _ext(cert, kind)
    except x509.ExtensionNotFound:
        return False
    return True


def _public_der(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _private(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _sha1_ski(public: Any) -> bytes:
    """The provider's subject key id: SHA-1 over Go's marshalled public key."""
    if isinstance(public, rsa.RSAPublicKey):
        data = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        data = b"\x04\x20" + public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return hashlib.sha1(data, usedforsecurity=False).digest()


# --- through the real Pulumi runtime ----------------------------------------------------------


def _declare_pki() -> dict[str, pulumi.Output]:
    ca_key = tls.PrivateKey("ca-key", algorithm="RSA", rsa_bits=2048)
    ca = tls.SelfSignedCert(
        "ca",
        private_key_pem=ca_key.private_key_pem,
        validity_period_hours=87600,
        allowed_uses=["cert_signing", "crl_signing"],
        is_ca_certificate=True,
        set_subject_key_id=True,
        subject=tls.SelfSignedCertSubjectArgs(common_name="orthgate CA", organization="orthgate"),
    )
    server_key = tls.PrivateKey("server-key", algorithm="ECDSA", ecdsa_curve="P256")
    server_csr = tls.CertRequest(
        "server",
        private_key_pem=server_key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name="orthanc.internal"),
        dns_names=["orthanc.internal", "pacs.example.org"],
        ip_addresses=["10.0.1.5"],
    )
    server = tls.LocallySignedCert(
        "server",
        cert_request_pem=server_csr.cert_request_pem,
        ca_private_key_pem=ca_key.private_key_pem,
        ca_cert_pem=ca.cert_pem,
        validity_period_hours=720,
        early_renewal_hours=24,
        allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
    )
    client_key = tls.PrivateKey("client-key", algorithm="ED25519")
    client_csr = tls.CertRequest(
        "client",
        private_key_pem=client_key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name="modality-1"),
    )
    client = tls.LocallySignedCert(
        "client",
        cert_request_pem=client_csr.cert_request_pem,
        ca_private_key_pem=ca_key.private_key_pem,
        ca_cert_pem=ca.cert_pem,
        validity_period_hours=48,
        allowed_uses=["digital_signature", "client_auth"],
    )
    return {
        "ca_key": ca_key.private_key_pem,
        "ca": ca.cert_pem,
        "ca_ready": ca.ready_for_renewal,
        "server_key": server_key.private_key_pem,
        "server_key_alg": server_csr.key_algorithm,
        "server": server.cert_pem,
        "server_id": server.id,
        "server_start": server.validity_start_time,
        "server_end": server.validity_end_time,
        "server_ca_alg": server.ca_key_algorithm,
        "server_ready": server.ready_for_renewal,
        "client_key": client_key.private_key_pem,
        "client_openssh": client_key.public_key_openssh,
        "client": client.cert_pem,
    }


async def _check_pki(outputs: dict[str, pulumi.Output]) -> None:
    v = {name: await output.future() for name, output in outputs.items()}
    ca, server, client = _cert(v["ca"]), _cert(v["server"]), _cert(v["client"])

    # Self-signed CA: signature, CA flag, usages, key id.
    ca.verify_directly_issued_by(ca)
    basic = _ext(ca, x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length is None
    usage = _ext(ca, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert not _has_ext(ca, x509.ExtendedKeyUsage)
    ca_ski = _ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert ca_ski == _sha1_ski(ca.public_key())
    assert not _has_ext(ca, x509.AuthorityKeyIdentifier)  # set_authority_key_id not asked
    assert _public_der(_private(v["ca_key"]).public_key()) == _public_der(ca.public_key())
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == timedelta(hours=87600)
    assert v["ca_ready"] is False

    # Server leaf: chains to the CA, carries what the CSR asked for.
    server.verify_directly_issued_by(ca)
    assert server.issuer == ca.subject
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "orthanc.internal"
    )
    sans = _ext(server, x509.SubjectAlternativeName)
    assert not sans.critical
    assert sans.value.get_values_for_type(x509.DNSName) == ["orthanc.internal", "pacs.example.org"]
    assert [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)] == ["10.0.1.5"]
    assert list(_ext(server, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = _ext(server, x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    assert not usage.key_cert_sign
    basic = _ext(server, x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    assert _ext(server, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert not _has_ext(server, x509.SubjectKeyIdentifier)
    assert server.not_valid_after_utc - server.not_valid_before_utc == timedelta(hours=720)
    assert isinstance(server.signature_hash_algorithm, hashes.SHA256)
    server_key = _private(v["server_key"])
    assert isinstance(server_key, ec.EllipticCurvePrivateKey)
    assert _public_der(server_key.public_key()) == _public_der(server.public_key())
    assert (v["server_key_alg"], v["server_ca_alg"]) == ("ECDSA", "RSA")
    assert v["server_id"] == str(server.serial_number)
    assert RFC3339_UTC.fullmatch(v["server_start"])
    assert RFC3339_UTC.fullmatch(v["server_end"])
    start, end = datetime.fromisoformat(v["server_start"]), datetime.fromisoformat(v["server_end"])
    assert end - start == timedelta(hours=720)
    assert start.replace(microsecond=0) == server.not_valid_before_utc
    assert v["server_ready"] is False

    # Client leaf with an Ed25519 key.
    client.verify_directly_issued_by(ca)
    assert list(_ext(client, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not _has_ext(client, x509.SubjectAlternativeName)
    client_key = _private(v["client_key"])
    assert isinstance(client_key, ed25519.Ed25519PrivateKey)
    assert _public_der(client_key.public_key()) == _public_der(client.public_key())
    assert client.not_valid_after_utc - client.not_valid_before_utc == timedelta(hours=48)
    assert v["client_openssh"].startswith("ssh-ed25519 ")
    assert v["client_openssh"].endswith("\n")

    # The SDK wraps private keys fed to other resources; the mock adds the provider's
    # additional_secret_outputs, which the mock monitor would otherwise drop.
    for name in ("ca_key", "server_key", "client_key"):
        assert await outputs[name].is_secret(), name
    assert not await outputs["ca"].is_secret()


@pulumi.runtime.test
def test_pki_through_pulumi_runtime() -> Any:
    return pulumi.Output.from_input(_check_pki(_declare_pki()))


def test_ca_key_not_matching_ca_cert_is_refused_through_runtime() -> None:
    # The ValueError would also surface from @pulumi.runtime.test, but Pulumi then leaves
    # futures with unretrieved exceptions behind (logged whenever they are collected), so the
    # refusal is recorded at the mock boundary instead.
    refusals: list[tuple[str, str]] = []

    class Recording(TlsMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            try:
                return super().new_resource(args)
            except ValueError as exc:
                refusals.append((args.name, str(exc)))
                return "", {}

    pulumi.runtime.set_mocks(Recording(), project="orthgate", stack="test", preview=False)

    @pulumi.runtime.test
    def declare() -> Any:
        ca_key = tls.PrivateKey("ca-key", algorithm="ECDSA", ecdsa_curve="P256")
        other_key = tls.PrivateKey("other-key", algorithm="ECDSA", ecdsa_curve="P256")
        ca = tls.SelfSignedCert(
            "ca",
            private_key_pem=ca_key.private_key_pem,
            validity_period_hours=24,
            allowed_uses=["cert_signing"],
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name="CA"),
        )
        csr = tls.CertRequest("leaf", private_key_pem=other_key.private_key_pem)
        leaf = tls.LocallySignedCert(
            "leaf",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=other_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=24,
            allowed_uses=["server_auth"],
        )
        return leaf.cert_pem

    declare()
    assert len(refusals) == 1
    assert refusals[0][0] == "leaf"
    assert "doesn't match parent's PublicKey" in refusals[0][1]


def test_mock_receives_floats_and_secret_wrappers() -> None:
    seen: dict[str, dict] = {}

    class Recording(TlsMocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            seen[args.typ] = args.inputs
            return super().new_resource(args)

    pulumi.runtime.set_mocks(Recording(), project="orthgate", stack="test", preview=False)

    @pulumi.runtime.test
    def declare() -> Any:
        key = tls.PrivateKey("k", algorithm="RSA", rsa_bits=2048)
        cert = tls.SelfSignedCert(
            "c",
            private_key_pem=key.private_key_pem,
            validity_period_hours=5,
            allowed_uses=["server_auth"],
        )
        return cert.cert_pem

    declare()
    assert seen[PRIVATE_KEY]["rsaBits"] == 2048.0
    assert isinstance(seen[PRIVATE_KEY]["rsaBits"], float)
    assert rpc.is_rpc_secret(seen[SELF_SIGNED_CERT]["privateKeyPem"])
    assert isinstance(seen[SELF_SIGNED_CERT]["validityPeriodHours"], float)


# --- direct calls -----------------------------------------------------------------------------


def test_unknown_token_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported resource type"):
        new_tls_resource("tls:index/privateKey:Nope", "k", {"algorithm": "RSA"})
    assert "tls:index/getCertificate:getCertificate" not in TLS_TYPES


@pytest.mark.parametrize(
    ("algorithm", "curve", "header", "ssh_type"),
    [
        ("RSA", None, "RSA PRIVATE KEY", "ssh-rsa"),
        ("ECDSA", "P256", "EC PRIVATE KEY", "ecdsa-sha2-nistp256"),
        ("ECDSA", "P384", "EC PRIVATE KEY", "ecdsa-sha2-nistp384"),
        ("ECDSA", "P521", "EC PRIVATE KEY", "ecdsa-sha2-nistp521"),
        ("ED25519", None, "PRIVATE KEY", "ssh-ed25519"),
    ],
)
def test_private_key_formats(algorithm: str, curve: str | None, header: str, ssh_type: str) -> None:
    inputs: dict[str, Any] = {"algorithm": algorithm}
    if curve:
        inputs["ecdsaCurve"] = curve
    if algorithm == "RSA":
        inputs["rsaBits"] = 1024.0  # a float, as Pulumi sends numbers; small for speed
    key_id, out = _new(PRIVATE_KEY, inputs)

    assert out["privateKeyPem"].startswith(f"-----BEGIN {header}-----\n")
    assert out["privateKeyPemPkcs8"].startswith(pem_header("PRIVATE KEY"))
    assert out["privateKeyOpenssh"].startswith(pem_header("OPENSSH PRIVATE KEY"))
    # Go's pem.EncodeToMemory wraps at 64 columns, also for the OpenSSH key.
    assert max(len(line) for line in out["privateKeyOpenssh"].splitlines()) == 64
    private = _private(out["privateKeyPem"])
    spki = _public_der(private.public_key())
    assert _public_der(_private(out["privateKeyPemPkcs8"]).public_key()) == spki
    openssh_key = serialization.load_ssh_private_key(out["privateKeyOpenssh"].encode(), None)
    assert _public_der(openssh_key.public_key()) == spki
    assert _public_der(serialization.load_pem_public_key(out["publicKeyPem"].encode())) == spki
    if algorithm == "RSA":
        assert private.key_size == 1024
        assert out["rsaBits"] == 1024

    ssh_name, blob_b64 = out["publicKeyOpenssh"].split()
    assert ssh_name == ssh_type
    assert out["publicKeyOpenssh"].endswith("\n")
    blob = base64.b64decode(blob_b64)
    sha256 = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert out["publicKeyFingerprintSha256"] == f"SHA256:{sha256}"
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    assert out["publicKeyFingerprintMd5"].replace(":", "") == md5
    assert len(out["publicKeyFingerprintMd5"]) == 47
    # The provider's id is a SHA-1 of the DER public key, and stays unique per resource.
    assert re.fullmatch(r"[0-9a-f]{40}", key_id)
    assert key_id == hashlib.sha1(spki.strip(b" \t\n\v\f\r"), usedforsecurity=False).hexdigest()


def test_ecdsa_defaults_to_p224_without_openssh_forms() -> None:
    _, out = _new(PRIVATE_KEY, {"algorithm": "ECDSA"})
    key = _private(out["privateKeyPem"])
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp224r1"
    assert out["ecdsaCurve"] == "P224"
    for name in (
        "privateKeyOpenssh",
        "publicKeyOpenssh",
        "publicKeyFingerprintMd5",
        "publicKeyFingerprintSha256",
    ):
        assert out[name] == "", name


def test_keys_are_fresh_for_each_call() -> None:
    first, second = _key(), _key()
    assert first["privateKeyPem"] != second["privateKeyPem"]


def test_secret_inputs_are_unwrapped_and_secret_outputs_marked() -> None:
    _key_id, raw = new_tls_resource(PRIVATE_KEY, "k", {"algorithm": "ED25519"})
    assert rpc.is_rpc_secret(raw["privateKeyPem"])
    assert not rpc.is_rpc_secret(raw["publicKeyPem"])
    wrapped = rpc.wrap_rpc_secret(unwrap_secrets(raw)["privateKeyPem"])
    inputs = {
        "privateKeyPem": wrapped,
        "validityPeriodHours": 24.0,
        "allowedUses": ["server_auth"],
        "subject": rpc.wrap_rpc_secret({"commonName": "secret-cn"}),
    }
    _, outputs = new_tls_resource(SELF_SIGNED_CERT, "c", inputs)
    assert rpc.is_rpc_secret(outputs["privateKeyPem"])
    assert rpc.is_rpc_secret(outputs["subject"])
    assert outputs["validityPeriodHours"] == 24
    assert isinstance(outputs["validityPeriodHours"], int)
    cert = _cert(outputs["certPem"])
    assert cert.subject.rfc4514_string() == "CN=secret-cn"


def test_unknown_inputs_compute_nothing() -> None:
    inputs = {"privateKeyPem": Unknown(), "validityPeriodHours": 1.0, "allowedUses": []}
    assert new_tls_resource(SELF_SIGNED_CERT, "c", inputs) == ("", inputs)


@pytest.mark.parametrize(
    ("token", "inputs", "message"),
    [
        (PRIVATE_KEY, {"algorithm": "DSA"}, "algorithm must be one of"),
        (PRIVATE_KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P192"}, "ecdsaCurve"),
        (PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 2048.5}, "whole number"),
        (PRIVATE_KEY, {"algorithm": "RSA", "rsa_bits": 2048}, "unknown property"),
        (PRIVATE_KEY, {}, "missing required"),
        (SELF_SIGNED_CERT, {"validityPeriodHours": 1, "allowedUses": []}, "exactly one of"),
        (SELF_SIGNED_CERT, {"allowedUses": ["server_auth"]}, "missing required"),
        (CERT_REQUEST, {"privateKeyPem": "not a pem"}, "failed to decode PEM"),
        (
            CERT_REQUEST,
            {"privateKeyPemWo": pem_header("PRIVATE KEY") + "AA==\n-----END PRIVATE KEY-----\n"},
            "must be set together",
        ),
    ],
)
def test_invalid_inputs_are_refused(token: str, inputs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_tls_resource(token, "bad", inputs)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"allowedUses": ["server_auth", "tls_server"]}, "unsupported allowedUses"),
        ({"validityPeriodHours": -1}, "at least 0"),
        ({"earlyRenewalHours": -2}, "at least 0"),
        ({"maxPathLength": -2}, "at least -1"),
        ({"isCaCertificate": "yes"}, "must be a boolean"),
        ({"ipAddresses": ["10.0.0.300"]}, "Invalid IP address"),
        ({"ipAddresses": ["fe80::1%eth0"]}, "Invalid IP address"),
        ({"ipAddresses": [""]}, "must not be empty"),
        ({"isCaCertificate": False, "maxPathLength": 1}, "only CAs are allowed"),
        ({"subject": {}}, "Invalid Certificate Subject"),
        ({"subject": {"commonName": "x", "cn": "y"}}, "unknown subject property"),
    ],
)
def test_invalid_certificate_inputs_are_refused(extra: dict, message: str) -> None:
    key = _key()
    inputs = {
        "privateKeyPem": key["privateKeyPem"],
        "validityPeriodHours": 24,
        "allowedUses": ["cert_signing"],
        "isCaCertificate": True,
        "subject": {"commonName": "CA"},
        **extra,
    }
    with pytest.raises(ValueError, match=message):
        new_tls_resource(SELF_SIGNED_CERT, "bad", inputs)


def test_ca_key_not_matching_ca_cert_is_refused() -> None:
    _, ca = _ca()
    other = _key()
    with pytest.raises(ValueError, match="doesn't match parent's PublicKey"):
        _sign(other, ca, _csr(other))


def test_forged_csr_is_refused() -> None:
    ca_key, ca = _ca()
    der = bytearray(
        x509.load_pem_x509_csr(_csr(_key("ED25519")).encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-1] ^= 0x01  # corrupt the Ed25519 signature, the last bytes of the CSR
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ValueError, match="CSR signature"):
        _sign(ca_key, ca, forged)


def test_ca_cert_pem_must_be_a_certificate() -> None:
    ca_key, _ = _ca()
    leaf_key = _key()
    with pytest.raises(ValueError, match="expected 'CERTIFICATE'"):
        _sign(ca_key, {"certPem": _csr(leaf_key)}, _csr(leaf_key))


def test_non_ca_issuer_warns_but_issues() -> None:
    key = _key()
    plain = _new(
        SELF_SIGNED_CERT,
        {
            "privateKeyPem": key["privateKeyPem"],
            "validityPeriodHours": 24,
            "allowedUses": ["server_auth"],
            "subject": {"commonName": "not a CA"},
        },
    )[1]
    with pytest.warns(TlsProviderWarning, match="Certificate Authority"):
        _, leaf = _sign(key, plain, _csr(_key()))
    _cert(leaf["certPem"]).verify_directly_issued_by(_cert(plain["certPem"]))


@pytest.mark.parametrize(
    ("hours", "early", "ready"),
    [(24, 0, False), (24, 23, False), (24, 24, True), (24, 100, True), (0, 0, True)],
)
def test_ready_for_renewal(hours: int, early: int, ready: bool) -> None:
    ca_key, ca = _ca()
    _, leaf = _sign(
        ca_key, ca, _csr(_key()), validityPeriodHours=hours, earlyRenewalHours=float(early)
    )
    assert leaf["readyForRenewal"] is ready
    assert leaf["earlyRenewalHours"] == early
    cert = _cert(leaf["certPem"])
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=hours)
    start = datetime.fromisoformat(leaf["validityStartTime"])
    end = datetime.fromisoformat(leaf["validityEndTime"])
    assert end - start == timedelta(hours=hours)
    assert abs(start - datetime.now(start.tzinfo)) < timedelta(minutes=1)


@pytest.mark.parametrize(("max_path", "expected"), [(None, None), (-1, None), (0, None), (2, 2)])
def test_max_path_length(max_path: int | None, expected: int | None) -> None:
    # The provider never sets Go's MaxPathLenZero, so 0 means "no constraint", like -1.
    extra = {} if max_path is None else {"maxPathLength": float(max_path)}
    _, ca = _ca(**extra)
    assert _ext(_cert(ca["certPem"]), x509.BasicConstraints).value.path_length == expected


def test_self_signed_authority_key_id() -> None:
    _, ca = _ca(setAuthorityKeyId=True)
    cert = _cert(ca["certPem"])
    ski = _ext(cert, x509.SubjectKeyIdentifier).value.digest
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski

    key = _key()
    inputs = {
        "privateKeyPem": key["privateKeyPem"],
        "validityPeriodHours": 1,
        "allowedUses": [],
        "setAuthorityKeyId": True,
    }
    with pytest.raises(ValueError, match="Authority Key ID"):
        new_tls_resource(SELF_SIGNED_CERT, "no-ski", inputs)


def test_ca_always_gets_subject_key_id() -> None:
    _, ca = _ca(setSubjectKeyId=False)
    cert = _cert(ca["certPem"])
    assert _ext(cert, x509.SubjectKeyIdentifier).value.digest == _sha1_ski(cert.public_key())


def test_intermediate_ca_chain_and_key_ids() -> None:
    root_key, root = _ca(_key("ED25519"))
    inter_key = _key("ECDSA", ecdsaCurve="P384")
    _, inter = _sign(
        root_key,
        root,
        _csr(inter_key, subject={"commonName": "Intermediate"}),
        allowedUses=["cert_signing"],
        isCaCertificate=True,
        maxPathLength=0,
    )
    leaf_key = _key()
    _, leaf = _sign(inter_key, inter, _csr(leaf_key), setSubjectKeyId=True)
    root_c, inter_c, leaf_c = (
        _cert(root["certPem"]),
        _cert(inter["certPem"]),
        _cert(leaf["certPem"]),
    )

    inter_c.verify_directly_issued_by(root_c)
    leaf_c.verify_directly_issued_by(inter_c)
    inter_ski = _ext(inter_c, x509.SubjectKeyIdentifier).value.digest
    root_ski = _ext(root_c, x509.SubjectKeyIdentifier).value.digest
    assert _ext(inter_c, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski
    assert _ext(leaf_c, x509.AuthorityKeyIdentifier).value.key_identifier == inter_ski
    assert _ext(leaf_c, x509.SubjectKeyIdentifier).value.digest == _sha1_ski(leaf_c.public_key())
    assert _ext(inter_c, x509.BasicConstraints).value.ca
    # Go picks the hash from the signer: none for Ed25519, SHA-384 for a P-384 key.
    assert inter_c.signature_hash_algorithm is None
    assert isinstance(leaf_c.signature_hash_algorithm, hashes.SHA384)


def test_rsa_ca_signs_with_pkcs1v15_sha256() -> None:
    ca_key, ca = _ca(_key("RSA", rsaBits=1024))
    _, leaf = _sign(ca_key, ca, _csr(_key()))
    cert = _cert(leaf["certPem"])
    public = _cert(ca["certPem"]).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())


def test_all_allowed_uses_map_to_extensions() -> None:
    key_usages = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "cert_signing",
        "crl_signing",
        "encipher_only",
        "decipher_only",
    ]
    ext_usages = {
        "any_extended": "2.5.29.37.0",
        "server_auth": "1.3.6.1.5.5.7.3.1",
        "client_auth": "1.3.6.1.5.5.7.3.2",
        "code_signing": "1.3.6.1.5.5.7.3.3",
        "email_protection": "1.3.6.1.5.5.7.3.4",
        "ipsec_end_system": "1.3.6.1.5.5.7.3.5",
        "ipsec_tunnel": "1.3.6.1.5.5.7.3.6",
        "ipsec_user": "1.3.6.1.5.5.7.3.7",
        "timestamping": "1.3.6.1.5.5.7.3.8",
        "ocsp_signing": "1.3.6.1.5.5.7.3.9",
        "microsoft_server_gated_crypto": "1.3.6.1.4.1.311.10.3.3",
        "netscape_server_gated_crypto": "2.16.840.1.113730.4.1",
        "microsoft_commercial_code_signing": "1.3.6.1.4.1.311.2.1.22",
        "microsoft_kernel_code_signing": "1.3.6.1.4.1.311.61.1.1",
    }
    ca_key, ca = _ca()
    _, leaf = _sign(ca_key, ca, _csr(_key()), allowedUses=[*ext_usages, *key_usages])
    cert = _cert(leaf["certPem"])
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert all(
        getattr(usage.value, attr)
        for attr in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        )
    )
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert [oid.dotted_string for oid in eku.value] == list(ext_usages.values())


def test_encipher_only_without_key_agreement_is_encoded_like_go() -> None:
    # cryptography's KeyUsage refuses this combination; Go just encodes the bit.
    ca_key, ca = _ca()
    _, leaf = _sign(ca_key, ca, _csr(_key()), allowedUses=["encipher_only"])
    der = _cert(leaf["certPem"]).public_bytes(serialization.Encoding.DER)
    # Extension{keyUsage, critical, BIT STRING with only bit 7 set}
    assert bytes.fromhex("0603551d0f0101ff0404030200 01".replace(" ", "")) in der


def test_subject_is_encoded_like_go() -> None:
    key = _key()
    subject = {
        "commonName": "A & B *",
        "organization": "orthgate",
        "organizationalUnit": "Radiologie Zürich",
        "streetAddresses": ["1 Main St", "Floor 2"],
        "locality": "Zurich",
        "province": "ZH",
        "country": "CH",
        "postalCode": "8000",
        "serialNumber": "42",
        "emailAddress": "pki@example.org",
    }
    _, ca = _ca(key, subject=subject)
    name = _cert(ca["certPem"]).subject
    # Go's ToRDNSequence order, one multi-valued RDN for the street addresses, email last.
    oids = [[attr.oid for attr in rdn] for rdn in name.rdns]
    assert oids[:5] == [
        [NameOID.COUNTRY_NAME],
        [NameOID.STATE_OR_PROVINCE_NAME],
        [NameOID.LOCALITY_NAME],
        [NameOID.STREET_ADDRESS, NameOID.STREET_ADDRESS],
        [NameOID.POSTAL_CODE],
    ]
    assert oids[5:] == [
        [NameOID.ORGANIZATION_NAME],
        [NameOID.ORGANIZATIONAL_UNIT_NAME],
        [NameOID.COMMON_NAME],
        [NameOID.SERIAL_NUMBER],
        [NameOID.EMAIL_ADDRESS],
    ]
    types = {attr.oid: attr._type for attr in name}
    assert types[NameOID.ORGANIZATION_NAME] == _ASN1Type.PrintableString
    assert types[NameOID.COMMON_NAME] == _ASN1Type.UTF8String  # '&' and '*' are not printable
    assert types[NameOID.ORGANIZATIONAL_UNIT_NAME] == _ASN1Type.UTF8String
    assert types[NameOID.EMAIL_ADDRESS] == _ASN1Type.IA5String

    # A locally signed cert re-encodes the CSR subject the same way, without the email.
    _, leaf = _sign(key, ca, _csr(_key(), subject=subject))
    leaf_name = _cert(leaf["certPem"]).subject
    assert list(leaf_name.rdns) == list(name.rdns)[:-1]


def test_self_signed_sans_without_subject_are_critical() -> None:
    key = _key()
    inputs = {
        "privateKeyPem": key["privateKeyPem"],
        "validityPeriodHours": 1,
        "allowedUses": ["server_auth"],
        "dnsNames": ["a.example"],
        "ipAddresses": ["::ffff:192.0.2.1", "2001:db8::1"],
        "uris": ["spiffe://orthgate/orthanc"],
    }
    _, out = _new(SELF_SIGNED_CERT, inputs)
    cert = _cert(out["certPem"])
    sans = _ext(cert, x509.SubjectAlternativeName)
    assert sans.critical
    assert len(cert.subject) == 0
    # Go writes IPv4-mapped addresses as 4 bytes (net.IP.To4).
    assert [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)] == [
        "192.0.2.1",
        "2001:db8::1",
    ]
    assert sans.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://orthgate/orthanc"
    ]
    assert out["keyAlgorithm"] == "ECDSA"
    assert out["setAuthorityKeyId"] is False
    cert.verify_directly_issued_by(cert)


def test_cert_request_outputs() -> None:
    key = _key("RSA", rsaBits=1024)
    csr_id, out = _new(
        CERT_REQUEST,
        {
            "privateKeyPem": key["privateKeyPem"],
            "subject": {"commonName": "dicom.internal"},
            "dnsNames": ["dicom.internal"],
            "ipAddresses": ["10.0.0.7"],
        },
    )
    csr = x509.load_pem_x509_csr(out["certRequestPem"].encode())
    assert csr.is_signature_valid
    assert out["keyAlgorithm"] == "RSA"
    assert csr.subject.rfc4514_string() == "CN=dicom.internal"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["dicom.internal"]
    assert _public_der(csr.public_key()) == _public_der(_private(key["privateKeyPem"]).public_key())
    der = csr.public_bytes(serialization.Encoding.DER)
    assert csr_id == hashlib.sha1(der.strip(b" \t\n\v\f\r"), usedforsecurity=False).hexdigest()


def test_write_only_key_is_used_but_not_returned() -> None:
    key = _key()
    inputs = {
        "privateKeyPemWo": key["privateKeyPem"],
        "privateKeyPemWoVersion": 1.0,
        "subject": {"commonName": "wo"},
    }
    _, out = _new(CERT_REQUEST, inputs)
    assert "privateKeyPemWo" not in out
    assert out["privateKeyPemWoVersion"] == 1
    csr = x509.load_pem_x509_csr(out["certRequestPem"].encode())
    assert _public_der(csr.public_key()) == _public_der(_private(key["privateKeyPem"]).public_key())


def test_a_key_used_again_signs_the_same_way_and_a_bad_one_is_refused_every_time() -> None:
    # Parsed keys are cached (big stacks sign hundreds of certificates with one CA key):
    # the cache must change nothing that the provider would do.
    _, key = new_tls_resource(PRIVATE_KEY, "k", {"algorithm": "RSA", "rsaBits": 2048})
    pem = unwrap_secrets(key)["privateKeyPem"]
    inputs = {"privateKeyPem": pem, "validityPeriodHours": 1, "allowedUses": []}
    first = _cert(new_tls_resource(SELF_SIGNED_CERT, "a", inputs)[1]["certPem"])
    second = _cert(new_tls_resource(SELF_SIGNED_CERT, "b", inputs)[1]["certPem"])
    assert first.public_key() == second.public_key()
    assert first.serial_number != second.serial_number
    for _ in range(2):
        with pytest.raises(ValueError, match="failed to decode PEM"):
            new_tls_resource(CERT_REQUEST, "bad", {"privateKeyPem": "not a pem"})
