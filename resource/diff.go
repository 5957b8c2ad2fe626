package resource

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change.
const diffContext = 3

// unifiedDiff returns a unified diff of old → new with the given file names, or "" when the
// contents are equal.
func unifiedDiff(oldName, newName string, old, new []byte) string {
	return diffText(oldName, newName, old, new, false)
}

// redactedDiff is unifiedDiff for contents that hold secrets: each hunk is its header (the
// changed lines' numbers, without context) and a count of the lines removed and added, never
// a line itself.
func redactedDiff(oldName, newName string, old, new []byte) string {
	return diffText(oldName, newName, old, new, true)
}

// diffText writes the diff of old → new, its lines or (redact) only their numbers and counts.
func diffText(oldName, newName string, old, new []byte, redact bool) string {
	around := diffContext
	if redact {
		around = 0
	}
	a, b := splitLines(string(old)), splitLines(string(new))
	ops := diffLines(a, b)
	changed := false
	for _, o := range ops {
		if o.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	// aAt[i], bAt[i]: lines of a and b before ops[i].
	aAt, bAt := make([]int, len(ops)+1), make([]int, len(ops)+1)
	for i, o := range ops {
		aAt[i+1], bAt[i+1] = aAt[i], bAt[i]
		if o.kind != '+' {
			aAt[i+1]++
		}
		if o.kind != '-' {
			bAt[i+1]++
		}
	}
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-around)
		end := i // one past the last change in this hunk
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j + 1
			} else if j-end >= 2*around {
				break
			}
		}
		stop := min(len(ops), end+around)
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n",
			hunkRange(aAt[start], aAt[stop]-aAt[start]), hunkRange(bAt[start], bAt[stop]-bAt[start]))
		if redact {
			removed, added := aAt[stop]-aAt[start], bAt[stop]-bAt[start]
			fmt.Fprintf(&sb, "# %s removed, %s added (not shown: the resource reads secrets)\n",
				plural(removed, "line"), plural(added, "line"))
			i = stop
			continue
		}
		for _, o := range ops[start:stop] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.text)
			if !strings.HasSuffix(o.text, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = stop
	}
	return sb.String()
}

// hunkRange formats a hunk's side as GNU diff does: "start,count", ",1" left out, and an
// empty side numbered by the line before it.
func hunkRange(before, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, count)
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	text string
}

// splitLines splits s after each '\n'; a last line without one is kept as it is.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffLines returns the edit script from a to b: common prefix and suffix are matched
// directly, the middle by Myers' shortest edit script (or, when it needs more than
// maxDiffEdits edits, replaced whole).
func diffLines(a, b []string) []diffOp {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	ops := make([]diffOp, 0, len(a)+len(b))
	for _, l := range a[:p] {
		ops = append(ops, diffOp{' ', l})
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	mid := myers(ma, mb)
	if mid == nil {
		for _, l := range ma {
			mid = append(mid, diffOp{'-', l})
		}
		for _, l := range mb {
			mid = append(mid, diffOp{'+', l})
		}
	}
	ops = append(ops, deletionsFirst(mid)...)
	for _, l := range a[len(a)-s:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

// maxDiffEdits bounds the work (and the D² memory) of myers.
const maxDiffEdits = 2000

// myers returns a shortest edit script from a to b, or nil when a and b differ by more than
// maxDiffEdits lines (or are both empty).
func myers(a, b []string) []diffOp {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	limit := min(n+m, maxDiffEdits)
	off := limit + 1
	v := make([]int32, 2*limit+3) // v[off+k]: furthest x on diagonal k
	var trace [][]int32           // trace[d]: v[off-d-1 : off+d+2] before step d
	for d := 0; d <= limit; d++ {
		trace = append(trace, append([]int32(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1]) // down: insert b[y]
			} else {
				x = int(v[off+k-1]) + 1 // right: delete a[x]
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				return backtrack(a, b, trace)
			}
		}
	}
	return nil
}

// backtrack walks trace back from (len(a), len(b)) and returns the edit script in order.
func backtrack(a, b []string, trace [][]int32) []diffOp {
	x, y := len(a), len(b)
	var rev []diffOp
	for d := len(trace) - 1; d > 0; d-- {
		vd := trace[d] // before step d: index k+d+1
		at := func(k int) int { return int(vd[k+d+1]) }
		k := x - y
		prevK := k - 1
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		}
		prevX := at(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x, y = x-1, y-1
			rev = append(rev, diffOp{' ', a[x]})
		}
		if x == prevX {
			rev = append(rev, diffOp{'+', b[prevY]})
		} else {
			rev = append(rev, diffOp{'-', a[prevX]})
		}
		x, y = prevX, prevY
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, diffOp{' ', a[x]})
	}
	ops := make([]diffOp, len(rev))
	for i, o := range rev {
		ops[len(rev)-1-i] = o
	}
	return ops
}

// deletionsFirst orders each run of changes as diff(1) prints it: deletions, then insertions.
func deletionsFirst(ops []diffOp) []diffOp {
	out := make([]diffOp, 0, len(ops))
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			out = append(out, ops[i])
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		for _, o := range ops[i:j] {
			if o.kind == '-' {
				out = append(out, o)
			}
		}
		for _, o := range ops[i:j] {
			if o.kind == '+' {
				out = append(out, o)
			}
		}
		i = j
	}
	return out
}

// plural is "1 line", "2 lines".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
