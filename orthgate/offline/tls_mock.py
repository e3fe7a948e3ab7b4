"""In-process stand-in for the pulumi-tls provider, for use from ``pulumi.runtime.Mocks``.

It issues real keys, CSRs and certificates with ``cryptography`` so that later tests can feed the
PEMs the program declared to real nginx/OpenVPN/Orthanc/dcmtk. The behaviour copies
terraform-provider-tls (which pulumi-tls 5.x bridges) and the Go ``crypto/x509`` calls it makes,
including their quirks, because a mock that is nicer than the provider would hide deploy bugs.

Inputs and outputs use the wire (camelCase) names. Inputs may hold floats for integers and
Pulumi's secret wrappers (``{SIG_KEY: SECRET_SIG, "value": ...}``); both are accepted. Outputs keep
the secretness of the inputs and wrap the properties that the SDK lists in
``additional_secret_outputs`` (the mock monitor does not apply that list itself), so call
:func:`unwrap_secrets` on the outputs when using :func:`new_tls_resource` directly.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import re
import secrets
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier
from pulumi.output import Unknown
from pulumi.runtime import rpc

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"

TLS_TYPES: frozenset[str] = frozenset(
    {PRIVATE_KEY, SELF_SIGNED_CERT, CERT_REQUEST, LOCALLY_SIGNED_CERT}
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class TlsProviderWarning(UserWarning):
    """A diagnostic the real provider reports as a warning (the operation still succeeds)."""


# --- input schemas (wire names) ---------------------------------------------------------------

_SUBJECT_FIELDS = {
    "commonName": "str",
    "organization": "str",
    "organizationalUnit": "str",
    "streetAddresses": "list",
    "locality": "str",
    "province": "str",
    "country": "str",
    "postalCode": "str",
    "serialNumber": "str",
    "emailAddress": "str",
}
_OWN_KEY = {"privateKeyPem": "str", "privateKeyPemWo": "str", "privateKeyPemWoVersion": "int"}
_CA_KEY = {"caPrivateKeyPem": "str", "caPrivateKeyPemWo": "str", "caPrivateKeyPemWoVersion": "int"}
_NAMES = {"subject": "subject", "dnsNames": "list", "ipAddresses": "list", "uris": "list"}
_CERT = {
    "allowedUses": "list",
    "validityPeriodHours": "int",
    "earlyRenewalHours": "int",
    "isCaCertificate": "bool",
    "maxPathLength": "int",
    "setSubjectKeyId": "bool",
}
_SCHEMAS: dict[str, dict[str, str]] = {
    PRIVATE_KEY: {"algorithm": "str", "ecdsaCurve": "str", "rsaBits": "int"},
    CERT_REQUEST: {**_OWN_KEY, **_NAMES},
    SELF_SIGNED_CERT: {**_OWN_KEY, **_NAMES, **_CERT, "setAuthorityKeyId": "bool"},
    LOCALLY_SIGNED_CERT: {**_CA_KEY, **_CERT, "caCertPem": "str", "certRequestPem": "str"},
}
_REQUIRED = {
    PRIVATE_KEY: ("algorithm",),
    CERT_REQUEST: (),
    SELF_SIGNED_CERT: ("allowedUses", "validityPeriodHours"),
    LOCALLY_SIGNED_CERT: ("allowedUses", "validityPeriodHours", "caCertPem", "certRequestPem"),
}
# Optional+computed attributes with static defaults: the provider stores them in the state.
_CERT_DEFAULTS = {"earlyRenewalHours": 0, "isCaCertificate": False, "setSubjectKeyId": False}
_DEFAULTS: dict[str, dict[str, Any]] = {
    PRIVATE_KEY: {"ecdsaCurve": "P224", "rsaBits": 2048},
    CERT_REQUEST: {},
    SELF_SIGNED_CERT: {**_CERT_DEFAULTS, "setAuthorityKeyId": False},
    LOCALLY_SIGNED_CERT: dict(_CERT_DEFAULTS),
}
# The SDK passes these in additional_secret_outputs.
_SECRET_OUTPUTS = {
    PRIVATE_KEY: ("privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"),
    CERT_REQUEST: ("privateKeyPem",),
    SELF_SIGNED_CERT: ("privateKeyPem",),
    LOCALLY_SIGNED_CERT: ("caPrivateKeyPem",),
}
# Write-only attributes are never stored in the state, hence never returned.
_WRITE_ONLY = frozenset({"privateKeyPemWo", "caPrivateKeyPemWo"})
_WO_PEM_RE = re.compile(r"-----BEGIN [A-Za-z ]+-----\n[\s\S]+\n-----END [A-Za-z ]+-----\n?")

_ALGORITHMS = ("RSA", "ECDSA", "ED25519")
_CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}
_SUPPORTED_CURVE_NAMES = frozenset(curve.name for curve in _CURVES.values())

# Bit positions follow RFC 5280 / Go's x509.KeyUsage (digitalSignature is bit 0).
_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "cert_signing",
    "crl_signing",
    "encipher_only",
    "decipher_only",
)
_EXT_KEY_USAGES = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}
ALLOWED_USES: frozenset[str] = frozenset(_KEY_USAGES) | frozenset(_EXT_KEY_USAGES)

# Go's pkix.Name.ToRDNSequence order; all values of one field share one (multi-valued) RDN.
_SUBJECT_OIDS = (
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("streetAddresses", NameOID.STREET_ADDRESS),
    ("postalCode", NameOID.POSTAL_CODE),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("commonName", NameOID.COMMON_NAME),
    ("serialNumber", NameOID.SERIAL_NUMBER),
)
_SINGLE_VALUED = frozenset({NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER})
# Go's encoding/asn1 picks PrintableString only for this set ('*' and '&' excluded).
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
# Go's unicode.IsSpace, used by strings.TrimSpace when the provider hashes ids.
_GO_SPACES = tuple(
    ch.encode()
    for ch in "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# --- public helpers ---------------------------------------------------------------------------


def unwrap_secrets(value: Any) -> Any:
    """Return ``value`` with Pulumi's secret wrappers removed at every depth."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap_secrets(item) for item in value]
    return value


