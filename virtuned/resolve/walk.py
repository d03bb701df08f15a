"""The walk over the profile graph: includes, params, ``when`` blocks and trait
lines, in one pass per set of facts.

``Walk`` is the compile's pass. Two passes differ from it in one place each:
``DecidedFacts`` (before it: only the unconditional traits, for the facts they
decide, such as the machine) and ``Check`` (``virtuned check``: every ``when`` body
whatever its condition, params that an includer would set, repeated lines)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from virtuned.diagnostics import (Diagnostic, ExitCode, Related, Span, VirtunedError,
                                  asking, did_you_mean, error)
from virtuned.frozen import frozen
from virtuned.resolve import composites, profiles, registry
from virtuned.resolve.conditions import FACTS, fact_equals, host_fact
from virtuned.resolve.model import (Link, Request, ResolvedTrait, Skipped, TraitSet,
                                    UsedProfile)
from virtuned.resolve.params import (as_item, declared_params, param_clash, param_values,
                                     setting_item)
from virtuned.resolve.traits import (chain_notes, combine, match_line, own_order, sortable,
                                     try_match, unmatched)
from virtuned.syntax import ast
from virtuned.syntax.format import format_condition
from virtuned.syntax.parser import parse


@frozen
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


class Walk:
    """The compile's pass over the profile graph, against the facts conditions test."""

    # Whether a param may have no value (an includer would give it one).
    unset_params_allowed = False

    def __init__(self, request: Request, library: profiles.Library, facts: dict | None):
        self.request = request
        self.referenced: set[tuple[str, str]] = set()  # (profile, param) used
        self.library = library
        self.composites = composites.Composites(library)
        self.facts = facts
        self.definitions = registry.all_traits()
        self.traits: list[ResolvedTrait] = []
        self.problems: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.skipped: list[Skipped] = []
        self.used: dict[str, UsedProfile] = {}
        self.instances: dict[str, tuple[_Instance, Span | None]] = {}
        self.settings_used: set[str] = set()
        self.exit_code = ExitCode.INVALID_INPUT

    # -- entry points

    def run(self) -> Walk:
        roots = []
        for file in self.request.roots:  # every root's declarations, before any use
            self._guard(lambda f: roots.append((f, self._declarations_of(f))), file)
        for file, tree in roots:
            self._guard(self._root, file, tree)
        self._check_settings()
        if self.problems:
            raise VirtunedError(self.problems, self.exit_code)
        return self

    def result(self) -> TraitSet:
        self.traits += self._expansions()
        order = {d.phrase: i for i, d in enumerate(self.definitions)}
        self.traits.sort(key=lambda t: (order[t.phrase], own_order(t), sortable(t.args),
                                        t.soft, t.origin.span))
        kept, dropped = combine(self.traits)
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

    def _declarations_of(self, file: profiles.ProfileFile) -> ast.Profile:
        tree = parse(file.text, file.source)
        self.composites.add_own(file, tree)
        return tree

    def _root(self, file: profiles.ProfileFile, tree: ast.Profile) -> None:
        settings = self._settings_for(tree.header.name if tree.header else None, tree)
        self._instantiate(file, tree, settings, chain=(), names=(), via=None,
                          conditional=False)

    def _instantiate(self, file, tree, assigned: dict, chain, names, via: Span | None,
                     conditional: bool) -> None:
        declared = declared_params(tree)
        params = param_values(tree, declared, assigned, self.unset_params_allowed,
                              self.request.option_names)
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
                raise param_clash(instance.name, via, previous[1], params,
                                   previous[0].params)
            return  # already evaluated with the same values: a union is idempotent
        self.instances[instance.name] = (instance, via)
        if via is not None:  # an included profile's declarations (a root's are known)
            composites.declared(file, tree)
        self._record(file, tree)
        self._block(instance, tree.statements, conditional)

    def _record(self, file, tree) -> None:
        header = tree.header
        used = UsedProfile(header.name if header else file.source,
                           header.version if header else None, file.sha256, file.source)
        self.used[file.source] = used

    def _settings_for(self, profile_name: str | None, tree) -> dict:
        """``--set`` values that address this root profile: ``NAME=`` or ``PROFILE.NAME=``."""
        declared = {s.name for s in tree.statements if isinstance(s, ast.Param)}
        chosen = {}
        for index, (target, text) in enumerate(self.request.settings):
            owner, _, name = target.rpartition(".")
            if (owner and owner == profile_name) or (not owner and name in declared):
                span = self._setting(target, text)
                chosen[name] = (setting_item(text, span), span)
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
        if isinstance(statement, ast.Declaration):
            self._declaration(instance, statement)
        elif isinstance(statement, (ast.Header, ast.Param)):
            if isinstance(statement, ast.Header) and statement is not instance.tree.header:
                raise error(statement.span, "a profile has one header, at its top")
            return
        if isinstance(statement, ast.Include):
            self._include(instance, statement, conditional)
        elif isinstance(statement, ast.When):
            self._when(instance, statement)
        elif isinstance(statement, ast.TraitLine):
            self._use(instance, statement, statement, "require", conditional)
        elif isinstance(statement, ast.Prefer):
            self._use(instance, statement.trait, statement, "prefer", conditional)

    def _declaration(self, instance: _Instance, declaration: ast.Declaration) -> None:
        """A composite trait's declaration acts where the composite is used."""

    def _when(self, instance: _Instance, when: ast.When) -> None:
        if self._holds(instance, when.condition):
            self._block(instance, when.body, conditional=True)
        else:
            self.skipped.append(Skipped(when.span, format_condition(when.condition),
                                        instance.chain))

    def _include(self, instance: _Instance, include: ast.Include, conditional: bool) -> None:
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
            hint = None if versions else did_you_mean(include.name, self.library.names())
            raise _chain_error(include.span, message, chain, hint)
        file = profiles.load_library_file(path)
        assigned = {a.name: (self._substitute(instance, a.value,
                                              allow_unset=self.unset_params_allowed),
                             a.span)
                    for a in include.assignments}
        for target, text in self.request.settings:
            owner, _, name = target.rpartition(".")
            if owner == include.name:
                span = self._setting(target, text)
                assigned[name] = (setting_item(text, span), span)
                self.settings_used.add(target)
        self._instantiate(file, parse(file.text, file.source), assigned, chain,
                          instance.names, include.span, conditional)

    def _use(self, instance, line: ast.TraitLine, statement, strength, conditional) -> None:
        """A trait line: a trait of virtuned's, or a composite trait's parts here."""
        items = tuple(self._substitute(instance, item) for item in line.items)
        line = ast.TraitLine(items, statement.span)
        resolved = try_match(line, self.definitions, instance.chain, strength)
        if resolved is not None:
            self._trait(instance, resolved, statement, conditional)
            return
        phrase = composites.words_of(line)
        composite = self.composites.find(phrase) if phrase else None
        if composite is None:
            raise unmatched(line, self.definitions, self.composites.phrases())
        self._expand(instance, composite, statement, strength, conditional)

    def _expand(self, instance, composite: composites.Composite, statement, strength,
                conditional, kind: str = "trait") -> None:
        """A composite's parts, each as if written at its use; an error in one names
        the use."""
        used = [link.name for link in instance.chain if link.composite]
        if composite.phrase in used:  # the uses above add their notes
            cycle = used[used.index(composite.phrase):] + [composite.phrase]
            raise error(statement.span, f"trait '{composite.phrase}' uses itself "
                        f"through {' → '.join(cycle)}")
        if len(used) == composites.MAX_DEPTH:
            raise error(statement.span, f"composite traits nest more than "
                        f"{composites.MAX_DEPTH} deep here")
        self._record(composite.file, composite.tree)
        link = Link(composite.phrase, statement.span, kind)
        inner = _Instance(composite.file, composite.tree, {}, {}, instance.chain + (link,),
                          instance.names)
        for part in composite.parts:
            line = part.trait if isinstance(part, ast.Prefer) else part
            soft = strength == "prefer" or isinstance(part, ast.Prefer)
            try:
                self._use(inner, line, part, "prefer" if soft else "require", conditional)
            except VirtunedError as exc:
                raise VirtunedError([attrs.evolve(d, related=d.related + (
                    Related(link.span, link.note),)) for d in exc.diagnostics],
                    exc.exit_code) from None

    def _trait(self, instance, resolved: ResolvedTrait, statement, conditional) -> None:
        if conditional and resolved.definition.facts(resolved.kwargs):
            decided = resolved.definition.facts(resolved.kwargs)
            raise error(statement.span, f"'{resolved.origin.label}' decides the fact "
                        f"{', '.join(decided)}, which 'when' conditions read: it cannot "
                        "sit inside a 'when' block",
                        hint="move it out of the block, or condition on a param instead")
        self.traits.append(resolved)

    def _substitute(self, instance: _Instance, item, allow_unset: bool = False):
        if not isinstance(item, ast.ParamRef):
            return item
        self.referenced.add((instance.name, item.name))
        if item.name not in instance.declared:
            raise error(item.span, f"unknown parameter ${item.name}",
                        hint=did_you_mean(item.name, tuple(instance.declared)) or
                        "parameters are declared with 'param NAME: TYPE'")
        if item.name not in instance.params:
            if allow_unset:
                return item
            raise error(item.span, f"${item.name} is not set",
                        hint=f"give it a default, or guard the line with "
                             f"'when {item.name} {{ ... }}'")
        return as_item(instance.declared[item.name], instance.params[item.name], item.span)

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
        items = tuple(self._substitute(instance, i, allow_unset=self.unset_params_allowed)
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
                        hint=did_you_mean(head, known) or
                        f"conditions test {', '.join(FACTS)} or a param of this profile")
        words = [str(i) for i in items[1:]]
        if head == "host":
            return host_fact(self.facts.get("host"), words, test)
        if head == "os" and words[:1] == ["family"]:
            return fact_equals(self.facts, "os family", words[1:], test)
        return fact_equals(self.facts, head, words, test)


