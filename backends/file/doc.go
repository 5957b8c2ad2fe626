// Package file is the "file" backend: keys come from YAML or JSON files, or from every file
// in folders (walked recursively) whose base name matches a glob filter, as confd's file
// backend reads them.
//
// A file is flattened the way confd flattens it: nested mappings become paths (/a/b), sequence
// items are numbered (/a/0, /a/1), and scalars are formatted as confd formats what yaml.v2
// (YAML 1.1) decodes: yes/no/on/off are "true"/"false", 0777 is "511", 1.50 is "1.5", 1e3 is
// "1000"; quoted values are kept as written; null values are left out. Later files override
// earlier ones key by key. Two deliberate differences: an integer too large for int64 is kept
// (confd drops it), and non-string mapping keys are used as written (confd panics).
//
// Prefixes match by path (backends.Filter): /app/db never matches /app/db-replica. A file
// that cannot be read or parsed fails Get with an error naming the file (and the line when the
// parser gives one); no partial data is returned.
//
// The client implements backends.Watcher with fsnotify on the folders that hold the files
// (editors that save by renaming are seen), plus a slow re-read as a safety net. It signals
// only when the keys under the watched prefixes change.
package file
