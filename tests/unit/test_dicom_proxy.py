"""DicomProxyAccess: configuration, what the program declares, the bundle and its writer."""

from __future__ import annotations

import json
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orthgate.components.config import ConfigError, parse_settings
from orthgate.handover import HandoverError, write_bundle
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config
from tools.proxy_bundle import main

SITE_A = {
    "name": "site-a",
    "sourceCidrs": ["198.51.100.7/32"],
    "aeTitle": "SITEA_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}
SITE_B = {
    "name": "site-b",
    "sourceCidrs": ["203.0.113.200/30"],
    "aeTitle": "SITEB_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def refused(proxies: list, orthanc: dict | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "environment": "dev",
                "network": {"vpcCidr": "10.40.0.0/16"},
                "orthanc": orthanc or {},
                "dicomProxies": proxies,
            }
        )
    return {p.path: str(p) for p in caught.value.problems}


@pytest.mark.parametrize(
    ("proxies", "path"),
    [
        pytest.param([{**SITE_A, "aeTitle": "A" * 17}], "[0].aeTitle", id="proxy-ae-17"),
        pytest.param([SITE_A, {**SITE_B, "aeTitle": "SITEA_GW"}], "[1].aeTitle", id="proxy-ae-dup"),
        pytest.param([SITE_A, {**SITE_B, "name": "site-a"}], "[1].name", id="proxy-name-dup"),
        pytest.param([{**SITE_A, "name": "Site A"}], "[0].name", id="proxy-name-dns"),
        pytest.param([{**SITE_A, "sourceCidrs": ["0.0.0.0/0"]}], "[0].sourceCidrs[0]", id="w"),
        pytest.param(
            [{**SITE_A, "sourceCidrs": ["10.1.2.3/32"]}], "[0].sourceCidrs[0]", id="rfc1918"
        ),
        pytest.param(
            [{**SITE_A, "sourceCidrs": ["100.64.0.1/32"]}], "[0].sourceCidrs[0]", id="cgnat"
        ),
        pytest.param([{**SITE_A, "sourceCidrs": []}], "[0].sourceCidrs", id="proxy-no-source"),
        pytest.param(
            [SITE_A, {**SITE_B, "sourceCidrs": ["198.51.100.7/32"]}],
            "[1].sourceCidrs[0]",
            id="proxy-shared-source",
        ),
        pytest.param([{**SITE_A, "aeTitle": "ORTHANC"}], "[0].aeTitle", id="proxy-cloud-ae"),
        pytest.param([{**SITE_A, "listenPort": 0}], "[0].listenPort", id="proxy-port"),
        pytest.param(
            [
                {
                    **SITE_A,
                    "acceptAnyModality": False,
                    "modalities": [{"name": "ct", "aeTitle": "SITEA_GW"}],
                }
            ],
            "[0].modalities[0].aeTitle",
            id="proxy-modality-own-ae",
        ),
        pytest.param([{**SITE_A, "route": "x"}], "[0].route", id="proxy-unknown-key"),
    ],
)
def test_invalid_proxy_sites_are_refused_naming_the_key(proxies, path):
    problems = refused(proxies)
    assert f"orthgate:dicomProxies{path}" in problems, problems


def test_proxy_sites_need_a_public_orthanc():
    problems = refused([SITE_A], {"placement": "private"})
    assert "placement: public" in problems["orthgate:dicomProxies"]


def test_a_proxy_clashing_with_a_registered_modality_is_refused():
    orthanc = {"modalities": [{"name": "site-a", "aeTitle": "SITEA_GW"}]}
    problems = refused([SITE_A], orthanc)
    assert "orthgate:dicomProxies[0].aeTitle" in problems
    assert "orthgate:dicomProxies[0].name" in problems


def test_a_proxy_source_already_allowed_directly_is_refused():
    problems = refused([SITE_A], {"dicomAllowedCidrs": ["198.51.100.7/32"]})
    assert (
        "orthgate:orthanc.dicomAllowedCidrs[0]"
        in problems["orthgate:dicomProxies[0].sourceCidrs[0]"]
    )


