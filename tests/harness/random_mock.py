"""pulumi-random's RandomPassword, as the provider computes it: a secret `result`."""

from __future__ import annotations

import secrets
import string

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


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
