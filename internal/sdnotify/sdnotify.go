package sdnotify

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify messages. The zero value is not usable; call New.
type Notifier struct {
	enabled bool
	log     *slog.Logger
	send    func(state string) (bool, error)
}

// New returns a Notifier that talks to systemd when $NOTIFY_SOCKET is set and does nothing
// otherwise.
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{
		enabled: os.Getenv("NOTIFY_SOCKET") != "",
		log:     log,
		send:    func(s string) (bool, error) { return daemon.SdNotify(false, s) },
	}
}

// Enabled reports whether messages reach systemd.
func (n *Notifier) Enabled() bool { return n.enabled }

func (n *Notifier) notify(state string) {
	if !n.enabled {
		return
	}
	if _, err := n.send(state); err != nil {
		n.log.Debug("sd_notify failed", "state", state, "err", err)
	}
}

// Ready says that every resource has rendered once: systemd then considers the unit started.
func (n *Notifier) Ready() { n.notify(daemon.SdNotifyReady + "\nSTATUS=watching") }

// Reloading says that a SIGHUP reload has begun; Ready must follow when it ends. The
// monotonic timestamp lets Type=notify-reload units match the reload to the signal.
func (n *Notifier) Reloading() {
	usec := monotonicUsec()
	n.notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d\nSTATUS=reloading", daemon.SdNotifyReloading, usec))
}

// Stopping says that reconf is shutting down.
func (n *Notifier) Stopping() { n.notify(daemon.SdNotifyStopping + "\nSTATUS=stopping") }

// Watchdog pets systemd's watchdog (WatchdogSec= in the unit).
func (n *Notifier) Watchdog() { n.notify(daemon.SdNotifyWatchdog) }

// Status sets the free-form status line `systemctl status` shows.
func (n *Notifier) Status(s string) { n.notify("STATUS=" + s) }

// WatchdogInterval returns how often Watchdog should be called (half of WatchdogSec), or 0
// when systemd set no watchdog for this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1e3
}
