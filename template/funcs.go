package template

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// sprigFuncs is sprig's text function map, built once (TxtFuncMap allocates a new map per call).
var sprigFuncs = sync.OnceValue(func() texttemplate.FuncMap { return sprig.TxtFuncMap() })

// staticFuncs returns sprig's functions overlaid with confd's (confd's win on a clash), built
// once: Funcs only reads the map, and a run with many resources parses many templates. The
// functions that depend on a render (store, services, include, DNS with the render's context)
// are added by boundFuncs.
var staticFuncs = sync.OnceValue(newStaticFuncs)

func newStaticFuncs() texttemplate.FuncMap {
	m := make(texttemplate.FuncMap, len(sprigFuncs())+32)
	for k, v := range sprigFuncs() {
		m[k] = v
	}
	m["base"] = path.Base
	m["dir"] = path.Dir
	m["split"] = strings.Split
	m["join"] = strings.Join
	m["json"] = unmarshalJSONObject
	m["jsonArray"] = unmarshalJSONArray
	m["map"] = createMap
	m["getenv"] = getenv
	m["datetime"] = time.Now
	m["toUpper"] = strings.ToUpper
	m["toLower"] = strings.ToLower
	m["contains"] = strings.Contains
	m["replace"] = strings.Replace
	m["trimSuffix"] = strings.TrimSuffix
	m["fileExists"] = fileExists
	m["base64Encode"] = base64Encode
	m["base64Decode"] = base64Decode
	m["parseBool"] = strconv.ParseBool
	m["atoi"] = strconv.Atoi
	m["reverse"] = reverse
	m["sortByLength"] = sortByLength
	m["sortKVByLength"] = sortByLength
	m["add"] = func(a, b int) int { return a + b }
	m["sub"] = func(a, b int) int { return a - b }
	m["mul"] = func(a, b int) int { return a * b }
	m["div"] = div
	m["mod"] = mod
	m["seq"] = seq
	return m
}

// getenv returns the environment variable key, or the first default when it is unset or empty.
func getenv(key string, def ...string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	if len(def) > 0 {
		return def[0]
	}
	return ""
}

// createMap builds a map from alternating string keys and values.
func createMap(values ...any) (map[string]any, error) {
	if len(values)%2 != 0 {
		return nil, errors.New("invalid map call: odd number of arguments")
	}
	m := make(map[string]any, len(values)/2)
	for i := 0; i < len(values); i += 2 {
		k, ok := values[i].(string)
		if !ok {
			return nil, fmt.Errorf("map keys must be strings, argument %d is %T", i+1, values[i])
		}
		m[k] = values[i+1]
	}
	return m, nil
}

// unmarshalJSONObject decodes a JSON object; numbers are float64, as in confd.
func unmarshalJSONObject(data string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// unmarshalJSONArray decodes a JSON array.
func unmarshalJSONArray(data string) ([]any, error) {
	var a []any
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		return nil, err
	}
	return a, nil
}

// fileExists is confd's util.IsFileExist: false only when the file certainly does not exist.
func fileExists(name string) bool {
	_, err := os.Stat(name)
	return !errors.Is(err, os.ErrNotExist)
}

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// reverse reverses a []string or pairs in place and returns it; anything else is returned as is.
func reverse(values any) any {
	switch v := values.(type) {
	case []string:
		slices.Reverse(v)
	case KVPairs:
		slices.Reverse(v)
	case []KVPair:
		slices.Reverse(v)
	}
	return values
}

// sortByLength sorts a []string by length, or pairs by key length, in place and stably.
func sortByLength(values any) any {
	switch v := values.(type) {
	case []string:
		sort.SliceStable(v, func(i, j int) bool { return len(v[i]) < len(v[j]) })
	case KVPairs:
		sort.SliceStable(v, func(i, j int) bool { return len(v[i].Key) < len(v[j].Key) })
	case []KVPair:
		sort.SliceStable(v, func(i, j int) bool { return len(v[i].Key) < len(v[j].Key) })
	}
	return values
}

func div(a, b int) (int, error) {
	if b == 0 {
		return 0, ErrDivByZero
	}
	return a / b, nil
}

func mod(a, b int) (int, error) {
	if b == 0 {
		return 0, ErrDivByZero
	}
	return a % b, nil
}

// seq returns first..last inclusive; empty when last < first.
func seq(first, last int) []int {
	var a []int
	for i := first; i <= last; i++ {
		a = append(a, i)
	}
	return a
}

// lookupIP returns the addresses of host as sorted strings; nil on failure (no error).
func lookupIP(ctx context.Context, host string) []string {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	ips := make([]string, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP.String()
	}
	sort.Strings(ips)
	return ips
}

func lookupIPFamily(ctx context.Context, host, sep string) []string {
	var out []string
	for _, ip := range lookupIP(ctx, host) {
		if strings.Contains(ip, sep) {
			out = append(out, ip)
		}
	}
	return out
}

// lookupSRV returns the SRV records of _service._proto.name sorted as confd sorts them (by the
// string target+port+priority+weight); an empty list on failure.
func lookupSRV(ctx context.Context, service, proto, name string) []*net.SRV {
	_, addrs, err := net.DefaultResolver.LookupSRV(ctx, service, proto, name)
	if err != nil {
		return []*net.SRV{}
	}
	sortKey := func(s *net.SRV) string {
		return fmt.Sprintf("%s%d%d%d", s.Target, s.Port, s.Priority, s.Weight)
	}
	sort.SliceStable(addrs, func(i, j int) bool { return sortKey(addrs[i]) < sortKey(addrs[j]) })
	return addrs
}
