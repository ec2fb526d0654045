/*
 * fuzz_common.h — shared by the libFuzzer harnesses in tests/fuzz/.
 * A harness aborts (so libFuzzer records a crash and the input) when an
 * invariant of the code under test is broken, not only on memory errors.
 */
#ifndef HERMES_FUZZ_COMMON_H
#define HERMES_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", \
				__FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* The input as a C string (stops at the first NUL). */
static inline char *fz_cstr(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

/* Human text meant for a log or a terminal: no control byte but '\n'. */
static inline int fz_text_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
