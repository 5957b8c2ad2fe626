package resource

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(n int, change map[int]string) string {
		var sb strings.Builder
		for i := 1; i <= n; i++ {
			if s, ok := change[i]; ok {
				sb.WriteString(s)
				continue
			}
			fmt.Fprintf(&sb, "l%d\n", i)
		}
		return sb.String()
	}
	cases := []struct{ name, old, new, want string }{
		{"equal", "a\n", "a\n", ""},
		{"new file", "", "a\nb\n", "@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"emptied", "a\n", "", "@@ -1 +0,0 @@\n-a\n"},
		{"no newline", "a\nb", "a\nb\n", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"insert first", "b\nc\n", "a\nb\nc\n", "@@ -1,2 +1,3 @@\n+a\n b\n c\n"},
		{"two hunks", lines(20, nil), lines(20, map[int]string{2: "X\n", 18: ""}),
			"@@ -1,5 +1,5 @@\n l1\n-l2\n+X\n l3\n l4\n l5\n@@ -15,6 +15,5 @@\n l15\n l16\n l17\n-l18\n l19\n l20\n"},
		{"merged hunk", lines(10, nil), lines(10, map[int]string{2: "X\n", 8: "Y\n"}),
			"@@ -1,10 +1,10 @@\n l1\n-l2\n+X\n l3\n l4\n l5\n l6\n l7\n-l8\n+Y\n l9\n l10\n"},
	}
	for _, c := range cases {
		got := unifiedDiff("a", "b", []byte(c.old), []byte(c.new))
		if c.want != "" {
			c.want = "--- a\n+++ b\n" + c.want
		}
		if got != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

func TestUnifiedDiffLarge(t *testing.T) {
	var a, b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	d := unifiedDiff("x", "y", []byte(a.String()), []byte(b.String()))
	if !strings.Contains(d, "@@ -1,5000 +1,5000 @@\n-a0\n") || strings.Count(d, "\n+b") != 5000 {
		t.Errorf("large diff malformed (%d bytes)", len(d))
	}
}

// TestMyersMatchesLCS checks the edit scripts on many small pairs: they must turn a into b and
// be as short as the longest common subsequence allows.
func TestMyersMatchesLCS(t *testing.T) {
	words := []string{"a\n", "b\n", "c\n"}
	seq := func(n, seed int) []string {
		var out []string
		for i := range n {
			out = append(out, words[(seed>>(2*i))%3])
		}
		return out
	}
	for na := 0; na <= 5; na++ {
		for nb := 0; nb <= 5; nb++ {
			for seed := 0; seed < 200; seed += 7 {
				a, b := seq(na, seed), seq(nb, seed*13+5)
				ops := diffLines(a, b)
				var ra, rb []string
				edits := 0
				for _, o := range ops {
					if o.kind != '+' {
						ra = append(ra, o.text)
					}
					if o.kind != '-' {
						rb = append(rb, o.text)
					}
					if o.kind != ' ' {
						edits++
					}
				}
				if strings.Join(ra, "") != strings.Join(a, "") || strings.Join(rb, "") != strings.Join(b, "") {
					t.Fatalf("%q -> %q: script %v does not reproduce both sides", a, b, ops)
				}
				if want := na + nb - 2*lcsLen(a, b); edits != want {
					t.Fatalf("%q -> %q: %d edits, want %d", a, b, edits, want)
				}
			}
		}
	}
}

func lcsLen(a, b []string) int {
	t := make([][]int, len(a)+1)
	for i := range t {
		t[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	return t[0][0]
}
