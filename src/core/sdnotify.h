/*
 * sdnotify.h: tells systemd how the service is doing (the sd_notify(3) protocol), so a unit
 * with Type=notify is "started" only once hookd listens, and "stopping" as soon as it drains.
 * The protocol is one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace); systemd documents it as
 * stable and meant to be reimplemented, which hookd does here rather than link libsystemd.
 * Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
 */
#ifndef HK_SDNOTIFY_H
#define HK_SDNOTIFY_H

/* Sends state (e.g. "READY=1", "STOPPING=1") to $NOTIFY_SOCKET. Returns 1 sent, 0 when there
 * is no NOTIFY_SOCKET, a negative errno when the socket is invalid or the send failed (the
 * caller may log it; hookd carries on either way). Never blocks. */
int hk_sd_notify(const char *state);

#endif
