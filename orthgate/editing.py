"""Edit a stack file in place, keeping its comments and layout, and only if the result is valid.

Every edit is worked out on the configuration as the Pulumi CLI reads it (``read_stack_config``),
then carried over to the file's ruamel.yaml round-trip tree by changing only the keys and list
entries that differ. The new text is read back the way the CLI will read it: it must give
exactly the intended configuration, and that configuration must pass the program's own model
(``validate_config``). Otherwise the edit raises and the file keeps every byte; on success it
is replaced atomically.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from orthgate import stack_file
from orthgate.errors import OrthgateError
from orthgate.stack_file import STR, StackFileError, go_resolve, read_stack_config
from orthgate.validation import validate_config

NS = "orthgate:"
PROXIES = NS + "dicomProxies"
ORTHANC = NS + "orthanc"
CLIENT_VPN = NS + "clientVpn"

KeyPath = tuple[str, tuple[str | int, ...]]  # (top-level key with namespace, the rest)


class EditError(OrthgateError):
    """The edit cannot be made as asked (or would change nothing); the file is unchanged."""


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


@dataclass(frozen=True)
class Edit:
    """What an edit did (or, with ``write=False``, would do) to one stack file."""

    path: Path
    before: str
    after: str
    summary: str
    written: bool
    warnings: tuple[str, ...] = field(default=())

    def diff(self) -> str:
        """The change as a unified diff."""
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path} (now)",
                tofile=f"{self.path} (edited)",
            )
        )


Change = Callable[[dict[str, Any]], str]  # mutates the config map, returns the summary


def edit_stack_file(path: Path, change: Change, *, write: bool = True) -> Edit:
    """Apply ``change`` to the config map of ``path``; write only a valid result.

    Raises ``EditError``, ``StackFileError`` or ``ConfigError`` and leaves the file as it was.
    """
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    before = raw.decode("utf-8-sig")
    old = read_stack_config(before)
    new = copy.deepcopy(old)
    summary = change(new)
    if _same(old, new):
        raise EditError(f"nothing to change in {path}: {summary}")
    after, warnings = _render(before, old, new)
    if not _same(read_stack_config(after), new):
        raise EditError(
            f"could not write the edit to {path} so that the Pulumi CLI reads what was meant "
            "(anchors or merge keys?); edit the file by hand"
        )
    validate_config(new)
    if write:
        _write_atomically(path, (b"\xef\xbb\xbf" if bom else b"") + after.encode("utf-8"))
    return Edit(path, before, after, summary, write, warnings)


# --- the edits ------------------------------------------------------------------------------


def add_site(path: Path, site: SiteSpec, *, write: bool = True) -> Edit:
    """Add a DICOM proxy site to ``orthgate:dicomProxies``."""

    def change(config: dict[str, Any]) -> str:
        sites = _list_at(config, PROXIES, create=True)
        if site.name in _names(sites):
            raise EditError(f"site {site.name} already exists ({_listing(sites, 'sites')})")
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
        sites = _list_at(config, PROXIES)
        sites.pop(_index_of(sites, name, "site", PROXIES))
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
        vpn = _map_at(config, CLIENT_VPN, create=True)
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
            raise EditError(f"workstation {name} already exists ({_plain_listing(workstations)})")
        workstations.append(name)
        return f"added workstation {name} to {CLIENT_VPN}.workstations"

    return edit_stack_file(path, change, write=write)


def remove_workstation(path: Path, name: str, *, write: bool = True) -> Edit:
    """Remove a workstation; revocations naming it stay."""

    def change(config: dict[str, Any]) -> str:
        vpn = _map_at(config, CLIENT_VPN)
        workstations = vpn.get("workstations")
        if not isinstance(workstations, list) or name not in workstations:
            shown = _plain_listing(workstations if isinstance(workstations, list) else [])
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
            modalities = _list_in(_map_at(config, ORTHANC, create=True), "modalities", where)
            entry = {"name": modality.name, "aeTitle": modality.ae_title}
            if modality.connection is not None:
                entry["connection"] = modality.connection
            if modality.source_cidrs:
                entry["sourceCidrs"] = list(modality.source_cidrs)
        else:
            sites = _list_at(config, PROXIES)
            i = _index_of(sites, site, "site", PROXIES)
            where = f"{PROXIES}[{i}].modalities"
            modalities = _list_in(sites[i], "modalities", where)
            entry = _proxy_modality(modality)
        if modality.name in _names(modalities):
            raise EditError(f"modality {modality.name} already exists in {where}")
        modalities.append(entry)
        return f"added modality {modality.name} to {where}"

    return edit_stack_file(path, change, write=write)


def remove_modality(path: Path, name: str, *, site: str | None = None, write: bool = True) -> Edit:
    """Remove a sender; revocations naming it stay."""

    def change(config: dict[str, Any]) -> str:
        if site is None:
            where = f"{ORTHANC}.modalities"
            owner = _map_at(config, ORTHANC)
        else:
            sites = _list_at(config, PROXIES)
            i = _index_of(sites, site, "site", PROXIES)
            where, owner = f"{PROXIES}[{i}].modalities", sites[i]
        modalities = owner.get("modalities")
        if not isinstance(modalities, list):
            raise EditError(f"no modality named {name}: {where} is not set")
        modalities.pop(_index_of(modalities, name, "modality", where))
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
        parent, last = _walk(config, top, rest, create=True)
        if isinstance(parent, list) and last == len(parent):
            parent.append(plain)
        else:
            if _has(parent, last) and _same(parent[last], plain):
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
            parent, last = _walk(config, top, rest, create=False)
        except KeyError:
            raise EditError(f"{shown} is not set: nothing to remove") from None
        if not _has(parent, last):
            raise EditError(f"{shown} is not set: nothing to remove")
        del parent[last]
        return f"removed {shown}"

    return edit_stack_file(path, change, write=write)


# --- key paths ------------------------------------------------------------------------------

_HEAD = re.compile(r"[^.\[\]]+")
_PART = re.compile(r"\.([^.\[\]\"]+)|\[([0-9]+)\]|\[\"([^\"]*)\"\]")


def parse_key_path(text: str) -> KeyPath:
    """``clientVpn.clientCidr`` -> ``("orthgate:clientVpn", ("clientCidr",))``."""
    head = _HEAD.match(text)
    if not head:
        raise EditError(f"{text!r} is not a key path (e.g. clientVpn.clientCidr, aws:region)")
    try:
        top = stack_file._config_key(head.group())  # the CLI's own namespacing of keys
    except StackFileError as error:
        raise EditError(str(error)) from None
    rest: list[str | int] = []
    at = head.end()
    while at < len(text):
        part = _PART.match(text, at)
        if not part:
            raise EditError(
                f"{text!r}: cannot read the key path from {text[at:]!r} (write .key, [0] or "
                '["key.with.dots"])'
            )
        name, index, quoted = part.groups()
        rest.append(int(index) if index is not None else name if name is not None else quoted)
        at = part.end()
    return top, tuple(rest)


def format_key_path(top: str, rest: Sequence[str | int]) -> str:
    text = top
    for part in rest:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[^.\[\]\"]+", part):
            text += f".{part}"
        else:
            text += f'["{part}"]'
    return text


def _walk(
    config: dict[str, Any], top: str, rest: Sequence[str | int], *, create: bool
) -> tuple[Any, str | int]:
    """The container holding the key path's last part, and that part."""
    parent: Any = config
    key: str | int = top
    walked = top
    for part in rest:
        if not _has(parent, key):
            if not create:
                raise KeyError(walked)
            _put(parent, key, [] if isinstance(part, int) else {}, walked)
        child = parent[key]
        wanted = list if isinstance(part, int) else dict
        if not isinstance(child, wanted):
            kind = "a list" if wanted is list else "an object"
            raise EditError(f"{walked} is {json.dumps(child)}, not {kind}: cannot go into it")
        parent, key = child, part
        walked = format_key_path(walked, [part])
    if isinstance(parent, list) and isinstance(key, int) and key > len(parent):
        raise _past_the_end(walked, len(parent))
    return parent, key


