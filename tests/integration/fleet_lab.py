"""Lab pieces for the Orthanc fleet: HAProxy as the Network Load Balancer, resending senders.

The stand-in follows what the program DECLARED, never constants of its own:
:func:`balancer_spec` reads one ``aws:lb/loadBalancer:LoadBalancer`` with its TCP listeners
and target groups out of a mock evaluation, and :func:`haproxy_config` turns that into a
haproxy.cfg (``mode tcp``, a frontend per listener port, a backend per target group with TCP
health checks on the traffic port at the declared interval and thresholds). What an NLB
does and HAProxy must be told:

- TCP pass-through: the bytes (mutual TLS included) reach nginx on the host untouched.
- A new target takes no traffic before ``healthyThreshold`` passed checks (HAProxy would
  start a dynamic server UP: :meth:`HAProxy.register` forces it DOWN first).
- A target marked unhealthy loses its connections (the NLB default,
  ``enableUnhealthyConnectionTermination``): ``on-marked-down shutdown-sessions``.
- A connection that fails is not retried on another target: the client sees it.
- Deregistration: no new connections, open ones keep going up to ``deregistrationDelay``,
  then are reset if ``connectionTermination`` (:meth:`HAProxy.deregister`).
- Idle connections are cut after the listener's ``tcpIdleTimeoutSeconds`` (350 s default).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tests.integration.netlab import DcmtkTimeouts, Host, Process, TlsClient, require, storescu

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
NLB_DEFAULT_IDLE_TIMEOUT = 350  # seconds, AWS's fixed default for TCP listeners


class DeclaredLike(Protocol):
    """What :class:`tests.harness.pulumi_run.Declared` offers and this module reads."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str | None


class FleetNotDeclared(LookupError):
    """The evaluation lacks the load balancer, its listeners or its target groups."""


@dataclass(frozen=True)
class HealthCheck:
    interval: int
    timeout: int
    healthy: int
    unhealthy: int
    port: int | None  # None: the traffic port
    protocol: str = "TCP"  # or HTTPS: a request over TLS (certificate not verified, as an NLB)
    path: str | None = None
    status_codes: tuple[int, ...] = ()  # HTTPS: the codes that mean healthy


@dataclass(frozen=True)
class Backend:
    """One target group."""

    name: str
    ref: str  # the ARN the listener forwards to (what an Auto Scaling group attaches)
    port: int
    health: HealthCheck
    deregistration_delay: int
    connection_termination: bool
    terminate_when_unhealthy: bool

    def server_args(self, address: str) -> str:
        """``<address>:<port>`` and the options of a server line (static or dynamic:
        dynamic servers ignore ``default-server``, so every line carries them all)."""
        h = self.health
        args = [f"{address}:{self.port}", "check", f"inter {h.interval}s"]
        args += [f"fall {h.unhealthy}", f"rise {h.healthy}"]
        if h.port is not None:
            args.append(f"port {h.port}")
        if h.protocol == "HTTPS":
            args.append("check-ssl verify none")
        if self.terminate_when_unhealthy:
            args.append("on-marked-down shutdown-sessions")
        return " ".join(args)


@dataclass(frozen=True)
class Frontend:
    """One listener."""

    name: str
    port: int
    backend: Backend
    idle_timeout: int


@dataclass(frozen=True)
class BalancerSpec:
    name: str
    frontends: tuple[Frontend, ...]

    @property
    def backends(self) -> tuple[Backend, ...]:
        unique: dict[str, Backend] = {}
        for frontend in self.frontends:
            unique.setdefault(frontend.backend.name, frontend.backend)
        return tuple(unique.values())

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(f.port for f in self.frontends)

    def frontend(self, port: int) -> Frontend:
        return next(f for f in self.frontends if f.port == port)


def _refs(resource: DeclaredLike) -> set[str]:
    # An ARN input may be the referenced resource's ``arn`` output or its id (for load
    # balancers and target groups AWS uses the ARN as the id).
    return {str(v) for v in (resource.outputs.get("arn"), resource.id) if v}


def _seconds(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: {value!r} is not a number of seconds")
    return int(value)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"the HAProxy stand-in cannot model this: {message}")


