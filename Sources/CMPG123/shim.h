#ifndef JAMZ_CMPG123_SHIM_H
#define JAMZ_CMPG123_SHIM_H
/* mpg123.h lives in the multiarch include folder (differs per architecture):
   include it by name and let pkg-config supply the path. */
#include <mpg123.h>
#endif
