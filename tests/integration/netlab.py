"""A network lab for integration tests: hosts in Linux network namespaces on private L2 segments.

Every server a test starts runs inside namespaces this module creates, so nothing listens on the
machine's own interfaces and no traffic leaves the lab. Typical use::

    with Lab() as lab:
        cloud = lab.host("cloud")                  # 10.77.0.10 on segment "lan"
        modality = lab.host("modality")            # 10.77.0.11
        orthanc = Orthanc(cloud, config).start()
        rc, out = storescu(modality, cloud.ip, 4242, study_dir, "MODALITY", "ORTHANC")
        cloud.set_link(False)                      # the cloud is unreachable ...
        cloud.set_link(True)                       # ... and back

Layout: one "switch" namespace holds a Linux bridge per segment; each host namespace gets a veth
pair whose other end is a port of that bridge. ``set_link`` takes the bridge port down, so the
host keeps its addresses and routes and packets are silently dropped, as when a WAN link dies.

Each namespace gets its own ``/etc/netns/<ns>/{hosts,resolv.conf}`` (bind-mounted by
``ip netns exec``): every lab host name resolves from the hosts file and DNS fails at once,
so reverse lookups (dcmtk's storescp, Orthanc) never wait for an unreachable resolver.

Missing system binaries fail the test (never skip) with a hint to run ``make system-packages``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.certs import CA_KEY_USAGE

INSTALL_HINT = "run `make system-packages`"
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

# Command -> Debian package, for the failure message.
_PACKAGES = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "curl": "curl",
    "openssl": "openssl",
    "Orthanc": "orthanc",
    "storescu": "dcmtk",
    "echoscu": "dcmtk",
    "storescp": "dcmtk",
    "nginx": "nginx",
    "openvpn": "openvpn",
    "haproxy": "haproxy",
}
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Namespace names are nl<pid>-<lab>-<host>: unique per run and recognisable when stale.
_NAME_PREFIX = "nl"
_STALE_RE = re.compile(rf"^{_NAME_PREFIX}(\d+)-\d+-")
_HOST_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_LAB_COUNTER = itertools.count(1)
_ETC_NETNS = Path("/etc/netns")

MS_BIND = 4096
MS_REC = 16384

# Runs as the process inside its own mount namespace: bind the sources, then exec the command
# (same PID, so signals reach the real server). Sources are opened before any mount so a bind
# onto e.g. /tmp cannot hide a source that lives under /tmp.
_MOUNT_AND_EXEC = f"""
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
fds = [(os.open(src, os.O_PATH), dst) for src, dst in spec["mounts"]]
for fd, dst in fds:
    if libc.mount(f"/proc/self/fd/{{fd}}".encode(), dst.encode(), None, {MS_BIND | MS_REC}, None):
        sys.exit(f"netlab: bind mount onto {{dst}} failed: {{os.strerror(ctypes.get_errno())}}")
    os.close(fd)
os.execvp(spec["argv"][0], spec["argv"])
"""

# Exit 0 when a TCP connection succeeds within the budget (or, in "reach" mode, when the peer
# answers at all: a refused connection proves the address is reachable).
_TCP_CHECK = """
import socket, sys, time
address, port, budget, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + budget
while True:
    left = deadline - time.monotonic()
    try:
        socket.create_connection((address, port), timeout=max(0.05, left)).close()
        sys.exit(0)
    except ConnectionRefusedError:
        if mode == "reach":
            sys.exit(0)
    except OSError:
        if mode == "reach":
            sys.exit(1)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.05)
"""

_TLS_PROBE = """
import json, socket, ssl, sys
a = json.loads(sys.argv[1])
out = {"ok": False, "handshake": False, "version": None, "cipher": None, "error": None}
try:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # OpenSSL 3 only offers TLS 1.0/1.1 (and their SHA-1 signatures) at security level 0.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion[a["min"]]
    ctx.maximum_version = ssl.TLSVersion[a["max"]]
    if a["ca"]:
        ctx.load_verify_locations(a["ca"])
        ctx.check_hostname = a["check_hostname"]
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if a["cert"]:
        ctx.load_cert_chain(a["cert"], a["key"])
    with socket.create_connection((a["address"], a["port"]), timeout=a["timeout"]) as raw:
        with ctx.wrap_socket(raw, server_hostname=a["server_name"]) as tls:
            out.update(handshake=True, version=tls.version(), cipher=tls.cipher()[0])
            # A server may refuse the client only after the handshake: with an alert (TLS 1.3
            # checks the client certificate after the client has finished) or by just closing
            # (nginx stream with ssl_verify_client). Wait briefly to see either.
            tls.settimeout(a["settle"])
            try:
                data = tls.recv(1)
            except TimeoutError:
                out["ok"] = True
            else:
                out["ok"] = bool(data)
                if not data:
                    out["error"] = "the server closed the connection after the handshake"
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


