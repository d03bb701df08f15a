"""``virtuned apply``: compile against a live host and define the result there.

One connection (facts/live.py) reads the host, the existing definition when the
input is a guest already defined there (``--domain NAME``: its inactive definition,
virDomainGetXMLDesc with VIR_DOMAIN_XML_INACTIVE, and VIR_DOMAIN_XML_SECURE so that
its passwords survive being defined again; a dry run reads it without them, as it
prints it), and defines the compiled domain (virDomainDefineXMLFlags with
VIR_DOMAIN_DEFINE_VALIDATE: libvirt checks it against its schema first).

The guest being defined again holds nothing for itself: its own pins and memory
are not counted against it (snapshot.host_of's ``ignore``). Nothing is defined
when anything fails: the definition is the last step, and libvirt's refusal is an
input error (exit 2) quoting libvirt, or a conflict (exit 3) where libvirt says the
name or UUID is another guest's.
"""

from __future__ import annotations

from virtuned import api, domain as domains
from virtuned.diagnostics import CLI_OPTIONS, ExitCode, Span, VirtunedError, error
from virtuned.frozen import frozen


@frozen
class ApplyResult:
    name: str  # the domain's name
    xml: str  # what was (or, in a dry run, would be) defined
    input_xml: str | None  # the input: the file's text, or the definition read
    input_name: str  # how diagnostics and the diff name the input
    warnings: tuple
    defined: bool  # False in a dry run

    def diff(self) -> str:
        """The unified diff input → output, as ``explain --diff`` prints it."""
        import difflib

        before = (self.input_xml or "").splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, self.xml.splitlines(keepends=True),
                                            f"a/{self.input_name}", f"b/{self.input_name}"))


def apply(connect: str, domain_xml: str | bytes | None = None, *,
          domain: str | None = None, dry_run: bool = False, **request) -> ApplyResult:
    """Compile ``domain_xml`` (or the inactive definition of the guest ``domain``)
    against the host ``connect`` names and define it there (unless ``dry_run``).
    Takes ``compile``'s other keyword arguments (not ``host``: the host is the one
    connected to)."""
    from virtuned.facts import live  # only apply needs libvirt

    option_names = request.get("option_names", CLI_OPTIONS)
    request.pop("connect", None), request.pop("host_name", None)
    if request.pop("host", None) is not None:
        raise error(option_names.span("connect", connect), "apply defines on the host it "
                    f"connects to: give {option_names.name('connect')}, not "
                    f"{option_names.name('host')}")
    if (domain_xml is None) == (domain is None):
        raise error(Span("apply", 1, 1), "apply takes a domain XML file or --domain NAME "
                    "(one of them)")
    with live.Live(connect) as session:
        if domain is not None:
            domain_xml = _definition(session, domain, secure=not dry_run)
            request["domain_name"] = f"<domain {domain}>"
        name = _name_of(domain_xml, request.get("domain_name", "<domain>"))
        host = api.live_host(connect, session=session,
                             ignore=frozenset({name} if name else ()))
        compiled = api.compile(domain_xml, **request, host=host, host_name=connect)
        final = _name_of(compiled.xml, "<output>")
        if not dry_run:
            _define(session, compiled.xml)
    original = domain_xml.decode("utf-8", "replace") if isinstance(domain_xml, bytes) \
        else domain_xml
    return ApplyResult(final, compiled.xml, original,
                       domain or request.get("domain_name", "<domain>"),
                       compiled.warnings, not dry_run)


def _definition(session, name: str, secure: bool) -> str:
    """The inactive definition of the guest ``name`` on the connected host."""
    libvirt = session.libvirt
    dom = session._call(session.conn.lookupByName, name, what=f"guest {name}")
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | (libvirt.VIR_DOMAIN_XML_SECURE if secure
                                                else 0)
    return session._call(dom.XMLDesc, flags, what=f"guest {name}: definition")


def _name_of(xml: str | bytes, source: str) -> str | None:
    """The <name> a domain states (it was or will be parsed with care elsewhere)."""
    found = domains.parse(xml, source).getroot().findtext("name")
    return found.strip() if found else None


def _define(session, xml: str) -> None:
    """Define ``xml``, validated against libvirt's schema; a refusal is an error
    quoting libvirt (exit 3 when the name or UUID is another guest's)."""
    libvirt = session.libvirt
    try:
        session._call(session.conn.defineXMLFlags, xml,
                      libvirt.VIR_DOMAIN_DEFINE_VALIDATE, what="define")
    except VirtunedError as exc:
        refused = exc.diagnostics[0]
        if "no answer from libvirt" in refused.message:
            raise
        message = refused.message.replace(": define: ", ": libvirt refused to define the "
                                          "domain: ", 1)
        conflict = "already exists" in message or "already defined" in message
        raise error(refused.span, message, exit_code=ExitCode.CONFLICT if conflict
                    else ExitCode.INVALID_INPUT) from None
