#ifndef JAMZ_CQRENCODE_SHIM_H
#define JAMZ_CQRENCODE_SHIM_H
/* Debian's libqrencode-dev: the phone page's join QR (JamzDaemon/PageQR.swift). */
#include <qrencode.h>
#endif
