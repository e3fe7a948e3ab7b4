"""Orthanc verifies its PostgreSQL index (RDS): sslmode=verify-full against the RDS CA bundle.

What is rendered (the connection URI, the boot script's fetch step, the compose bind mount,
the unit's assertion) and, for real in bash with a stand-in for curl, what the fetch step
does when the bundle arrives, when it does not, and when something else arrives.
The TLS checks themselves run on a real PostgreSQL in tests/integration/test_database_tls.py.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import textwrap
import urllib.parse
from pathlib import Path

import pytest
import yaml

from orthgate.components.render import paths
from orthgate.components.render.cloud_init import (
    COMPOSE_VERSION,
    MAIN_UNIT,
    REFRESH_UNIT,
    SECRETS_UNIT,
    _units,
    rds_ca_bundle_url,
    render_boot_script,
)
from orthgate.components.render.compose import ComposeSpec, render_compose
from orthgate.components.render.orthanc_config import (
    Database,
    OrthancConfigSpec,
    render_orthanc_config,
)
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config, written_files

ENDPOINT = "orthgate-prd-orthanc-1.c9akciq32.eu-central-1.rds.amazonaws.com"
URL = "https://truststore.pki.rds.amazonaws.com/eu-central-1/eu-central-1-bundle.pem"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def connection_uri(**database: object) -> urllib.parse.SplitResult:
    spec = OrthancConfigSpec(name="t", ae_title="T", database=Database(**database))
    return urllib.parse.urlsplit(render_orthanc_config(spec)["PostgreSQL"]["ConnectionUri"])


# --- the connection URI -------------------------------------------------------------------


def test_the_index_is_reached_with_verify_full_against_the_mounted_rds_bundle():
    uri = connection_uri(host=ENDPOINT)
    assert urllib.parse.parse_qs(uri.query, strict_parsing=True) == {
        "sslmode": ["verify-full"],
        "sslrootcert": [paths.RDS_CA_IN_CONTAINER],
    }
    # libpq checks the certificate against the host it was given: the endpoint's name.
    assert uri.hostname == ENDPOINT
    assert (uri.port, uri.path) == (5432, "/orthanc")


def test_the_credentials_stay_placeholders_filled_on_the_host():
    uri = connection_uri(host=ENDPOINT)
    assert (uri.username, uri.password) == ("{username}", "{password}")


def test_without_a_database_there_is_no_postgresql_section():
    assert "PostgreSQL" not in render_orthanc_config(OrthancConfigSpec(name="t", ae_title="T"))


# --- where the bundle comes from -----------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition", "url"),
    [
        ("eu-central-1", "aws", URL),
        (
            "us-gov-west-1",
            "aws-us-gov",
            "https://truststore.pki.us-gov-west-1.rds.amazonaws.com/us-gov-west-1/"
            "us-gov-west-1-bundle.pem",
        ),
        # No region known (a test double's lookup): the global bundle, every region's CAs.
        ("", "aws", "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"),
    ],
)
def test_each_partition_fetches_from_the_trust_store_the_rds_guide_names(region, partition, url):
    assert rds_ca_bundle_url(region, partition) == url


def test_no_url_is_guessed_where_the_guide_names_none():
    with pytest.raises(ValueError, match="aws-cn partition"):
        rds_ca_bundle_url("cn-north-1", "aws-cn")


@pytest.mark.parametrize("region", ['eu-central-1"; reboot; "', "EU-CENTRAL-1", "eu central"])
def test_a_region_that_would_need_shell_quoting_is_refused(region):
    with pytest.raises(ValueError, match="not a region name"):
        rds_ca_bundle_url(region, "aws")


def test_the_boot_script_takes_only_an_rds_trust_store_url():
    with pytest.raises(ValueError, match="not an RDS trust store URL"):
        render_boot_script(None, COMPOSE_VERSION, rds_ca_url="https://example.org/ca.pem")


# --- the boot script -----------------------------------------------------------------------


def fetch_function(script: str) -> str:
    start = script.index("fetch_rds_ca() {")
    return script[start : script.index("\n}\n", start) + 3]


@pytest.mark.parametrize("volume", [None, "vol-0123456789abcdef0"])
@pytest.mark.parametrize("metrics_agent", [False, True])
@pytest.mark.parametrize("docker_config", [False, True])
def test_without_a_database_the_boot_script_is_the_one_it_was(volume, metrics_agent, docker_config):
    flags = {"metrics_agent": metrics_agent, "docker_config": docker_config}
    without = render_boot_script(volume, COMPOSE_VERSION, **flags)
    assert "rds" not in without.lower()
    with_ca = render_boot_script(volume, COMPOSE_VERSION, **flags, rds_ca_url=URL)
    # The fetch step is an addition only: taken out again, not a byte differs.
    function = fetch_function(with_ca)
    assert with_ca.count(function) == 1
    assert with_ca.replace(function + "\n", "").replace("\nfetch_rds_ca\n", "\n") == without


def test_the_bundle_is_fetched_before_any_unit_that_starts_orthanc_is_enabled():
    script = render_boot_script(None, COMPOSE_VERSION, rds_ca_url=URL)
    lines = script.splitlines()
    call = lines.index("fetch_rds_ca")
    assert lines.index("install_compose") < call
    enable = next(i for i, line in enumerate(lines) if line.startswith("systemctl enable"))
    assert call < enable
    assert "set -euo pipefail" in lines


# The function, for real, with a stand-in curl that copies a file (or fails like curl does
# for an HTTP error) and the bundle's path moved under the test's folder.
FAKE_CURL = """#!/bin/bash
output=""
url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift 2 ;;
    --proto|--retry) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
