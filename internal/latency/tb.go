package main

import "github.com/reconf/reconf/internal/testservers"

// fakeTB is enough of testing.TB for internal/testservers outside a test: TempDir and Cleanup
// work, Fatal panics with a fatal value that run recovers, logs go to stderr.
type fakeTB = testservers.StandaloneTB

type fatal = testservers.Fatal

func newTB(name string) *fakeTB { return testservers.NewStandaloneTB(name) }
