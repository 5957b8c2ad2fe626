// Package all links every backend into a binary: importing it for its side effects runs each
// backend's init, which registers the backend by name with package backends.
//
//	import _ "github.com/reconf/reconf/backends/all"
package all
