/* image/arm64/glibc-compat.c — what Debian sid's aarch64 Swift runtime (static libswiftCore.a,
 * Foundation, …; built against glibc 2.41+) calls that Debian 12's glibc 2.36 does not have.
 * Linked into jamzd/jamz by the cross build (the SDK's static-stdlib-args.lnk ends with
 * -ljamzglibccompat), so the binaries need only what bookworm's libc.so.6 exports.
 *
 * __isoc23_*: glibc 2.38's C23 names of strtol & co. (which also accept a "0b" prefix in base 0
 * or 2) and of the scanf family (which also read "%b"). The runtime reads numbers from
 * environment variables and /proc; the pre-C23 functions do for that. strlcpy/strlcat: glibc
 * 2.38, BSD semantics. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <wchar.h>

long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
long long __isoc23_strtoll(const char *s, char **e, int b) { return strtoll(s, e, b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
intmax_t __isoc23_strtoimax(const char *s, char **e, int b) { return strtoimax(s, e, b); }
uintmax_t __isoc23_strtoumax(const char *s, char **e, int b) { return strtoumax(s, e, b); }
long __isoc23_wcstol(const wchar_t *s, wchar_t **e, int b) { return wcstol(s, e, b); }
long long __isoc23_wcstoll(const wchar_t *s, wchar_t **e, int b) { return wcstoll(s, e, b); }
unsigned long __isoc23_wcstoul(const wchar_t *s, wchar_t **e, int b) { return wcstoul(s, e, b); }
unsigned long long __isoc23_wcstoull(const wchar_t *s, wchar_t **e, int b) { return wcstoull(s, e, b); }

int __isoc23_vsscanf(const char *s, const char *f, va_list ap) { return vsscanf(s, f, ap); }
int __isoc23_vfscanf(FILE *fp, const char *f, va_list ap) { return vfscanf(fp, f, ap); }
int __isoc23_vscanf(const char *f, va_list ap) { return vscanf(f, ap); }
int __isoc23_sscanf(const char *s, const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vsscanf(s, f, ap); va_end(ap); return r;
}
int __isoc23_fscanf(FILE *fp, const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vfscanf(fp, f, ap); va_end(ap); return r;
}
int __isoc23_scanf(const char *f, ...) {
  va_list ap; va_start(ap, f); int r = vscanf(f, ap); va_end(ap); return r;
}

size_t strlcpy(char *d, const char *s, size_t n) {
  size_t l = strlen(s);
  if (n) { size_t c = l < n - 1 ? l : n - 1; memcpy(d, s, c); d[c] = 0; }
  return l;
}
size_t strlcat(char *d, const char *s, size_t n) {
  size_t dl = strnlen(d, n);
  if (dl == n) return n + strlen(s);
  return dl + strlcpy(d + dl, s, n - dl);
}
