package resource

import (
	"errors"
	"testing"
	"time"
)

func TestParseWait(t *testing.T) {
	ok := []struct {
		in   string
		want Wait
	}{
		{"", Wait{}},
		{"0", Wait{}},
		{"2s", Wait{2 * time.Second, 8 * time.Second}},
		{"3", Wait{3 * time.Second, 12 * time.Second}},
		{"50ms:500ms", Wait{50 * time.Millisecond, 500 * time.Millisecond}},
		{"1:5", Wait{time.Second, 5 * time.Second}},
		{" 1s : 1s ", Wait{time.Second, time.Second}},
	}
	for _, c := range ok {
		got, err := ParseWait(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseWait(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"x", "1s:", ":1s", "-1s", "5s:1s", "1s:2s:3s", "1.5"} {
		if w, err := ParseWait(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseWait(%q) = %v, %v; want an ErrInvalid error", in, w, err)
		}
	}
}