# --- binaries ---------------------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    """The path of a system command, also looking in the sbin directories."""
    return shutil.which(name) or shutil.which(name, path=_SYSTEM_PATH)


def require(*names: str) -> dict[str, str]:
    """Paths of the given commands; a missing one fails the test (never skips)."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = find_binary(name)
        if path is None:
            missing.append(f"{name} (Debian package {_PACKAGES.get(name, name)})")
        else:
            found[name] = path
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}; {INSTALL_HINT}", pytrace=False)
    return found


def require_nginx_stream() -> Path:
    require("nginx")
    if not NGINX_STREAM_MODULE.is_file():
        pytest.fail(
            f"{NGINX_STREAM_MODULE} is missing (Debian package libnginx-mod-stream); "
            f"{INSTALL_HINT}",
            pytrace=False,
        )
    return NGINX_STREAM_MODULE


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require("ip")["ip"], *args], capture_output=True, text=True, timeout=30, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(netns: str) -> None:
    listing = _ip("netns", "pids", netns, check=False).stdout.split()
    for pid in (int(p) for p in listing if p.isdigit()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _delete_namespace(netns: str) -> None:
    _kill_namespace_processes(netns)
    _ip("netns", "delete", netns, check=False)
    shutil.rmtree(_ETC_NETNS / netns, ignore_errors=True)


def reap_stale_labs() -> list[str]:
    """Delete namespaces (and /etc/netns entries) left by netlab runs whose process is gone."""
    names = {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}
    if _ETC_NETNS.is_dir():
        names |= {entry.name for entry in _ETC_NETNS.iterdir()}
    removed: list[str] = []
    for name in sorted(names):
        match = _STALE_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(name)
            removed.append(name)
    return removed


def lab_namespaces() -> list[str]:
    """Every namespace name currently present that netlab created (any run)."""
    names = [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]
    return [name for name in names if _STALE_RE.match(name)]


# --- processes --------------------------------------------------------------------------------


class Process:
    """A long-running process inside a host, with its output in a log file."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path, label: str) -> None:
        self.popen = popen
        self.log_path = log_path
        self.label = label

    def __repr__(self) -> str:
        return f"Process({self.label!r}, pid={self.pid}, alive={self.alive})"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; its return code."""
        return self.popen.wait(timeout=timeout)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails if the process exits first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if not self.alive:
                # One last read: the line may have been written just before the exit.
                match = regex.search(self.log_text())
                if match:
                    return match
                raise AssertionError(
                    f"{self.label} exited ({self.returncode}) before logging "
                    f"{regex.pattern!r}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.label} did not log {regex.pattern!r} within {timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL without waiting (``stop`` then reaps it)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait until the PID has exited (SIGKILL after ``timeout``); the return code.

        Waiting matters: Orthanc keeps its SQLite index locked until the process is gone.
        """
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=30)


# --- lab, segments, hosts ---------------------------------------------------------------------


@dataclass
class Segment:
    """A private L2 segment: a bridge in the lab's switch namespace."""

    name: str
    bridge: str
    network: ipaddress.IPv4Network
    _used: set[ipaddress.IPv4Address] = field(default_factory=set)

    def allocate(self) -> str:
        """The next free address (from .10 up) with prefix length, e.g. ``10.77.0.10/24``."""
        for offset in range(10, self.network.num_addresses - 1):
            candidate = self.network.network_address + offset
            if candidate not in self._used:
                return f"{candidate}/{self.network.prefixlen}"
        raise RuntimeError(f"segment {self.name} has no free address left")


@dataclass(frozen=True)
class Interface:
    name: str  # inside the host namespace (eth0, eth1, ...)
    port: str  # the bridge port in the switch namespace
    segment: Segment
    address: ipaddress.IPv4Interface

    @property
    def ip(self) -> str:
        return str(self.address.ip)


