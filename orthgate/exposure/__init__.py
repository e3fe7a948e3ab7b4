"""The exposure table of the offline plan: every port a source can reach, over which path,
protected by what, and which AE titles may store there.

Read off what the program declared (security group ingress rules, the load balancers and
their listeners, public addresses and the route tables of each endpoint's subnets, the
Client VPN endpoint, the VPN connections, and the sender maps and Orthanc configuration it
writes into the hosts' secrets), with the validated ``Settings`` only for what a source
means (which private path a range belongs to, which proxy site an address is). A rule this
module cannot explain is shown as a row with path ``unexplained``, never dropped.

The package's modules: ``row`` (one row), ``declared`` (what the program declared, indexed),
``senders`` (who may store), ``paths`` (which way a source arrives), ``vpn_endpoints`` (what
faces the Internet without a security group), ``ingress`` (from rules to rows) and ``render``
(the text table).
"""

from orthgate.exposure.ingress import exposure_of
from orthgate.exposure.render import render_exposure
from orthgate.exposure.row import DICOM_PLAIN, DICOM_TLS, HTTPS, INTERNET, UNEXPLAINED, Exposure

__all__ = [
    "DICOM_PLAIN",
    "DICOM_TLS",
    "HTTPS",
    "INTERNET",
    "UNEXPLAINED",
    "Exposure",
    "exposure_of",
    "render_exposure",
]
