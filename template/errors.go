package template

import (
	"errors"
	"strconv"
	"strings"
	texttemplate "text/template"
)

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

// execError is text/template's execution error told with each place named once.
// text/template says
//
//	template: app.tmpl:2:5: executing "app.tmpl" at <getv "/db/x">: error calling getv: key does not exist: /db/x
//
// which names the file three times and the key twice (once in the action, once in the
// error); execError says
//
//	app.tmpl:2:5: getv: key does not exist: /db/x
//
// A failure in an included partial reads `app.tmpl:1:2: include: part.tmpl:2:2: …`. Other
// failures keep the action: `app.tmpl:1:2: at <div 1 0>: error calling div: integer division
// by zero`; `executing "name"` stays for a {{define}}d template. It unwraps to what
// text/template returned, so errors.Is and errors.As see through it.
type execError struct {
	msg string
	err error
}

func (e *execError) Error() string { return e.msg }
func (e *execError) Unwrap() error { return e.err }

// cleanExec rewrites an execution error of text/template as execError tells it; anything it
// does not recognize is returned as it is.
func cleanExec(err error) error {
	var ee texttemplate.ExecError
	if !errors.As(err, &ee) || ee.Err == nil {
		return err
	}
	rest, ok := strings.CutPrefix(ee.Err.Error(), "template: ")
	if !ok {
		return err
	}
	marker := ": executing " + strconv.Quote(ee.Name) + " at <"
	i := strings.Index(rest, marker)
	if i < 0 {
		return &execError{rest, err} // "name: message": no action to point at
	}
	loc, after := rest[:i], rest[i+len(marker):] // after: "ACTION>: DETAIL"
	executing := ""
	if file := trimLineCol(loc); file != ee.Name {
		executing = "executing " + strconv.Quote(ee.Name) + " "
	}
	if inner := errors.Unwrap(ee.Err); inner != nil {
		im := inner.Error()
		head, ok := strings.CutSuffix(after, im)
		const calling = ">: error calling "
		if j := strings.LastIndex(head, calling); ok && j >= 0 && strings.HasSuffix(head, ": ") {
			fn := head[j+len(calling) : len(head)-2]
			switch inner.(type) {
			case *KeyError, *execError: // they name the key, or the partial's file and line
				return &execError{loc + ": " + fn + ": " + im, err}
			}
		}
	}
	return &execError{loc + ": " + executing + "at <" + after, err}
}

// trimLineCol cuts ":line:col" off a text/template location.
func trimLineCol(loc string) string {
	for range 2 {
		if i := strings.LastIndexByte(loc, ':'); i >= 0 {
			loc = loc[:i]
		}
	}
	return loc
}
