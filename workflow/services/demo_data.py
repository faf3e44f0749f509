"""A demo district with invented people: 3 sub-districts, 6 communities, 10 buildings, 300 enterprises."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from workflow.clock import Clock
from workflow.domain.credit_code import check_character
from workflow.domain.org import Role, UnitKind
from workflow.errors import Conflict
from workflow.persistence.tables import Enterprise, Unit, User, table_of
from workflow.persistence.unit_of_work import UnitOfWork

units_t, users_t, enterprises_t = table_of(Unit), table_of(User), table_of(Enterprise)

DISTRICT = ("D01", "芙蓉区", "Furong District")
SUBDISTRICTS = [
    ("S01", "定王台街道", "Dingwangtai Sub-district"),
    ("S02", "文艺路街道", "Wenyilu Sub-district"),
    ("S03", "五里牌街道", "Wulipai Sub-district"),
]
COMMUNITIES = [  # (code, parent, name, English name)
    ("C01", "S01", "走马楼社区", "Zoumalou Community"),
    ("C02", "S01", "桐荫里社区", "Tongyinli Community"),
    ("C03", "S02", "识字岭社区", "Shiziling Community"),
    ("C04", "S02", "八一路社区", "Bayilu Community"),
    ("C05", "S03", "乔庄社区", "Qiaozhuang Community"),
    ("C06", "S03", "人民东路社区", "Renmin East Road Community"),
]
BUILDINGS = [
    ("B01", "C01", "长沙国金中心", "Changsha IFS"),
    ("B02", "C01", "平和堂商务楼", "Heiwado Office Tower"),
    ("B03", "C02", "亚大时代", "Yada Times"),
    ("B04", "C02", "世茂环球金融中心", "Shimao Global Financial Center"),
    ("B05", "C03", "华远国际中心", "Huayuan International Center"),
    ("B06", "C03", "保利国际广场", "Poly International Plaza"),
    ("B07", "C04", "运达国际广场", "Yunda International Plaza"),
    ("B08", "C05", "中天广场", "Zhongtian Plaza"),
    ("B09", "C05", "友阿总部大厦", "Youa Headquarters"),
    ("B10", "C06", "万达广场写字楼", "Wanda Plaza Offices"),
]
DEPARTMENTS = [
    ("DEP-APPROVAL", "行政审批服务局", "Administrative Approval Bureau"),
    ("DEP-FINANCE", "财政局", "Finance Bureau"),
    ("DEP-TAX", "税务局", "Tax Bureau"),
]
SURNAMES = "王李张刘陈杨黄赵吴孙徐马胡朱郭何罗高林郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍鹏辉玲红浩宇然欣怡晨阳帆琳雪梅婷峰波斌"
# People named in the seed article; demo names must never be real people.
FORBIDDEN_NAMES = {"丁娟", "周紫微"}
TRADE_WORDS = [
    "星辰",
    "云帆",
    "湘江",
    "麓山",
    "橘洲",
    "芙蓉",
    "天心",
    "岳麓",
    "楚韵",
    "潇湘",
    "锦程",
    "华章",
    "博远",
    "鼎盛",
    "恒信",
    "德润",
    "嘉禾",
    "瑞丰",
    "启航",
    "致远",
]
INDUSTRIES = [
    ("科技有限公司", "software"),
    ("文化传媒有限公司", "media"),
    ("商贸有限公司", "retail"),
    ("咨询服务有限公司", "consulting"),
    ("香氛有限公司", "cosmetics"),
    ("金融服务有限公司", "finance"),
    ("餐饮管理有限公司", "catering"),
    ("网络科技有限公司", "internet"),
]
DEMO_PASSWORD = "demo-2026-appeals"  # printed by `appeals serve --demo`; never used outside the demo


@dataclass(frozen=True)
class DemoSummary:
    units: int
    enterprises: int
    users: int


def _person(rng: random.Random, used: set[str]) -> str:
    while True:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        if name not in used and name not in FORBIDDEN_NAMES:
            used.add(name)
            return name


def demo_credit_code(number: int) -> str:
    """A valid 统一社会信用代码 for demo enterprise `number`: a company (91) registered in Furong district
    (430102), an invented organisation code, and the check character the standard computes."""
    first_17 = f"91430102MA4{number:06d}"
    return first_17 + check_character(first_17)


def demo_loaded(uow: UnitOfWork) -> bool:
    """Whether this database already holds the demo district."""
    return uow.connection.execute(select(units_t.c.id).where(units_t.c.code == DISTRICT[0])).first() is not None


def load_demo(
    uow: UnitOfWork,
    clock: Clock,
    *,
    enterprises_per_building: int = 30,
    seed: int = 2026,
    password_hash: str | None = None,
) -> DemoSummary:
    """Insert the demo district; refuses to run twice on one database."""
    conn = uow.connection
    if demo_loaded(uow):
        raise Conflict(
            "the demo district is already loaded in this database; "
            "run `appeals init` without --demo or use an empty database"
        )
    rng = random.Random(seed)
    now = clock.now()
    ids: dict[str, int] = {}
    paths: dict[str, str] = {}

    def add_unit(code: str, parent: str | None, kind: UnitKind, name: str, name_en: str) -> None:
        unit_id = conn.execute(
            insert(units_t).returning(units_t.c.id),
            {
                "code": code,
                "kind": kind.value,
                "name": name,
                "name_en": name_en,
                "parent_id": ids[parent] if parent else None,
                "path": "",
            },
        ).scalar_one()
        ids[code] = unit_id
        paths[code] = (paths[parent] if parent else "/") + f"{unit_id}/"
        conn.execute(update(units_t).where(units_t.c.id == unit_id).values(path=paths[code]))

    add_unit(DISTRICT[0], None, UnitKind.DISTRICT, DISTRICT[1], DISTRICT[2])
    for code, name, name_en in SUBDISTRICTS:
        add_unit(code, DISTRICT[0], UnitKind.SUBDISTRICT, name, name_en)
    for code, parent, name, name_en in COMMUNITIES:
        add_unit(code, parent, UnitKind.COMMUNITY, name, name_en)
    for code, parent, name, name_en in BUILDINGS:
        add_unit(code, parent, UnitKind.BUILDING, name, name_en)
    for code, name, name_en in DEPARTMENTS:
        add_unit(code, DISTRICT[0], UnitKind.DEPARTMENT, name, name_en)

    used: set[str] = set()
    staff: list[dict[str, Any]] = []

    def person(username: str, role: Role, unit: str, **extra: Any) -> dict[str, Any]:
        return {
            "username": username,
            "display_name": _person(rng, used),
            "role": role.value,
            "unit_id": ids[unit],
            "email": f"{username}@demo.appeals.local",
            "phone": None,
            "locale": "zh-CN",
            "password_hash": password_hash,
            "active": True,
            "created_at": now,
            "enterprise_id": None,
            **extra,
        }

    staff.append(person("district-01", Role.DISTRICT_SUPERVISOR, DISTRICT[0]))
    staff.append(person("district-02", Role.DISTRICT_SUPERVISOR, DISTRICT[0], locale="en"))
    for code, *_ in SUBDISTRICTS:
        staff.append(person(f"subdistrict-{code.lower()}", Role.SUBDISTRICT_SUPERVISOR, code))
    for code, *_ in COMMUNITIES:
        staff.append(person(f"community-{code.lower()}", Role.COMMUNITY_SUPERVISOR, code))
    for code, *_ in BUILDINGS:
        staff.append(person(f"staff-{code.lower()}", Role.BUILDING_STAFF, code))
        staff.append(person(f"specialist-{code.lower()}", Role.SPECIALIST, code))
    staff.append(person("bureau-approval-01", Role.BUREAU_OFFICER, "DEP-APPROVAL"))
    staff.append(person("bureau-approval-02", Role.BUREAU_OFFICER, "DEP-APPROVAL"))
    staff.append(person("bureau-finance-01", Role.BUREAU_OFFICER, "DEP-FINANCE"))
    staff.append(person("bureau-tax-01", Role.BUREAU_OFFICER, "DEP-TAX"))
    conn.execute(insert(users_t), staff)
    specialists = dict(
        conn.execute(select(users_t.c.username, users_t.c.id).where(users_t.c.role == Role.SPECIALIST.value)).all()
    )

    rows = []
    number = 0
    for code, *_ in BUILDINGS:
        for _ in range(enterprises_per_building):
            number += 1
            suffix, industry = rng.choice(INDUSTRIES)
            rows.append(
                {
                    "name": f"长沙{rng.choice(TRADE_WORDS)}{rng.choice(TRADE_WORDS)}{suffix}（{number:03d}）",
                    "credit_code": demo_credit_code(number),
                    "building_id": ids[code],
                    "specialist_id": specialists[f"specialist-{code.lower()}"],
                    "industry": industry,
                    "floor": rng.randint(5, 45),
                    "party_members": rng.choice((0, 0, 1, 2, 3, 4, 5, 8)),
                    "created_at": now,
                }
            )
    conn.execute(insert(enterprises_t), rows)
    enterprise_ids = conn.execute(select(enterprises_t.c.id).order_by(enterprises_t.c.id)).scalars().all()
    contacts = [
        {
            **person(
                f"contact-{index:04d}", Role.ENTERPRISE_CONTACT, BUILDINGS[(index - 1) // enterprises_per_building][0]
            ),
            "enterprise_id": enterprise_id,
        }
        for index, enterprise_id in enumerate(enterprise_ids, start=1)
    ]
    conn.execute(insert(users_t), contacts)
    return DemoSummary(units=len(ids), enterprises=len(rows), users=len(staff) + len(contacts))
