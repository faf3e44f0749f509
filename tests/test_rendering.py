"""Notice templates: every kind renders in both languages for every shipped definition, what people typed
stays literal (escaped in HTML, one line in subjects), and a broken context fails loudly."""

from __future__ import annotations

import copy
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import jinja2
import pytest

from notifications.message import build_message, compose
from notifications.rendering import LOCALES, Renderer, RenderError, templates_dir
from notifications.samples import HOSTILE, sample_context
from workflow.definitions import load_definitions, shipped_definition_files
from workflow.domain.notices import NoticeKind
from workflow.domain.spec import AppealDefinition

DEFINITIONS = load_definitions(shipped_definition_files())
KINDS = [kind.value for kind in NoticeKind]
NOT_ABOUT_ONE_APPEAL = {NoticeKind.DAILY_DIGEST.value}
NEUTRAL = "Harmless text"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def definition_named(name: str) -> AppealDefinition:
    (found,) = [d for d in DEFINITIONS if d.name == name]
    return found


def replaced(value: Any, old: str, new: str) -> Any:
    """The same context with every occurrence of `old` in its strings replaced."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: replaced(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [replaced(v, old, new) for v in value]
    return value


every_rendering = pytest.mark.parametrize(
    ("definition", "kind", "locale"),
    [(d, k, loc) for d in DEFINITIONS for k in KINDS for loc in LOCALES],
    ids=lambda value: getattr(value, "name", value),
)


def test_every_kind_has_its_three_templates_in_each_locale_and_nothing_else_looks_like_a_kind() -> None:
    assert len(DEFINITIONS) >= 5, [d.name for d in DEFINITIONS]
    root = templates_dir()
    for locale in LOCALES:
        present = {p.name for p in (root / locale).iterdir() if p.is_file()}
        expected = {f"{kind}.{part}" for kind in KINDS for part in ("subject.txt", "txt", "html")}
        assert sorted(expected - present) == [], f"{locale} lacks templates"
        strays = sorted(name for name in present - expected if not name.startswith("_"))
        assert strays == [], f"{locale} holds templates for no notice kind (shared files start with _): {strays}"


@every_rendering
def test_every_kind_renders_in_both_locales_for_every_definition(
    renderer: Renderer, definition: AppealDefinition, kind: str, locale: str
) -> None:
    context = sample_context(kind, definition)
    rendered = renderer.render(kind, locale, context)

    assert rendered.locale == locale
    assert rendered.subject.strip(), f"{kind} ({locale}) has an empty subject"
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.text.strip() and rendered.html.strip()
    assert "李娜" in rendered.text and "李娜" in rendered.html, "the greeting names the recipient"
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and rendered.html.rstrip().endswith("</html>")
    for external in ("<script", "<link", "<style", "<img", "src=", "<iframe"):
        assert external not in rendered.html, f"{kind} ({locale}) HTML is not self-contained: {external}"
    if kind in NOT_ABOUT_ONE_APPEAL:
        assert context["day"] in rendered.subject
        link = context["base_url"] + context["groups"][0]["breached"][0]["link"]
    else:
        assert context["appeal"]["number"] in rendered.subject
        assert context["appeal"]["number"] in rendered.text
        link = context["base_url"] + context["appeal"]["link"]
    assert link in rendered.text and link in rendered.html
    closing = "芙蓉区楼宇企业服务" if locale == "zh-CN" else "Furong district enterprise service"
    assert closing in rendered.text and closing in rendered.html


@every_rendering
def test_hostile_text_comes_out_literal_escaped_in_html_and_one_line_in_subjects(
    renderer: Renderer, definition: AppealDefinition, kind: str, locale: str
) -> None:
    context = sample_context(kind, definition)
    rendered = renderer.render(kind, locale, context)
    neutral = renderer.render(kind, locale, replaced(context, HOSTILE, NEUTRAL))

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script" not in rendered.html
    assert "<script>alert(1)</script>" in rendered.text, "plain text is not HTML: nothing to escape"
    for part in ("text", "html"):
        body = getattr(rendered, part)
        assert "{{7*7}}" in body, f"{kind} ({locale}) {part}: typed template syntax must stay literal"
        assert body.count("49") == getattr(neutral, part).count("49"), f"{kind} ({locale}) {part} evaluated {{7*7}}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(set(KINDS) - NOT_ABOUT_ONE_APPEAL))
def test_a_hostile_title_cannot_break_the_subject_into_headers(renderer: Renderer, kind: str, locale: str) -> None:
    context = sample_context(kind, definition_named("outdoor_event_permit"))
    context["appeal"] = {**context["appeal"], "title": {"zh-CN": HOSTILE, "en": HOSTILE}}
    rendered = renderer.render(kind, locale, context)

    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    assert "{{7*7}}" in rendered.subject and "<script>" in rendered.subject
    assert not any(line.lstrip().startswith("Bcc:") for line in rendered.subject.splitlines())
    message = build_message(
        rendered, notice_id=42, sender="appeals@example.com", to_name="李娜", to_address="lina@example.com"
    )
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert parsed["Bcc"] is None, f"a header was smuggled in: {parsed['Bcc']!r}"
    assert "Bcc: victim@example.com" in str(parsed["Subject"])


def test_a_hostile_recipient_name_or_address_cannot_add_a_header_or_a_recipient(renderer: Renderer) -> None:
    context = sample_context("assigned", definition_named("outdoor_event_permit"))
    rendered = renderer.render("assigned", "zh-CN", context)

    mail = compose(
        rendered,
        notice_id=42,
        sender="appeals@example.com",
        to_name=HOSTILE,
        to_address="lina@example.com\r\nBcc: victim@example.com",
    )

    head = mail.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1] not in " \t"]
    assert "bcc" not in names, head
    assert "\r" not in mail.recipient and "\n" not in mail.recipient, "the envelope stays one line"
    parsed = message_from_bytes(mail.data, policy=default_policy)
    assert parsed["Bcc"] is None
    assert "Bcc: victim@example.com" in str(parsed["To"]), "the text survives, inside the To header"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_variable_names_the_kind_the_locale_and_the_variable(
    renderer: Renderer, kind: str, locale: str
) -> None:
    context = sample_context(kind, definition_named("outdoor_event_permit"))
    missing = "groups" if kind in NOT_ABOUT_ONE_APPEAL else "appeal"
    del context[missing]

    with pytest.raises(RenderError) as caught:
        renderer.render(kind, locale, context)

    assert (caught.value.kind, caught.value.locale) == (kind, locale)
    message = str(caught.value)
    assert f"notice {kind!r} ({locale}, " in message
    assert f"'{missing}' is undefined" in message, message


def test_an_unknown_kind_names_the_template_it_could_not_find(renderer: Renderer) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.render("carrier_pigeon", "en", {})

    assert "template en/carrier_pigeon.subject.txt does not exist" in str(caught.value)
    assert caught.value.kind == "carrier_pigeon"


def test_a_shared_layout_file_is_not_taken_for_a_kind(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"zh-CN/_base\.subject\.txt does not exist"):
        renderer.render("_base", "zh-CN", sample_context("assigned", DEFINITIONS[0]))


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__.__mro__ }}", "{{ ''.__class__ }}", "{{ tr.__globals__ }}", "{{ cycler.__init__.__globals__ }}"],
)
def test_the_sandbox_refuses_internals(renderer: Renderer, source: str) -> None:
    with pytest.raises(jinja2.exceptions.SecurityError, match="unsafe"):
        renderer.env.from_string(source).render(tr=lambda value: value)


@pytest.mark.parametrize("kind", sorted(set(KINDS) - NOT_ABOUT_ONE_APPEAL))
def test_english_and_chinese_subjects_differ_and_both_carry_the_number(renderer: Renderer, kind: str) -> None:
    for definition in DEFINITIONS:
        context = sample_context(kind, definition)
        chinese = renderer.render(kind, "zh-CN", context).subject
        english = renderer.render(kind, "en", context).subject
        number = context["appeal"]["number"]

        assert chinese != english
        assert number in chinese and number in english
        assert definition.title["zh-CN"] in chinese and definition.title["en"] in english


def test_the_digest_subjects_differ_by_language_and_carry_the_day(renderer: Renderer) -> None:
    context = sample_context(NoticeKind.DAILY_DIGEST, DEFINITIONS[0])
    chinese = renderer.render(NoticeKind.DAILY_DIGEST, "zh-CN", context).subject
    english = renderer.render(NoticeKind.DAILY_DIGEST, "en", context).subject

    assert chinese != english and "2026-11-26" in chinese and "2026-11-26" in english


def test_an_unknown_locale_falls_back_to_chinese(renderer: Renderer) -> None:
    context = sample_context(NoticeKind.APPEAL_RECEIVED, definition_named("outdoor_event_permit"))

    french = renderer.render(NoticeKind.APPEAL_RECEIVED, "fr", context)
    chinese = renderer.render(NoticeKind.APPEAL_RECEIVED, "zh-CN", context)

    assert french.locale == "zh-CN"
    assert french == chinese
    assert french.subject == "【诉求受理】OE-2026-000123 户外活动审批"


def test_tr_falls_back_to_chinese_when_a_title_lacks_the_recipients_language(renderer: Renderer) -> None:
    context = sample_context(NoticeKind.ASSIGNED, definition_named("outdoor_event_permit"))
    context["appeal"] = {**context["appeal"], "title": {"zh-CN": "户外活动审批"}}

    rendered = renderer.render(NoticeKind.ASSIGNED, "en", context)

    assert rendered.subject.startswith("[Assigned to you] OE-2026-000123 户外活动审批")
    assert "Dear 李娜," in rendered.text


def test_times_are_shown_in_shanghai_time(renderer: Renderer) -> None:
    context = sample_context(NoticeKind.REMINDER, definition_named("outdoor_event_permit"))
    assert context["limit_due_at"] == "2026-11-26T02:00:00+00:00"

    for locale in LOCALES:
        rendered = renderer.render(NoticeKind.REMINDER, locale, context)
        assert "2026-11-26 10:00" in rendered.text and "2026-11-26 10:00" in rendered.html
        assert "02:00" not in rendered.text


def test_the_inspection_notice_gives_the_inspection_time(renderer: Renderer) -> None:
    context = sample_context(NoticeKind.INSPECTION_SCHEDULED, definition_named("outdoor_event_permit"))
    shown = "2026-11-27 10:00"  # sample_value: tomorrow 10:00 in Shanghai
    assert context["fields"]["inspection_time"].startswith("2026-11-27T10:00")

    chinese = renderer.render(NoticeKind.INSPECTION_SCHEDULED, "zh-CN", context)
    english = renderer.render(NoticeKind.INSPECTION_SCHEDULED, "en", context)

    assert f"查勘时间为 {shown}" in chinese.text and shown in chinese.subject and shown in chinese.html
    assert shown in english.text and shown in english.subject and shown in english.html


@pytest.mark.parametrize("locale", LOCALES)
def test_an_inspection_notice_without_a_time_says_it_will_be_announced(renderer: Renderer, locale: str) -> None:
    context = sample_context(NoticeKind.INSPECTION_SCHEDULED, definition_named("outdoor_event_permit"))
    context["fields"] = {}

    rendered = renderer.render(NoticeKind.INSPECTION_SCHEDULED, locale, context)

    assert ("另行通知" if locale == "zh-CN" else "to be announced") in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", ["assigned", "materials_requested", "decision", "follow_up", "inspection_scheduled"])
def test_the_comment_is_shown_only_when_there_is_one(renderer: Renderer, kind: str, locale: str) -> None:
    context = sample_context(kind, definition_named("outdoor_event_permit"))
    context["comment"] = "请补充场地方同意书"
    assert "请补充场地方同意书" in renderer.render(kind, locale, context).text

    context["comment"] = None
    rendered = renderer.render(kind, locale, context)
    assert "None" not in rendered.text and "None" not in rendered.html


@pytest.mark.parametrize("locale", LOCALES)
def test_escalations_say_why_and_between_which_levels(renderer: Renderer, locale: str) -> None:
    context = sample_context(NoticeKind.ESCALATED, definition_named("outdoor_event_permit"))
    by_hand = {**copy.deepcopy(context), "breach": False, "reason": "超出本级职权范围"}

    breached = renderer.render(NoticeKind.ESCALATED, locale, context).text
    declared = renderer.render(NoticeKind.ESCALATED, locale, by_hand).text

    if locale == "zh-CN":
        assert "已由楼宇层级提级至社区层级办理" in breached
        assert "自动提级" in breached and "自动提级" not in declared
    else:
        assert "from the building level to the community level" in breached
        assert "climbed one level automatically" in breached and "climbed" not in declared
    assert "超出本级职权范围" in declared


@pytest.mark.parametrize("locale", LOCALES)
def test_a_digest_with_nothing_at_risk_says_so(renderer: Renderer, locale: str) -> None:
    context = sample_context(NoticeKind.DAILY_DIGEST, DEFINITIONS[0])
    context.update(counts={"at_risk": 0, "breached": 0}, groups=[], notices=[])

    rendered = renderer.render(NoticeKind.DAILY_DIGEST, locale, context)

    assert ("暂无临期或超期诉求" if locale == "zh-CN" else "No appeal you supervise") in rendered.text
