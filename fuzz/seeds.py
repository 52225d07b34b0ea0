#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/seed-*): a few valid
audience rules, events as the consumer loop receives them, and profiles. Plain protobuf
encoding by hand, so it needs nothing but Python 3. Run from anywhere; overwrites seeds only.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, value):
    """One field: int -> varint, float -> double, str/bytes -> length-delimited."""
    if isinstance(value, bool) or isinstance(value, int):
        return varint(number << 3) + varint(int(value))
    if isinstance(value, float):
        return varint(number << 3 | 1) + struct.pack("<d", value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(n, v) for n, v in fields)


def timestamp(seconds):
    return message((1, seconds))


CITIZEN = message(
    (1, "c-0001"), (2, 1), (3, "张三"), (4, "五角场街道"),
    (5, message((1, 1), (2, "zhang.san@example.cn"), (3, True))),
    (5, message((1, 2), (2, "13800138000"), (3, True))),
    (6, message((1, "housing"), (2, 1), (2, 3), (4, '{"department": ["区住房保障局"]}'), (5, 1))),
    (7, message((1, 1999), (2, "高校毕业生"), (3, "本区"), (4, "zh"))),
)
ENTERPRISE = message(
    (1, "e-0001"), (2, 2), (3, "上海某软件有限公司"), (4, "殷行街道"),
    (5, message((1, 1), (2, "hr@example.cn"), (3, True))),
    (8, message((1, "91310110MA1G8XXXXX"), (2, "I6513"), (3, "小"), (4, "2022-03-01"),
                (5, 500.0), (6, 42), (7, "高新技术企业"), (8, "park-yangpu"))),
)
POLICY = message(
    (1, "pol-0001"), (2, "高校毕业生租房补贴"), (3, "符合条件的，按月发放。"), (4, "housing"),
    (5, "区住房保障局"), (6, timestamp(1_795_000_000)), (7, "https://zwdt.sh.gov.cn/x"),
    (8, '{"citizen": {"groups": ["高校毕业生"]}}'), (9, False),
)
DELIVERY = message(
    (1, "pol-0001"), (2, "c-0001"), (3, 1), (4, "zhang.san@example.cn"), (5, "张三"),
    (6, "高校毕业生租房补贴"), (7, "符合条件的，按月发放。"), (8, "区住房保障局"),
    (10, "您订阅了政策标签“housing”"), (11, 2), (12, "zh"), (14, "sub-0123456789abcdef"),
)
STATUS = message(
    (1, "pol-0001"), (2, "c-0001"), (3, 3), (4, 5), (5, "read"), (6, timestamp(1_795_000_100)),
)


def event(ty, payload, key="c-0001"):
    head = [
        "ce_specversion: 1.0",
        f"ce_id: {ty}-1",
        f"ce_type: zhida.events.v1.{ty}",
        "ce_source: /zhida/profiler",
        "ce_time: 2026-11-27T08:00:00.000Z",
        "content-type: application/protobuf",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        f"key: {key}",
    ]
    return "\n".join(head).encode() + b"\n\n" + payload


SEEDS = {
    "audience_rule": [
        '{"street": ["五角场街道", "殷行街道"], "$or": [{"citizen": {"groups": ["高校毕业生"], '
        '"birth_year": [{"numeric": [">=", 1997]}]}}, {"enterprise": {"size": ["小", "微"], '
        '"industry": [{"industry": "I65"}], "registered_on": [{"date": [">=", "2022-01-01"]}]}}]}',
        '{"kind": ["SUBJECT_KIND_ENTERPRISE"], "enterprise": {"qualifications": '
        '[{"anything-but": {"prefix": "高新"}}], "employees": [{"numeric": [">", 10, "<=", 500]}]}}',
        '{"department": [{"equals-ignore-case": "区科委"}], "tags": [{"prefix": "hous"}], '
        '"service_url": [{"exists": true}], "title": [{"suffix": "补贴"}]}',
        '{"citizen": {"hukou": [{"anything-but": ["境外", "外省市"]}], "language": [null, "zh"]}}',
    ],
    "event_decode": [
        event("PolicyPublished", POLICY, key="pol-0001"),
        event("ProfileUpserted", message((1, CITIZEN))),
        event("ProfileUpserted", b"", key="e-0001"),  # a tombstone
        event("DeliveryRequested", DELIVERY),
        event("DeliveryStatusChanged", STATUS),
    ],
    "profile_validate": [CITIZEN, ENTERPRISE],
}

for target, seeds in SEEDS.items():
    directory = ROOT / target
    directory.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        data = seed.encode() if isinstance(seed, str) else seed
        (directory / f"seed-{i}").write_bytes(data)
    print(f"{target}: {len(seeds)} seeds in {directory}")
