#ifndef JAMZ_CGPS_SHIM_H
#define JAMZ_CGPS_SHIM_H
/* libgps (gpsd's client library), Debian 12: gpsd 3.22, API major 11.
 *
 * Swift imports gps_open/gps_stream/gps_waiting/gps_read/gps_close directly. The shims below
 * exist only because:
 *  - struct gps_data_t is ~24 KB with anonymous unions; Swift would copy it on every access,
 *    so it lives on the heap (jamz_gps_new/jamz_gps_free) and one read's worth of fields is
 *    copied out flat by jamz_gps_extract;
 *  - the *_SET mask bits are 64-bit shift macros ((1llu<<32)) that Swift does not import;
 *  - WATCH_ENABLE|WATCH_JSON|WATCH_PPS is spelled once here. WATCH_PPS makes gpsd send TOFF
 *    (and PPS, when it has a pulse) reports to this client.
 */
#include <gps.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if GPSD_API_MAJOR_VERSION < 9
#error "libgps with GPSD_API_MAJOR_VERSION >= 9 is required (timespec_t times)"
#endif

static inline struct gps_data_t *jamz_gps_new(void) {
    return (struct gps_data_t *)calloc(1, sizeof(struct gps_data_t));
}
static inline void jamz_gps_free(struct gps_data_t *g) { free(g); }

static inline int jamz_gps_watch(struct gps_data_t *g) {
    return gps_stream(g, WATCH_ENABLE | WATCH_JSON | WATCH_PPS, NULL);
}

/* What one gps_read() brought, flat. Doubles are NaN when gpsd did not send the field. */
typedef struct {
    int has_mode, has_time, has_latlon, has_altitude, has_speed, has_track;
    int has_toff, has_pps, has_error, has_device;
    int mode;                 /* MODE_NOT_SEEN, MODE_NO_FIX, MODE_2D, MODE_3D */
    int64_t time_sec; int64_t time_nsec;
    double latitude, longitude, alt_hae, alt_msl, speed, track, climb;
    double eph, epv, eps, epx, epy;
    int satellites_used;
    int64_t toff_real_sec, toff_real_nsec, toff_clock_sec, toff_clock_nsec;
    int64_t pps_real_sec, pps_real_nsec, pps_clock_sec, pps_clock_nsec;
    long qerr_ps;
    char error[256];
} jamz_gps_report;

static inline void jamz_gps_extract(const struct gps_data_t *g, jamz_gps_report *r) {
    gps_mask_t s = g->set;
    memset(r, 0, sizeof(*r));
    r->has_mode = (s & MODE_SET) != 0;
    r->has_time = (s & TIME_SET) != 0;
    r->has_latlon = (s & LATLON_SET) != 0;
    r->has_altitude = (s & ALTITUDE_SET) != 0;
    r->has_speed = (s & SPEED_SET) != 0;
    r->has_track = (s & TRACK_SET) != 0;
    r->has_toff = (s & TOFF_SET) != 0;
    r->has_pps = (s & PPS_SET) != 0;
    r->has_error = (s & ERROR_SET) != 0;
    r->has_device = (s & (DEVICE_SET | DEVICELIST_SET)) != 0;
    r->mode = g->fix.mode;
    r->time_sec = (int64_t)g->fix.time.tv_sec; r->time_nsec = (int64_t)g->fix.time.tv_nsec;
    r->latitude = g->fix.latitude; r->longitude = g->fix.longitude;
    r->alt_hae = g->fix.altHAE; r->alt_msl = g->fix.altMSL;
    r->speed = g->fix.speed; r->track = g->fix.track; r->climb = g->fix.climb;
    r->eph = g->fix.eph; r->epv = g->fix.epv; r->eps = g->fix.eps;
    r->epx = g->fix.epx; r->epy = g->fix.epy;
    r->satellites_used = g->satellites_used;
    r->toff_real_sec = (int64_t)g->toff.real.tv_sec; r->toff_real_nsec = (int64_t)g->toff.real.tv_nsec;
    r->toff_clock_sec = (int64_t)g->toff.clock.tv_sec; r->toff_clock_nsec = (int64_t)g->toff.clock.tv_nsec;
    r->pps_real_sec = (int64_t)g->pps.real.tv_sec; r->pps_real_nsec = (int64_t)g->pps.real.tv_nsec;
    r->pps_clock_sec = (int64_t)g->pps.clock.tv_sec; r->pps_clock_nsec = (int64_t)g->pps.clock.tv_nsec;
    r->qerr_ps = g->qErr;
    if (r->has_error) {
        strncpy(r->error, g->error, sizeof(r->error) - 1);
    }
}
#endif
