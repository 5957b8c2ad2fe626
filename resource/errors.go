package resource

import "errors"

// Sentinel errors; classify with errors.Is.
var (
	// ErrInvalid: a template resource file is malformed (syntax, types, missing or bad values).
	ErrInvalid = errors.New("invalid template resource")
	// ErrRender: the template failed to render; the destination was not touched.
	ErrRender = errors.New("render failed")
	// ErrCheck: check_cmd failed; the destination was not touched.
	ErrCheck = errors.New("check_cmd failed")
	// ErrReload: reload_cmd failed (the previous file was put back when it could be).
	ErrReload = errors.New("reload_cmd failed")
	// ErrTimeout: a command ran past its timeout and its process group was killed.
	ErrTimeout = errors.New("command timed out")
	// ErrWaiting: a Dynamic resource's render waits for data that does not exist yet (a
	// missing key in consul-template's dialect); nothing was written. Not a failure to retry:
	// the watch on what it waits for wakes it.
	ErrWaiting = errors.New("waiting for data")
	// ErrRollback: putting the previous file back after a failed reload failed too.
	ErrRollback = errors.New("rollback failed")
)
