#ifndef JAMZ_CLINUXINPUT_H
#define JAMZ_CLINUXINPUT_H
/* The Linux GPIO character device (uAPI v2) and evdev, plus what Swift cannot import from them:
   - ioctl request numbers are function-like macros (_IOWR, EVIOCGNAME(len), …): each becomes a
     prefixed function returning the number;
   - ioctl(2) is variadic: jamz_ioctl_ptr / jamz_ioctl_int call it with one typed argument;
   - struct input_event's time field differs by ABI (a struct timeval on 64-bit, __sec/__usec on
     32-bit with 64-bit time_t; 16 bytes on 32-bit ARM, 24 on 64-bit): it is encoded and decoded
     here through the kernel header's own input_event_sec/input_event_usec, never retyped in Swift.
   Plain integer #defines (EV_KEY, KEY_PLAYPAUSE, SW_DOCK, …) import into Swift as they are.
   Also the waiting side of the readers: <sys/eventfd.h> (not in Swift's Glibc module; the stop
   a blocked reader sees) and the calling thread's id (gettid is not declared without
   _GNU_SOURCE; syscall(2) is variadic). inotify comes with Glibc. */
#include <linux/gpio.h>
#include <linux/input.h>
#include <linux/input-event-codes.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static inline int jamz_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
static inline int jamz_ioctl_int(int fd, unsigned long request, int arg) { return ioctl(fd, request, arg); }
/** The calling thread's id (its /proc/self/task/TID). */
static inline int jamz_gettid(void) { return (int)syscall(SYS_gettid); }

/* ---- GPIO uAPI v2 ------------------------------------------------------------------------ */
static inline size_t jamz_gpio_v2_line_event_size(void) { return sizeof(struct gpio_v2_line_event); }
static inline uint32_t jamz_gpio_v2_line_event_rising(void) { return GPIO_V2_LINE_EVENT_RISING_EDGE; }
static inline uint32_t jamz_gpio_v2_line_event_falling(void) { return GPIO_V2_LINE_EVENT_FALLING_EDGE; }

/** Chip name ("gpiochip0"), label ("pinctrl-bcm2711") and line count. 0 or -1 (errno set). */
static inline int jamz_gpio_chip_info(int chipfd, char *name, size_t name_len, char *label, size_t label_len, uint32_t *lines) {
    struct gpiochip_info info;
    memset(&info, 0, sizeof info);
    if (ioctl(chipfd, GPIO_GET_CHIPINFO_IOCTL, &info) < 0) return -1;
    snprintf(name, name_len, "%s", info.name);
    snprintf(label, label_len, "%s", info.label);
    *lines = info.lines;
    return 0;
}

/** A line's name (from gpio-line-names) and flags. 0 or -1 (errno set). */
static inline int jamz_gpio_line_info(int chipfd, uint32_t offset, char *name, size_t name_len, uint64_t *flags) {
    struct gpio_v2_line_info info;
    memset(&info, 0, sizeof info);
    info.offset = offset;
    if (ioctl(chipfd, GPIO_V2_GET_LINEINFO_IOCTL, &info) < 0) return -1;
    snprintf(name, name_len, "%s", info.name);
    *flags = info.flags;
    return 0;
}

/** Requests one input line with edge detection on both edges, the kernel's debounce (0: none)
    and CLOCK_MONOTONIC event timestamps (the v2 default). Returns the line fd or -1 (errno set). */
static inline int jamz_gpio_request_input(int chipfd, uint32_t offset, const char *consumer, int active_low, int pull_up, uint32_t debounce_us) {
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req);
    req.offsets[0] = offset;
    req.num_lines = 1;
    snprintf(req.consumer, sizeof req.consumer, "%s", consumer);
    req.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING
        | (active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0) | (pull_up ? GPIO_V2_LINE_FLAG_BIAS_PULL_UP : 0);
    if (debounce_us > 0) {
        req.config.num_attrs = 1;
        req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
        req.config.attrs[0].attr.debounce_period_us = debounce_us;
        req.config.attrs[0].mask = 1;
    }
    if (ioctl(chipfd, GPIO_V2_GET_LINE_IOCTL, &req) < 0) return -1;
    return req.fd;
}

/** Asks the chip to report when line `offset` is requested, released or reconfigured by anyone
    (GPIO_V2_GET_LINEINFO_WATCH_IOCTL): struct gpio_v2_line_info_changed records then become
    readable on the chip fd. How a reader waits for a busy line to be let go. 0 or -1 (errno set). */
