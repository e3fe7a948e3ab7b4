"""orthgate's CrossGuard policies for DICOM on AWS, importable without starting a server
(``policy/__main__.py`` builds the pack from ``POLICIES``)."""

from __future__ import annotations

from orthgate_policy import advisory, compute, database, encryption, network, stack, storage, vpn

PACK_NAME = "orthgate-dicom"

POLICIES = [
    *network.POLICIES,
    *encryption.POLICIES,
    *storage.POLICIES,
    *database.POLICIES,
    *compute.POLICIES,
    *vpn.POLICIES,
    *stack.POLICIES,
    *advisory.POLICIES,
]