@dataclass(frozen=True)
class HttpResponse:
    """``status`` 0 means no HTTP response at all (``error`` holds curl's message)."""

    status: int
    body: bytes
    error: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Lab:
    """Namespaces, segments and processes of one test; everything is removed on exit."""

    def __init__(self, subnet: str = "10.77.0.0/24", *, reap_stale: bool = True) -> None:
        if os.geteuid() != 0:
            pytest.fail("netlab needs root to create network namespaces", pytrace=False)
        require("ip", "unshare", "curl")
        if reap_stale:
            reap_stale_labs()
        self.id = f"{_NAME_PREFIX}{os.getpid()}-{next(_LAB_COUNTER)}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.id}-"))
        self.hosts: dict[str, Host] = {}
        self.segments: dict[str, Segment] = {}
        self.processes: list[Process] = []
        self._namespaces: list[str] = []
        self._counter = itertools.count(1)
        self._closed = False
        try:
            self.switch = self._add_namespace("sw")
            self.lan = self.segment("lan", subnet)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self._report_logs()
        self.close()

    def next_id(self) -> int:
        return next(self._counter)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment for lab processes: no proxies from the caller, TCP_NODELAY=1."""
        env = {
            "PATH": _SYSTEM_PATH,
            "LANG": "C.UTF-8",
            "HOME": os.environ.get("HOME", "/root"),
            # Without it DCMTK (dcmtk tools and Orthanc) waits on delayed ACKs per message.
            "TCP_NODELAY": "1",
        }
        env.update(extra or {})
        return env

    def segment(self, name: str, subnet: str | None = None) -> Segment:
        """The segment called ``name``, created on first use (``subnet`` then defaults to
        10.77.<n>.0/24)."""
        if name in self.segments:
            return self.segments[name]
        index = len(self.segments)
        network = ipaddress.IPv4Network(subnet or f"10.77.{index}.0/24")
        bridge = f"br{index}"
        _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
        _ip("-n", self.switch, "link", "set", bridge, "up")
        segment = Segment(name=name, bridge=bridge, network=network)
        self.segments[name] = segment
        return segment

    def host(
        self, name: str, address: str | None = None, segment: Segment | str | None = None
    ) -> Host:
        """A new host (namespace, lo up) attached to ``segment`` (default "lan") at
        ``address`` (default: the next free one)."""
        if not _HOST_NAME_RE.match(name):
            raise ValueError(f"host name {name!r}: use lowercase letters, digits and '-'")
        if name in self.hosts or name == "sw":
            raise ValueError(f"host {name!r} exists already in this lab")
        netns = self._add_namespace(name)
        host = Host(self, name, netns)
        self.hosts[name] = host
        host.attach(segment or self.lan, address)
        return host

    def hosts_text(self, extra: Mapping[str, str] | None = None) -> str:
        """The hosts file every namespace sees: localhost, this machine's name, lab hosts."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines.append(f"127.0.1.1\t{socket.gethostname()}")
        for host in self.hosts.values():
            lines.extend(f"{iface.ip}\t{host.name}" for iface in host.interfaces)
        for hostname, address in (extra or {}).items():
            lines.append(f"{address}\t{hostname}")
        return "\n".join(lines) + "\n"

    def refresh_hosts(self) -> None:
        # Written in place (same inode), so running processes see the update too.
        text = self.hosts_text()
        for netns in self._namespaces:
            (_ETC_NETNS / netns / "hosts").write_text(text)

    def close(self) -> None:
        """Stop every process, delete namespaces, /etc/netns entries and the work directory."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        # Nothing a lab ran is needed after it: kill, rather than wait seconds for each
        # Orthanc to shut down (a test that needs a clean stop stops it itself).
        for process in reversed(self.processes):
            process.kill()
        for process in reversed(self.processes):
            try:
                process.stop(timeout=15)
            except Exception as exc:  # keep cleaning up whatever happens
                errors.append(f"stopping {process.label}: {exc}")
        for netns in reversed(self._namespaces):
            try:
                _delete_namespace(netns)
            except Exception as exc:
                errors.append(f"deleting namespace {netns}: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        # Leave /etc/netns as found when it is empty (another lab may still use it: then the
        # rmdir fails, which is fine).
        with contextlib.suppress(OSError):
            _ETC_NETNS.rmdir()
        leftovers = [ns for ns in self._namespaces if (_ETC_NETNS / ns).exists()]
        leftovers += [ns for ns in lab_namespaces() if ns in self._namespaces]
        if leftovers:
            errors.append(f"still present after cleanup: {sorted(set(leftovers))}")
        if errors:
            raise RuntimeError("netlab cleanup: " + "; ".join(errors))

    def _add_namespace(self, name: str) -> str:
        netns = f"{self.id}-{name}"
        etc = _ETC_NETNS / netns
        # Recorded first so that a failure half-way is still cleaned up.
        self._namespaces.append(netns)
        etc.mkdir(parents=True, exist_ok=True)
        # 127.0.0.1:53 answers "port unreachable" at once: lookups fail fast instead of waiting.
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (etc / "hosts").write_text(self.hosts_text())
        _ip("netns", "add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        return netns

    def _report_logs(self) -> None:
        for process in self.processes:
            tail = process.log_tail(30)
            sys.stderr.write(f"--- netlab log of {process.label} ({process.log_path}) ---\n")
            sys.stderr.write(tail + "\n")


class Host:
    """One network namespace on the lab's segments."""

    def __init__(self, lab: Lab, name: str, netns: str) -> None:
        self.lab = lab
        self.name = name
        self.netns = netns
        self.interfaces: list[Interface] = []

    def __repr__(self) -> str:
        return (
            f"Host({self.name!r}, netns={self.netns!r}, ip={self.ip if self.interfaces else None})"
        )

    @property
    def ip(self) -> str:
        """The address of the first interface, without prefix length."""
        if not self.interfaces:
            raise RuntimeError(f"host {self.name} has no interface")
        return self.interfaces[0].ip

    def address_on(self, segment: Segment | str) -> str:
        seg = self._segment(segment)
        for iface in self.interfaces:
            if iface.segment is seg:
                return iface.ip
        raise KeyError(f"host {self.name} is not on segment {seg.name}")

    def attach(self, segment: Segment | str, address: str | None = None) -> Interface:
        """Another interface (eth<n>) on ``segment``; e.g. a proxy on "lan" and "wan"."""
        seg = self._segment(segment)
        iface_address = ipaddress.IPv4Interface(address or seg.allocate())
        if iface_address.ip in seg._used:
            raise ValueError(f"{iface_address.ip} is already used on segment {seg.name}")
        index = len(self.interfaces)
        iface = Interface(
            name=f"eth{index}",
            port=f"p{self.lab.next_id()}",  # unique within the switch namespace, <= 15 chars
            segment=seg,
            address=iface_address,
        )
        sw = self.lab.switch
        peer = ["peer", "name", iface.name, "netns", self.netns]
        _ip("-n", sw, "link", "add", iface.port, "type", "veth", *peer)
        _ip("-n", sw, "link", "set", iface.port, "master", seg.bridge, "up")
        _ip("-n", self.netns, "addr", "add", str(iface_address), "dev", iface.name)
        _ip("-n", self.netns, "link", "set", iface.name, "up")
        seg._used.add(iface_address.ip)
        self.interfaces.append(iface)
        self.lab.refresh_hosts()
        return iface

    def set_link(self, up: bool, segment: Segment | str | None = None) -> None:
        """Plug (``True``) or unplug the host's cable(s): the bridge port goes up or down.

        The host keeps its addresses and routes; while down, packets to and from it vanish
        (connections time out), as when a remote site becomes unreachable.
        """
        seg = None if segment is None else self._segment(segment)
        for iface in self.interfaces:
            if seg is None or iface.segment is seg:
                _ip("-n", self.lab.switch, "link", "set", iface.port, "up" if up else "down")

    def add_route(self, destination: str, via: str) -> None:
        """E.g. ``add_route("default", "10.77.0.1")`` or ``add_route("10.88.0.0/24", gw)``."""
        _ip("-n", self.netns, "route", "add", destination, "via", via)

    def kill_processes(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 10.0) -> int:
        """Send ``sig`` to every process in this host's namespace (SIGKILL: the machine
        crashed, nothing gets to clean up, child processes included) and, for SIGKILL, wait
        until they are gone. The number of processes signalled."""
        pids = [int(p) for p in _ip("netns", "pids", self.netns).stdout.split() if p.isdigit()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + timeout
            for process in self.lab.processes:
                if process.pid in pids:
                    process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            while _ip("netns", "pids", self.netns).stdout.split():
                if time.monotonic() > deadline:
                    raise AssertionError(f"processes in {self.name} survived {sig.name}")
                time.sleep(0.05)
        return len(pids)

    def enable_forwarding(self) -> None:
        """Let this host route between its interfaces (a gateway or VPN server)."""
        self.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])

    # --- commands ---

    def command(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """``argv`` prefixed so that it runs inside this host's namespace."""
        return [require("ip")["ip"], "netns", "exec", self.netns, *(os.fspath(a) for a in argv)]

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace to completion; ``check`` fails on a non-zero exit."""
        result = subprocess.run(
            self.command(argv),
            env=self.lab.env(env),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, argv))} in {self.name} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def spawn(
        self,
        argv: Sequence[str | os.PathLike[str]],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        binds: Mapping[Path, str] | None = None,
        extra_hosts: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> Process:
        """Start a long-running process in the namespace, stdout and stderr to ``log_path``.

        ``binds`` maps a directory (or file) of this machine onto an absolute path that must
        already exist; the mounts live in a private mount namespace of the process only.
        ``extra_hosts`` adds ``name -> address`` lines to the process's /etc/hosts.
        """
        argv = [os.fspath(a) for a in argv]
        label = label or Path(argv[0]).name
        number = self.lab.next_id()
        if log_path is None:
            log_path = self.lab.workdir / "logs" / f"{self.name}-{label}-{number}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        mounts = self._mounts(binds or {})
        if extra_hosts:
            hosts = self.lab.workdir / "hosts" / f"{self.name}-{label}-{number}"
            hosts.parent.mkdir(parents=True, exist_ok=True)
            hosts.write_text(self.lab.hosts_text(extra_hosts))
            mounts.insert(0, (str(hosts), "/etc/hosts"))
        if mounts:
            unshare = require("unshare")["unshare"]
            spec = json.dumps({"mounts": mounts, "argv": argv})
            argv = [
                unshare,
                "--mount",
                "--propagation",
                "private",
                sys.executable,
                "-c",
                _MOUNT_AND_EXEC,
                spec,
            ]
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                self.command(argv),
                env=self.lab.env(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches pytest, which then cleans up
            )
        process = Process(popen, log_path, f"{self.name}/{label}")
        self.lab.processes.append(process)
        return process

    # --- network checks ---

    def can_connect(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connection to address:port is accepted within ``timeout``."""
        return self._tcp_check(address, port, timeout, "connect")

    def reachable(self, address: str, timeout: float = 1.0) -> bool:
        """Whether ``address`` answers TCP at all (a refusal counts): IP reachability."""
        return self._tcp_check(address, 9, timeout, "reach")

    def wait_for_port(
        self,
        port: int,
        address: str = "127.0.0.1",
        timeout: float = 30.0,
        process: Process | None = None,
    ) -> None:
        """Wait until address:port accepts connections; fails early if ``process`` dies."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self._tcp_check(address, port, max(0.1, min(1.0, left)), "connect"):
                return
            if process is not None and not process.alive:
                raise AssertionError(
                    f"{process.label} exited ({process.returncode}) before {address}:{port} "
                    f"accepted connections:\n{process.log_tail()}"
                )
            if time.monotonic() > deadline:
                tail = f":\n{process.log_tail()}" if process else ""
                raise AssertionError(
                    f"{address}:{port} in {self.name} not open after {timeout}s{tail}"
                )

    def http(
        self,
        method: str,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        content_type: str | None = None,
        timeout: float = 30.0,
    ) -> HttpResponse:
        """An HTTP request with curl from inside the namespace; a dict/list body goes as JSON."""
        argv = [
            require("curl")["curl"],
            "-sS",
            "--noproxy",
            "*",
            "-X",
            method.upper(),
            "--max-time",
            str(timeout),
            "-w",
            "\n%{http_code}",
        ]
        if auth is not None:
            argv += ["-u", f"{auth[0]}:{auth[1]}"]
        data: bytes | None = None
        if body is not None:
            if isinstance(body, Mapping | list):
                data = json.dumps(body).encode()
                content_type = content_type or "application/json"
            else:
                data = body.encode() if isinstance(body, str) else body
            argv += ["--data-binary", "@-"]
        if content_type:
            argv += ["-H", f"Content-Type: {content_type}"]
        argv.append(url)
        result = subprocess.run(
            self.command(argv),
            env=self.lab.env(),
            input=data if data is not None else b"",
            capture_output=True,
            timeout=timeout + 10,
            check=False,
        )
        payload, _, status = result.stdout.rpartition(b"\n")
        code = int(status) if status.strip().isdigit() else 0
        error = result.stderr.decode(errors="replace").strip()
        return HttpResponse(status=code, body=payload if code else b"", error=error)

    def _tcp_check(self, address: str, port: int, timeout: float, mode: str) -> bool:
        argv = [sys.executable, "-c", _TCP_CHECK, address, str(port), str(timeout), mode]
        result = self.run(argv, timeout=timeout + 30, check=False)
        return result.returncode == 0

    def _segment(self, segment: Segment | str) -> Segment:
        if isinstance(segment, Segment):
            return segment
        return self.lab.segment(segment)

    def _mounts(self, binds: Mapping[Path, str]) -> list[tuple[str, str]]:
        mounts: list[tuple[str, str]] = []
        for source, target in binds.items():
            src = Path(source).resolve()
            dst = Path(target)
            if not dst.is_absolute():
                raise ValueError(f"bind target {target!r} must be absolute")
            # Binding onto a path that does not exist would mean creating it on the real system.
            # A target inside an earlier bind is looked up in that bind's source instead.
            seen = _as_seen_through(dst, mounts)
            if not seen.exists():
                raise ValueError(f"bind target {target} does not exist on this machine")
            if not src.exists():
                raise ValueError(f"bind source {src} does not exist")
            if src.is_dir() != seen.is_dir():
                raise ValueError(f"bind {src} -> {dst}: one is a directory, the other is not")
            mounts.append((str(src), str(dst)))
        return mounts


def _as_seen_through(path: Path, mounts: Sequence[tuple[str, str]]) -> Path:
    """Where ``path`` really is once the earlier mounts are in place (innermost wins)."""
    for source, target in reversed(mounts):
        if path == Path(target) or Path(target) in path.parents:
            return Path(source) / path.relative_to(target)
    return path


# --- Orthanc ----------------------------------------------------------------------------------


class Orthanc:
    """Debian's Orthanc in a host, from the caller's configuration (dict or JSON path).

    ``http_port``/``dicom_port``/``auth`` default to what the configuration says (Orthanc's
    defaults 8042/4242; the first RegisteredUsers entry when authentication is on).
    """

    def __init__(
        self,
        host: Host,
        config: Mapping[str, Any] | Path,
        *,
        name: str = "orthanc",
        auth: tuple[str, str] | None = None,
        http_port: int | None = None,
        dicom_port: int | None = None,
        binds: Mapping[Path, str] | None = None,
        extra_hosts: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        verbose: bool = False,
    ) -> None:
        self.binary = require("Orthanc")["Orthanc"]
        self.host = host
        self.name = name
        self.binds = binds
        self.extra_hosts = extra_hosts
        self.env = env
        self.verbose = verbose
        if isinstance(config, Path):
            self.config_path = config
            settings = self._read_settings(config)
        else:
            settings = dict(config)
            confdir = host.lab.workdir / f"{host.name}-{name}-config"
            confdir.mkdir(parents=True, exist_ok=True)
            self.config_path = confdir / "orthanc.json"
            self.config_path.write_text(json.dumps(settings, indent=2))
        self.http_port = http_port or int(settings.get("HttpPort", 8042))
        self.dicom_port = dicom_port or int(settings.get("DicomPort", 4242))
        users = settings.get("RegisteredUsers") or {}
        if auth is None and settings.get("AuthenticationEnabled", True) and users:
            auth = next(iter(users.items()))
        self.auth = auth
        self.process: Process | None = None

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _read_settings(path: Path) -> dict[str, Any]:
        # Only to learn ports and users; Orthanc itself also accepts comments in its JSON.
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        settings: dict[str, Any] = {}
        for file in files:
            with contextlib.suppress(ValueError):
                settings.update(json.loads(file.read_text()))
        return settings

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def start(self, timeout: float = 60.0) -> Orthanc:
        """Start Orthanc and wait until its REST API answers /system."""
        if self.alive:
            raise RuntimeError(f"{self.name} is running already")
        argv = [self.binary, *(["--verbose"] if self.verbose else []), str(self.config_path)]
        self.process = self.host.spawn(
            argv, env=self.env, binds=self.binds, extra_hosts=self.extra_hosts, label=self.name
        )
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", "/system", timeout=5)
            if response.status == 200:
                return self
            if not self.process.alive:
                raise AssertionError(
                    f"Orthanc {self.name} in {self.host.name} exited "
                    f"({self.process.returncode}) during start:\n{self.process.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Orthanc {self.name} REST API not ready after {timeout}s "
                    f"(last: {response.status} {response.error}):\n{self.process.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait until the process is gone (the SQLite index is free again)."""
        if self.process is None:
            return None
        return self.process.stop(timeout=timeout)

    def restart(self, timeout: float = 60.0) -> Orthanc:
        self.stop()
        return self.start(timeout=timeout)

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    # --- REST ---

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        *,
        auth: tuple[str, str] | bool | None = True,
        timeout: float = 30.0,
    ) -> HttpResponse:
        """A REST call from inside Orthanc's host; ``auth=True`` uses the configured user,
        ``False``/``None`` sends no credentials, a tuple other ones."""
        credentials = self.auth if auth is True else (auth or None)
        return self.host.http(method, self.url(path), auth=credentials, body=body, timeout=timeout)

    def get_json(self, path: str) -> Any:
        response = self.request("GET", path)
        if response.status != 200:
            raise AssertionError(f"GET {path}: {response.status} {response.error} {response.text}")
        return response.json()

    def instances(self) -> list[str]:
        return list(self.get_json("/instances"))

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        return dict(self.get_json(f"/instances/{instance_id}/simplified-tags"))

    def instance_file(self, instance_id: str) -> bytes:
        response = self.request("GET", f"/instances/{instance_id}/file")
        if response.status != 200:
            raise AssertionError(f"GET instance file {instance_id}: {response.status}")
        return response.body

    def statistics(self) -> dict[str, Any]:
        return dict(self.get_json("/statistics"))

    def count_instances(self) -> int:
        return int(self.statistics()["CountInstances"])

    def upload(self, dicom: bytes) -> dict[str, Any]:
        response = self.request("POST", "/instances", dicom)
        if response.status != 200:
            raise AssertionError(f"POST /instances: {response.status} {response.text}")
        return dict(response.json())

    def delete_instance(self, instance_id: str) -> None:
        response = self.request("DELETE", f"/instances/{instance_id}")
        if response.status != 200:
            raise AssertionError(f"DELETE instance {instance_id}: {response.status}")


