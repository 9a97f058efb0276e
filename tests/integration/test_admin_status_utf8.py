#!/usr/bin/env python3
"""/api/status never loses an entry to text that is not UTF-8: jansson
refuses such strings, and an entry holding one used to vanish. Here a
fixture plugin (bad-utf8) reports two LAN services, one whose title has
bytes that are not UTF-8 and one whose long title the core cuts inside a
character, and logs a line with such bytes; two services have long titles
of 2-byte characters, so that the recent log cuts one of their "serving"
lines inside a character. Every one must be in /api/status, with U+FFFD
where the bad bytes were.
"""
import http.client
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("admin_status_utf8")
ADMIN_SO = os.path.join(t.build_dir, "plugins", "admin-web.so")
FIXTURE = os.path.join(t.build_dir, "tests", "abi", "bad-utf8.so")
for so in (ADMIN_SO, FIXTURE):
    if not os.path.isfile(so):
        print("SKIP: %s was not built" % so)
        print("0 passed, 0 failed")
        sys.exit(hltest.SKIP)

plugin_dir = os.path.join(t.tmp, "plugins")
os.makedirs(plugin_dir)
shutil.copy(ADMIN_SO, plugin_dir)
shutil.copy(FIXTURE, plugin_dir)
node = t.node("node")
ports = {}
TITLE = "\u00e9" * 300


def config():
    ports["admin"] = hltest.free_port()
    return {
        "state_dir": node.state_dir,
        "log": {"level": hltest.log_level()},
        "proxy": {"listen": "off"},
        "plugin_dir": plugin_dir,
        "plugins_strict": True,
        "plugins": {
            "admin-web": {"listen": "127.0.0.1:%d" % ports["admin"]},
            "bad-utf8": {},
        },
        # "serving a (" and "serving bb (": one of the two lines is cut
        # at an odd offset into the title, inside a character.
        "services": {"a": {"target": "127.0.0.1:9", "title": TITLE},
                     "bb": {"target": "127.0.0.1:9", "title": TITLE}},
    }


def status():
    with open(os.path.join(node.state_dir, "admin.token")) as f:
        token = f.read().strip()
    conn = http.client.HTTPConnection("127.0.0.1", ports["admin"],
                                      timeout=t.slow(10))
    try:
        conn.request("GET", "/api/status",
                     headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    check(r.status == 200, "GET /api/status", "200", r.status)
    return json.loads(body.decode("utf-8"))


def case_every_entry_is_there():
    node.start(config, lambda cfg: [ports["admin"]])
    check(node.wait_log(r"admin-web: first start") is not None,
          "the log", "admin-web's first start", node.log()[-3000:])
    st = status()
    lan = {s["label"][-1]: s for s in st["lan"]}
    check(set(lan) == {"1", "2"}, "the LAN services in /api/status",
          "both the fixture reported", st["lan"])
    check(lan["1"]["title"].startswith("caf\ufffd \ufffd\ufffd bad-title"),
          "the title with bytes that are not UTF-8",
          "each bad byte as U+FFFD", lan["1"]["title"])
    check(lan["2"]["title"].startswith("\u00e9" * 63),
          "the title cut inside a character", "its whole characters",
          lan["2"]["title"])
    texts = [e["text"] for e in st["log"]]
    for want in ("bad-utf8: bad-utf8 line: caf\ufffd \ufffd",
                 "serving a (", "serving bb ("):
        check(any(x.startswith(want) for x in texts),
              "the recent log in /api/status", "a line starting %r" % want,
              texts)
    node.stop_ok()


t.case("/api/status keeps entries whose text is not UTF-8",
       case_every_entry_is_there)
t.finish()
