#!/usr/bin/env python3
"""Broken plugins: hlcore refuses each with one log line naming the file,
the reason and the fix, and keeps running (serving through transport-tls);
with plugins_strict it exits 2; `check` reports them; a plugin that does
not exist is named with the reason; `hlcore --plugin-info` prints a good
descriptor and refuses a broken one with exit 2 and the reason.

Uses the ABI fixture plugins built under $HL_BUILD_DIR/tests/abi (skipped
when that directory is missing). Each fixture's descriptor name equals its
file name, as the loader wants (folder = descriptor name = YAML key =
<name>.so), so they are copied as they are into a plugin_dir of our own,
beside a copy of the real transport-tls.so.
"""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in, fetch  # noqa: E402

t = hltest.Test("plugins")
FIXTURES = os.path.join(t.build_dir, "tests", "abi")
if not os.path.isdir(FIXTURES):
    print("SKIP: no ABI fixtures in %s (build the tests first)" % FIXTURES)
    print("0 passed, 0 failed")
    sys.exit(hltest.SKIP)


def find_transport_tls():
    for p in (os.path.join(t.build_dir, "plugins", "transport-tls.so"),
              os.path.join(t.build_dir, "plugins", "transport-tls",
                           "transport-tls.so")):
        if os.path.isfile(p):
            return p
    return None


TLS_SO = find_transport_tls()

# fixture -> words its refusal must hold: (the reason..., the fix...)
BROKEN = {
    "bad-magic": (["magic 0x4e504c48", "0x484c504e"],
                  ["build it with HL_PLUGIN()"]),
    "other-major": (["built for plugin ABI 2.x", "speaks 1."],
                    ["rebuild the plugin against hlcore 1.x"]),
    "newer-minor": (["needs ABI 1.", "but this hlcore has 1."],
                    ["upgrade hlcore", "HL_PLUGIN_ABI_MINOR"]),
    "short-struct": (["descriptor is 24 bytes", "smaller than the 1.0"],
                     ["HL_PLUGIN()"]),
    "missing-op": (["has no dial op"], ["set .dial"]),
}
MISSING = "no-such-plugin"
GOOD = ["good", "frozen-1-0"]

plugin_dir = os.path.join(t.tmp, "plugins")
node = t.node("node")
backend = t.backend()
ports = {}
info = {}


def case_setup():
    check(TLS_SO is not None, "transport-tls.so in the build tree",
          "a file under %s/plugins" % t.build_dir, "none")
    os.makedirs(plugin_dir)
    shutil.copy(TLS_SO, os.path.join(plugin_dir, "transport-tls.so"))
    for name in list(BROKEN) + GOOD:
        src = os.path.join(FIXTURES, name + ".so")
        check(os.path.isfile(src), "fixture", src, "missing")
        shutil.copy(src, os.path.join(plugin_dir, name + ".so"))


def config(strict=False):
    ports["tls"] = hltest.free_port()
    ports["proxy"] = hltest.free_port()
    plugins = {"transport-tls": {"listen": "127.0.0.1:%d" % ports["tls"]}}
    for name in list(BROKEN) + [MISSING] + GOOD:
        plugins[name] = {}
    cfg = {
        "state_dir": node.state_dir,
        "log": {"level": hltest.log_level()},
        "proxy": {"listen": "127.0.0.1:%d" % ports["proxy"]},
        "plugin_dir": plugin_dir,
        "plugins": plugins,
        "services": {"site": {"target": backend.addr, "password": "none"}},
    }
    if strict:
        cfg["plugins_strict"] = True
    return cfg


def refusal_lines(log, name):
    path = os.path.join(plugin_dir, name + ".so")
    return [ln for ln in log.splitlines() if path in ln]


def check_refusals(log, what):
    for name, (reasons, fixes) in BROKEN.items():
        lines = refusal_lines(log, name)
        check(len(lines) == 1, "%s: lines naming %s.so" % (what, name),
              "exactly one", "%d: %s" % (len(lines), lines or log[-3000:]))
        for w in reasons:
            check_in(w, lines[0], "%s: the reason %s.so was refused" %
                     (what, name))
        for w in fixes:
            check_in(w, lines[0], "%s: the fix for %s.so" % (what, name))
    lines = refusal_lines(log, MISSING)
    check(len(lines) == 1, "%s: lines naming the missing %s.so" %
          (what, MISSING), "exactly one", lines or log[-3000:])
    for w in ("cannot open", "No such file", "plugin_dir"):
        check_in(w, lines[0], "%s: the line for a plugin that does not "
                 "exist" % what)