@pytest.fixture(scope="module", params=["dev", "prod"])
def proxied(request):
    config = read_stack_file(STACKS_DIR / f"Pulumi.{request.param}.yaml")
    only_ct = {"acceptAnyModality": False, "modalities": [{"name": "ct-1", "aeTitle": "CT_B1"}]}
    config["orthgate:dicomProxies"] = [SITE_A, {**SITE_B, **only_ct}]
    return evaluate(config, stack=request.param)


def test_the_proxy_site_gets_the_tls_port_from_its_sources_and_nothing_else(proxied):
    tls_port = proxied.outputs["dicomTlsEndpoint"]["port"]
    from_site = [
        r for r in proxied.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "198.51.100.7/32"
    ]
    assert len(from_site) == 1
    rule = from_site[0]
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (tls_port, tls_port)
    # Where direct TLS from the Internet enters: the single host's own group, or a
    # fleet's public load balancer (its hosts admit only the load balancers).
    entry = (
        "orthanc-sg"
        if proxied.outputs["orthancHosting"] == "singleHost"
        else "orthanc-lb-public-sg"
    )
    assert rule.inputs["securityGroupId"] == proxied.named(entry).id
    # Declared with the tier's other rules, named by what it admits, and aliased to where
    # earlier releases declared it, so an upgrade keeps the rule.
    assert rule.parent_types == ["orthgate:orthanc:OrthancServer"]
    assert rule.inputs["description"] == "DICOM TLS, proxy site site-a"
    [alias] = rule.options.aliases
    assert alias.endswith(
        "orthgate:dicom:DicomProxyAccess$aws:vpc/securityGroupIngressRule:"
        "SecurityGroupIngressRule::proxy-site-a-dicom-tls-from-198.51.100.7-32"
    )


