#ifndef JAMZ_CALSA_SHIM_H
#define JAMZ_CALSA_SHIM_H
/* The ALSA library, plus the few things Swift cannot import from it:
   - snd_pcm_*_alloca are macros around alloca(): replaced by malloc'd objects
     (the *_malloc/_free functions) which callers free themselves;
   - snd_lib_error_set_handler takes a variadic callback: a C trampoline
     formats the message and hands a plain string to a Swift callback. */
#include <alsa/asoundlib.h>
#include <stdarg.h>
#include <stdio.h>

typedef void (*jamz_alsa_error_sink)(const char *message);
static jamz_alsa_error_sink jamz_alsa_sink_fn = 0;

static void jamz_alsa_trampoline(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    (void)n; (void)file; (void)line;
    if (jamz_alsa_sink_fn) {
        char out[640];
        snprintf(out, sizeof out, "%s: %s%s%s", function ? function : "alsa", buf,
                 err ? ": " : "", err ? snd_strerror(err) : "");
        jamz_alsa_sink_fn(out);
    }
}

/** Routes ALSA's library error messages to `sink` (NULL silences them). */
static inline void jamz_alsa_set_error_sink(jamz_alsa_error_sink sink) {
    jamz_alsa_sink_fn = sink;
    snd_lib_error_set_handler(sink ? (snd_lib_error_handler_t)jamz_alsa_trampoline : 0);
}

/** snd_pcm_status timestamp (htstamp) in nanoseconds and delay in frames, in one call. */
static inline int jamz_alsa_status(snd_pcm_t *pcm, long long *htstamp_ns, long *delay, int *state, long *avail) {
    snd_pcm_status_t *st = 0;
    int err = snd_pcm_status_malloc(&st);
    if (err < 0) return err;
    err = snd_pcm_status(pcm, st);
    if (err >= 0) {
        snd_htimestamp_t ts;
        snd_pcm_status_get_htstamp(st, &ts);
        *htstamp_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        *delay = (long)snd_pcm_status_get_delay(st);
        *state = (int)snd_pcm_status_get_state(st);
        *avail = (long)snd_pcm_status_get_avail(st);
    }
    snd_pcm_status_free(st);
    return err;
}
#endif
