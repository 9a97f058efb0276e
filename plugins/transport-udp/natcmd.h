/* natcmd.h: `hlcore -c FILE nat`, transport-udp's command (natcmd.c). */
#ifndef HL_NATCMD_H
#define HL_NATCMD_H

struct hl_services;
struct hl_plugin;
struct hl_conf;

int udp_nat_command(const struct hl_services *svc, struct hl_plugin *self,
                    const struct hl_conf *conf, int argc, char *const *argv);

#endif /* HL_NATCMD_H */
