package vault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/reconf/reconf/backends"
)

// mount is one secrets engine: its path ("secret/") and KV version (0 for engines that are
// not KV; they are read as version 1).
type mount struct {
	path    string
	kv      bool
	version int
}

// mounts lists the secrets engines the token can see (sys/internal/ui/mounts, which every
// token may read). It is asked at every Get: mounts change, and a restarted dev Vault has new
// ones.
func (c *Client) mounts(ctx context.Context) ([]mount, error) {
	const p = "sys/internal/ui/mounts"
	sec, err := c.api.Logical().ReadWithContext(ctx, p)
	if err != nil {
		return nil, opError("list mounts", p, err)
	}
	if sec == nil {
		return nil, nil
	}
	raw, _ := sec.Data["secret"].(map[string]any)
	out := make([]mount, 0, len(raw))
	for mp, v := range raw {
		info, _ := v.(map[string]any)
		m := mount{path: mp, version: 1}
		typ, _ := info["type"].(string)
		m.kv = typ == "kv" || typ == "generic"
		if opts, ok := info["options"].(map[string]any); ok && opts["version"] == "2" {
			m.version = 2
		}
		out = append(out, m)
	}
	// Longest first: the innermost mount owns a path.
	sort.Slice(out, func(i, j int) bool { return len(out[i].path) > len(out[j].path) })
	return out, nil
}

// leaf is one secret to read: the Vault path of its data and the key it maps to.
type leaf struct {
	apiPath string
	key     string
	whole   bool // confd's explicit KV v2 form: map the whole response (data and metadata)
	v2      bool // the secret's fields are in the response's "data"
	// prefix: the path a caller asked for, which may be a folder only. A 403 on reading it
	// counts only if it is not a folder the token may list.
	prefix bool
}

// read walks every prefix and reads the secrets found.
func (c *Client) read(ctx context.Context, prefixes []string) (map[string]string, error) {
	ms, err := c.mounts(ctx)
	if err != nil {
		return nil, err
	}
	var (
		leaves []leaf
		denied []refusal // LISTs refused
		listed = make(map[string]bool)
	)
	seen := make(map[string]bool)
	add := func(l leaf) {
		if !seen[l.apiPath] {
			seen[l.apiPath] = true
			leaves = append(leaves, l)
		}
	}
	for _, p := range prefixes {
		rel := strings.TrimPrefix(p, "/")
		owned := false // ms is longest first: the innermost mount holding rel owns it
		for _, m := range ms {
			var sub string // rel inside m
			switch {
			case rel == "" || (strings.HasPrefix(m.path, rel+"/") && m.path != rel+"/"):
				// The prefix holds the whole mount (the root, or a folder of mounts).
				if !m.kv {
					continue
				}
			case !owned && strings.HasPrefix(rel+"/", m.path):
				owned = true
				sub = strings.TrimSuffix(strings.TrimPrefix(rel+"/", m.path), "/")
			default:
				continue
			}
			d, err := c.walk(ctx, m, sub, add, listed)
			if err != nil {
				return nil, err
			}
			denied = append(denied, d...)
		}
	}
	secrets, fields, unread, err := c.readLeaves(ctx, leaves)
	if err != nil {
		return nil, err
	}
	var errs []error
	readRefused := make(map[string]bool)
	for _, d := range unread {
		if !listed[d.key] {
			errs = append(errs, d.err) // not a folder we may list: a secret we may not read
			readRefused[d.key] = true
		}
	}
	for _, d := range denied {
		if _, ok := secrets[d.key]; !ok && (readRefused[d.key] || len(errs) == 0) {
			errs = append(errs, d.err) // not a secret we may read: a folder we may not list
		}
	}
	if err := backends.JoinErrors(errs...); err != nil {
		return nil, err
	}
	// A secret's own key wins over a field of its parent that maps to the same key.
	for k, v := range secrets {
		fields[k] = v
	}
	return backends.Filter(fields, prefixes), nil
}

// refusal is a 403 that counts only if the path turns out to be no other thing the token may
// see. Policies often grant read on a secret and no list under it, or list on a folder and no
// read of a secret of the same name: a LIST refused for a secret the token reads, or a read
// refused for a folder the token lists, is no error.
type refusal struct {
	key string
	err error
}

