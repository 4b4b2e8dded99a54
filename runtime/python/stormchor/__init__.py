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
    SqlError,
    StormchorError,
    default_registry,
    effect,
    kit as _kit,
    slots as _slots,
)
from ._native import Kit as _NativeKit

kit = _kit
slots = _slots


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


__all__ = [
    "ActionEntry",
    "ActionError",
    "ActionRegistry",
    "CheckError",
    "Cluster",
    "ClusterError",
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
    "Slot",
    "SlotError",
    "SqlError",
    "StormchorError",
    "default_registry",
    "effect",
    "kit",
    "slots",
]
