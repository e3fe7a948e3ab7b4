"""``orthgate:orthanc``: defaults, environment-driven storage, and refusals by key path."""

from __future__ import annotations

import pytest

from orthgate.components.config import ConfigError, parse_settings


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


@pytest.mark.parametrize(
    ("environment", "orthanc", "path", "words"),
    [
        pytest.param(
            "prd", {"storage": "s3", "index": "sqlite"}, "index", "orphaned", id="s3-sqlite"
        ),
        pytest.param(
            "dev", {"storage": "s3", "index": "sqlite"}, "index", "orphaned", id="s3-sqlite-dev"
        ),
        pytest.param("dev", {"hosting": "fleet"}, "hosting", "share", id="fleet-on-ebs"),
        pytest.param(
            "prd", {"hosting": "fleet", "storage": "ebs"}, "hosting", "share", id="fleet-ebs"
        ),
        pytest.param(
            "prd",
            {"hosting": "singleHost", "instanceCount": 2},
            "instanceCount",
            "fleet",
            id="single-two",
        ),
        pytest.param("dev", {"instanceCount": 2}, "instanceCount", "fleet", id="dev-two"),
        pytest.param(
            "dev", {"fleet": {"maxSize": 4}}, "fleet", "hosting: fleet", id="fleet-keys-single"
        ),
        pytest.param(
            "prd",
            {"instanceCount": 3, "fleet": {"minSize": 4}},
            "fleet.minSize",
            "above",
            id="min-above",
        ),
        pytest.param(
            "prd",
            {"instanceCount": 3, "fleet": {"maxSize": 2}},
            "fleet.maxSize",
            "below",
            id="max-below",
        ),
        pytest.param("prd", {"instanceCount": 21}, "instanceCount", "1 to 20", id="too-many"),
        pytest.param("prd", {"instanceCount": 0}, "instanceCount", "1 to 20", id="none"),
        pytest.param(
            "prd",
            {"fleet": {"targetCpuPercent": 95}},
            "fleet.targetCpuPercent",
            "10 to 90",
            id="cpu",
        ),
        pytest.param(
            "prd",
            {"fleet": {"healthCheckGraceSeconds": 10}},
            "fleet.healthCheckGraceSeconds",
            "60",
            id="grace",
        ),
        pytest.param(
            "prd", {"fleet": {"desired": 3}}, "fleet.desired", "known", id="unknown-fleet-key"
        ),
        pytest.param("prd", {"hosting": "cluster"}, "hosting", "fleet", id="hosting-value"),
        pytest.param("prd", {"amiUpdates": "auto"}, "amiUpdates", "follow", id="ami-updates-value"),
        pytest.param(
            "prd",
            {"amiId": "ami-0123456789abcdef0", "amiUpdates": "follow"},
            "amiUpdates",
            "amiId",
            id="ami-pinned-and-updates",
        ),
    ],
)
def test_hosting_refusals_name_the_key_and_say_what_to_do(environment, orthanc, path, words):
    problems = refused(environment, {"natGateways": "single"}, **orthanc)
    key = f"orthgate:orthanc.{path}"
    assert key in problems, problems
    assert words in problems[key]


def test_shared_data_makes_a_fleet_and_the_counts_follow():
    orthanc = settings_with("prd").orthanc
    assert orthanc.hosting == "fleet"
    assert orthanc.fleet_sizes == (2, 2, 4)
    assert orthanc.follows_new_amis is True
    sized = settings_with("prd", instanceCount=3, fleet={"minSize": 2, "maxSize": 8}).orthanc
    assert sized.fleet_sizes == (2, 3, 8)
    capped = settings_with("prd", instanceCount=15).orthanc
    assert capped.fleet_sizes == (15, 15, 20)


def test_a_single_host_holds_its_ami_unless_told_to_follow():
    assert settings_with("dev").orthanc.follows_new_amis is False
    assert settings_with("dev", amiUpdates="follow").orthanc.follows_new_amis is True
    assert settings_with("prd", amiUpdates="hold").orthanc.follows_new_amis is False


def test_a_shared_data_single_host_is_still_possible():
    orthanc = settings_with("prd", hosting="singleHost").orthanc
    assert (orthanc.hosting, orthanc.instance_count) == ("singleHost", 1)


def alarm_refusals(emails: list) -> set[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "environment": "prd",
                "network": {"vpcCidr": "10.40.0.0/16"},
                "alarms": {"emails": emails},
            }
        )
    return {p.path for p in caught.value.problems}


def test_alarm_emails_are_checked_and_unique():
    assert alarm_refusals(["oncall@hospital.example", "not-an-address"]) == {
        "orthgate:alarms.emails[1]"
    }
    assert alarm_refusals(["oncall@hospital.example", "ONCALL@hospital.example"]) == {
        "orthgate:alarms.emails[1]"
    }
