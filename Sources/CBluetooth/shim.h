#ifndef JAMZ_CBLUETOOTH_SHIM_H
#define JAMZ_CBLUETOOTH_SHIM_H
/* BlueZ's libbluetooth-dev headers: the socket families, sockaddr_hci (the management
 * interface's control channel) and sockaddr_l2 (LE L2CAP connection-oriented channels), the
 * BT_* socket options. Only structs, constants and static inlines are used: jamzd does not
 * link libbluetooth. The management interface's own messages (lib/mgmt.h in BlueZ's source,
 * not shipped by Debian) are encoded in Swift (JamzNet/BLEManagement.swift). */
#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/l2cap.h>
#endif
