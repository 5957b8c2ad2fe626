// Package runner schedules reconf's resources: it syncs them once (-onetime), on a timer
// (-interval), on backend changes (-watch: one shared watch per distinct prefix, per-resource
// debounce with wait = "min:max"), retries failures with capped, jittered backoff, reloads the
// resource set on SIGHUP without dropping unchanged watches, and serves /metrics, /health and
// /ready.
package runner
