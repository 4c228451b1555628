/*
 * error.c - error strings, generated from SHK_ERRNO_MAP (static, const, no
 * formatting buffer, so thread-safe).
 */
#include "shmkit.h"

int
shk_version(void)
{
	return SHK_VERSION_MAJOR * 10000 + SHK_VERSION_MINOR * 100 +
	       SHK_VERSION_PATCH;
}

const char *
shk_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
#define SHK__ERR_STR(name, value, msg)                                         \
	case value:                                                            \
		return msg;
		SHK_ERRNO_MAP(SHK__ERR_STR)
#undef SHK__ERR_STR
	default:
		return "unknown error";
	}
}

const char *
shk_errname(int code)
{
	switch (code) {
	case 0:
		return "SHK_OK";
#define SHK__ERR_NAME(name, value, msg)                                        \
	case value:                                                            \
		return "SHK_" #name;
		SHK_ERRNO_MAP(SHK__ERR_NAME)
#undef SHK__ERR_NAME
	default:
		return "SHK_UNKNOWN";
	}
}
