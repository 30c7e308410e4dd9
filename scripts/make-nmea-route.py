#!/usr/bin/env python3
"""make-nmea-route.py OUTDIR — deterministic, seeded NMEA 0183 logs for the GPS tests.

Writes (1 Hz, GGA + GSA + RMC per epoch, talker GP):
  highway.nmea / highway.truth.csv   15 min: town start, highway, a tunnel (no fix, 70 s),
                                     a 2D-only stretch, a stop (60 s), away again; plus
                                     malformed input: bad checksums, garbage lines, and
                                     sentences with valid checksums but impossible values
                                     (latitude 95°, longitude 200°, "nan" fields, 950 kn),
                                     and time glitches (an epoch 100 s in the past, one 2 h ahead).
  convoy-car1.nmea, convoy-car2.nmea, convoy-car3.nmea (+ .truth.csv each)
                                     12 min of one road for a 3-car convoy: car 2 follows
                                     car 1 about 300 m behind, car 3 stops at a rest area for
                                     4 min and ends about 5 km behind.

The truth CSV has one row per epoch: t (s from start), utc (ISO), kind, lat, lon (as written,
to the NMEA resolution), alt, speed_mps (as written), track_deg, mode (1 none, 2, 3).
kind: ok | nofix | 2d | bad-checksum (the epoch's RMC is replaced by a corrupted one: gpsd must
drop it), bad-lat / bad-lon / bad-nan / bad-speed (valid checksum, impossible value: the client
must reject the epoch), bad-time-back / bad-time-jump (the epoch is stamped 100 s in the past or
2 h in the future: the client must reject it). Garbage lines are not epochs (they are counted in the header comment).
Same seed, same bytes.
"""
import csv, datetime, math, os, random, sys

EARTH_R = 6371008.8
START = datetime.datetime(2026, 5, 14, 8, 0, 0, tzinfo=datetime.timezone.utc)
ORIGIN = (45.7578, 4.8320)   # Lyon, heading south along the Rhône valley


def checksum(body):
    c = 0
    for ch in body.encode('ascii'):
        c ^= ch
    return '%02X' % c


def sentence(body, corrupt=False):
    cs = checksum(body)
    if corrupt:
        cs = '%02X' % ((int(cs, 16) + 0x11) & 0xFF)
    return '$%s*%s\r\n' % (body, cs)


def nmea_lat(lat):
    h = 'N' if lat >= 0 else 'S'
    a = abs(lat); d = int(a); m = (a - d) * 60
    return '%02d%08.5f' % (d, m), h


def nmea_lon(lon):
    h = 'E' if lon >= 0 else 'W'
    a = abs(lon); d = int(a); m = (a - d) * 60
    return '%03d%08.5f' % (d, m), h


def parse_back(s, hemi, deg_digits):
    v = int(s[:deg_digits]) + float(s[deg_digits:]) / 60
    return -v if hemi in 'SW' else v


class Road:
    """A polyline sampled every metre from a seeded curvature profile."""
    def __init__(self, seed, length_m, heading0=170.0):
        rng = random.Random(seed)
        self.pts = [(0.0, 0.0)]
        h = math.radians(heading0)
        curv, left = 0.0, 0
        x = y = 0.0
        for _ in range(int(length_m)):
            if left <= 0:
                curv = rng.uniform(-1, 1) / rng.choice([800, 1500, 3000, 1e9])
                left = rng.randint(300, 1500)
            left -= 1
            h += curv
            x += math.sin(h); y += math.cos(h)
            self.pts.append((x, y))

    def at(self, s):
        s = max(0.0, min(s, len(self.pts) - 2))
        i = int(s); f = s - i
        (x0, y0), (x1, y1) = self.pts[i], self.pts[i + 1]
        x, y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        track = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360
        lat = ORIGIN[0] + math.degrees(y / EARTH_R)
        lon = ORIGIN[1] + math.degrees(x / (EARTH_R * math.cos(math.radians(ORIGIN[0]))))
        return lat, lon, track


def speed_profile(segments):
    """[(duration_s, target_mps)] → per-second speeds with smooth ramps (≤ 2.5 m/s²)."""
    v, out = 0.0, []
    for dur, target in segments:
        for _ in range(dur):
            dv = max(-2.5, min(2.5, target - v))
            v += dv
            out.append(v)
    return out


