package register

import (
	"encoding/json"
	"os"
)

// helperEnv makes the test binary stand in for `reconf register`: it holds the JSON-encoded
// arguments of Main.
const helperEnv = "RECONF_REGISTER_HELPER_ARGS"

// helperMain runs Main when the test binary was started as the helper, and reports whether it
// was (it then exits the process).
func helperMain() bool {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return false
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Stderr.WriteString("bad " + helperEnv + ": " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Exit(Main(args))
	return true
}
