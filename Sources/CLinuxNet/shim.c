/* Everything is in include/CLinuxNet.h; a C target needs one source file. */
#include "CLinuxNet.h"
