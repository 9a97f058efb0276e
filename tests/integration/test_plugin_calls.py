#!/usr/bin/env python3
"""call_on_loop's promise (plugin.h): a call queued by a plugin runs before
its fini or never. Here one call of a batch (call-stopper's) turns another
plugin (call-victim) off, as the admin panel's toggle does; call-victim's
calls queued in the same batch, behind it, must then be dropped, not run
after its fini (call-victim aborts hlcore if one runs).

Uses the fixture plugins built under $HL_BUILD_DIR/tests/abi.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import check  # noqa: E402

t = hltest.Test("plugin-calls")
FIXTURES = os.path.join(t.build_dir, "tests", "abi")
NAMES = ["call-stopper", "call-victim"]
if not all(os.path.isfile(os.path.join(FIXTURES, n + ".so")) for n in NAMES):
    print("SKIP: no call-* fixtures in %s (build the tests first)" % FIXTURES)
    print("0 passed, 0 failed")
    sys.exit(hltest.SKIP)

plugin_dir = os.path.join(t.tmp, "plugins")
os.makedirs(plugin_dir)
for n in NAMES:
    shutil.copy(os.path.join(FIXTURES, n + ".so"), plugin_dir)
node = t.node("node")


def config():
    # call-stopper first: its init, and so its call, comes first.
    return {
        "state_dir": node.state_dir,
        "log": {"level": hltest.log_level()},
        "proxy": {"listen": "off"},
        "plugin_dir": plugin_dir,
        "plugins": {"call-stopper": {}, "call-victim": {}},
    }


def case_queued_calls_of_a_stopped_plugin_are_dropped():
    node.start(config, lambda cfg: [])
    m = node.wait_log(r"turned call-victim off|cannot stop call-victim|"
                      r"BUG: a queued call ran after fini", timeout=10)
    log = node.log()
    check(m is not None and "turned call-victim off" in m.group(0),
          "call-stopper's call", "turned call-victim off", log[-3000:])
    node.wait_log(r"call-victim: fini ran", timeout=5)
    # Give a wrongly kept call the time to run.
    node.wait_log(r"BUG: a queued call", timeout=1)
    log = node.log()
    check("BUG: a queued call ran after fini" not in log and node.running(),
          "call-victim's calls queued behind the call that stopped it",
          "dropped (hlcore still running)", log[-3000:])
    check("call 1 ran before fini" not in log,
          "call-victim's calls", "none run (they were behind the stop)",
          log[-3000:])
    node.stop_ok()


t.case("queued calls of a plugin stopped by an earlier call are dropped",
       case_queued_calls_of_a_stopped_plugin_are_dropped)
t.finish()