def new_tls_resource(type_token: str, name: str, inputs: dict) -> tuple[str, dict]:
    """Return (id, outputs) for a pulumi-tls resource.

    outputs = inputs merged with computed outputs (and the provider's defaults).
    Raises ValueError for an unknown token or invalid inputs (like the provider would fail).
    While any input is still unknown (previews) nothing is computed and the id is empty, as the
    engine would leave computed outputs unknown.
    """
    if type_token not in TLS_TYPES:
        raise ValueError(f"tls mock: unsupported resource type {type_token!r}")
    if _contains_unknown(inputs):
        return "", dict(inputs)
    args = _check_inputs(type_token, name, inputs)
    resource_id, computed = _HANDLERS[type_token](name, args)

    secret_keys = {key for key, value in inputs.items() if rpc.is_rpc_secret(value)}
    secret_keys.update(_SECRET_OUTPUTS[type_token])
    outputs: dict[str, Any] = {}
    for key, value in {**args, **computed}.items():
        if key in _WRITE_ONLY:
            continue
        outputs[key] = rpc.wrap_rpc_secret(value) if key in secret_keys else value
    return resource_id, outputs


# --- input checking ---------------------------------------------------------------------------


def _fail(name: str, message: str) -> ValueError:
    return ValueError(f"tls mock resource {name!r}: {message}")


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_unknown(item) for item in value)
    return False


def _as_int(name: str, key: str, value: Any) -> int:
    # Protobuf Struct carries every number as a double, so 24 arrives as 24.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, f"{key} must be a number, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(name, f"{key} must be a whole number, got {value!r}")
    return int(value)