class DecidedFacts(Walk):
    """The pass before the compile's: the facts the unconditional traits decide (the
    machine), which every condition of the compile's pass may then read, and its
    traits, for the facts they prefer."""

    def __init__(self, request: Request, library: profiles.Library):
        super().__init__(request, library, facts=None)
        self.decided: dict = {}

    def _check_settings(self) -> None:
        pass  # the compile's pass checks them

    def _when(self, instance: _Instance, when: ast.When) -> None:
        pass  # only unconditional statements decide facts

    def _trait(self, instance, resolved: ResolvedTrait, statement, conditional) -> None:
        self.decided.update(resolved.definition.facts(resolved.kwargs))
        self.traits.append(resolved)  # for the facts they prefer


class Check(Walk):
    """``virtuned check``: every ``when`` body is checked whatever its condition, a
    param may be unset (an includer sets it), only unconditional traits are combined,
    and repeated lines and params nothing reads are reported."""

    unset_params_allowed = True

    def __init__(self, request: Request, library: profiles.Library, facts: dict):
        super().__init__(request, library, facts)
        self.seen_lines: dict[tuple, Span] = {}

    def _expansions(self) -> list[ResolvedTrait]:
        return []  # what 'recommended' stands for depends on the input

    def _when(self, instance: _Instance, when: ast.When) -> None:
        self._holds(instance, when.condition)  # its facts and params must exist
        self._block(instance, when.body, conditional=True)

    def _use(self, instance, line: ast.TraitLine, statement, strength, conditional):
        if any(isinstance(i, ast.ParamRef) and i.name in instance.declared
               and i.name not in instance.params for i in line.items):
            self._check_unset_line(instance, line)
            return
        super()._use(instance, line, statement, strength, conditional)

    def _trait(self, instance, resolved: ResolvedTrait, statement, conditional) -> None:
        if not any(link.composite for link in instance.chain):
            self._note_repeat(instance, resolved)  # a composite's parts are checked alone
        if not conditional:  # only unconditional traits can be seen to conflict
            self.traits.append(resolved)

    def _declaration(self, instance: _Instance, declaration: ast.Declaration) -> None:
        """A declared composite, checked as if used alone: its parts must name
        traits and agree with each other."""
        composite = composites.declared(instance.file, instance.tree)[
            " ".join(declaration.phrase.value.split())]
        before = self.traits
        self.traits = []
        try:
            self._expand(instance, composite, declaration.phrase, "require",
                         conditional=False, kind="declaration")
            combine(self.traits)
        finally:
            self.traits = before

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
            close = registry.suggest([str(i) for i in line.items], names)
            raise error(line.span, f"unknown trait '{line.words}'",
                        hint=asking(close) or "'virtuned traits' lists every trait")


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


def _chain_error(span: Span, message: str, chain: tuple[str, ...], hint=None):
    related = chain_notes(chain[:-1])
    return error(span, message, related=related, hint=hint)
