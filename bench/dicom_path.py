#!/usr/bin/env python3
"""How fast images travel each DICOM path orthgate offers, measured on this machine.

Runs the dev stack's cloud side and one proxy site exactly as the program renders them
(tests/integration/site_path.py: Debian's Orthanc, nginx and dcmtk in network namespaces
made for the run) and times, with several interleaved repeats:

* ``storescp``: dcmtk's own receiver in the cloud's namespace, the limit of this machine;
* ``plain``: storescu straight to the cloud Orthanc's DICOM port, no TLS;
* ``tls``: storescu with the TLS modality's certificate through nginx's mutual TLS;
* ``proxy``: storescu to the site's proxy, whose forwarder sends over TLS to the cloud;
  timed from the first instance sent to the last one in the cloud's index;
* ``proxy-nagle``: the same with Nagle's algorithm left on in the modality (dcmtk's
  default without ``TCP_NODELAY=1``);
* ``small-studies``: 400 single-instance studies through the proxy, against 400
  instances in one study;
* ``backlog``: instances queued on the proxy while the cloud's link is down, then drained
  once it is back, against a direct TLS send of the same set.

Prints a table (min / median / max) and, with ``--json``, one JSON object on its last
line. Needs root (network namespaces) and the Debian packages of ``.ci/run``. Never a
test: figures vary with the machine; the README shows the latest ones and where they
came from.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.cloud_side import CloudSide, issued_client  # noqa: E402
from tests.integration.dicom_data import make_study  # noqa: E402
from tests.integration.netlab import Host, Orthanc, Process, require, storescu  # noqa: E402
from tests.integration.site_path import dev_with_site, site_path  # noqa: E402

TLS_MODALITY = "test-tls-modality"  # stacks/Pulumi.dev.yaml
TLS_MODALITY_AET = "ORTHGATE_TLS"
PLAIN_DICOM_PORT, PLAIN_HTTP_PORT = 4300, 8300
MODALITY_AET = "CT_SCANNER"  # the site accepts any modality
STORESCP_PORT = 11113

# Watches the cloud's index from inside its namespace: prints the monotonic time (one
# clock for every namespace) at which CountInstances first reached the target.
WATCHER = r"""
import base64, json, sys, time, urllib.request
url, user, password, target, timeout = sys.argv[1:6]
target, deadline = int(target), time.monotonic() + float(timeout)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
print("ready", flush=True)
while time.monotonic() < deadline:
    request = urllib.request.Request(url + "/statistics", headers={"Authorization": auth})
    try:
        count = json.load(opener.open(request, timeout=5))["CountInstances"]
    except OSError:
        count = -1
    if count >= target:
        print(f"reached {time.monotonic():.6f}", flush=True)
        sys.exit(0)
    time.sleep(0.01)
print("timeout", flush=True)
sys.exit(1)
"""


@dataclass
class DataSet:
    name: str
    path: Path
    instances: int
    bytes: int
    # In study order, as a modality sends (storescu +sd would take the directory's order).
    files: list[Path] = field(default_factory=list)


def make_dataset(
    root: Path, name: str, *, studies: int, per_study: int, rows: int, columns: int
) -> DataSet:
    records = make_study(
        root / name,
        studies=studies,
        instances_per_series=per_study,
        seed=f"bench-{name}",
        rows=rows,
        columns=columns,
    )
    size = sum(record.path.stat().st_size for record in records)
    files = [record.path for record in records]
    return DataSet(name=name, path=root / name, instances=len(records), bytes=size, files=files)


@dataclass
class Lab:
    cloud: CloudSide
    proxy: Any  # tests.integration.proxy_side.ProxySide
    modality: Host
    workdir: Path
    tls: Any = None
    storescp: Process | None = None
    plain: Orthanc | None = None


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])


def clock() -> float:
    return time.monotonic()


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy so far (every namespace shares the CPUs):
    the lab runs both ends of a path on the same cores."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CloudWatch:
    """Waits in the background for the cloud's index to hold ``target`` instances."""

    def __init__(self, where: Lab | Orthanc, target: int, timeout: float) -> None:
        orthanc = where.cloud.orthanc if isinstance(where, Lab) else where
        user, password = orthanc.auth or ("", "")
        argv = orthanc.host.command(
            [
                sys.executable,
                "-c",
                WATCHER,
                f"http://127.0.0.1:{orthanc.http_port}",
                user,
                password,
                str(target),
                str(timeout),
            ]
        )
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def reached(self) -> float:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        self.process.wait()
        if not line.startswith("reached "):
            raise RuntimeError(f"the cloud index never reached its target ({line!r})")
        return float(line.split()[1])


