"""
HTML building blocks of the admin pages: the page layout, forms whose
fields carry their own error messages, tables and notices.

Everything is built from L{markupsafe.Markup}: C{Markup.format} and
L{escape} escape every value that is not already markup, so text from the
store, the request or an exception can never inject HTML.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence

from markupsafe import Markup, escape

__all__ = ["Markup", "escape"]

#: Navigation entries: (path, label) pairs, then the Administrator section.
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("/admin", "Dashboard"),
    ("/admin/devices", "Devices"),
    ("/admin/users", "Users"),
    ("/admin/groups/user", "User groups"),
    ("/admin/groups/device", "Device groups"),
    ("/admin/permissions", "Permissions"),
    ("/admin/audit", "Audit log"),
)
ADMINISTRATOR_NAVIGATION: tuple[tuple[str, str], ...] = (
    ("/admin/server-authentication", "Server Authentication"),
    ("/admin/settings", "Settings"),
    ("/admin/account", "Your password"),
)


def formatTime(timestamp: float | None) -> str:
    """
    Format a POSIX time as UTC text, or an empty string for L{None}.
    """
    if timestamp is None:
        return ""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def formatDuration(seconds: float) -> str:
    """
    Format a number of seconds as C{"3d 4h"}, C{"5m 2s"} and the like.
    """
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def page(
    title: str,
    body: Markup,
    *,
    user: str | None = None,
    csrfToken: str | None = None,
    current: str = "",
    refresh: int | None = None,
    scripts: Sequence[str] = (),
) -> bytes:
    """
    Render a whole page with the navigation for a signed-in C{user}, or the
    bare layout for the login page when C{user} is L{None}.

    @param refresh: seconds for a C{<noscript>} meta refresh, so a page
        that JavaScript keeps up to date also refreshes without it.
    """
    head = Markup(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} - MRS server</title>"
        '<link rel="stylesheet" href="/admin/static/style.css">'
    ).format(title=title)
    if refresh is not None:
        head += Markup(
            '<noscript><meta http-equiv="refresh" content="{seconds}"></noscript>'
        ).format(seconds=refresh)
    for script in scripts:
        head += Markup('<script src="{src}" defer></script>').format(src=script)
    head += Markup("</head><body>")
    nav = Markup("")
    if user is not None:
        nav = _navigation(user, csrfToken or "", current)
    content = Markup(
        '<header class="top"><a class="brand" href="/admin">MRS server</a>{nav}</header>'
        '<main id="main"><h1>{title}</h1>{body}</main></body></html>'
    ).format(nav=nav, title=title, body=body)
    return (head + content).encode("utf-8")


def _navigation(user: str, csrfToken: str, current: str) -> Markup:
    def links(entries: Iterable[tuple[str, str]]) -> Markup:
        items = Markup("")
        for path, label in entries:
            isCurrent = current == path
            items += Markup('<li><a href="{path}"{aria}>{label}</a></li>').format(
                path=path,
                label=label,
                aria=Markup(' aria-current="page"') if isCurrent else "",
            )
        return items

    return Markup(
        '<nav aria-label="Main"><ul>{main}</ul>'
        '<h2 class="navhead">Administrator</h2><ul>{admin}</ul>'
        '<form method="post" action="/admin/logout" class="logout">'
        '<input type="hidden" name="csrf" value="{csrf}">'
        '<span class="who">{user}</span> <button type="submit">Sign out</button></form>'
        "</nav>"
    ).format(
        main=links(NAVIGATION),
        admin=links(ADMINISTRATOR_NAVIGATION),
        csrf=csrfToken,
        user=user,
    )


def notice(text: str | Markup, kind: str = "info") -> Markup:
    """
    Render a notice box; C{kind} is C{"info"}, C{"ok"}, C{"warning"} or
    C{"error"}.
    """
    role = "alert" if kind in ("error", "warning") else "status"
    return Markup('<div class="notice {kind}" role="{role}">{text}</div>').format(
        kind=kind, role=role, text=text
    )


def secretOnce(label: str, secret: str) -> Markup:
    """
    Render a freshly made secret that the page shows this one time only.
    """
    return notice(
        Markup(
            "{label}: <code class=\"secret\">{secret}</code><br>"
            "Copy it now; it is shown only once and cannot be recovered."
        ).format(label=label, secret=secret),
        "ok",
    )


class Form:
    """
    Values and error messages of one submitted form, keyed by field name.
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> None:
        self.values: dict[str, str] = dict(values or {})
        self.errors: dict[str, str] = dict(errors or {})

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)


