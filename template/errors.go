package template

import "errors"

// Sentinel errors; classify with errors.Is.
var (
	// ErrKeyNotExist: get or getv (without a default) asked for a key that is not stored.
	ErrKeyNotExist = errors.New("key does not exist")
	// ErrIncludeCycle: a template includes itself, directly or through other partials.
	ErrIncludeCycle = errors.New("include cycle")
	// ErrInclude: an include could not be resolved (not parsed, or nested too deep).
	ErrInclude = errors.New("include failed")
	// ErrDivByZero: div or mod by zero.
	ErrDivByZero = errors.New("integer division by zero")
)

// KeyError is a store lookup that failed; it prints as memkv's does: "key does not exist: KEY".
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() + ": " + e.Key }

// Unwrap returns the sentinel (ErrKeyNotExist).
func (e *KeyError) Unwrap() error { return e.Err }
