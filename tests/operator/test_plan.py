"""`orthgate plan` and `orthgate diff`: offline, from the stack files, no Pulumi CLI."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from orthgate.cli import main
from orthgate.costs import price_table
from orthgate.editing import ModalitySpec, SiteSpec, add_site, set_value
from tests.harness.pulumi_run import PROJECT_ROOT, STACKS_DIR

COMPONENTS = {
    "network (orthgate:network:SecureNetwork)",
    "orthanc (orthgate:orthanc:OrthancServer)",
    "alarms (orthgate:monitoring:OperatorAlarms)",
    "proxy-north-clinic (orthgate:dicom:DicomProxyAccess)",
}
NEW_SITE = "198.51.100.64/29"


@pytest.fixture(scope="module")
def no_cli(tmp_path_factory):
    empty = tmp_path_factory.mktemp("no-pulumi")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(empty))
        patch.chdir(PROJECT_ROOT)
        yield


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """prod with a second proxy site and one NAT gateway instead of one per zone."""
    path = tmp_path_factory.mktemp("edit") / "Pulumi.prod.yaml"
    shutil.copy(STACKS_DIR / "Pulumi.prod.yaml", path)
    add_site(
        path,
        SiteSpec(
            name="east-clinic",
            source_cidrs=[NEW_SITE],
            ae_title="EAST_CLINIC_GW",
            listen_address="192.168.60.10",
            modalities=[ModalitySpec(name="us-east-1", ae_title="US_EAST_1")],
        ),
    )
    set_value(path, "orthgate:network.natGateways", "single")
    return path


@pytest.fixture(scope="module")
def plan_and_diff(no_cli, edited):
    # Module-scoped: three evaluations shared by the tests below.
    outputs = []
    for args in (["plan", "prod"], ["diff", "prod", "--against", str(edited)]):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main([*args, "--json"]) == 0
        outputs.append(json.loads(buffer.getvalue()))
    return outputs


def test_the_plan_lists_every_resource_by_component(plan_and_diff):
    plan, _ = plan_and_diff
    assert plan["offline"] is True
    assert {r["component"] for r in plan["resources"]} == COMPONENTS
    by_name = {r["name"]: r for r in plan["resources"]}
    # Production keeps its data: the index database under AWS's deletion protection, the
    # image bucket left in AWS by a destroy.
    [database] = [r for r in plan["resources"] if r["type"] == "aws:rds/instance:Instance"]
    assert database["deletionProtection"]
    assert database["component"].startswith("orthanc ")
    assert by_name["orthanc-storage"]["retainOnDelete"]
    assert len(by_name) == len(plan["resources"])  # names are unique within a stack


def test_the_plan_s_exposure_never_shows_plaintext_from_the_internet(plan_and_diff):
    plan, _ = plan_and_diff
    rows = plan["exposure"]
    plaintext = [r for r in rows if "plaintext" in r["service"]]
    assert plaintext
    assert all(r["path"].startswith(("site-to-site VPN", "site LAN (")) for r in plaintext)
    proxy = [r for r in rows if r["path"] == "Internet (DICOM proxy north-clinic)"]
    assert [r["sources"] for r in proxy] == [["198.51.100.32/29"]]


def test_the_plan_s_cost_comes_from_the_price_table(plan_and_diff):
    plan, _ = plan_and_diff
    cost, table = plan["cost"], price_table()
    assert cost["priceTableDate"] == table["date"]
    assert cost["region"] == "eu-central-1"
    assert set(cost["sources"]) <= set(table["sources"])
    priced = [line for line in cost["lines"] if line["monthlyUsd"] is not None]
    assert cost["totalMonthlyUsd"] == pytest.approx(
        sum(line["monthlyUsd"] for line in priced), abs=0.01
    )
    nat = [line for line in cost["lines"] if line["item"] == "NAT gateway"]
    hourly = table["regions"]["eu-central-1"]["prices"]["nat_gateway_hour"]["usd"]
    assert [line["unitPriceUsd"] for line in nat] == [hourly, hourly]


def test_the_diff_shows_the_new_site_s_resources_exposure_and_cost(plan_and_diff):
    plan, diff = plan_and_diff
    added = {r["name"] for r in diff["resources"]["added"]}
    assert any(name.startswith("proxy-east-clinic") for name in added)
    removed = diff["resources"]["removed"]
    assert {r["type"] for r in removed} >= {"aws:ec2/natGateway:NatGateway"}
    opened = [r for r in diff["exposure"]["opened"] if NEW_SITE in r["sources"]]
    assert [r["path"] for r in opened] == ["Internet (DICOM proxy east-clinic)"]
    # The only plaintext the edit opens is the new proxy's listener on its site's LAN.
    plain = [r for r in diff["exposure"]["opened"] if "plaintext" in r["service"]]
    assert [(r["path"], r["address"]) for r in plain] == [
        ("site LAN (east-clinic)", "192.168.60.10:104")
    ]
    # The rows that stay reach the same sources; only who may store through them changed.
    changed = {c["after"]["path"]: c for c in diff["exposure"]["changed"]}
    assert changed["Internet (TLS)"]["aeTitlesAdded"] == ["EAST_CLINIC_GW"]
    assert changed["Internet (TLS)"]["aeTitlesRemoved"] == []
    assert diff["exposure"]["closed"] == []
    # One NAT gateway fewer (its hours, its data, its public address); the site costs nothing
    # in the cloud.
    lines = plan["cost"]["lines"]
    nat_hours = [line for line in lines if line["item"] == "NAT gateway"]
    nat_data = [line for line in lines if line["item"] == "NAT gateway data processed"]
    eips = [line for line in lines if "EIP" in line["item"] and line["component"] == "network"]
    assert len(nat_hours) == len(nat_data) == len(eips) == 2
    saved = nat_hours[0]["monthlyUsd"] + nat_data[0]["monthlyUsd"] + eips[0]["monthlyUsd"]
    assert diff["cost"]["changeMonthlyUsd"] == pytest.approx(-saved, abs=0.01)
    assert diff["cost"]["components"].keys() == {"network"}
    # What has no price is in neither total, and the diff says so.
    assert "RDS gp3 storage" in diff["cost"]["unpricedBefore"]
    assert diff["cost"]["unpricedAfter"] == diff["cost"]["unpricedBefore"]


def dev_in(tmp_path, region: str | None):
    """The shipped dev stack, in another region or (None) without aws:region."""
    lines = (STACKS_DIR / "Pulumi.dev.yaml").read_text().splitlines()
    kept = [
        line.replace("eu-central-1", region) if region else line
        for line in lines
        if region or "aws:region" not in line
    ]
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_a_plan_without_aws_region_takes_the_environment_s_as_the_provider_would(
    tmp_path, no_cli, monkeypatch
):
    from orthgate.plan import plan_stack, render_plan

    stack = dev_in(tmp_path, None)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    plan = plan_stack(str(stack))
    assert (plan.region, plan.region_from) == ("us-east-1", "AWS_REGION")
    assert plan.cost.region == "us-east-1"
    assert plan.evaluation.outputs["region"] == "us-east-1"
    monkeypatch.delenv("AWS_REGION")
    assumed = plan_stack(str(stack))
    assert assumed.region_assumed
    assert "sets no aws:region, nor does AWS_REGION: this plan assumes" in render_plan(assumed)


def test_a_region_without_prices_still_gets_resources_and_exposure(tmp_path, no_cli, capsys):
    stack = dev_in(tmp_path, "ap-south-1")
    assert main(["plan", str(stack), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["region"] == "ap-south-1"
    assert plan["resources"]
    assert "no prices for 'ap-south-1'" in plan["cost"]["error"]
    assert main(["plan", str(stack), "--json", "--price-region", "us-east-1"]) == 0
    priced = json.loads(capsys.readouterr().out)
    assert priced["cost"]["region"] == "us-east-1"
    assert priced["cost"]["totalMonthlyUsd"] > 0


@pytest.mark.parametrize(
    ("region", "env", "said"),
    [
        ("Mars", None, "aws:region = 'Mars' is not an AWS region name"),
        (None, " us-east-1", "AWS_REGION = ' us-east-1' is not an AWS region name"),
    ],
)
def test_a_region_that_is_no_region_is_refused_in_one_line(
    tmp_path, no_cli, monkeypatch, capsys, region, env, said
):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    if env is None:
        monkeypatch.delenv("AWS_REGION", raising=False)
    else:
        monkeypatch.setenv("AWS_REGION", env)
    stack = dev_in(tmp_path, region)
    assert main(["plan", str(stack)]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err


def test_a_secret_region_is_named_as_what_the_plan_cannot_read(tmp_path, no_cli, capsys):
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(
        (STACKS_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace("aws:region: eu-central-1", "aws:region:\n    secure: AAABAKx")
    )
    assert main(["plan", str(stack)]) == 2
    assert "aws:region is not a plain region name" in capsys.readouterr().err
