/*
 * identities.c: this node's services, one identity each (certificate,
 * key, keyhash, password; identity.c loads or makes them), loaded at
 * start and looked up by keyhash when a tunnel arrives.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static struct hl__identity *ids;
static size_t nids;

int
hl__identities_load(const struct hl__config *cfg, size_t only)
{
	size_t first = only == (size_t)-1 ? 0 : only,
	       last = only == (size_t)-1 ? cfg->nservices : only + 1;

	hl__identities_free();
	ids = calloc(last > first ? last - first : 1, sizeof *ids);
	if (ids == NULL)
		return -1;
	for (size_t i = first; i < last; i++) {
		char err[512];
		if (hl__identity_load(cfg->state_dir, &cfg->services[i],
		                      &ids[nids], err, sizeof err) != 0) {
			hl__err("%s", err);
			return -1;
		}
		nids++;
	}
	return 0;
}

size_t
hl__identities_count(void)
{
	return nids;
}

struct hl__identity *
hl__identities_at(size_t i)
{
	return i < nids ? &ids[i] : NULL;
}

struct hl__identity *
hl__identities_find(const char *keyhash)
{
	char lower[HL_KEYHASH_LEN + 1];
	size_t i;

	for (i = 0; i < HL_KEYHASH_LEN && keyhash[i]; i++)
		lower[i] = (keyhash[i] >= 'A' && keyhash[i] <= 'F')
		               ? (char)(keyhash[i] - 'A' + 'a')
		               : keyhash[i];
	lower[i] = '\0';
	if (i != HL_KEYHASH_LEN || keyhash[i] != '\0')
		return NULL;
	for (i = 0; i < nids; i++)
		if (strcmp(ids[i].keyhash, lower) == 0)
			return &ids[i];
	return NULL;
}

void
hl__identities_free(void)
{
	for (size_t i = 0; i < nids; i++)
		hl__identity_clear(&ids[i]);
	free(ids);
	ids = NULL;
	nids = 0;
}
