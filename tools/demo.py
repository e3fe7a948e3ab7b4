"""Rehearse the whole DICOM path on this machine, with no AWS account and no Pulumi CLI.

    make demo        (as root: it creates network namespaces)

1. Evaluates the dev stack offline, with a proxy site added, under the test harness's
   mocks: the cloud side's user data, secrets and certificates are the real renderings.
2. Starts, in network namespaces of its own, the cloud Orthanc behind nginx mutual TLS,
   the site's proxy Orthanc with its forwarder (from the rendered bundle), and a modality.
3. Sends a sample study with storescu and reports where each instance went and whether it
   arrived intact. Everything it started is stopped and removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.integration.cloud_side import start_cloud_side
from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import Lab, stop_together, storescu
from tests.integration.proxy_side import start_proxy_side

SITE = {
    "name": "demo-site",
    "sourceCidrs": ["198.51.100.7/32"],
    "aeTitle": "DEMO_GW",
    "listenAddress": "192.168.50.10",
    # The only modality the proxy accepts: the one the rehearsal sends from.
    "modalities": [{"name": "demo-ct", "aeTitle": "DEMO_CT"}],
}


def say(message: str) -> None:
    print(message, flush=True)


def rehearse(workdir: Path) -> bool:
    say("1/4 evaluating stacks/Pulumi.dev.yaml offline, with proxy site 'demo-site' ...")
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:dicomProxies"] = [SITE]
    rendered = evaluate(config, stack="dev")
    endpoint = rendered.outputs["dicomTlsEndpoint"]
    say(f"    cloud endpoint {endpoint['host']}:{endpoint['port']} AE {endpoint['aeTitle']}")

    with Lab() as lab:
        cloud_host, proxy_host = lab.host("cloud"), lab.host("proxy")
        modality = lab.host("modality")
        say("2/4 starting the cloud (nginx mutual TLS + Orthanc) and the site proxy ...")
        cloud = start_cloud_side(cloud_host, rendered, workdir / "cloud")
        proxy = start_proxy_side(
            proxy_host,
            rendered.outputs["dicomProxyBundles"]["demo-site"],
            workdir / "proxy",
            cloud_ip=cloud_host.ip,
        )
        try:
            records = make_study(workdir / "study", series_per_study=2, instances_per_series=5)
            target = f"{proxy_host.ip}:{proxy.orthanc.dicom_port} (AE {proxy.ae_title})"
            say(
                f"3/4 modality {modality.ip} sends {len(records)} instances, plaintext, to {target}"
            )
            rc, output = storescu(
                modality,
                proxy_host.ip,
                proxy.orthanc.dicom_port,
                workdir / "study",
                calling_aet="DEMO_CT",
                called_aet=proxy.ae_title,
            )
            if rc != 0:
                say(f"storescu failed:\n{output}")
                return False
            say(f"4/4 waiting for the forwarder to move them over DICOM TLS to {cloud_host.ip}")
            deadline = time.monotonic() + 120
            while cloud.orthanc.count_instances() < len(records) and time.monotonic() < deadline:
                time.sleep(0.5)
            while proxy.orthanc.count_instances() and time.monotonic() < deadline:
                time.sleep(0.5)
            by_sop = {
                cloud.orthanc.instance_tags(i)["SOPInstanceUID"]: i
                for i in cloud.orthanc.instances()
            }
            intact = 0
            say("")
            say(f"{'SOP Instance UID':<64} {'path':<32} result")
            for record in records:
                where = "modality -> proxy -> cloud (TLS)"
                if record.sop_uid not in by_sop:
                    say(f"{record.sop_uid:<64} {where:<32} MISSING")
                    continue
                sop, digest = pixel_digest(cloud.orthanc.instance_file(by_sop[record.sop_uid]))
                ok = (sop, digest) == (record.sop_uid, record.pixel_sha256)
                intact += ok
                say(f"{record.sop_uid:<64} {where:<32} {'intact' if ok else 'CORRUPTED'}")
            left = proxy.orthanc.count_instances()
            say("")
            say(f"{intact}/{len(records)} instances arrived intact; {left} left on the proxy.")
            return intact == len(records) and left == 0
        finally:
            stop_together(proxy, cloud)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="orthgate-demo-") as workdir:
        try:
            ok = rehearse(Path(workdir))
        except BaseException as error:  # the lab's checks raise pytest outcomes, too
            say(f"demo failed: {error}")
            return 1
    say("cleaned up: namespaces, processes and files removed.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
