#!/usr/bin/env python3
"""The upnp plugin against a router that answers garbage.

    lan (10.2.0.2, hlcore server) --- rtr (10.2.0.1, a fake IGD)

The fake IGD (this same script, run with --fake-igd inside the router
namespace) answers SSDP searches and SOAP calls like a real one, but its
external address is whatever the file `extip` holds, garbage at first. The
server must log the problem once (not at every retry), add no WANHost,
keep serving, and, once the router says something sane, retry, recover
and add <ext-ip>:7008; at SIGTERM it deletes the mapping.
"""
import os
import re
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the fake IGD (runs in the router namespace) ----

def device_list(kind, service, service_id, url, scpd, inner=""):
    """A <deviceList> with one <device> of this kind, which has one service
    (at /ctl/url and /evt/url) and then the inner XML."""
    return ("<deviceList><device>\n"
            "<deviceType>urn:schemas-upnp-org:device:%s:1</deviceType>\n"
            "<serviceList><service>\n"
            "<serviceType>urn:schemas-upnp-org:service:%s:1</serviceType>\n"
            "<serviceId>urn:upnp-org:serviceId:%s</serviceId>\n"
            "<controlURL>/ctl/%s</controlURL>"
            "<eventSubURL>/evt/%s</eventSubURL>\n"
            "<SCPDURL>/%s</SCPDURL>\n"
            "</service></serviceList>\n%s"
            "</device></deviceList>\n" %
            (kind, service, service_id, url, url, scpd, inner))


DESC = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>garbage router</friendlyName>
<UDN>uuid:11111111-2222-3333-4444-555555555555</UDN>
""" + device_list(
    "WANDevice", "WANCommonInterfaceConfig", "WANCommonIFC1", "CmnIfCfg",
    "WANCfg.xml", device_list("WANConnectionDevice", "WANIPConnection",
                              "WANIPConn1", "IPConn", "WANIPCn.xml")) + \
    "</device>\n</root>\n"


def soap(action, body):
    return ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.'
            'xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.'
            'xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="urn:'
            'schemas-upnp-org:service:WANIPConnection:1">%s</u:%sResponse>'
            '</s:Body></s:Envelope>\r\n' % (action, body, action))


def fake_igd(addr, state_dir):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            pass

        def reply(self, body, ctype="text/xml"):
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(DESC)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(n)
            action = self.headers.get("SOAPAction", "").strip('"')
            action = action.split("#")[-1]
            print("SOAP %s" % action, flush=True)
            if action == "GetStatusInfo":
                body = ("<NewConnectionStatus>Connected</NewConnectionStatus>"
                        "<NewLastConnectionError>ERROR_NONE"
                        "</NewLastConnectionError><NewUptime>100</NewUptime>")
            elif action == "GetExternalIPAddress":
                with open(os.path.join(state_dir, "extip")) as f:
                    body = ("<NewExternalIPAddress>%s</NewExternalIPAddress>" %
                            f.read().strip())
            else:
                body = ""
            self.reply(soap(action, body))

    httpd = HTTPServer((addr, 5001), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ssdp.bind(("0.0.0.0", 1900))
    ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    struct.pack("4s4s", socket.inet_aton("239.255.255.250"),
                                socket.inet_aton(addr)))
    print("fake IGD ready", flush=True)
    deadline = time.monotonic() + 300
    ssdp.settimeout(1)
    while time.monotonic() < deadline:
        try:
            data, peer = ssdp.recvfrom(2048)
        except socket.timeout:
            continue
        m = re.search(rb"(?im)^st:\s*(\S+)", data)
        if not data.startswith(b"M-SEARCH") or m is None:
            continue
        st = m.group(1).decode()
        ssdp.sendto(("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
                     "ST: %s\r\nUSN: uuid:11111111-2222-3333-4444-"
                     "555555555555::%s\r\nEXT:\r\nSERVER: fake/1 UPnP/1.1 "
                     "fake/1\r\nLOCATION: http://%s:5001/rootDesc.xml\r\n\r\n"
                     % (st, st, addr)).encode(), peer)


if len(sys.argv) == 4 and sys.argv[1] == "--fake-igd":
    fake_igd(sys.argv[2], sys.argv[3])
    sys.exit(0)

# ---- the test ----

sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import netlab  # noqa: E402
from hltest import check  # noqa: E402

L = netlab.Lab("upnp_garbage", needs=["python3"])
RTR, LAN = "10.2.0.1", "10.2.0.2"
GARBAGE = "300.1.2.3 junk"
TOKEN = "lab-upnp-garbage-%d" % os.getpid()


def build():
    global rtr, lan, igd
    rtr = L.netns("rtr")
    lan = L.netns("lan")
    L.veth(rtr, "r-lan", lan, "l-r")
    L.sh(rtr, "ip addr add %s/24 dev r-lan; ip link set r-lan up" % RTR)
    L.sh(lan, """ip addr add %s/24 dev l-r; ip link set l-r up
        ip route add default via %s""" % (LAN, RTR))
    with open(os.path.join(L.tmp, "extip"), "w") as f:
        f.write(GARBAGE)
    igd = L.spawn(rtr, [sys.executable, os.path.abspath(__file__),
                        "--fake-igd", RTR, L.tmp], "fake-igd")
    L.wait_for(lambda: "fake IGD ready" in L.log_of("fake-igd"), 10,
               "the fake IGD")
    L.http_backend(lan, 8080, TOKEN)


def garbage_then_sane():
    server = L.node("server", ns=lan)
    server.configure({
        "log": {"level": "debug"},
        "proxy": {"listen": "127.0.0.1:7009"},
        "plugins": {"transport-tls": {"listen": "[::]:7008"},
                    "upnp": {"natpmp": False}},
        "services": {"web": {"target": "127.0.0.1:8080",
                             "password": "none"}},
    })
    pw, kh = server.url("web")
    server.launch()
    server.expect_log(r"warn .*the router's external address is not usable "
                    r"\(\"300\.1\.2\.3 junk\"\)", 10)
    # The daemon goes on: its own service still works through its proxy.
    code, body, _ = server.fetch("%s-%s.localhost:7009" % (pw, kh))
    check(code == 200 and TOKEN in body, "GET while the router talks "
          "garbage", "200 with the backend's token", (code, body))
    # Retried after 10 s: the same problem again, at debug level only.
    server.expect_log(r"debug .*still: the router's external address is not "
                    r"usable", 20)
    log = server.log()
    check(len(re.findall(r"warn .*not usable", log)) == 1 and
          "reachable at" not in log,
          "the server's log after a retry", "one warning and no WANHost",
          log)
    with open(os.path.join(L.tmp, "extip"), "w") as f:
        f.write("11.0.0.9")
    # The next retry is 20 s after the last (backoff doubles).
    server.expect_log(r"reachable at 11\.0\.0\.9:7008", 30)
    server.expect_log(r"info .*recovered from: the router's external address",
                    5)
    server.stop_ok()
    check("SOAP DeletePortMapping" in L.log_of("fake-igd"),
          "the fake IGD's calls after SIGTERM", "a DeletePortMapping",
          L.log_of("fake-igd"))


if L.case("the lab: a LAN host behind a fake IGD", build):
    L.case("upnp: garbage from the router is logged once, retried, and "
           "recovered from", garbage_then_sane)
L.finish()