def balancer_spec(resources: Iterable[DeclaredLike], balancer_name: str) -> BalancerSpec:
    """The listeners and target groups of the load balancer named ``balancer_name``.

    Raises :class:`FleetNotDeclared` when it, its listeners or their target groups are not
    declared, and ValueError for what an NLB stand-in in TCP mode cannot model.
    """
    resources = list(resources)
    balancers = [r for r in resources if r.type == LOAD_BALANCER]
    balancer = next((r for r in balancers if r.name == balancer_name), None)
    if balancer is None:
        raise FleetNotDeclared(
            f"the program declares no {LOAD_BALANCER} named {balancer_name!r} "
            f"(declared load balancers: {sorted(r.name for r in balancers)})"
        )
    _require(
        balancer.inputs.get("loadBalancerType") in (None, "network"),
        f"{balancer_name} is a {balancer.inputs.get('loadBalancerType')} load balancer",
    )
    arns = _refs(balancer)
    listeners = [
        r
        for r in resources
        if r.type == LISTENER and str(r.inputs.get("loadBalancerArn")) in arns and arns
    ]
    if not listeners:
        raise FleetNotDeclared(f"the program declares no {LISTENER} on {balancer_name}")
    groups = {ref: r for r in resources if r.type == TARGET_GROUP for ref in _refs(r)}
    frontends = []
    for listener in sorted(listeners, key=lambda r: int(r.inputs["port"])):
        port = int(listener.inputs["port"])
        _require(listener.inputs.get("protocol") == "TCP", f"listener {listener.name} is not TCP")
        actions = listener.inputs.get("defaultActions") or []
        _require(
            len(actions) == 1 and actions[0].get("type", "forward") == "forward",
            f"listener {listener.name} does not forward to exactly one target group",
        )
        group = groups.get(str(actions[0].get("targetGroupArn")))
        if group is None:
            raise FleetNotDeclared(
                f"listener {listener.name} forwards to {actions[0].get('targetGroupArn')!r}, "
                f"which is no declared {TARGET_GROUP}"
            )
        inputs = group.inputs
        _require(inputs.get("protocol") == "TCP", f"target group {group.name} is not TCP")
        _require(
            inputs.get("targetType", "instance") == "instance",
            f"target group {group.name} has target type {inputs.get('targetType')}",
        )
        check = inputs.get("healthCheck") or {}
        protocol = check.get("protocol")
        _require(
            protocol in ("TCP", "HTTPS") and check.get("enabled", True) is not False,
            f"target group {group.name} has no TCP or HTTPS health check",
        )
        check_port = str(check.get("port", "traffic-port"))
        codes: tuple[int, ...] = ()
        if protocol == "HTTPS":
            matcher = str(check.get("matcher") or "200-399")
            _require(
                all(part.strip().isdigit() for part in matcher.split(",")),
                f"target group {group.name}: matcher {matcher!r} is not a list of codes",
            )
            codes = tuple(int(part) for part in matcher.split(","))
        states = inputs.get("targetHealthStates") or [{}]
        backend = Backend(
            name=group.name,
            ref=str(actions[0]["targetGroupArn"]),
            port=int(inputs["port"]),
            health=HealthCheck(
                interval=_seconds(check.get("interval"), f"{group.name} interval"),
                timeout=_seconds(check.get("timeout"), f"{group.name} timeout"),
                healthy=_seconds(check.get("healthyThreshold"), f"{group.name} healthy"),
                unhealthy=_seconds(check.get("unhealthyThreshold"), f"{group.name} unhealthy"),
                port=None if check_port == "traffic-port" else int(check_port),
                protocol=str(protocol),
                path=check.get("path") or "/",
                status_codes=codes,
            ),
            deregistration_delay=_seconds(
                inputs.get("deregistrationDelay", 300), f"{group.name} deregistrationDelay"
            ),
            connection_termination=bool(inputs.get("connectionTermination", False)),
            terminate_when_unhealthy=bool(
                states[0].get("enableUnhealthyConnectionTermination", True)
            ),
        )
        idle = listener.inputs.get("tcpIdleTimeoutSeconds") or NLB_DEFAULT_IDLE_TIMEOUT
        frontends.append(Frontend(listener.name, port, backend, int(idle)))
    return BalancerSpec(balancer_name, tuple(frontends))


