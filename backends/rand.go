package backends

import "math/rand/v2"

func rand64() uint64 { return rand.Uint64() }