def _as_str_list(name: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(name, f"{key} must be a list of strings, got {value!r}")
    return list(value)


def _check_subject(name: str, value: Any) -> dict[str, Any]:
    # Terraform models subject as a list block of at most one element; Pulumi flattens it.
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            raise _fail(name, "subject takes at most one element")
        value = value[0] if value else {}
    if not isinstance(value, dict):
        raise _fail(name, f"subject must be an object, got {value!r}")
    subject: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        kind = _SUBJECT_FIELDS.get(key)
        if kind is None:
            raise _fail(name, f"unknown subject property {key!r}")
        if kind == "list":
            subject[key] = _as_str_list(name, f"subject.{key}", item)
        elif isinstance(item, str):
            subject[key] = item
        else:
            raise _fail(name, f"subject.{key} must be a string, got {item!r}")
    return subject


def _check_inputs(type_token: str, name: str, inputs: dict) -> dict[str, Any]:
    schema = _SCHEMAS[type_token]
    args: dict[str, Any] = dict(_DEFAULTS[type_token])
    for key, raw in unwrap_secrets(dict(inputs)).items():
        if raw is None or key.startswith("__"):
            continue
        kind = schema.get(key)
        if kind is None:
            raise _fail(name, f"unknown property {key!r} for {type_token}")
        if kind == "int":
            args[key] = _as_int(name, key, raw)
        elif kind == "bool":
            if not isinstance(raw, bool):
                raise _fail(name, f"{key} must be a boolean, got {raw!r}")
            args[key] = raw
        elif kind == "list":
            args[key] = _as_str_list(name, key, raw)
        elif kind == "subject":
            args[key] = _check_subject(name, raw)
        elif isinstance(raw, str):
            args[key] = raw
        else:
            raise _fail(name, f"{key} must be a string, got {raw!r}")
    missing = [key for key in _REQUIRED[type_token] if key not in args]
    if missing:
        raise _fail(name, f"missing required properties {missing}")
    _check_values(type_token, name, args)
    return args


def _check_values(type_token: str, name: str, args: dict[str, Any]) -> None:
    """The provider's schema validators (terraform-plugin-framework runs them before Create)."""
    if type_token == PRIVATE_KEY:
        if args["algorithm"] not in _ALGORITHMS:
            raise _fail(name, f"algorithm must be one of {_ALGORITHMS}, got {args['algorithm']!r}")
        if args["ecdsaCurve"] not in _CURVES:
            raise _fail(name, f"ecdsaCurve must be one of {tuple(_CURVES)}")
        return
    for key in ("ipAddresses", "uris"):
        if any(item == "" for item in args.get(key, ())):
            raise _fail(name, f"{key} entries must not be empty")
    if "allowedUses" in args:
        unknown = [use for use in args["allowedUses"] if use not in ALLOWED_USES]
        if unknown:
            raise _fail(name, f"unsupported allowedUses {unknown}")
        for key, minimum in (("validityPeriodHours", 0), ("earlyRenewalHours", 0)):
            if args[key] < minimum:
                raise _fail(name, f"{key} must be at least {minimum}")
        if args.get("maxPathLength", -1) < -1:
            raise _fail(name, "maxPathLength must be at least -1")
    prefix = "ca" if type_token == LOCALLY_SIGNED_CERT else ""
    pem_key = f"{prefix}PrivateKeyPem" if prefix else "privateKeyPem"
    wo_key, version_key = f"{pem_key}Wo", f"{pem_key}WoVersion"
    if (pem_key in args) == (wo_key in args):
        raise _fail(name, f"exactly one of {pem_key} or {wo_key} must be set")
    if (wo_key in args) != (version_key in args):
        raise _fail(name, f"{wo_key} and {version_key} must be set together")
    if wo_key in args and not _WO_PEM_RE.fullmatch(args[wo_key]):
        raise _fail(name, f"{wo_key} must be a valid PEM string")


# --- PEM and key helpers ----------------------------------------------------------------------


def _pem_decode(text: str, what: str) -> tuple[str, bytes]:
    """First PEM block of ``text`` like Go's pem.Decode: (type, DER)."""
    match = re.search(
        r"^-----BEGIN ([^\n-]*)-----[ \t]*\r?\n(.*?)^-----END \1-----", text, re.S | re.M
    )
    if match is None:
        raise ValueError(f"failed to decode PEM block of {what}")
    lines = match.group(2).splitlines()
    if lines and ":" in lines[0]:
        # RFC 1421 headers (e.g. an encrypted key): Go keeps only the body after the blank line.
        lines = lines[lines.index("") + 1 :] if "" in lines else []
    try:
        der = base64.b64decode("".join(line.strip() for line in lines), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64 in PEM block of {what}") from exc
    return match.group(1), der


def _pem(block_type: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    body_lines = "".join(f"{line}\n" for line in lines)
    return f"-----BEGIN {block_type}-----\n{body_lines}-----END {block_type}-----\n"


def _algorithm_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ECDSA"
    return "ED25519"


def _check_key_type(key: object, what: str) -> None:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name not in _SUPPORTED_CURVE_NAMES:
            raise ValueError(f"{what}: x509: unknown elliptic curve {key.curve.name}")
    elif not isinstance(
        key,
        (rsa.RSAPrivateKey, rsa.RSAPublicKey, ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
    ):
        raise ValueError(f"{what}: unsupported key type {type(key).__name__}")


# Parsing an RSA key checks it (primes, CRT values): milliseconds for each of the hundreds
# of certificates one CA key signs in a big stack, and for each request signed with a key
# the mock has just generated. The same text always gives the same key (the block type and
# key checks below depend on the text alone; ``what`` only names it in refusals), and
# cryptography's key objects are immutable, so parsed keys are kept by their text, and the
# keys the mock generates are kept by the PEM it returns for them (parsing that PEM gives
# that very key). Refusals are never kept: each is raised afresh with its own ``what``.
_KEY_CACHE_SIZE = 4096
_keys_by_pem: OrderedDict[str, PrivateKey] = OrderedDict()
_keys_lock = threading.Lock()  # the mock monitor calls the mock from several threads


def _remember_key(text: str, key: PrivateKey) -> None:
    with _keys_lock:
        _keys_by_pem[text] = key
        _keys_by_pem.move_to_end(text)
        while len(_keys_by_pem) > _KEY_CACHE_SIZE:
            _keys_by_pem.popitem(last=False)


def _load_private_key(text: str, what: str) -> PrivateKey:
    """Like the provider's parsePrivateKeyPEM: PKCS#1, SEC1 or PKCS#8, first block, unencrypted."""
    with _keys_lock:
        key = _keys_by_pem.get(text)
        if key is not None:
            _keys_by_pem.move_to_end(text)
            return key
    key = _parse_private_key(text, what)
    _remember_key(text, key)
    return key


def _parse_private_key(text: str, what: str) -> PrivateKey:
    block_type, der = _pem_decode(text, what)
    expected = {"RSA PRIVATE KEY": rsa.RSAPrivateKey, "EC PRIVATE KEY": ec.EllipticCurvePrivateKey}
    if block_type not in (*expected, "PRIVATE KEY"):
        raise ValueError(f"{what}: unsupported PEM preamble {block_type!r}")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{what}: failed to parse private key: {exc}") from exc
    if block_type in expected and not isinstance(key, expected[block_type]):
        raise ValueError(f"{what}: {block_type} block holds a {type(key).__name__}")
    _check_key_type(key, what)
    return key  # type: ignore[return-value]


def _load_certificate(text: str, what: str) -> x509.Certificate:
    block_type, der = _pem_decode(text, what)
    if block_type != "CERTIFICATE":
        raise ValueError(f"{what}: invalid PEM type - expected 'CERTIFICATE', got {block_type!r}")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ValueError(f"{what}: failed to parse certificate: {exc}") from exc


def _load_csr(text: str, what: str) -> x509.CertificateSigningRequest:
    block_type, der = _pem_decode(text, what)
    if block_type != "CERTIFICATE REQUEST":
        raise ValueError(
            f"{what}: invalid PEM type - expected 'CERTIFICATE REQUEST', got {block_type!r}"
        )
    try:
        return x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise ValueError(f"{what}: failed to parse certificate request: {exc}") from exc


# The parsed certificate itself is not kept: cryptography would then warn about its subject
# (e.g. a common name over 64 characters) only the first time, where the provider's log
# shows the warning for every certificate signed. Its public key is a function of its DER,
# which is what Certificate compares and hashes.
@functools.lru_cache(maxsize=1024)
def _certificate_spki(certificate: x509.Certificate) -> bytes:
    """The SPKI of a CA certificate's public key (a CA signs many certificates)."""
    return _spki_der(certificate.public_key())  # type: ignore[arg-type]


def _spki_der(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _go_trim_space(data: bytes) -> bytes:
    """Go's strings.TrimSpace on raw bytes (the provider trims DER before hashing ids)."""
    trimmed = True
    while trimmed:
        trimmed = False
        for space in _GO_SPACES:
            if data.endswith(space):
                data, trimmed = data[: -len(space)], True
            if data.startswith(space):
                data, trimmed = data[len(space) :], True
    return data


def _hash_for_state(der: bytes) -> str:
    return hashlib.sha1(_go_trim_space(der), usedforsecurity=False).hexdigest()


def _signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """Go's default signature algorithm for the signing key (ECDSA hash grows with the curve)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name == "secp384r1":
            return hashes.SHA384()
        if key.curve.name == "secp521r1":
            return hashes.SHA512()
        return hashes.SHA256()
    return None  # Ed25519 signs the message itself.


def _subject_key_id(public: PublicKey) -> bytes:
    """The provider's generateSubjectKeyID: SHA-1 over Go's marshalling of the public key."""
    if isinstance(public, rsa.RSAPublicKey):
        data = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        # asn1.Marshal of an ed25519.PublicKey ([]byte) yields an OCTET STRING.
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        data = bytes([0x04, len(raw)]) + raw
    return hashlib.sha1(data, usedforsecurity=False).digest()


# --- names --------------------------------------------------------------------------------------


def _name_attribute(oid: ObjectIdentifier, value: str) -> x509.NameAttribute:
    kind = _ASN1Type.PrintableString if set(value) <= _PRINTABLE else _ASN1Type.UTF8String
    # Go enforces no length limits (e.g. a 3-letter country); cryptography only warns with this.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.NameAttribute(oid, value, kind, _validate=False)


def _go_name(values: dict[ObjectIdentifier, list[str]], email: str | None) -> x509.Name:
    rdns = []
    for _, oid in _SUBJECT_OIDS:
        items = values.get(oid, [])
        if oid in _SINGLE_VALUED:
            items = [item for item in items[-1:] if item]  # Go keeps the last, drops ""
        if items:
            rdns.append(x509.RelativeDistinguishedName([_name_attribute(oid, v) for v in items]))
    if email is not None:
        attribute = x509.NameAttribute(NameOID.EMAIL_ADDRESS, email, _ASN1Type.IA5String)
        rdns.append(x509.RelativeDistinguishedName([attribute]))
    return x509.Name(rdns)


def _subject_from_config(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    values: dict[ObjectIdentifier, list[str]] = {}
    for key, oid in _SUBJECT_OIDS:
        if key in subject:
            item = subject[key]
            values[oid] = list(item) if isinstance(item, list) else [item]
    return _go_name(values, subject.get("emailAddress"))


def _subject_from_csr(name: x509.Name) -> x509.Name:
    """Go re-marshals a parsed pkix.Name: known attributes only, regrouped, email dropped."""
    known = {oid for _, oid in _SUBJECT_OIDS}
    values: dict[ObjectIdentifier, list[str]] = {}
    for attribute in name:
        if attribute.oid in known and isinstance(attribute.value, str):
            values.setdefault(attribute.oid, []).append(attribute.value)
    return _go_name(values, None)


def _parse_ip(name: str, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        if "%" in text:  # Go's net.ParseIP takes no zone
            raise ValueError(text)
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise _fail(name, f"Invalid IP address: failed to parse {text!r}") from exc
    return _ipv4_if_mapped(address)


def _ipv4_if_mapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # Go writes IP SANs through net.IP.To4, so ::ffff:a.b.c.d becomes a 4-byte address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _sans_from_config(name: str, args: dict[str, Any]) -> list[x509.GeneralName]:
    # Go's marshalSANs order: DNS names, (emails), IP addresses, URIs.
    sans: list[x509.GeneralName] = [x509.DNSName(v) for v in args.get("dnsNames", [])]
    sans += [x509.IPAddress(_parse_ip(name, v)) for v in args.get("ipAddresses", [])]
    sans += [x509.UniformResourceIdentifier(v) for v in args.get("uris", [])]
    return sans


def _sans_from_csr(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    # The provider copies DNSNames, IPAddresses and URIs only; emails are dropped.
    sans: list[x509.GeneralName] = [x509.DNSName(v) for v in san.get_values_for_type(x509.DNSName)]
    sans += [x509.IPAddress(_ipv4_if_mapped(v)) for v in san.get_values_for_type(x509.IPAddress)]
    sans += [
        x509.UniformResourceIdentifier(v)
        for v in san.get_values_for_type(x509.UniformResourceIdentifier)
    ]
    return sans


# --- certificates -------------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    """Go's time.MarshalText (RFC 3339, fractional seconds without trailing zeros), in UTC."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _key_usage_extension(bits: list[bool]) -> x509.ExtensionType:
    try:
        return x509.KeyUsage(*bits)
    except ValueError:
        # cryptography refuses encipher/decipher_only without key_agreement; Go does not.
        value = sum(1 << (15 - index) for index, bit in enumerate(bits) if bit)
        data = value.to_bytes(2, "big").rstrip(b"\0") or b"\0"
        unused = (data[-1] & -data[-1]).bit_length() - 1
        der = bytes([0x03, len(data) + 1, unused]) + data
        return x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, der)


def _create_certificate(
    name: str,
    args: dict[str, Any],
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    signing_key: PrivateKey,
    parent_ski: bytes | None,
    sans: list[x509.GeneralName],
    subject_is_empty: bool,
) -> dict[str, Any]:
    """The provider's createCertificate followed by Go's x509.CreateCertificate."""
    now = datetime.now(UTC)
    hours = args["validityPeriodHours"]
    try:
        not_after = now + timedelta(hours=hours)
    except OverflowError as exc:
        raise _fail(name, f"validityPeriodHours {hours} is out of range") from exc

    uses = args["allowedUses"]
    key_usage = [usage in uses for usage in _KEY_USAGES]
    ext_key_usage = [_EXT_KEY_USAGES[use] for use in uses if use in _EXT_KEY_USAGES]

    is_ca = args["isCaCertificate"]
    if is_ca and subject_is_empty:
        raise _fail(
            name,
            "Invalid Certificate Subject: Must contain at least one Distinguished Name "
            "when creating Certificate Authority (CA)",
        )
    max_path = args.get("maxPathLength")
    # The provider only copies values >= 0 and never sets MaxPathLenZero, so Go encodes no
    # pathLenConstraint for 0 or -1, and refuses a positive one on a non-CA.
    if max_path is not None and max_path > 0 and not is_ca:
        raise _fail(name, "x509: only CAs are allowed to specify MaxPathLen")
    path_length = max_path if is_ca and max_path is not None and max_path > 0 else None

    ski = _subject_key_id(public_key) if is_ca or args["setSubjectKeyId"] else None
    aki = None
    if args.get("setAuthorityKeyId"):
        # Only self-signed certs have this attribute; their parent is the template itself.
        if ski is None:
            raise _fail(name, "Invalid Certificate Authority: Could not determine Authority Key ID")
        aki = ski
    if subject.public_bytes() != issuer.public_bytes() and parent_ski:
        aki = parent_ski

    serial = 0
    while serial == 0:  # Go draws from [0, 2^128); cryptography refuses 0
        serial = secrets.randbelow(1 << 128)

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now.replace(microsecond=0))
        .not_valid_after(not_after.replace(microsecond=0))
    )
    # Extension order and criticality as in Go's buildCertExtensions.
    if any(key_usage):
        builder = builder.add_extension(_key_usage_extension(key_usage), critical=True)
    if ext_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ext_key_usage), critical=False)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True
    )
    if ski is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(aki, None, None), critical=False
        )
    if sans:
        # RFC 5280 4.2.1.6: SANs must be critical when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=len(subject) == 0
        )
    try:
        certificate = builder.sign(signing_key, _signature_hash(signing_key))
    except ValueError as exc:
        raise _fail(name, f"Failed to create certificate: {exc}") from exc

    early = args["earlyRenewalHours"]
    return {
        "id": str(serial),
        "certPem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": _rfc3339(now),
        "validityEndTime": _rfc3339(not_after),
        # The plan modifier decides this at create time from the hours alone.
        "readyForRenewal": hours == 0 or early >= hours,
    }


