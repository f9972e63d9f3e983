package config

import (
	"strconv"

	"github.com/spf13/pflag"
)

// Flags are the command-line overrides of settings, the top layer of the
// precedence. Bind them with BindFlags and Apply them to a loaded Config.
type Flags struct {
	fs          *pflag.FlagSet
	APIURL      string
	APIKey      string
	BatchSize   int
	CaptureMode string
}

// BindFlags adds --api-url, --api-key, --batch-size and --capture-mode to
// fs. ship_interval has no flag: only monitors read it, from the file or
// the environment.
func BindFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.APIURL, "api-url", "", "Kilometers API base `URL` (overrides "+EnvVar(KeyAPIURL)+")")
	fs.StringVar(&f.APIKey, "api-key", "", "API `key` (overrides "+EnvVar(KeyAPIKey)+"; prefer the variable, argv is visible to other users)")
	fs.IntVar(&f.BatchSize, "batch-size", 0, "events per batch shipped to the API")
	fs.StringVar(&f.CaptureMode, "capture-mode", "", "what of payloads leaves the machine: full, redacted or metadata")
	return f
}

// Apply sets every flag the user gave on c and validates the result.
func (f *Flags) Apply(c *Config) error {
	set := func(name, key, v string) error {
		if f.fs == nil || !f.fs.Changed(name) {
			return nil
		}
		return c.Set(key, v, SourceFlag)
	}
	for _, x := range [][3]string{
		{"api-url", KeyAPIURL, f.APIURL},
		{"api-key", KeyAPIKey, f.APIKey},
		{"batch-size", KeyBatchSize, strconv.Itoa(f.BatchSize)},
		{"capture-mode", KeyCaptureMode, f.CaptureMode},
	} {
		if err := set(x[0], x[1], x[2]); err != nil {
			return err
		}
	}
	return c.Validate()
}
