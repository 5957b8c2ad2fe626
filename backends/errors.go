package backends

import "errors"

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