# --- nginx ------------------------------------------------------------------------------------


class Nginx:
    """``nginx -g 'daemon off;' -c <conf>`` in a host, from the caller's configuration text.

    The helper sets ``pid`` itself (the configuration must not) and mounts private directories
    on /var/lib/nginx and /var/log/nginx, so nothing is written to the real ones.
    Relative paths in the configuration resolve against the helper's private directory.
    """

    def __init__(
        self,
        host: Host,
        config_text: str,
        *,
        name: str = "nginx",
        ports: Iterable[int] = (),
        binds: Mapping[Path, str] | None = None,
        extra_hosts: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = require("nginx")["nginx"]
        if "ngx_stream_module" in config_text:
            require_nginx_stream()
        self.host = host
        self.name = name
        self.ports = list(ports)
        self.extra_hosts = extra_hosts
        self.env = env
        self.dir = host.lab.workdir / f"{host.name}-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "nginx.conf"
        self.config_path.write_text(config_text)
        private: dict[Path, str] = {}
        for sub, target in (("lib", "/var/lib/nginx"), ("log", "/var/log/nginx")):
            if Path(target).is_dir():
                (self.dir / sub).mkdir(exist_ok=True)
                private[self.dir / sub] = target
        self.binds = {**private, **(binds or {})}
        self.process: Process | None = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def start(self, timeout: float = 15.0) -> Nginx:
        """Start nginx and wait until every port in ``ports`` accepts connections."""
        argv = [
            self.binary,
            "-p",
            f"{self.dir}/",
            "-c",
            str(self.config_path),
            "-g",
            f"daemon off; pid {self.dir}/nginx.pid;",
        ]
        self.process = self.host.spawn(
            argv, env=self.env, binds=self.binds, extra_hosts=self.extra_hosts, label=self.name
        )
        for port in self.ports:
            self.host.wait_for_port(port, timeout=timeout, process=self.process)
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        return self.process.stop(timeout=timeout)

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""


# --- dcmtk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsClient:
    """TLS settings of a dcmtk client.

    Without ``cert_file``/``key_file`` the client offers no certificate (``+tla``). Without
    ``ca_file`` the server's certificate is not checked (``-ic``); with it, it is required and
    verified (``+cf ca -rc``).
    """

    ca_file: Path | None
    cert_file: Path | None = None
    key_file: Path | None = None

    def dcmtk_args(self) -> list[str]:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TlsClient needs both cert_file and key_file, or neither")
        if self.cert_file is not None and self.key_file is not None:
            args = ["+tls", str(self.key_file), str(self.cert_file)]
        else:
            args = ["+tla"]
        if self.ca_file is not None:
            args += ["+cf", str(self.ca_file), "-rc"]
        else:
            args.append("-ic")
        return args


def _dcmtk(
    host: Host,
    tool: str,
    options: list[str],
    operands: list[str],
    timeout: float,
) -> tuple[int, str]:
    binary = require(tool)[tool]
    try:
        result = host.run([binary, *options, *operands], timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        raise AssertionError(
            f"{tool} in {host.name} did not finish in {timeout}s:\n{text}"
        ) from exc
    return result.returncode, result.stdout + result.stderr


@dataclass(frozen=True)
class DcmtkTimeouts:
    """dcmtk timeouts in seconds, so that an unreachable peer fails instead of hanging a test.

    ``connect`` is -to (TCP connect) and -ta (association), ``socket`` -ts (every network
    read; over TLS only this one bounds the wait for the association answer, -ta does not),
    ``dimse`` -td (each DIMSE message).
    """

    connect: int = 10
    socket: int = 15
    dimse: int = 30

    def args(self) -> list[str]:
        connect = str(self.connect)
        return ["-to", connect, "-ta", connect, "-ts", str(self.socket), "-td", str(self.dimse)]


def _network_options(
    calling_aet: str, called_aet: str, tls: TlsClient | None, timeouts: DcmtkTimeouts
) -> list[str]:
    options = ["-aet", calling_aet, "-aec", called_aet, *timeouts.args()]
    return options + (tls.dcmtk_args() if tls else [])


def echoscu(
    host: Host,
    peer: str,
    port: int,
    calling_aet: str = "NETLAB",
    called_aet: str = "ANY-SCP",
    tls: TlsClient | None = None,
    *,
    timeouts: DcmtkTimeouts | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 120.0,
) -> tuple[int, str]:
    """C-ECHO from ``host`` to peer:port; ``(returncode, stdout+stderr)``."""
    options = _network_options(calling_aet, called_aet, tls, timeouts or DcmtkTimeouts())
    return _dcmtk(host, "echoscu", [*options, *extra_args], [peer, str(port)], timeout)


def storescu(
    host: Host,
    peer: str,
    port: int,
    files_or_dir: Path | Sequence[Path],
    calling_aet: str = "NETLAB",
    called_aet: str = "ANY-SCP",
    tls: TlsClient | None = None,
    *,
    timeouts: DcmtkTimeouts | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 300.0,
) -> tuple[int, str]:
    """C-STORE files (directories are scanned recursively) in one association;
    ``(returncode, stdout+stderr)``. ``timeout`` bounds the whole run."""
    paths = [files_or_dir] if isinstance(files_or_dir, Path) else list(files_or_dir)
    options = _network_options(calling_aet, called_aet, tls, timeouts or DcmtkTimeouts())
    if any(Path(p).is_dir() for p in paths):
        options += ["+sd", "+r"]
    operands = [peer, str(port), *map(str, paths)]
    return _dcmtk(host, "storescu", [*options, *extra_args], operands, timeout)


# --- TLS probe --------------------------------------------------------------------------------

TLS_VERSIONS = ("TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3")


@dataclass(frozen=True)
class TlsProbeResult:
    """``handshake``: the client completed a handshake. ``ok``: and then the server neither
    sent an alert nor closed the connection within the settle time (the client is accepted).
    """

    ok: bool
    handshake: bool
    version: str | None  # as ssl reports it: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
    cipher: str | None
    error: str | None


def tls_probe(
    host: Host,
    address: str,
    port: int,
    *,
    min_version: str = "TLSv1",
    max_version: str = "TLSv1_3",
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    server_name: str | None = None,
    check_hostname: bool = False,
    timeout: float = 5.0,
    settle: float = 0.5,
) -> TlsProbeResult:
    """Try a TLS handshake from inside ``host`` offering only versions min..max.

    Versions are ``ssl.TLSVersion`` names (TLSv1, TLSv1_1, TLSv1_2, TLSv1_3); old versions
    are really offered (security level 0). With ``ca_file`` the server certificate is
    verified, the host name only if ``check_hostname``. After the handshake the probe waits
    ``settle`` seconds: an alert (TLS 1.3 refusing the client certificate) or a close
    (nginx refusing it) makes ``ok`` false although ``handshake`` is true.
    """
    for version in (min_version, max_version):
        if version not in TLS_VERSIONS:
            raise ValueError(f"unknown TLS version {version!r}; use one of {TLS_VERSIONS}")
    spec = {
        "address": address,
        "port": port,
        "min": min_version,
        "max": max_version,
        "ca": str(ca_file) if ca_file else None,
        "cert": str(cert_file) if cert_file else None,
        "key": str(key_file) if key_file else None,
        "server_name": server_name,
        "check_hostname": check_hostname,
        "timeout": timeout,
        "settle": settle,
    }
    argv = [sys.executable, "-c", _TLS_PROBE, json.dumps(spec)]
    result = host.run(argv, timeout=timeout + settle + 30, check=False)
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise AssertionError(f"TLS probe script failed: {result.stdout}{result.stderr}") from exc
    return TlsProbeResult(**data)


# --- test PKI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertKey:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    leaves: dict[str, CertKey]

    def __getitem__(self, name: str) -> CertKey:
        return self.leaves[name]


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),  # Orthanc cannot read an encrypted key
        )
    )
    path.chmod(0o600)


