"""Profiles → one TraitSet.

Resolution walks the profiles given (``-p``, ``-t``) and everything they include,
substitutes typed parameters, evaluates ``when`` blocks against facts, matches every
trait line against the registry, and combines the result into a set:

- an include is a union, never an override, so profiles commute;
- two required traits that disagree are a conflict (exit 3) naming both places and
  their include chains; a repeated identical trait is not;
- a ``prefer`` fills only a slot no required trait decides, and is dropped with a
  warning when a required one disagrees or two preferences disagree;
- the result is in a canonical order, so the order of ``-p``/``-t`` never matters.

Conditions read facts (the input domain, the command line, params) and never the
output of other traits, except the traits that *decide* a fact (``machine``): those
must stand outside every ``when`` block, so one pre-pass over the unconditional
statements finds them and the main pass sees the same facts everywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

import attrs

from virtuned import profiles, registry, values
from virtuned.diagnostics import (CLI_OPTIONS, REQUEST, Diagnostic, ExitCode, OptionNames,
                                  Related, Span, VirtunedError, error)
from virtuned.merge import Link, Origin
from virtuned.syntax import ast

PARAM_TYPES = ("int", "size", "cpus", "word", "string", "bool")
FACTS = ("machine", "arch", "type", "os", "host")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


@attrs.frozen
class ResolvedTrait:
    definition: registry.TraitDef = attrs.field(eq=False)
    phrase: str  # the definition's phrase; stands in for it in equality
    args: tuple[tuple[str, object], ...]
    origin: Origin = attrs.field(eq=False)

    @property
    def kwargs(self) -> dict:
        return dict(self.args)

    @property
    def key(self) -> tuple:
        return self.definition.key(self.kwargs)

    @property
    def soft(self) -> bool:
        return self.origin.soft


@attrs.frozen(cache_hash=True)
class UsedProfile:
    """A profile that contributed, for provenance and locks."""

    name: str  # the header's name, or the source for a file of bare trait lines
    version: str | None
    sha256: str
    source: str


@attrs.frozen
class Skipped:
    """A ``when`` block whose condition did not hold, for ``explain``."""

    span: Span
    condition: str
    chain: tuple[Link, ...]


def _collect_facts(trait_set: TraitSet) -> dict:
    out: dict = {}
    for trait in trait_set.traits:
        out.update(trait.definition.facts(trait.kwargs))
    return out


@attrs.frozen
class TraitSet:
    traits: tuple[ResolvedTrait, ...]
    profiles: tuple[UsedProfile, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    # The platform facts the traits fix, e.g. {"machine": "q35"}; computed once.
    facts: dict = attrs.field(init=False, eq=False, repr=False,
                              default=attrs.Factory(_collect_facts, takes_self=True))


@attrs.frozen
class Request:
    """What the caller asked for: root profiles and ``--set`` values (raw text)."""

    roots: tuple[profiles.ProfileFile, ...]
    settings: tuple[tuple[str, str], ...] = ()  # (NAME or PROFILE.NAME, VALUE)
    profile_path: tuple[str, ...] = ()
    option_names: OptionNames = CLI_OPTIONS  # how messages name the settings


FactsFor = Callable[[Mapping], Mapping]


def resolve(request: Request, facts_for: FactsFor = lambda decided: decided
            ) -> TraitSet:
    """Resolve a request. ``facts_for`` turns the facts the traits decide (``machine``)
    into the full facts conditions may test (adding the input domain's)."""
    library = profiles.Library(profiles.search_path(request.profile_path))
    decided = _Walk(request, library, facts=None).run().facts_decided
    walk = _Walk(request, library, facts=dict(facts_for(decided))).run()
    return walk.result()


def check(files: tuple[profiles.ProfileFile, ...], profile_path: tuple[str, ...] = ()
          ) -> tuple[Diagnostic, ...]:
    """Author-time checks of profiles, with no domain and no host: syntax, unknown
    traits and facts, types and units, include problems, conditions that can never
    hold, conflicts among unconditional traits, unused params, repeated traits and
    preferences a required trait always overrides. Errors raise; warnings return."""
    library = profiles.Library(profiles.search_path(profile_path))
    request = Request(files, (), profile_path)
    from virtuned.plan import Stated, condition_facts

    facts = condition_facts(Stated(None, None, None, False), {})
    walk = _Walk(request, library, facts=facts, checking=True).run()
    result = walk.result()
    return tuple(walk.unused_params()) + result.warnings


# ---------------------------------------------------------------- the walk

@attrs.frozen
class _Instance:
    """A profile with its parameter values: the unit that is evaluated."""

    file: profiles.ProfileFile
    tree: ast.Profile
    params: Mapping[str, object]  # name → typed value (absent: not set)
    declared: Mapping[str, ast.Param]
    chain: tuple[Link, ...]  # how it was reached, outermost first
    names: tuple[str, ...]  # the profile names on that chain, itself included

    @property
    def name(self) -> str:
        header = self.tree.header
        return header.name if header else self.file.source


class _Walk:
    """One pass over the profile graph. With ``facts=None`` it is the pre-pass: it
    skips every ``when`` body and only collects the facts traits decide."""

    def __init__(self, request: Request, library: profiles.Library, facts: dict | None,
                 checking: bool = False):
        self.request = request
        # ``virtuned check``: every when-body is visited whatever its condition, unset
        # params are allowed, and only unconditional traits are combined.
        self.checking = checking
        self.referenced: set[tuple[str, str]] = set()  # (profile, param) used
        self.seen_lines: dict[tuple, Span] = {}
        self.library = library
        self.facts = facts
        self.definitions = registry.all_traits()
        self.traits: list[ResolvedTrait] = []
        self.problems: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.skipped: list[Skipped] = []
        self.used: dict[str, UsedProfile] = {}
        self.instances: dict[str, tuple[_Instance, Span | None]] = {}
        self.facts_decided: dict = {}
        self.settings_used: set[str] = set()
        self.exit_code = ExitCode.INVALID_INPUT

    # -- entry points

    def run(self) -> _Walk:
        for file in self.request.roots:
            self._guard(self._root, file)
        if self.facts is not None:
            self._check_settings()
        if self.problems:
            raise VirtunedError(self.problems, self.exit_code)
        return self

    def result(self) -> TraitSet:
        if not self.checking:
            self.traits += self._expansions()
        order = {d.phrase: i for i, d in enumerate(self.definitions)}
        self.traits.sort(key=lambda t: (order[t.phrase], _own_order(t), _sortable(t.args),
                                        t.soft, t.origin.span))
        kept, dropped = _combine(self.traits)
        used = tuple(sorted(self.used.values(), key=lambda u: (u.name, u.version or "",
                                                                u.sha256, u.source)))
        skipped = tuple(sorted(self.skipped, key=lambda s: s.span))
        return TraitSet(kept, used, tuple(self.warnings) + dropped, skipped)

    def _expansions(self) -> list[ResolvedTrait]:
        """The traits that expanding traits (``recommended``) stand for, as
        preferences at their place. Each fills only what no trait of the request
        names (by its leading words: 'video', 'disk bus'), so an explicit choice
        replaces a recommendation instead of being added beside it."""
        named = {t.definition.name for t in self.traits}
        added: list[ResolvedTrait] = []
        expanded: set[ResolvedTrait] = set()  # equal lines in two profiles: once
        for trait in self.traits:
            if trait.definition.expand is None or trait in expanded:
                continue
            expanded.add(trait)
            expansion = trait.definition.expand(trait.kwargs, self.facts, trait.origin)
            span = trait.origin.span
            for text, reason in expansion.lines:
                items = tuple(ast.Literal(word, span) if word[:1].isdigit()
                              else ast.Word(word, span) for word in text.split())
                line = match_line(ast.TraitLine(items, span), self.definitions,
                                  trait.origin.chain, "prefer")
                if line.definition.facts(line.kwargs):
                    raise TypeError(f"{text!r}: facts are decided before expansion")
                if line.definition.name in named:
                    continue  # chosen explicitly
                origin = attrs.evolve(line.origin, label=f"{line.origin.label} ({reason})")
                added.append(attrs.evolve(line, origin=origin))
            self.warnings += [Diagnostic("warning", message, span)
                              for message in expansion.warnings]
        return added

    def _guard(self, function, *args) -> None:
        try:
            function(*args)
        except VirtunedError as exc:
            self.problems += exc.diagnostics
            self.exit_code = max(self.exit_code, exc.exit_code)

    # -- profiles

    def _root(self, file: profiles.ProfileFile) -> None:
        from virtuned.syntax.parser import parse

        tree = parse(file.text, file.source)
        settings = self._settings_for(tree.header.name if tree.header else None, tree)
        self._instantiate(file, tree, settings, chain=(), names=(), via=None,
                          conditional=False)

    def _instantiate(self, file, tree, assigned: dict, chain, names, via: Span | None,
                     conditional: bool) -> None:
        declared = self._declared_params(tree)
        params = self._param_values(tree, declared, assigned)
        instance = _Instance(file, tree, params, declared, chain, ())
        instance = attrs.evolve(instance, names=names + (instance.name,))
        previous = self.instances.get(instance.name)
        if previous is not None:
            if previous[0].file.source != file.source:
                raise _chain_error(via or Span(file.source, 1, 1),
                                   f"'{instance.name}' is needed as {file.source} here and "
                                   f"as {previous[0].file.source} elsewhere: one version "
                                   "per name", chain)
            if previous[0].params != params:
                raise _param_clash(instance.name, via, previous[1], params,
                                   previous[0].params)
            return  # already evaluated with the same values: a union is idempotent
        self.instances[instance.name] = (instance, via)
        self._record(file, tree)
        self._block(instance, tree.statements, conditional)

    def _record(self, file, tree) -> None:
        header = tree.header
        used = UsedProfile(header.name if header else file.source,
                           header.version if header else None, file.sha256, file.source)
        self.used[file.source] = used

    def _declared_params(self, tree) -> dict[str, ast.Param]:
        declared: dict[str, ast.Param] = {}
        for statement in tree.statements:
            if isinstance(statement, ast.Param):
                if statement.name in declared:
                    raise error(statement.span, f"param '{statement.name}' is declared twice",
                                related=(Related(declared[statement.name].span,
                                                 "first declared here"),))
                if statement.type not in PARAM_TYPES:
                    raise error(statement.span, f"param '{statement.name}': unknown type "
                                f"'{statement.type}'", hint=_choices(statement.type, PARAM_TYPES))
                declared[statement.name] = statement
        return declared

    def _param_values(self, tree, declared, assigned: dict) -> dict:
        """Typed values: assigned (include ``with``, ``--set``), else the default."""
        values_: dict = {}
        for name, (item, span) in assigned.items():
            if isinstance(item, ast.ParamRef):
                continue  # checking: the includer's own param has no value yet
            if name not in declared:
                profile = tree.header.name if tree.header else tree.source
                raise error(span, f"'{profile}' has no param '{name}'",
                            hint=_choices(name, tuple(declared)) or
                            f"its params: {', '.join(declared) or 'none'}")
            values_[name] = _typed(declared[name], item, span)
        for name, param in declared.items():
            if name in values_:
                continue
            if param.default is not None:
                values_[name] = _typed(param, param.default, param.default.span)
            elif not param.optional and not self.checking:
                raise error(param.span, f"param '{name}' is required and was not set",
                            hint=f"set it with 'include ... with {name} = VALUE' or "
                                 f"{self.request.option_names.given('settings', 'VALUE', name)}")
        return values_

    def _settings_for(self, profile_name: str | None, tree) -> dict:
        """``--set`` values that address this root profile: ``NAME=`` or ``PROFILE.NAME=``."""
        declared = {s.name for s in tree.statements if isinstance(s, ast.Param)}
        chosen = {}
        for index, (target, text) in enumerate(self.request.settings):
            owner, _, name = target.rpartition(".")
            if (owner and owner == profile_name) or (not owner and name in declared):
                span = self._setting(target, text)
                chosen[name] = (_setting_item(text, span), span)
                self.settings_used.add(target)
        return chosen

    def _setting(self, target: str, text: str) -> Span:
        """Where a ``--set`` value (a request's ``/params/NAME``) is named."""
        return self.request.option_names.span("settings", text, target)

    def _check_settings(self) -> None:
        for target, text in self.request.settings:
            if target not in self.settings_used:
                owner = target.rpartition(".")[0]
                option = self.request.option_names.name("settings", target)
                self.problems.append(Diagnostic(
                    "error", f"{option}: no profile given declares a param "
                    f"'{target.rpartition('.')[2]}'" if not owner else
                    f"{option}: no profile '{owner}' is used",
                    self._setting(target, text)))

    # -- statements

    def _block(self, instance: _Instance, statements, conditional: bool) -> None:
        for statement in statements:
            self._guard(self._statement, instance, statement, conditional)

    def _statement(self, instance: _Instance, statement, conditional: bool) -> None:
        if isinstance(statement, (ast.Header, ast.Param)):
            if isinstance(statement, ast.Header) and statement is not instance.tree.header:
                raise error(statement.span, "a profile has one header, at its top")
            return
        if isinstance(statement, ast.Include):
            self._include(instance, statement, conditional)
        elif isinstance(statement, ast.When):
            if self.facts is None:
                return  # pre-pass: only unconditional statements decide facts
            if self._holds(instance, statement.condition) or self.checking:
                self._block(instance, statement.body, conditional=True)
            else:
                from virtuned.syntax.format import format_condition

                self.skipped.append(Skipped(statement.span,
                                            format_condition(statement.condition),
                                            instance.chain))
        elif isinstance(statement, ast.TraitLine):
            self._trait(instance, statement, statement, "require", conditional)
        elif isinstance(statement, ast.Prefer):
            self._trait(instance, statement.trait, statement, "prefer", conditional)

    def _include(self, instance: _Instance, include: ast.Include, conditional: bool) -> None:
        from virtuned.syntax.parser import parse

        try:
            wanted = profiles.parse_range(include.range) if include.range else \
                profiles.ANY_VERSION
        except ValueError as exc:
            raise error(include.span, str(exc)) from None
        chain = instance.chain + (Link(include.name, include.span),)
        if include.name in instance.names:
            raise _chain_error(include.span, f"include cycle: '{include.name}' includes "
                               "itself through " + " → ".join(instance.names +
                                                              (include.name,)), chain)
        path = self.library.find(include.name, wanted)
        if path is None:
            versions = self.library.versions(include.name)
            message = (f"no version of '{include.name}' matches {wanted} (found "
                       f"{', '.join(versions)})" if versions else
                       f"no profile '{include.name}' on the search path")
            hint = None if versions else _choices(include.name, self.library.names())
            raise _chain_error(include.span, message, chain, hint)
        file = profiles.load_library_file(path)
        assigned = {a.name: (self._substitute(instance, a.value, allow_unset=self.checking),
                             a.span)
                    for a in include.assignments}
        for target, text in self.request.settings:
            owner, _, name = target.rpartition(".")
            if owner == include.name:
                span = self._setting(target, text)
                assigned[name] = (_setting_item(text, span), span)
                self.settings_used.add(target)
        self._instantiate(file, parse(file.text, file.source), assigned, chain,
                          instance.names, include.span, conditional)

    def _trait(self, instance, line: ast.TraitLine, statement, strength, conditional):
        if self.checking and any(isinstance(i, ast.ParamRef) and i.name in instance.declared
                                 and i.name not in instance.params for i in line.items):
            self._check_unset_line(instance, line)
            return
        items = tuple(self._substitute(instance, item) for item in line.items)
        # A preference is reported at its 'prefer', the start of its statement.
        resolved = match_line(ast.TraitLine(items, statement.span), self.definitions,
                              chain=instance.chain, strength=strength)
        if self.checking:
            self._note_repeat(instance, resolved)
            if conditional:
                return  # validated; only unconditional traits can be seen to conflict
        decided = resolved.definition.facts(resolved.kwargs)
        if decided and conditional and self.facts is not None:
            raise error(statement.span, f"'{resolved.origin.label}' decides the fact "
                        f"{', '.join(decided)}, which 'when' conditions read: it cannot "
                        "sit inside a 'when' block",
                        hint="move it out of the block, or condition on a param instead")
        if decided and self.facts is None:
            self.facts_decided.update(decided)
        if self.facts is not None:
            self.traits.append(resolved)

    def _check_unset_line(self, instance: _Instance, line: ast.TraitLine) -> None:
        """A line using a param that has no value here: check only that it names a
        trait (its values are typed when an includer sets the param)."""
        for item in line.items:
            if isinstance(item, ast.ParamRef):
                self._substitute(instance, item, allow_unset=True)
        words = []
        for item in line.items:
            if not isinstance(item, ast.Word):
                break
            words.append(item.text)
        names = {d.name for d in self.definitions}
        if not any(" ".join(words[:len(n.split())]) == n for n in names):
            close = registry.suggest([str(i) for i in line.items], self.definitions)
            raise error(line.span, f"unknown trait '{line.words}'",
                        hint=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
                        if close else "'virtuned traits' lists every trait")

    def _note_repeat(self, instance: _Instance, resolved: ResolvedTrait) -> None:
        key = (instance.name, resolved.phrase, resolved.args, resolved.soft)
        first = self.seen_lines.get(key)
        if first is None:
            self.seen_lines[key] = resolved.origin.span
        else:
            self.warnings.append(Diagnostic(
                "warning", f"'{resolved.origin.label}' repeats a trait of this profile; "
                "it changes nothing", resolved.origin.span,
                (Related(first, "first here"),)))

    def unused_params(self) -> list[Diagnostic]:
        """Params of the checked profiles that nothing reads."""
        found = []
        for instance, _ in self.instances.values():
            for name, param in instance.declared.items():
                if (instance.name, name) not in self.referenced:
                    found.append(Diagnostic("warning", f"param '{name}' is never used",
                                            param.span))
        return found

    def _substitute(self, instance: _Instance, item, allow_unset: bool = False):
        if not isinstance(item, ast.ParamRef):
            return item
        self.referenced.add((instance.name, item.name))
        if item.name not in instance.declared:
            raise error(item.span, f"unknown parameter ${item.name}",
                        hint=_choices(item.name, tuple(instance.declared)) or
                        "parameters are declared with 'param NAME: TYPE'")
        if item.name not in instance.params:
            if allow_unset:
                return item
            raise error(item.span, f"${item.name} is not set",
                        hint=f"give it a default, or guard the line with "
                             f"'when {item.name} {{ ... }}'")
        return _as_item(instance.declared[item.name], instance.params[item.name], item.span)

    # -- conditions

    def _holds(self, instance: _Instance, condition) -> bool:
        if isinstance(condition, ast.Not):
            return not self._holds(instance, condition.operand)
        if isinstance(condition, ast.And):
            return all([self._holds(instance, c) for c in condition.operands])
        if isinstance(condition, ast.Or):
            return any([self._holds(instance, c) for c in condition.operands])
        return self._fact_test(instance, condition)

    def _fact_test(self, instance: _Instance, test: ast.FactTest) -> bool:
        items = tuple(self._substitute(instance, i, allow_unset=self.checking)
                      for i in test.items)
        if any(isinstance(i, ast.ParamRef) for i in items):
            return False  # checking, and the value comes from an includer
        head = str(items[0])
        if head in instance.declared and len(items) == 1:
            self.referenced.add((instance.name, head))
            value = instance.params.get(head)
            return value is not None and value is not False
        if head not in FACTS:
            known = FACTS + tuple(instance.declared)
            raise error(test.span, f"unknown fact '{head}' in condition",
                        hint=_choices(head, known) or
                        f"conditions test {', '.join(FACTS)} or a param of this profile")
        words = [str(i) for i in items[1:]]
        if head == "host":
            return _host_fact(self.facts.get("host"), words, test)
        if head == "os" and words[:1] == ["family"]:
            return _fact_equals(self.facts, "os family", words[1:], test)
        return _fact_equals(self.facts, head, words, test)


def _fact_equals(facts, fact: str, words: list[str], test: ast.FactTest) -> bool:
    if len(words) != 1:
        raise error(test.span, f"'{fact}' takes one value, as in 'when {fact} "
                    f"{_EXAMPLES[fact]}'")
    wanted = words[0]
    _check_fact_value(fact, wanted, test.items[-1].span)
    actual = facts.get(fact)
    if actual is None:
        return False
    if fact == "machine":
        from virtuned.plan import machine_family

        return wanted == actual or wanted == machine_family(actual)
    return wanted == actual


def _host_fact(host, words: list[str], test: ast.FactTest) -> bool:
    """``host`` (a host is given), ``host smt``, ``host numa`` (more than one node),
    ``host nodes N``, ``host hugepages SIZE`` (a pool of that size with free pages):
    all false when no host is given (``plan``'s phase one)."""
    from virtuned import values

    test_name, arguments = (words[0], words[1:]) if words else ("", [])
    takes = {"": 0, "smt": 0, "numa": 0, "nodes": 1, "hugepages": 1}
    if test_name not in takes or len(arguments) != takes[test_name]:
        raise error(test.span, f"unknown host fact 'host {' '.join(words)}'",
                    hint="host facts: 'host', 'host smt', 'host numa', 'host nodes N', "
                         "'host hugepages SIZE'")
    try:
        argument = (values.parse_int(arguments[0]) if test_name == "nodes" else
                    values.parse_size(arguments[0]).kib if arguments else None)
    except ValueError as exc:
        raise error(test.items[-1].span, str(exc)) from None
    if host is None:
        return False
    return {"": True, "smt": host.smt, "numa": host.nodes > 1,
            "nodes": host.nodes == argument,
            "hugepages": argument in host.page_pools}[test_name]


_EXAMPLES = {"machine": "q35", "arch": "x86_64", "type": "kvm", "os": "win11",
             "os family": "windows"}
_KNOWN_VALUES = {
    "arch": ("x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x",
             "riscv64", "loongarch64"),
    "type": ("kvm", "qemu", "xen", "lxc", "hvf", "bhyve", "vmware", "hyperv", "vz",
             "openvz", "test"),
    "os family": ("linux", "windows", "bsd", "solaris", "darwin", "other"),
}


def _check_fact_value(fact: str, value: str, span: Span) -> None:
    """A value that no domain can have makes a condition that can never hold."""
    if fact == "machine":
        if value in ("q35", "pc") or value.startswith(("pc-", "q35-")):
            return
        known: tuple[str, ...] = ("q35", "pc")
    else:
        known = _KNOWN_VALUES.get(fact, ())
        if not known or value in known:
            return
    raise error(span, f"'{fact} {value}' can never hold",
                hint=_choices(value, known) or f"known values: {', '.join(known)}")


# ---------------------------------------------------------------- trait lines

def match_line(line: ast.TraitLine, definitions, chain: tuple[Link, ...] = (),
               strength: str = "require") -> ResolvedTrait:
    """The one trait a line names, with typed arguments; or an error that says why not."""
    items = line.items
    for item in items:
        if isinstance(item, ast.ParamRef):
            raise error(item.span, f"unknown parameter ${item.name}",
                        hint="parameters are declared with 'param NAME: TYPE'")
    best: tuple[registry.TraitDef, registry.Mismatch] | None = None
    for definition in definitions:
        result = registry.match(definition, items)
        if not isinstance(result, registry.Mismatch):
            origin = Origin(line.words, line.span, chain, strength)
            return ResolvedTrait(definition, definition.phrase,
                                 tuple(sorted(result.items())), origin)
        if result.matched and (best is None or result.matched > best[1].matched):
            best = (definition, result)
    if best is not None and best[1].matched >= len(best[0].name.split()):
        definition, mismatch = best
        span = items[mismatch.item_index].span if mismatch.item_index is not None \
            else line.span
        raise error(span, f"{definition.name}: {mismatch.message}",
                    hint=f"usage: {registry.usage(definition)}")
    words = [str(i) for i in items]
    close = registry.suggest(words, definitions)
    hint = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
        "'virtuned traits' lists every trait"
    raise error(line.span, f"unknown trait '{line.words}'", hint=hint)


def _combine(traits: list[ResolvedTrait]) -> tuple[tuple[ResolvedTrait, ...],
                                                   tuple[Diagnostic, ...]]:
    """One trait per slot. Required traits must agree (else conflict); a preference
    fills a slot only no required trait decides, and only if preferences agree."""
    by_key: dict[tuple, list[ResolvedTrait]] = {}
    for trait in traits:
        by_key.setdefault(trait.key, []).append(trait)
    kept: list[ResolvedTrait] = []
    conflicts: list[Diagnostic] = []
    dropped: list[Diagnostic] = []
    for group in by_key.values():
        required = [t for t in group if not t.soft]
        preferred = [t for t in group if t.soft]
        if required:
            first = required[0]
            conflicts += [_conflict(t, first) for t in required[1:] if t != first]
            kept.append(first)
            dropped += [_dropped(t, f"'{first.origin.label}' is required") for t in preferred
                        if _values(t) != _values(first)
                        and not overrides_its_include(first.origin, t.origin)]
        elif len({_values(t) for t in preferred}) == 1:
            kept.append(preferred[0])
        else:
            others = ", ".join(sorted({f"'{t.origin.label}'" for t in preferred}))
            dropped += [_dropped(t, f"the preferences {others} disagree, so none applies")
                        for t in preferred]
    if conflicts:
        raise VirtunedError(conflicts, ExitCode.CONFLICT)
    order = {id(t): i for i, t in enumerate(traits)}
    kept.sort(key=lambda t: order[id(t)])
    return tuple(kept), tuple(dropped)


def _values(trait: ResolvedTrait) -> tuple:
    return (trait.phrase, trait.args)


def _conflict(trait: ResolvedTrait, other: ResolvedTrait) -> Diagnostic:
    related = (Related(other.origin.span, "the other one is here"),)
    related += _chain_notes(other.origin.chain)
    notes = _chain_notes(trait.origin.chain)
    return Diagnostic("error", f"'{trait.origin.label}' conflicts with "
                      f"'{other.origin.label}'", trait.origin.span, notes + related,
                      "keep one of the two, or make the weaker one a 'prefer'")


def overrides_its_include(decider: Origin, preference: Origin) -> bool:
    """Whether ``decider`` sits in a profile that includes (directly or not) the
    profile of ``preference``: specializing what an included profile prefers is what
    includes are for, so that preference gives way without a warning."""
    return decider.span is not None and any(
        link.span.file == decider.span.file for link in preference.chain)


def _dropped(trait: ResolvedTrait, why: str) -> Diagnostic:
    return Diagnostic("warning", f"preference '{trait.origin.label}' dropped: {why}",
                      trait.origin.span)


def _own_order(trait: ResolvedTrait) -> tuple:
    custom = trait.definition.order
    return custom(trait.kwargs) if custom else ()


def _sortable(args) -> tuple:
    def canon(value):
        if isinstance(value, frozenset):
            return ("cpus", tuple(sorted(value)))
        if hasattr(value, "bytes"):
            return ("size", value.bytes)
        return (type(value).__name__, value)

    return tuple((name, canon(value)) for name, value in args)


# ---------------------------------------------------------------- params

def _typed(param: ast.Param, item, span: Span):
    """A param value from an item (literal, word, string), checked against its type."""
    text = item.value if isinstance(item, ast.String) else str(item)
    try:
        if param.type == "int":
            return values.parse_int(text)
        if param.type == "size":
            return values.parse_size(text)
        if param.type == "cpus":
            return values.parse_cpulist(text)
        if param.type == "bool":
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(f"expected true or false, got {text!r}")
        if param.type == "word":
            if isinstance(item, ast.Word):
                return text
            raise ValueError(f"expected a word, got {text!r}")
        return text  # string
    except ValueError as exc:
        raise error(span, f"param '{param.name}' ({param.type}): {exc}") from None


def _as_item(param: ast.Param, value, span: Span):
    """A typed value back as the item a trait line would have held."""
    if param.type == "string":
        return ast.String(value, span)
    if param.type == "cpus":
        return ast.Literal(values.format_cpulist(value), span)
    if param.type == "bool":
        return ast.Word("true" if value else "false", span)
    if param.type == "word":
        return ast.Word(value, span)
    return ast.Literal(str(value), span)


def _setting_item(text: str, span: Span):
    """``--set`` text as an item: typed later by the param it lands on."""
    if text[:1].isdigit():
        return ast.Literal(text, span)
    if text[:1].isalpha() or text[:1] == "_":
        return ast.Word(text, span)
    return ast.String(text, span)


def _shown(value) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return registry.to_text(value)


def _param_clash(key, span, other_span, params, other_params):
    differing = sorted(n for n in set(params) | set(other_params)
                       if params.get(n) != other_params.get(n))
    shown = ", ".join(f"{n} = {_shown(params.get(n))} vs {_shown(other_params.get(n))}"
                      for n in differing)
    related = (Related(other_span, "included here with other values"),) if other_span else ()
    return error(span or Span(REQUEST, 1, 1),
                 f"'{key}' is used twice with different params ({shown})",
                 related=related, exit_code=ExitCode.CONFLICT,
                 hint="one profile has one set of params per compile")


# ---------------------------------------------------------------- small helpers

def _chain_notes(chain) -> tuple[Related, ...]:
    return tuple(Related(link.span, f"'{link.name}' is included here")
                 for link in reversed(chain))


def _chain_error(span: Span, message: str, chain: tuple[str, ...], hint=None):
    related = _chain_notes(chain[:-1])
    return error(span, message, related=related, hint=hint)


def _choices(word: str, known) -> str | None:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean '{close[0]}'?" if close else None


