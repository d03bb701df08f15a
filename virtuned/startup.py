"""A command-line run's start-up: what the CLI does so that a short-lived process
spends its time on the command, not on getting ready for it.

Most of a ``virtuned compile`` run is spent before the compile: importing virtuned,
which defines about a hundred attrs classes. Three costs of that are not the import's
own, and ``begin()`` (the first thing the CLI does) removes them:

- attrs writes each class's methods as Python source and compiles it, every run: a
  fifth of the run. The code it compiled is kept in the user's cache (next to the
  parsed profiles of syntax/cache.py, same place, same rules), keyed by the source
  attrs wrote, and a later run reuses it instead of compiling that source again.
- ``re`` parses and compiles each pattern in Python, every run: start-up compiles
  some forty (argparse's, gettext's, json's, lxml's, platform's for attrs, ours),
  0.3-3M instructions each, 7 % of a run. What the compiler hands
  ``_sre`` for a pattern is kept in the same file, keyed by the pattern and its
  flags, and handed to ``_sre`` again (which checks it as it checks any).
- every object start-up makes lives until the process ends, yet the allocations
  wake the cyclic garbage collector some forty times to look for garbage among them.
  It is paused until ``ready()``, which freezes what was made (later collections
  never look at it again) and resumes it; the CLI calls ``ready()`` before a command
  that runs long (serve, fit) and on the way out.
"""

from __future__ import annotations

import __future__
import _sre
import builtins
import gc
import marshal
import os
import re
import sys
from types import CodeType

from virtuned import caching

FORMAT = 2
MAX_ENTRIES = 1024  # classes whose code is kept; beyond this only those of this run
MAX_PATTERNS = 512  # compiled patterns kept; beyond this only those of this run

_path: str | None = None
_kept: dict = {}  # attrs' name for a class's methods → (their source unsalted, code)
_used: set = set()  # the names this run asked for
_patterns: dict = {}  # (pattern, flags) → what _sre.compile takes after the pattern
_patterns_used: set = set()
_new = False  # something was compiled that the cache did not hold
_begun = False


def begin() -> None:
    """Pause the collector, and let attrs and re reuse the code of earlier runs
    (attrs' own classes' too, which it defines as it is imported). Once: python -m
    virtuned begins before the CLI is imported (argparse imports gettext, which
    compiles a pattern), and the CLI begins again."""
    global _path, _begun
    if _begun:
        return
    _begun = True
    gc.disable()
    directory = caching.cache_home()
    if directory is None:
        return
    _path = os.path.join(directory, f"start-{FORMAT}.{sys.implementation.cache_tag}-"
                         f"{sys.hexversion:x}.marshal")
    _load(directory)
    re._compiler.compile = _compile_pattern
    made = sys.modules.get("attr._make")
    if made is not None:
        vars(made)["compile"] = _compile
    else:
        sys.meta_path.insert(0, _GivingAttrsCompile())


class _GivingAttrsCompile:
    """The import of attrs' module ``attr._make`` (the one that compiles the code it
    writes) with ``_compile`` as its ``compile``, a global of the module's own that
    comes before the built-in one; once, then this steps aside. Nothing else is
    changed, in attrs or anywhere: an attrs that compiles elsewhere compiles as it
    always did."""

    def find_spec(self, name, path=None, target=None):
        if name != "attr._make":
            return None
        sys.meta_path.remove(self)
        spec = next(filter(None, (finder.find_spec(name, path, target)
                                  for finder in sys.meta_path
                                  if hasattr(finder, "find_spec"))), None)
        # (a loader of its own, never a class: that would be every module's)
        if spec is not None and hasattr(spec.loader, "exec_module") and not isinstance(
                spec.loader, type):
            execute = spec.loader.exec_module

            def exec_module(module):
                vars(module)["compile"] = _compile
                execute(module)

            spec.loader.exec_module = exec_module
        return spec


# The future statements a compile() inherits from the code that calls it.
_FUTURES = 0
for _feature in __future__.all_feature_names:
    _FUTURES |= getattr(__future__, _feature).compiler_flag


def _compile(source, filename, mode, flags=0, dont_inherit=False, *more, **options):
    """compile(), for attrs: the code of a class's methods from the cache when the
    source is the same but for the salt, else compiled (and kept)."""
    global _new
    if not dont_inherit:  # what attrs' module has in force, as compile() would take it
        flags |= sys._getframe(1).f_code.co_flags & _FUTURES
    if more or options or mode != "exec" or type(source) is not str:
        return builtins.compile(source, filename, mode, flags, True, *more, **options)
    key = f"{flags:x}\n" + _unsalted(source)
    kept = _kept.get(filename)
    _used.add(filename)
    if kept is None or kept[0] != key:
        code = builtins.compile(source, filename, mode, flags, True)
        kept = _kept[filename] = (key, code)
        _new = True
    return kept[1]


_compile_regex = re._compiler.compile  # re's own
# Left to re: DEBUG prints as it compiles, and LOCALE's code could depend on the
# locale of the run that compiled it. (ints: a RegexFlag would make each & an enum's)
_UNKEPT = int(re.DEBUG | re.LOCALE)


