/* Everything is static inline in include/CLinuxInput.h; a C target needs one source file. */
#include "CLinuxInput.h"
