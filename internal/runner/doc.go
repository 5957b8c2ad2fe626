// Package runner schedules reconf's resources.
//
// Modes. Onetime syncs every resource once, a few at a time, logs one line per resource and
// returns errors.Join of the failures (each naming its resource); it never retries, so a store
// that is down fails fast. Otherwise every resource gets a worker goroutine that syncs it at
// start, on every Interval tick (a safety net when Watch is on too) and, with Watch, when a
// prefix it reads changes.
//
// Stores. Config.Backend is the default store; Config.Stores are named ones (reconf.toml's
// [backends.NAME]), and each resource reads the store its Resource.Backend names ("": the
// default). Watches, polling, -onetime snapshots, backend metrics and /ready are per store;
// logs name the store unless it is the default one.
//
// Watches. The watch prefixes of a store are backends.Dedupe over the prefixes of every
// resource reading it; each gets ONE Watcher.Watch, shared by every resource reading under
// it. A store that is not a Watcher has one poller instead, which re-reads the union of its
// watched prefixes in one read every Config.Interval (DefaultPollInterval when 0), signals the
// prefixes whose data changed, and is announced once at start (`backend "secrets" (vault)
// cannot be watched: polling every 10m0s`). A signal marks only
// those resources dirty, through one-slot channels: bursts collapse, and a signal arriving
// while a resource renders queues once. Each resource then debounces with its Wait (each
// change snoozes by Min, never past the first change + Max; zero: at once) and re-reads only
// its own prefixes (resource.Sync). Change-triggered syncs are throttled while changes keep
// coming: a change after a quiet spell (MinInterval) syncs at once, later ones once a period
// has passed (4 × MinInterval, growing to 16 × while the burst lasts), and the last change of
// a burst syncs once no change came for BurstQuiet (25ms, longer when the changes came
// further apart), so a burst of a few seconds costs a sync at its start, at most one while it
// lasts and one at its end (see throttle). A watch that fails is restarted with
// backoff and signals its resources (changes may have been missed).
//
// Failures. A failed sync leaves the destination alone (resource guarantees it) and is retried
// with backends.Backoff (500ms doubling to 30s, jittered), one log line per retry; one failing
// resource never holds up the others.
//
// Signals. Run (and Runner.RunWithSignals) installs a SIGHUP handler for its lifetime;
// Runner.Run does not, and Runner.Reload does the same from code. A reload calls
// Config.Reload (bounded by ReloadTimeout): on success the new set replaces the old one by
// resource name (removed resources stop, new ones start, kept ones take their new definition),
// watches whose prefix is still wanted keep running, only the differences start or stop, and
// every resource re-syncs (templates may have changed). On error the old set keeps running.
// SIGTERM/SIGINT are the caller's: cancel ctx. Run then stops starting work, lets the sync in
// flight finish (backend reads are abandoned; rendering, writing and commands go on for up to
// StopGrace), stops every goroutine and returns nil.
//
// Readiness. Notifier.Ready is called once every resource has synced successfully for the
// first time, Reloading and Ready around each reload, Stopping on exit, and Watchdog every
// WatchdogInterval (10s, or half of $WATCHDOG_USEC if shorter) when $WATCHDOG_USEC is set.
// Runner.Handler (served on Config.MetricsAddr outside Onetime) answers /metrics from the
// runner's own Prometheus registry, /health (200 while running) and /ready (200 once every
// resource has synced successfully at least once and the last read of every store read so far
// succeeded; else 503 listing what is missing, "backend: down" or "backend NAME: down").
//
// Metrics: reconf_renders_total{resource,result=written|unchanged|noop|error},
// reconf_writes_total, reconf_check_total{result=ok|fail}, reconf_reload_total{result},
// reconf_rollbacks_total, reconf_render_duration_seconds, reconf_command_duration_seconds
// (stage, check, rename and reload of a changed file), reconf_sync_duration_seconds,
// reconf_backend_errors_total{backend}, reconf_watch_signals_total,
// reconf_last_success_timestamp_seconds{resource}, reconf_backend_up{backend},
// reconf_resources. The backend label is "default" for the default store, else the store's
// name.
package runner