def _compile_pattern(pattern, flags=0):
    """re's compile of a pattern, for re (which calls it when its own cache has not
    got the pattern): what earlier runs compiled it to, handed to _sre, else
    compiled and kept. The steps are those of ``re._compiler.compile`` (the same in
    Python 3.11 to 3.13), split where the pattern's compiled form is ready; a form
    that does not make the same pattern as re's own is never kept."""
    global _new
    key = (pattern, flags)
    if type(pattern) not in (str, bytes) or type(flags) is not int or flags & _UNKEPT:
        return _compile_regex(pattern, flags)
    _patterns_used.add(key)
    kept = _patterns.get(key)
    if kept is not None:
        try:
            return _sre.compile(pattern, *kept)
        except (TypeError, ValueError, RuntimeError):  # not what _sre takes: again
            pass
    compiled = _compile_regex(pattern, flags)  # raises re.error for a bad pattern
    try:
        kept = _compiled_form(pattern, flags)
        same = _sre.compile(pattern, *kept) == compiled  # (patterns compare their code)
    except (AttributeError, TypeError, ValueError, RuntimeError):  # a re of other steps
        same = False
    if same:
        _patterns[key] = kept
        _new = True
    return compiled


def _compiled_form(pattern, flags: int) -> tuple:
    """What ``re._compiler.compile`` hands ``_sre.compile`` after the pattern."""
    parsed = re._parser.parse(pattern, flags)
    indexgroup = [None] * parsed.state.groups
    for name, index in parsed.state.groupdict.items():
        indexgroup[index] = name
    code = list(map(int, re._compiler._code(parsed, flags)))  # (opcodes: an int subclass)
    return (flags | parsed.state.flags, code, parsed.state.groups - 1,
            parsed.state.groupdict, tuple(indexgroup))


def _unsalted(source: str) -> str:
    """attrs' source without its salt. attrs salts each class's __hash__ with the
    hash of a name, which differs from run to run (strings hash randomly): the line
    after ``hash((`` is that number. The key leaves it out, and reused code keeps the
    salt of the run that compiled it, still a constant of that class alone. (Found
    with str methods: a regular expression over each source took 2/3 of the time
    that reusing the code takes.)"""
    head, hashing, rest = source.partition("hash((\n")
    salt, _, tail = rest.partition(",\n")
    if not hashing or not salt.strip(" \t").lstrip("-").isdecimal():
        return source
    return head + hashing + tail


def _load(directory: str) -> None:
    """The code of earlier runs, when the directory is this user's and the file
    sound; else nothing (and it is compiled again)."""
    if not caching.owned(directory):
        return
    try:
        with open(_path, "rb") as file:
            found = marshal.loads(file.read())  # load(file) reads it in small pieces
    except (OSError, EOFError, ValueError, TypeError):
        return
    if type(found) is not tuple or len(found) != 2:
        return
    classes, patterns = found
    if type(classes) is dict:
        _kept.update((name, entry) for name, entry in classes.items()
                     if type(name) is str and type(entry) is tuple and len(entry) == 2
                     and type(entry[0]) is str and type(entry[1]) is CodeType)
    if type(patterns) is dict:  # _sre.compile checks the rest
        _patterns.update((key, entry) for key, entry in patterns.items()
                         if type(key) is tuple and type(entry) is tuple and len(entry) == 5)


def ready() -> None:
    """Start-up is over: what it made is frozen, the collector resumes, attrs
    compiles as it always does, and the code compiled in this run is kept for the
    next."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    made = sys.modules.get("attr._make")
    if made is not None and vars(made).get("compile") is _compile:
        del vars(made)["compile"]
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _GivingAttrsCompile)]
    if re._compiler.compile is _compile_pattern:
        re._compiler.compile = _compile_regex
    _save()


def _save() -> None:
    global _new
    if not _new or _path is None:
        return
    _new = False
    entries, patterns = _kept, _patterns
    if len(entries) > MAX_ENTRIES:
        entries = {name: entry for name, entry in entries.items() if name in _used}
    if len(patterns) > MAX_PATTERNS:
        patterns = {key: entry for key, entry in patterns.items() if key in _patterns_used}
    directory = os.path.dirname(_path)
    try:
        written = marshal.dumps((entries, patterns))  # (before a file is made for it)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not caching.owned(directory):
            return
        partial = f"{_path}.{os.getpid()}"
        with open(partial, "wb") as file:
            file.write(written)
        os.replace(partial, _path)
        _forget_earlier_formats(directory)
    except (OSError, ValueError):
        pass


def _forget_earlier_formats(directory: str) -> None:
    """Remove the files earlier formats of this cache left (after an upgrade: some
    hundreds of KB that nothing reads again). Other Pythons' files of this format stay."""
    for name in os.listdir(directory):
        earlier = name.startswith("attrs-code-") or (
            name.startswith("start-") and name.partition(".")[0] != f"start-{FORMAT}")
        if earlier and name.endswith(".marshal"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:  # another run removed it first
                pass