def _past_the_end(where: str, length: int) -> EditError:
    return EditError(
        f"{where}: the list has {length} entr{'y' if length == 1 else 'ies'}; use an index "
        f"up to {length} (that one appends)"
    )


def _has(container: Any, key: str | int) -> bool:
    if isinstance(container, list):
        return isinstance(key, int) and key < len(container)
    return key in container


def _put(container: Any, key: str | int, value: Any, where: str) -> None:
    if isinstance(container, list):
        if key != len(container):
            raise _past_the_end(where, len(container))
        container.append(value)
    else:
        container[key] = value


# --- helpers on the plain configuration ----------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal as the program sees them (``True`` is not ``1``, ``1`` is not ``1.0``)."""
    return json.dumps(a) == json.dumps(b)


def _map_at(config: dict[str, Any], key: str, *, create: bool = False) -> dict[str, Any]:
    if key not in config and create:
        config[key] = {}
    value = config.get(key)
    if not isinstance(value, dict):
        state = "is not set" if value is None else "is not an object"
        raise EditError(f"{key} {state}: fix it first (orthgate validate shows what is wrong)")
    return value


def _list_at(config: dict[str, Any], key: str, *, create: bool = False) -> list[Any]:
    if key not in config and create:
        config[key] = []
    return _list_in(config, key, key, create=False)


