// Package testutil holds the small helpers reconf's tests share: a deadline-bounded poll
// (the way tests wait, instead of sleeping) and a log sink safe for concurrent writes.
package testutil
