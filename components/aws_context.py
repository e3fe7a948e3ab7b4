"""Facts about the AWS account and region the stack deploys into, read once."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsContext:
    region: str
    account_id: str
    partition: str
    dns_suffix: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def service_principal(self, service: str) -> str:
        return f"{service}.{self.dns_suffix}"

    def regional_service_principal(self, service: str) -> str:
        return f"{service}.{self.region}.{self.dns_suffix}"

    def endpoint_service_name(self, service: str) -> str:
        return f"com.amazonaws.{self.region}.{service}"


def partition_of(region: str) -> tuple[str, str]:
    """The partition and its DNS suffix, from the region name alone."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def lookup_aws_context() -> AwsContext:
    """Region from `aws:region` (or the provider's own lookup), account from STS."""
    region = pulumi.Config("aws").get("region")
    if not region:
        found = aws.get_region()
        # Always set by AWS; empty only from a test double, which must not crash us.
        region = found.region or ""
    account_id = aws.get_caller_identity().account_id
    partition, dns_suffix = partition_of(region)
    return AwsContext(region, account_id, partition, dns_suffix)


def lookup_zone_names(count: int) -> list[str]:
    """The first ``count`` regular availability zones of the region, in name order.

    Local Zones and Wavelength Zones are excluded; name order keeps the choice stable when
    AWS opens a new zone (new zones get later letters).
    """
    zones = aws.get_availability_zones(
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    )
    names = sorted(zones.names or [])
    if len(names) < count:
        raise pulumi.RunError(
            f"orthgate:network.availabilityZones = {count}: the region offers only "
            f"{len(names)} available zone(s) ({', '.join(names) or 'none'}); lower the count "
            "or choose another aws:region"
        )
    return names[:count]


def lookup_architecture(instance_type: str) -> str:
    """``x86_64`` or ``arm64``, as the region reports for the instance type."""
    try:
        found = aws.ec2.get_instance_type(instance_type=instance_type)
    except Exception as error:  # the provider's message names the type; add the key
        raise pulumi.RunError(
            f"orthgate:orthanc.instanceType = {instance_type!r}: not offered here ({error})"
        ) from None
    # An empty answer only comes from a test double; the type's name then decides
    # (Graviton families carry a "g" after the generation digit, e.g. m7g, c7gn).
    architectures = found.supported_architectures or [_architecture_by_name(instance_type)]
    for architecture in ("arm64", "x86_64"):
        if architecture in architectures:
            return architecture
    raise pulumi.RunError(
        f"orthgate:orthanc.instanceType = {instance_type!r}: architecture "
        f"{architectures} is not one Amazon Linux 2023 supports (x86_64, arm64)"
    )


def _architecture_by_name(instance_type: str) -> str:
    family = instance_type.split(".")[0]
    generation = family.lstrip("abcdefghijklmnopqrstuvwxyz-")
    return "arm64" if family == "a1" or "g" in generation[1:] else "x86_64"


def check_ami_architecture(ami_id: str, architecture: str, instance_type: str) -> None:
    """A pinned AMI must suit the instance type: EC2 refuses to launch it otherwise, and a
    single host would already be gone by then (it is replaced delete-first)."""
    found = aws.ec2.get_ami(filters=[{"name": "image-id", "values": [ami_id]}])
    if found.architecture and found.architecture != architecture:
        raise pulumi.RunError(
            f"orthgate:orthanc.amiId = {ami_id!r}: is an {found.architecture} image, but "
            f"orthgate:orthanc.instanceType = {instance_type!r} runs {architecture}; pin an "
            f"{architecture} AMI or choose another instance type"
        )


def lookup_al2023_ami(architecture: str) -> str:
    """The current Amazon Linux 2023 AMI, from AWS's public SSM parameter."""
    parameter = f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"
    return aws.ssm.get_parameter(name=parameter).value
