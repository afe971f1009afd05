"""Record (and refuse) every attempt to use the network from Python, and spot open inet sockets.

`NetworkGuard.install()` patches the socket module's entry points. Network use — connect,
connect_ex, sendto, listen, bind to a non-loopback address, create_connection, getaddrinfo
and the gethostby* look-ups — is recorded with the caller's stack in `attempts` and refused
with OSError, so nothing leaves the machine even if some code swallows the error. Creating
an AF_INET/AF_INET6 socket is only recorded (in `sockets`): urllib3, imported by pydicom via
requests, creates one at import time to probe for IPv6 support (it binds to ::1 and closes it),
which is not network use.

Libraries that open sockets from C (not through Python's socket module) are not seen by the
patches; `open_inet_sockets()` catches those that are still open by looking at this process's
file descriptors and the kernel's TCP/UDP tables (Linux).
"""
from __future__ import annotations

import socket
import traceback
from dataclasses import dataclass, field
from pathlib import Path

_INET_FAMILIES = {socket.AF_INET, socket.AF_INET6}
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class NetworkGuard:
    attempts: list[str] = field(default_factory=list)   # network use (refused)
    sockets: list[str] = field(default_factory=list)    # inet sockets created (allowed, recorded)
    _saved: dict[tuple[object, str], object] = field(default_factory=dict)

    @staticmethod
    def _where() -> str:
        return "".join(traceback.format_stack(limit=16)[:-3])

    def install(self) -> NetworkGuard:
        guard = self
        original_init = socket.socket.__init__
        original_bind = socket.socket.bind

        def recording_init(sock, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002
            if fileno is None and family in _INET_FAMILIES:
                guard.sockets.append(f"socket({socket.AddressFamily(family).name})\n{guard._where()}")
            original_init(sock, family, type, proto, fileno)

        def refuse(name: str):
            def blocked(*args, **kwargs):
                shown = args[1:] if args and isinstance(args[0], socket.socket) else args
                guard.attempts.append(f"{name}{shown}\n{guard._where()}")
                raise OSError(f"network access is blocked in this test ({name})")
            return blocked

        def loopback_only_bind(sock, address):
            host = address[0] if isinstance(address, tuple) else address
            if sock.family in _INET_FAMILIES and host not in _LOOPBACK:
                return refuse("socket.bind")(sock, address)
            return original_bind(sock, address)

        self._patch(socket.socket, "__init__", recording_init)
        self._patch(socket.socket, "bind", loopback_only_bind)
        for method in ("connect", "connect_ex", "sendto", "listen"):
            self._patch(socket.socket, method, refuse(f"socket.{method}"))
        for function in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                         "gethostbyaddr"):
            self._patch(socket, function, refuse(f"socket.{function}"))
        return self

    def _patch(self, owner: object, name: str, replacement: object) -> None:
        self._saved[(owner, name)] = getattr(owner, name)
        setattr(owner, name, replacement)

    def uninstall(self) -> None:
        for (owner, name), original in self._saved.items():
            setattr(owner, name, original)
        self._saved.clear()


def _kernel_inet_inodes() -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        path = Path("/proc/net") / table
        try:
            lines = path.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9:
                inodes.add(fields[9])
    return inodes


def open_inet_sockets() -> list[str]:
    """This process's open TCP/UDP/raw sockets (empty where /proc is not available)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return []
    mine: dict[str, str] = {}
    for fd in fd_dir.iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            mine[target[8:-1]] = fd.name
    if not mine:
        return []
    kernel = _kernel_inet_inodes()
    return [f"fd {fd} (socket inode {inode})" for inode, fd in mine.items() if inode in kernel]
