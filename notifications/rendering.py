"""Renders a notice from its templates in a sandbox: HTML autoescaped, every variable required.

What people typed (form fields, comments) is data, never template source, so `{{7*7}}` stays
literal; HTML bodies escape it, and subjects lose line breaks so nothing can smuggle in a header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from workflow.domain.notices import NoticeKind
from workflow.errors import WorkflowError
from workflow.local_time import shanghai_text

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
PARTS = ("subject.txt", "txt", "html")


class RenderError(WorkflowError):
    code = "render_failed"

    def __init__(self, kind: str, locale: str, part: str, reason: str) -> None:
        self.kind, self.locale, self.part = kind, locale, part
        super().__init__(f"notice {kind!r} ({locale}, {part}) cannot be rendered: {reason}")


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    locale: str


def templates_dir() -> Path:
    return Path(str(resources.files("notifications") / "templates"))


def _localised(value: Any, locale: str) -> str:
    """`{zh-CN: ..., en: ...}` -> the recipient's language, falling back to Chinese."""
    if isinstance(value, Mapping):
        return str(value.get(locale) or value.get(DEFAULT_LOCALE) or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _local_time(value: Any) -> str:
    if not value:
        return "-"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return shanghai_text(moment)


class _FieldWords:
    """Field titles and choice titles for a notice's data, from the `labels` its payload carries (the appeal's
    form fields under appeal.labels, a transition's fields under labels); a name without one shows as it is,
    as notices written before labels existed do."""

    def __init__(self, context: Mapping[str, Any], locale: str) -> None:
        appeal = context.get("appeal")
        labels = appeal.get("labels") if isinstance(appeal, Mapping) else None
        self.labels = {**_mapping(labels), **_mapping(context.get("labels"))}
        self.locale = locale

    def label(self, name: str) -> str:
        entry = self.labels.get(name)
        title = entry.get("title") if isinstance(entry, Mapping) else None
        return _localised(title, self.locale) if title else name

    def shown(self, name: str, value: Any) -> Any:
        entry = self.labels.get(name)
        choices = _mapping(entry.get("choices") if isinstance(entry, Mapping) else None)
        if isinstance(value, str) and value in choices:
            return _localised(choices[value], self.locale)
        if isinstance(value, list):
            return [_localised(choices[v], self.locale) if isinstance(v, str) and v in choices else v for v in value]
        return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def one_line(text: str) -> str:
    """Subjects are headers: no CR, LF or other line breaks, whatever the data held."""
    return " ".join(text.split())


class Renderer:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or templates_dir()
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.directory)),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["local_time"] = _local_time

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedNotice:
        locale = locale if locale in LOCALES else DEFAULT_LOCALE
        words = _FieldWords(context, locale)
        variables = {
            **context,
            "locale": locale,
            "tr": lambda value: _localised(value, locale),
            "label": words.label,
            "shown": words.shown,
        }
        parts = {}
        for part in PARTS:
            name = f"{locale}/{kind}.{part}"
            try:
                parts[part] = self.env.get_template(name).render(variables)
            except TemplateNotFound:
                raise RenderError(kind, locale, part, f"template {name} does not exist") from None
            except UndefinedError as exc:
                raise RenderError(kind, locale, part, f"missing variable: {exc.message}") from None
        return RenderedNotice(one_line(parts["subject.txt"]), parts["txt"], parts["html"], locale)

    def kinds(self) -> list[str]:
        return [kind.value for kind in NoticeKind]
