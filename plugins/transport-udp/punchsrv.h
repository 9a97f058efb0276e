/*
 * punchsrv.h: the serving side of `hlcore punch` in transport-udp
 * (docs/protocol.md, "Punch control stream"). A QUIC connection with
 * ALPN "hardline-punch" (SNI = keyhash, the service's certificate, as
 * any) has its streams handed here instead of to the core: each is one
 * client's control stream.
 *
 *  - HELLO within 10 s (one line, at most 512 bytes), else closed;
 *  - the password compared in constant time with the service's; a wrong
 *    one is answered NO password after 1 s (guessing is slow: at most 4
 *    streams at once per client address, 16 in all);
 *  - the service's `punch:` (services: NAME: punch:) absent: NO
 *    forbidden; more than 16 of its commands still running: NO busy;
 *  - else OK, and a punch session (punchsess.c); once a path is open
 *    the service's command runs (/bin/sh -c, in a process group of its
 *    own, stdin /dev/null, the socket as fd 3, HL_PUNCH_* in its
 *    environment). Its exit is logged; hlcore stopping sends SIGTERM to
 *    the process groups of those still running.
 *
 * Loop thread only.
 */
#ifndef HL_PUNCHSRV_H
#define HL_PUNCHSRV_H

struct bufferevent;
struct hl_services;
struct hl_plugin;
struct hl_conf;
struct punchsrv;

/* conf: transport-udp's settings (its hubs: are asked for STUN). NULL
 * when out of memory. */
struct punchsrv *punchsrv_new(const struct hl_services *svc,
                              struct hl_plugin *self,
                              const struct hl_conf *conf);

/* A stream of a hardline-punch connection for the service keyhash, from
 * peer ("ip:port"): punchsrv owns bev (one end of a bufferevent pair,
 * per plugin.h's stream contract) from this call on. */
void punchsrv_stream(struct punchsrv *ps, struct bufferevent *bev,
                     const char *keyhash, const char *peer);

/* hlcore is stopping: sessions dropped, commands still running get
 * SIGTERM. */
void punchsrv_free(struct punchsrv *ps);

#endif /* HL_PUNCHSRV_H */
