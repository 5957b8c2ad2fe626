package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashBody is the destination's content for data version v: about 1 MB, every line naming
// the version, so that a partial or mixed file shows.
func crashBody(v int) []byte {
	if b, ok := crashBodies[v]; ok {
		return b
	}
	if len(crashBodies) > 4 {
		clear(crashBodies)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "begin %d\n", v)
	pad := strings.Repeat("x", 1000)
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&b, "line %d of version %d %s\n", i, v, pad)
	}
	fmt.Fprintf(&b, "end %d\n", v)
	crashBodies[v] = b.Bytes()
	return b.Bytes()
}

// crashBodies holds the last few crashBody results.
var crashBodies = map[int][]byte{}

// crashTemplate renders crashBody from the store's /version.
var crashTemplate = `{{$v := getv "/version"}}begin {{$v}}
{{range seq 1 1000}}line {{.}} of version {{$v}} ` + strings.Repeat("x", 1000) + `
{{end}}end {{$v}}
`

// crashCheck is the check_cmd: it marks its start and end beside the markers folder and sleeps
// 0–9 ms, chosen by the stage file's random suffix, in between.
const crashCheck = `#!/bin/sh
base=$(basename "$1")
: > "$2/start$base"
n=${1##*.conf}
sleep 0.00$((n % 10))
: > "$2/end$base"
`

// stageName matches the stage files reconf makes for app.conf.
var stageName = regexp.MustCompile(`^\.app\.conf[0-9]+$`)