# --- resources ----------------------------------------------------------------------------------


def _private_key(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm = args["algorithm"]
    key: PrivateKey
    try:
        if algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=args["rsaBits"])
        elif algorithm == "ECDSA":
            key = ec.generate_private_key(_CURVES[args["ecdsaCurve"]])
        else:
            key = ed25519.Ed25519PrivateKey.generate()
    except ValueError as exc:
        raise _fail(name, f"Unable to generate Key from configuration: {exc}") from exc

    no_encryption = serialization.NoEncryption()
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, no_encryption
    ).decode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        private_pem = pkcs8
    else:  # PKCS#1 "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY"
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            no_encryption,
        ).decode()
    # What _load_private_key would parse out of these PEMs is this key (see _remember_key).
    _remember_key(pkcs8, key)
    _remember_key(private_pem, key)

    public = key.public_key()
    spki = _spki_der(public)
    outputs: dict[str, Any] = {
        "privateKeyPem": private_pem,
        "privateKeyPemPkcs8": pkcs8,
        "publicKeyPem": _pem("PUBLIC KEY", spki),
        # x/crypto/ssh has no P-224: the provider leaves these empty.
        "privateKeyOpenssh": "",
        "publicKeyOpenssh": "",
        "publicKeyFingerprintMd5": "",
        "publicKeyFingerprintSha256": "",
    }
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1"):
        # Already 64-column PEM, like Go's pem.EncodeToMemory.
        outputs["privateKeyOpenssh"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, no_encryption
        ).decode()
        authorized = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        blob = base64.b64decode(authorized.split()[1])
        md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        sha256 = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        outputs["publicKeyOpenssh"] = authorized + "\n"
        outputs["publicKeyFingerprintMd5"] = ":".join(md5[i : i + 2] for i in range(0, 32, 2))
        outputs["publicKeyFingerprintSha256"] = f"SHA256:{sha256}"
    return _hash_for_state(spki), outputs


