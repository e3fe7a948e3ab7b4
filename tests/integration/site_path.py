"""The whole DICOM path of one proxy site, as the dev stack renders it: a modality host, the
site's proxy (its bundle) and the cloud side, each in a lab namespace of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.harness.pulumi_run import STACKS_DIR, Evaluation, evaluate, read_stack_file
from tests.integration.cloud_side import start_cloud_side
from tests.integration.netlab import Lab
from tests.integration.proxy_side import start_proxy_side

SITE = {
    "name": "site-a",
    "sourceCidrs": ["198.51.100.7/32"],
    "aeTitle": "SITEA_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}


def dev_with_site() -> Evaluation:
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:dicomProxies"] = [SITE]
    return evaluate(config, stack="dev")


@contextlib.contextmanager
def site_path(rendered: Evaluation, workdir: Path) -> Iterator[dict[str, Any]]:
    """A fresh cloud, proxy and modality; the lab kills what is left on exit."""
    with Lab() as lab:
        cloud_host = lab.host("cloud")
        proxy_host = lab.host("proxy")
        modality = lab.host("modality")
        cloud = start_cloud_side(cloud_host, rendered, workdir / "cloud")
        bundle = rendered.outputs["dicomProxyBundles"][SITE["name"]]
        proxy = start_proxy_side(proxy_host, bundle, workdir / "proxy", cloud_ip=cloud_host.ip)
        yield {"cloud": cloud, "proxy": proxy, "modality": modality, "lab": lab}
