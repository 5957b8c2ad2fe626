package consul

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// errSyntax is what decodeKVs wraps when the body is not a JSON array of objects.
var errSyntax = errors.New("malformed kv list")

// decodeKVs reads the body of /v1/kv/<prefix>?recurse (a JSON array of objects) from r one
// entry at a time, calling emit with each entry's Key and its Value decoded from base64 (nil
// for a null or missing Value). Fields other than Key and Value are skipped unread; field
// names match case-insensitively, as encoding/json does. The slices passed to emit are only
// valid during the call. The whole array is never held in memory: this is what makes reading
// 100,000 keys cheap (the api client decodes them into []*KVPair, about 0.7 KB a key).
func decodeKVs(r io.Reader, emit func(key, value []byte)) error {
	s := &jsonScanner{src: r, buf: make([]byte, 0, 64<<10)}
	if err := s.expect('['); err != nil {
		return err
	}
	c, err := s.next()
	if err != nil {
		return err
	}
	if c == ']' {
		return nil
	}
	var key, value []byte
	for {
		if c != '{' {
			return s.syntax("want an object")
		}
		key, value, err = s.entry(key[:0], value[:0])
		if err != nil {
			return err
		}
		emit(key, value)
		if c, err = s.next(); err != nil {
			return err
		}
		if c == ']' {
			return nil
		}
		if c != ',' {
			return s.syntax("want , or ] after an entry")
		}
		if c, err = s.next(); err != nil {
			return err
		}
	}
}

// jsonScanner is a small buffered reader that knows just enough JSON for decodeKVs.
type jsonScanner struct {
	src     io.Reader
	buf     []byte // buf[pos:] is unread
	pos     int
	off     int64 // offset of buf[0] in the stream, for errors
	eof     bool
	scratch []byte
}

func (s *jsonScanner) syntax(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, what, s.off+int64(s.pos))
}

// fill reads more input, keeping the unread part. It fails at the end of the input.
func (s *jsonScanner) fill() error {
	if s.eof {
		return fmt.Errorf("%w: unexpected end at byte %d", errSyntax, s.off+int64(s.pos))
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:])
		s.off += int64(s.pos)
		s.buf, s.pos = s.buf[:n], 0
	}
	if len(s.buf) == cap(s.buf) {
		s.buf = append(s.buf, make([]byte, cap(s.buf))...)[:len(s.buf)]
	}
	for {
		n, err := s.src.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			s.eof = true
			if n == 0 {
				return s.fill()
			}
			return nil
		case err != nil:
			return err
		case n > 0:
			return nil
		}
	}
}

// next consumes and returns the next byte that is not white space.
func (s *jsonScanner) next() (byte, error) {
	for {
		for s.pos < len(s.buf) {
			c := s.buf[s.pos]
			s.pos++
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				return c, nil
			}
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
}

func (s *jsonScanner) expect(want byte) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	if c != want {
		return s.syntax(fmt.Sprintf("want %q", want))
	}
	return nil
}

