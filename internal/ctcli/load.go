package ctcli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/consul-template/config"
	"github.com/hashicorp/hcl"
)

// The keys reconf adds to consul-template's template block.
const (
	keyCheckCommand = "check_command"
	keyCheckTimeout = "check_timeout"
)

// ext is reconf's extension keys of one template block.
type ext struct {
	checkCommand string
	checkTimeout time.Duration
}

// loadConfigs is cli.go's loadConfigs: defaults, then each path in order, then o (the command
// line's config) on top. exts are the command line's templates' extensions; the result's
// extensions line up with the result's templates.
func loadConfigs(paths []string, o *config.Config, oExts []ext) (*config.Config, []ext, error) {
	finalC := config.DefaultConfig()
	var exts []ext

	for _, path := range paths {
		c, cExts, err := fromPath(path)
		if err != nil {
			return nil, nil, err
		}

		finalC = finalC.Merge(c)
		exts = append(exts, cExts...)
	}

	finalC = finalC.Merge(o)
	exts = append(exts, oExts...)
	if o.TemplateErrFatal != nil {
		for _, tmpl := range *finalC.Templates {
			tmpl.ErrFatal = o.TemplateErrFatal
		}
	}
	finalC.Finalize()
	if n := len(*finalC.Templates); n != len(exts) {
		// Merge appends templates in order; anything else is a bug here, not the user's.
		return nil, nil, fmt.Errorf("ctcli: %d templates but %d sets of extension keys", n, len(exts))
	}
	return finalC, exts, nil
}

// fromPath is config.FromPath with reconf's extension keys: a file, or a folder whose files
// (recursively, filepath.Walk's lexical order, symlinked folders not followed) merge in order.
// Error texts are consul-template's.
func fromPath(path string) (*config.Config, []ext, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil, wrap(err, "missing file/folder: "+path)
	}

	stat, err := os.Stat(path)
	if err != nil {
		return nil, nil, wrap(err, "failed stating file: "+path)
	}

	if stat.Mode().IsDir() {
		if _, err := os.ReadDir(path); err != nil {
			return nil, nil, wrap(err, "failed listing dir: "+path)
		}

		var c *config.Config
		var exts []ext
		err = filepath.Walk(path, func(path string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if info.IsDir() {
				return nil
			}
			newConfig, newExts, err := fromFile(path)
			if err != nil {
				return err
			}
			c = c.Merge(newConfig)
			exts = append(exts, newExts...)
			return nil
		})
		if err != nil {
			return nil, nil, wrap(err, "walk error")
		}
		return c, exts, nil
	} else if stat.Mode().IsRegular() {
		return fromFile(path)
	}

	return nil, nil, fmt.Errorf("unknown filetype: %q", stat.Mode().String())
}

// fromFile is config.FromFile with reconf's extension keys.
func fromFile(path string) (*config.Config, []ext, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, wrap(err, "from file: "+path)
	}
	c, exts, err := parse(string(b))
	if err != nil {
		return nil, nil, wrap(err, "from file: "+path)
	}
	return c, exts, nil
}

// wrap formats as github.com/pkg/errors.Wrap does ("msg: err"), keeping err for errors.Is.
func wrap(err error, msg string) error {
	return fmt.Errorf("%s: %w", msg, err)
}

// parse is config.Parse with reconf's extension keys. When no template block holds one, s
// goes to config.Parse untouched. Otherwise s is decoded as config.Parse decodes it, the keys
// are taken out of each template block, and the rest is handed to config.Parse as JSON (HCL's
// decoder reads JSON, and gives back the same generic structure).
func parse(s string) (*config.Config, []ext, error) { return parseOpt(s, false) }

// parseOpt is parse; reencode sends s through the JSON path even without extension keys (tests
// hold that path to config.Parse's own result).
func parseOpt(s string, reencode bool) (*config.Config, []ext, error) {
	var shadow interface{}
	if err := hcl.Decode(&shadow, s); err != nil {
		_, err := config.Parse(s) // consul-template's own error text
		if err == nil {
			err = fmt.Errorf("error decoding config: %w", err)
		}
		return nil, nil, err
	}
	parsed, ok := shadow.(map[string]interface{})
	if !ok {
		c, err := config.Parse(s)
		return c, make([]ext, templateCount(c)), err
	}

	exts, found, err := pullExtensions(parsed)
	if err != nil {
		return nil, nil, err
	}
	if !found && !reencode {
		c, err := config.Parse(s)
		if err != nil {
			return nil, nil, err
		}
		return c, make([]ext, templateCount(c)), nil
	}

	b, err := json.Marshal(parsed)
	if err != nil {
		return nil, nil, fmt.Errorf("error re-encoding config: %w", err)
	}
	c, err := config.Parse(string(b))
	if err != nil {
		return nil, nil, err
	}
	if !found {
		exts = make([]ext, templateCount(c))
	}
	if n := templateCount(c); n != len(exts) {
		return nil, nil, fmt.Errorf("%s/%s: found %d template blocks but consul-template decoded %d templates",
			keyCheckCommand, keyCheckTimeout, len(exts), n)
	}
	return c, exts, nil
}

func templateCount(c *config.Config) int {
	if c == nil || c.Templates == nil {
		return 0
	}
	return len(*c.Templates)
}

// pullExtensions removes reconf's keys from every template block of parsed (in the shapes
// hcl.Decode gives: a list of blocks, or a single object) and returns them in block order,
// found telling whether any block held one.
func pullExtensions(parsed map[string]interface{}) (exts []ext, found bool, err error) {
	raw, ok := parsed["template"]
	if !ok {
		return nil, false, nil
	}
	var blocks []map[string]interface{}
	switch t := raw.(type) {
	case []map[string]interface{}:
		blocks = t
	case map[string]interface{}:
		blocks = []map[string]interface{}{t}
	case []interface{}:
		for _, v := range t {
			m, ok := v.(map[string]interface{})
			if !ok {
				// Not template blocks: leave it to consul-template's decoder to reject.
				return nil, false, nil
			}
			blocks = append(blocks, m)
		}
	default:
		return nil, false, nil
	}

	exts = make([]ext, len(blocks))
	for i, m := range blocks {
		if v, ok := m[keyCheckCommand]; ok {
			found = true
			delete(m, keyCheckCommand)
			s, ok := v.(string)
			if !ok {
				return nil, false, fmt.Errorf("template %d: %s: want a string, got %s", i+1, keyCheckCommand, describe(v))
			}
			exts[i].checkCommand = s
		}
		if v, ok := m[keyCheckTimeout]; ok {
			found = true
			delete(m, keyCheckTimeout)
			s, ok := v.(string)
			if !ok {
				return nil, false, fmt.Errorf("template %d: %s: want a duration string such as \"30s\", got %s", i+1, keyCheckTimeout, describe(v))
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, false, fmt.Errorf("template %d: %s: %w", i+1, keyCheckTimeout, err)
			}
			if d < 0 {
				return nil, false, fmt.Errorf("template %d: %s: %q is negative", i+1, keyCheckTimeout, s)
			}
			exts[i].checkTimeout = d
		}
	}
	return exts, found, nil
}

func describe(v interface{}) string {
	switch v.(type) {
	case []map[string]interface{}, map[string]interface{}:
		return "a block"
	case []interface{}:
		return "a list"
	}
	return fmt.Sprintf("%T %v", v, v)
}
