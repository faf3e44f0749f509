"""The pages' own words in Chinese (the default) and English; appeal types bring their own titles."""

from __future__ import annotations

from workflow.domain.spec import pick_title
from workflow.errors import FieldProblem
from workflow.web.problem_words import field_problem_in_chinese, guard_in_chinese, system_reason_in_chinese

DEFAULT_LOCALE = "zh-CN"
LOCALES = ("zh-CN", "en")

# key: (zh-CN, en)
STRINGS: dict[str, tuple[str, str]] = {
    "app.name": ("芙蓉区楼宇企业诉求", "Furong enterprise appeals"),
    "app.short": ("企业诉求", "Appeals"),
    "nav.worklist": ("工作台", "Worklist"),
    "nav.portal": ("企业服务", "Portal"),
    "nav.dashboard": ("督办看板", "Dashboard"),
    "nav.inbox": ("消息", "Inbox"),
    "nav.logout": ("退出", "Sign out"),
    "nav.language": ("English", "中文"),
    "nav.unread": ("条未读", "unread"),
    "nav.main": ("主导航", "Main"),
    # sign-in
    "login.title": ("登录", "Sign in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码不正确。", "Wrong username or password."),
    "login.throttled": (
        "登录失败次数过多，请 {seconds} 秒后再试。",
        "Too many failed sign-ins; try again in {seconds} seconds.",
    ),
    "login.failures_since": (
        "自上次登录以来有 {count} 次失败的登录尝试。",
        "{count} failed sign-in {attempts} since your previous sign-in.",
    ),
    "login.expired": ("登录已过期，请重新登录。", "Your session has ended; please sign in again."),
    "login.intro": (
        "企业服务专员、楼宇、社区、街道及区级部门和企业联系人在此登录。",
        "For service specialists, building, community, sub-district and district staff, and enterprise contacts.",
    ),
    # worklist
    "worklist.title": ("我的工作台", "My worklist"),
    "worklist.mine": ("我负责的", "Assigned to me"),
    "worklist.all": ("辖区内全部在办", "All open in my area"),
    "worklist.empty": ("目前没有待办诉求。", "Nothing waiting for you."),
    "worklist.order": (
        "按紧急程度排列：已超时、即将超时、到期时间最近。",
        "Most urgent first: breached, at risk, due soonest.",
    ),
    "worklist.capped": ("仅显示最紧急的 {shown} 件（共 {total} 件）。", "Showing the {shown} most urgent of {total}."),
    # appeal
    "appeal.form": ("申请信息", "Form"),
    "appeal.materials": ("材料清单", "Materials checklist"),
    "appeal.materials_done": ("材料已收齐", "All collected"),
    "appeal.materials_pending": ("待收集", "Not yet collected"),
    "appeal.files": ("附件", "Files"),
    "appeal.file": ("选择文件", "File"),
    "appeal.file_item": ("对应材料", "Checklist item"),
    "appeal.file_none": ("暂无附件", "No files yet"),
    "appeal.file_other": ("其他附件", "Other files"),
    "appeal.file_required": ("须上传文件", "file required"),
    "appeal.upload": ("上传", "Upload"),
    "appeal.file_added": ("附件已上传", "File added"),
    "appeal.actions": ("办理", "Actions"),
    "appeal.no_actions": ("您当前无需办理此诉求。", "There is nothing for you to do on this appeal now."),
    "appeal.comments": ("留言", "Comments"),
    "appeal.no_comments": ("暂无留言。", "No comments yet."),
    "appeal.add_comment": ("发表留言", "Add a comment"),
    "appeal.timeline": ("办理记录", "Timeline"),
    "appeal.diagram": ("流程图", "Process"),
    "appeal.clock": ("办理时限", "Time limit"),
    "appeal.due": ("到期时间", "Due"),
    "appeal.overall_due": ("总时限到期", "Overall due"),
    "appeal.left": ("剩余工作时间", "Working time left"),
    "appeal.breached_at": ("超时时间", "Breached at"),
    "appeal.provisional": ("（节假日安排未公布，时限为估算）", "(holidays not yet announced; estimated)"),
    "appeal.enterprise": ("企业", "Enterprise"),
    "appeal.credit_code": ("统一社会信用代码", "Unified social credit code"),
    "appeal.unit": ("承办单位", "Held by"),
    "appeal.level": ("层级", "Level"),
    "appeal.assignee": ("承办人", "Assignee"),
    "appeal.submitted_by": ("提交人", "Submitted by"),
    "appeal.channel": ("渠道", "Channel"),
    "appeal.created": ("提交时间", "Submitted"),
    "appeal.closed": ("办结时间", "Closed"),
    "appeal.state": ("状态", "State"),
    "appeal.instruction": ("最近的办理意见", "Latest instruction"),
    "appeal.comment": ("办理意见", "Comment"),
    "appeal.comment_required": ("（必填）", "(required)"),
    "appeal.submit_action": ("确认", "Confirm"),
    "appeal.done": ("已办理：{action}", "Done: {action}"),
    "appeal.commented": ("留言已发布。", "Comment posted."),
    "appeal.escalate": ("上报上一级", "Escalate one level up"),
    "appeal.escalate_reason": ("上报原因（本级无法解决的原因）", "Why this level cannot solve it"),
    "appeal.send_down": ("下派下一级", "Send down one level"),
    "appeal.send_down_reason": ("下派说明", "Instructions for the level below"),
    "appeal.assign": ("改派承办人", "Reassign"),
    "appeal.assign_to": ("改派给", "Assign to"),
    "appeal.optional_note": ("说明（可选）", "Note (optional)"),
    "appeal.action_failed": ("未能办理：", "Could not do that: "),
    "appeal.open_in_list": ("打开", "Open"),
    "appeal.legend_current": ("当前环节", "Current state"),
    "appeal.legend_visited": ("已经过", "Visited"),
    "appeal.none": ("—", "—"),
    "appeal.yes": ("是", "Yes"),
    "appeal.no": ("否", "No"),
    # portal
    "portal.title": ("企业服务", "Enterprise portal"),
    "portal.new": ("提交新诉求", "Submit a new appeal"),
    "portal.mine": ("我的诉求", "My appeals"),
    "portal.empty": ("还没有提交过诉求。", "No appeals yet."),
    "portal.waiting_on_you": ("需要您处理", "Waiting for you"),
    "portal.submit": ("提交", "Submit"),
    "portal.submitted": ("诉求 {number} 已提交。", "Appeal {number} submitted."),
    "portal.fix": ("请修改标红的字段后重新提交。", "Please correct the fields marked in red."),
    "portal.enterprise": ("企业", "Enterprise"),
    "portal.channel": ("受理渠道", "Channel"),
    "portal.on_behalf": ("代企业提交（代办）", "Submitting on an enterprise's behalf"),
    "portal.required": ("必填", "required"),
    "portal.choose": ("请选择", "Choose"),
    "portal.types": ("可提交的诉求类型", "Kinds of appeal"),
    "portal.time_limit": ("承诺时限：{limit}", "Time limit: {limit}"),
    # dashboard
    "dashboard.title": ("督办看板", "Supervision dashboard"),
    "dashboard.scope": ("辖区：{unit}", "Area: {unit}"),
    "dashboard.as_of": ("统计时间：{when}", "As of {when}"),
    "dashboard.open": ("在办", "Open"),
    "dashboard.breached": ("已超时", "Breached"),
    "dashboard.at_risk": ("即将超时", "At risk"),
    "dashboard.paused": ("暂停计时", "Paused"),
    "dashboard.on_track": ("正常", "On track"),
    "dashboard.other_open": ("其他在办", "Other open"),
    "dashboard.closed": ("已结束", "Finished"),
    "dashboard.by_level": ("各层级、各单位的超时与预警", "Breached and at risk by level and unit"),
    "dashboard.trend": ("每周响应率与办结率", "Weekly response and resolution rates"),
    "dashboard.trend_note": ("按提交周统计，截至今日。", "By week of submission, as of today."),
    "dashboard.week": ("周（起）", "Week of"),
    "dashboard.submitted": ("提交", "Submitted"),
    "dashboard.responded": ("已响应", "Responded"),
    "dashboard.decided": ("已办结", "Resolved"),
    "dashboard.response_rate": ("响应率", "Response rate"),
    "dashboard.resolution_rate": ("办结率", "Resolution rate"),
    "dashboard.workload": ("承办人工作量", "Workload per handler"),
    "dashboard.person": ("承办人", "Handler"),
    "dashboard.role": ("角色", "Role"),
    "dashboard.buildings": ("各楼宇诉求", "Appeals per building"),
    "dashboard.building": ("楼宇", "Building"),
    "dashboard.total": ("累计", "All time"),
    "dashboard.unit": ("单位", "Unit"),
    "dashboard.level": ("层级", "Level"),
    "dashboard.nothing": ("暂无数据。", "No data."),
    "dashboard.rates": (
        "总体：响应率 {response}，办结率 {resolution}，按时办结率 {on_time}",
        "Overall: response {response}, resolution {resolution}, resolved within the limit {on_time}",
    ),
    "dashboard.drill": ("查看下级", "Drill down"),
    "dashboard.overdue_list": ("超时诉求", "Breached appeals"),
    "dashboard.overdue_more": ("超时最久的 {shown} 件，共 {total} 件。", "The {shown} most overdue of {total}."),
    "dashboard.up": ("返回全辖区", "Back to my whole area"),
    # inbox
    "inbox.title": ("消息", "Inbox"),
    "inbox.empty": ("没有消息。", "No notices."),
    "inbox.mark_selected": ("标记所选为已读", "Mark selected as read"),
    "inbox.mark_all": ("全部标为已读", "Mark all as read"),
    "inbox.marked": ("已将 {count} 条消息标为已读。", "Marked {count} notice(s) as read."),
    "inbox.unread": ("未读", "Unread"),
    "inbox.open": ("查看诉求", "Open the appeal"),
    "inbox.summary": ("{unread} 条未读", "{unread} unread"),
    # errors
    "error.title": ("出错了", "Something went wrong"),
    "error.404": ("找不到该页面或诉求，或您无权查看。", "No such page or appeal, or it is not yours to see."),
    "error.403": ("您没有权限进行此操作。", "You are not allowed to do that."),
    "error.csrf": (
        "表单已过期或来源不明，请返回后刷新页面再试。",
        "The form has expired or did not come from this site; go back, reload and try again.",
    ),
    "error.409": (
        "该诉求刚被他人更新，请刷新页面后重试。",
        "Someone else changed this appeal a moment ago; reload and try again.",
    ),
    "error.500": ("服务器内部错误，已记录。", "Internal error; it has been logged."),
    "error.home": ("返回首页", "Back to the start"),
    "error.detail": ("详细信息", "Details"),
    # forms
    "form.is_required": ("此项必填", "This field is required"),
    "form.true": ("是", "Yes"),
    # misc
    "time.left": ("剩 {text}", "{text} left"),
    "time.over": ("超时 {text}", "{text} overdue"),
    # A breach is a fact about the level that let it happen; the status shown is the current level's clock.
    "time.breached_earlier": ("此前在{level}超时", "breached earlier at the {level} level"),
    "time.paused": ("暂停计时", "Clock paused"),
    "time.stopped": ("已停止计时", "Clock stopped"),
    "time.none": ("无时限", "No time limit"),
    "list.number": ("编号", "Number"),
    "list.type": ("类型", "Type"),
    "list.updated": ("更新时间", "Updated"),
    "pager.prev": ("上一页", "Previous"),
    "pager.next": ("下一页", "Next"),
}