echo "$url" >> "$FAKE_CURL_LOG"
if [ ! -e "$FAKE_CURL_BODY" ]; then
  echo "curl: (22) The requested URL returned error: 404" >&2
  exit 22
fi
cp "$FAKE_CURL_BODY" "$output"
"""


def run_fetch(tmp_path: Path, body: str | None) -> tuple[subprocess.CompletedProcess, Path]:
    bundle = tmp_path / "etc" / "orthgate" / "rds-ca.pem"
    function = fetch_function(render_boot_script(None, COMPOSE_VERSION, rds_ca_url=URL))
    assert function.count(paths.RDS_CA_BUNDLE) == 1
    function = function.replace(paths.RDS_CA_BUNDLE, str(bundle))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    body_file = tmp_path / "body"
    body_file.unlink(missing_ok=True)
    if body is not None:
        body_file.write_text(body)
    script = textwrap.dedent(
        """\
        set -euo pipefail
        log() {
          echo "orthgate-boot: $*"
        }
        """
    )
    result = subprocess.run(
        ["bash", "-c", script + function + "fetch_rds_ca\necho fetched\n"],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_CURL_BODY": str(body_file),
            "FAKE_CURL_LOG": str(tmp_path / "curl.log"),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, bundle


def test_the_fetched_bundle_is_installed_readable_by_the_container(tmp_path):
    result, bundle = run_fetch(tmp_path, PEM)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("fetched\n")
    assert bundle.read_text() == PEM
    assert bundle.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "curl.log").read_text() == URL + "\n"
    assert not bundle.with_name("rds-ca.pem.new").exists()


def test_running_the_boot_script_again_replaces_the_bundle_whole(tmp_path):
    run_fetch(tmp_path, PEM)
    newer = PEM + PEM
    result, bundle = run_fetch(tmp_path, newer)
    assert result.returncode == 0, result.stderr
    assert bundle.read_text() == newer


def test_a_bundle_that_cannot_be_fetched_stops_the_boot_loudly(tmp_path):
    result, bundle = run_fetch(tmp_path, None)
    assert result.returncode == 1
    assert "fetched" not in result.stdout
    assert f"could not fetch the RDS CA bundle {URL}" in result.stdout
    assert not bundle.exists()


def test_something_other_than_certificates_is_refused_and_the_old_bundle_kept(tmp_path):
    run_fetch(tmp_path, PEM)
    result, bundle = run_fetch(tmp_path, "<html>captive portal</html>\n")
    assert result.returncode == 1
    assert "holds no PEM certificate" in result.stdout
    assert bundle.read_text() == PEM


# --- units and compose ---------------------------------------------------------------------


def unit_lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("data_dir", [None, paths.HOST_DATA_DIR])
def test_orthanc_s_unit_asserts_the_bundle_only_with_a_database(data_dir):
    assertion = f"AssertFileNotEmpty={paths.RDS_CA_BUNDLE}"
    with_ca, without = _units(data_dir, rds_ca=True), _units(data_dir)
    main = unit_lines(with_ca[MAIN_UNIT])
    assert assertion in main[: main.index("[Service]")]
    assert all(assertion not in text for text in without.values())
    # Everything else is as it was; the refresh unit requires the main unit, so it cannot
    # (re)start Orthanc either when the assertion fails.
    assert with_ca[MAIN_UNIT].replace(assertion + "\n", "") == without[MAIN_UNIT]
    for name in (SECRETS_UNIT, REFRESH_UNIT):
        assert with_ca[name] == without[name]
    assert f"Requires={MAIN_UNIT}" in unit_lines(with_ca[REFRESH_UNIT])


def compose_spec(**overrides: object) -> ComposeSpec:
    base = {
        "orthanc_image": "orthancteam/orthanc:25.12.3",
        "nginx_image": "nginx:1.27",
        "dicom_tls_port": 11112,
        "https_port": 443,
        "plain_dicom_port": 4242,
        "log_group": "lg",
        "region": "eu-central-1",
        "instance_label": None,
    }
    return ComposeSpec(**{**base, **overrides})


def test_the_bundle_is_mounted_read_only_and_never_created_empty():
    volumes = render_compose(compose_spec(rds_ca=True))["services"]["orthanc"]["volumes"]
    assert {
        "type": "bind",
        "source": paths.RDS_CA_BUNDLE,
        "target": paths.RDS_CA_IN_CONTAINER,
        "read_only": True,
        "bind": {"create_host_path": False},
    } in volumes
    plain = render_compose(compose_spec())["services"]["orthanc"]["volumes"]
    assert all(volume["source"] != paths.RDS_CA_BUNDLE for volume in plain)


def test_the_bundle_sits_beside_orthanc_json_where_the_image_reads_only_json():
    # The orthancteam image merges /etc/orthanc/*.json: a .pem there is not configuration.
    assert Path(paths.RDS_CA_IN_CONTAINER).parent == Path(paths.ORTHANC_CONFIG_IN_CONTAINER).parent
    assert Path(paths.RDS_CA_IN_CONTAINER).suffix != ".json"


# --- the program ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod():
    return evaluate(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"), stack="prod")


def test_production_fetches_its_region_s_bundle_and_mounts_it_for_orthanc(prod):
    files = written_files(prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")[0])
    boot = files[paths.BOOT_SCRIPT]
    assert URL in boot  # the stack's aws:region is eu-central-1
    assert "\nfetch_rds_ca\n" in boot
    orthanc = yaml.safe_load(files[paths.COMPOSE_FILE])["services"]["orthanc"]
    assert {v["target"]: v["source"] for v in orthanc["volumes"]}[paths.RDS_CA_IN_CONTAINER] == (
        paths.RDS_CA_BUNDLE
    )
    unit = files[f"{paths.SYSTEMD_UNIT_DIR}/{MAIN_UNIT}"]
    assert f"AssertFileNotEmpty={paths.RDS_CA_BUNDLE}" in unit


def test_production_names_the_endpoint_s_dns_name_never_an_address(prod):
    database = prod.one("aws:rds/instance:Instance")
    uri = urllib.parse.urlsplit(deployed_orthanc_config(prod)["PostgreSQL"]["ConnectionUri"])
    assert uri.hostname == database.outputs["address"]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        ipaddress.ip_address(uri.hostname)
    assert "sslmode=verify-full" in uri.query


def test_a_stack_without_postgresql_fetches_nothing():
    dev = evaluate(read_stack_file(STACKS_DIR / "Pulumi.dev.yaml"), stack="dev")
    files = written_files(dev.of_type("aws:ec2/launchTemplate:LaunchTemplate")[0])
    assert "rds" not in files[paths.BOOT_SCRIPT].lower()
    assert paths.RDS_CA_BUNDLE not in files[paths.COMPOSE_FILE]
    assert "AssertFileNotEmpty" not in files[f"{paths.SYSTEMD_UNIT_DIR}/{MAIN_UNIT}"]
