package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// levelFatal is where confd's panic and fatal levels sit: above error, so that only what
// stops reconf is logged.
const levelFatal = slog.LevelError + 4

// parseLevel maps confd's (logrus) level names to slog levels.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "panic", "fatal":
		return levelFatal, nil
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("%q is not panic, fatal, error, warn, warning, info or debug", s)
}

// newLogger returns the logger the whole run uses, writing to w.
func newLogger(w io.Writer, o *options) *slog.Logger {
	lvl, _ := parseLevel(o.LogLevel) // validated
	ho := &slog.HandlerOptions{Level: lvl}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// secretFlags are never logged nor put in errors.
var secretFlags = map[string]bool{"password": true, "auth-token": true, "secret-id": true}

const redacted = "<redacted>"

// isSecret reports whether the flag's value is a secret for this backend (confd's redis
// backend takes its password from -client-key).
func isSecret(name, backend string) bool {
	return secretFlags[name] || (name == "client-key" && backend == "redis")
}

// redactValue hides v if the flag holds a secret on some backend.
func redactValue(name, v string) string {
	if isSecret(name, "redis") {
		return redacted
	}
	return v
}

// redactNodes is the node list for a log line: comma-separated, passwords hidden.
func redactNodes(nodes []string) string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = redactNode(n)
	}
	return strings.Join(out, ",")
}

// redactNode hides a password inside a node URL ("redis://user:pw@host" → "redis://user:<redacted>@host").
func redactNode(n string) string {
	u, err := url.Parse(n)
	if err != nil || u.User == nil {
		return n
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return strings.Replace(u.String(), "xxxxx", redacted, 1)
	}
	return n
}

// logEffective logs the effective settings at debug level, secrets redacted, each with where
// its value came from.
func logEffective(log *slog.Logger, c *config) {
	var o options
	fs := newFlagSet(&o) // sets o to the defaults…
	o = c.opts           // …so fill it in afterwards
	var attrs []any
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		switch {
		case v == "":
			// unset: skip, keeps the line short
			return
		case isSecret(f.Name, o.Backend):
			v = redacted
		case f.Name == "node":
			v = redactNodes(o.Nodes.values())
		}
		src := c.source[f.Name]
		if src != "" && src != "default" {
			v += " (" + src + ")"
		}
		attrs = append(attrs, slog.String(f.Name, v))
	})
	log.Debug("effective configuration", attrs...)
}
