"""The Orthanc host's role: Session Manager and nothing more of SSM, secrets read through the
VPC where an endpoint makes that possible, and the change from the managed policy on Day 2."""

from __future__ import annotations

import copy
import json
from fnmatch import fnmatchcase

import pulumi
import pulumi_aws as aws
import pytest

from orthgate.components.aws_context import AwsContext
from orthgate.components.iam_policies import SESSION_MANAGER_ACTIONS, orthanc_host_policy
from orthgate.components.orthanc import identity
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.update_plan import Deployment, plan_update

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
# What the Systems Manager User Guide's minimal Session Manager policy allows
# ("Create a custom IAM role for Session Manager").
SESSION_MANAGER = {
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}
PARAMETER_READS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


def with_endpoints(config: dict, endpoints: list[str]) -> dict:
    changed = copy.deepcopy(config)
    changed["orthgate:network"] = {**changed["orthgate:network"], "interfaceEndpoints": endpoints}
    return changed


def host_role_policies(evaluation) -> tuple[list[dict], list]:
    """The inline policy documents and the attachments of the Orthanc hosts' role."""
    role = evaluation.named("orthanc-role")
    inline = [
        json.loads(p.inputs["policy"])
        for p in evaluation.of_type(ROLE_POLICY)
        if p.inputs["role"] in (role.id, role.outputs["name"])
    ]
    attached = [
        a for a in evaluation.of_type(ATTACHMENT) if a.inputs["role"] == role.outputs["name"]
    ]
    return inline, attached


def allowed_actions(documents: list[dict]) -> list[str]:
    found = []
    for document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"]
            found += [actions] if isinstance(actions, str) else actions
    return found


