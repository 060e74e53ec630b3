"""The demo organisation: a shopping mall, a student dormitory and an office block, with the
mall's and the office block's last two months of readings and month end
(``meterpay.apps.billing.demo_month_end``).

Built through the normal services (so the audit log shows how it came to be) and
deterministic (a fixed random seed), so screenshots and tests see the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites import services as sites
from meterpay.apps.sites.models import Room
from meterpay.apps.users.models import User
from meterpay.apps.users.services import staff_user_create, tenant_user_create
from meterpay.core.roles import Role

DEMO_ORG_SLUG = "riverside"
DEMO_PASSWORD = "demo"
STAFF_LOGINS = [
    ("owner", Role.OWNER),
    ("operator", Role.OPERATOR),
    ("finance", Role.FINANCE),
    ("viewer", Role.VIEWER),
]
TENANT_LOGIN = "tenant"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
    "彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华飞鑫宇晨浩然子涵欣怡梓轩思远雨桐"
SHOP_NAMES = [
    "星巴克咖啡",
    "优衣库",
    "屈臣氏",
    "周大福珠宝",
    "海底捞火锅",
    "名创优品",
    "喜茶",
    "小米之家",
    "无印良品",
    "李宁运动",
    "安踏体育",
    "太平鸟服饰",
    "西西弗书店",
    "良品铺子",
    "蜜雪冰城",
    "肯德基",
    "麦当劳",
    "必胜客",
    "瑞幸咖啡",
    "华为体验店",
    "OPPO专卖店",
    "百丽鞋业",
    "周生生",
    "老凤祥",
    "真功夫",
    "味千拉面",
    "一点点",
    "Costa Coffee",
    "ZARA",
    "H&M",
    "Nike",
    "Adidas",
    "Apple 授权店",
    "乐高专卖",
    "泡泡玛特",
    "外婆家",
    "绿茶餐厅",
    "九毛九",
    "奈雪的茶",
    "茶百道",
    "面包新语",
    "85度C",
    "好利来",
    "元祖食品",
    "全家便利店",
    "罗森便利店",
    "万宁",
    "丝芙兰",
    "欧莱雅",
    "兰蔻",
    "雅诗兰黛",
]
COMPANIES = [
    "江城智造科技有限公司",
    "汇通物流有限公司",
    "北辰会计师事务所",
    "云帆软件有限公司",
    "德信律师事务所",
    "远景设计工作室",
    "恒泰保险代理",
    "新禾教育咨询",
    "蓝海贸易有限公司",
    "创联网络科技",
    "博雅文化传媒",
    "金石投资管理",
    "安和医疗器械",
    "青松建筑设计院",
    "明德人力资源",
    "星河数据服务",
    "长风广告有限公司",
    "瑞丰食品贸易",
    "天成电子商务",
    "华岳工程咨询",
]


@dataclass
class DemoSummary:
    organisation: Organisation
    rooms: int
    meters: int
    accounts: int


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9))


def demo_exists() -> bool:
    return Organisation.objects.filter(slug=DEMO_ORG_SLUG).exists()


@transaction.atomic
def seed_demo() -> DemoSummary:
    """Create the demo organisation (call only when :func:`demo_exists` is false)."""
    rng = random.Random(3200)
    actor = "demo-seed"
    org = Organisation.objects.create(
        name="Riverside Property Management 江畔物业", slug=DEMO_ORG_SLUG
    )
    shared_hash = make_password(DEMO_PASSWORD)  # one slow hash for all demo logins, not five
    for username, role in STAFF_LOGINS:
        staff_user_create(
            actor=actor,
            organisation=org,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            email=f"{username}@riverside.example",
            password_hash=shared_hash,
        )
    install_day = date(2026, 3, 1)
    counter = {"dlt645": 100000, "cjt188": 10000}

    def next_address(protocol: str) -> str:
        counter[protocol] += 1
        return f"{counter[protocol]:012d}" if protocol == "dlt645" else f"{counter[protocol]:014d}"

    def add_meter(
        room: Room,
        gateway: Gateway,
        kind: str,
        model: str,
        *,
        address: str = "",
        multiplier: int = 1,
    ) -> Meter:
        """A meter on the gateway's bus; a factory address is allotted unless one is given."""
        protocol = gateway.protocol
        return meters.meter_create(
            actor=actor,
            organisation=org,
            kind=kind,
            protocol=protocol,
            address=address or next_address(protocol),
            model=model,
            gateway=gateway,
            room=room,
            multiplier=multiplier,
            installed_on=install_day,
        )

    # --- Mall: 3 floors x 20 shops; three-phase Modbus on 1F, single-phase DL/T 645 above.
    mall = sites.site_create(
        actor=actor,
        organisation=org,
        name="Riverside Mall 江畔购物中心",
        kind="mall",
        address="88 Riverside Road",
    )
    mall_building = sites.building_create(actor=actor, site=mall, name="Main building 主楼")
    shop_rooms: list[tuple[Room, list[Meter]]] = []
    for level in (1, 2, 3):
        floor = sites.floor_create(
            actor=actor, building=mall_building, name=f"{level}F", level=level
        )
        protocol = "modbus" if level == 1 else "dlt645"
        gateway = meters.gateway_create(
            actor=actor,
            site=mall,
            identifier=f"DTU-MALL-{level}F",
            kind="dtu_4g",
            protocol=protocol,
            name=f"Mall {level}F DTU",
        )
        for n in range(1, 21):
            area = (
                Decimal(rng.choice((32, 45, 58, 66, 80, 120, 150)))
                + Decimal(rng.randrange(0, 100)) / 100
            )
            room = sites.room_create(
                actor=actor, floor=floor, number=f"{level}F-{n:02d}", kind="shop", area_m2=area
            )
            meter = add_meter(
                room,
                gateway,
                "electricity_3p" if level == 1 else "electricity_1p",
                "DTSY1352" if level == 1 else "DDSY1352",
                address=str(n) if protocol == "modbus" else "",
                multiplier=20 if level == 1 else 1,
            )
            shop_rooms.append((room, [meter]))
        public = sites.room_create(
            actor=actor,
            floor=floor,
            number=f"{level}F-PUB",
            kind="public_area",
            area_m2=Decimal("400.00"),
        )
        add_meter(
            public,
            gateway,
            "electricity_3p",
            "DTSY1352",
            address="100" if protocol == "modbus" else "",
            multiplier=40,
        )

    # --- Student dormitory: 4 buildings x 5 floors x 8 rooms, electricity and water in every room.
    campus = sites.site_create(
        actor=actor,
        organisation=org,
        name="Eastlake University Dormitory 东湖大学宿舍区",
        kind="campus",
        address="1 University Avenue",
    )
    dorm_rooms: list[tuple[Room, list[Meter]]] = []
    for b in range(1, 5):
        building = sites.building_create(actor=actor, site=campus, name=f"Dorm {b} 宿舍{b}号楼")
        e_gateway = meters.gateway_create(
            actor=actor,
            site=campus,
            identifier=f"DTU-DORM{b}-E",
            kind="dtu_4g",
            protocol="dlt645",
            name=f"Dorm {b} electricity DTU",
        )
        w_gateway = meters.gateway_create(
            actor=actor,
            site=campus,
            identifier=f"DTU-DORM{b}-W",
            kind="dtu_4g",
            protocol="cjt188",
            name=f"Dorm {b} water DTU",
        )
        for level in range(1, 6):
            floor = sites.floor_create(
                actor=actor, building=building, name=f"{level}F", level=level
            )
            for n in range(1, 9):
                room = sites.room_create(
                    actor=actor,
                    floor=floor,
                    number=f"{b}-{level}{n:02d}",
                    kind="dormitory",
                    area_m2=Decimal("24.00"),
                )
                e = add_meter(room, e_gateway, "electricity_1p", "DDSY1352")
                w = add_meter(room, w_gateway, "water", "LXSY-15F")
                dorm_rooms.append((room, [e, w]))
        public = sites.room_create(
            actor=actor,
            floor=floor,
            number=f"{b}-PUB",
            kind="public_area",
            area_m2=Decimal("180.00"),
        )
        add_meter(public, e_gateway, "electricity_3p", "DTSY1352", multiplier=10)

    # --- Office block behind an MQTT gateway: 6 floors x 4 offices, three-phase.
    office = sites.site_create(
        actor=actor,
        organisation=org,
        name="Harbour Office Tower 港湾写字楼",
        kind="office",
        address="6 Harbour Street",
    )
    tower = sites.building_create(actor=actor, site=office, name="Tower A A座")
    mqtt = meters.gateway_create(
        actor=actor,
        site=office,
        identifier="MQTT-TOWER-A",
        kind="mqtt",
        protocol="dlt645",
        name="Tower A IoT gateway",
    )
    office_rooms: list[tuple[Room, list[Meter]]] = []
    for level in range(5, 11):
        floor = sites.floor_create(actor=actor, building=tower, name=f"{level}F", level=level)
        for n in range(1, 5):
            room = sites.room_create(
                actor=actor,
                floor=floor,
                number=f"A{level}{n:02d}",
                kind="office",
                area_m2=Decimal(rng.choice((120, 180, 240, 360))),
            )
            m = add_meter(room, mqtt, "electricity_3p", "DTSY1352", multiplier=30)
            office_rooms.append((room, [m]))
    lobby = sites.room_create(
        actor=actor,
        floor=tower.floors.get(level=5),
        number="A-LOBBY",
        kind="public_area",
        area_m2=Decimal("600.00"),
    )
    add_meter(lobby, mqtt, "electricity_3p", "DTSY1352", multiplier=60)

    # --- Customers and accounts in every state.
    accounts = 0
    shop_names = iter(SHOP_NAMES)
    companies = iter(COMPANIES)

    def occupy(
        room: Room,
        room_meters: list[Meter],
        customer: Customer,
        *,
        mode: str,
        side: str,
        state: str,
        move_in: date,
    ) -> Account:
        account = customers.account_preset(
            actor=actor,
            customer=customer,
            rooms=[room],
            meters=room_meters,
            billing_mode=mode,
            billing_side=side,
            move_in_on=move_in,
        )
        if state in ("open", "suspended", "closed"):
            account = customers.account_open(actor=actor, account=account, move_in_on=move_in)
            # the demo's tenants moved in before today: supplied (and billed) from that day
            opened = datetime.combine(move_in, time(), timezone.get_current_timezone())
            Account.objects.filter(pk=account.pk).update(opened_at=opened)
            account.opened_at = opened
        if state == "suspended":
            account = customers.account_suspend(actor=actor, account=account)
        if state == "closed":
            account = customers.account_close(
                actor=actor,
                account=account,
                move_out_on=move_in + timedelta(days=rng.randrange(60, 200)),
            )
        return account

    for i, (room, room_meters) in enumerate(shop_rooms):
        if i % 12 == 11:
            continue  # vacant shops
        name = next(shop_names, None) or f"商户{i}"
        customer = customers.customer_create(
            actor=actor, organisation=org, name=name, kind="company", phone=_phone(rng), notes=""
        )
        state = "pre-set" if i % 17 == 5 else "suspended" if i % 23 == 7 else "open"
        occupy(
            room,
            room_meters,
            customer,
            mode="prepaid",
            side="meter" if i % 5 == 0 else "platform",
            state=state,
            move_in=install_day + timedelta(days=rng.randrange(0, 120)),
        )
        accounts += 1

    for i, (room, room_meters) in enumerate(dorm_rooms):
        if i % 9 == 8:
            continue  # vacant dorm rooms
        if (
            i % 31 == 3
        ):  # an earlier student moved out; the room has a closed account in its history
            leaver = customers.customer_create(
                actor=actor,
                organisation=org,
                name=_person_name(rng),
                phone=_phone(rng),
                notes="已毕业 graduated",
            )
            occupy(
                room,
                room_meters,
                leaver,
                mode="prepaid",
                side="platform",
                state="closed",
                move_in=date(2025, 9, 1),
            )
            accounts += 1
        student = customers.customer_create(
            actor=actor, organisation=org, name=_person_name(rng), phone=_phone(rng), email=""
        )
        state = "pre-set" if i % 29 == 4 else "suspended" if i % 37 == 6 else "open"
        occupy(
            room,
            room_meters,
            student,
            mode="prepaid",
            side="platform",
            state=state,
            move_in=date(2026, 9, 1),
        )
        accounts += 1

    for i, (room, room_meters) in enumerate(office_rooms):
        if i % 6 == 5:
            continue
        customer = customers.customer_create(
            actor=actor,
            organisation=org,
            name=next(companies, f"公司{i}"),
            kind="company",
            phone=_phone(rng),
            email=f"facilities{i}@tenant.example",
        )
        occupy(
            room,
            room_meters,
            customer,
            mode="postpaid",  # the tower is billed monthly
            side="platform",
            state="pre-set" if i == 7 else "open",
            move_in=install_day + timedelta(days=30 * (i % 6)),
        )
        accounts += 1

    tenant_customer = (
        Customer.objects.filter(
            organisation=org, accounts__status="open", accounts__rooms__kind="dormitory"
        )
        .order_by("id")
        .first()
    )
    if tenant_customer is not None:
        tenant_user_create(
            actor=actor,
            customer=tenant_customer,
            username=TENANT_LOGIN,
            password=DEMO_PASSWORD,
            password_hash=shared_hash,
        )

    from meterpay.apps.tariffs.demo import demo_tariffs_seed

    demo_tariffs_seed(actor=actor, organisation=org)
    from meterpay.apps.billing.demo import demo_wallets_seed

    demo_wallets_seed(actor=actor, organisation=org)
    from meterpay.apps.billing.demo_month_end import demo_month_end_seed

    demo_month_end_seed(actor=actor, organisation=org, end_registers=simulated_registers(org))
    return DemoSummary(
        organisation=org,
        rooms=Room.objects.filter(organisation=org).count(),
        meters=Meter.objects.filter(organisation=org).count(),
        accounts=accounts,
    )


def simulated_registers(org: Organisation) -> dict[int, Decimal]:
    """Each electricity meter's register where its simulated meter (``meterpay simulate``)
    starts, so that the seeded history runs on into the simulated readings."""
    from meterpay.simulate.clock import ManualClock
    from meterpay.simulate.fleet import MeterSpec, virtual_meter
    from meterpay.simulate.meters import VirtualElectricityMeter

    clock = ManualClock(datetime.now())
    registers = {}
    for meter in Meter.objects.filter(organisation=org).exclude(kind=Meter.Kind.WATER):
        spec = MeterSpec(address=meter.address, protocol=meter.protocol, model=meter.model)
        simulated = virtual_meter(spec, clock, fast_clock=True)
        if isinstance(simulated, VirtualElectricityMeter):
            registers[meter.pk] = simulated.energy_total
    return registers


def demo_logins() -> list[tuple[str, str]]:
    names = [u for u, _ in STAFF_LOGINS]
    if User.objects.filter(username=TENANT_LOGIN).exists():
        names.append(TENANT_LOGIN)
    return [(n, DEMO_PASSWORD) for n in names]