def _list_in(owner: dict[str, Any], key: str, where: str, *, create: bool = True) -> list[Any]:
    if key not in owner and create:
        owner[key] = []
    value = owner.get(key, [])
    if not isinstance(value, list):
        raise EditError(f"{where} is not a list: fix it first (orthgate validate shows how)")
    return value


def _names(entries: list[Any]) -> list[str]:
    return [e.get("name") for e in entries if isinstance(e, dict)]


def _listing(entries: list[Any], what: str) -> str:
    return _plain_listing(_names(entries), what)


def _plain_listing(names: list[Any], what: str = "workstations") -> str:
    return f"{what}: {', '.join(map(str, names))}" if names else f"no {what} yet"


def _index_of(entries: list[Any], name: str, what: str, where: str) -> int:
    names = _names(entries)
    if name not in names:
        raise EditError(f"no {what} named {name} in {where} ({_plain_listing(names, what + 's')})")
    return names.index(name)


def _proxy_modality(modality: ModalitySpec) -> dict[str, Any]:
    if modality.connection is not None or modality.source_cidrs:
        raise EditError(
            f"modality {modality.name}: a proxy site's modalities have only a name and an AE "
            "title (the site's LAN is their path; connection and sourceCidrs are for "
            f"{ORTHANC}.modalities)"
        )
    return {"name": modality.name, "aeTitle": modality.ae_title}


# --- carrying the change over to the file's round-trip tree --------------------------------


def _yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long flow list or string
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return yaml


