"""The TCP tab's user-space filter: the process name and the destination
networks each connect attempt is matched against as it arrives."""

from __future__ import annotations

import ipaddress
import re
from typing import List, Optional, Sequence, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class MatchFilter:
    """The Python-side filter: process name regex and destination networks.

    Applied to each attempt as it arrives (like the kernel-side filters), so
    changing it restarts the counts. ``None`` / empty means no constraint.
    """

    def __init__(
        self,
        comm: Optional[str] = None,
        comm_exclude: bool = False,
        addrs: Sequence[str] = (),
        addr_exclude: bool = False,
    ) -> None:
        self.comm_text = comm or ""
        self.comm_exclude = comm_exclude and bool(comm)
        try:
            self._comm = re.compile(comm) if comm else None
        except re.error as e:
            raise ValueError(f"bad comm regex {comm!r}: {e}") from None
        nets: List[Network] = []
        for a in addrs:
            if not isinstance(a, str):
                raise ValueError(f"address must be text like 10.0.0.0/8 or ::1, not {a!r}")
            try:
                nets.append(ipaddress.ip_network(a.strip().strip("[]"), strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or network: {a!r}") from None
        self.nets = tuple(nets)
        self.addr_exclude = addr_exclude and bool(nets)

    @property
    def active(self) -> bool:
        return self._comm is not None or bool(self.nets)

    def matches(self, comm: str, daddr: ipaddress._BaseAddress) -> bool:
        if self._comm is not None and (self._comm.search(comm) is not None) == self.comm_exclude:
            return False
        if self.nets:
            inside = any(daddr.version == n.version and daddr in n for n in self.nets)
            if inside == self.addr_exclude:
                return False
        return True

    def text(self) -> str:
        parts = []
        if self._comm is not None:
            parts.append(f"comm{'!~' if self.comm_exclude else '~'}{self.comm_text}")
        op = "!=" if self.addr_exclude else "="
        parts += [f"addr{op}{n.with_prefixlen if n.prefixlen != n.max_prefixlen else n.network_address}"
                  for n in self.nets]
        return " ".join(parts)