ROLE_TITLES: dict[str, tuple[str, str]] = {
    "enterprise_contact": ("企业联系人", "Enterprise contact"),
    "specialist": ("企业服务专员", "Service specialist"),
    "building_staff": ("楼宇工作人员", "Building committee staff"),
    "community_supervisor": ("社区负责人", "Community supervisor"),
    "subdistrict_supervisor": ("街道负责人", "Sub-district supervisor"),
    "district_supervisor": ("区级负责人", "District supervisor"),
    "bureau_officer": ("职能部门工作人员", "Bureau officer"),
    "system": ("系统", "System"),
}
LEVEL_TITLES: dict[str, tuple[str, str]] = {
    "building": ("楼宇", "building"),
    "community": ("社区", "community"),
    "subdistrict": ("街道", "sub-district"),
    "district": ("区级", "district"),
}
SLA_TITLES: dict[str, tuple[str, str]] = {
    "on_track": ("正常", "On track"),
    "at_risk": ("即将超时", "At risk"),
    "breached": ("已超时", "Breached"),
    "paused": ("暂停计时", "Paused"),
    "stopped": ("已停止计时", "Stopped"),
}
EVENT_TITLES: dict[str, tuple[str, str]] = {
    "submitted": ("提交", "Submitted"),
    "fired": ("办理", "Action"),
    "assigned": ("指派", "Assigned"),
    "commented": ("留言", "Comment"),
    "escalated": ("上报", "Escalated"),
    "sent_down": ("下派", "Sent down"),
    "breached": ("超时", "Breached"),
    "recomputed": ("重新计算时限", "Time limits recomputed"),
    "file_added": ("上传附件", "File added"),
    "file_removed": ("移除附件", "File removed"),
}
CHANNEL_TITLES: dict[str, tuple[str, str]] = {
    "online": ("线上", "online"),
    "offline": ("线下服务站", "service desk"),
    "hotline": ("热线", "hotline"),
    "onsite_session": ("每月一局现场接单", "monthly on-site session"),
}
TABLES = {
    "role": ROLE_TITLES,
    "level": LEVEL_TITLES,
    "sla": SLA_TITLES,
    "event": EVENT_TITLES,
    "channel": CHANNEL_TITLES,
}


