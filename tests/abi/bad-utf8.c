/*
 * bad-utf8: a fixture that hands the core text that is not UTF-8, as a
 * LAN announce may: a service seen with such a title, another whose long
 * title the core cuts in the middle of a character, and a log line.
 */
#include <string.h>

#include "fixture.h"

static int
bad_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	char longer[256];

	(void)conf;
	*state = NULL;
	svc->service_seen(self, "caf\xe9 \xff\xfe bad-title",
	                  "-0000000000000000000000000000000000000001",
	                  "192.0.2.1:7008");
	/* 2-byte characters from an odd offset: the core's 128-byte
	 * buffer ends inside one. */
	longer[0] = 'x';
	for (size_t i = 1; i + 2 < sizeof longer; i += 2)
		memcpy(longer + i, "\xc3\xa9", 2);
	longer[sizeof longer - 1] = '\0';
	svc->service_seen(self, longer + 1,
	                  "-0000000000000000000000000000000000000002",
	                  "192.0.2.2:7008");
	svc->log(self, HL_LOG_WARN, "bad-utf8 line: caf\xe9 \xc3");
	return 0;
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "bad-utf8", .version = "1",
          .description = "hands the core text that is not UTF-8",
          .init = bad_init, .fini = fixture_fini);
