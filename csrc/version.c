/* version.c -- what the loaded library reports about itself (fo_abi_version, fo_version),
 * compiled from the same generated fastoptim_version.h that callers compile against. */
#include "fastoptim.h"

int fo_abi_version(void) { return FASTOPTIM_ABI_VERSION; }

const char *fo_version(void) { return FASTOPTIM_VERSION_STRING; }
