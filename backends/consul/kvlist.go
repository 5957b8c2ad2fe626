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
	"strings"

	"github.com/hashicorp/consul/api"
)

// pair is one key read by list, its path already in our form.
type pair struct {
	key, value string
	folder     bool // from a folder entry ("a/b/")
}

// list reads every key under prefix p (a cleaned path) with one request, as the api client's
// KV().List would (same address, path prefix, TLS, token, basic auth, datacenter, namespace and
// partition: all taken from the api.Config that api.NewClient completed), but decodes the
// body as it arrives and keeps only the keys under p by path. A prefix with no keys (404)
// gives none. Errors from the agent are api.StatusError, as from the api client.
func (c *Client) list(ctx context.Context, p string, into []pair) ([]pair, error) {
	ac := c.apiConfig
	q := url.Values{"recurse": {""}}
	if ac.Datacenter != "" {
		q.Set("dc", ac.Datacenter)
	}
	if ac.Namespace != "" {
		q.Set("ns", ac.Namespace)
	}
	if ac.Partition != "" {
		q.Set("partition", ac.Partition)
	}
	u := url.URL{Scheme: ac.Scheme, Host: ac.Address, Path: ac.PathPrefix + "/v1/kv/" + consulKey(p), RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
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
	resp, err := ac.HttpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return into, nil
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, api.StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	var b []byte // "/" + key + value: one allocation per key holds both strings
	err = decodeKVs(resp.Body, func(key, value []byte) {
		folder := bytes.HasSuffix(key, []byte("/"))
		b = append(append(b[:0], '/'), key...)
		if !cleanPath(b) {
			b = append(b[:0], path.Join("/", string(key))...)
		}
		if !underPrefix(b, p) {
			return
		}
		if folder {
			into = append(into, pair{key: string(b), folder: true})
			return
		}
		n := len(b)
		s := string(append(b, value...))
		into = append(into, pair{key: s[:n], value: s[n:]})
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u.Path, err)
	}
	return into, nil
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
