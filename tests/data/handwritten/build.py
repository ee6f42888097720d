#!/usr/bin/env python3
"""Wraps the hand-written reports in matters*.py into the agencies' payloads and
writes dedup-handwritten-tuning.jsonl / dedup-handwritten-heldout.jsonl.

The wording, places, people, numbers and times of every report are written by
hand in matters*.py; this file only fills in the envelope fields that carry no
meaning for matching (order numbers, message ids, photo hashes, ID check digits)
and splits the matters by group (a hard negative stays with the matter it is
the negative of).  Deterministic: run it again and the files do not change.
"""
import hashlib, json, os, sys, uuid
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)
TZ = timezone(timedelta(hours=8))
R = []          # (at, group, line)
GROUP = [0]
PIN = {}        # group number -> "tuning" | "heldout", for groups pinned by hand
SEQ = {}

def group(part=None):
    """Starts a matter group.  Without `part` the group's number decides its file
    (number % 5 in (2, 4) -> held-out); part="heldout" or "tuning" pins it, so a
    group of hard negatives can be sent to the held-out file without moving any
    group written before it."""
    assert part in (None, "tuning", "heldout"), part
    GROUP[0] += 1
    if part:
        PIN[GROUP[0]] = part

def h(*parts):
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()

def num(key, lo, hi):
    return lo + int(h(key)[:12], 16) % (hi - lo)

def nxt(key, start):
    SEQ[key] = SEQ.get(key, start) + num(key + str(SEQ.get(key)), 1, 7)
    return SEQ[key]

def idno(area, key, female=False):
    """A fake resident ID number with a correct GB 11643 check digit."""
    y = num(key + "y", 1950, 2000); m = num(key + "m", 1, 13); d = num(key + "d", 1, 29)
    s = num(key + "s", 10, 99); g = num(key + "g", 0, 5) * 2 + (0 if female else 1)
    body = f"{area[:6]}{y:04d}{m:02d}{d:02d}{s:02d}{g}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * x for c, x in zip(body, w)) % 11]

def t_(s):
    return datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)

def put(at, matter, line, note):
    line["matter"] = matter
    line["encoding"] = "utf-8"
    if note:
        line["note"] = note
    R.append((at, GROUP[0], matter, line))

