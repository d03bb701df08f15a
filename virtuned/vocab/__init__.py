"""The trait vocabulary: one module per trait or small family of traits.

Importing this package imports every module in it, and so registers every trait.
Nothing here lists them: a new trait is its module (and its golden cases). The
canonical order is each trait's declared rank, never the order of imports.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
