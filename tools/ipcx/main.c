// SPDX-License-Identifier: MIT
/*
 * ipcx - command-line tool: what this machine offers, and (as the library
 * grows) inspection of live ipcx objects.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ipcx ls [DIR]: the ipcx objects in the shm directory (or DIR). */
static int cmd_ls(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ipcx_shm_dir();
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *e;
	DIR *d;
	int dfd;

	if (argc > 2) {
		fprintf(stderr, "usage: ipcx ls [DIR]\n");
		return -EINVAL;
	}
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "ipcx ls: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	dfd = dirfd(d);
	while ((e = readdir(d))) {
		if (ipcx_named_kind(e->d_name, NULL) < 0)
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	printf("%-10s %12s %5s  %s\n", "KIND", "SIZE", "MODE", "NAME");
	for (i = 0; i < n; i++) {
		const char *name;
		int kind = ipcx_named_kind(names[i], &name);
		struct stat st;

		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			printf("%-10s %12lld %5o  %s\n", ipcx_kind_name(kind),
			       (long long)st.st_size, (unsigned int)(st.st_mode & 07777), name);
		free(names[i]);
	}
	free(names);
	closedir(d);
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
	{ "ls", cmd_ls, "list ipcx objects in the shm directory (or DIR): kind, size, mode" },
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
