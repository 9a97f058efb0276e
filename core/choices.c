/*
 * choices.c: what the admin chose in the panel, kept in
 * <state_dir>/plugins.state: lines "<name> on|off|- [priority]" ("-":
 * never turned on or off there). plugins.c reads them at start and
 * writes one when the admin changes a plugin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

size_t
hl__choices_read(const char *state_dir, struct hl__choice *out, size_t max)
{
	char path[4096], *buf, *line, *save = NULL;
	size_t n = 0;

	snprintf(path, sizeof path, "%s/plugins.state", state_dir);
	buf = hl__read_file(path, 65536, NULL);
	if (buf == NULL)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64], state[8];
		int prio = -1,
		    k = sscanf(line, "%63s %7s %d", name, state, &prio);
		if (k < 2)
			continue;
		snprintf(out[n].name, sizeof out[n].name, "%s", name);
		out[n].on = strcmp(state, "on") == 0    ? 1
		            : strcmp(state, "off") == 0 ? 0
		                                        : -1;
		out[n].priority =
		    k == 3 && prio >= 0 && prio <= 1000 ? prio : -1;
		n++;
	}
	free(buf);
	return n;
}

int
hl__choice_write(const char *state_dir, const char *name, int on, int priority)
{
	struct hl__choice ch[HL_CHOICES_MAX];
	size_t n = hl__choices_read(state_dir, ch, HL_CHOICES_MAX - 1), i,
	       len = 0;
	char path[4096], buf[HL_CHOICES_MAX * 96];

	for (i = 0; i < n; i++)
		if (strcmp(ch[i].name, name) == 0)
			break;
	if (i == n) {
		snprintf(ch[n].name, sizeof ch[n].name, "%s", name);
		ch[n].on = -1;
		ch[n].priority = -1;
		n++;
	}
	if (on >= 0)
		ch[i].on = on;
	if (priority >= 0)
		ch[i].priority = priority;
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %s",
		                        ch[i].name,
		                        ch[i].on < 0 ? "-"
		                        : ch[i].on   ? "on"
		                                     : "off");
		if (ch[i].priority >= 0)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			                        " %d", ch[i].priority);
		len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
	}
	snprintf(path, sizeof path, "%s/plugins.state", state_dir);
	return hl__write_file_atomic(path, buf, len, 0600);
}