def case_runs_without_them():
    """broken plugins refused, one line each; hlcore keeps serving"""
    node.start(config, lambda cfg: [ports["tls"], ports["proxy"]])
    log = node.log()
    check_refusals(log, "hlcore's log")
    for name in GOOD + ["transport-tls"]:
        check(re.search(r"plugin %s \S* ?loaded from %s" %
                        (re.escape(name), re.escape(plugin_dir)), log),
              "the log", "plugin %s loaded from %s" % (name, plugin_dir),
              log[-3000:])
    check(node.running(), "hlcore with broken plugins", "still running",
          "exited %s" % node.proc.returncode)
    # And it serves, through transport-tls, via its own proxy.
    rc, out, err = node.cmd("url", "site")
    m = hltest.URL_RE.match(out.strip())
    check(m is not None, "url site", "a URL", out + err)
    info["host"] = "-%s.localhost:%d" % (m.group(2), ports["proxy"])
    r = fetch(ports["proxy"], info["host"], "/through-tls",
              timeout=t.slow(20))
    check(r.status == 200 and backend.token in r.text and
          "path=/through-tls" in r.text,
          "a request through the daemon that refused 6 plugins",
          "200 with the backend's page", r)


def case_stop():
    """SIGTERM: exit 0"""
    node.stop_ok()


def case_strict():
    """plugins_strict: true: exit 2"""
    strict = t.node("strict")
    cfg = config(strict=True)
    cfg["state_dir"] = strict.state_dir
    strict.write_config(cfg)
    strict.spawn()
    rc = strict.wait_exit(20)
    log = strict.log()
    if rc is None:
        strict.kill()
    check(rc == 2, "hlcore with plugins_strict: true and broken plugins",
          "exit status 2", "%s; log:\n%s" %
          ("still running after %d s" % t.slow(20) if rc is None else
           "exit %s" % rc, log[-3000:]))
    check_in("plugins_strict", log, "the strict run's log")
    check_refusals(log, "the strict run's log")


def case_check():
    """check: exit 2, each plugin named"""
    node.write_config(config())
    rc, out, err = node.cmd("check")
    check_eq(rc, 2, "exit status of check with broken plugins")
    check_refusals(err, "check's output")
    check_in("6 plugin problems", err, "check's summary")


def case_check_good():
    """check with good plugins only: exit 0"""
    cfg = config()
    for name in list(BROKEN) + [MISSING]:
        del cfg["plugins"][name]
    node.write_config(cfg)
    rc, out, err = node.cmd("check")
    check(rc == 0, "check with only good plugins", "exit 0",
          "exit %s: %s%s" % (rc, out, err))


def case_plugin_info():
    """--plugin-info: a descriptor, or exit 2 and why"""
    rc, out, err = hltest.run([t.hlcore, "--plugin-info", TLS_SO])
    check(rc == 0, "--plugin-info transport-tls.so", "exit 0",
          "exit %s: %s%s" % (rc, out, err))
    for want in (r"^name:\s+transport-tls$", r"^kinds:\s+transport$",
                 r"^ABI needed:\s+1\.\d+ ", r"^default priority:\s+\d+$",
                 r"^facets:\s+transport \(\d+ bytes\)$"):
        check(re.search(want, out, re.M), "--plugin-info transport-tls.so",
              "a line matching %r" % want, out)
    rc, out, err = hltest.run([t.hlcore, "--plugin-info",
                               os.path.join(FIXTURES, "good.so")])
    check(rc == 0 and re.search(r"^kinds:\s+discovery$", out, re.M),
          "--plugin-info good.so", "exit 0, kinds: discovery",
          "exit %s: %s%s" % (rc, out, err))
    for name, (reasons, fixes) in BROKEN.items():
        path = os.path.join(FIXTURES, name + ".so")
        rc, out, err = hltest.run([t.hlcore, "--plugin-info", path])
        text = out + err
        check(rc == 2, "--plugin-info %s.so" % name, "exit 2",
              "exit %s: %s" % (rc, text))
        for w in [path] + reasons + fixes:
            check_in(w, text, "--plugin-info %s.so" % name)
    path = os.path.join(t.tmp, "nothing-here.so")
    rc, out, err = hltest.run([t.hlcore, "--plugin-info", path])
    check(rc == 2 and path in out + err and "No such file" in out + err,
          "--plugin-info of a file that does not exist",
          "exit 2 naming it and why", "exit %s: %s%s" % (rc, out, err))
    notso = os.path.join(t.tmp, "not-a-plugin.so")
    with open(notso, "w") as f:
        f.write("this is not an ELF file\n")
    rc, out, err = hltest.run([t.hlcore, "--plugin-info", notso])
    check(rc == 2 and notso in out + err and "cannot load" in out + err,
          "--plugin-info of a text file", "exit 2, 'cannot load'",
          "exit %s: %s%s" % (rc, out, err))


if t.case("plugin_dir with transport-tls and the fixtures", case_setup):
    t.cases(
        case_runs_without_them, case_stop, case_strict, case_check,
        case_check_good, case_plugin_info)
t.finish()
