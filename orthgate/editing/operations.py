"""The edits: sites, workstations and modalities added and removed, any key set or removed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orthgate import stack_file
from orthgate.editing.errors import EditError
from orthgate.editing.key_paths import format_key_path, has, parse_key_path, walk
from orthgate.editing.plain import (
    entry_names,
    index_of,
    list_at,
    list_in,
    listing,
    map_at,
    plain_listing,
    same,
)
from orthgate.editing.stack_edit import Edit, edit_stack_file

NS = "orthgate:"
PROXIES = NS + "dicomProxies"
ORTHANC = NS + "orthanc"
CLIENT_VPN = NS + "clientVpn"


@dataclass(frozen=True)
class ModalitySpec:
    """A sender: in ``orthgate:orthanc.modalities`` (all fields) or at a proxy site (name and
    AE title only)."""

    name: str
    ae_title: str
    connection: str | None = None  # None: the model's default (private)
    source_cidrs: Sequence[str] = ()


@dataclass(frozen=True)
class SiteSpec:
    """An entry of ``orthgate:dicomProxies``."""

    name: str
    source_cidrs: Sequence[str]
    ae_title: str
    listen_address: str
    modalities: Sequence[ModalitySpec] = ()
    accept_any_modality: bool = False
    listen_port: int | None = None


def add_site(path: Path, site: SiteSpec, *, write: bool = True) -> Edit:
    """Add a DICOM proxy site to ``orthgate:dicomProxies``."""

    def change(config: dict[str, Any]) -> str:
        sites = list_at(config, PROXIES, create=True)
        if site.name in entry_names(sites):
            raise EditError(f"site {site.name} already exists ({listing(sites, 'sites')})")
        entry: dict[str, Any] = {
            "name": site.name,
            "sourceCidrs": list(site.source_cidrs),
            "aeTitle": site.ae_title,
            "listenAddress": site.listen_address,
        }
        if site.listen_port is not None:
            entry["listenPort"] = site.listen_port
        if site.modalities:
            entry["modalities"] = [_proxy_modality(m) for m in site.modalities]
        if site.accept_any_modality:
            entry["acceptAnyModality"] = True
        sites.append(entry)
        return f"added site {site.name} to {PROXIES}"

    return edit_stack_file(path, change, write=write)


def remove_site(path: Path, name: str, *, write: bool = True) -> Edit:
    """Remove a site; revocations naming it stay (they still count, and stay valid)."""

    def change(config: dict[str, Any]) -> str:
        sites = list_at(config, PROXIES)
        sites.pop(index_of(sites, name, "site", PROXIES))
        return f"removed site {name} from {PROXIES}"

    return edit_stack_file(path, change, write=write)


def add_workstation(
    path: Path,
    name: str,
    *,
    enable: bool = False,
    client_cidr: str | None = None,
    write: bool = True,
) -> Edit:
    """Add a workstation to ``orthgate:clientVpn.workstations``.

    A workstation of a disabled Client VPN would get nothing, so that is refused unless
    ``enable`` (which sets ``enabled: true``, and ``clientCidr`` when given).
    """

    def change(config: dict[str, Any]) -> str:
        vpn = map_at(config, CLIENT_VPN, create=True)
        if vpn.get("enabled") is not True and not enable:
            raise EditError(
                f"{CLIENT_VPN} is not enabled, so workstation {name} would get no profile: "
                "enable it too (orthgate workstation add STACK NAME --enable --client-cidr "
                "CIDR, with a private range used nowhere else such as 192.168.0.0/22)"
            )
        if enable:
            vpn["enabled"] = True
        if client_cidr is not None:
            vpn["clientCidr"] = client_cidr
        workstations = vpn.setdefault("workstations", [])
        if not isinstance(workstations, list):
            raise EditError(f"{CLIENT_VPN}.workstations is not a list: fix it first")
        if name in workstations:
            raise EditError(f"workstation {name} already exists ({plain_listing(workstations)})")
        workstations.append(name)
        return f"added workstation {name} to {CLIENT_VPN}.workstations"

    return edit_stack_file(path, change, write=write)


def remove_workstation(path: Path, name: str, *, write: bool = True) -> Edit:
    """Remove a workstation; revocations naming it stay."""

    def change(config: dict[str, Any]) -> str:
        vpn = map_at(config, CLIENT_VPN)
        workstations = vpn.get("workstations")
        if not isinstance(workstations, list) or name not in workstations:
            shown = plain_listing(workstations if isinstance(workstations, list) else [])
            raise EditError(f"no workstation named {name} ({shown})")
        workstations.remove(name)
        return f"removed workstation {name} from {CLIENT_VPN}.workstations"

    return edit_stack_file(path, change, write=write)


def add_modality(
    path: Path, modality: ModalitySpec, *, site: str | None = None, write: bool = True
) -> Edit:
    """Add a sender to ``orthgate:orthanc.modalities``, or to proxy site ``site``."""

    def change(config: dict[str, Any]) -> str:
        if site is None:
            where = f"{ORTHANC}.modalities"
            modalities = list_in(map_at(config, ORTHANC, create=True), "modalities", where)
            entry = {"name": modality.name, "aeTitle": modality.ae_title}
            if modality.connection is not None:
                entry["connection"] = modality.connection
            if modality.source_cidrs:
                entry["sourceCidrs"] = list(modality.source_cidrs)
        else:
            sites = list_at(config, PROXIES)
            i = index_of(sites, site, "site", PROXIES)
            where = f"{PROXIES}[{i}].modalities"
            modalities = list_in(sites[i], "modalities", where)
            entry = _proxy_modality(modality)
        if modality.name in entry_names(modalities):
            raise EditError(f"modality {modality.name} already exists in {where}")
        modalities.append(entry)
        return f"added modality {modality.name} to {where}"

    return edit_stack_file(path, change, write=write)


def remove_modality(path: Path, name: str, *, site: str | None = None, write: bool = True) -> Edit:
    """Remove a sender; revocations naming it stay."""

    def change(config: dict[str, Any]) -> str:
        if site is None:
            where = f"{ORTHANC}.modalities"
            owner = map_at(config, ORTHANC)
        else:
            sites = list_at(config, PROXIES)
            i = index_of(sites, site, "site", PROXIES)
            where, owner = f"{PROXIES}[{i}].modalities", sites[i]
        modalities = owner.get("modalities")
        if not isinstance(modalities, list):
            raise EditError(f"no modality named {name}: {where} is not set")
        modalities.pop(index_of(modalities, name, "modality", where))
        return f"removed modality {name} from {where}"

    return edit_stack_file(path, change, write=write)


def set_value(path: Path, key_path: str, value: Any, *, write: bool = True) -> Edit:
    """Set one key (``clientVpn.clientCidr``, ``network.siteToSiteVpns[0].bgpAsn``,
    ``aws:region``), creating missing objects and lists on the way (an index one past the
    end appends)."""
    top, rest = parse_key_path(key_path)
    shown = format_key_path(top, rest)
    plain = stack_file.pulumi_value(value, shown)

    def change(config: dict[str, Any]) -> str:
        parent, last = walk(config, top, rest, create=True)
        if isinstance(parent, list) and last == len(parent):
            parent.append(plain)
        else:
            if has(parent, last) and same(parent[last], plain):
                raise EditError(f"{shown} is already {json.dumps(plain)}")
            parent[last] = plain
        return f"set {shown} to {json.dumps(plain)}"

    return edit_stack_file(path, change, write=write)


def unset_value(path: Path, key_path: str, *, write: bool = True) -> Edit:
    """Remove one key or list entry."""
    top, rest = parse_key_path(key_path)
    shown = format_key_path(top, rest)

    def change(config: dict[str, Any]) -> str:
        try:
            parent, last = walk(config, top, rest, create=False)
        except KeyError:
            raise EditError(f"{shown} is not set: nothing to remove") from None
        if not has(parent, last):
            raise EditError(f"{shown} is not set: nothing to remove")
        del parent[last]
        return f"removed {shown}"

    return edit_stack_file(path, change, write=write)


def _proxy_modality(modality: ModalitySpec) -> dict[str, Any]:
    if modality.connection is not None or modality.source_cidrs:
        raise EditError(
            f"modality {modality.name}: a proxy site's modalities have only a name and an AE "
            "title (the site's LAN is their path; connection and sourceCidrs are for "
            f"{ORTHANC}.modalities)"
        )
    return {"name": modality.name, "aeTitle": modality.ae_title}
