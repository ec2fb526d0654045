# fs/: the FUSE overlay (libfs.a) plus the two programs. main_*.c files are
# program entry points; every other .c here is part of libfs.a.
fs_SRCS := $(filter-out fs/main_%.c,$(wildcard fs/*.c))
hermesfs_MAIN := fs/main_hermesfs.c
hermes-fsctl_MAIN := fs/main_fsctl.c
PROGRAMS += $(if $(wildcard $(hermesfs_MAIN)),hermesfs) \
            $(if $(wildcard $(hermes-fsctl_MAIN)),hermes-fsctl)
