"""pulumi-random as the provider computes it: RandomPassword (a secret) and RandomId."""

from __future__ import annotations

import base64
import secrets
import string

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type token


def new_random_password(name: str, inputs: dict) -> tuple[str, dict]:
    length = int(inputs["length"])
    classes = []
    if inputs.get("lower", True):
        classes.append((string.ascii_lowercase, int(inputs.get("minLower", 0))))
    if inputs.get("upper", True):
        classes.append((string.ascii_uppercase, int(inputs.get("minUpper", 0))))
    if inputs.get("numeric", True):
        classes.append((string.digits, int(inputs.get("minNumeric", 0))))
    if inputs.get("special", True):
        special = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        classes.append((special, int(inputs.get("minSpecial", 0))))
    chars = [secrets.choice(alphabet) for alphabet, minimum in classes for _ in range(minimum)]
    alphabet = "".join(a for a, _ in classes)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "none", {**inputs, "result": "".join(chars), "bcryptHash": "$2a$10$" + "x" * 53}


RANDOM_ID = "random:index/randomId:RandomId"


def new_random_id(name: str, inputs: dict) -> tuple[str, dict]:
    """RandomId's outputs: the same bytes in the encodings the provider offers."""
    raw = secrets.token_bytes(int(inputs["byteLength"]))
    b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return b64, {
        **inputs,
        "hex": raw.hex(),
        "b64Url": b64,
        "b64Std": base64.b64encode(raw).decode(),
        "dec": str(int.from_bytes(raw, "big")),
    }
