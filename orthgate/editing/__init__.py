"""Edit a stack file in place, keeping its comments and layout, and only if the result is valid.

Every edit is worked out on the configuration as the Pulumi CLI reads it (``read_stack_config``),
then carried over to the file's ruamel.yaml round-trip tree by changing only the keys and list
entries that differ. The new text is read back the way the CLI will read it: it must give
exactly the intended configuration, and that configuration must pass the program's own model
(``validate_config``). Otherwise the edit raises and the file keeps every byte; on success it
is replaced atomically.

The package's modules: ``operations`` (the edits), ``stack_edit`` (one edit of a file, from
reading to writing), ``key_paths``, ``plain`` (helpers on the plain configuration),
``yaml_tree`` (carrying a change over to the round-trip tree), ``layout`` (indentation, text
and quoting of that tree), ``comment_tails`` (keeping comments in place) and ``errors``.
"""

from orthgate.editing.errors import EditError
from orthgate.editing.key_paths import KeyPath, format_key_path, parse_key_path
from orthgate.editing.operations import (
    CLIENT_VPN,
    NS,
    ORTHANC,
    PROXIES,
    ModalitySpec,
    SiteSpec,
    add_modality,
    add_site,
    add_workstation,
    remove_modality,
    remove_site,
    remove_workstation,
    set_value,
    unset_value,
)
from orthgate.editing.stack_edit import Change, Edit, edit_stack_file

__all__ = [
    "CLIENT_VPN",
    "NS",
    "ORTHANC",
    "PROXIES",
    "Change",
    "Edit",
    "EditError",
    "KeyPath",
    "ModalitySpec",
    "SiteSpec",
    "add_modality",
    "add_site",
    "add_workstation",
    "edit_stack_file",
    "format_key_path",
    "parse_key_path",
    "remove_modality",
    "remove_site",
    "remove_workstation",
    "set_value",
    "unset_value",
]
