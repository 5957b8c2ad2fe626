package resource

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reconf/reconf/template"
)

// fileConfig is one conf.d file as TOML sees it.
type fileConfig struct {
	Template *templateConfig `toml:"template"`
}

type templateConfig struct {
	Src            string       `toml:"src"`
	Dest           string       `toml:"dest"`
	Keys           []string     `toml:"keys"`
	Prefix         string       `toml:"prefix"`
	Mode           modeValue    `toml:"mode"`
	UID            *int         `toml:"uid"`
	GID            *int         `toml:"gid"`
	Owner          string       `toml:"owner"`
	Group          string       `toml:"group"`
	CheckCmd       string       `toml:"check_cmd"`
	ReloadCmd      string       `toml:"reload_cmd"`
	Wait           waitValue    `toml:"wait"`
	CheckTimeout   durationVal  `toml:"check_timeout"`
	ReloadTimeout  durationVal  `toml:"reload_timeout"`
	LeftDelimiter  string       `toml:"left_delimiter"`
	RightDelimiter string       `toml:"right_delimiter"`
	MissingKey     missingValue `toml:"missingkey"`
	Write          writeValue   `toml:"write"`
	Backend        string       `toml:"backend"`
}

// modeValue is `mode = "0644"`: a quoted string parsed as confd parses it (see parseMode).
// Errors raised here carry the TOML line.
type modeValue struct {
	mode os.FileMode
	set  bool
	text string // as written, for the mistyped-octal warning
}

func (m *modeValue) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("mode must be a quoted string such as \"0644\", not %T %v", v, v)
	}
	mode, err := parseMode(s)
	if err != nil {
		return err
	}
	m.mode, m.set, m.text = mode, true, s
	return nil
}

// parseMode reads a mode as confd does, strconv.ParseUint(s, 0, 32): "0644" and "0o644" are
// octal, "420" is decimal (0644), "0x1a4" is hex. The setuid, setgid and sticky bits (04000,
// 02000, 01000) map to Go's. A value beyond 07777 is refused: confd would chmod its low bits
// only, which is never what was meant.
func parseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid mode %q (want a number such as \"0644\"; a leading 0 makes it octal)", s)
	}
	if n > 0o7777 {
		if octalLooking(s) {
			return 0, fmt.Errorf("invalid mode %q: without a leading 0 it is decimal %d (%#o), beyond 07777; write \"0%s\" for octal", s, n, n, s)
		}
		return 0, fmt.Errorf("invalid mode %q: %#o is beyond 07777", s, n)
	}
	mode := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode, nil
}

// octalLooking reports whether s, a mode written without a leading 0, holds only octal digits
// (so that it may be an octal number that base 0 reads as decimal).
func octalLooking(s string) bool {
	if s == "" || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

// mistypedOctal reports whether s, parsed as confd does (decimal without a leading 0), looks
// like an octal mode typed without its 0: its digits are octal, the octal reading is a mode
// people write and the decimal one is not. "644" (decimal: 01204) is mistyped; "420" (decimal:
// 0644, written so on purpose) and "384" (0600) are not.
func mistypedOctal(s string) bool {
	if !octalLooking(s) {
		return false
	}
	oct, err := strconv.ParseUint(s, 8, 32)
	if err != nil || oct > 0o7777 {
		return false
	}
	dec, _ := strconv.ParseUint(s, 10, 32)
	return usualMode(oct) && !usualMode(dec)
}

// usualMode reports whether m looks like a mode people set: no bit beyond 07777, no write or
// execute without read in a class, and group and others get no more than the owner does, others
// no more than the group.
func usualMode(m uint64) bool {
	if m > 0o7777 {
		return false
	}
	u, g, o := (m>>6)&7, (m>>3)&7, m&7
	for _, c := range []uint64{u, g, o} {
		if c != 0 && c&4 == 0 {
			return false
		}
	}
	return g&^u == 0 && o&^g == 0
}

// warnedModes remembers the mistyped-octal warnings given (file and mode), to give each once.
var warnedModes sync.Map

// warnMode warns, once per file and value, that a mode without a leading 0 is decimal.
func warnMode(log *slog.Logger, file, data string, m modeValue) {
	if !m.set || !mistypedOctal(m.text) {
		return
	}
	if _, seen := warnedModes.LoadOrStore(file+"\x00"+m.text, true); seen {
		return
	}
	log.Warn(fmt.Sprintf("%s:%d: mode %q has no leading 0, so it is decimal, as in confd: the file gets mode %#o; write mode = \"0%s\" for octal",
		file, keyLine(data, "mode"), m.text, unixMode(m.mode), m.text))
}

// keyLine returns the line (from 1) of the first "key = …" in a TOML text, 0 if none.
func keyLine(data, key string) int {
	for i, line := range strings.Split(data, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), key)
		if ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
			return i + 1
		}
	}
	return 0
}

