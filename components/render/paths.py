"""Where things live on the Orthanc host and inside its containers.

One place for every path, so the compose file, nginx, Orthanc and the boot scripts agree.
"""

from __future__ import annotations

# On the instance: configuration from user data (no secrets) ...
HOST_CONFIG_DIR = "/etc/orthgate"
COMPOSE_FILE = f"{HOST_CONFIG_DIR}/compose.yml"
NGINX_CONF = f"{HOST_CONFIG_DIR}/nginx.conf"
SECRETS_MANIFEST = f"{HOST_CONFIG_DIR}/secrets.json"
# The RDS CA bundle of the region, fetched by the boot script (a stack with PostgreSQL only).
RDS_CA_BUNDLE = f"{HOST_CONFIG_DIR}/rds-ca.pem"
LIBEXEC_DIR = "/usr/local/libexec/orthgate"
MATERIALIZE_SECRETS = f"{LIBEXEC_DIR}/materialize-secrets"
BOOT_SCRIPT = f"{LIBEXEC_DIR}/boot"
COMPOSE_PLUGIN = "/usr/local/lib/docker/cli-plugins/docker-compose"
SYSTEMD_UNIT_DIR = "/etc/systemd/system"
# ... and what is made from Secrets Manager at each start, on tmpfs, never on disk.
HOST_RUNTIME_DIR = "/run/orthgate"
HOST_TLS_DIR = f"{HOST_RUNTIME_DIR}/tls"
HOST_ORTHANC_CONFIG = f"{HOST_RUNTIME_DIR}/orthanc/orthanc.json"
# One marker per group whose onChange command has yet to succeed (see materialize_secrets).
HOST_PENDING_DIR = f"{HOST_RUNTIME_DIR}/pending"
# The data volume (storage: ebs).
HOST_DATA_DIR = "/data/orthanc"

# Inside the containers.
NGINX_CONF_IN_CONTAINER = "/etc/nginx/nginx.conf"
TLS_DIR_IN_CONTAINER = "/etc/nginx/tls"
ORTHANC_CONFIG_IN_CONTAINER = "/etc/orthanc/orthanc.json"
# Beside orthanc.json: the orthancteam image reads only /etc/orthanc/*.json as configuration.
RDS_CA_IN_CONTAINER = "/etc/orthanc/rds-ca.pem"
ORTHANC_DB_IN_CONTAINER = "/var/lib/orthanc/db"

SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CLIENT_CA = "dicom-ca.crt"
# The DICOM CA's revocation list, and which loopback address stands for which sender.
REVOCATION_LIST = "dicom-ca.crl"
SENDER_MAPS = "senders.conf"
