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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("admin_status_utf8")
plugin_dir = t.plugin_dir("plugins/admin-web.so", "tests/abi/bad-utf8.so")
node = t.node("node")
ports = {}
TITLE = "\u00e9" * 300


def config():
    ports["admin"] = hltest.free_port()
    return node.base_config(
        plugin_dir=plugin_dir, plugins_strict=True,
        plugins={"admin-web": {"listen": hltest.local(ports["admin"])},
                 "bad-utf8": {}},
        # "serving a (" and "serving bb (": one of the two lines is cut
        # at an odd offset into the title, inside a character.
        services={"a": {"target": "127.0.0.1:9", "title": TITLE},
                  "bb": {"target": "127.0.0.1:9", "title": TITLE}})


def case_every_entry_is_there():
    node.start(config, lambda cfg: [ports["admin"]])
    check(node.wait_log(r"admin-web: first start") is not None,
          "the log", "admin-web's first start", node.log()[-3000:])
    st = node.admin_status(ports["admin"])
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
