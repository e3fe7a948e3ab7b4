"""orthgate:dicomProxies rules the proxy's Orthanc and its host would otherwise break.

AE titles compared as Orthanc compares them, modality names that would replace the upstream,
ports the bundle uses itself, AE titles quoted in the site README's command lines, and a
``modalities`` key that is null or empty. Pure model and render calls: no Pulumi run.
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest
import yaml

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.render.orthanc_config import Sender
from orthgate.components.render.proxy_bundle import (
    CLOUD_MODALITY,
    FORWARDER_STATUS_PORT,
    PROXY_DICOM_PORT,
    PROXY_HOST_PORTS,
    PROXY_HTTP_PORT,
    RESERVED_MODALITY_NAMES,
    ProxyBundleSpec,
    echoscu_command,
    render_proxy_bundle,
    render_proxy_compose,
    render_proxy_orthanc_config,
    render_site_readme,
)
from tests.harness.pulumi_run import STACKS_DIR, read_stack_file

SITE = {
    "name": "site-a",
    "sourceCidrs": ["198.51.100.7/32"],
    "aeTitle": "SITEA_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}
OTHER = {
    "name": "site-b",
    "sourceCidrs": ["203.0.113.200/30"],
    "aeTitle": "SITEB_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}
CASE = "without regard to case"


def settings(proxies: list, orthanc: dict | None = None):
    return parse_settings(
        {
            "environment": "dev",
            "network": {"vpcCidr": "10.40.0.0/16"},
            "orthanc": orthanc or {},
            "dicomProxies": proxies,
        }
    )


def refused(proxies: list, orthanc: dict | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        settings(proxies, orthanc)
    return {p.path: str(p) for p in caught.value.problems}


def modalities(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "aeTitle": ae} for name, ae in pairs]


# --- 14: AE titles collide without regard to case ------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "orthanc", "path"),
    [
        pytest.param([{**SITE, "aeTitle": "orthanc"}], None, "[0].aeTitle", id="vs-cloud"),
        pytest.param(
            [{**SITE, "aeTitle": "Pacs"}], {"aeTitle": "PACS"}, "[0].aeTitle", id="vs-cloud-set"
        ),
        pytest.param(
            [{**SITE, "aeTitle": "ct_one"}],
            {"modalities": modalities(("ct-1", "CT_ONE"))},
            "[0].aeTitle",
            id="vs-cloud-modality",
        ),
        pytest.param([SITE, {**OTHER, "aeTitle": "sitea_gw"}], None, "[1].aeTitle", id="vs-proxy"),
        pytest.param(
            [
                {
                    **SITE,
                    "acceptAnyModality": False,
                    "modalities": modalities(("ct", "CT_A"), ("mr", "ct_a")),
                }
            ],
            None,
            "[0].modalities[1].aeTitle",
            id="modality-vs-modality",
        ),
        pytest.param(
            [{**SITE, "acceptAnyModality": False, "modalities": modalities(("ct", "SiteA_Gw"))}],
            None,
            "[0].modalities[0].aeTitle",
            id="modality-vs-own",
        ),
        pytest.param(
            [{**SITE, "acceptAnyModality": False, "modalities": modalities(("ct", "Orthanc"))}],
            None,
            "[0].modalities[0].aeTitle",
            id="modality-vs-upstream",
        ),
        pytest.param(
            [{**SITE, "acceptAnyModality": False, "modalities": modalities(("ct", "ORTHANC"))}],
            None,
            "[0].modalities[0].aeTitle",
            id="modality-vs-upstream-same-case",
        ),
    ],
)
def test_ae_titles_collide_without_regard_to_case(proxies, orthanc, path):
    problems = refused(proxies, orthanc)
    key = f"orthgate:dicomProxies{path}"
    assert key in problems, problems
    assert CASE in problems[key]


def test_the_case_rule_shows_the_value_as_written():
    problem = refused([SITE, {**OTHER, "aeTitle": "sitea_gw"}])["orthgate:dicomProxies[1].aeTitle"]
    assert problem.startswith('orthgate:dicomProxies[1].aeTitle = "sitea_gw": duplicates entry [0]')


def test_distinct_ae_titles_still_pass():
    parsed = settings(
        [
            SITE,
            {
                **OTHER,
                "acceptAnyModality": False,
                "modalities": modalities(("ct", "CT_B"), ("mr", "MR_B")),
            },
        ],
        {"modalities": modalities(("ct-1", "CT_ONE"))},
    )
    assert [p.ae_title for p in parsed.dicom_proxies] == ["SITEA_GW", "SITEB_GW"]


# --- 15: no modality may replace the upstream ----------------------------------------------


@pytest.mark.parametrize("name", sorted(RESERVED_MODALITY_NAMES))
def test_a_modality_named_like_the_upstream_is_refused(name):
    assert name == CLOUD_MODALITY  # the name the rendered proxy configuration uses
    problems = refused(
        [
            {
                **SITE,
                "acceptAnyModality": False,
                "modalities": modalities(("ct", "CT_A"), (name, "CLOUD_X")),
            }
        ]
    )
    problem = problems["orthgate:dicomProxies[0].modalities[1].name"]
    assert f'= "{name}"' in problem
    assert "upstream" in problem


def test_the_renderer_never_lets_a_modality_replace_the_upstream():
    spec = _spec(modalities=[Sender(CLOUD_MODALITY, "CT_A")])
    with pytest.raises(ValueError, match="reserved"):
        render_proxy_orthanc_config(spec)


def test_the_upstream_keeps_its_entry_next_to_the_modalities():
    config = render_proxy_orthanc_config(_spec(modalities=[Sender("ct", "CT_A")]))
    assert set(config["DicomModalities"]) == {CLOUD_MODALITY, "ct"}
    assert config["DicomModalities"][CLOUD_MODALITY]["UseDicomTls"] is True
    assert config["DicomModalities"][CLOUD_MODALITY]["AllowStore"] is False


# --- 16: listenPort is not a port the bundle uses itself -----------------------------------


def test_the_reserved_ports_are_the_ones_the_bundle_renders():
    spec = _spec()
    compose = render_proxy_compose(spec)
    forwarder = json.loads(render_proxy_bundle(spec)["forwarder/forwarder.json"])
    assert forwarder["status"]["port"] == FORWARDER_STATUS_PORT
    assert compose["services"]["forwarder"]["ports"] == [
        f"127.0.0.1:{FORWARDER_STATUS_PORT}:{FORWARDER_STATUS_PORT}"
    ]
    assert render_proxy_orthanc_config(spec)["HttpPort"] == PROXY_HTTP_PORT
    assert set(PROXY_HOST_PORTS) == {FORWARDER_STATUS_PORT, PROXY_HTTP_PORT}


@pytest.mark.parametrize(
    ("port", "what"),
    [(FORWARDER_STATUS_PORT, "forwarder's status"), (PROXY_HTTP_PORT, "REST API")],
)
def test_a_listen_port_the_bundle_uses_itself_is_refused(port, what):
    problem = refused([{**SITE, "listenPort": port}])["orthgate:dicomProxies[0].listenPort"]
    assert f"= {port}:" in problem
    assert what in problem


@pytest.mark.parametrize("port", [104, 11112, PROXY_DICOM_PORT])
def test_other_listen_ports_pass(port):
    [proxy] = settings([{**SITE, "listenPort": port}]).dicom_proxies
    assert proxy.listen_port == port
    assert render_proxy_compose(_spec(listen_port=port))["services"]["orthanc"]["ports"] == [
        f"192.168.50.10:{port}:{PROXY_DICOM_PORT}"
    ]


# --- issue 10: the plaintext listener on the LAN address only; who may store, said outright ---


@pytest.mark.parametrize(
    ("address", "why"),
    [("0.0.0.0", "RFC 1918"), ("203.0.113.5", "RFC 1918"), ("lan", "IPv4 address")],  # noqa: S104
)
def test_the_listen_address_is_a_private_lan_address(address, why):
    problem = refused([{**SITE, "listenAddress": address}])
    assert why in problem["orthgate:dicomProxies[0].listenAddress"]


def test_a_site_without_listen_address_is_refused():
    site = {k: v for k, v in SITE.items() if k != "listenAddress"}
    assert "is required" in refused([site])["orthgate:dicomProxies[0].listenAddress"]


def test_the_rendered_compose_never_publishes_on_every_interface():
    for empty in ("", "0.0.0.0"):  # noqa: S104 - what must be refused
        with pytest.raises(ValueError, match="LAN address"):
            render_proxy_compose(_spec(listen_address=empty))
    ports = render_proxy_compose(_spec())["services"]["orthanc"]["ports"]
    assert ports == [f"192.168.50.10:104:{PROXY_DICOM_PORT}"]


def test_any_modality_must_be_asked_for_and_cannot_be_combined_with_a_list():
    site = {k: v for k, v in SITE.items() if k != "acceptAnyModality"}
    problem = refused([site])["orthgate:dicomProxies[0].modalities"]
    assert "acceptAnyModality: true" in problem
    both = {**SITE, "modalities": modalities(("ct", "CT_A"))}
    assert "contradicts" in refused([both])["orthgate:dicomProxies[0].acceptAnyModality"]
    [proxy] = settings([SITE]).dicom_proxies
    assert proxy.accept_any_modality
    assert proxy.modalities is None


# --- 17: values in the site README's command lines are quoted ------------------------------


def _spec(**changes) -> ProxyBundleSpec:
    values = {
        "site": "site-a",
        "ae_title": "SITEA_GW",
        "cloud_host": "pacs.example.org",
        "cloud_port": 11112,
        "cloud_ae_title": "ORTHANC",
        "client_cert_pem": "cert",
        "client_key_pem": "key",
        "ca_cert_pem": "ca",
        "forwarder_password": "secret",
        "orthanc_image": "orthancteam/orthanc:25.12.3",
        "listen_address": "192.168.50.10",
        **changes,
    }
    return ProxyBundleSpec(**values)


def _code_lines(readme: str, section: str) -> list[str]:
    """The command lines of a README section's code block, continuation lines joined."""
    body = readme.split(f"## {section}\n", 1)[1].split("\n\n", 1)[0]
    code = "\n".join(line for line in body.splitlines() if line.startswith("    "))
    # A backslash before the newline continues the line, in the shell as here.
    return code.replace("\\\n", "").splitlines()


