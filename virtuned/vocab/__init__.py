"""The trait vocabulary: one module per trait or small family of traits.

Importing this package registers every trait, in the order listed here, which is also
the canonical order in which traits are applied and listed.
"""

from virtuned.vocab import (  # noqa: F401
    machine, video, disk, agent, platform, memballoon, rng, usb, console, display, network,
    firmware, tpm, hyperv, watchdog, iommu, pcie, disk_driver, guest_os, memory_encryption,
    cpus, numa, memory, numa_affinity)
