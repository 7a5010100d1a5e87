"""
What every group of admin routes shares: the errors that end a request,
request parsing helpers, the authorization decorators and the error
handler that turns exceptions into clear pages or JSON bodies.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from mrs.admin import html
from mrs.store.errors import AlreadyExists, InvalidValue, NotFound, StoreError

if TYPE_CHECKING:
    from mrs.admin.app import AdminApp

log = Logger(namespace="mrs.admin")

#: Largest request body read from a form or a JSON request, in bytes.
MAX_BODY = 1024 * 1024


class RequestError(Exception):
    """
    A request that cannot be served; the message is fit to show the user.
    """

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LoginRequired(RequestError):
    status = 401


class Forbidden(RequestError):
    status = 403


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "The form's security token is missing or out of date. "
            "Nothing was changed; reload the page and submit the form again."
        )


class PasswordChangeRequired(RequestError):
    status = 403

    def __init__(self) -> None:
        super().__init__(
            "Choose a new password first: the one-time first password works "
            "only for setting your own."
        )


class PageNotFound(RequestError):
    status = 404


class Conflict(RequestError):
    status = 409


class TooManyRequests(RequestError):
    status = 429


def isApiRequest(request: IRequest) -> bool:
    """
    Tell whether a request is for the JSON API (JSON errors, no redirects).
    """
    return bool(request.path.startswith(b"/api/"))


def formValue(request: IRequest, name: str) -> str:
    """
    Return one submitted form field as text, or an empty string.
    """
    values = request.args.get(name.encode("ascii"), [])
    if not values:
        return ""
    value = values[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def formValues(request: IRequest, name: str) -> list[str]:
    """
    Return every value of a repeated form field, such as checkboxes.
    """
    return [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for v in request.args.get(name.encode("ascii"), [])
    ]


def queryValue(request: IRequest, name: str) -> str:
    """
    Return a query-string parameter, the same way as L{formValue}.
    """
    return formValue(request, name)


def checkBodySize(request: IRequest) -> None:
    """
    Reject a request body over L{MAX_BODY}.

    @raise RequestError: naming the limit.
    """
    length = request.getHeader(b"content-length")
    try:
        size = int(length) if length is not None else 0
    except ValueError:
        size = 0
    if size > MAX_BODY:
        raise RequestError(
            f"The request body has {size} bytes, more than the {MAX_BODY} accepted; "
            "send a smaller file."
        )


def jsonBody(request: IRequest) -> dict[str, Any]:
    """
    Parse a JSON object from the request body.

    @raise RequestError: for a body that is too large, not JSON or not an
        object.
    """
    checkBodySize(request)
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        raise RequestError(f"The request body is larger than {MAX_BODY} bytes.")
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise RequestError(f"The request body is not valid JSON: {e}")
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    return body


def jsonString(body: dict[str, Any], name: str, *, required: bool = True,
               default: str | None = None) -> str | None:
    """
    Return a string member of a JSON object.

    @raise RequestError: when it is missing but required, or not a string.
    """
    if name not in body or body[name] is None:
        if required:
            raise RequestError(f"The field {name!r} is missing; give it as a string.")
        return default
    value = body[name]
    if not isinstance(value, str):
        raise RequestError(f"The field {name!r} must be a string, not {type(value).__name__}.")
    return value


def jsonBool(body: dict[str, Any], name: str) -> bool | None:
    """
    Return an optional boolean member of a JSON object.

    @raise RequestError: when it is present but not a boolean.
    """
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise RequestError(f"The field {name!r} must be true or false.")
    return value


class RouteGroup:
    """
    A set of routes on their own L{Klein} app, mounted by L{AdminApp}.
    """

    app: ClassVar[Klein]

    def __init__(self, admin: AdminApp) -> None:
        self.admin = admin


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def adminPage(method: Handler) -> Handler:
    """
    Require a signed-in administrator for an HTML page; for a POST also
    require the session's CSRF token.  The handler gets the
    L{AdminSession} after the request.
    """

    @functools.wraps(method)
    async def wrapper(self: RouteGroup, request: IRequest, *args: Any, **kwargs: Any) -> Any:
        session = await self.admin.pageSession(request)
        return await method(self, request, session, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def apiRoute(method: Handler) -> Handler:
    """
    Require an administrator's API token for a JSON route; the handler gets
    the user name after the request and returns a JSON-serializable value
    (or a pair of status code and value).
    """

    @functools.wraps(method)
    async def wrapper(self: RouteGroup, request: IRequest, *args: Any, **kwargs: Any) -> Any:
        actor = await self.admin.apiUser(request)
        result = await method(self, request, actor, *args, **kwargs)
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return jsonResponse(request, status, result)

    return wrapper  # type: ignore[return-value]


def jsonResponse(request: IRequest, status: int, value: object) -> bytes:
    """
    Set the status and content type and return the JSON body.
    """
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    if status == 204:
        return b""
    return json.dumps(value, sort_keys=True).encode("utf-8") + b"\n"


def installErrorHandler(app: Klein) -> None:
    """
    Register the shared error handler on a Klein app.
    """

    @app.handle_errors(Exception)
    def handleError(self: Any, request: IRequest, failure: Failure) -> bytes:
        admin: AdminApp = self if hasattr(self, "renderError") else self.admin
        return admin.renderError(request, failure)


def statusFor(failure: Failure) -> tuple[int, str]:
    """
    Map an exception to an HTTP status and a message fit to show, or
    (500, "") for an unexpected one.
    """
    error = failure.value
    if isinstance(error, RequestError):
        return error.status, error.message
    if isinstance(error, NotFound):
        return 404, str(error)
    if isinstance(error, AlreadyExists):
        return 409, str(error)
    if isinstance(error, InvalidValue):
        return 400, str(error)
    if isinstance(error, StoreError):
        return 409, str(error)
    if isinstance(error, HTTPException):
        code = error.code or 500
        if code == 404:
            return 404, "There is no page at this address."
        if code == 405:
            return 405, "This address does not accept that method."
        return code, error.description or "The request failed."
    return 500, ""


def errorId() -> str:
    """
    Return a short random id that ties an error page to its log entry.
    """
    return secrets.token_hex(6)


def loginRedirect(request: IRequest) -> bytes:
    """
    Redirect a browser to the login page, coming back here afterwards.
    """
    target = request.uri.decode("utf-8", "replace")
    if request.method != b"GET" or not target.startswith("/admin"):
        target = "/admin"
    request.setResponseCode(303)
    request.setHeader(b"location", ("/admin/login?next=" + quote(target, safe="/")).encode())
    return b""


def errorPage(status: int, message: str, user: str | None, csrfToken: str | None) -> bytes:
    """
    Render an error page.
    """
    titles = {
        400: "Invalid request", 403: "Not allowed", 404: "Not found",
        405: "Method not allowed", 409: "Conflict", 429: "Too many attempts",
        500: "Server error",
    }
    body = html.notice(message, "error") + html.Markup(
        '<p><a href="/admin">Back to the dashboard</a></p>'
    )
    return html.page(titles.get(status, "Error"), body, user=user, csrfToken=csrfToken)
