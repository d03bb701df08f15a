"""Facts that come as input, read into frozen values: the host (``virsh
capabilities``, a host snapshot, or live through libvirt), what its hypervisor offers (``virsh domcapabilities``), guest
operating systems (osinfo-db), host PCI device addresses, and the platform the input
domain states. No stage decides anything here; every stage after reads these."""
