"""Run one fuzz target, coverage-guided (atheris, libFuzzer), for a fixed time.

    python -m fuzz.run TARGET SECONDS CORPUS_DIR [libFuzzer flags...]

Crashes (an exception other than VirtunedError, a hang over 10 s, more than 1 GiB)
are written as crash-*/timeout-*/oom-* files in the current directory and exit 1;
replay one with ``python -m fuzz.replay TARGET FILE``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import atheris

    target_name, seconds, corpus, *flags = argv[1:]
    with atheris.instrument_imports(include=["virtuned"]):
        from fuzz.targets import TARGETS

        import virtuned.api  # noqa: F401  (instrumented before the first input)
        import virtuned.server.contract  # noqa: F401
        import virtuned.server.validation  # noqa: F401
    target = TARGETS[target_name]
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-timeout=10",
                   "-rss_limit_mb=1024", "-max_len=65536", *flags, corpus],
                  target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