// walk finds the secrets at and under rel in mount m, as confd does: the path itself, then
// LIST recursively. On KV v2, rel is as `vault kv get` shows it (LIST goes to metadata/, reads
// to data/); a rel starting with "data/" is confd's explicit form and names one secret.
func (c *Client) walk(ctx context.Context, m mount, rel string, add func(leaf), listed map[string]bool) (denied []refusal, err error) {
	mp := strings.TrimSuffix(m.path, "/")
	key := func(r string) string { return "/" + mp + "/" + r }
	if m.version == 2 && (rel == "data" || strings.HasPrefix(rel, "data/")) {
		if rel != "data" {
			add(leaf{apiPath: m.path + rel, key: key(rel), whole: true})
		}
		return nil, nil
	}
	dataPath, listPath := m.path, m.path
	if m.version == 2 {
		dataPath, listPath = m.path+"data/", m.path+"metadata/"
	}
	if rel != "" {
		add(leaf{apiPath: dataPath + rel, key: key(rel), v2: m.version == 2, prefix: true})
	}
	var list func(r string) error
	list = func(r string) error {
		p := listPath + r
		sec, err := c.api.Logical().ListWithContext(ctx, p)
		if err != nil && r != "" && status(err) == http.StatusForbidden {
			denied = append(denied, refusal{key: key(strings.TrimSuffix(r, "/")), err: opError("list", p, err)})
			return nil
		}
		if status(err) == http.StatusMethodNotAllowed {
			return nil // an engine path that cannot be listed (not KV): it has no children
		}
		if err != nil {
			return opError("list", p, err)
		}
		if sec == nil {
			return nil
		}
		names, _ := sec.Data["keys"].([]any)
		if len(names) > 0 && r != "" {
			listed[key(strings.TrimSuffix(r, "/"))] = true
		}
		for _, n := range names {
			name, _ := n.(string)
			if name == "" {
				continue
			}
			child := r + name
			if strings.HasSuffix(name, "/") {
				if err := list(child); err != nil {
					return err
				}
				continue
			}
			add(leaf{apiPath: dataPath + child, key: key(child), v2: m.version == 2})
		}
		return nil
	}
	if rel == "" {
		return denied, list("")
	}
	return denied, list(rel + "/")
}

// readLeaves reads the secrets Concurrency at a time and maps them: secrets holds each
// secret's own key, fields the keys of its fields.
func (c *Client) readLeaves(ctx context.Context, leaves []leaf) (secrets, fields map[string]string, unread []refusal, err error) {
	secrets, fields = make(map[string]string), make(map[string]string)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan leaf)
	for range min(c.cfg.Concurrency, max(len(leaves), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				data, err := c.readLeaf(ctx, l)
				mu.Lock()
				if err != nil && l.prefix && errors.Is(err, errForbidden) {
					unread = append(unread, refusal{key: l.key, err: err})
					err = nil
				}
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if err == nil && data != nil {
					mapSecret(l.key, data, secrets, fields)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, l := range leaves {
		select {
		case work <- l:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return secrets, fields, unread, firstErr
}

// readLeaf reads one secret's data; nil when there is none (absent, or on KV v2 the latest
// version is deleted or destroyed).
func (c *Client) readLeaf(ctx context.Context, l leaf) (map[string]any, error) {
	sec, err := c.api.Logical().ReadWithContext(ctx, l.apiPath)
	if err != nil {
		return nil, opError("read", l.apiPath, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	if l.whole && sec.Data["data"] == nil {
		return nil, nil // deleted or destroyed
	}
	if !l.v2 {
		return sec.Data, nil
	}
	data, _ := sec.Data["data"].(map[string]any)
	return data, nil
}

// mapSecret applies confd's mapping: a secret whose data is exactly {"value": "<string>"} is
// that string; any other is the JSON of its data, plus one key per string field (nested
// objects flattened, path-joined). Fields of other types appear only in the JSON.
func mapSecret(key string, data map[string]any, secrets, fields map[string]string) {
	if len(data) == 1 {
		if s, ok := data["value"].(string); ok {
			secrets[key] = s
			return
		}
	}
	js, _ := json.Marshal(data) // decoded from JSON: it encodes again
	secrets[key] = string(js)
	flatten(key, data, fields)
}

func flatten(key string, v any, fields map[string]string) {
	switch v := v.(type) {
	case string:
		fields[key] = v
	case map[string]any:
		for k, inner := range v {
			flatten(path.Join(key, k), inner, fields)
		}
	}
}