def send(
    lab: Lab,
    data: DataSet,
    peer: str,
    port: int,
    calling: str,
    called: str,
    *,
    tls: Any = None,
    nagle: bool = False,
) -> tuple[float, float]:
    """storescu of the whole data set in one association; (start, end) monotonic."""
    started = clock()
    if nagle:
        # lab processes get TCP_NODELAY=1; a modality left at dcmtk's default does not.
        binary = require("storescu")["storescu"]
        argv = [binary, "-aet", calling, "-aec", called, peer, str(port)]
        result = lab.modality.run([*argv, *map(str, data.files)], env={"TCP_NODELAY": "0"},
                                  timeout=600)  # fmt: skip
        rc, output = result.returncode, result.stdout + result.stderr
    else:
        rc, output = storescu(
            lab.modality,
            peer,
            port,
            data.files,
            calling,
            called,
            tls,
            timeout=600,
        )
    ended = clock()
    if rc != 0:
        raise RuntimeError(f"storescu to {peer}:{port} failed:\n{output[-2000:]}")
    return started, ended


def clear_cloud(lab: Lab, orthanc: Orthanc | None = None) -> None:
    orthanc = orthanc or lab.cloud.orthanc
    studies = orthanc.get_json("/studies")
    if studies:
        response = orthanc.request("POST", "/tools/bulk-delete", {"Resources": studies})
        assert response.status == 200, response.text
    assert orthanc.count_instances() == 0


def wait_proxy_empty(lab: Lab, timeout: float = 300) -> None:
    deadline = clock() + timeout
    while lab.proxy.orthanc.count_instances():
        if clock() > deadline:
            raise RuntimeError("the proxy never emptied")
        time.sleep(0.1)


# --- paths ----------------------------------------------------------------------------------


def run_storescp(lab: Lab, data: DataSet) -> dict[str, float]:
    started, ended = send(lab, data, lab.cloud.host.ip, STORESCP_PORT, "BENCH", "ANY")
    return {"seconds": ended - started}


def run_plain(lab: Lab, data: DataSet) -> dict[str, float]:
    # The cloud Orthanc takes a sender by its loopback address behind nginx (sender
    # identity), so plaintext goes to a plain Orthanc of the same version beside it.
    assert lab.plain is not None
    clear_cloud(lab, lab.plain)
    watch = CloudWatch(lab.plain, data.instances, 300)
    cpu = busy_cpu_seconds()
    started, _ = send(lab, data, lab.cloud.host.ip, PLAIN_DICOM_PORT, "BENCH", "PLAIN")
    return {"seconds": watch.reached() - started, "cpu_s": busy_cpu_seconds() - cpu}


def run_tls(lab: Lab, data: DataSet) -> dict[str, float]:
    clear_cloud(lab)
    watch = CloudWatch(lab, data.instances, 300)
    cpu = busy_cpu_seconds()
    started, _ = send(
        lab,
        data,
        lab.cloud.host.ip,
        lab.cloud.tls_port,
        TLS_MODALITY_AET,
        lab.cloud.ae_title,
        tls=lab.tls,
    )
    return {"seconds": watch.reached() - started, "cpu_s": busy_cpu_seconds() - cpu}


def run_proxy(lab: Lab, data: DataSet, *, nagle: bool = False) -> dict[str, float]:
    clear_cloud(lab)
    wait_proxy_empty(lab)
    watch = CloudWatch(lab, data.instances, 600)
    cpu = busy_cpu_seconds()
    started, sent = send(
        lab,
        data,
        lab.proxy.host.ip,
        lab.proxy.orthanc.dicom_port,
        MODALITY_AET,
        lab.proxy.ae_title,
        nagle=nagle,
    )
    reached = watch.reached()
    cpu = busy_cpu_seconds() - cpu
    wait_proxy_empty(lab)
    return {
        "seconds": reached - started,
        "first_leg": sent - started,
        "latency": reached - sent,
        "cpu_s": cpu,
    }