def _own_key(name: str, args: dict[str, Any], prefix: str = "") -> PrivateKey:
    key_name = f"{prefix}PrivateKeyPem" if prefix else "privateKeyPem"
    text = args.get(key_name, args.get(f"{key_name}Wo"))
    try:
        return _load_private_key(text, key_name)
    except ValueError as exc:
        raise _fail(name, str(exc)) from exc


def _cert_request(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = _own_key(name, args)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        _subject_from_config(args.get("subject"))
    )
    sans = _sans_from_config(name, args)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    try:
        csr = builder.sign(key, _signature_hash(key))
    except ValueError as exc:
        raise _fail(name, f"Error creating certificate request: {exc}") from exc
    der = csr.public_bytes(serialization.Encoding.DER)
    outputs = {
        "certRequestPem": _pem("CERTIFICATE REQUEST", der),
        "keyAlgorithm": _algorithm_of(key),
    }
    return _hash_for_state(der), outputs


def _self_signed_cert(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = _own_key(name, args)
    subject = _subject_from_config(args.get("subject"))
    outputs = _create_certificate(
        name,
        args,
        subject=subject,
        issuer=subject,
        public_key=key.public_key(),
        signing_key=key,
        parent_ski=None,
        sans=_sans_from_config(name, args),
        subject_is_empty=len(subject) == 0,
    )
    outputs["keyAlgorithm"] = _algorithm_of(key)
    return outputs.pop("id"), outputs


def _locally_signed_cert(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        csr = _load_csr(args["certRequestPem"], "certRequestPem")
        ca_cert = _load_certificate(args["caCertPem"], "caCertPem")
    except ValueError as exc:
        raise _fail(name, str(exc)) from exc
    ca_key = _own_key(name, args, prefix="ca")
    # Stricter than the provider (Go does not check it): a forged CSR is always a harness bug.
    if not csr.is_signature_valid:
        raise _fail(name, "certRequestPem: the CSR signature does not verify")
    try:
        public_key = csr.public_key()
        _check_key_type(public_key, "certRequestPem")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _fail(name, str(exc)) from exc
    if _spki_der(ca_key) != _certificate_spki(ca_cert):
        raise _fail(name, "x509: provided PrivateKey doesn't match parent's PublicKey")

    try:
        basic = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ca_flag = basic.ca
    except x509.ExtensionNotFound:
        ca_flag = False
    if not ca_flag:
        warnings.warn(
            f"tls resource {name!r}: Certificate provided as Authority does not appear to be a "
            "valid Certificate Authority. The resulting certificate might fail validation.",
            TlsProviderWarning,
            stacklevel=3,
        )
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ca_ski = None

    outputs = _create_certificate(
        name,
        args,
        subject=_subject_from_csr(csr.subject),
        issuer=ca_cert.subject,
        public_key=public_key,  # type: ignore[arg-type]
        signing_key=ca_key,
        parent_ski=ca_ski,
        sans=_sans_from_csr(csr),
        # Go compares the parsed pkix.Name, which still lists every CSR attribute.
        subject_is_empty=len(csr.subject) == 0,
    )
    outputs["caKeyAlgorithm"] = _algorithm_of(ca_key)
    return outputs.pop("id"), outputs


_HANDLERS: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    PRIVATE_KEY: _private_key,
    CERT_REQUEST: _cert_request,
    SELF_SIGNED_CERT: _self_signed_cert,
    LOCALLY_SIGNED_CERT: _locally_signed_cert,
}
