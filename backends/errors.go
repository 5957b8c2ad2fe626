package backends

import (
	"errors"
	"strings"
)

// Sentinel errors; classify with errors.Is.
var (
	// ErrUnknownBackend: no backend is registered under the name.
	ErrUnknownBackend = errors.New("unknown backend")
	// ErrUnavailable: the store could not be reached or did not answer in time. Retrying may help.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrConfig: the options are invalid; retrying cannot help.
	ErrConfig = errors.New("invalid backend configuration")
	// ErrAuth: the store refused our credentials.
	ErrAuth = errors.New("backend authentication failed")
	// ErrNoDiscovery: the backend has no service catalog and none was configured.
	ErrNoDiscovery = errors.New("service discovery not available")
)

// JoinErrors is errors.Join on one line: the messages are separated by "; " rather than
// newlines, so that an error printed at startup or logged stays one line. errors.Is and
// errors.As see each of errs. Nil errors are dropped; it returns nil if all are nil.
func JoinErrors(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return joined(kept)
}

type joined []error

func (j joined) Error() string {
	var sb strings.Builder
	for i, err := range j {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(err.Error())
	}
	return sb.String()
}

func (j joined) Unwrap() []error { return j }