static inline int jamz_gpio_watch_line(int chipfd, uint32_t offset) {
    struct gpio_v2_line_info info;
    memset(&info, 0, sizeof info);
    info.offset = offset;
    return ioctl(chipfd, GPIO_V2_GET_LINEINFO_WATCH_IOCTL, &info);
}

/** Requests one output line driven to `value` (logical, after active_low). Line fd or -1. */
static inline int jamz_gpio_request_output(int chipfd, uint32_t offset, const char *consumer, int active_low, int value) {
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req);
    req.offsets[0] = offset;
    req.num_lines = 1;
    snprintf(req.consumer, sizeof req.consumer, "%s", consumer);
    req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT | (active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0);
    req.config.num_attrs = 1;
    req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    req.config.attrs[0].attr.values = value ? 1 : 0;
    req.config.attrs[0].mask = 1;
    if (ioctl(chipfd, GPIO_V2_GET_LINE_IOCTL, &req) < 0) return -1;
    return req.fd;
}

/** The logical value (0/1) of a requested single line, or -1 (errno set). */
static inline int jamz_gpio_get_value(int linefd) {
    struct gpio_v2_line_values v = { .bits = 0, .mask = 1 };
    if (ioctl(linefd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0) return -1;
    return (int)(v.bits & 1);
}

/** Drives a requested single output line to `value`. 0 or -1 (errno set). */
static inline int jamz_gpio_set_value(int linefd, int value) {
    struct gpio_v2_line_values v = { .bits = value ? 1 : 0, .mask = 1 };
    return ioctl(linefd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
}

/** Decodes one struct gpio_v2_line_event (jamz_gpio_v2_line_event_size() bytes at `buf`). */
static inline void jamz_gpio_event_decode(const void *buf, uint64_t *timestamp_ns, uint32_t *id, uint32_t *offset, uint32_t *seqno) {
    struct gpio_v2_line_event e;
    memcpy(&e, buf, sizeof e);
    *timestamp_ns = e.timestamp_ns; *id = e.id; *offset = e.offset; *seqno = e.seqno;
}

/** Lays out one struct gpio_v2_line_event as the kernel would (device doubles in tests, tools). */
static inline void jamz_gpio_event_encode(void *buf, uint64_t timestamp_ns, uint32_t id, uint32_t offset, uint32_t seqno) {
    struct gpio_v2_line_event e;
    memset(&e, 0, sizeof e);
    e.timestamp_ns = timestamp_ns; e.id = id; e.offset = offset; e.seqno = seqno; e.line_seqno = seqno;
    memcpy(buf, &e, sizeof e);
}

/* ---- evdev --------------------------------------------------------------------------------- */
static inline unsigned long jamz_eviocgname(unsigned int len) { return EVIOCGNAME(len); }
static inline unsigned long jamz_eviocgsw(unsigned int len) { return EVIOCGSW(len); }
static inline unsigned long jamz_eviocgkey(unsigned int len) { return EVIOCGKEY(len); }
static inline unsigned long jamz_eviocgrab(void) { return EVIOCGRAB; }

static inline size_t jamz_input_event_size(void) { return sizeof(struct input_event); }

/** Decodes one struct input_event (jamz_input_event_size() bytes at `buf`). */
static inline void jamz_input_event_decode(const void *buf, int64_t *sec, int64_t *usec, uint16_t *type, uint16_t *code, int32_t *value) {
    struct input_event e;
    memcpy(&e, buf, sizeof e);
    *sec = (int64_t)e.input_event_sec; *usec = (int64_t)e.input_event_usec;
    *type = e.type; *code = e.code; *value = e.value;
}

/** Lays out one struct input_event as the kernel would (device doubles in tests, tools). */
static inline void jamz_input_event_encode(void *buf, int64_t sec, int64_t usec, uint16_t type, uint16_t code, int32_t value) {
    struct input_event e;
    memset(&e, 0, sizeof e);
    e.input_event_sec = sec; e.input_event_usec = usec;
    e.type = type; e.code = code; e.value = value;
    memcpy(buf, &e, sizeof e);
}

/** Switches an event device's timestamps to CLOCK_MONOTONIC. 0 or -1 (errno set). */
static inline int jamz_evdev_use_monotonic(int fd) {
    int clk = CLOCK_MONOTONIC;
    return ioctl(fd, EVIOCSCLOCKID, &clk);
}

/** 1 if bit `n` is set in a bitmap filled by EVIOCGBIT/EVIOCGSW/EVIOCGKEY. */
static inline int jamz_test_bit(const uint8_t *bits, unsigned int n) { return (bits[n / 8] >> (n % 8)) & 1; }
#endif
