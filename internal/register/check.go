package register

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrCheck: the -check flag cannot be understood.
var ErrCheck = errors.New("invalid check")

// Check probes the instance once; nil means healthy. The caller bounds it with ctx.
type Check func(ctx context.Context) error

// ParseCheck builds a check from its flag form: "http://…" or "https://…" (GET, any 2xx
// passes), "tcp://host:port" (a connection is accepted), "exec:CMD" (`/bin/sh -c CMD` exits 0),
// or "" (no check: the instance is healthy while reconf runs).
func ParseCheck(spec string) (Check, error) {
	switch {
	case spec == "":
		return func(context.Context) error { return nil }, nil
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			// url.Parse's error quotes the URL, password and all.
			return nil, fmt.Errorf("%w %q: not a valid URL", ErrCheck, redactCheck(spec))
		}
		return httpCheck(u), nil
	case strings.HasPrefix(spec, "tcp://"):
		addr := strings.TrimPrefix(spec, "tcp://")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrCheck, spec, err)
		}
		return tcpCheck(addr), nil
	case strings.HasPrefix(spec, "exec:"):
		cmd := strings.TrimSpace(strings.TrimPrefix(spec, "exec:"))
		if cmd == "" {
			return nil, fmt.Errorf("%w %q: no command", ErrCheck, spec)
		}
		return execCheck(cmd), nil
	}
	return nil, fmt.Errorf("%w %q: want http://…, https://…, tcp://host:port or exec:CMD", ErrCheck, spec)
}

// redactCheck returns spec fit for logs and errors: the password of an http(s) check URL
// ("http://user:password@host/health") is masked.
func redactCheck(spec string) string {
	if !strings.HasPrefix(spec, "http://") && !strings.HasPrefix(spec, "https://") {
		return spec
	}
	if u, err := url.Parse(spec); err == nil {
		return u.Redacted()
	}
	scheme, rest, _ := strings.Cut(spec, "://")
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return scheme + "://xxxxx@" + rest[i+1:]
	}
	return spec
}

func httpCheck(u *url.URL) Check {
	// A fresh connection per probe, as a load balancer's health check would open.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "reconf-register")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("http status %s", resp.Status)
		}
		return nil
	}
}

func tcpCheck(addr string) Check {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func execCheck(command string) Check {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			if msg != "" {
				return fmt.Errorf("%w: %s", err, msg)
			}
			return err
		}
		return nil
	}
}
