"""The orthgate CrossGuard pack: `pulumi preview --policy-pack policy/`.

Constructing the PolicyPack starts the analyzer server the Pulumi CLI talks to, so this
file only builds it; the policies live in orthgate_policy/, where tests import them.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from orthgate_policy import PACK_NAME, POLICIES

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description="DICOM on AWS: who may reach DICOM ports, encryption at rest and in "
    "transit, private placement, VPN hardening, logging (orthgate).",
    provider="aws",
    tags=["dicom", "hipaa", "aws"],
)