def haproxy_config(
    spec: BalancerSpec,
    servers: Mapping[str, str],
    *,
    stats_socket: Path,
) -> str:
    """haproxy.cfg for ``spec`` with ``servers`` (name -> address) in every backend.

    Pure: the same spec and servers give the same text. Servers added later go through the
    runtime API (:class:`HAProxy`) with the same options.
    """
    lines = [
        "# Generated by tests/integration/fleet_lab.py from the declared load balancer "
        f"{spec.name}.",
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    log stdout format raw local0",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        # An NLB does not try another target when one fails to connect: the client sees it.
        "    retries 0",
        "",
    ]
    for frontend in spec.frontends:
        lines += [
            f"frontend {frontend.name}",
            f"    bind :{frontend.port}",
            f"    timeout client {frontend.idle_timeout}s",
            f"    default_backend {frontend.backend.name}",
            "",
        ]
    for backend in spec.backends:
        idle = max(f.idle_timeout for f in spec.frontends if f.backend.name == backend.name)
        if backend.health.protocol == "HTTPS":
            codes = "|".join(str(c) for c in backend.health.status_codes)
            check = [
                # Over TLS to the check port, as an NLB's HTTPS check; healthy on the codes.
                f"    option httpchk GET {backend.health.path}",
                f"    http-check expect rstatus ^({codes})$",
            ]
        else:
            # A TCP health check is a connection that opens within the check's timeout.
            check = ["    option tcp-check"]
        lines += [
            f"backend {backend.name}",
            "    balance roundrobin",
            *check,
            f"    timeout connect {backend.health.timeout}s",
            f"    timeout check {backend.health.timeout}s",
            f"    timeout server {idle}s",
        ]
        lines += [f"    server {name} {backend.server_args(ip)}" for name, ip in servers.items()]
        lines.append("")
    return "\n".join(lines)


# --- HAProxy, driven at run time as the Auto Scaling group drives the NLB ----------------------


