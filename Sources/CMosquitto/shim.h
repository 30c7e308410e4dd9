#ifndef JAMZ_CMOSQUITTO_SHIM_H
#define JAMZ_CMOSQUITTO_SHIM_H
/* Debian's libmosquitto-dev (MQTT 5 client, its own network thread). */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