def _command_lines(readme: str, section: str) -> list[list[str]]:
    """Each command line split as the shell splits it, operators (; > | & ( )) apart."""
    commands = []
    for line in _code_lines(readme, section):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands.append(list(lexer))
    return commands


def test_the_echoscu_line_passes_the_ae_titles_as_single_words():
    spec = _spec(ae_title="X;id>pwned", cloud_ae_title="A B`id`")
    [argv] = _command_lines(render_site_readme(spec), "Check the link to the cloud")
    assert argv == [
        "echoscu",
        "-aet",
        "X;id>pwned",
        "-aec",
        "A B`id`",
        "+tls",
        "tls/site.key",
        "tls/site.crt",
        "+cf",
        "tls/dicom-ca.crt",
        "pacs.example.org",
        "11112",
    ]
    assert argv == echoscu_command(spec)


@pytest.mark.parametrize(
    "title", ["X;id>pwned", "-h", "A'B", 'A"B', "$(id)", "a|b&c", "x y", "`id`", "#x", "*"]
)
def test_every_command_line_of_the_site_readme_parses_as_intended(title):
    spec = _spec(ae_title=title, cloud_ae_title=title)
    readme = render_site_readme(spec)
    [echo] = _command_lines(readme, "Check the link to the cloud")
    assert echo == echoscu_command(spec)
    assert echo[2] == echo[4] == title
    status, logs = _command_lines(readme, "Watch the backlog")
    assert status == ["curl", "-s", f"http://127.0.0.1:{FORWARDER_STATUS_PORT}/status"]
    assert logs == ["docker", "compose", "logs", "-f", "forwarder"]


