#!/usr/bin/env bash
# check-long: the crash-consistency loop with 50 kill -9 iterations.
CRASH_ITERS=${CRASH_ITERS:-50} exec bash "$(dirname "$0")/crash_flush.sh"
