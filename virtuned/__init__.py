"""virtuned: compile desired VM traits into complete, host-aware libvirt domain XML.

The public API is lazy so that ``import virtuned`` (and the CLI) start fast.
"""

from virtuned.version import __version__
__all__ = ["__version__", "compile", "plan", "fit", "TraitSource", "CompileResult",
           "PlanResult", "Fit", "VirtunedError"]


def __getattr__(name):
    if name in ("compile", "plan", "fit", "TraitSource", "CompileResult", "PlanResult",
                "Fit"):
        from virtuned import api

        value = getattr(api, name)
    elif name == "VirtunedError":
        from virtuned.diagnostics import VirtunedError as value
    else:
        raise AttributeError(name)
    globals()[name] = value  # found once: later lookups do not come here
    return value
