# Every .c here is part of libsync.a.
sync_SRCS := $(wildcard sync/*.c)
