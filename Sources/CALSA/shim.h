#ifndef JAMZ_CALSA_SHIM_H
#define JAMZ_CALSA_SHIM_H
/* The ALSA library, plus the few things Swift cannot import from it:
   - snd_pcm_*_alloca are macros around alloca(): replaced by malloc'd objects
     (the *_malloc/_free functions) which callers free themselves. */
#include <alsa/asoundlib.h>

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
