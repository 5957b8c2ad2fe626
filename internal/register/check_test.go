package register

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

func probe(t *testing.T, spec string, timeout time.Duration) error {
	t.Helper()
	c, err := ParseCheck(spec)
	if err != nil {
		t.Fatalf("ParseCheck(%q): %v", spec, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c(ctx)
}

func TestHTTPCheck(t *testing.T) {
	status := http.StatusOK
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	defer close(block)
	if err := probe(t, srv.URL+"/health", time.Second); err != nil {
		t.Errorf("200: %v", err)
	}
	status = http.StatusNoContent
	if err := probe(t, srv.URL+"/health", time.Second); err != nil {
		t.Errorf("204: %v", err)
	}
	for _, s := range []int{http.StatusMovedPermanently, http.StatusNotFound, http.StatusServiceUnavailable} {
		status = s
		if err := probe(t, srv.URL+"/health", time.Second); err == nil {
			t.Errorf("status %d passed", s)
		}
	}
	start := time.Now()
	if err := probe(t, srv.URL+"/slow", 100*time.Millisecond); err == nil {
		t.Error("a check that outlived its timeout passed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed-out check took %v", d)
	}
	if err := probe(t, "http://"+closedAddr(t)+"/", time.Second); err == nil {
		t.Error("a refused connection passed")
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	if err := probe(t, "tcp://"+l.Addr().String(), time.Second); err != nil {
		t.Errorf("listening: %v", err)
	}
	l.Close()
	<-done
	if err := probe(t, "tcp://"+l.Addr().String(), time.Second); err == nil {
		t.Error("closed port passed")
	}
}

func TestExecCheck(t *testing.T) {
	if err := probe(t, "exec:true", 5*time.Second); err != nil {
		t.Errorf("true: %v", err)
	}
	err := probe(t, "exec:echo not ready >&2; exit 3", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("exit 3: %v, want the output in the error", err)
	}
	start := time.Now()
	// The child holds the pipe open: only killing the process group ends it in time.
	if err := probe(t, "exec:sleep 30 & sleep 30; wait", 200*time.Millisecond); err == nil {
		t.Error("a command that outlived its timeout passed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed-out command took %v", d)
	}
}

func TestParseCheckErrors(t *testing.T) {
	for _, spec := range []string{"ftp://x", "tcp://nohost", "exec:", "exec:  ", "localhost:80"} {
		if _, err := ParseCheck(spec); !errors.Is(err, ErrCheck) {
			t.Errorf("ParseCheck(%q) = %v, want ErrCheck", spec, err)
		}
	}
	if err := probe(t, "", time.Second); err != nil {
		t.Errorf("no check: %v", err)
	}
}
