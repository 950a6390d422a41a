"""Sign-in and the resident's account: /login, /logout, /join (registration by invite), /me/tokens
(personal access tokens for scripts) and /me/password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.web import display
from hub.web.auth import (
    DEVICE_COOKIE,
    FORM_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    Viewer,
    anonymous_form,
    clear_cookie,
    client_address,
    form_token,
    optional_viewer,
    page_viewer,
    retry_after,
    safe_next,
    set_cookie,
)
from hub.web.context import PeopleSide, WebContext, get_context, people_side, refusal
from hub.web.routers.dashboard import SECURITY_HEADERS

router = APIRouter(tags=["account"], include_in_schema=False)

Context = Annotated[WebContext, Depends(get_context)]
#: pages that show a secret once, or a form with a token, are not kept by browsers or proxies
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
#: the double-submit cookie outlives a slow typist, not a day
FORM_COOKIE_AGE = 3600
#: as long as the store honours a device token (hub.storage.accounts.DEVICE_TTL_S)
DEVICE_COOKIE_AGE = 180 * 24 * 3600


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200, **extra: str
) -> HTMLResponse:
    """A page with the site context; ``viewer`` None shows the sign-in link."""
    ctx: WebContext = request.app.state.ctx
    viewer = getattr(request.state, "viewer", None)
    headers = {**NO_STORE, **extra}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        template,
        {"ctx": ctx, "viewer": viewer, "display": display, **context},
        status_code=status_code,
        headers=headers,
    )
    return response


def _anonymous_page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200, **extra: str
) -> HTMLResponse:
    token = form_token(request)
    response = render(request, template, {**context, "form_token": token}, status_code=status_code, **extra)
    set_cookie(request, response, FORM_COOKIE, token, FORM_COOKIE_AGE)
    return response


def _side(ctx: WebContext) -> PeopleSide:
    return people_side(ctx)


# -- login / logout -----------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer | None, Depends(optional_viewer)],
    next_path: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    _side(ctx)
    if viewer is not None and viewer.session_token is not None:
        return RedirectResponse(safe_next(next_path), status_code=303)
    return _anonymous_page(request, "login.html", {"next": safe_next(next_path), "pseudonym": ""})


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(anonymous_form)])
def login(
    request: Request,
    ctx: Context,
    pseudonym: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=2048)],
    next_path: Annotated[str | None, Form(alias="next")] = None,
) -> Response:
    side = _side(ctx)
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    key = pseudonym.strip()
    page = {"next": safe_next(next_path), "pseudonym": key}
    now = ctx.clock()
    resident = side.directory.resident_by_pseudonym(key) if key else None
    if resident is not None and resident.erased:
        resident = None
    # a browser that signed into this account before is not slowed by guessing from elsewhere
    known = resident is not None and side.accounts.known_device(
        resident.id, request.cookies.get(DEVICE_COOKIE), now=now
    )
    wait = throttle.wait(key, address, known_device=known)
    if wait > 0:
        error = f"Too many failed sign-ins. Try again in {retry_after(wait)} s."
        page["error"] = error
        return _anonymous_page(request, "login.html", page, status_code=429, **_retry(wait))
    if not side.accounts.verify(resident.id if resident else None, password, now=now) or resident is None:
        throttle.failed(key, address, known_device=known)
        error = "That pseudonym and password do not match."
        return _anonymous_page(request, "login.html", {**page, "error": error}, status_code=401)
    throttle.succeeded(key, address)
    return _signed_in(request, side, resident.id, safe_next(next_path), now)


def _signed_in(request: Request, side: PeopleSide, resident_id: str, to: str, now: float) -> Response:
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        side.accounts.revoke_session(old)  # a new session id at sign-in: no session fixation
    new = side.accounts.create_session(resident_id, now=now)
    response = RedirectResponse(to, status_code=303)
    max_age = max(1, int(new.session.expires_at - now))
    set_cookie(request, response, SESSION_COOKIE, new.token, max_age)
    clear_cookie(request, response, FORM_COOKIE)
    device = side.accounts.device_token(resident_id, now=now)
    if device is not None:
        set_cookie(request, response, DEVICE_COOKIE, device, DEVICE_COOKIE_AGE)
    return response


@router.post("/logout")
def logout(request: Request, ctx: Context, viewer: Annotated[Viewer, Depends(page_viewer)]) -> Response:
    side = _side(ctx)
    if viewer.session_token:
        side.accounts.revoke_session(viewer.session_token)
    response = RedirectResponse("/", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


# -- joining by invite --------------------------------------------------------------------------------


@router.get("/join", response_class=HTMLResponse)
def join_page(request: Request, ctx: Context, code: str = "") -> Response:
    _side(ctx)
    return _anonymous_page(request, "join.html", {"code": code, "pseudonym": ""})


@router.post("/join", response_class=HTMLResponse, dependencies=[Depends(anonymous_form)])
def join(
    request: Request,
    ctx: Context,
    code: Annotated[str, Form(max_length=64)],
    pseudonym: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=2048)],
    password_again: Annotated[str, Form(max_length=2048)],
) -> Response:
    side = _side(ctx)
    page = {"code": code, "pseudonym": pseudonym}
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    # invite codes are not to be guessed either; per address only, or guessers would shut joining down
    wait = throttle.wait("invite", address, account_wide=False)
    if wait > 0:
        error = f"Too many failed attempts. Try again in {retry_after(wait)} s."
        page["error"] = error
        return _anonymous_page(request, "join.html", page, status_code=429, **_retry(wait))
    if password != password_again:
        return _anonymous_page(
            request, "join.html", {**page, "error": "The two passwords differ."}, status_code=400
        )
    now = ctx.clock()
    try:
        side.accounts.check_password(password)  # before the invite is used up
        resident = side.directory.redeem_invite(code, pseudonym, now=now)
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        reason, message = refused
        if reason in ("unknown_invite", "invite_used", "invite_expired"):
            throttle.failed("invite", address, account_wide=False)
        status = 409 if reason in ("pseudonym_taken", "invite_used") else 400
        page["error"] = _sentence(message)
        return _anonymous_page(request, "join.html", page, status_code=status)
    side.accounts.set_password(resident.id, password, now=now)
    return _signed_in(request, side, resident.id, "/me", now)


def _retry(wait: float) -> dict[str, str]:
    return {"Retry-After": retry_after(wait)}


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


# -- personal access tokens ---------------------------------------------------------------------------


@router.get("/me/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, ctx: Context, viewer: Annotated[Viewer, Depends(page_viewer)]) -> Response:
    return _tokens(request, ctx, viewer)


def _tokens(
    request: Request,
    ctx: WebContext,
    viewer: Viewer,
    *,
    created: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tokens = _side(ctx).accounts.tokens(viewer.resident.id)
    return render(
        request,
        "tokens.html",
        {"tokens": tokens, "created": created, "error": error, "now": ctx.clock()},
        status_code=status_code,
    )


@router.post("/me/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        _, plain = _side(ctx).accounts.create_token(viewer.resident.id, name, now=ctx.clock())
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return _tokens(request, ctx, viewer, error=_sentence(refused[1]), status_code=400)
    # shown once, on this response only (no-store); the store keeps its SHA-256
    return _tokens(request, ctx, viewer, created=plain, status_code=201)


@router.post("/me/tokens/{token_id}/revoke")
def revoke_token(
    token_id: str, request: Request, ctx: Context, viewer: Annotated[Viewer, Depends(page_viewer)]
) -> Response:
    # someone else's token answers like a missing one, never like a revocation that happened
    if not _side(ctx).accounts.revoke_token(viewer.resident.id, token_id, now=ctx.clock()):
        return render(request, "not_found.html", {"what": f"no token with id {token_id!r}"}, status_code=404)
    return RedirectResponse("/me/tokens", status_code=303)


# -- password -----------------------------------------------------------------------------------------


@router.get("/me/password", response_class=HTMLResponse)
def password_page(
    request: Request, ctx: Context, viewer: Annotated[Viewer, Depends(page_viewer)]
) -> Response:
    return render(request, "password.html", {})


@router.post("/me/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    ctx: Context,
    viewer: Annotated[Viewer, Depends(page_viewer)],
    current: Annotated[str, Form(max_length=2048)],
    password: Annotated[str, Form(max_length=2048)],
    password_again: Annotated[str, Form(max_length=2048)],
) -> Response:
    side = _side(ctx)
    now = ctx.clock()
    throttle: LoginThrottle = request.app.state.login_throttle
    key, address = viewer.resident.pseudonym, client_address(request)
    # the session proves the browser: the account-wide limit is for strangers
    if (wait := throttle.wait(key, address, known_device=True)) > 0:
        error = f"Too many failed attempts. Try again in {retry_after(wait)} s."
        return render(request, "password.html", {"error": error}, status_code=429, **_retry(wait))
    if not side.accounts.verify(viewer.resident.id, current, now=now):
        throttle.failed(key, address, known_device=True)
        return render(request, "password.html", {"error": "The current password is wrong."}, status_code=400)
    if password != password_again:
        return render(request, "password.html", {"error": "The two new passwords differ."}, status_code=400)
    try:
        side.accounts.set_password(viewer.resident.id, password, now=now)  # ends every session
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return render(request, "password.html", {"error": _sentence(refused[1])}, status_code=400)
    return _signed_in(request, side, viewer.resident.id, "/me", now)
