"""stormchor from Python: choreographies, kit effects, Python effects and the
action registry, on top of the Rust crates (the native module ``stormchor._native``).

Every Rust error arrives as an exception of the ``StormchorError`` family with the
Rust error's text. See docs/python.md.
"""

from ._native import (
    ActionEntry,
    ActionError,
    ActionRegistry,
    CheckError,
    Cluster,
    ConfigError,
    ClusterError,
    Connection,
    Context,
    Effect,
    Family,
    Program,
    ProjectionError,
    RegistryError,
    Report,
    Role,
    ScenarioError,
    Slot,
    SlotError,
    Settings,
    SqlError,
    StormchorError,
    default_registry,
    effect,
    reference_load,
    run_workload,
    settings,
    kit as _kit,
    slots as _slots,
)
from ._native import Kit as _NativeKit

import sys as _sys

kit = _kit
slots = _slots
# `import stormchor.kit` and `from stormchor.slots import PRIMARY` work too.
_sys.modules[__name__ + ".kit"] = kit
_sys.modules[__name__ + ".slots"] = slots


class Kit(_NativeKit):
    """The kit's effects, and the handlers of Python effects.

    ``kit.register(name, handler)`` or, as a decorator, ``@kit.handler(name)``.
    """

    def handler(self, name):
        """Registers the decorated function as the handler of effect ``name``."""

        def register(function):
            self.register(name, function)
            return function

        return register


class Workload:
    """A workload written in Python (StormDB's plugin interface), run by the Rust
    load runner with ``run_workload(workload, connection, ...)``.

    Set ``operations`` to ``{name: weight}`` and write one method per operation,
    ``name(self, conn, rng)``: ``conn.execute(sql)`` runs on the client's own
    connection, ``rng`` is a ``random.Random`` seeded from the client's stream.
    Override ``setup(conn)`` / ``cleanup(conn)`` (run once, on a connection of
    their own), ``configure(section)`` (a dict, given as ``config=``) and
    ``metrics()`` (figures of the workload's own) as needed.
    """

    name = None
    version = "0"
    description = ""
    operations = {}

    def configure(self, section):
        """Reads the workload's own settings; unknown keys should raise."""
        if section:
            raise ValueError(
                f"workload {self.name or type(self).__name__}: unknown keys {sorted(section)}"
            )

    def setup(self, conn):
        """Creates the schema and loads the data."""

    def cleanup(self, conn):
        """Removes what setup made."""

    def metrics(self):
        """Figures of the workload's own, for the report."""
        return {}


__all__ = [
    "ActionEntry",
    "ActionError",
    "ActionRegistry",
    "CheckError",
    "Cluster",
    "ClusterError",
    "ConfigError",
    "Connection",
    "Context",
    "Effect",
    "Family",
    "Kit",
    "Program",
    "ProjectionError",
    "RegistryError",
    "Report",
    "Role",
    "ScenarioError",
    "Settings",
    "Slot",
    "SlotError",
    "SqlError",
    "StormchorError",
    "Workload",
    "default_registry",
    "reference_load",
    "run_workload",
    "settings",
    "effect",
    "kit",
    "slots",
]
