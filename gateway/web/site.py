"""The web service's requests: routing, the headers every answer carries, CSRF, errors.

Each answer is `no-store`, `no-referrer`, `noindex`, `nosniff`, framed by nobody, and under a
Content-Security-Policy that allows only this site's own style sheet and script (none
inline). A page with a form sets a random value in a `SameSite=Lax` cookie and gives the
form its MAC (`gateway.links.csrf_token`); a POST whose token does not match is refused
with 403 before anything is read or changed. Anything unexpected is logged by route (never
by URL: the path holds a token) and answered with a plain 500.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from gateway.app import Gateway
from gateway.database import Sessions
from gateway.links import csrf_matches, csrf_token
from gateway.web.pages import Pages, static_file

log = logging.getLogger(__name__)

CSRF_COOKIE = "gateway_csrf"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The largest row id a URL may name (the databases' 32-bit integer columns).
MAX_ID = 2**31 - 1
# Forms carry a few fields and at most a customer's short note.
MAX_FORM_BYTES = 64 * 1024

Handler = Callable[..., Response]


@dataclass(slots=True)
class Visit:
    """One request, with what its answer needs: the browser's CSRF value and the cookies
    to set."""

    request: Request
    secret: bytes
    secure: bool
    cookies: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)
    # The route's arguments (`token`, `ticket_id`...), once matched.
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        """The token this page's forms carry; sets the browser's value when it has none."""
        nonce = self.request.cookies.get(CSRF_COOKIE, "")
        if len(nonce) < 16 or CSRF_COOKIE in self.cookies:
            nonce = self.cookies.get(CSRF_COOKIE, ("", None, ""))[0] or secrets.token_urlsafe(18)
            # Lax, not Strict: a visit from a link in mail would otherwise come without it,
            # get a new one, and leave every page already open refused at its next POST.
            self.cookies[CSRF_COOKIE] = (nonce, None, "Lax")
        return csrf_token(self.secret, nonce)

    def form_is_ours(self) -> bool:
        nonce = self.request.cookies.get(CSRF_COOKIE, "")
        return csrf_matches(self.secret, nonce, self.request.form.get("csrf", ""))

    def set_cookie(self, name: str, value: str, max_age: int | None, same_site: str) -> None:
        self.cookies[name] = (value, max_age, same_site)


class Section:
    """A part of the service (customers' pages, engineers' pages): the gateway, the page
    templates, the sessions that read (`make_engine(reads_only=True)`), and how to wake
    the workers when an act queued mail."""

    def __init__(
        self, gateway: Gateway, pages: Pages, wake: Callable[[], None], reads: Sessions
    ) -> None:
        self.gateway = gateway
        self.pages = pages
        self.wake = wake
        self.reads = reads
        self.rules = gateway.executor.pipeline.rules
        self.notifier = gateway.executor.pipeline.notifier


def routes() -> Map:
    return Map(
        [
            Rule("/healthz", endpoint="healthz", methods=["GET"]),
            Rule("/readyz", endpoint="readyz", methods=["GET"]),
            Rule("/metrics", endpoint="metrics", methods=["GET"]),
            Rule("/static/<name>", endpoint="static", methods=["GET"]),
            Rule("/t/<token>", endpoint="status_page", methods=["GET"]),
            Rule("/t/<token>/answer", endpoint="answer", methods=["POST"]),
            Rule("/f/<token>", endpoint="download", methods=["GET"]),
            Rule("/kb/<slug>", endpoint="kb_article", methods=["GET"]),
            Rule("/kb/<slug>/solved", endpoint="kb_solved", methods=["POST"]),
            Rule("/queue", endpoint="queue", methods=["GET"]),
            Rule(f"/queue/<int(max={MAX_ID}):ticket_id>", endpoint="engineer_ticket"),
            Rule(f"/queue/files/<int(max={MAX_ID}):attachment_id>", endpoint="engineer_file"),
            Rule("/sign-in", endpoint="sign_in_form", methods=["GET"]),
            Rule("/sign-in", endpoint="send_sign_in", methods=["POST"]),
            Rule("/sign-in/<token>", endpoint="sign_in_page", methods=["GET"]),
            Rule("/sign-in/<token>", endpoint="sign_in", methods=["POST"]),
            Rule("/sign-out", endpoint="sign_out", methods=["POST"]),
        ],
        strict_slashes=False,
    )


class Site:
    """The WSGI application: each route's handler is a method of `handlers`, called with
    the visit and the route's arguments."""

    def __init__(self, handlers: Any, pages: Pages, secret: bytes, secure: bool) -> None:
        self.handlers = handlers
        self.pages = pages
        self.secret = secret
        self.secure = secure
        self.map = routes()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_form_memory_size = MAX_FORM_BYTES
        request.max_content_length = MAX_FORM_BYTES
        visit = Visit(request, self.secret, self.secure)
        response = self.answer(visit)
        self.finish(visit, response)
        return response(environ, start_response)

    def answer(self, visit: Visit) -> Response:
        adapter = self.map.bind_to_environ(visit.request.environ)
        endpoint = "unknown"
        try:
            endpoint, arguments = adapter.match()
            visit.arguments = dict(arguments)
            if visit.request.method == "POST" and not visit.form_is_ours():
                return self.notice(visit, "refused", 403)
            handler: Handler = getattr(self.handlers, str(endpoint))
            return handler(visit, **arguments)
        except NotFound:
            return self.notice(visit, "not_found", 404)
        except MethodNotAllowed as exc:
            return exc.get_response()
        except HTTPException as exc:
            return self.notice(visit, "refused", exc.code or 400)
        except Exception:  # A bug of ours must not show the reader a traceback.
            log.exception("web: %s failed", endpoint)
            return Response("Something went wrong on our side.\n", 500, mimetype="text/plain")

    def notice(self, visit: Visit, which: str, status: int, language: str = "en") -> Response:
        """A short page saying why nothing is shown ("not_found" says the same for a link
        that never was, one changed, expired or revoked)."""
        context = {"which": which, "status": status, "page_lang": language}
        body = self.pages.render("notice", language, context)
        return Response(body, status, mimetype="text/html")

    def finish(self, visit: Visit, response: Response) -> None:
        for name, value in SECURITY_HEADERS.items():
            # A download keeps its stricter policy; everything else is set as it stands here.
            if name == "Content-Security-Policy":
                response.headers.setdefault(name, value)
            else:
                response.headers[name] = value
        for name, (value, max_age, same_site) in visit.cookies.items():
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                httponly=True,
                secure=self.secure,
                samesite=same_site,
                path="/",
            )


def static(name: str) -> Response:
    found = static_file(name)
    if found is None:
        raise NotFound()
    body, kind = found
    response = Response(body, 200, content_type=kind)
    return response
