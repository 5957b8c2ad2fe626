package cluster

import (
	"strings"
	"testing"
)

// BenchmarkFailover runs the fail-over scenario once per store and reports, for each event,
// the time from the event until the first file and until every file showed a write made after
// it (metric names: <event>-first-s and <event>-all-s), and prints the whole table. It is slow
// (about a minute per store) and not repeated: b.N is ignored beyond the first run.
func BenchmarkFailover(b *testing.B) {
	for _, name := range stores {
		b.Run(name, func(b *testing.B) {
			var res []failover
			for range b.N {
				res = scenario(b, name)
			}
			var table strings.Builder
			for _, f := range res {
				table.WriteString("\n  " + f.String())
				slug := metricName(f.event)
				b.ReportMetric(f.first.Seconds(), slug+"-first-s")
				b.ReportMetric(f.all.Seconds(), slug+"-all-s")
			}
			b.Logf("%s cluster of 3, fail-over times:%s", name, table.String())
		})
	}
}

// metricName turns an event ("kill leader 2 (watched)") into a metric unit without spaces or
// member numbers ("kill-leader"), so that runs compare.
func metricName(event string) string {
	var words []string
	for _, w := range strings.Fields(event) {
		if strings.ContainsAny(w, "0123456789()") {
			continue
		}
		words = append(words, strings.Trim(w, ",:"))
	}
	return strings.Join(words, "-")
}