// entry reads the members of one object (its '{' consumed), appending Key to key and the
// decoded Value to value.
func (s *jsonScanner) entry(key, value []byte) ([]byte, []byte, error) {
	c, err := s.next()
	if err != nil {
		return nil, nil, err
	}
	if c == '}' {
		return key, value, nil
	}
	for {
		if c != '"' {
			return nil, nil, s.syntax("want a field name")
		}
		name, err := s.str()
		if err != nil {
			return nil, nil, err
		}
		isKey, isValue := bytes.EqualFold(name, []byte("Key")), bytes.EqualFold(name, []byte("Value"))
		if err := s.expect(':'); err != nil {
			return nil, nil, err
		}
		if c, err = s.next(); err != nil {
			return nil, nil, err
		}
		switch {
		case (isKey || isValue) && c == 'n':
			if err := s.literal("ull"); err != nil {
				return nil, nil, err
			}
			if isKey {
				key = key[:0]
			} else {
				value = value[:0]
			}
		case isKey && c == '"':
			k, err := s.str()
			if err != nil {
				return nil, nil, err
			}
			key = append(key[:0], k...)
		case isValue && c == '"':
			v, err := s.str()
			if err != nil {
				return nil, nil, err
			}
			value = value[:0]
			if n := base64.StdEncoding.DecodedLen(len(v)); cap(value) < n {
				value = make([]byte, 0, n)
			}
			n, err := base64.StdEncoding.Decode(value[:cap(value)], v)
			if err != nil {
				return nil, nil, s.syntax(fmt.Sprintf("value: %v", err))
			}
			value = value[:n]
		case isKey || isValue:
			return nil, nil, s.syntax(fmt.Sprintf("%s: want a string", name))
		default:
			if err := s.skip(c); err != nil {
				return nil, nil, err
			}
		}
		if c, err = s.next(); err != nil {
			return nil, nil, err
		}
		if c == '}' {
			return key, value, nil
		}
		if c != ',' {
			return nil, nil, s.syntax("want , or } in an entry")
		}
		if c, err = s.next(); err != nil {
			return nil, nil, err
		}
	}
}

// literal consumes rest (of true, false or null, whose first byte was read).
func (s *jsonScanner) literal(rest string) error {
	for len(s.buf)-s.pos < len(rest) {
		if err := s.fill(); err != nil {
			return err
		}
	}
	if string(s.buf[s.pos:s.pos+len(rest)]) != rest {
		return s.syntax("bad literal")
	}
	s.pos += len(rest)
	return nil
}

// str reads a string whose opening quote was consumed and returns its unquoted bytes, valid
// until the next read. Strings without escapes (nearly all) are returned without a copy when
// they lie in the buffer; escaped ones are unquoted by encoding/json.
func (s *jsonScanner) str() ([]byte, error) {
	start := s.pos
	for {
		i := bytes.IndexByte(s.buf[s.pos:], '"')
		if i < 0 {
			s.pos = len(s.buf)
		} else {
			raw := s.buf[start : s.pos+i]
			if bytes.IndexByte(raw, '\\') < 0 {
				s.pos += i + 1
				return raw, nil
			}
			s.pos = start
			return s.escaped()
		}
		keep := s.pos - start
		s.pos = start
		if err := s.fill(); err != nil {
			return nil, err
		}
		start, s.pos = s.pos, s.pos+keep
	}
}

// escaped reads a string with escapes (its opening quote consumed) and unquotes it.
func (s *jsonScanner) escaped() ([]byte, error) {
	raw := append(s.scratch[:0], '"')
	for {
		for s.pos < len(s.buf) {
			c := s.buf[s.pos]
			s.pos++
			raw = append(raw, c)
			switch c {
			case '\\':
				if s.pos == len(s.buf) {
					if err := s.fill(); err != nil {
						return nil, err
					}
				}
				raw = append(raw, s.buf[s.pos])
				s.pos++
			case '"':
				s.scratch = raw
				var out string
				if err := json.Unmarshal(raw, &out); err != nil {
					return nil, s.syntax(fmt.Sprintf("string: %v", err))
				}
				return []byte(out), nil
			}
		}
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
}

// skip consumes one value whose first byte c was read.
func (s *jsonScanner) skip(c byte) error {
	depth := 0
	for {
		switch c {
		case '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return s.syntax("unexpected " + string(c))
			}
			depth--
		case ',', ':':
			if depth == 0 {
				return s.syntax("unexpected " + string(c))
			}
		default: // a number or literal
			if err := s.scalar(); err != nil {
				return err
			}
		}
		if depth <= 0 {
			return nil
		}
		var err error
		if c, err = s.next(); err != nil {
			return err
		}
	}
}

// scalar consumes the rest of a number or literal, up to the next delimiter.
func (s *jsonScanner) scalar() error {
	for {
		for s.pos < len(s.buf) {
			switch s.buf[s.pos] {
			case ',', '}', ']', ' ', '\n', '\r', '\t':
				return nil
			}
			s.pos++
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
}
