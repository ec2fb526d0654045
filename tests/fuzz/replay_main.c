/*
 * replay_main.c — main() for the fuzz harnesses without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named (every regular file of a
 * directory named, in name order). Built with the project's own compiler
 * and flags into $(BUILD)/fuzz-replay/, so `make check` replays the seed
 * corpus and past crashers with no clang and no extra compile of the
 * modules, under ASan+UBSan with `make SAN=1 check`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		fprintf(stderr, "%s: short read\n", path);
		free(buf);
		return -1;
	}
	fprintf(stderr, "running %s (%zu bytes)\n", path, got);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	long runs = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **ents = NULL;
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]) < 0;
			runs++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, by_name);
		for (int j = 0; j < n; j++) {
			char *p = NULL;

			if (ents[j]->d_name[0] != '.' &&
			    asprintf(&p, "%s/%s", argv[i], ents[j]->d_name) > 0 &&
			    stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				bad |= run_file(p) < 0;
				runs++;
			}
			free(p);
			free(ents[j]);
		}
		free(ents);
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			bad = 1;
		}
	}
	printf("replayed %ld inputs\n", runs);
	return bad;
}
