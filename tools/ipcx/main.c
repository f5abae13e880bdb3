// SPDX-License-Identifier: MIT
/*
 * ipcx - command-line tool: what this machine offers, and (as the library
 * grows) inspection of live ipcx objects.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ipcx.h>

static int cmd_features(int argc, char **argv)
{
	uint64_t f = ipcx_features();
	int i;

	(void)argc;
	(void)argv;
	for (i = 0; i < IPCX_FEAT_COUNT; i++)
		printf("%-16s %s\n", ipcx_feature_name(1ull << i),
		       (f & (1ull << i)) ? "yes" : "no");
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("ipcx %s\n", ipcx_version());
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "features", cmd_features, "list kernel and libc features ipcx can use" },
	{ "version", cmd_version, "print the library version" },
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: ipcx COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1) ? 1 : 0;
	fprintf(stderr, "ipcx: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
