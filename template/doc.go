// Package template parses and renders reconf's configuration templates: Go text/template with
// confd's function map, so that a confd template renders byte for byte the same.
//
// A render sees a snapshot of the resource's keys through the store functions, which keep the
// semantics of confd's memkv, quirks included: get, getv (with a default for a missing key
// only), exists, gets and getvs (path.Match globs; getvs sorts by value), ls and lsdir (`ls "/"`
// lists top-level leaves only, `lsdir "/"` is empty, `ls` of a leaf gives its name). A missing
// key is an error naming the key, the resource, the template file and the line.
//
// Besides confd's other functions (json, jsonArray, map, getenv, datetime, lookupIP, lookupSRV,
// base64Encode, reverse, sortByLength, add, div, seq, …) templates get every sprig v3 function
// whose name does not clash with confd's, `include "partial.tmpl"` (parsed with the template,
// cycles refused), and `service`/`services` for service discovery.
//
// Parse once; Render is safe for concurrent use. Each render builds its own store from
// Data.KV (sorted indexes are built lazily, once per render) and runs on a pooled clone of the
// parsed template whose functions are bound to that render.
package template