@pytest.mark.parametrize("title", ["X;id>pwned", "$(echo pwned)", "`echo pwned`", "*", "a b"])
def test_bash_runs_the_echoscu_line_with_the_intended_argv(title, tmp_path):
    # The shell itself reads the line, with echoscu swapped for a printer of its arguments:
    # nothing runs, nothing is redirected or expanded.
    (tmp_path / "some-file").write_text("")
    spec = _spec(ae_title=title, cloud_ae_title=title)
    [line] = _code_lines(render_site_readme(spec), "Check the link to the cloud")
    assert line.lstrip().startswith("echoscu ")
    script = "printf '%s\\0' " + line.lstrip().removeprefix("echoscu ")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=10,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.decode().split("\0")[:-1] == echoscu_command(spec)[1:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some-file"]


def test_an_ae_title_the_model_accepts_reaches_the_readme_quoted():
    # ';' and '>' are printable ASCII, so a valid AE title: only the quoting protects the line.
    [proxy] = settings([{**SITE, "aeTitle": "X;id>pwned"}]).dicom_proxies
    readme = render_site_readme(_spec(ae_title=proxy.ae_title))
    assert "-aet 'X;id>pwned'" in readme


def test_ae_titles_in_the_readme_text_keep_their_backticks():
    spec = _spec(ae_title="A`B", modalities=[Sender("ct", "`CT`")])
    readme = render_site_readme(spec)
    assert "called AE title ``A`B``." in readme
    assert "accepted: `` `CT` ``." in readme


# --- 19: modalities is a list with entries, or absent --------------------------------------


def test_any_modality_asked_for_lets_any_modality_store():
    [proxy] = settings([SITE]).dicom_proxies
    assert proxy.modalities is None
    assert render_proxy_orthanc_config(_spec())["DicomAlwaysAllowStore"] is True


def test_modalities_null_is_refused_with_both_choices():
    problem = refused([{**SITE, "acceptAnyModality": False, "modalities": None}])[
        "orthgate:dicomProxies[0].modalities"
    ]
    assert problem.startswith("orthgate:dicomProxies[0].modalities = null: is null")
    assert "commented out" in problem
    assert "list the modalities allowed to store" in problem
    assert "remove the key" in problem


def test_modalities_empty_is_refused_with_both_choices():
    problem = refused([{**SITE, "acceptAnyModality": False, "modalities": []}])[
        "orthgate:dicomProxies[0].modalities"
    ]
    assert problem.startswith("orthgate:dicomProxies[0].modalities = []: ")
    assert "no modality could store" in problem
    assert "remove the key" in problem


def test_a_modalities_key_with_every_entry_commented_out_is_refused():
    stack = yaml.safe_load(
        """
config:
  orthgate:dicomProxies:
    - name: site-a
      sourceCidrs: [198.51.100.7/32]
      aeTitle: SITEA_GW
      modalities:
        # - name: ct-1
        #   aeTitle: CT_ONE
"""
    )
    proxies = stack["config"]["orthgate:dicomProxies"]
    assert proxies[0]["modalities"] is None
    assert "orthgate:dicomProxies[0].modalities" in refused(proxies)


def test_listed_modalities_restrict_the_proxy():
    [proxy] = settings(
        [{**SITE, "acceptAnyModality": False, "modalities": modalities(("ct", "CT_A"))}]
    ).dicom_proxies
    assert [m.ae_title for m in proxy.modalities] == ["CT_A"]
    config = render_proxy_orthanc_config(_spec(modalities=[Sender("ct", "CT_A")]))
    assert config["DicomAlwaysAllowStore"] is False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass_the_proxy_rules(stack):
    config = read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")
    raw = {
        key.removeprefix("orthgate:"): v for key, v in config.items() if key.startswith("orthgate:")
    }
    parse_settings(raw)


def test_a_listen_address_in_dockers_own_networks_is_refused():
    problem = refused([{**SITE, "listenAddress": "172.17.0.1"}])
    assert "Docker" in problem["orthgate:dicomProxies[0].listenAddress"]
