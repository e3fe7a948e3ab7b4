"""Certificate serial numbers as operators copy them: from a stack output, from
``openssl x509 -serial`` or from nginx's log (``$ssl_client_serial``).

All three print the serial in hexadecimal; openssl and nginx in upper case without
separators, browsers and some tools with colons. The canonical form here is what nginx
and the stack outputs print: upper-case hexadecimal, no separators, no leading zeros
beyond what ``format_serial`` writes for the integer.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from orthgate.components.config.types import SchemaHint

_HEX = re.compile(r"[0-9A-F]+")
# RFC 5280 section 4.1.2.2: a serial is a positive integer of at most 20 octets; in DER the
# first bit is the sign, so at most 159 bits.
MAX_SERIAL_OCTETS = 20
MAX_SERIAL_BITS = 8 * MAX_SERIAL_OCTETS - 1


def format_serial(serial: int) -> str:
    """The canonical text of a serial: upper-case hex, an even number of digits."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(value: Any) -> str:
    """A serial written as hex text (``0F:A9:...``, ``0fa9...``, ``0x0FA9``), canonical."""
    if not isinstance(value, str):
        raise ValueError(
            "must be a certificate serial number in hexadecimal, written as a string in "
            "quotes (YAML reads an unquoted all-digit serial as a decimal number), e.g. "
            '"0FA9BCD4972010B5EAC32A1B072AE657C7EEEDE6"'
        )
    text = value.strip().upper().replace(":", "")
    if text.startswith("0X"):
        text = text[2:]
    if not _HEX.fullmatch(text):
        raise ValueError(
            "must be a certificate serial number in hexadecimal (digits 0-9 and A-F, "
            "optionally separated by colons), as `openssl x509 -noout -serial` prints it"
        )
    number = int(text, 16)
    if number == 0 or number.bit_length() > MAX_SERIAL_BITS:
        raise ValueError(
            f"is not a certificate serial: a serial is a positive number of at most "
            f"{MAX_SERIAL_OCTETS} bytes (RFC 5280)"
        )
    return format_serial(number)


# The characters parse_serial reads, for editors (it decides the rest).
_SERIAL_PATTERN = r"^\s*(0[xX])?[0-9A-Fa-f:]+\s*$"
CertificateSerial = Annotated[
    str, BeforeValidator(parse_serial), SchemaHint(type="string", pattern=_SERIAL_PATTERN)
]
