// Package sdnotify tells systemd how reconf is doing (sd_notify: READY, RELOADING, STOPPING,
// WATCHDOG, STATUS) when it runs under a Type=notify unit. Without $NOTIFY_SOCKET every call is
// a no-op, so the same binary runs unchanged outside systemd.
package sdnotify
