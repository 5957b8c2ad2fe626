package consul

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// blocking holds the parameters of a blocking query; the zero value asks for a plain read.
type blocking struct {
	index uint64        // answer once the index passes this one (0: at once)
	wait  time.Duration // the longest the agent may hold the query (0: not blocking)
}

// listData lists p as list does and returns the answer as a kvData.
func (c *Client) listData(ctx context.Context, p string, b blocking) (listed, *kvData, error) {
	var entries []entry
	l, err := c.list(ctx, p, b, func(b []entry) { entries = append(entries, b...) })
	if err != nil {
		return listed{}, nil, err
	}
	return l, newKVData(entries), nil
}

// list reads every key under prefix p (a cleaned path) with one request, as the api client's
// KV().List would (same address, path prefix, TLS, token, basic auth, datacenter, namespace and
// partition: all taken from the api.Config that api.NewClient completed), but decodes the
// body as it arrives and keeps only the keys under p by path. A prefix with no keys (404)
// gives none. Keys go to add in batches (the slice is reused: add copies what it keeps), in
// the order the agent sent them. With b set it is a blocking query. It returns the answer's
// X-Consul-Index (required of a blocking answer) and what share.go judges a folder by.
// Errors from the agent are api.StatusError, as from the api client.
func (c *Client) list(ctx context.Context, p string, b blocking, add func([]entry)) (listed, error) {
	ac := c.apiConfig
	// consistent: the leader confirms it still leads and has applied everything committed
	// before it answers. In the default mode a leader elected after the whole cluster
	// restarted answers from the state of its last snapshot until it has replayed its log, so
	// a file could go back to old content (seen with three servers killed and restarted);
	// such a leader refuses consistent reads (500, retried) until it has caught up.
	q := url.Values{"recurse": {""}, "consistent": {""}}
	if ac.Datacenter != "" {
		q.Set("dc", ac.Datacenter)
	}
	if ac.Namespace != "" {
		q.Set("ns", ac.Namespace)
	}
	if ac.Partition != "" {
		q.Set("partition", ac.Partition)
	}
	if b.index != 0 {
		q.Set("index", strconv.FormatUint(b.index, 10))
	}
	if b.wait > 0 {
		q.Set("wait", strconv.FormatInt(max(b.wait.Milliseconds(), 1), 10)+"ms")
	}
	u := url.URL{Scheme: ac.Scheme, Host: ac.Address, Path: ac.PathPrefix + "/v1/kv/" + consulKey(p), RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return listed{}, err
	}
	req.Header = c.api.Headers()
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if ac.Token != "" {
		req.Header.Set("X-Consul-Token", ac.Token)
	}
	if c.local {
		// Compressing costs the agent (and us) more than it saves on loopback. Setting the
		// header also stops net/http from asking for gzip.
		req.Header.Set("Accept-Encoding", "identity")
	}
	if ac.HttpAuth != nil {
		req.SetBasicAuth(ac.HttpAuth.Username, ac.HttpAuth.Password)
	}
	if b.wait > 0 {
		c.blocking.Add(1)
		defer c.blocking.Add(-1)
	}
	resp, err := ac.HttpClient.Do(req)
	if err != nil {
		return listed{}, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	var out listed
	if h := resp.Header.Get("X-Consul-Index"); h != "" {
		if out.index, err = strconv.ParseUint(h, 10, 64); err != nil {
			return listed{}, fmt.Errorf("read %s: bad X-Consul-Index %q", u.Path, h)
		}
	} else if b.wait > 0 && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound) {
		return listed{}, fmt.Errorf("read %s: answer without X-Consul-Index", u.Path)
	}
	out.filtered = resp.Header.Get("X-Consul-Results-Filtered-By-ACLs") == "true"
	switch resp.StatusCode {
	case http.StatusOK:
		c.markHeard()
	case http.StatusNotFound:
		c.markHeard()
		return out, nil
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return listed{}, api.StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	var buf []byte // "/" + key + value: one allocation per key holds both strings
	batch := make([]entry, 0, 256)
	err = decodeKVs(resp.Body, func(key, value []byte) {
		out.raw++
		folder := bytes.HasSuffix(key, []byte("/"))
		buf = append(append(buf[:0], '/'), key...)
		odd := false
		if !cleanPath(buf) {
			buf = append(buf[:0], path.Join("/", string(key))...)
			// "app/db/" (a folder) is still found by every prefix its path is under;
			// "app//db" or "/app" are not found by the list of "app/db" or "app".
			odd = !bytes.HasPrefix(key, buf[1:])
		}
		if !underPrefix(buf, p) {
			return
		}
		if folder {
			batch = append(batch, entry{key: string(buf), folder: true, odd: odd})
		} else {
			n := len(buf)
			s := string(append(buf, value...))
			batch = append(batch, entry{key: s[:n], value: s[n:], odd: odd})
		}
		if len(batch) == cap(batch) {
			add(batch)
			batch = batch[:0]
		}
	})
	if err != nil {
		return listed{}, fmt.Errorf("read %s: %w", u.Path, err)
	}
	add(batch)
	return out, nil
}

// listed is what list says of an answer besides its keys.
type listed struct {
	index uint64 // X-Consul-Index
	raw   int    // entries the agent sent, also those not under the prefix by path ("app-x" for "app")
	// filtered: the agent left out entries the token may not read
	// (X-Consul-Results-Filtered-By-ACLs), so the answer is not all there is under the prefix.
	filtered bool
}

// entry is one key read by list, its path in our form.
type entry struct {
	key, value string
	folder     bool // from a folder entry ("a/b/")
	odd        bool // the Consul key does not start with the path (see kvData.odd)
}

// sink gathers the entries of parallel lists into one map.
type sink struct {
	mu      sync.Mutex
	kv      map[string]string
	folders []string
}

func (s *sink) add(batch []entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range batch {
		if e.folder {
			s.folders = append(s.folders, e.key)
			continue
		}
		s.kv[e.key] = e.value
	}
}

// result is the map, in which a folder entry ("a/b/") reads as "/a/b" = "" unless a real
// key "a/b" is there.
func (s *sink) result() map[string]string {
	for _, k := range s.folders {
		if _, ok := s.kv[k]; !ok {
			s.kv[k] = ""
		}
	}
	return s.kv
}

// cleanPath reports whether p (starting with '/') is what path.Clean would make of it: no
// empty, "." or ".." element and no trailing '/' (except for the root itself).
func cleanPath(p []byte) bool {
	if len(p) == 1 {
		return true
	}
	if p[len(p)-1] == '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch e := p[start:i]; {
		case len(e) == 0, len(e) == 1 && e[0] == '.', len(e) == 2 && e[0] == '.' && e[1] == '.':
			return false
		}
		start = i + 1
	}
	return true
}

// underPrefix is backends.UnderPrefix on a byte slice.
func underPrefix(key []byte, prefix string) bool {
	if prefix == "/" {
		return len(key) > 0 && key[0] == '/'
	}
	return len(key) >= len(prefix) && string(key[:len(prefix)]) == prefix &&
		(len(key) == len(prefix) || key[len(prefix)] == '/')
}

// loopback reports whether the agent at addr (host:port) is on this machine, by name or by
// address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
