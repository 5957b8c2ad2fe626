package backends

import (
	"path"
	"strings"
)

// CleanPrefix normalizes a prefix as every backend must read it: a leading '/', no trailing
// '/' (except the root), a trailing "/*" dropped, "." and ".." resolved.
func CleanPrefix(p string) string {
	p = strings.TrimSuffix(p, "/*")
	if p == "*" {
		p = "/"
	}
	return path.Clean("/" + p)
}

// UnderPrefix reports whether key is prefix itself or lies below it by path:
// "/app/db/host" is under "/app/db", "/app/db-replica" is not. Both must be cleaned.
func UnderPrefix(key, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(key, "/")
	}
	return key == prefix || (strings.HasPrefix(key, prefix) && key[len(prefix)] == '/')
}

// Dedupe cleans prefixes and drops any that lie under another one, so that each key is read
// once. The result is sorted.
func Dedupe(prefixes []string) []string {
	cleaned := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		cleaned = append(cleaned, CleanPrefix(p))
	}
	sortStrings(cleaned)
	out := cleaned[:0]
	for _, p := range cleaned {
		covered := false
		for _, q := range out {
			if UnderPrefix(p, q) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// Filter keeps the entries of kv whose key lies under one of the (cleaned) prefixes.
func Filter(kv map[string]string, prefixes []string) map[string]string {
	out := make(map[string]string)
	for k, v := range kv {
		for _, p := range prefixes {
			if UnderPrefix(k, p) {
				out[k] = v
				break
			}
		}
	}
	return out
}
