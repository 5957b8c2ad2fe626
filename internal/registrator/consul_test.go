package registrator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestConsulPing: registrator's Ping asks the agent for the leader and takes any answer; an
// agent that does not know a leader (yet) still registers its local services.
func TestConsulPing(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		ok     bool
	}{
		{http.StatusOK, `"127.0.0.1:8300"`, true},
		{http.StatusOK, `""`, true},
		{http.StatusInternalServerError, "rpc error", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/status/leader" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		u, _ := url.Parse(srv.URL)
		r, err := newConsul(registryConfig{URI: &url.URL{Scheme: "consul", Host: u.Host}, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Ping(context.Background())
		srv.Close()
		if (err == nil) != tc.ok {
			t.Errorf("leader answer %d %s: Ping = %v, want ok %v", tc.status, tc.body, err, tc.ok)
		}
	}
}
