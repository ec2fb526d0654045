# Every .c here is part of libstore.a.
store_SRCS := $(wildcard store/*.c)
