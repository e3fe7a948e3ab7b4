"""nginx in front of Orthanc: mutual-TLS DICOM and plaintext DICOM (stream), HTTPS to the
REST API.

nginx shares Orthanc's network namespace (compose ``network_mode``) and connects to it on
loopback, from the address that stands for the sender (components.render.sender_identity).
The compose file publishes its listeners on the same port numbers on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orthgate.components.render.paths import (
    CLIENT_CA,
    REVOCATION_LIST,
    SENDER_MAPS,
    SERVER_CERT,
    SERVER_KEY,
    TLS_DIR_IN_CONTAINER,
)

TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"
# Forward-secret AEAD suites only for TLS 1.2 (OpenSSL syntax); TLS 1.3 suites all qualify.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL"


@dataclass(frozen=True)
class NginxSpec:
    dicom_tls_port: int
    https_port: int = 443
    plain_dicom_port: int = 4242
    orthanc_host: str = "127.0.0.1"
    orthanc_dicom_port: int = 4243
    orthanc_http_port: int = 8042
    tls_dir: str = TLS_DIR_IN_CONTAINER
    # pid file and temporary files: somewhere writable for whoever runs nginx.
    runtime_dir: str = "/tmp"  # noqa: S108 - the container's own /tmp, nobody else's
    load_modules: Sequence[str] = ()
    # A DICOM association can idle between studies; keep it at least as long as Orthanc.
    dicom_idle_timeout_seconds: int = 600


def _tls(spec: NginxSpec, indent: str) -> str:
    lines = [
        f"ssl_certificate {spec.tls_dir}/{SERVER_CERT};",
        f"ssl_certificate_key {spec.tls_dir}/{SERVER_KEY};",
        f"ssl_protocols {TLS_PROTOCOLS};",
        f"ssl_ciphers {TLS12_CIPHERS};",
        "ssl_prefer_server_ciphers on;",
        "ssl_session_tickets off;",
    ]
    return "\n".join(indent + line for line in lines)


def render_nginx_config(spec: NginxSpec) -> str:
    modules = "".join(f"load_module {path};\n" for path in spec.load_modules)
    run = spec.runtime_dir.rstrip("/")
    return f"""{modules}# Rendered by orthgate. TLS terminator for Orthanc.
worker_processes auto;
pid {run}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 1024;
}}

stream {{
    log_format dicom '$remote_addr [$time_local] $status sent=$bytes_sent '
                     'received=$bytes_received seconds=$session_time '
                     'client="$ssl_client_s_dn" serial=$ssl_client_serial '
                     'verify=$ssl_client_verify $ssl_protocol as=$orthgate_tls_source';
    log_format dicom_plain '$remote_addr [$time_local] $status sent=$bytes_sent '
                           'received=$bytes_received seconds=$session_time '
                           'plaintext as=$orthgate_plain_source';

    # Which loopback address stands for which sender: $orthgate_tls_source (by certificate)
    # and $orthgate_plain_source (by source range). Delivered with the TLS files, so a new
    # sender needs only a reload.
    include {spec.tls_dir}/{SENDER_MAPS};

    # DICOM over mutual TLS: only unrevoked certificates issued by the DICOM CA get through,
    # and Orthanc sees the address of the sender the certificate names.
    server {{
        listen {spec.dicom_tls_port} ssl;
{_tls(spec, " " * 8)}
        ssl_client_certificate {spec.tls_dir}/{CLIENT_CA};
        ssl_crl {spec.tls_dir}/{REVOCATION_LIST};
        ssl_verify_client on;
        ssl_verify_depth 1;
        # A revoked certificate must not come back through a resumed session.
        ssl_session_cache off;
        ssl_handshake_timeout 15s;
        access_log /dev/stdout dicom;
        proxy_bind $orthgate_tls_source;
        proxy_pass {spec.orthanc_host}:{spec.orthanc_dicom_port};
        proxy_connect_timeout 10s;
        proxy_timeout {spec.dicom_idle_timeout_seconds}s;
    }}

    # Plaintext DICOM for private paths (security groups decide who reaches it): Orthanc
    # sees the address that stands for the sender's source range.
    server {{
        listen {spec.plain_dicom_port};
        access_log /dev/stdout dicom_plain;
        proxy_bind $orthgate_plain_source;
        proxy_pass {spec.orthanc_host}:{spec.orthanc_dicom_port};
        proxy_connect_timeout 10s;
        proxy_timeout {spec.dicom_idle_timeout_seconds}s;
    }}
}}

http {{
    access_log /dev/stdout;
    server_tokens off;
    client_body_temp_path {run}/nginx-client-body;
    proxy_temp_path {run}/nginx-proxy;
    fastcgi_temp_path {run}/nginx-fastcgi;
    uwsgi_temp_path {run}/nginx-uwsgi;
    scgi_temp_path {run}/nginx-scgi;

    server {{
        listen {spec.https_port} ssl;
{_tls(spec, " " * 8)}
        ssl_session_cache shared:https:10m;
        add_header Strict-Transport-Security "max-age=31536000" always;
        add_header X-Content-Type-Options nosniff always;
        # Studies are uploaded through the REST API too: no size limit, no buffering.
        client_max_body_size 0;

        location / {{
            proxy_pass http://{spec.orthanc_host}:{spec.orthanc_http_port};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_request_buffering off;
            # Downloads (archives of whole studies) pass through memory buffers only: the
            # container's /tmp is a small tmpfs (components/render/container_hardening.py).
            proxy_max_temp_file_size 0;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""
