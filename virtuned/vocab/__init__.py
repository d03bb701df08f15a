"""The trait vocabulary: one module per trait or small family of traits.

Importing this package imports every module in it, and so registers every trait.
Nothing here lists them: a new trait is its module (and its golden cases). The
canonical order is each trait's declared rank, never the order of imports.
"""

import importlib
import os

# The modules are its .py files (listed by hand: pkgutil's listing, and importing
# pkgutil, cost a command-line run 1 % of its instructions).
for _module in sorted(name[:-3] for name in os.listdir(__path__[0])
                      if name.endswith(".py") and name != "__init__.py"):
    importlib.import_module(f"{__name__}.{_module}")