def hot(m, t, area, addr, cat, typ, content, name=None, phone=None, urgent=False, days=None, note=None):
    at = t_(t)
    at = at + timedelta(seconds=num(m + t, 0, 59))
    body = {
        "orderNo": f"LY12345-{at:%Y%m%d}-{nxt('o' + at.strftime('%Y%m%d'), 100):06d}",
        "version": 1,
        "callId": f"CTI-{num(m + t + 'c', 8000000, 9999999)}",
        "callTime": at.strftime("%Y-%m-%d %H:%M:%S"),
        "appealType": str(typ),
        "category": cat,
        "content": content,
        "agentId": f"{num(m + t + 'a', 100, 999):04d}",
    }
    if phone is None:
        body["anonymous"] = True
    else:
        body["callerNumber"] = phone
    if name:
        body["callerName"] = name
    if addr:
        body["address"] = addr
    if area:
        body["areaCode"] = area
    if urgent:
        body["urgent"] = True
    body["handleDays"] = days or (1 if urgent else 5)
    put(at, m, {"system": "hotline", "contentType": "json", "routingKey": "order.created",
                "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}, note)

def pet(m, date, wtsd, nrfl, xfmd, xfr, zynr, xfxs="来访", rs=None, zt="已登记", note=None):
    """xfr: list of (xm, lxdh or None, zz or None, with ID number?)."""
    d = datetime.strptime(date, "%Y-%m-%d").replace(hour=num(m + date, 8, 16), minute=num(m + date + 'm', 0, 59), tzinfo=TZ)
    people = []
    for i, (xm, tel, zz, sfz) in enumerate(xfr):
        p = {"xm": xm}
        if sfz:
            p["sfzh"] = idno(wtsd, m + xm + str(i), female=xm.endswith("女士") or "女" in xm)
        if tel:
            p["lxdh"] = tel
        if zz:
            p["zz"] = zz
        people.append(p)
    body = {
        "djbh": f"{wtsd[:6]}-{d.year}-{nxt('p' + wtsd[:6], 2000):07d}",
        "bbh": 1, "xfxs": xfxs, "djrq": d.strftime("%Y%m%d"), "xfr": people,
        "rs": rs or len(people), "wtsd": wtsd, "nrfl": nrfl, "xfmd": xfmd, "zynr": zynr,
        "slqx": (d + timedelta(days=15)).strftime("%Y-%m-%d"), "zt": zt,
    }
    put(d, m, {"system": "petition", "contentType": "json", "routingKey": "record.registered",
               "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}, note)

CENTRE = {"220402": (42.905, 125.145), "220403": (42.925, 125.105), "220421": (42.677, 125.531), "220422": (42.926, 124.991)}

def ter(m, t, worker, grid, addr, cat, reason, deadline=48, photos=1, note=None):
    at = t_(t) + timedelta(seconds=num(m + t, 0, 59))
    lat0, lng0 = CENTRE[grid[:6]]
    v = grid[:12]
    lat = round(lat0 + (num(v + "la", 0, 20000) - 10000) / 100000 + (num(m + "la", 0, 30) - 15) / 100000, 5)
    lng = round(lng0 + (num(v + "ln", 0, 20000) - 10000) / 100000 + (num(m + "ln", 0, 30) - 15) / 100000, 5)
    body = {
        "msgId": str(uuid.UUID(h(m, t, worker)[:32])),
        "eventId": f"{worker}-{at:%Y%m%d}-{nxt('e' + worker + at.strftime('%Y%m%d'), 0):04d}",
        "workerId": worker, "gridId": grid, "reason": reason, "category": cat,
        "location": {"address": addr, "lat": lat, "lng": lng},
        "occurredAt": int(at.timestamp() * 1000),
        "photos": [{"url": f"https://terminal.example/p/{worker}/{at:%Y%m%d}/{num(m + str(i), 100000, 999999)}.jpg",
                    "sha256": h(m, t, i)} for i in range(photos)],
        "deadlineHours": deadline,
    }
    put(at, m, {"system": "terminal", "contentType": "json", "topic": f"grid/{grid[:6]}/{worker}/report",
                "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}, note)

COURT = {"220402": "吉0402", "220403": "吉0403", "220421": "吉0421", "220422": "吉0422"}
CAUSE = {"相邻": ("9062", "相邻关系纠纷"), "借贷": ("9222", "民间借贷纠纷"), "承包": ("9011", "土地承包经营权纠纷"),
         "劳务": ("9171", "劳务合同纠纷"), "物业": ("9103", "物业服务合同纠纷"), "报酬": ("9231", "追索劳动报酬纠纷"),
         "买卖": ("9091", "买卖合同纠纷"), "租赁": ("9108", "房屋租赁合同纠纷"), "损害": ("9324", "财产损害赔偿纠纷")}

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

def crt(m, t, venue_area, venue, cause, apps, resps, claim, amount=None, status="RECEIVED", note=None):
    """apps/resps: list of (name, phone or None, address or None, kind) ; kind person|org."""
    at = t_(t) + timedelta(seconds=num(m + t, 0, 59))
    county = venue_area[:6]
    court = COURT[county]
    no = nxt("c" + court + str(at.year), 300)
    paren = "（{}）".format(at.year) if num(m + "br", 0, 2) else f"({at.year})"
    code, name = CAUSE[cause]
    seq = nxt("seq", 5000)
    def party(role, p, i):
        nm, tel, addr, kind = p
        x = f'<Party role="{role}" kind="{kind}"><Name>{esc(nm)}</Name>'
        if role == "applicant" and kind == "person" and i == 0:
            x += f"<IdNo>{idno(venue_area, m + nm)}</IdNo>"
        if tel:
            x += f"<Phone>{tel}</Phone>"
        if addr:
            x += f"<Address>{esc(addr)}</Address>"
        return x + "</Party>"
    parties = "".join("\n      " + party("applicant", p, i) for i, p in enumerate(apps)) + \
              "".join("\n      " + party("respondent", p, i) for i, p in enumerate(resps))
    amt = f' amount="{amount:.2f}" currency="CNY"' if amount else ""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Case seq="{seq}" changed="{at.isoformat()}">\n'
           f"    <CaseNo>{paren}{court}民诉前调{no}号</CaseNo>\n"
           f'    <Cause code="{code}">{name}</Cause>\n    <Status>{status}</Status>\n'
           f"    <Received>{at.isoformat()}</Received>\n"
           f'    <Venue area="{venue_area}">{esc(venue)}</Venue>\n    <Parties>{parties}\n    </Parties>\n'
           f"    <Claim{amt}>{esc(claim)}</Claim>\n  </Case>\n")
    put(at, m, {"system": "court", "contentType": "xml", "payload": xml}, note)

def main():
    import glob
    env = dict(hot=hot, pet=pet, ter=ter, crt=crt, group=group)
    for f in sorted(glob.glob(os.path.join(HERE, "matters*.py"))):
        exec(compile(open(f, encoding="utf-8").read(), f, "exec"), env)
    tuning, heldout = [], []
    for at, g, m, line in sorted(R, key=lambda r: (r[0], r[2])):
        part = PIN.get(g) or ("heldout" if g % 5 in (2, 4) else "tuning")
        (heldout if part == "heldout" else tuning).append(line)
    for name, lines in (("tuning", tuning), ("heldout", heldout)):
        with open(os.path.join(OUT, f"dedup-handwritten-{name}.jsonl"), "w", encoding="utf-8") as f:
            for l in lines:
                f.write(json.dumps(l, ensure_ascii=False, sort_keys=True) + "\n")
        ms = {}
        for l in lines:
            ms.setdefault(l["matter"], []).append(l)
        multi = sum(1 for v in ms.values() if len(v) > 1)
        negs = len({l["matter"] for l in lines if "note" in l})
        print(f"{name}: {len(ms)} matters ({multi} multi-channel, {len(ms) - multi} single), {len(lines)} reports, {negs} matters with a hard-negative note")

if __name__ == "__main__":
    main()
