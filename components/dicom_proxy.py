"""DicomProxyAccess: one hospital site's on-premises proxy and its way into the cloud.

Per site: a client certificate from the DICOM CA and the bundle the site runs (proxy Orthanc
and lossless forwarder). The stack hands the site's AE title (a sender) and its egress
addresses (admitted to the TLS DICOM port, nowhere else) to OrthancServer, which declares
every rule of its tier in one place, so a range moving between sites keeps its rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from orthgate.components.config.certificates import proxy_site_common_name, reissue_suffix
from orthgate.components.config.dicom_proxy import DicomProxySettings
from orthgate.components.crl import issued_serial
from orthgate.components.naming import Naming
from orthgate.components.pki import CertificateAuthority
from orthgate.components.render.orthanc_config import Sender
from orthgate.components.render.proxy_bundle import ProxyBundleSpec, render_proxy_bundle


@dataclass(frozen=True)
class DicomProxyAccessArgs:
    settings: DicomProxySettings
    dicom_ca: CertificateAuthority
    cloud_host: pulumi.Input[str]
    cloud_port: int
    cloud_ae_title: str
    orthanc_image: str
    certificate_validity_days: int
    naming: Naming
    # How many of the site's certificates were revoked (orthanc.revokedCertificates): each
    # one re-issues the site's key and certificate.
    certificate_generation: int = 0


class DicomProxyAccess(pulumi.ComponentResource):
    site: str
    ae_title: str
    source_cidrs: list[str]
    client_cert_pem: pulumi.Output[str]
    certificate_expires_at: pulumi.Output[str]
    bundle: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: DicomProxyAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:dicom:DicomProxyAccess", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.site = settings.name
        self.ae_title = settings.ae_title
        self.source_cidrs = [str(c) for c in settings.source_cidrs]

        # The site's identity towards the cloud: CN = site name, clientAuth only.
        certificate = args.dicom_ca.issue_client(
            f"{name}-client{reissue_suffix(args.certificate_generation)}",
            common_name=proxy_site_common_name(settings.name),
            validity_days=args.certificate_validity_days,
            opts=child,
        )
        self.client_cert_pem = certificate.cert_pem
        self.certificate_serial = certificate.cert_pem.apply(issued_serial)
        self.certificate_expires_at = certificate.expires_at

        password = random.RandomPassword(
            f"{name}-forwarder-password",
            length=32,
            special=False,  # it sits in JSON files and HTTP basic auth
            opts=child,
        )
        modalities = (
            None
            if settings.modalities is None
            else [Sender(m.name, m.ae_title) for m in settings.modalities]
        )
        self.bundle = pulumi.Output.secret(
            pulumi.Output.all(
                args.cloud_host,
                certificate.cert_pem,
                certificate.private_key_pem,
                args.dicom_ca.cert_pem,
                password.result,
            ).apply(
                lambda v: render_proxy_bundle(
                    ProxyBundleSpec(
                        site=settings.name,
                        ae_title=settings.ae_title,
                        cloud_host=v[0],
                        cloud_port=args.cloud_port,
                        cloud_ae_title=args.cloud_ae_title,
                        client_cert_pem=v[1],
                        client_key_pem=v[2],
                        ca_cert_pem=v[3],
                        forwarder_password=v[4],
                        orthanc_image=args.orthanc_image,
                        listen_port=settings.listen_port,
                        listen_address=str(settings.listen_address),
                        modalities=modalities,
                        backlog_warning_instances=settings.backlog_warning_instances,
                    )
                )
            )
        )
        self.register_outputs(
            {
                "site": self.site,
                "aeTitle": self.ae_title,
                "sourceCidrs": self.source_cidrs,
                "clientCertificate": self.client_cert_pem,
                "certificateExpiresAt": self.certificate_expires_at,
                "bundle": self.bundle,
            }
        )