def test_the_proxy_site_certificate_is_a_client_certificate_named_for_the_site(proxied):
    cert = x509.load_pem_x509_certificate(
        proxied.outputs["dicomProxyBundles"]["site-a"]["tls/site.crt"].encode()
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "site-a"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ca = x509.load_pem_x509_certificate(proxied.outputs["dicomCaCertificate"].encode())
    cert.verify_directly_issued_by(ca)
    request = proxied.named("proxy-site-a-client-csr")
    assert request.inputs["subject"]["commonName"] == "site-a"


def test_the_cloud_orthanc_registers_each_proxy_ae_title(proxied):
    config = deployed_orthanc_config(proxied)
    modalities = config["DicomModalities"]
    assert modalities["site-a"]["AET"] == "SITEA_GW"
    assert modalities["site-b"]["AET"] == "SITEB_GW"
    assert modalities["site-a"]["AllowStore"] is True


def test_proxy_bundles_are_secret_and_complete(proxied):
    assert "dicomProxyBundles" in proxied.secret_outputs
    assert "dicomProxySites" not in proxied.secret_outputs
    bundle = proxied.outputs["dicomProxyBundles"]["site-a"]
    assert set(bundle) == {
        "README.md",
        "docker-compose.yml",
        "orthanc/orthanc.json",
        "forwarder/forwarder.py",
        "forwarder/forwarder.json",
        "tls/site.crt",
        "tls/site.key",
        "tls/dicom-ca.crt",
    }
    assert bundle["tls/dicom-ca.crt"] == proxied.outputs["dicomCaCertificate"]
    assert "PRIVATE KEY" in bundle["tls/site.key"]
    assert "PRIVATE KEY" not in json.dumps(proxied.outputs["dicomProxySites"])


def test_the_proxy_bundle_forwards_over_mutual_tls_to_the_cloud_endpoint(proxied):
    endpoint = proxied.outputs["dicomTlsEndpoint"]
    bundle = proxied.outputs["dicomProxyBundles"]["site-a"]
    proxy = json.loads(bundle["orthanc/orthanc.json"])
    cloud = proxy["DicomModalities"]["cloud"]
    assert (cloud["Host"], cloud["Port"], cloud["AET"]) == (
        endpoint["host"],
        endpoint["port"],
        endpoint["aeTitle"],
    )
    assert cloud["UseDicomTls"] is True
    assert proxy["DicomAet"] == "SITEA_GW"
    assert proxy["DicomTlsCertificate"].endswith("site.crt")
    assert proxy["DicomTlsPrivateKey"].endswith("site.key")
    assert proxy["DicomTlsTrustedCertificates"].endswith("dicom-ca.crt")
    assert proxy["DicomTlsRemoteCertificateRequired"] is True
    assert proxy["DicomAlwaysAllowStore"] is True  # site-a lists no modalities
    # A correction re-sent while its original waits here replaces it: the correction goes.
    assert proxy["OverwriteInstances"] is True
    restricted = json.loads(proxied.outputs["dicomProxyBundles"]["site-b"]["orthanc/orthanc.json"])
    assert restricted["DicomAlwaysAllowStore"] is False
    assert restricted["DicomModalities"]["ct-1"]["AET"] == "CT_B1"
    forwarder = json.loads(bundle["forwarder/forwarder.json"])
    assert forwarder["destination"] == "cloud"
    assert forwarder["orthanc"]["password"] == proxy["RegisteredUsers"]["forwarder"]
    # The forwarder's concurrent jobs run side by side only if Orthanc runs as many.
    assert forwarder["concurrentJobs"] == proxy["ConcurrentJobs"] == 2


def test_the_proxy_compose_pins_images_and_sets_tcp_nodelay(proxied):
    compose = yaml.safe_load(proxied.outputs["dicomProxyBundles"]["site-a"]["docker-compose.yml"])
    orthanc, forwarder = compose["services"]["orthanc"], compose["services"]["forwarder"]
    assert orthanc["image"] == "orthancteam/orthanc:25.12.3"
    assert ":" in forwarder["image"]
    assert not forwarder["image"].endswith(":latest")
    assert orthanc["environment"]["TCP_NODELAY"] == "1"
    # On the site machine's LAN address only: Docker publishes past host firewalls.
    assert orthanc["ports"] == ["192.168.50.10:104:4242"]
    assert forwarder["ports"] == ["127.0.0.1:8099:8099"]
    assert "proxy-data" in compose["volumes"]


def test_the_proxy_site_readme_says_what_to_open_and_how_to_check(proxied):
    endpoint = proxied.outputs["dicomTlsEndpoint"]
    readme = proxied.outputs["dicomProxyBundles"]["site-a"]["README.md"]
    assert f"`{endpoint['host']}` port {endpoint['port']}" in readme
    assert "echoscu -aet SITEA_GW" in readme


def test_proxy_resources_are_children_of_their_component(proxied):
    mine = proxied.within("orthgate:dicom:DicomProxyAccess").resources
    assert {r.name for r in mine} >= {
        "proxy-site-a",
        "proxy-site-a-client-cert",
        "proxy-site-a-forwarder-password",
    }


# --- the bundle writer ----------------------------------------------------------------------


def test_the_proxy_bundle_writer_protects_private_files(tmp_path, proxied):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"dicomProxyBundles": proxied.outputs["dicomProxyBundles"]}))
    dest = tmp_path / "site-a"
    assert main(["site-a", str(dest), "--outputs", str(outputs)]) == 0
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "tls" / "site.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "forwarder" / "forwarder.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "tls" / "site.crt").stat().st_mode) == 0o644
    bundle = proxied.outputs["dicomProxyBundles"]["site-a"]
    assert (dest / "orthanc" / "orthanc.json").read_text() == bundle["orthanc/orthanc.json"]
    # A second write into the full folder needs --force (exit 2: orthgate bundle's usage error).
    assert main(["site-a", str(dest), "--outputs", str(outputs)]) == 2
    assert main(["site-a", str(dest), "--outputs", str(outputs), "--force"]) == 0
    assert main(["nowhere", str(tmp_path / "x"), "--outputs", str(outputs)]) == 2


def test_the_proxy_bundle_writer_refuses_paths_outside_the_folder(tmp_path):
    with pytest.raises(HandoverError):
        write_bundle({"../escape": "x"}, tmp_path / "b")
    assert not (tmp_path / "escape").exists()