def write_log(name, outdir, road, speeds, modes, bad, garbage_at, rng, s0=0.0):
    lines, rows = [], []
    s = s0
    for t, v in enumerate(speeds):
        s += v
        lat, lon, track = road.at(s)
        alt = 170.0 + 30 * math.sin(s / 4000.0)
        now = START + datetime.timedelta(seconds=t)
        # A receiver glitch: this epoch stamped 100 s in the past, or 2 h in the future.
        shift = {'bad-time-back': -100, 'bad-time-jump': 7200}.get(bad.get(t), 0)
        stamped = now + datetime.timedelta(seconds=shift)
        hms = stamped.strftime('%H%M%S') + '.00'
        dmy = stamped.strftime('%d%m%y')
        mode = modes[t]
        kind = bad.get(t, {3: 'ok', 2: '2d', 1: 'nofix'}[mode])
        la, lh = nmea_lat(lat); lo, loh = nmea_lon(lon)
        kn = '%.2f' % (v / 0.514444)
        trk = '%.1f' % track if v > 0.5 else ''
        sats = 9 if mode == 3 else (4 if mode == 2 else 0)
        hdop = '%.1f' % (0.9 + rng.random() * 0.3) if mode > 1 else '99.9'
        if mode == 1:
            gga = 'GPGGA,%s,,,,,0,00,99.9,,,,,,' % hms
            gsa = 'GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9'
            rmc = 'GPRMC,%s,V,,,,,,,%s,,,N' % (hms, dmy)
        else:
            altf = '%.1f' % alt if mode == 3 else ''
            gga = 'GPGGA,%s,%s,%s,%s,%s,1,%02d,%s,%s,M,47.3,M,,' % (hms, la, lh, lo, loh, sats, hdop, altf)
            prns = ','.join(['%02d' % p for p in [2, 5, 7, 9, 13, 15, 18, 20, 30][:sats]] + [''] * (12 - sats))
            gsa = 'GPGSA,A,%d,%s,1.8,%s,2.1' % (mode, prns, hdop)
            rmc = 'GPRMC,%s,A,%s,%s,%s,%s,%s,%s,%s,,,A' % (hms, la, lh, lo, loh, kn, trk, dmy)
        corrupt = False
        if kind == 'bad-checksum':
            # A corrupted copy 3 km away: gpsd must drop it on the checksum; the epoch then has
            # only GGA+GSA (position still right).
            bla, blh = nmea_lat(lat + 0.03)
            rmc = 'GPRMC,%s,A,%s,%s,%s,%s,%s,%s,%s,,,A' % (hms, bla, blh, lo, loh, kn, trk, dmy)
            corrupt = True
        elif kind == 'bad-lat':
            gga = 'GPGGA,%s,9530.00000,N,%s,%s,1,09,1.0,%.1f,M,47.3,M,,' % (hms, lo, loh, alt)
            rmc = 'GPRMC,%s,A,9530.00000,N,%s,%s,%s,%s,%s,,,A' % (hms, lo, loh, kn, trk, dmy)
        elif kind == 'bad-lon':
            gga = 'GPGGA,%s,%s,%s,20030.00000,E,1,09,1.0,%.1f,M,47.3,M,,' % (hms, la, lh, alt)
            rmc = 'GPRMC,%s,A,%s,%s,20030.00000,E,%s,%s,%s,,,A' % (hms, la, lh, kn, trk, dmy)
        elif kind == 'bad-nan':
            gga = 'GPGGA,%s,nan,N,nan,E,1,09,1.0,%.1f,M,47.3,M,,' % (hms, alt)
            rmc = 'GPRMC,%s,A,nan,N,nan,E,%s,%s,%s,,,A' % (hms, kn, trk, dmy)
        elif kind == 'bad-speed':
            rmc = 'GPRMC,%s,A,%s,%s,%s,%s,950.00,%s,%s,,,A' % (hms, la, lh, lo, loh, trk, dmy)
        lines += [sentence(gga), sentence(gsa), sentence(rmc, corrupt)]
        if t in garbage_at:
            junk = ''.join(rng.choice('ABCXYZ0123456789,.*$!') for _ in range(rng.randint(5, 60)))
            lines.append(junk + '\r\n')
            lines.append('$GPGGA,%s,4545.4,N,00449.9\r\n' % hms)   # truncated, no checksum
        # What was written, read back at NMEA resolution.
        wl = parse_back(la, lh, 2); wo = parse_back(lo, loh, 3)
        rows.append([t, now.strftime('%Y-%m-%dT%H:%M:%S.000Z'), kind, '%.7f' % wl, '%.7f' % wo,
                     ('%.1f' % alt) if mode == 3 else '', '%.4f' % (float(kn) * 0.514444),
                     trk, mode])
    with open(os.path.join(outdir, name + '.nmea'), 'w', newline='') as f:
        f.write('# %s: generated by scripts/make-nmea-route.py (seeded); %d epochs, %d garbage lines\n'
                % (name, len(speeds), 2 * len(garbage_at)))
        f.writelines(lines)
    with open(os.path.join(outdir, name + '.truth.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['t', 'utc', 'kind', 'lat', 'lon', 'alt', 'speed_mps', 'track_deg', 'mode'])
        w.writerows(rows)
    return s


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'Tests', 'Fixtures', 'nmea')
    os.makedirs(outdir, exist_ok=True)

    # Highway: 900 s.
    rng = random.Random(5)
    road = Road(seed=11, length_m=40000)
    speeds = speed_profile([(60, 14), (340, 32), (70, 30), (170, 33), (60, 0), (60, 0), (140, 25)])
    n = len(speeds)
    modes = [3] * n
    for t in range(400, 470): modes[t] = 1          # tunnel: no fix
    for t in range(560, 640): modes[t] = 2          # 2D only (few satellites, no altitude)
    bad = {150: 'bad-checksum', 151: 'bad-checksum', 222: 'bad-lat', 280: 'bad-lon',
           333: 'bad-nan', 360: 'bad-time-back', 380: 'bad-time-jump', 520: 'bad-speed', 850: 'bad-checksum'}
    garbage = {30, 200, 310, 480, 700}
    write_log('highway', outdir, road, speeds, modes, bad, garbage, rng)

    # Convoy: 720 s on one road, three cars.
    road = Road(seed=23, length_m=30000)
    base = speed_profile([(40, 25), (680, 30)])
    car3 = speed_profile([(40, 25), (200, 30), (15, 0), (240, 0), (225, 31)])
    for car, sp, lead in [(1, base, 600.0), (2, base, 300.0), (3, car3, 0.0)]:
        write_log('convoy-car%d' % car, outdir, road, sp, [3] * len(sp), {}, set(), random.Random(100 + car), s0=lead)


if __name__ == '__main__':
    main()
