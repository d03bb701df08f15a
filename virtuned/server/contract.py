"""The HTTP service's contract as types: what each request may hold and what each
answer holds, with their limits and descriptions, stated once.

Everything else is derived from them:

- request validation (validation.py): msgspec decodes a body straight into a request
  type, checking every limit in C; a body it refuses is checked again against the
  same types, to name every problem at once by its JSON pointer;
- ``virtuned/openapi.json`` and ``virtuned/plan.schema.json`` (documents.py), checked
  in and regenerated with ``python -m virtuned.server.documents --write`` (a test fails
  when they are stale);
- the answers: the server encodes them as these types.

The plan and fit answers are ``virtuned plan``'s and ``virtuned fit``'s JSON, which
virtuned/plan/report.py writes (the core library does not need msgspec);
tests/test_plan_fit.py checks what it writes against the schema generated here.

``Meta(extra={"invalid": ...})`` words what is said of a value its type refuses in
the words of the trait language's users rather than JSON Schema's: text that breaks
its pattern or is empty, any integer out of its range (``{value}`` is the value as
JSON). Text over its length limit always says its length.
"""

from typing import Annotated, Literal, NamedTuple, Optional, Union

from msgspec import Meta, Struct

# ---------------------------------------------------------------- limits

TEXT_CHARS = 64 * 1024  # one trait text, profile text, CPU list, name or param value
ITEMS = 64  # entries in each list or map (profiles, traits, params, hosts, device_nodes)
PROFILE_NAME_CHARS = 128
# Hosts in one fit request: 1 MiB of body holds some 13,000 given by their sha256.
HOSTS = 16384
PARAM_NAME_CHARS = 256

# ---------------------------------------------------------------- values

# XML texts are bounded by the body limit (a JSON string has no more characters than
# the bytes that spell it), and virtuned.domain's own caps (depth, no DTDs) apply.
Xml = str
Text = Annotated[str, Meta(max_length=TEXT_CHARS)]
# A profile name is a word of the trait language, as in ``include NAME``: it never
# holds a "/" or "..", so it can never be a path. ``$(?!\n)``: the end of the text in
# Python's regular expressions (whose ``$`` also matches before a final newline) as
# in JSON Schema's.
ProfileName = Annotated[str, Meta(
    max_length=PROFILE_NAME_CHARS,
    pattern=r"^(?!.*\.\.)(?!.*\.vt$)[A-Za-z_][A-Za-z0-9_.+-]*$(?!\n)",
    description="A profile of the server's library: a word of the trait language (no "
                "`/`, no `..`, no `.vt`).",
    extra={"invalid": "{value} is not a profile name",
           "hint": "profiles are names from the server's library (GET /v1/profiles), "
                   "never files or paths"})]
ParamName = Annotated[str, Meta(min_length=1, max_length=PARAM_NAME_CHARS,
                                extra={"invalid": "a param name cannot be empty"})]
# JSON has one kind of number: 4.0 is the integer 4, as JSON Schema counts it.
ParamValue = Union[Text, int, bool]
HostNode = Annotated[int, Meta(ge=0, le=65535, extra={
    "invalid": "expected a host NUMA node (0, 1, ...)"})]
CpuList = Annotated[str, Meta(pattern=r"^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$")]


