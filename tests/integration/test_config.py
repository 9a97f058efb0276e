#!/usr/bin/env python3
"""Bad configs: each one exits 2 and names file:line:column, with the line
and column of the very thing that is wrong, both for `hlcore -c FILE check`
and for a plain run (which must start nothing). Also the command line's
exit codes: --help, --version, no arguments, a missing file, an unknown
command, and `check` on a good config."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import hltest  # noqa: E402
from hltest import check, check_eq, check_in  # noqa: E402

t = hltest.Test("config")

# name -> (YAML, line, where, words the message must hold, also run it)
# The expected column is where `where` starts on that line: the offending
# key or value itself.
BAD = {
    "a limit out of range": (
        "state_dir: ./state\n"
        "limits:\n"
        "  idle_timeout: 600\n"
        "  tunnels_per_peer: 0\n",
        4, "0", ["limits tunnels_per_peer is", "from 1 to",
                 "or auto"], True),
    "an unknown limit": (
        "limits:\n"
        "  idle_timeout: 600\n"
        "  connections: 5\n",
        3, "connections", ['unknown key "connections"', "tunnels_per_peer"],
        True),
    "unknown top-level key": (
        "state_dir: ./state\n"
        "colour: blue\n",
        2, "colour", ['unknown key "colour"', "state_dir"], True),
    "wrong type (a string for a map)": (
        "state_dir: ./state\n"
        "proxy: \"127.0.0.1:7009\"\n",
        2, '"127', ['"proxy" must be a map'], True),
    "wrong type (a list for a map)": (
        "services:\n"
        "  - wiki\n"
        "  - nas\n",
        2, "- wiki", ['"services" must be a map', "not a list"], True),
    "bad password": (
        "services:\n"
        "  wiki:\n"
        "    target: \"127.0.0.1:8080\"\n"
        "    password: \"Hunter2!\"\n",
        4, '"Hunter', ['password of service "wiki" is not valid', "a-z and 2-7"],
        True),
    "password too long": (
        "services:\n"
        "  wiki: { target: \"127.0.0.1:8080\", password: "
        "abcdefghijklmnopqrstuvw }\n",
        2, "abcdefg", ["23 characters"], True),
    "bad keyhash in peers": (
        "state_dir: ./state\n"
        "peers:\n"
        "  b1aa4003e8bf17d4403bebd468cf53a3b575366a: [\"127.0.0.1:7008\"]\n"
        "  b1aa4003e8bf17d4403bebd468cf53a3b57536: [\"127.0.0.1:7008\"]\n",
        4, "b1aa", ["is not a keyhash", "38 characters"], True),
    "bad address in peers": (
        "peers:\n"
        "  b1aa4003e8bf17d4403bebd468cf53a3b575366a:\n"
        "    - \"127.0.0.1:7008\"\n"
        "    - \"127.0.0.1\"\n",
        4, '"127.0.0.1"', ["not a \"host:port\" address"], True),
    "YAML syntax: a tab": (
        "services:\n"
        "  wiki:\n"
        "\ttarget: \"127.0.0.1:8080\"\n",
        3, "\t", ["tabs"], True),
    "YAML syntax: unclosed {": (
        "state_dir: ./state\n"
        "proxy: { listen: \"127.0.0.1:7009\"\n"
        "plugins: {}\n",
        3, "plugins", ["did not find expected ',' or '}'", "line 2, column 8"],
        True),
    "duplicate key": (
        "state_dir: ./a\n"
        "log: { level: info }\n"
        "state_dir: ./b\n",
        3, "state_dir", ['duplicate key "state_dir"', "line 1, column 1"], True),
    "bad log level": (
        "log: { level: loud }\n",
        1, "loud", ['"loud"', "error, warn, info, debug"], True),
    "service without a target": (
        "services:\n"
        "  wiki:\n"
        "    title: Wiki\n",
        2, "wiki", ['"wiki" has no target'], True),
    # Reported by the plugin through the core's services (check only: a
    # run leaves a refused plugin out and goes on).
    "unknown key in plugins.transport-tls": (
        "state_dir: ./state\n"
        "plugins:\n"
        "  transport-tls:\n"
        "    listen: \"127.0.0.1:0\"\n"
        "    colour:\n"
        "      - blue\n",
        5, "colour", ['unknown key "colour"', "transport-tls", "listen",
               "advertise"], False),
    "unknown key in plugins.transport-tls (flow)": (
        "plugins:\n"
        "  transport-tls: { listen: \"127.0.0.1:0\", colour: blue }\n",
        2, "colour", ['unknown key "colour"', "transport-tls"], False),
    "bad listen in plugins.transport-tls": (
        "plugins:\n"
        "  transport-tls:\n"
        "    listen: \"localhost\"\n",
        3, '"localhost"', ["listen", "localhost"], False),
    # forwards: and the SOCKS front (issue 12).
    "unknown key in a forward": (
        "forwards:\n"
        "  - { listen: \"127.0.0.1:2222\", to: \"-b1aa4003e8bf17d4403bebd468cf53a3b575366a\", port: 22 }\n",
        2, "port", ['unknown key "port" in forward 1', "listen, to, title"],
        True),
    "forward without to": (
        "forwards:\n"
        "  - listen: \"127.0.0.1:2222\"\n",
        2, "listen", ["forward 1 has no to"], True),
    "forward to something that is not a service name": (
        "forwards:\n"
        "  - { listen: \"127.0.0.1:2222\", to: \"example.com:22\" }\n",
        2, '"example', ["not a Hardline service name"], True),
    "forward listening on a host name": (
        "forwards:\n"
        "  - { listen: \"localhost:2222\", to: \"-b1aa4003e8bf17d4403bebd468cf53a3b575366a\" }\n",
        2, '"localhost', ["an IP address and a port"], True),
    "two forwards on one port": (
        "forwards:\n"
        "  - { listen: \"127.0.0.1:2222\", to: \"-b1aa4003e8bf17d4403bebd468cf53a3b575366a\" }\n"
        "  - { listen: \"127.0.0.1:2222\", to: \"pw-b1aa4003e8bf17d4403bebd468cf53a3b575366a\" }\n",
        3, '"127', ["forward 2", "another forward's listen address"], True),
    "a forward on the proxy's port": (
        "proxy: { listen: \"127.0.0.1:7009\" }\n"
        "forwards:\n"
        "  - { listen: \"127.0.0.1:7009\", to: \"-b1aa4003e8bf17d4403bebd468cf53a3b575366a\" }\n",
        3, '"127', ["the proxy's listen address"], True),
    "forwards as a map": (
        "forwards:\n"
        "  ssh: { listen: \"127.0.0.1:2222\" }\n",
        2, "ssh", ['"forwards" must be a list', "not a map"], True),
    "proxy socks not a boolean": (
        "proxy: { socks: maybe }\n",
        1, "maybe", ["proxy socks must be true or false"], True),
    "proxy socks with the proxy off": (
        "proxy: { socks: true, listen: \"off\" }\n",
        1, '"off', ["socks_listen"], True),
}


def write(name, text):
    path = os.path.join(t.tmp, re.sub(r"[^a-z0-9]+", "-", name.lower()) +
                        ".yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def hl(*args, cwd=None, timeout=None):
    return hltest.run([t.hlcore] + list(args), cwd=cwd or t.tmp,
                      timeout=timeout or t.slow(20))


def case_bad(name, text, line, needle, words, run_too):
    path = write(name, text)
    col = text.split("\n")[line - 1].index(needle) + 1
    where = "%s:%d:%d: " % (path, line, col)
    modes = [("check",), ()] if run_too else [("check",)]
    for mode in modes:
        what = "hlcore -c <%s> %s" % (name, " ".join(mode) or "(run)")
        state = os.path.join(t.tmp, "state")
        default_state = os.path.join(t.tmp, "hardline-state")
        rc, out, err = hl("-c", path, *mode)
        check(rc == 2, what, "exit status 2", "exit %s; stderr: %s" %
              (rc, err))
        lines = [ln for ln in err.splitlines() if ln.startswith(path + ":")
                 and re.match(r"\d+:\d+: ", ln[len(path) + 1:])]
        check(len(lines) >= 1 and lines[0].startswith(where), what,
              "a first error line starting %r" % where, err)
        for w in words:
            check_in(w, lines[0], "%s: the message" % what)
        if not mode:
            check(not os.path.exists(state) and
                  not os.path.exists(default_state), what,
                  "nothing started (no state_dir created)",
                  "%s exists" % state)


def case_several_errors():
    """several errors are all reported"""
    path = write("several", "colour: blue\n"
                 "log: { level: loud }\n"
                 "services:\n"
                 "  wiki: { title: x }\n")
    rc, out, err = hl("-c", path, "check")
    check_eq(rc, 2, "exit status of a config with 3 errors")
    got = re.findall(r"^%s:(\d+:\d+): " % re.escape(path), err, re.M)
    check_eq(got, ["1:1", "2:15", "4:3"], "the places of all 3 errors, in "
             "the file's order")
    check_in("3 errors", err, "the summary line")


def case_good_check():
    """check on a good config: exit 0"""
    path = write("good", "state_dir: ./state\n"
                 "log: { level: warn }\n"
                 "proxy: { listen: \"127.0.0.1:7009\" }\n"
                 "plugins:\n"
                 "  transport-tls: { priority: 10, listen: \"[::]:7008\","
                 " advertise: [\"198.51.100.7:7008\"] }\n"
                 "services:\n"
                 "  wiki:\n"
                 "    target: \"127.0.0.1:8080\"\n"
                 "    title: \"Home wiki\"\n"
                 "    password: auto\n"
                 "  nas: { target: \"127.0.0.1:5000\", password: none }\n"
                 "  fixed: { target: \"localhost:80\", password: abc234 }\n"
                 "peers:\n"
                 "  B1AA4003E8BF17D4403BEBD468CF53A3B575366A: "
                 "[\"198.51.100.7:7008\", \"[200:1::2]:7008\"]\n")
    rc, out, err = hl("-c", path, "check")
    check(rc == 0, "check of a good config", "exit 0",
          "exit %s: %s%s" % (rc, out, err))
    check_in("OK", out, "check's output")
    check(not os.path.exists(os.path.join(t.tmp, "state")),
          "check of a good config", "no state_dir created (check changes "
          "nothing)", "it was created")


def case_short_password_warning():
    """check warns of a fixed password shorter than 8 characters"""
    text = ("state_dir: ./state\n"
            "services:\n"
            "  wiki:\n"
            "    target: \"127.0.0.1:8080\"\n"
            "    password: abc\n"
            "  long: { target: \"127.0.0.1:8081\", password: abcdefgh }\n"
            "  nas: { target: \"127.0.0.1:8082\", password: none }\n")
    path = write("short-password", text)
    rc, out, err = hl("-c", path, "check")
    check(rc == 0, "check of a config with a 3-character password",
          "exit 0 (a warning, not an error)", "exit %s: %s%s" %
          (rc, out, err))
    where = "%s:5:15: warning: " % path
    lines = [ln for ln in err.splitlines() if "warning: password" in ln]
    check(len(lines) == 1 and lines[0].startswith(where), "check's stderr",
          "one warning starting %r (the password's place)" % where, err)
    for w in ("password of service wiki is 3 characters",
              "anyone may guess it", "8 or more", "`auto`"):
        check_in(w, lines[0], "the warning")
    check("abc" not in lines[0][len(where):], "the warning",
          "not the password itself", lines[0])


def case_example_config():
    # The shipped example must pass check too (plugins from the build tree).
    """check on etc/hardline.yaml: exit 0"""
    path = os.path.join(t.source_dir, "etc", "hardline.yaml")
    if not os.path.exists(path):
        return
    rc, out, err = hl("-c", path, "check")
    check(rc == 0, "check of etc/hardline.yaml", "exit 0",
          "exit %s: %s%s" % (rc, out, err))


def case_command_line():
    """command line: --help, --version, no args, errors"""
    rc, out, err = hl("--help")
    check(rc == 0 and "usage" in out and "--plugin-info" in out, "--help",
          "exit 0 and the usage on stdout", "exit %s: %s%s" % (rc, out, err))
    # After -c FILE: the commands its plugins offer too (transport-udp:
    # nat, punch).
    udp = write("help-udp.yaml", "plugins:\n  transport-udp: "
                "{ hubs: [\"127.0.0.1:7777\"] }\n")
    rc, out, err = hl("-c", udp, "--help")
    check(rc == 0 and "usage" in out and
          re.search(r"hlcore -c FILE nat .*\(transport-udp\)", out) and
          re.search(r"hlcore -c FILE punch LABEL .*\(transport-udp\)", out),
          "-c FILE --help", "exit 0, the usage and transport-udp's nat and "
          "punch", "exit %s: %s%s" % (rc, out, err))
    rc, out, err = hl("--version")
    check(rc == 0 and re.match(r"hlcore \d+\.\d+", out) and "ABI" in out,
          "--version", "exit 0 and 'hlcore X.Y ... ABI'", "exit %s: %s%s" %
          (rc, out, err))
    rc, out, err = hl()
    check(rc == 2 and "usage" in err, "no arguments",
          "exit 2 and the usage on stderr", "exit %s: %s%s" % (rc, out, err))
    rc, out, err = hl("-c")
    check(rc == 2, "-c without a file", "exit 2", "exit %s: %s" % (rc, err))
    missing = os.path.join(t.tmp, "no-such.yaml")
    rc, out, err = hl("-c", missing, "check")
    check(rc == 2 and missing in err and "No such file" in err,
          "a config that does not exist", "exit 2 naming it and why",
          "exit %s: %s" % (rc, err))
    good = write("cmdline", "state_dir: ./state\n")
    rc, out, err = hl("-c", good, "frobnicate")
    check(rc == 2 and "usage" in err, "an unknown command",
          "exit 2 and the usage", "exit %s: %s" % (rc, err))
    rc, out, err = hl("--no-such-option")
    check_eq(rc, 2, "exit status for an unknown option")


for name, (text, line, needle, words, run_too) in BAD.items():
    t.case("bad config: %s (line %d)" % (name, line), case_bad, name,
           text, line, needle, words, run_too)
t.cases(
    case_several_errors, case_good_check, case_example_config,
    case_short_password_warning, case_command_line)
t.finish()