def pick_locale(*candidates: str | None) -> str:
    """The first supported locale among the candidates (query, cookie, the user's own), else Chinese."""
    for candidate in candidates:
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE


def _index(locale: str) -> int:
    return 1 if locale == "en" else 0


def t(key: str, locale: str = DEFAULT_LOCALE, **values: object) -> str:
    """The UI string `key` in `locale`, with `{name}` placeholders filled; an unknown key shows itself."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[_index(locale)]
    return text.format(**values) if values else text


def title_of(table: str, value: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """A role, level, SLA status, event kind or channel in words; unknown values show as they are."""
    if value is None:
        return ""
    pair = TABLES[table].get(value)
    return pair[_index(locale)] if pair else value


def problem_message(problem: FieldProblem, locale: str = DEFAULT_LOCALE) -> str:
    """A field problem for people: a definition's own words (a form rule's message) when it has them."""
    if problem.words:
        return pick_title(problem.words, locale)
    return field_message(problem.message, locale)


def field_message(message: str, locale: str = DEFAULT_LOCALE) -> str:
    """A field problem from the engine for people: in Chinese on Chinese pages, as written in English."""
    if message == "is required":
        return t("form.is_required", locale)
    return message if locale == "en" else field_problem_in_chinese(message)


def system_reason(reason: str | None, locale: str = DEFAULT_LOCALE) -> str | None:
    """Why the system moved an appeal (a breach escalating it), as people read it."""
    if reason is None or locale == "en":
        return reason
    return system_reason_in_chinese(reason)


def guard_message(guard: str, explanation: str, locale: str = DEFAULT_LOCALE) -> str:
    return explanation if locale == "en" else guard_in_chinese(guard, explanation)