def field(
    form: Form,
    name: str,
    label: str,
    *,
    kind: str = "text",
    formId: str = "",
    hint: str = "",
    required: bool = False,
    autocomplete: str | None = None,
    keepValue: bool = True,
) -> Markup:
    """
    Render a labelled input with its error message (if any) next to it.

    @param formId: prefix that keeps element ids unique when one page holds
        several forms with the same field names.
    @param keepValue: false for password fields, so a submitted password is
        never written back into the page.
    """
    elementId = f"{formId}-{name}" if formId else name
    error = form.error(name)
    value = form.value(name) if keepValue else ""
    attributes = Markup("")
    if required:
        attributes += Markup(" required")
    if autocomplete:
        attributes += Markup(' autocomplete="{a}"').format(a=autocomplete)
    if error:
        attributes += Markup(' aria-invalid="true" aria-describedby="{i}-error"').format(
            i=elementId
        )
    elif hint:
        attributes += Markup(' aria-describedby="{i}-hint"').format(i=elementId)
    return Markup(
        '<div class="field{cls}"><label for="{id}">{label}</label>'
        '<input type="{kind}" id="{id}" name="{name}" value="{value}"{attributes}>'
        "{hint}{error}</div>"
    ).format(
        cls=" has-error" if error else "",
        id=elementId,
        label=label,
        kind=kind,
        name=name,
        value=value,
        attributes=attributes,
        hint=_hint(elementId, hint),
        error=_error(elementId, error),
    )


def textArea(
    form: Form,
    name: str,
    label: str,
    *,
    formId: str = "",
    hint: str = "",
    keepValue: bool = True,
    extraErrors: Sequence[tuple[str, str]] = (),
) -> Markup:
    """
    Render a labelled text area with a file upload beside it and the error
    and warning messages about it.

    @param extraErrors: (severity, message) pairs shown under the box, such
        as the TLS validation problems of that box.
    """
    elementId = f"{formId}-{name}" if formId else name
    error = form.error(name)
    messages = Markup("")
    for severity, message in extraErrors:
        messages += Markup('<p class="message {severity}" id="{id}-{severity}">'
                           "{label}: {message}</p>").format(
            severity=severity,
            id=elementId,
            label="Error" if severity == "error" else "Warning",
            message=message,
        )
    hasError = bool(error) or any(s == "error" for s, _ in extraErrors)
    return Markup(
        '<div class="field{cls}"><label for="{id}">{label}</label>'
        '<textarea id="{id}" name="{name}" rows="8" spellcheck="false"'
        ' autocomplete="off"{invalid}>{value}</textarea>'
        '<label class="upload" for="{id}-file">or upload a file for {label}</label>'
        '<input type="file" id="{id}-file" name="{name}_file">'
        "{hint}{error}{messages}</div>"
    ).format(
        cls=" has-error" if hasError else "",
        id=elementId,
        label=label,
        name=name,
        invalid=Markup(' aria-invalid="true"') if hasError else "",
        value=form.value(name) if keepValue else "",
        hint=_hint(elementId, hint),
        error=_error(elementId, error),
        messages=messages,
    )


def select(
    form: Form,
    name: str,
    label: str,
    options: Sequence[tuple[str, str]],
    *,
    formId: str = "",
) -> Markup:
    """
    Render a labelled drop-down list of (value, text) options.
    """
    elementId = f"{formId}-{name}" if formId else name
    current = form.value(name)
    items = Markup("")
    for value, text in options:
        items += Markup('<option value="{v}"{sel}>{t}</option>').format(
            v=value, t=text, sel=Markup(" selected") if value == current else ""
        )
    error = form.error(name)
    return Markup(
        '<div class="field{cls}"><label for="{id}">{label}</label>'
        '<select id="{id}" name="{name}">{items}</select>{error}</div>'
    ).format(
        cls=" has-error" if error else "",
        id=elementId,
        label=label,
        name=name,
        items=items,
        error=_error(elementId, error),
    )