def run_backlog(lab: Lab, data: DataSet, outage: float) -> dict[str, float]:
    """The cloud's link goes down, the site keeps sending, the link comes back after
    ``outage`` seconds: how long until the whole backlog is in the cloud."""
    clear_cloud(lab)
    wait_proxy_empty(lab)
    lab.cloud.host.set_link(False)
    try:
        went_down = clock()
        send(lab, data, lab.proxy.host.ip, lab.proxy.orthanc.dicom_port, MODALITY_AET,
             lab.proxy.ae_title)  # fmt: skip
        time.sleep(max(0.0, outage - (clock() - went_down)))
        watch = CloudWatch(lab, data.instances, 900)
    finally:
        lab.cloud.host.set_link(True)
    restored = clock()
    reached = watch.reached()
    wait_proxy_empty(lab)
    return {"seconds": reached - restored}


# --- the run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def lab_for(workdir: Path) -> Iterator[Lab]:
    rendered = dev_with_site()
    with site_path(rendered, workdir) as path:
        lab = Lab(cloud=path["cloud"], proxy=path["proxy"], modality=path["modality"],
                  workdir=workdir)  # fmt: skip
        lab.tls = issued_client(rendered, workdir / "tls-modality", modality=TLS_MODALITY)
        out = workdir / "storescp"
        out.mkdir()
        binary = require("storescp")["storescp"]
        lab.storescp = lab.cloud.host.spawn(
            [binary, "-dhl", "-od", str(out), "-aet", "ANY", str(STORESCP_PORT)],
            label="storescp",
        )
        lab.cloud.host.wait_for_port(STORESCP_PORT, address=lab.cloud.host.ip)
        storage = workdir / "plain-storage"
        storage.mkdir()
        settings = json.loads(lab.cloud.orthanc.config_path.read_text())
        lab.plain = Orthanc(
            lab.cloud.host,
            {
                "Name": "plain",
                "DicomAet": "PLAIN",
                "DicomPort": PLAIN_DICOM_PORT,
                "HttpPort": PLAIN_HTTP_PORT,
                "StorageDirectory": str(storage),
                "IndexDirectory": str(storage),
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": True,
                "RegisteredUsers": {"bench": "bench"},
                "DicomAlwaysAllowStore": True,
                "StorageCompression": settings.get("StorageCompression", False),
                "OverwriteInstances": True,
                "Plugins": [],
            },
            name="plain-orthanc",
        ).start()
        yield lab


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()}, {cpus} cores, {model or 'unknown CPU'}"


