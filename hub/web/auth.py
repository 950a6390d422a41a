"""Who is asking: the signed-in resident from the session cookie or an ``Authorization: Bearer`` token,
CSRF checks on every unsafe request a browser can make, and login rate limiting.

- Pages use the session cookie only. The API takes a personal access token or the session cookie.
- A request authenticated by the cookie and not safe (POST, PUT, PATCH, DELETE) must carry the
  session's CSRF token: the ``csrf_token`` form field or the ``X-CSRF-Token`` header. Forms shown
  before sign-in (login, join) use a double-submit cookie instead. Bearer requests carry no ambient
  credential and need no CSRF token.
- Cookies are HttpOnly, SameSite=Lax, Path=/, and Secure when the request came over https (or, with
  ``trust_proxy``, a proxy said so in X-Forwarded-Proto). A session id travels only in its cookie,
  never in a URL or a redirect's Location.
- Failed sign-ins slow down per (account, address), per address and per account across addresses;
  a browser that signed into the account before (the signed ``hub_device`` cookie) skips the last.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response

from hub.domain.model import Resident
from hub.web.context import WebContext, get_context, people_side

SESSION_COOKIE = "hub_session"
#: the double-submit token of forms shown before sign-in
FORM_COOKIE = "hub_form"
#: proof that this browser once signed into an account: it skips the account-wide login limit
DEVICE_COOKIE = "hub_device"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in resident and how they proved it."""

    resident: Resident
    #: the session's CSRF token, for forms; None when the request came with an access token
    csrf_token: str | None = None
    session_token: str | None = None
    token_id: str | None = None


class SignInRequired(Exception):
    """A page needs a signed-in resident; the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


# -- the request's origin ----------------------------------------------------------------------------


def is_secure(request: Request) -> bool:
    """Whether the browser reached us over https (directly, or through a proxy we were told to trust)."""
    if request.url.scheme == "https":
        return True
    if request.app.state.trust_proxy:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def client_address(request: Request) -> str:
    """The client's address; with ``trust_proxy`` the first address in X-Forwarded-For."""
    if request.app.state.trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=is_secure(request), httponly=True, samesite="lax")


# -- who is asking ------------------------------------------------------------------------------------


def resolve_viewer(request: Request, ctx: WebContext) -> Viewer | None:
    """The resident behind the request, or None for an anonymous one (cached per request).

    A bearer token that is wrong is an error (401), not a quiet fall-back to the kiosk view; a stale
    session cookie is just no session.
    """
    if hasattr(request.state, "viewer"):
        cached: Viewer | None = request.state.viewer
        return cached
    viewer = _resolve(request, ctx)
    request.state.viewer = viewer
    return viewer