def _render(before: str, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The file's text with ``new`` in place of ``old``, all else kept."""
    try:
        document = _yaml().load(before)
        yaml = _yaml(_indentation(document, before))
        document = yaml.load(before)
    except YAMLError as error:
        raise StackFileError(f"cannot edit this file: {error}") from None
    warnings = []
    if _dump(yaml, document, before) != before:
        warnings.append(
            "this file's layout is not one ruamel.yaml reproduces exactly (mixed indentation?): "
            "lines other than the edited ones may be re-indented; check the diff"
        )
    if document is None:
        document = CommentedMap()
    if not isinstance(document.get("config"), CommentedMap):
        document["config"] = CommentedMap()
    _sync_map(document["config"], old, new, (document, "config"), stack_file._config_key)
    return _dump(yaml, document, before), tuple(warnings)


def _dump(yaml: YAML, document: Any, before: str) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    if not before.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    if "\r\n" in before:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text


def _indentation(document: Any, text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file's first nested block
    mapping and first block sequence under a key have them; ruamel.yaml's defaults else."""
    lines = text.splitlines()
    mapping = sequence = offset = None
    stack = [document]
    while stack and (mapping is None or sequence is None):
        node = stack.pop(0)
        if not isinstance(node, CommentedMap):
            if isinstance(node, CommentedSeq):
                stack.extend(node)
            continue
        for key, value in node.items():
            key_col = node.lc.key(key)[1]
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                mapping = mapping if mapping is not None else value.lc.col - key_col
            if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
                line, col = value.lc.item(0)
                dash = lines[line].rfind("-", 0, col)
                if sequence is None and dash >= key_col:
                    sequence, offset = col - key_col, dash - key_col
            stack.append(value)
    mapping = mapping if mapping and mapping > 0 else 2
    if sequence is None or sequence <= (offset or 0):
        sequence, offset = mapping + 2, mapping
    return mapping, sequence, offset or 0


def _node(value: Any) -> Any:
    """A new value as the round-trip tree should write it: lists of scalars in flow style
    (as the shipped files write them), and any text yaml.v3 would read as something else
    quoted."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[_scalar(key)] = _node(item)
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_node(item) for item in value)
        if value and not any(isinstance(item, dict | list) for item in value):
            seq.fa.set_flow_style()
        return seq
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and go_resolve(value)[0] != STR:
        return DoubleQuotedScalarString(value)
    return value


def _sync(container: Any, key: Any, old: Any, new: Any) -> None:
    """Make ``container[key]`` hold ``new`` (it holds ``old``), changing as little as possible."""
    child = container[key]
    if isinstance(old, dict) and isinstance(new, dict) and isinstance(child, CommentedMap):
        _sync_map(child, old, new, (container, key))
    elif old and new and isinstance(new, list) and isinstance(child, CommentedSeq):
        # (An empty list is replaced instead: ruamel.yaml keeps no style for it.)
        _sync_seq(child, old, new, (container, key))
    else:
        tail = _take_tail(container, key)
        container[key] = _node(new)
        _put_tail(container, key, tail)


Slot = tuple[Any, Any]  # (container, key or index): where a node sits


def _sync_map(
    node: CommentedMap,
    old: dict[str, Any],
    new: dict[str, Any],
    slot: Slot,
    plain_key: Callable[[str], str] = str,
) -> None:
    written = {plain_key(k): k for k in node}
    if set(written) != set(old):
        raise EditError("this file uses anchors or merge keys the editor cannot follow")
    for key in old:
        if key not in new:
            _delete(node, written[key], slot)
    for key, value in new.items():
        if key not in old:
            _append(node, _scalar(key), _node(value))
        elif not _same(old[key], value):
            _sync(node, written[key], old[key], value)


def _sync_seq(node: CommentedSeq, old: list[Any], new: list[Any], slot: Slot) -> None:
    if len(node) != len(old):
        raise EditError("this file uses anchors the editor cannot follow")
    dumps = json.dumps
    matcher = difflib.SequenceMatcher(None, [dumps(v) for v in old], [dumps(v) for v in new])
    # From the end, so that the indexes of what is still to do stay valid.
    for op, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for offset in range(i2 - i1):
                _sync(node, i1 + offset, old[i1 + offset], new[j1 + offset])
            continue
        for i in reversed(range(i1, i2)):
            _delete(node, i, slot)
        for j in range(j1, j2):
            _insert(node, i1 + (j - j1), _node(new[j]))


# Comment lines after an entry are kept by ruamel.yaml with the last scalar before them,
# however deep: the "tail" of an entry. When entries are added after it or it is removed, its
# tail (which belongs to what follows) is moved, so that it stays where it was in the text.


def _chain(container: Any, key: Any) -> list[Slot]:
    """The slot, then the last entry of its value, and so on down (block collections)."""
    slots = [(container, key)]
    value = container[key]
    while isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
        last = next(reversed(value)) if isinstance(value, CommentedMap) else len(value) - 1
        slots.append((value, last))
        value = value[last]
    return slots


def _post_index(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def _take_tail(container: Any, key: Any) -> str:
    tail = ""
    for node, last in reversed(_chain(container, key)):
        entry = node.ca.items.get(last)
        token = entry[_post_index(node)] if entry else None
        if token is None or "\n" not in token.value:
            continue
        keep, rest = token.value.split("\n", 1)
        tail += rest
        if keep:
            token.value = keep + "\n"
        else:
            entry[_post_index(node)] = None
    return tail


def _put_tail(container: Any, key: Any, tail: str) -> None:
    if not tail:
        return
    node, last = _chain(container, key)[-1]
    entry = node.ca.items.setdefault(last, [None, None, None, None])
    token = entry[_post_index(node)]
    if token is None:
        entry[_post_index(node)] = CommentToken("\n" + tail, CommentMark(0), None)
    else:
        token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + tail


def _append(node: CommentedMap, key: Any, value: Any) -> None:
    tail = _take_tail(node, next(reversed(node))) if node else ""
    node[key] = value
    _put_tail(node, key, tail)


def _insert(node: CommentedSeq, index: int, value: Any) -> None:
    at_end = index == len(node)
    tail = _take_tail(node, index - 1) if at_end and node else ""
    node.insert(index, value)
    _put_tail(node, index, tail)


def _delete(node: CommentedMap | CommentedSeq, key: Any, slot: Slot) -> None:
    """Remove an entry; what followed it in the text stays, after the entry before it."""
    tail = _take_tail(node, key)
    keys = list(node) if isinstance(node, CommentedMap) else list(range(len(node)))
    position = keys.index(key)
    if isinstance(node, CommentedMap):
        before = node.ca.items.pop(key, None)
        following = keys[position + 1] if position + 1 < len(keys) else None
        # Comments before the key (after a flow collection) go to the key that follows.
        if before and before[1] and following is not None:
            entry = node.ca.items.setdefault(following, [None, None, None, None])
            entry[1] = [*before[1], *(entry[1] or [])]
    del node[key]
    if position > 0:
        _put_tail(node, keys[position - 1] if isinstance(node, CommentedMap) else key - 1, tail)
    else:
        _put_tail(*slot, tail)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` (its target, if a link) in one step, keeping its permissions."""
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