def versions() -> dict[str, str]:
    found = {}
    for package in ("orthanc", "dcmtk", "nginx-core", "nginx"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            result = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", package],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0 and result.stdout:
                found[package] = result.stdout
    return found


def row(name: str, values: list[float], megabytes: float | None) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    rate = f"{megabytes / mid:8.1f}" if megabytes else " " * 8
    return f"  {name:<34} {low:8.2f} {mid:8.2f} {high:8.2f} {rate}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (5)")
    parser.add_argument("--backlog-repeats", type=int, default=2)
    parser.add_argument("--outage", type=float, default=40.0, help="seconds the link is down")
    parser.add_argument("--backlog-instances", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="a JSON object on the last line")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated: paths,nagle,small,backlog (default: all)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root: it creates network namespaces")
    chosen = set(filter(None, args.only.split(","))) or {"paths", "nagle", "small", "backlog"}

    samples = Samples()
    with tempfile.TemporaryDirectory(prefix="orthgate-bench-") as tmp:
        root = Path(tmp)
        print("writing data sets ...", file=sys.stderr)
        ct = make_dataset(root, "ct", studies=8, per_study=50, rows=360, columns=360)
        one = make_dataset(root, "one-study", studies=1, per_study=400, rows=64, columns=64)
        many = make_dataset(root, "many-studies", studies=400, per_study=1, rows=64, columns=64)
        per_study = max(1, args.backlog_instances // 20)
        backlog = make_dataset(root, "backlog", studies=20, per_study=per_study, rows=128,
                               columns=128)  # fmt: skip
        megabytes = ct.bytes / 1e6
        runs: list[tuple[str, Callable[[Lab], dict[str, float]]]] = []
        if "paths" in chosen:
            runs += [
                ("storescp", lambda lab: run_storescp(lab, ct)),
                ("plain", lambda lab: run_plain(lab, ct)),
                ("tls", lambda lab: run_tls(lab, ct)),
                ("proxy", lambda lab: run_proxy(lab, ct)),
            ]
        if "nagle" in chosen:
            runs.append(("proxy-nagle", lambda lab: run_proxy(lab, ct, nagle=True)))
        if "small" in chosen:
            runs += [
                ("small-one-study", lambda lab: run_proxy(lab, one)),
                ("small-many-studies", lambda lab: run_proxy(lab, many)),
            ]
        with lab_for(root / "lab") as lab:
            for repeat in range(args.repeats):
                for name, run in runs:
                    result = run(lab)
                    for key, value in result.items():
                        samples.add(name if key == "seconds" else f"{name}.{key}", value)
                    print(f"  repeat {repeat + 1} {name}: {result}", file=sys.stderr)
            if "backlog" in chosen:
                for repeat in range(args.backlog_repeats):
                    for name, run in (
                        ("backlog-direct-tls", lambda lab: run_tls(lab, backlog)),
                        ("backlog-drain", lambda lab: run_backlog(lab, backlog, args.outage)),
                    ):
                        result = run(lab)
                        samples.add(name, result["seconds"])
                        print(f"  repeat {repeat + 1} {name}: {result}", file=sys.stderr)

    print(f"DICOM paths on {machine()}")
    print(f"packages: {versions()}")
    print(f"CT set: {ct.instances} instances, {megabytes:.1f} MB, 8 studies, one association")
    print(f"  {'path':<34} {'min s':>8} {'median':>8} {'max s':>8} {'MB/s':>8}")
    for name, values in samples.values.items():
        rate = megabytes if name in ("storescp", "plain", "tls", "proxy", "proxy-nagle") else None
        print(row(name, values, rate))

    figures: dict[str, Any] = {"machine": machine(), "repeats": args.repeats}
    if "paths" in chosen:
        figures["proxy_vs_direct_tls_throughput"] = samples.median("tls") / samples.median("proxy")
        figures["tls_vs_plain_time"] = samples.median("tls") / samples.median("plain")
        figures["forward_latency_s"] = samples.median("proxy.latency")
        figures["proxy_s"] = samples.median("proxy")
        figures["tls_s"] = samples.median("tls")
        figures["plain_s"] = samples.median("plain")
        figures["storescp_s"] = samples.median("storescp")
        # Both ends share this machine's cores: the proxy path cannot be faster than its
        # CPU time spread over every core, whatever the forwarder does.
        cores = os.cpu_count() or 1
        figures["tls_cpu_s"] = samples.median("tls.cpu_s")
        figures["proxy_cpu_s"] = samples.median("proxy.cpu_s")
        figures["proxy_vs_direct_tls_cpu_ceiling"] = samples.median("tls") / (
            samples.median("proxy.cpu_s") / cores
        )
    if "nagle" in chosen:
        figures["nagle_first_leg_s"] = samples.median("proxy-nagle.first_leg")
        figures["nagle_proxy_s"] = samples.median("proxy-nagle")
    if "small" in chosen:
        figures["small_studies_vs_one_study_throughput"] = samples.median(
            "small-one-study"
        ) / samples.median("small-many-studies")
    if "backlog" in chosen:
        figures["backlog_drain_vs_direct"] = samples.median("backlog-drain") / samples.median(
            "backlog-direct-tls"
        )
        figures["backlog_outage_s"] = args.outage
    print("figures:")
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"  {key}: {shown}")
    if args.json:
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
        print(json.dumps(rounded, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
