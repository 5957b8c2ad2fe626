package resource

import (
	"cmp"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/template"
)

// SecretMode is the mode of the destination of a resource that reads secrets and sets no
// mode of its own (confd would write 0644).
const SecretMode os.FileMode = 0o600

// minSecretLen is the shortest value that errors are scrubbed of: shorter ones ("1", "on")
// would mangle every message and keep nothing secret.
const minSecretLen = 4

// redacted replaces a secret value in an error message.
const redacted = "<redacted>"

// HoldsSecrets reports whether b says that its values are secrets (backends.SecretHolder).
func HoldsSecrets(b backends.Backend) bool {
	sh, ok := b.(backends.SecretHolder)
	return ok && sh.HoldsSecrets()
}

// secretModeLogged remembers the (resource, destination) pairs whose 0600 default was logged.
var secretModeLogged sync.Map

// logSecretMode says once per resource and destination that the destination is written
// SecretMode because the resource reads secrets and sets no mode.
func (r *Resource) logSecretMode(log *slog.Logger) {
	if _, seen := secretModeLogged.LoadOrStore(r.Name+"\x00"+r.Dest, true); !seen {
		log.Info("the resource reads secrets and sets no mode: the destination is written 0600")
	}
}

// scrubber takes secret values out of error messages: a failed render or command may quote
// what it read (a template function's argument, a check_cmd echoing its input).
type scrubber []string // longest first, so that a value inside another goes after it

// newScrubber scrubs the values of d.
func newScrubber(d template.Data) scrubber {
	vals := d.Values
	if d.Keys == nil {
		vals = make([]string, 0, len(d.KV))
		for _, v := range d.KV {
			vals = append(vals, v)
		}
	}
	return scrubberOf(vals)
}

// scrubberOf scrubs each of vals and each line of those that span several.
func scrubberOf(vals []string) scrubber {
	var s scrubber
	add := func(v string) {
		if len(v) >= minSecretLen {
			s = append(s, v)
		}
	}
	for _, v := range vals {
		add(v)
		if strings.Contains(v, "\n") {
			for _, l := range strings.Split(v, "\n") {
				add(strings.TrimSpace(l))
			}
		}
	}
	slices.SortFunc(s, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	return slices.Compact(s)
}

// scrub returns err with every value replaced by <redacted> in its message; errors.Is and
// errors.As still see the original chain.
func (s scrubber) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, v := range s {
		clean = strings.ReplaceAll(clean, v, redacted)
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error whose message had secrets taken out.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