// waitValue is `wait = "min:max"` or a number of seconds.
type waitValue struct {
	w   Wait
	set bool
}

func (w *waitValue) UnmarshalTOML(v any) error {
	s, err := stringOrSeconds(v)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if w.w, err = ParseWait(s); err != nil {
		return err
	}
	w.set = true
	return nil
}

// durationVal is a Go duration string ("30s") or a number of seconds.
type durationVal struct {
	d   time.Duration
	set bool
}

func (d *durationVal) UnmarshalTOML(v any) error {
	s, err := stringOrSeconds(v)
	if err != nil {
		return err
	}
	if d.d, err = parseDuration(s); err != nil {
		return err
	}
	d.set = true
	return nil
}

func stringOrSeconds(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", fmt.Errorf("want a duration string such as \"2s\" or a number of seconds, not %T", v)
}

// missingValue is `missingkey = "error"` or "default".
type missingValue string

func (m *missingValue) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok || (s != "error" && s != "default" && s != "") {
		return fmt.Errorf("missingkey must be \"error\" or \"default\", not %v", v)
	}
	*m = missingValue(s)
	return nil
}

func load(d Defaults) ([]*Resource, error) {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	confd := filepath.Join(d.ConfDir, "conf.d")
	if _, err := os.Stat(confd); errors.Is(err, fs.ErrNotExist) {
		log.Warn("no conf.d folder; no template resources", "path", confd)
		return nil, nil
	}
	var (
		files []string
		errs  []error
	)
	_ = filepath.WalkDir(confd, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err) // an unreadable folder; the others still load
			return nil
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".toml") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	var out []*Resource
	byDest := map[string]string{}
	for _, f := range files {
		r, err := loadFile(d, confd, f, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := byDest[filepath.Clean(r.Dest)]; dup {
			log.Warn("two template resources write the same dest", "dest", r.Dest, "file", f, "other", other)
		}
		byDest[filepath.Clean(r.Dest)] = f
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// loadFile reads one resource file. Errors start with the file's path; TOML errors carry the
// line.
func loadFile(d Defaults, confd, file string, log *slog.Logger) (*Resource, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: "+format, append([]any{file, ErrInvalid}, args...)...)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var fc fileConfig
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", file, ErrInvalid, err)
	}
	for _, k := range md.Undecoded() {
		log.Warn("unknown key in template resource; ignored", "file", file, "key", k.String())
	}
	tc := fc.Template
	if tc == nil {
		return nil, fail("no [template] table")
	}
	warnMode(log, file, string(data), tc.Mode)
	if tc.Src == "" {
		return nil, fail("template.src is required")
	}
	if tc.Dest == "" {
		return nil, fail("template.dest is required")
	}
	if err := checkBackend(d.Backends, tc.Backend); err != nil {
		return nil, fail("line %d: %w", keyLine(string(data), "backend"), err)
	}
	name, err := filepath.Rel(confd, file)
	if err != nil {
		name = filepath.Base(file)
	}
	r := &Resource{
		Name:          filepath.ToSlash(name),
		File:          file,
		Src:           tc.Src,
		Dest:          tc.Dest,
		Keys:          tc.Keys,
		Prefix:        cleanPrefix(tc.Prefix),
		Mode:          tc.Mode.mode,
		ModeSet:       tc.Mode.set,
		UID:           -1,
		GID:           -1,
		CheckCmd:      tc.CheckCmd,
		ReloadCmd:     tc.ReloadCmd,
		Wait:          d.Wait,
		CheckTimeout:  firstPositive(tc.CheckTimeout.d, d.CheckTimeout, DefaultCheckTimeout),
		ReloadTimeout: firstPositive(tc.ReloadTimeout.d, d.ReloadTimeout, DefaultReloadTimeout),
		Owner:         tc.Owner,
		Group:         tc.Group,
		LeftDelim:     tc.LeftDelimiter,
		RightDelim:    tc.RightDelimiter,
		MissingKey:    string(tc.MissingKey),
		WriteMode:     WriteMode(tc.Write),
	}
	if tc.Backend != DefaultBackend {
		r.Backend = tc.Backend
	}
	if d.Prefix != "" {
		r.Prefix = cleanPrefix(d.Prefix)
	}
	if tc.Wait.set {
		r.Wait = tc.Wait.w
	}
	switch {
	case tc.UID != nil:
		r.UID = *tc.UID
	case tc.Owner != "":
		if r.UID, err = lookupID(tc.Owner, false); err != nil {
			return nil, fail("template.owner: %w", err)
		}
	}
	switch {
	case tc.GID != nil:
		r.GID = *tc.GID
	case tc.Group != "":
		if r.GID, err = lookupID(tc.Group, true); err != nil {
			return nil, fail("template.group: %w", err)
		}
	}
	if r.UID < -1 || r.GID < -1 {
		return nil, fail("uid and gid must not be negative")
	}
	for _, c := range []struct{ key, cmd string }{{"check_cmd", r.CheckCmd}, {"reload_cmd", r.ReloadCmd}} {
		if _, err := expandCommand(c.cmd, "", ""); err != nil {
			return nil, fail("template.%s: %w", c.key, err)
		}
	}
	tmpl, err := template.Parse(template.Config{
		Resource:        r.Name,
		Dir:             filepath.Join(d.ConfDir, "templates"),
		Src:             r.Src,
		LeftDelim:       r.LeftDelim,
		RightDelim:      r.RightDelim,
		MissingKeyError: r.MissingKey == "error",
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r.Tmpl = tmpl
	return r, nil
}

// DefaultBackend is the name a resource may give the global backend (as leaving backend out
// does).
const DefaultBackend = "default"

// checkBackend reports an error when a resource names a backend that is neither the default
// nor one of known.
func checkBackend(known []string, name string) error {
	if name == "" || name == DefaultBackend || slices.Contains(known, name) {
		return nil
	}
	return fmt.Errorf("template.backend: %w", UnknownBackend(name, known))
}

// UnknownBackend is the error for a resource naming backend name, which is neither the
// default nor one of known (the other backends' names, sorted).
func UnknownBackend(name string, known []string) error {
	return fmt.Errorf("unknown backend %q (known: %s)", name,
		strings.Join(append([]string{DefaultBackend}, known...), ", "))
}

// cleanPrefix adds the leading '/' confd adds and cleans the path; "" is "/".
func cleanPrefix(p string) string { return path.Clean("/" + p) }

// joinKey is a key of the resource as the backend reads it.
func joinKey(prefix, key string) string { return path.Join(prefix, key) }

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// lookupID resolves a user (or group) name, or takes a numeric id as it is.
func lookupID(name string, group bool) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	var id string
	if group {
		g, err := user.LookupGroup(name)
		if err != nil {
			return -1, err
		}
		id = g.Gid
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return -1, err
		}
		id = u.Uid
	}
	return strconv.Atoi(id)
}
