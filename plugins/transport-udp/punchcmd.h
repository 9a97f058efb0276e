/*
 * punchcmd.h: `hlcore -c FILE punch LABEL -- CMD [ARGS...]`, transport-
 * udp's command (punchcmd.c): punch a UDP path to the node serving LABEL
 * and run CMD with it.
 */
#ifndef HL_PUNCHCMD_H
#define HL_PUNCHCMD_H

#include "hardline/plugin.h"

/* What transport-udp lends the command: a dial-only instance of itself
 * whose QUIC connections offer ALPN "hardline-punch" (no listener, no
 * registration), its dial (hub:// candidates) and the end of it. */
struct punch_udp_ops {
	int (*init)(const struct hl_services *svc, struct hl_plugin *self,
	            const struct hl_conf *conf, void **state);
	void (*fini)(void *state);
	struct hl_dial *(*dial)(void *state, const char *keyhash,
	                        const char *addr, hl_dial_cb cb, void *arg);
	void (*dial_cancel)(void *state, struct hl_dial *d);
};

int punch_command(const struct hl_services *svc, struct hl_plugin *self,
                  const struct hl_conf *conf, int argc, char *const *argv,
                  const struct punch_udp_ops *udp);

#endif /* HL_PUNCHCMD_H */