// TestCrashSafety kills reconf (SIGKILL) at random moments while it renders a 1 MB file, over
// and over: before, during and after the stage write, the check and the rename. After every
// kill the destination must be the complete old or the complete new file; the next start must
// remove the stage file the killed one left (and say so), and nothing else.
func TestCrashSafety(t *testing.T) {
	renders := 1000
	if testing.Short() {
		renders = 150
	}
	dir := t.TempDir()
	confDir, out, data, marks := filepath.Join(dir, "etc"), filepath.Join(dir, "out"), filepath.Join(dir, "data"), filepath.Join(dir, "marks")
	for _, d := range []string{filepath.Join(confDir, "conf.d"), filepath.Join(confDir, "templates"), out, data, marks} {
		must(t, os.MkdirAll(d, 0o755))
	}
	dest, dataFile, check := filepath.Join(out, "app.conf"), filepath.Join(data, "data.yaml"), filepath.Join(dir, "check.sh")
	must(t, os.WriteFile(check, []byte(crashCheck), 0o755))
	must(t, os.WriteFile(filepath.Join(confDir, "templates", "app.tmpl"), []byte(crashTemplate), 0o644))
	must(t, os.WriteFile(filepath.Join(confDir, "conf.d", "app.toml"), []byte(fmt.Sprintf(
		"[template]\nsrc = \"app.tmpl\"\ndest = %q\nkeys = [\"/version\"]\ncheck_cmd = \"%s {{.src}} %s\"\n", dest, check, marks)), 0o644))
	// Files that look like stage files but are not app.conf's (or not reconf's) must stay.
	decoys := map[string]string{
		filepath.Join(out, ".app.conf"):             "no random part",
		filepath.Join(out, ".app.conf.bak"):         "not digits",
		filepath.Join(out, ".app.conf12a"):          "not only digits",
		filepath.Join(out, ".app.conf01"):           "a leading zero: not a number CreateTemp makes",
		filepath.Join(out, ".app.conf99999999999"):  "beyond uint32",
		filepath.Join(out, "app.conf123"):           "no dot",
		filepath.Join(out, ".other.conf123"):        "beside a file reconf does not manage",
		filepath.Join(data, ".app.conf123"):         "in a folder reconf writes nothing to",
		filepath.Join(confDir, "conf.d", ".app123"): "not a destination's pattern",
	}
	for p, why := range decoys {
		must(t, os.WriteFile(p, []byte(why), 0o644))
	}

	version := 0
	setVersion := func(v int) { // atomically, so the backend never reads half a file
		tmp := dataFile + ".tmp"
		must(t, os.WriteFile(tmp, []byte(fmt.Sprintf("version: %d\n", v)), 0o644))
		must(t, os.Rename(tmp, dataFile))
		version = v
	}
	args := append([]string{"-onetime", "-backend", "file", "-file", dataFile, "-confdir", confDir, "-log-level", "info"}, noConfig(t)...)
	// marksAtKill are the check's markers right after the last kill.
	marksAtKill := map[string]bool{}
	snapMarks := func() {
		clear(marksAtKill)
		ents, _ := os.ReadDir(marks)
		for _, e := range ents {
			marksAtKill[e.Name()] = true
		}
	}
	run := func(killAfter time.Duration) (killed bool, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = cleanEnv()
		var errb bytes.Buffer
		cmd.Stderr = &errb
		must(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if killAfter >= 0 {
			select {
			case err = <-done:
			case <-time.After(killAfter):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err = <-done
				// At once: the check_cmd it ran goes on for a few ms and marks its end.
				snapMarks()
			}
		} else {
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("reconf did not finish within 30s:\n%s", errb.String())
			}
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return true, errb.String()
			}
		}
		if err != nil {
			t.Fatalf("reconf: %v\n%s", err, errb.String())
		}
		return false, errb.String()
	}
	stages := func() []string {
		ents, err := os.ReadDir(out)
		must(t, err)
		var s []string
		for _, e := range ents {
			if stageName.MatchString(e.Name()) {
				if _, decoy := decoys[filepath.Join(out, e.Name())]; !decoy {
					s = append(s, filepath.Join(out, e.Name()))
				}
			}
		}
		return s
	}
	removedRE := regexp.MustCompile(`msg="removed a stage file left by an earlier run" resource=app.toml stage=(\S+)`)

	// The first render, then time a few whole runs to spread the kills over one.
	setVersion(1)
	if killed, stderr := run(-1); killed {
		t.Fatalf("first run killed:\n%s", stderr)
	}
	onDisk := 1
	var runTime time.Duration
	for v := 2; v <= 6; v++ {
		setVersion(v)
		start := time.Now()
		run(-1)
		runTime += time.Since(start)
		onDisk = v
	}
	runTime /= 5
	t.Logf("a whole -onetime run takes %v; kills land 0.2–1.2 times a run's time after the start", runTime)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	phases := map[string]int{}
	left := map[string]bool{} // stage files the killed runs left, not yet removed
	var kills, removed int
	start := time.Now()
	for version < renders {
		setVersion(version + 1)
		began := time.Now()
		killed, stderr := run(runTime/5 + time.Duration(rng.Int64N(int64(runTime))))
		if !killed { // follow the machine's pace: a whole run's time, smoothed
			runTime = (7*runTime + time.Since(began)) / 8
		}
		for _, m := range removedRE.FindAllStringSubmatch(stderr, -1) {
			p := strings.Trim(m[1], `"`)
			if !left[p] {
				t.Errorf("removed %s, which no killed run left", p)
			}
			delete(left, p)
			removed++
		}
		for p := range left {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				if !killed { // a killed run may die between the removal and its log line
					t.Errorf("%s was removed without a word:\n%s", p, stderr)
				}
				delete(left, p)
				removed++
			}
		}
		got, err := os.ReadFile(dest)
		must(t, err)
		switch {
		case bytes.Equal(got, crashBody(version)):
			onDisk = version
		case bytes.Equal(got, crashBody(onDisk)):
		default:
			t.Fatalf("after version %d (killed: %v) the destination is neither version %d nor %d complete: %d bytes, starting %q, ending %q",
				version, killed, onDisk, version, len(got), got[:min(len(got), 20)], got[max(0, len(got)-20):])
		}
		now := stages()
		if !killed {
			if len(now) > 0 {
				t.Fatalf("a run that finished left stage files %v:\n%s", now, stderr)
			}
			if onDisk != version {
				t.Fatalf("a run that finished did not write version %d:\n%s", version, stderr)
			}
			continue
		}
		kills++
		var fresh []string // the stage file this run left
		for _, s := range now {
			if !left[s] {
				fresh = append(fresh, s)
			}
		}
		if len(fresh) > 1 {
			t.Fatalf("one run left %d stage files: %v", len(fresh), fresh)
		}
		phase := "before the stage file (start, read, render)"
		switch {
		case onDisk == version:
			phase = "after the rename"
		case len(fresh) > 0:
			s := fresh[0]
			base := filepath.Base(s)
			fi, err := os.Stat(s)
			must(t, err)
			switch {
			case fi.Size() < int64(len(crashBody(version))):
				phase = "during the stage write"
			case !marksAtKill["start"+base]:
				phase = "after the stage write, before the check"
			case !marksAtKill["end"+base]:
				phase = "during the check"
			default:
				phase = "after the check, before the rename"
			}
		}
		phases[phase]++
		for _, s := range now {
			left[s] = true
		}
	}
	// A last run that is not killed cleans up whatever is left.
	setVersion(version + 1)
	_, stderr := run(-1)
	for _, m := range removedRE.FindAllStringSubmatch(stderr, -1) {
		delete(left, strings.Trim(m[1], `"`))
		removed++
	}
	if len(left) > 0 || len(stages()) > 0 {
		t.Errorf("stage files not removed: %v, left now %v", left, stages())
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, crashBody(version)) {
		t.Errorf("the last run did not write version %d", version)
	}
	for p, why := range decoys {
		if b, err := os.ReadFile(p); err != nil || string(b) != why {
			t.Errorf("%s (%s) was touched: %q, %v", p, why, b, err)
		}
	}
	var sb strings.Builder
	for _, p := range slices.Sorted(maps.Keys(phases)) {
		fmt.Fprintf(&sb, "\n  %4d %s", phases[p], p)
	}
	t.Logf("%d renders in %v, %d SIGKILLs, %d stage files left by them and removed at the next start; kills by phase:%s",
		version, time.Since(start).Round(time.Millisecond), kills, removed, sb.String())
	if kills < renders/3 {
		t.Errorf("only %d kills in %d renders", kills, renders)
	}
	for _, p := range []string{"before the stage file (start, read, render)", "during the check", "after the rename"} {
		if phases[p] == 0 && !testing.Short() {
			t.Errorf("no kill landed %s", p)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