def _resolve(request: Request, ctx: WebContext) -> Viewer | None:
    now = ctx.clock()
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("send Authorization: Bearer <personal access token>")
        side = people_side(ctx)
        token = side.accounts.token(value.strip(), now=now)
        resident = side.directory.resident(token.resident_id) if token is not None else None
        if token is None or resident is None or resident.erased:
            raise _unauthorized("this access token is not valid: it may have been revoked")
        return Viewer(resident, token_id=token.id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    if ctx.accounts is None or ctx.directory is None:
        return None  # no sign-in on this hub: the kiosk view, never more
    session = ctx.accounts.touch_session(cookie, now=now)
    if session is None:
        return None
    resident = ctx.directory.resident(session.resident_id)
    if resident is None or resident.erased:
        return None
    return Viewer(resident, csrf_token=session.csrf_token, session_token=cookie)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def _check_csrf(request: Request, expected: str | None) -> None:
    """403 unless the request carries ``expected`` in the form field or the header."""
    sent = request.headers.get(CSRF_HEADER.lower())
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(
            status_code=403, detail="the form was stale or not sent from this site: reload the page and retry"
        )


async def optional_viewer(
    request: Request, ctx: Annotated[WebContext, Depends(get_context)]
) -> Viewer | None:
    """The signed-in resident or None; unsafe requests by a session must carry its CSRF token."""
    viewer = resolve_viewer(request, ctx)
    if viewer is not None and viewer.session_token is not None and request.method not in SAFE_METHODS:
        await _check_csrf(request, viewer.csrf_token)
    return viewer


async def api_viewer(request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    """The API's resident: 401 (with WWW-Authenticate) for anonymous requests."""
    if viewer is None:
        raise _unauthorized("sign in, or send Authorization: Bearer <personal access token>")
    return viewer


async def page_viewer(
    request: Request,
    ctx: Annotated[WebContext, Depends(get_context)],
    viewer: Annotated[Viewer | None, Depends(optional_viewer)],
) -> Viewer:
    """A resident page's viewer, signed in through the browser session; else a redirect to /login."""
    people_side(ctx)
    if viewer is None or viewer.session_token is None:
        raise SignInRequired(request.url.path)
    return viewer


async def anonymous_form(request: Request) -> None:
    """CSRF for forms shown before sign-in: the form field must match the double-submit cookie."""
    await _check_csrf(request, request.cookies.get(FORM_COOKIE))


def form_token(request: Request) -> str:
    """The double-submit token for a form shown before sign-in (reused while its cookie lives)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def login_path(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after sign-in: a path on this site only (no ``//host`` or ``https://`` redirects)."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/me"
    return next_path


# -- login rate limiting ------------------------------------------------------------------------------


class LoginThrottle:
    """Backoff after failed logins: per (account, address), per address, and per account across every
    address.

    Per (account, address) and per address: the first ``free`` (``free_per_address``) failures cost
    nothing; after that each attempt waits ``2 ** (failures - free + 5)`` seconds from the last failure
    (32 s, 64 s, …), never more than ``max_wait``. A success clears the (account, address) key (not the
    address's: an attacker cannot reset their address by signing into their own account).

    Per account, whatever the address (slow guessing spread over many addresses): after
    ``free_per_account`` failures each attempt waits ``2 ** (failures - free_per_account)`` seconds
    (1 s, 2 s, 4 s, …), never more than ``max_account_wait``. A browser that once signed into the account
    (its signed "known device" cookie, see ``Accounts.device_token``) skips this limit and its failures
    do not count towards it, so a guesser elsewhere slows down strangers to the account, never its owner
    at home. Every key is forgotten ``forget_after`` seconds after its last failure: no lock is for good.
    Memory is bounded: at most ``max_keys`` keys, the least recently failed dropped first.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        free: int = 5,
        free_per_address: int = 20,
        free_per_account: int = 10,
        max_wait: float = 900.0,
        max_account_wait: float = 300.0,
        forget_after: float = 24 * 3600.0,
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.free = free
        self.free_per_address = free_per_address
        self.free_per_account = free_per_account
        self.max_wait = max_wait
        self.max_account_wait = max_account_wait
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple[str, ...], tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(
        self, account: str, address: str, *, known_device: bool = False, account_wide: bool = True
    ) -> float:
        """Seconds before this account may be tried from this address again (0: now).

        ``known_device``: the browser proved an earlier sign-in to this account, so the account-wide
        limit does not apply to it. ``account_wide`` False: only the per-address limits (a key that is
        not an account, such as invite codes).
        """
        now = self.clock()
        with self._lock:
            waits = [
                self._wait(("account", account.lower(), address), self.free, self.max_wait, 5, now),
                self._wait(("address", address), self.free_per_address, self.max_wait, 5, now),
            ]
            if account_wide and not known_device:
                waits.append(
                    self._wait(
                        ("spread", account.lower()), self.free_per_account, self.max_account_wait, 0, now
                    )
                )
            return max(waits)

    def failed(
        self, account: str, address: str, *, known_device: bool = False, account_wide: bool = True
    ) -> None:
        now = self.clock()
        keys: list[tuple[str, ...]] = [("account", account.lower(), address), ("address", address)]
        if account_wide and not known_device:
            keys.append(("spread", account.lower()))
        with self._lock:
            for key in keys:
                count, _ = self._failures.pop(key, (0, now))
                self._failures[key] = (count + 1, now)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, account: str, address: str) -> None:
        # the account-wide key stays: a guesser's count must not restart whenever the owner signs in
        with self._lock:
            self._failures.pop(("account", account.lower(), address), None)

    def _wait(self, key: tuple[str, ...], free: int, cap: float, shift: int, now: float) -> float:
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        count, last = entry
        if now - last >= self.forget_after:
            del self._failures[key]
            return 0.0
        if count < free:
            return 0.0
        delay = min(2.0 ** (count - free + shift), cap)
        return max(0.0, last + delay - now)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
