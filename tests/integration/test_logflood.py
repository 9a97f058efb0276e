#!/usr/bin/env python3
"""Repeated log lines are counted, not written (README, "Limits: what one node holds"). A
fixture plugin (log-flood) logs one line 5000 times through svc->log,
then an unrelated line: hlcore's stderr stays short, says "(N more like
this: ...)" once the flood is over, and the admin panel's recent log
(/api/status) still holds the unrelated line and the lines from before
the flood (the startup lines), which a flood used to push out.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("logflood")
plugin_dir = t.plugin_dir("plugins/admin-web.so", "tests/abi/log-flood.so")
node = t.node("node")
ports = {}


def config():
    ports["admin"] = hltest.free_port()
    return node.base_config(
        log={"level": "info"}, plugin_dir=plugin_dir, plugins_strict=True,
        plugins={"admin-web": {"listen": hltest.local(ports["admin"])},
                 "log-flood": {}})


def case_flood_is_counted():
    node.start(config, lambda cfg: [ports["admin"]])
    check(node.wait_log(r"log-flood: after the flood", 10) is not None,
          "the log", "the line after the flood", node.log()[-2000:])
    log = node.log()
    flood = [ln for ln in log.splitlines() if "malformed packet" in ln]
    check(len(flood) <= 11, "hlcore's stderr after 5000 repeats of a line",
          "at most a burst of 10 (and a summary)",
          "%d lines:\n%s" % (len(flood), "\n".join(flood[:20])))
    # The summary comes once the flood has been quiet for 10 s.
    m = node.wait_log(r"log-flood: \((\d+) more like this: malformed "
                      r"packet \d+ from 192\.0\.2\.\d+ dropped\)", 20)
    check(m is not None and m.group(1) == "4990", "the summary line",
          "(4990 more like this: malformed packet ...)", node.log()[-2000:])
    texts = [e["text"] for e in node.admin_status(ports["admin"])["log"]]
    check(any(x == "log-flood: after the flood: an unrelated line"
              for x in texts), "/api/status's log",
          "the unrelated line logged after the flood", texts[-20:])
    check(any(re.match(r"plugin admin-web \S+ loaded", x) for x in texts),
          "/api/status's log", "the startup lines from before the flood",
          texts[:20])
    check(sum("malformed packet" in x for x in texts) <= 11,
          "/api/status's log", "at most the burst and the summary",
          texts[-20:])
    check(any(x.startswith("log-flood: (4990 more like this:")
              for x in texts), "/api/status's log", "the summary",
          texts[-20:])
    node.stop_ok()


t.case("a line repeated 5000 times: a burst, then a count",
       case_flood_is_counted)
t.finish()