def checkboxes(
    form: Form,
    name: str,
    legend: str,
    options: Sequence[tuple[str, str]],
    checked: Iterable[str],
    *,
    formId: str = "",
) -> Markup:
    """
    Render a fieldset of checkboxes sharing one C{name}.
    """
    checkedSet = set(checked)
    items = Markup("")
    for value, text in options:
        elementId = f"{formId}-{name}-{value}"
        items += Markup(
            '<span class="check"><input type="checkbox" id="{id}" name="{name}"'
            ' value="{v}"{c}><label for="{id}">{t}</label></span>'
        ).format(
            id=elementId, name=name, v=value, t=text,
            c=Markup(" checked") if value in checkedSet else "",
        )
    error = form.error(name)
    return Markup(
        '<fieldset class="field{cls}"><legend>{legend}</legend>{items}{error}</fieldset>'
    ).format(
        cls=" has-error" if error else "",
        legend=legend,
        items=items,
        error=_error(f"{formId}-{name}", error),
    )


def checkbox(form: Form, name: str, label: str, *, formId: str = "") -> Markup:
    """
    Render one labelled checkbox whose submitted value is C{"on"}.
    """
    elementId = f"{formId}-{name}" if formId else name
    return Markup(
        '<div class="field check"><input type="checkbox" id="{id}" name="{name}"'
        ' value="on"{c}><label for="{id}">{label}</label></div>'
    ).format(
        id=elementId, name=name, label=label,
        c=Markup(" checked") if form.value(name) == "on" else "",
    )


def postForm(
    action: str,
    csrfToken: str,
    content: Markup,
    submit: str,
    *,
    formId: str = "",
    multipart: bool = False,
    danger: bool = False,
    inline: bool = False,
    errors: str | None = None,
) -> Markup:
    """
    Render a POST form with its CSRF token and a submit button.

    @param errors: a message about the whole form, shown above its fields.
    """
    return Markup(
        '<form method="post" action="{action}"{id}{enctype} class="{cls}">'
        '<input type="hidden" name="csrf" value="{csrf}">{errors}{content}'
        '<button type="submit"{btn}>{submit}</button></form>'
    ).format(
        action=action,
        id=Markup(' id="{i}"').format(i=formId) if formId else "",
        enctype=Markup(' enctype="multipart/form-data"') if multipart else "",
        cls="inline" if inline else "stacked",
        csrf=csrfToken,
        errors=notice(errors, "error") if errors else "",
        content=content,
        btn=Markup(' class="danger"') if danger else "",
        submit=submit,
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    tableId: str = "",
    empty: str = "Nothing here yet.",
) -> Markup:
    """
    Render a table; cells may be text or markup.  An empty table shows
    C{empty} instead.
    """
    body = Markup("")
    count = 0
    for row in rows:
        count += 1
        cells = Markup("")
        for header, cell in zip(headers, row, strict=False):
            cells += Markup('<td data-label="{h}">{c}</td>').format(h=header, c=cell)
        body += Markup("<tr>{cells}</tr>").format(cells=cells)
    if count == 0:
        body = Markup('<tr><td colspan="{n}" class="empty">{empty}</td></tr>').format(
            n=len(headers), empty=empty
        )
    head = Markup("").join(Markup('<th scope="col">{h}</th>').format(h=h) for h in headers)
    return Markup(
        '<div class="tablewrap"><table{id}><thead><tr>{head}</tr></thead>'
        "<tbody>{body}</tbody></table></div>"
    ).format(
        id=Markup(' id="{i}"').format(i=tableId) if tableId else "",
        head=head,
        body=body,
    )


def searchForm(action: str, query: str, label: str = "Search") -> Markup:
    """
    Render a GET search box.
    """
    return Markup(
        '<form method="get" action="{action}" class="search" role="search">'
        '<label for="q">{label}</label><input type="search" id="q" name="q" value="{q}">'
        '<button type="submit">Search</button></form>'
    ).format(action=action, label=label, q=query)


def link(href: str, text: str) -> Markup:
    return Markup('<a href="{href}">{text}</a>').format(href=href, text=text)


def _hint(elementId: str, hint: str) -> Markup:
    if not hint:
        return Markup("")
    return Markup('<p class="hint" id="{id}-hint">{hint}</p>').format(id=elementId, hint=hint)


def _error(elementId: str, error: str | None) -> Markup:
    if not error:
        return Markup("")
    return Markup('<p class="message error" id="{id}-error">{error}</p>').format(
        id=elementId, error=error
    )
