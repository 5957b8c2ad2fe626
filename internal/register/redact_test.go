package register

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

// An http check may carry credentials (http://user:password@host/health): the password
// reaches the instance, and never an error or the log.
func TestHTTPCheckHidesPassword(t *testing.T) {
	const pw = "s3cretpw"
	var gotUser, gotPass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://user:"+pw+"@", 1)
	err := probe(t, withCreds+"/health", 5*time.Second)
	if err == nil {
		t.Fatal("status 503 passed")
	}
	if gotUser != "user" || gotPass != pw {
		t.Errorf("the instance got basic auth %q:%q, want user:%s", gotUser, gotPass, pw)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("failed check: the error shows the password: %v", err)
	}

	// A refused connection: net/http's error quotes the URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = probe(t, "http://user:"+pw+"@"+addr+"/health", 5*time.Second)
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("refused connection: %v; want an error without the password", err)
	}

	// A URL that cannot be parsed: url.Parse's error quotes it whole.
	_, err = ParseCheck("http://user:" + pw + "@host:notaport/health")
	if !errors.Is(err, ErrCheck) || strings.Contains(err.Error(), pw) {
		t.Errorf("unparsable URL: %v; want ErrCheck without the password", err)
	}

	for spec, want := range map[string]string{
		"http://user:" + pw + "@h:1/x":     "http://user:xxxxx@h:1/x",
		"https://:" + pw + "@h:notaport/x": "https://xxxxx@h:notaport/x",
		"http://h:1/x?a=b@c":               "http://h:1/x?a=b@c",
		"exec:true":                        "exec:true",
		"tcp://127.0.0.1:1":                "tcp://127.0.0.1:1",
	} {
		if got := redactCheck(spec); got != want {
			t.Errorf("redactCheck(%q) = %q, want %q", spec, got, want)
		}
	}
}

// The "registering" line names the check without its password.
func TestRunLogHidesCheckPassword(t *testing.T) {
	const pw = "s3cretpw"
	var logs strings.Builder
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port where no store answers
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // register, then stop at once: only the log matters here
	c := Config{
		Backend:  "redis",
		Options:  backends.Options{Nodes: []string{addr}, DialTimeout: time.Second, RequestTimeout: time.Second},
		Instance: backends.Service{Name: "web", ID: "web-1", Address: "127.0.0.1", Port: 8080},
		Check:    "http://user:" + pw + "@127.0.0.1:1/health",
		Interval: time.Second, Timeout: time.Second, TTL: 2 * time.Second, Failures: 1,
	}
	_ = Run(ctx, c, slog.New(slog.NewTextHandler(&logs, nil)))
	out := logs.String()
	if !strings.Contains(out, "registering") || !strings.Contains(out, "user:xxxxx@127.0.0.1:1") {
		t.Fatalf("log lacks the registering line or the check: %s", out)
	}
	if strings.Contains(out, pw) {
		t.Errorf("log shows the check's password: %s", out)
	}
}
