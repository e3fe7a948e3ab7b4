"""The sub-commands of ``orthgate``; each module has ``register(subparsers)``.

Each handler takes the parsed arguments and returns the exit status: 0 done, 1 the
configuration (or an edit) was refused, 2 a usage or setup problem (the message says what
to install or set).
"""

# In the order ``orthgate --help`` lists them.
COMMAND_MODULES = ("offline", "edit", "schema", "cloud", "handover")
