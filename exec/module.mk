# Every .c here is part of libexec.a.
exec_SRCS := $(wildcard exec/*.c)