def statements(evaluation, policy: str) -> dict[str, dict]:
    document = json.loads(evaluation.named(policy).inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.fixture(scope="module", params=["prod", "dev"])
def stack(request):
    return request.param, evaluate(shipped(request.param), stack=request.param)


# --- Session Manager, and no parameter reads ---------------------------------------------------


def test_the_host_role_allows_no_ssm_parameter_read(stack):
    _, evaluation = stack
    inline, attached = host_role_policies(evaluation)
    # No managed policy at all: AmazonSSMManagedInstanceCore allowed ssm:GetParameter(s)
    # on every parameter of the account.
    assert attached == []
    for action in allowed_actions(inline):
        for read in PARAMETER_READS:
            assert not fnmatchcase(read.lower(), action.lower()), (action, read)


def test_the_host_role_allows_exactly_the_session_manager_actions(stack):
    _, evaluation = stack
    inline, _ = host_role_policies(evaluation)
    ssm = {a for a in allowed_actions(inline) if a.split(":")[0] in ("ssm", "ssmmessages")}
    assert ssm == SESSION_MANAGER
    assert set(SESSION_MANAGER_ACTIONS) == SESSION_MANAGER
    # Nor Run Command, documents or associations, which the managed policy also allowed.
    assert not [a for a in allowed_actions(inline) if a.startswith("ec2messages:")]
    [statement] = statements(evaluation, "orthanc-session-manager").values()
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(SESSION_MANAGER)
    assert "Condition" not in statement


def test_the_session_manager_policy_is_on_the_instance_profiles_role(stack):
    _, evaluation = stack
    role = evaluation.named("orthanc-role")
    profile = evaluation.named("orthanc-profile")
    assert profile.inputs["role"] == role.outputs["name"]
    assert evaluation.named("orthanc-session-manager").inputs["role"] == role.id


# --- secret reads conditioned on the VPC where an endpoint carries them ----------------------


def test_without_a_secrets_manager_endpoint_secret_reads_stay_unconditioned():
    # dev ships without interface endpoints: the host reaches Secrets Manager over the
    # Internet, where aws:SourceVpc is absent, so a condition on it would lock the host out.
    evaluation = evaluate(shipped("dev"), stack="dev")
    read = statements(evaluation, "orthanc-host-policy")["ReadOwnSecrets"]
    assert "Condition" not in read
    other_endpoints = with_endpoints(shipped("dev"), ["kms", "logs"])
    evaluation = evaluate(other_endpoints, stack="dev")
    assert "Condition" not in statements(evaluation, "orthanc-host-policy")["ReadOwnSecrets"]


def test_the_conditioned_policy_waits_for_the_endpoint():
    """Before the endpoint and its private DNS exist, reads leave through NAT, where the
    condition refuses them: the policy may only change once the endpoint is there."""
    evaluation = evaluate(with_endpoints(shipped("dev"), ["secretsmanager"]), stack="dev")
    [endpoint] = [
        e
        for e in evaluation.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["serviceName"].endswith(".secretsmanager")
    ]
    policy = evaluation.named("orthanc-host-policy")
    assert endpoint.urn in policy.options.dependencies


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_with_a_secrets_manager_endpoint_secrets_are_readable_from_the_vpc_only(name):
    # The whole program: the network hands OrthancServer its endpoints.
    config = shipped(name)
    if name == "dev":
        config = with_endpoints(config, ["secretsmanager"])
    assert "secretsmanager" in config["orthgate:network"]["interfaceEndpoints"]
    evaluation = evaluate(config, stack=name)
    vpc = evaluation.one("aws:ec2/vpc:Vpc")
    endpoint = [
        e
        for e in evaluation.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["serviceName"].endswith(".secretsmanager")
    ]
    assert [e.inputs["vpcId"] for e in endpoint] == [vpc.id]
    assert endpoint[0].inputs["privateDnsEnabled"] is True  # the host's CLI calls reach it
    found = statements(evaluation, "orthanc-host-policy")
    assert found["ReadOwnSecrets"]["Condition"] == {"StringEquals": {"aws:SourceVpc": vpc.id}}
    # Only the secret reads: KMS is called by Secrets Manager and S3 on the host's behalf,
    # where aws:SourceVpc is not in the request.
    for sid, statement in found.items():
        if sid != "ReadOwnSecrets":
            assert "aws:SourceVpc" not in json.dumps(statement), sid


def test_the_host_policy_conditions_secret_reads_only_when_given_the_vpc():
    context = AwsContext("eu-central-1", "123456789012", "aws", "amazonaws.com")

    def read(**extra) -> dict:
        document = orthanc_host_policy(
            context,
            secret_arns=["arn:aws:secretsmanager:eu-central-1:123456789012:secret:s-abc"],
            key_arn="arn:aws:kms:eu-central-1:123456789012:key/k",
            log_group_arn="arn:aws:logs:eu-central-1:123456789012:log-group:g",
            bucket_arn=None,
            metrics_namespace="orthgate/test",
            **extra,
        )
        return {s["Sid"]: s for s in document["Statement"]}["ReadOwnSecrets"]

    assert "Condition" not in read()
    assert "Condition" not in read(secrets_from_vpc=None)
    assert read(secrets_from_vpc="vpc-0abc")["Condition"] == {
        "StringEquals": {"aws:SourceVpc": "vpc-0abc"}
    }


# --- Day 2: from the managed policy to the inline one ---------------------------------------


def shipped_ssm_core(name: str, role: aws.iam.Role, opts: pulumi.ResourceOptions) -> None:
    """What the shipped program declared in place of ``identity.session_manager_access``."""
    aws.iam.RolePolicyAttachment(
        f"{name}-ssm-core",
        role=role.name,
        policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        opts=opts,
    )


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_dropping_the_managed_policy_replaces_neither_role_nor_profile(name, monkeypatch):
    deployment = Deployment(stack=name)
    with monkeypatch.context() as shipped_program:
        shipped_program.setattr(identity, "session_manager_access", shipped_ssm_core)
        first = deployment.up(shipped(name))
    assert (
        first.named("orthanc-ssm-core")
        .inputs["policyArn"]
        .endswith(":policy/AmazonSSMManagedInstanceCore")
    )
    second = deployment.up(shipped(name))
    plan = plan_update(first, second)
    assert plan.collisions == []
    assert plan.blocked == []
    assert plan.replaced == []
    assert plan.summary() == {
        "create": [f"{ROLE_POLICY}::orthanc-session-manager"],
        "delete": [f"{ATTACHMENT}::orthanc-ssm-core"],
    }
    assert plan.step("orthanc-role", ROLE).op == "same"
    assert plan.step("orthanc-profile", PROFILE).op == "same"
    # The inline policy names the role the attachment named: no moment without sessions
    # (the engine creates it before it deletes the attachment).
    role = second.named("orthanc-role")
    assert second.named("orthanc-session-manager").inputs["role"] == role.id
    assert first.named("orthanc-ssm-core").inputs["role"] == role.outputs["name"]
