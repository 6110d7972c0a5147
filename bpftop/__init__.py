"""bpftop: a top-style terminal console for Linux kernel observability on eBPF."""

__version__ = "0.1.0"
