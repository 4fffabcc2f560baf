"""Where an API model may send a request, and which secret it may carry: checked when an admin registers
the model (``LanguageModel.clean``) and again by the worker before every request (``backends/openai_api.py``).

- The key comes from an environment variable named ``STYLEGAP_API_KEY_<anything>``, or one listed in
  ``STYLEGAP_API_KEY_VARIABLES``: a model cannot name ``DATABASE_URL`` or ``SECRET_KEY`` and have the
  worker send it as a bearer token.
- The base URL is https, with no credentials in it, unless its host is listed in
  ``STYLEGAP_API_LOCAL_HOSTS`` (a local inference server, the tests' chat server).
- The host is resolved, and every address it resolves to must be a public one (not private, loopback,
  link-local, reserved or multicast) unless the host is listed; the worker then connects to the address it
  checked, so a second DNS answer (rebinding) cannot swap it. Redirects are never followed.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

KEY_ENV_PATTERN = re.compile(r"STYLEGAP_API_KEY_[A-Za-z0-9_]+")


class EgressRefused(Exception):
    """An endpoint or key variable the worker must not use; the message is shown to the admin."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # the base URL's path (and query), without a trailing slash
    local: bool  # listed in STYLEGAP_API_LOCAL_HOSTS: plain http and any address allowed


def check_key_env(name: str) -> None:
    if not name or KEY_ENV_PATTERN.fullmatch(name) or name in settings.STYLEGAP_API_KEY_VARIABLES:
        return
    raise EgressRefused(
        f"The key variable {name!r} is not allowed: name a variable that starts with STYLEGAP_API_KEY_ "
        "(or one listed in STYLEGAP_API_KEY_VARIABLES on the server)."
    )


def parse_base_url(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"The base URL is not a valid URL ({exc}).") from exc
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise EgressRefused("The base URL must be an https:// URL with a host name.")
    if parts.username or parts.password:
        raise EgressRefused("The base URL must not hold a user name or password; name a key variable instead.")
    local = host in {h.lower() for h in settings.STYLEGAP_API_LOCAL_HOSTS}
    if parts.scheme != "https" and not local:
        raise EgressRefused(
            f"The base URL must use https ({host} is not listed in STYLEGAP_API_LOCAL_HOSTS, the hosts allowed "
            "over plain http)."
        )
    path = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path, local)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(target: Target) -> str:
    """The address to connect to, after checking every address the host resolves to.

    Raises ``EgressRefused`` for a private, loopback or link-local answer, and ``OSError`` (a transient
    failure, retried by callers) when the name does not resolve.
    """
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise OSError(f"{target.host} resolves to no address")
    if not target.local:
        for address in addresses:
            if not _is_public(address):
                raise EgressRefused(
                    f"{target.host} resolves to {address}, a private, loopback or link-local address; the worker "
                    "does not send keys there (list the host in STYLEGAP_API_LOCAL_HOSTS if it is yours)."
                )
    return addresses[0]


def check_endpoint(base_url: str, key_env: str) -> Target:
    """Everything that can be checked at registration: the key variable, the URL, and where it resolves."""
    check_key_env(key_env)
    target = parse_base_url(base_url)
    try:
        resolve(target)
    except OSError as exc:
        raise EgressRefused(f"The host {target.host} does not resolve ({exc}).") from exc
    return target
