"""``orthgate:orthanc``: defaults, environment-driven storage, and refusals by key path."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_settings


def settings_with(environment: str = "dev", network: dict | None = None, **orthanc):
    return parse_settings(
        {
            "environment": environment,
            "network": {"vpcCidr": "10.40.0.0/16", **(network or {})},
            "orthanc": orthanc,
        }
    )


def refused(environment: str = "dev", network: dict | None = None, **orthanc) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        settings_with(environment, network, **orthanc)
    return {p.path: str(p) for p in caught.value.problems}


def test_every_key_has_a_default():
    orthanc = parse_settings({"environment": "dev", "network": {"vpcCidr": "10.40.0.0/16"}}).orthanc
    assert orthanc.instance_count == 1
    assert orthanc.hosting == "singleHost"
    assert orthanc.placement == "public"
    assert orthanc.ae_title == "ORTHANC"
    assert orthanc.dicom_tls_port == 11112
    assert orthanc.dicom_allowed_cidrs == []
    assert orthanc.web_allowed_cidrs == []
    assert orthanc.image.startswith("orthancteam/orthanc:")
    assert orthanc.nginx_image.startswith("nginx:")


@pytest.mark.parametrize(
    ("environment", "storage", "index"),
    [("dev", "ebs", "sqlite"), ("tst", "s3", "postgresql"), ("prd", "s3", "postgresql")],
)
def test_storage_and_index_follow_the_environment_unless_set(environment, storage, index):
    orthanc = settings_with(environment).orthanc
    assert (orthanc.storage, orthanc.index) == (storage, index)
    explicit = settings_with(environment, storage="ebs", index="postgresql").orthanc
    assert (explicit.storage, explicit.index) == ("ebs", "postgresql")


@pytest.mark.parametrize(
    ("orthanc", "path"),
    [
        pytest.param({"dicomAllowedCidrs": ["0.0.0.0/0"]}, "dicomAllowedCidrs[0]", id="world"),
        pytest.param({"dicomAllowedCidrs": ["::/0"]}, "dicomAllowedCidrs[0]", id="world-v6"),
        pytest.param({"webAllowedCidrs": ["0.0.0.0/0"]}, "webAllowedCidrs[0]", id="web-world"),
        pytest.param({"webAllowedCidrs": ["0.0.0.0/1"]}, "webAllowedCidrs[0]", id="half-world"),
        pytest.param(
            {"dicomAllowedCidrs": ["198.51.100.7/32", "198.51.100.7/32"]},
            "dicomAllowedCidrs[1]",
            id="cidr-twice",
        ),
        pytest.param({"aeTitle": "A" * 17}, "aeTitle", id="ae-17"),
        pytest.param({"aeTitle": ""}, "aeTitle", id="ae-empty"),
        pytest.param({"aeTitle": "BACK\\SLASH"}, "aeTitle", id="ae-backslash"),
        pytest.param({"aeTitle": " ORTHANC"}, "aeTitle", id="ae-leading-space"),
        pytest.param({"instanceCount": 3}, "instanceCount", id="three-instances"),
        pytest.param({"instanceCount": 2}, "instanceCount", id="two-without-shared-data"),
        pytest.param({"placement": "dmz"}, "placement", id="placement"),
        pytest.param({"placement": "private"}, "placement", id="private-without-nat"),
        pytest.param({"dicomTlsPort": 4242}, "dicomTlsPort", id="tls-port-clash"),
        pytest.param({"dicomTlsPort": 80}, "dicomTlsPort", id="privileged-port"),
        pytest.param({"instanceType": "large"}, "instanceType", id="instance-type"),
        pytest.param({"image": "orthancteam/orthanc"}, "image", id="image-unpinned"),
        pytest.param({"image": "orthancteam/orthanc:latest"}, "image", id="image-latest"),
        pytest.param({"siteName": "pacs"}, "siteName", id="site-not-fqdn"),
        pytest.param({"storage": "nfs"}, "storage", id="storage"),
        pytest.param({"logRetentionDays": 10}, "logRetentionDays", id="retention"),
        pytest.param({"certificateValidityDays": 30}, "certificateValidityDays", id="cert-short"),
        pytest.param({"amiId": "ubuntu"}, "amiId", id="ami"),
        pytest.param(
            {"modalities": [{"name": "ct", "aeTitle": "ORTHANC"}]},
            "modalities[0].aeTitle",
            id="modality-uses-own-ae",
        ),
        pytest.param(
            {"modalities": [{"name": "ct", "aeTitle": "CT1"}, {"name": "mr", "aeTitle": "CT1"}]},
            "modalities[1].aeTitle",
            id="modality-ae-twice",
        ),
        pytest.param({"sshKey": "x"}, "sshKey", id="unknown-key"),
    ],
)
def test_invalid_orthanc_settings_are_refused_naming_the_key(orthanc, path):
    problems = refused(**orthanc)
    assert f"orthgate:orthanc.{path}" in problems, problems


def test_a_private_instance_without_nat_says_what_to_change():
    problems = refused(placement="private")
    message = problems["orthgate:orthanc.placement"]
    assert "orthgate:network.natGateways" in message
    assert "placement: public" in message


def test_a_private_instance_with_nat_is_accepted():
    settings = settings_with(network={"natGateways": "single"}, placement="private")
    assert settings.orthanc.placement == "private"


def test_two_instances_are_accepted_on_shared_storage():
    settings = settings_with("prd", instanceCount=2)
    assert settings.orthanc.instance_count == 2


def test_the_world_refusal_explains_itself():
    message = refused(dicomAllowedCidrs=["0.0.0.0/0"])["orthgate:orthanc.dicomAllowedCidrs[0]"]
    assert "whole Internet" in message
