/*
 * fault_int.h — private to sync/: crash points for the crash-consistency
 * tests (tests/integration/crash_flush.sh).
 *
 * HERMES_CRASH_AT=<point>[:N] (read once, at the first crash point reached)
 * makes the process print one line to stderr,
 *     hermesfs: HERMES_CRASH_AT=<point>:<N>: killed at <point>
 * and raise(SIGKILL) the Nth time (default 1, counting from 1) it reaches
 * <point>. Unset (the normal case), a crash point costs one pthread_once.
 * The points:
 *   push-applied  the remote confirmed the apply of a non-empty push, the
 *                 ledger rows and cursor are written but their transaction
 *                 is not committed yet (sync/push.c commit())
 *   pull-apply    a pull just changed the host for one item (a file placed,
 *                 deleted or kept as a conflict copy); the items after it
 *                 and the ledger commit are still to come (sync/pull_apply.c)
 */
#ifndef HERMES_FAULT_INT_H
#define HERMES_FAULT_INT_H

/* Die here if HERMES_CRASH_AT names `point` and this is its Nth arrival. */
void sync_crash_point(const char *point);

/*
 * HERMES_PAUSE_AT=<point> with HERMES_PAUSE_FILE=<path>: the first time
 * <point> is reached, create <path> and wait (at most 60 s) until the test
 * removes it, so a test can change the host at an exact step. Points:
 *   pull-decided  a pull hashed the host version of an item and chose what
 *                 to do; the host is not changed yet (sync/pull.c)
 */
void sync_pause_point(const char *point);

#endif /* HERMES_FAULT_INT_H */