def make_pki(
    dest_dir: Path,
    *,
    servers: Sequence[str] = ("server",),
    clients: Sequence[str] = ("client",),
    peers: Sequence[str] = (),
    ca_name: str = "netlab test CA",
    days: int = 7,
) -> Pki:
    """A throw-away CA and RSA-2048 leaf certificates (PEM, unencrypted keys).

    ``servers`` get serverAuth, ``clients`` clientAuth, ``peers`` both (an Orthanc that
    receives and sends). A leaf's name is its CN and DNS SAN (or IP SAN if it is an address).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            CA_KEY_USAGE,
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_cert_path, ca_key_path = dest_dir / "ca.crt", dest_dir / "ca.key"
    ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, ca_key_path)

    usages = {name: [ExtendedKeyUsageOID.SERVER_AUTH] for name in servers}
    usages.update({name: [ExtendedKeyUsageOID.CLIENT_AUTH] for name in clients})
    usages.update(
        {name: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] for name in peers}
    )
    leaves: dict[str, CertKey] = {}
    for name, eku in usages.items():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            san = x509.DNSName(name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        leaf = CertKey(cert=dest_dir / f"{name}.crt", key=dest_dir / f"{name}.key")
        leaf.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, leaf.key)
        leaves[name] = leaf
    return Pki(ca_cert=ca_cert_path, ca_key=ca_key_path, leaves=leaves)


def stop_together(*servers: Any) -> None:
    """Stop servers (anything with ``stop()``) at the same time: each Orthanc takes seconds
    to shut down, one after the other they add up."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, len(servers))) as pool:
        for future in [pool.submit(server.stop) for server in servers]:
            future.result()


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.3) -> None:
    """Poll ``condition()`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
