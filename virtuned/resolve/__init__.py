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

from virtuned.diagnostics import Diagnostic
from virtuned.facts.platform import Stated
from virtuned.resolve import profiles
from virtuned.resolve.conditions import condition_facts
from virtuned.resolve.model import (FactsFor, Link, Origin, Request, ResolvedTrait, Skipped,
                                    TraitSet, UsedProfile, overrides_its_include,
                                    preferred_facts)
from virtuned.resolve.walk import Check, DecidedFacts, Walk

__all__ = ["resolve", "check", "condition_facts", "FactsFor", "Link", "Origin", "Request",
           "ResolvedTrait", "Skipped", "TraitSet", "UsedProfile", "overrides_its_include"]


def resolve(request: Request, facts_for: FactsFor = lambda decided, preferred: decided
            ) -> TraitSet:
    """Resolve a request. ``facts_for`` turns the facts the traits decide (``machine``)
    and prefer into the full facts conditions may test (adding the input domain's)."""
    library = profiles.Library(profiles.search_path(request.profile_path))
    first = DecidedFacts(request, library).run()
    facts = dict(facts_for(first.decided, {}))
    preferred = preferred_facts(first.traits, facts)
    if preferred:
        facts = dict(facts_for(first.decided, preferred))
    walk = Walk(request, library, facts=facts).run()
    return walk.result()


def check(files: tuple[profiles.ProfileFile, ...], profile_path: tuple[str, ...] = ()
          ) -> tuple[Diagnostic, ...]:
    """Author-time checks of profiles, with no domain and no host: syntax, unknown
    traits and facts, types and units, include problems, conditions that can never
    hold, conflicts among unconditional traits, unused params, repeated traits and
    preferences a required trait always overrides. Errors raise; warnings return."""
    library = profiles.Library(profiles.search_path(profile_path))
    request = Request(files, (), profile_path)
    facts = condition_facts(Stated(None, None, None, False), {})
    walk = Check(request, library, facts).run()
    result = walk.result()
    return tuple(walk.unused_params()) + result.warnings