class HAProxy:
    """HAProxy in a lab host, from :func:`haproxy_config`; targets change via its runtime API."""

    def __init__(self, host: Host, spec: BalancerSpec, servers: Mapping[str, str]) -> None:
        self.binary = require("haproxy")["haproxy"]
        self.host = host
        self.spec = spec
        self.dir = host.lab.workdir / f"{host.name}-haproxy"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "admin.sock"
        self.config_path = self.dir / "haproxy.cfg"
        self.config_path.write_text(haproxy_config(spec, servers, stats_socket=self.socket))
        self.servers = dict(servers)
        self.process: Process | None = None
        self._lock = threading.Lock()

    def check_config(self) -> None:
        result = self.host.run([self.binary, "-c", "-f", str(self.config_path)], check=False)
        assert result.returncode == 0, f"haproxy -c: {result.stdout}{result.stderr}"

    def start(self, timeout: float = 15.0) -> HAProxy:
        self.check_config()
        self.process = self.host.spawn(
            [self.binary, "-db", "-f", self.config_path], label="haproxy"
        )
        # Ready when every frontend is open; asked over the admin socket, because a probe
        # connection to a listener would be passed through to a host.
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                frontends = [r for r in self.stats() if r["svname"] == "FRONTEND"]
                if len(frontends) == len(self.spec.frontends) and all(
                    r["status"] == "OPEN" for r in frontends
                ):
                    return self
            if not self.process.alive or time.monotonic() > deadline:
                raise AssertionError(
                    f"haproxy did not open its listeners:\n{self.process.log_tail()}"
                )
            time.sleep(0.05)

    def command(self, line: str) -> str:
        with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _checked(self, line: str) -> None:
        answer = self.command(line).strip()
        if answer and answer not in ("New server registered.", "Server deleted."):
            raise AssertionError(f"haproxy: {line!r} answered {answer!r}")

    def stats(self) -> list[dict[str, str]]:
        """``show stat`` as one dict per row (frontends, servers, backends)."""
        text = self.command("show stat")
        header, *rows = [line for line in text.splitlines() if line.strip()]
        keys = header.lstrip("# ").split(",")
        return [dict(zip(keys, row.split(","), strict=False)) for row in rows]

    def server_rows(self, name: str) -> dict[str, dict[str, str]]:
        """backend -> the ``show stat`` row of server ``name`` in it."""
        backends = {b.name for b in self.spec.backends}
        return {
            row["pxname"]: row
            for row in self.stats()
            if row["svname"] == name and row["pxname"] in backends
        }

    def status(self, name: str) -> dict[str, str]:
        """backend -> status of server ``name`` ("UP", "DOWN 1/3", "MAINT", ...)."""
        return {backend: row["status"] for backend, row in self.server_rows(name).items()}

    def sessions(self, name: str) -> int:
        """Open connections to server ``name``, all backends together."""
        return sum(int(row["scur"] or 0) for row in self.server_rows(name).values())

    def healthy(self, name: str) -> bool:
        """UP in every backend, after passing its checks (not merely assumed up)."""
        rows = self.server_rows(name)
        return len(rows) == len(self.spec.backends) and all(
            row["status"] == "UP" and row["check_status"] in ("L4OK", "L7OK")
            for row in rows.values()
        )

    def register(self, name: str, address: str) -> None:
        """Add a target to every target group. Like an NLB's new target it starts unhealthy
        and takes traffic only after ``rise`` consecutive passed checks."""
        for backend in self.spec.backends:
            self._checked(f"add server {backend.name}/{name} {backend.server_args(address)}")
            # Leaving maintenance makes a server UP until its first check; force it DOWN so
            # that it has to pass ``rise`` checks like an NLB's "initial" target.
            answer = self.command(
                f"enable health {backend.name}/{name}; enable server {backend.name}/{name}; "
                f"set server {backend.name}/{name} health down"
            )
            assert not answer.strip(), f"haproxy: enabling {backend.name}/{name}: {answer}"
        self.servers[name] = address

    def wait_healthy(self, name: str, timeout: float) -> float:
        """Seconds until ``name`` is healthy in every target group."""
        started = time.monotonic()
        while not self.healthy(name):
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{name} not healthy after {timeout:.0f}s: {self.status(name)}"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_down(self, name: str, timeout: float) -> float:
        """Wait until ``name`` has failed its checks in every target group; when the last
        of them marked it down (monotonic, to the second: HAProxy's ``lastchg``)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.server_rows(name)
            if rows and all(row["status"].startswith("DOWN") for row in rows.values()):
                return time.monotonic() - min(int(row["lastchg"]) for row in rows.values())
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not down after {timeout:.0f}s: {self.status(name)}")
            time.sleep(0.2)

    def deregister(self, name: str, max_wait: float | None = None) -> dict[str, Any]:
        """Take a target out of every target group as an NLB deregisters it: no new
        connections, open ones may finish within the deregistration delay (``max_wait``
        caps the wait), then are reset if the group has connection termination, and the
        target is removed. Without termination an NLB leaves them open: so does this, and
        the target stays (draining) until they close.

        HAProxy's "drain" state, not "maint": a server in maintenance counts as down, and
        ``on-marked-down shutdown-sessions`` would cut the very associations a deregistered
        NLB target keeps."""
        open_at_start = self.sessions(name)
        for backend in self.spec.backends:
            self._checked(f"set server {backend.name}/{name} state drain")
        limit = min(b.deregistration_delay for b in self.spec.backends)
        limit = limit if max_wait is None else min(limit, max_wait)
        started = time.monotonic()
        while self.sessions(name) and time.monotonic() - started < limit:
            time.sleep(0.1)
        drained = time.monotonic() - started
        left = self.sessions(name)
        result = {"open_at_start": open_at_start, "reset": 0, "drained_s": round(drained, 1)}
        if left and not all(b.connection_termination for b in self.spec.backends):
            return {**result, "left_open": left}
        for backend in self.spec.backends:
            if left:
                self._checked(f"shutdown sessions server {backend.name}/{name}")
        deadline = time.monotonic() + 10
        while self.sessions(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        for backend in self.spec.backends:
            self._checked(f"set server {backend.name}/{name} state maint")
            self._checked(f"disable health {backend.name}/{name}")
            self._checked(f"del server {backend.name}/{name}")
        self.servers.pop(name, None)
        return {**result, "reset": left}

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""


class HealthWatch:
    """Samples HAProxy in the background: how many targets are healthy, over time."""

    def __init__(self, haproxy: HAProxy, period: float = 0.25) -> None:
        self.haproxy = haproxy
        self.period = period
        self.samples: list[tuple[float, int, list[str]]] = []  # (monotonic, healthy, names)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backends = {b.name for b in self.haproxy.spec.backends}
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                rows = [r for r in self.haproxy.stats() if r["pxname"] in backends]
                up: dict[str, int] = {}
                for row in rows:
                    if row["svname"] not in ("BACKEND", "FRONTEND") and row["status"] == "UP":
                        up[row["svname"]] = up.get(row["svname"], 0) + 1
                names = sorted(n for n, count in up.items() if count == len(backends))
                self.samples.append((time.monotonic(), len(names), names))
            self._stop.wait(self.period)

    def minimum(self, since: float = 0.0) -> int:
        return min((count for at, count, _ in self.samples if at >= since), default=0)


# --- senders that behave like modalities -------------------------------------------------------


class Batches:
    """Who sends when: study ``k`` of every sender starts once batch ``k`` is released, so
    that the scenario can put traffic exactly where it wants it (a new host passing its
    checks, an old one draining). A sender past its last batch uses the last one."""

    def __init__(self, count: int) -> None:
        self._events = [threading.Event() for _ in range(count)]
        self._next = 0
        self.released_at: list[float] = []  # monotonic

    def release(self) -> int:
        """Release the next batch; its index."""
        index = self._next
        self._events[index].set()
        self.released_at.append(time.monotonic())
        self._next += 1
        return index

    def release_all(self) -> None:
        while self._next < len(self._events):
            self.release()

    @property
    def left(self) -> int:
        return len(self._events) - self._next

    def wait(self, index: int, deadline: float) -> None:
        event = self._events[min(index, len(self._events) - 1)]
        event.wait(timeout=max(0.0, deadline - time.monotonic()))


_STORE_SUCCESS = re.compile(r"Received Store Response \(Success\)")


@dataclass
class Attempt:
    study: str
    started: float  # monotonic
    seconds: float
    acknowledged: int
    instances: int
    ok: bool
    error: str = ""


@dataclass
class ResendingSender:
    """A modality: one association per study; what an association did not get acknowledged
    (here: the whole study) is sent again after a short backoff, until ``deadline``.

    A study counts as delivered only when storescu exits 0 AND reported Success for every
    file. The cloud has OverwriteInstances true: a resent instance replaces its stored copy
    in place, never a second one.
    """

    name: str
    host: Host
    peer: str
    port: int
    calling_aet: str
    called_aet: str
    studies: Sequence[Path]
    tls: TlsClient | None = None
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    timeouts: DcmtkTimeouts = field(default_factory=lambda: DcmtkTimeouts(5, 10, 20))
    attempts: list[Attempt] = field(default_factory=list)
    delivered: list[Path] = field(default_factory=list)
    failure: str | None = None

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts if not a.ok)

    def send_study(self, study: Path, deadline: float) -> None:
        files = sorted(study.glob("*.dcm"))
        failures = 0
        while True:
            started = time.monotonic()
            try:
                rc, output = storescu(
                    self.host, self.peer, self.port, study, self.calling_aet, self.called_aet,
                    self.tls, timeouts=self.timeouts, extra_args=["-v"], timeout=120,
                )  # fmt: skip
            except AssertionError as exc:  # storescu itself hung past its budget
                rc, output = -1, str(exc)
            acknowledged = len(_STORE_SUCCESS.findall(output))
            ok = rc == 0 and acknowledged == len(files)
            error = "" if ok else _last_error(output, rc)
            self.attempts.append(
                Attempt(study.name, started, time.monotonic() - started, acknowledged,
                        len(files), ok, error)
            )  # fmt: skip
            if ok:
                self.delivered.append(study)
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {study.name} still not acknowledged at the deadline "
                    f"after {failures + 1} attempts; last: {error}"
                )
            time.sleep(self.backoff[min(failures, len(self.backoff) - 1)])
            failures += 1

    def run(self, deadline: float, pace: Callable[[int], None] | None = None) -> None:
        """Send every study in turn; ``pace(index)`` is called before each study."""
        try:
            for index, study in enumerate(self.studies):
                if pace is not None:
                    pace(index)
                self.send_study(study, deadline)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"

    def thread(
        self, deadline: float, pace: Callable[[int], None] | None = None
    ) -> threading.Thread:
        return threading.Thread(
            target=self.run, args=(deadline, pace), name=f"sender-{self.name}", daemon=True
        )


def _last_error(output: str, rc: int) -> str:
    errors = [line for line in output.splitlines() if line.startswith(("E:", "F:"))]
    return f"rc={rc} " + (" | ".join(errors[-3:]) if errors else output.strip()[-300:])
