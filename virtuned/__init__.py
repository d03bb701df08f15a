"""virtuned: compile desired VM traits into complete, host-aware libvirt domain XML.

The public API is lazy so that ``import virtuned`` (and the CLI) start fast.
"""

__version__ = "0.1.0"
__all__ = ["compile", "plan", "fit", "TraitSource", "CompileResult", "PlanResult", "Fit",
           "VirtunedError"]


def __getattr__(name):
    if name in ("compile", "plan", "fit", "TraitSource", "CompileResult", "PlanResult",
                "Fit"):
        from virtuned import api

        return getattr(api, name)
    if name == "VirtunedError":
        from virtuned.diagnostics import VirtunedError

        return VirtunedError
    raise AttributeError(name)
