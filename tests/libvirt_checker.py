#!/usr/bin/python3
"""Check libvirt domain XML files with libvirt's own validators, no daemon needed.

Usage: /usr/bin/python3 tests/libvirt_checker.py [--start | --boot SECONDS] FILE.xml...

Run it with Debian's /usr/bin/python3: it needs only the standard library and
the ``libvirt`` module (package python3-libvirt), which a pyenv or venv python
cannot import. It prints one JSON object on stdout:

    {"results": [{"file": F, "rng": "PASS"|"FAIL", "rng_error": str|null,
                  "qemu": "PASS"|"FAIL", "qemu_error": str|null, "notes": [str]}]}

(with --start or --boot each result also has "start": "PASS"|"FAIL"|null and
"start_error": str|null, and with --boot "boot_seconds": float|null) and exits 0 when every check passed, 1 when at least
one failed, 2 on a usage or environment error (message on stderr, no JSON).

Checks
  rng   ``xmllint --noout --relaxng /usr/share/libvirt/schemas/domain.rng``,
        run once over all files (packages libvirt0, libxml2-utils).
  qemu  libvirt's real QEMU driver embedded in this process
        (``qemu:///embed?root=DIR``, packages libvirt-daemon-driver-qemu,
        qemu-system-x86): ``defineXMLFlags(xml, VIR_DOMAIN_DEFINE_VALIDATE)``,
        i.e. the RNG schema, the parser with the QEMU post-parse defaults and
        ``qemuValidateDomainDef`` against the capabilities probed from the
        installed QEMU, then undefine (so names and UUIDs may repeat across
        files). One connection serves all files.
  start only with --start: define a copy whose <interface>s are type='user',
        start it paused, check it is paused, destroy and undefine it. Files the
        domain references (disk images, kernels) must exist.
        With --boot SECONDS the copy runs instead, and passes when the guest
        powers itself off within SECONDS (tests/guest.py boots a kernel whose
        init reports on a file serial port, then powers off).

How it runs
  * Inputs (and this script) are copied into a fresh temporary directory, so
    the files may live anywhere, e.g. under /root.
  * As root the work is done by user ``nobody`` (``runuser -u nobody``): the
    embedded driver in privileged mode wants the ``libvirt-qemu`` account and
    re-probes QEMU on every call. HOME and the XDG directories point into the
    temporary directory; the environment is otherwise cleared (LC_ALL=C.UTF-8,
    so messages are in English; LIBVIRT_DEBUG and LIBVIRT_LOG_* pass through).
  * If /dev/kvm is not readable and writable by that user (it is root-only on
    Debian, and absent on many CI machines), the qemu/start checks use a copy
    with ``<domain type='kvm'>`` -> ``'qemu'`` (TCG) and ``<cpu
    mode='host-passthrough'>`` -> ``'maximum'``; the result's notes say so.
  * The probed QEMU capabilities are cached in ``$VIRTUNED_LIBVIRT_CACHE``
    (default /var/tmp/virtuned-libvirt-cache-<uid of the checking user>):
    the first run per QEMU binary costs about 2 s more than later runs.
    libvirt itself invalidates entries when QEMU or libvirt change.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading

SCHEMA = "/usr/share/libvirt/schemas/domain.rng"
RUN_AS = "nobody"
CACHE_ENV = "VIRTUNED_LIBVIRT_CACHE"
WORKER_FLAG = "--worker-dir"


class Fatal(Exception):
    """An environment or usage problem: reported on stderr, exit code 2."""


# --------------------------------------------------------------------- driver side


def default_cache_dir(uid):
    return os.environ.get(CACHE_ENV) or "/var/tmp/virtuned-libvirt-cache-%d" % uid


def world_traversable(path):
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        if path == os.path.dirname(path):
            return True
        path = os.path.dirname(path)


def prepare_and_run(files, start, boot=None):
    """Copy the inputs to a work dir and run the worker there (as nobody if root)."""
    for f in files:
        if not os.path.isfile(f):
            raise Fatal("no such file: %s" % f)
    if not os.path.isfile(SCHEMA):
        raise Fatal("%s missing (apt: libvirt0)" % SCHEMA)
    if shutil.which("xmllint") is None:
        raise Fatal("xmllint missing (apt: libxml2-utils)")

    as_root = os.geteuid() == 0
    if as_root:
        if shutil.which("runuser") is None:
            raise Fatal("runuser missing (apt: util-linux)")
        try:
            pw = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise Fatal("user %r missing; it runs the embedded QEMU driver" % RUN_AS)
        uid, gid = pw.pw_uid, pw.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()

    base = tempfile.gettempdir()
    if as_root and not world_traversable(base):
        base = "/tmp"  # e.g. TMPDIR under /root: nobody could not reach the work dir
    work = tempfile.mkdtemp(prefix="virtuned-libvirt-", dir=base)
    try:
        os.chmod(work, 0o755)
        os.mkdir(os.path.join(work, "in"))
        manifest = []
        for i, f in enumerate(files):
            copy = "in/%04d.xml" % i
            shutil.copyfile(f, os.path.join(work, copy))
            manifest.append({"file": f, "copy": copy})
        with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump({"files": manifest, "start": start, "boot": boot,
                       "user": RUN_AS if as_root else None}, fh)
        script = os.path.join(work, "checker.py")
        shutil.copyfile(os.path.abspath(__file__), script)
        for sub in ("home", "tmp"):
            os.mkdir(os.path.join(work, sub), 0o700)

        cache = default_cache_dir(uid)
        try:
            os.makedirs(cache, mode=0o700, exist_ok=True)
            if as_root:
                st = os.stat(cache)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.chown(cache, uid, gid)
        except OSError as e:
            raise Fatal("cannot create the capabilities cache %s: %s" % (cache, e))

        if as_root:
            for dirpath, dirnames, filenames in os.walk(work):
                os.chown(dirpath, uid, gid)
                for name in filenames:
                    os.chown(os.path.join(dirpath, name), uid, gid)

        home = os.path.join(work, "home")
        env = {
            "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LC_ALL": "C.UTF-8",
            "HOME": home,
            "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "XDG_CONFIG_HOME": os.path.join(home, ".config"),
            "XDG_RUNTIME_DIR": os.path.join(home, "run"),
            "TMPDIR": os.path.join(work, "tmp"),
            CACHE_ENV: cache,
        }
        for k, v in os.environ.items():
            if k == "LIBVIRT_DEBUG" or k.startswith("LIBVIRT_LOG_"):
                env[k] = v
        cmd = [sys.executable, "-I", script, WORKER_FLAG, work]
        if as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", "/usr/bin/env", "-i"] + [
                "%s=%s" % kv for kv in sorted(env.items())] + cmd
            env = None
        proc = subprocess.run(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE)
        sys.stdout.buffer.write(proc.stdout)
        sys.stdout.flush()
        return proc.returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------- worker side


def import_libvirt():
    # tests/libvirt.py (the pytest helper) must not shadow the real module when
    # this script is run straight from tests/ without -I.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import libvirt
    except ImportError as e:
        raise Fatal("%s cannot import libvirt (%s); run me with Debian's /usr/bin/python3 "
                    "(apt: python3-libvirt)" % (sys.executable, e))
    return libvirt


def check_rng(work, manifest, results):
    copies = [m["copy"] for m in manifest]
    out = run_xmllint(work, copies)
    verdicts = parse_xmllint(out, copies)
    if verdicts is None:
        # A file that is not well-formed gets no verdict line, so the batch output
        # cannot be split reliably: check each file on its own (rare: bad input).
        verdicts = []
        for c in copies:
            single = run_xmllint(work, [c])
            one = parse_xmllint(single, [c])
            # No verdict line at all: not well-formed; all of the output is the error.
            verdicts.extend(one or [(False, single.splitlines())])
    for m, r, (ok, lines) in zip(manifest, results, verdicts):
        r["rng"] = "PASS" if ok else "FAIL"
        if not ok:
            text = "\n".join(rename(l, m) for l in lines if l.strip() not in ("", "^"))
            r["rng_error"] = text or "%s fails to validate" % m["file"]


def run_xmllint(work, copies):
    proc = subprocess.run(["xmllint", "--noout", "--relaxng", SCHEMA] + copies, cwd=work,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    if proc.returncode not in (0, 1, 3, 4) or (proc.returncode and not proc.stdout):
        raise Fatal("xmllint failed (rc %d): %s" % (proc.returncode,
                                                    proc.stdout.decode("utf-8", "replace")))
    return proc.stdout.decode("utf-8", "replace")


def parse_xmllint(out, copies):
    """[(validates, error lines)] per file, or None if some file has no verdict."""
    verdicts, pending = [], []
    for line in out.splitlines():
        i = len(verdicts)
        if i < len(copies) and line == copies[i] + " validates":
            verdicts.append((True, pending))
            pending = []
        elif i < len(copies) and line == copies[i] + " fails to validate":
            verdicts.append((False, pending))
            pending = []
        else:
            pending.append(line)
    if len(verdicts) != len(copies) or any(l.strip() for l in pending):
        return None
    return verdicts


def rename(line, m):
    return line.replace(m["copy"], m["file"])


def to_tcg(xml):
    """Rewrite for QEMU without KVM; return (xml, list of changes)."""
    changes = []
    head = re.search(r"<domain\b[^>]*>", xml)
    if head:
        tag, n = re.subn(r"""(\stype\s*=\s*)(["'])kvm\2""", r"\1\2qemu\2", head.group(0), count=1)
        if n:
            xml = xml[:head.start()] + tag + xml[head.end():]
            changes.append("type kvm->qemu")

    def cpu(m):
        return re.sub(r"""(\smode\s*=\s*)(["'])host-passthrough\2""", r"\1\2maximum\2", m.group(0))

    new = re.sub(r"<cpu\b[^>]*>", cpu, xml)
    if new != xml:
        xml = new
        changes.append("cpu mode host-passthrough->maximum")
    return xml, changes


def user_interfaces(xml):
    """For --start: every <interface> becomes type='user' (no host network needed)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    devices = root.find("devices")
    n = 0
    for iface in (devices.findall("interface") if devices is not None else []):
        keep = [c for c in iface if c.tag in ("mac", "model", "address", "boot", "alias", "rom")]
        iface.clear()
        iface.set("type", "user")
        iface.extend(keep)
        n += 1
    if not n:
        return xml, []
    return ET.tostring(root, encoding="unicode"), ["%d interface(s) -> type='user'" % n]


def error_text(e):
    """libvirt's message for a libvirtError, as virsh would print it."""
    return (e.get_error_message() or str(e)).rstrip("\n")


class Embedded:
    """One embedded QEMU driver connection, reopened on a fresh root if it gets stuck."""

    def __init__(self, libvirt, work, cache):
        self.libvirt, self.work, self.cache = libvirt, work, cache
        self.generation = 0
        self.conn = None
        self.open()

    def open(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except self.libvirt.libvirtError:
                pass
        root = os.path.join(self.work, "root%d" % self.generation)
        self.generation += 1
        qemu_cache = os.path.join(root, "cache", "qemu")
        os.makedirs(qemu_cache)
        # virtlogd (package libvirt-daemon) is not needed: QEMU logs to a file.
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc", "qemu.conf"), "w", encoding="utf-8") as fh:
            fh.write('stdio_handler = "file"\n')
        if self.cache:
            os.symlink(self.cache, os.path.join(qemu_cache, "capabilities"))
        try:
            self.conn = self.libvirt.open("qemu:///embed?root=" + root)
        except self.libvirt.libvirtError as e:
            raise Fatal("cannot open the embedded QEMU driver (apt: libvirt-daemon-driver-qemu "
                        "qemu-system-x86): %s" % e.get_error_message())

    def undefine(self, dom, notes):
        lv = self.libvirt
        try:
            dom.undefineFlags(lv.VIR_DOMAIN_UNDEFINE_NVRAM | lv.VIR_DOMAIN_UNDEFINE_TPM
                              | lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                              | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                              | lv.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
            return
        except lv.libvirtError:
            pass
        try:
            dom.undefine()
        except lv.libvirtError as e:
            notes.append("undefine failed (%s); later files use a fresh driver root"
                         % e.get_error_message())
            self.open()


def check_qemu(work, manifest, results, start, user, boot=None):
    libvirt = import_libvirt()
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
    libvirt.virEventRegisterDefaultImpl()
    if start or boot:
        def loop():
            while True:
                libvirt.virEventRunDefaultImpl()
        threading.Thread(target=loop, daemon=True).start()

    cache = os.environ.get(CACHE_ENV) or default_cache_dir(os.geteuid())
    cache_note = None
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        if not os.access(cache, os.R_OK | os.W_OK | os.X_OK):
            raise OSError("not writable by uid %d" % os.geteuid())
    except OSError as e:
        cache_note = "capabilities cache %s unusable (%s): probed QEMU afresh" % (cache, e)
        cache = None
    drv = Embedded(libvirt, work, cache)

    who = user or pwd.getpwuid(os.geteuid()).pw_name
    kvm_ok = os.access("/dev/kvm", os.R_OK | os.W_OK)
    for m, r in zip(manifest, results):
        with open(os.path.join(work, m["copy"]), encoding="utf-8", errors="replace") as fh:
            xml = fh.read()
        notes = r["notes"]
        if cache_note:
            notes.append(cache_note)
        if not kvm_ok:
            xml, changes = to_tcg(xml)
            if changes:
                notes.append("qemu check on a copy, as /dev/kvm is not usable by %s: %s"
                             % (who, ", ".join(changes)))
        try:
            dom = drv.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as e:
            r["qemu"], r["qemu_error"] = "FAIL", error_text(e)
        else:
            r["qemu"] = "PASS"
            drv.undefine(dom, notes)
        if boot:
            r["start"], r["start_error"], r["boot_seconds"] = boot_one(libvirt, drv, xml,
                                                                       notes, boot)
        elif start:
            r["start"], r["start_error"] = start_one(libvirt, drv, xml, notes)
    drv.conn.close()


def start_one(libvirt, drv, xml, notes):
    try:
        xml, changes = user_interfaces(xml)
    except Exception as e:  # not parseable: the qemu check has said why
        return "FAIL", "cannot rewrite interfaces: %s" % e
    if changes:
        notes.append("start on a copy: " + ", ".join(changes))
    try:
        dom = drv.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as e:
        return "FAIL", error_text(e)
    try:
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        state = dom.state()[0]
        if state != libvirt.VIR_DOMAIN_PAUSED:
            return "FAIL", "domain state %d after start --paused, expected paused" % state
        return "PASS", None
    except libvirt.libvirtError as e:
        return "FAIL", error_text(e)
    finally:
        tear_down(libvirt, drv, dom, notes)


def tear_down(libvirt, drv, dom, notes):
    """Stop a domain the check started, and undefine it; what fails is a note."""
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError as e:
        notes.append("destroy failed: %s" % e.get_error_message())
    drv.undefine(dom, notes)


def boot_one(libvirt, drv, xml, notes, seconds):
    """Run the domain until it shuts itself off: (verdict, error, seconds taken)."""
    import time

    try:
        xml, changes = user_interfaces(xml)
    except Exception as e:
        return "FAIL", "cannot rewrite interfaces: %s" % e, None
    if changes:
        notes.append("boot on a copy: " + ", ".join(changes))
    try:
        dom = drv.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as e:
        return "FAIL", error_text(e), None
    began = time.monotonic()
    try:
        dom.create()
        while time.monotonic() - began < seconds:
            if dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF:
                return "PASS", None, round(time.monotonic() - began, 2)
            time.sleep(0.1)
        state = dom.state()[0]
        return "FAIL", ("still running (state %d) after %g s: the guest did not power "
                        "itself off" % (state, seconds)), None
    except libvirt.libvirtError as e:
        return "FAIL", error_text(e), None
    finally:
        tear_down(libvirt, drv, dom, notes)


def worker(work):
    with open(os.path.join(work, "manifest.json"), encoding="utf-8") as fh:
        spec = json.load(fh)
    manifest, start, boot = spec["files"], spec["start"], spec.get("boot")
    results = []
    for m in manifest:
        r = {"file": m["file"], "rng": None, "rng_error": None,
             "qemu": None, "qemu_error": None, "notes": []}
        if start or boot:
            r.update(start=None, start_error=None)
        if boot:
            r.update(boot_seconds=None)
        results.append(r)
    check_rng(work, manifest, results)
    check_qemu(work, manifest, results, start, spec.get("user"), boot)
    json.dump({"results": results}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    keys = ("rng", "qemu", "start") if start or boot else ("rng", "qemu")
    return 0 if all(r[k] == "PASS" for r in results for k in keys) else 1


def main(argv):
    try:
        if argv[:1] == [WORKER_FLAG] and len(argv) == 2:
            return worker(argv[1])
        start, boot = False, None
        files = []
        args = iter(argv)
        for a in args:
            if a == "--start":
                start = True
            elif a == "--boot":
                try:
                    boot = float(next(args))
                except (StopIteration, ValueError):
                    raise Fatal("--boot takes the seconds a guest may run")
            elif a in ("-h", "--help"):
                print(__doc__)
                return 0
            elif a.startswith("-") and a != "-" and not files:
                raise Fatal("unknown option %s" % a)
            else:
                files.append(a)
        if not files:
            raise Fatal("usage: libvirt_checker.py [--start | --boot SECONDS] FILE.xml...")
        return prepare_and_run(files, start, boot)
    except Fatal as e:
        sys.stderr.write("libvirt_checker: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