class _Contract(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A request or an answer: no field but its own (additionalProperties false)."""


# ---------------------------------------------------------------- requests

class _Request(_Contract):
    """What compile, explain, plan and fit share. Every field is optional, and null
    means the same as leaving it out."""

    domain: Annotated[Optional[Xml], Meta(description=(
        "The input domain XML (complete, partial, or null for an empty domain). "
        "Diagnostics name it `<domain>`. Parsed with DTDs refused, at most 64 levels "
        "deep."))] = None
    profiles: Annotated[Optional[Annotated[list[ProfileName], Meta(max_length=ITEMS)]],
                        Meta(description=(
        "Names of profiles from the server's library (GET /v1/profiles); never files "
        "or paths. The newest version of each is used."))] = None
    traits: Annotated[Optional[Annotated[list[Text], Meta(max_length=ITEMS)]],
                      Meta(description=(
        "Inline trait texts, each a complete source of the trait language; diagnostics "
        "name them `<trait 1>`, `<trait 2>`... in the order given."))] = None
    params: Annotated[Optional[Annotated[dict[ParamName, ParamValue],
                                         Meta(max_length=ITEMS)]], Meta(description=(
        "Profile params, as the CLI's `--set NAME=VALUE`: keys `NAME` or "
        "`PROFILE.NAME`; values strings, integers or booleans, given to the profile as "
        "the CLI's text."))] = None
    domcaps: Annotated[Optional[Xml], Meta(description=(
        "`virsh domcapabilities` XML of the host's hypervisor: traits refuse what it "
        "does not offer."))] = None
    reserved_cpus: Annotated[Optional[Text], Meta(description=(
        "Host CPUs the VM must never use, in libvirt's CPU list syntax (`0-1,^1`)."))] \
        = None
    allocated_cpus: Annotated[Optional[Text], Meta(description=(
        "The cpuset a node agent allocated to this VM, in libvirt's CPU list "
        "syntax."))] = None
    name: Annotated[Optional[Text], Meta(description=(
        "The domain name when the input has none (default `vm`)."))] = None
    device_nodes: Annotated[Optional[Annotated[dict[Text, HostNode],
                                               Meta(max_length=ITEMS)]], Meta(description=(
        "Host NUMA node of host PCI devices (`0000:3b:00.0`), for `device numa "
        "affinity`."))] = None


class CompileRequest(_Request):
    """The request of compile, explain and plan. Every field is optional, and null
    means the same as leaving it out."""

    host: Annotated[Optional[Xml], Meta(description=(
        "`virsh capabilities` XML of the host the domain will run on."))] = None
    override: Annotated[Optional[bool], Meta(description=(
        "Required traits replace values the domain states instead of conflicting "
        "with them (compile and explain); each replaced value is a warning."))] = None


class HostReference(_Contract):
    """A host document the server already has, by the sha256 of its text."""

    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description=(
        "The sha256 (lowercase hex) of the document's text, UTF-8, as it was sent: "
        "the server answers 409 `unknown-host` when it does not have it."), extra={
        "invalid": "{value} is not a sha256 (64 lowercase hex digits)"})]


class FitRequest(_Request, kw_only=True):
    """The request of fit: compile's fields but `host`, the candidate `hosts`, and
    how many of the best to answer."""

    hosts: Annotated[list[Union[Xml, HostReference]], Meta(
        min_length=1, max_length=HOSTS, description=(
            "Each candidate host: `virsh capabilities` XML or a host snapshot (JSON "
            "text), or `{\"sha256\": ...}` naming one the server already has (from an "
            "earlier request); named `<hosts/0>`, `<hosts/1>`... in diagnostics and "
            "answers."))]
    best: Annotated[Optional[Annotated[int, Meta(ge=1, le=HOSTS, extra={
        "invalid": "expected a number of hosts (1, 2, ...), got {value}"})]], Meta(
        description=(
            "Answer only the `best` hosts the VM fits on, best score first (ties in the "
            "order given); null: every host, in the order given."))] = None


class CheckRequest(_Contract):
    text: Annotated[Text, Meta(description="A profile's text, named `<profile>` in "
                                           "diagnostics.")]


# ---------------------------------------------------------------- answers

class Related(_Contract):
    message: str
    file: str
    line: int
    col: int


class Diagnostic(_Contract):
    """A diagnostic as the CLI prints it, structured."""

    severity: Literal["error", "warning"]
    message: str
    file: Annotated[str, Meta(description=(
        "The source: `<request>`, `<domain>`, `<trait N>`, `<profile>`, a library "
        "profile such as `traits/server.vt`. A diagnostic about a field of the request "
        "(`/params/NAME`, `/reserved_cpus`) is on `<request>` and names the field's JSON "
        "pointer in its message."))]
    line: Annotated[int, Meta(ge=1)]
    col: Annotated[int, Meta(ge=1)]
    end_line: Optional[int]
    end_col: Optional[int]
    hint: Optional[str]
    related: list[Related]


Warnings = Annotated[list[Diagnostic], Meta(
    description="Preferences (`prefer ...`) that could not hold and were dropped, each "
                "at the line that states it.")]


class CompileResult(_Contract):
    xml: str
    warnings: Warnings


class Location(_Contract):
    file: str
    line: int
    col: int


class Link(_Contract):
    """One step of the chain behind a trait: a profile included, or a composite trait
    used (whose part the trait is), at a place."""

    at: Optional[Location]
    include: Annotated[Optional[str], Meta(description="the profile included here")] = None
    trait: Annotated[Optional[str], Meta(
        description="the composite trait used here")] = None


class Change(_Contract):
    path: Annotated[str, Meta(description="XPath-like: what changed")]
    old: Annotated[Optional[str], Meta(description="null: added")]
    new: Annotated[Optional[str], Meta(description="null: removed (an input element the "
                                                   "request's `override` replaced)")]
    trait: Annotated[str, Meta(description=(
        "the trait behind the change, or 'completion' (what libvirt needs) or "
        "'completion: WHAT' (a good-VM default where nothing said otherwise)"))]
    strength: Annotated[Literal["require", "prefer", "default"], Meta(description=(
        "default: a completion, which only fills"))]
    at: Optional[Location]
    chain: Annotated[list[Link], Meta(description="the includes and composite traits "
                                                  "that brought the trait in, outermost "
                                                  "first")]
    overridden: Annotated[bool, Meta(description=(
        "the input stated `old`, and the request's `override` let the trait replace "
        "it"))] = False


class Skipped(_Contract):
    when: str
    at: Optional[Location]


class Explanation(_Contract):
    xml: str
    changes: list[Change]
    skipped: Annotated[list[Skipped], Meta(description="`when` blocks whose condition "
                                                       "did not hold")]
    warnings: Warnings


class CheckResult(_Contract):
    warnings: list[Diagnostic]


class ProfileListing(_Contract):
    name: ProfileName
    version: str
    versions: list[str]
    summary: str
    sha256: Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description=(
        "of the newest version's text, as a compiled domain's provenance records it"))]


class SlotListing(_Contract, omit_defaults=True):
    """A value of a trait's phrase and what it takes."""

    name: str
    type: str
    takes: Annotated[str, Meta(description="what the value takes, in words")]
    choices: Optional[list[str]] = None
    minimum: Optional[int] = None
    maximum: Optional[int] = None


class TraitListing(_Contract, omit_defaults=True):
    """A trait, as `virtuned traits --json` lists it (virtuned/reference.py)."""

    name: str
    usage: Annotated[str, Meta(description="the phrase with its values named")]
    signature: Annotated[str, Meta(description="the phrase with choices spelled out")]
    version: Annotated[int, Meta(description="the trait's semantics version")]
    summary: str
    example: str
    doc: str
    slots: list[SlotListing]
    module: Annotated[str, Meta(description="where it is defined: the trait's module, "
                                            "or a composite's profile file")]
    profile: Annotated[Optional[str], Meta(
        description="a composite trait's declaring profile")] = None
    parts: Annotated[Optional[list[str]], Meta(
        description="a composite trait's parts, as trait text")] = None


class Health(_Contract):
    status: Literal["ok"]
    version: str


# ---- plan and fit: what 'virtuned plan' and 'virtuned fit' print

class CpuNeeds(_Contract):
    policy: Annotated[Optional[Literal["dedicated", "shared"]], Meta(
        description="null: the traits ask for no CPU policy")]
    threads: Annotated[Optional[Literal["prefer", "isolate", "require"]], Meta(
        description="the thread policy of dedicated CPUs")]
    threads_per_core: Annotated[Optional[Annotated[int, Meta(ge=2)]], Meta(
        description="threads require: host cores must have this many threads")]
    dedicated: Annotated[int, Meta(ge=0, description=(
        "host CPUs the guest needs for itself: one per vCPU, plus one for an isolated "
        "emulator (under threads isolate each is a whole core)"))]
    shared: Annotated[int, Meta(ge=0, description="vCPUs that float over shared host "
                                                  "CPUs")]
    realtime: bool


class EmulatorNeeds(_Contract):
    policy: Optional[Literal["isolated", "shared"]]
    dedicated_cpus: Annotated[int, Meta(ge=0, le=1)]


class Hugepages(_Contract):
    page_kib: Annotated[int, Meta(ge=4)]
    pages: Annotated[int, Meta(ge=0)]


class GuestCell(_Contract):
    id: Annotated[int, Meta(ge=0)]
    vcpus: CpuList
    cpus: Annotated[int, Meta(ge=0)]
    dedicated_cpus: Annotated[int, Meta(ge=0)]
    memory_kib: Annotated[int, Meta(ge=0)]
    hugepages: Annotated[int, Meta(ge=0)]


class Requirements(_Contract):
    """What the guest needs of any host (phase one, before scheduling)."""

    vcpus: Annotated[int, Meta(ge=1)]
    memory_kib: Annotated[int, Meta(ge=1)]
    cpus: CpuNeeds
    emulator: EmulatorNeeds
    iothreads: Annotated[int, Meta(ge=0)]
    hugepages: Optional[Hugepages]
    host_node: Optional[Annotated[int, Meta(ge=0)]]
    guest_numa: Annotated[bool, Meta(description="the guest has NUMA cells of its own")]
    cells: Annotated[list[GuestCell], Meta(description=(
        "The guest cells (one implicit cell when the guest has no NUMA cells); each goes "
        "on one host node."))]
    needs_host: Annotated[bool, Meta(description=(
        "whether compile writes host-specific XML (pinning, memory binding) given a "
        "host"))]


class CellPlacement(_Contract):
    cell: Annotated[int, Meta(ge=0)]
    host_node: Optional[Annotated[int, Meta(ge=0)]]
    vcpus: Annotated[dict[str, CpuList], Meta(description="vCPU number -> the host CPUs "
                                                          "it runs on")]


class Placement(_Contract):
    """Where the guest goes on one host."""

    nodes: Annotated[CpuList, Meta(description="host nodes used; empty when shared CPUs "
                                               "float over the whole host")]
    cpuset: Annotated[CpuList, Meta(description="every host CPU the guest runs on")]
    cells: list[CellPlacement]
    emulator: CpuList
    iothreads: Optional[CpuList]


class Plan(_Contract):
    """What 'virtuned plan' prints."""

    requirements: Requirements
    placement: Annotated[Optional[Placement], Meta(description=(
        "Where the guest goes on the host given (`--host`, `host`); null without one, "
        "or when the guest asks for no placement."))]


class PlanResult(Plan):
    """What 'virtuned plan' prints, and the warnings."""

    warnings: Warnings


class Fit(_Contract):
    """Whether the guest fits one host, why not, and where it would go."""

    host: Annotated[str, Meta(description="the host's capabilities file as given "
                                          "(`<hosts/N>` over HTTP)")]
    fits: bool
    reason: Annotated[Optional[str], Meta(description="why not: the binding constraint "
                                                      "per host node")]
    score: Annotated[Optional[Annotated[float, Meta(ge=0, le=1)]], Meta(description=(
        "How well the host suits the guest, 0 to 1, higher better "
        "(docs/placement.md#ranking-hosts); null when it does not fit"))]
    placement: Optional[Placement]


# ---------------------------------------------------------------- problems

class ProblemKind(NamedTuple):
    status: int
    title: str
    exit_code: int  # the CLI's: 2 invalid input, 3 conflict, 1 not the client's input
    when: str  # for the OpenAPI document
    retry_after: bool = False  # answered with a Retry-After header


PROBLEMS = {
    "malformed-request": ProblemKind(
        400, "The request body is not valid JSON", 2,
        "The body is not JSON: a syntax error, not UTF-8, or nested too deeply."),
    "unauthorized": ProblemKind(401, "Unauthorized", 2, (
        "The server requires a bearer token (`serve --tokens`), and the request has "
        "none, or one it does not accept (`WWW-Authenticate` says which).")),
    "forbidden": ProblemKind(403, "Forbidden", 2, (
        "The server requires a client certificate (`serve --client-ca`: mutual TLS), "
        "and the connection has none.")),
    "not-found": ProblemKind(404, "No such resource", 2, "No such path."),
    "method-not-allowed": ProblemKind(405, "Method not allowed", 2,
                                      "A path that takes another method."),
    "request-timeout": ProblemKind(408, "The request did not arrive in time", 2, (
        "The head did not arrive within the header time limit, or the body within the "
        "time limit.")),
    "conflict": ProblemKind(409, "Conflicting or infeasible request", 3,
                            "A conflict or an infeasible request (the CLI's exit 3)."),
    "unknown-host": ProblemKind(409, "Unknown host document", 2, (
        "A host given by its sha256 that this server does not have (a replica keeps "
        "the documents it was sent for a while, not forever): each is named by its "
        "pointer; send those documents themselves.")),
    "too-large": ProblemKind(413, "Request body too large", 2,
                             "The body is larger than the limit (default 1 MiB)."),
    "unsupported-media-type": ProblemKind(415, "Unsupported media type", 2,
                                          "The body is not `application/json` (UTF-8)."),
    "invalid-input": ProblemKind(422, "Invalid input", 2, (
        "JSON that fails validation (each problem named by its JSON pointer), or input "
        "the compiler refuses (the CLI's exit 2).")),
    "internal": ProblemKind(500, "Internal server error", 1, (
        "A bug in virtuned; the server's log has the details under the request id.")),
    "overloaded": ProblemKind(503, "Server overloaded", 1, (
        "No operation slot became free within the time limit; retry later or on "
        "another replica (`Retry-After`)."), retry_after=True),
    "timeout": ProblemKind(504, "Time limit exceeded", 1,
                           "The operation did not finish within the time limit."),
}
PROBLEM_TYPE = "urn:virtuned:problem:"


class Problem(_Contract):
    """RFC 9457 problem details, with the CLI's diagnostics and exit code."""

    type: Annotated[Literal[tuple(PROBLEM_TYPE + kind for kind in PROBLEMS)], Meta(
        description="`urn:virtuned:problem:KIND`: " + ", ".join(
            f"{kind} ({problem.status})" for kind, problem in PROBLEMS.items()) + ".")]
    title: str
    status: int
    detail: Annotated[str, Meta(description=(
        "The diagnostics as the CLI prints them: `file:line:col: error: message`, the "
        "source line and a caret, notes and hints; or what went wrong, when nothing in "
        "the input can be pointed at."))]
    instance: Optional[str]
    request_id: Annotated[Optional[str], Meta(description=(
        "Also in the X-Request-ID response header and the server's access log."))]
    diagnostics: list[Diagnostic]
    exit_code: Annotated[Literal[1, 2, 3], Meta(description=(
        "What the CLI would exit with: 2 invalid input, 3 conflict, 1 not the client's "
        "input."))]


# ---------------------------------------------------------------- operations

class Operation(NamedTuple):
    method: str
    path: str
    name: str  # the OpenAPI operationId, and the service's handler
    summary: str
    description: str
    answer: object  # the type of a 200 answer's JSON (None: not JSON)
    answer_description: str
    request: type | None = None
    example: dict | None = None
    problems: tuple[str, ...] = ("internal",)
    media: tuple[str, ...] = ("application/json",)  # the first is the answer's JSON


# Whatever exists, a client the server refuses gets one of these (serve --tokens,
# --client-ca); /healthz never does, /metrics with --protect-metrics.
_REFUSED = ("unauthorized", "forbidden")
_ON_REQUESTS = _REFUSED + ("malformed-request", "request-timeout", "conflict", "too-large",
                "unsupported-media-type", "invalid-input", "internal", "overloaded",
                "timeout")
_EXAMPLE = {"domain": '<domain type="kvm"><name>web</name><memory unit="GiB">2</memory>'
                      '<vcpu>2</vcpu></domain>',
            "profiles": ["server"], "traits": ["video qxl"], "params": {}}

OPERATIONS = (
    Operation("POST", "/v1/compile", "compile", "Compile traits onto a domain", (
        "The complete domain XML and the warnings (dropped preferences). With `Accept: "
        "application/xml` the answer is the XML itself, with the number of warnings in "
        "the `Virtuned-Warnings` header."),
        CompileResult, "The compiled domain.", CompileRequest, _EXAMPLE, _ON_REQUESTS,
        ("application/json", "application/xml")),
    Operation("POST", "/v1/plan", "plan", "What a VM will need, for a scheduler", (
        "What a VM will need of a host (dedicated CPUs, memory and hugepages per guest "
        "cell, emulator and I/O threads), before a host is chosen: the scheduler's phase "
        "one. With `host` (and `reserved_cpus`, `allocated_cpus`) also where it goes on "
        "that host, or 409 when it cannot fit there. The answer is what `virtuned plan` "
        "prints (virtuned/plan.schema.json), with the warnings."),
        PlanResult, "The requirements, and the placement on `host` if one is given.",
        CompileRequest, {"profiles": ["server"], "traits": ["video qxl"]}, _ON_REQUESTS),
    Operation("POST", "/v1/fit", "fit", "Which of the given hosts can run the VM", (
        "Whether the VM fits each of `hosts`, why not (the binding constraint per host "
        "node), how well (`score`) and where it would go, one answer per host in the "
        "order given, each named `<hosts/N>` (N its index); with `best`, the best N that "
        "fit, best first. A host that cannot fit is an answer, not an error. A host "
        "given by a sha256 the server does not have is 409 `unknown-host`. The answer is "
        "what `virtuned fit` prints (virtuned/plan.schema.json)."),
        list[Fit], "One answer per host (or the best).", FitRequest, None,
        _ON_REQUESTS + ("unknown-host",)),
    Operation("POST", "/v1/explain", "explain", "Every change a compile makes, and why", (
        "As compile, plus every change with the trait, source location and include "
        "chain behind it, and the `when` blocks skipped."),
        Explanation, "The explanation.", CompileRequest, _EXAMPLE, _ON_REQUESTS),
    Operation("POST", "/v1/check", "check", "Check a profile for mistakes", (
        "Author-time checks of one profile text (named `<profile>` in diagnostics): "
        "errors answer 422 or 409; warnings are listed."),
        CheckResult, "No errors; the warnings.", CheckRequest,
        {"text": 'profile mine 1.0.0 "My defaults"\ninclude server ^1.0\nvideo qxl\n'},
        _ON_REQUESTS),
    Operation("GET", "/v1/profiles", "profiles", "The server's profile library",
              "Every profile of the library: its newest version, every version the "
              "library holds, its summary line and the sha256 of its text.",
              list[ProfileListing], "Every profile, newest version.",
              problems=_REFUSED + ("internal", "overloaded", "timeout")),
    Operation("GET", "/v1/traits", "traits", "The trait vocabulary",
              "Every trait: its name, usage, semantics version, summary and documentation.",
              list[TraitListing], "Every trait.", problems=_REFUSED + ("internal",)),
    Operation("GET", "/healthz", "health", "Liveness and readiness",
              "200 as long as the worker can answer, even while every operation slot "
              "is busy.", Health, "Serving."),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics",
              "Requests, latencies and problem answers of the whole server.",
              None, "The Prometheus text format.", media=("text/plain",),
              problems=_REFUSED + ("internal",)),
    Operation("GET", "/openapi.json", "openapi", "This document",
              "The OpenAPI 3.1 document, as shipped in virtuned/openapi.json.",
              dict, "The OpenAPI 3.1 document.", problems=_REFUSED + ("internal",)),
)
