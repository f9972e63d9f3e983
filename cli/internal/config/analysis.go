package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kilometers-ai/kilometers/shared/analysis"
)

// Keys of the analysis settings (cost model and prices). They follow the
// same precedence as every other setting; docs/analysis.md describes them.
const (
	KeyCostModel = "cost_model"
	KeyCostPerKB = "cost_per_kb"
	// KeyUSDPerMillionTokens prices the tokens a result adds to the
	// model's context under the per-token model.
	KeyUSDPerMillionTokens = "usd_per_million_tokens"
	// KeyUSDPerMillionOutputTokens prices tools/call arguments, which the
	// model wrote, under the per-token model.
	KeyUSDPerMillionOutputTokens = "usd_per_million_output_tokens"
)

// analysisKeys are the analysis settings in display order, appended to Keys.
var analysisKeys = []string{KeyCostModel, KeyCostPerKB, KeyUSDPerMillionTokens, KeyUSDPerMillionOutputTokens}

// maxPrice bounds every price setting: far above any real price, low enough
// to catch a value typed in the wrong unit (cents, or per token).
const maxPrice = 1e6

// AnalysisSettings are the effective analysis settings.
type AnalysisSettings struct {
	// CostModel is analysis.CostPerKB or analysis.CostPerToken.
	CostModel                 analysis.CostModel
	CostPerKB                 float64
	USDPerMillionTokens       float64
	USDPerMillionOutputTokens float64
}

// AnalysisFile is the on-disk form of the analysis settings, embedded in
// File. Prices are pointers because zero is a real price (free), not "unset".
type AnalysisFile struct {
	CostModel                 string   `json:"cost_model,omitempty"`
	CostPerKB                 *float64 `json:"cost_per_kb,omitempty"`
	USDPerMillionTokens       *float64 `json:"usd_per_million_tokens,omitempty"`
	USDPerMillionOutputTokens *float64 `json:"usd_per_million_output_tokens,omitempty"`
}

func defaultAnalysis() AnalysisSettings {
	d := analysis.DefaultOptions()
	return AnalysisSettings{
		CostModel:                 d.CostModel,
		CostPerKB:                 d.CostPerKB,
		USDPerMillionTokens:       d.InputPricePerMTok,
		USDPerMillionOutputTokens: d.OutputPricePerMTok,
	}
}

// AnalysisOptions returns the analysis options of the effective
// configuration. Definitions and OnStoreError are left for the caller, which
// knows the home and the logger.
func (c *Config) AnalysisOptions() analysis.Options {
	o := analysis.DefaultOptions()
	a := c.Analysis
	if a == (AnalysisSettings{}) {
		// A Config not made by Defaults or Load: the documented defaults,
		// not a free per-KB model.
		return o
	}
	o.CostModel = a.CostModel
	o.CostPerKB = a.CostPerKB
	o.InputPricePerMTok = a.USDPerMillionTokens
	o.OutputPricePerMTok = a.USDPerMillionOutputTokens
	return o
}

// parseCostModel accepts the model names of the analysis package and the
// plainer "size" and "tokens".
func parseCostModel(v string) (analysis.CostModel, error) {
	switch strings.ToLower(v) {
	case string(analysis.CostPerKB), "size", "per-kb", "perkb":
		return analysis.CostPerKB, nil
	case string(analysis.CostPerToken), "tokens", "per-token", "pertoken":
		return analysis.CostPerToken, nil
	}
	return "", fmt.Errorf("%s: must be %s (size) or %s (tokens), got %q", KeyCostModel, analysis.CostPerKB, analysis.CostPerToken, v)
}

func parsePrice(key, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want a price in dollars such as 0.001, got %q", key, v)
	}
	if err := checkPrice(key, f); err != nil {
		return 0, err
	}
	return f, nil
}

func checkPrice(key string, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxPrice {
		return fmt.Errorf("%s: must be a dollar amount from 0 to %g, got %g", key, float64(maxPrice), f)
	}
	return nil
}

// setAnalysis parses v into an analysis key; it reports unknown keys, as
// Set does for the others.
func (c *Config) setAnalysis(key, v string) error {
	switch key {
	case KeyCostModel:
		m, err := parseCostModel(v)
		if err != nil {
			return err
		}
		c.Analysis.CostModel = m
	case KeyCostPerKB, KeyUSDPerMillionTokens, KeyUSDPerMillionOutputTokens:
		f, err := parsePrice(key, v)
		if err != nil {
			return err
		}
		*c.price(key) = f
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return nil
}

func (c *Config) price(key string) *float64 {
	switch key {
	case KeyCostPerKB:
		return &c.Analysis.CostPerKB
	case KeyUSDPerMillionTokens:
		return &c.Analysis.USDPerMillionTokens
	case KeyUSDPerMillionOutputTokens:
		return &c.Analysis.USDPerMillionOutputTokens
	}
	return nil
}

func (f *AnalysisFile) price(key string) **float64 {
	switch key {
	case KeyCostPerKB:
		return &f.CostPerKB
	case KeyUSDPerMillionTokens:
		return &f.USDPerMillionTokens
	case KeyUSDPerMillionOutputTokens:
		return &f.USDPerMillionOutputTokens
	}
	return nil
}

// applyAnalysisFile sets the analysis values f holds, with source file.
func (c *Config) applyAnalysisFile(f AnalysisFile) error {
	if f.CostModel != "" {
		if err := c.Set(KeyCostModel, f.CostModel, SourceFile); err != nil {
			return err
		}
	}
	for _, k := range analysisKeys[1:] {
		if p := *f.price(k); p != nil {
			if err := c.Set(k, strconv.FormatFloat(*p, 'g', -1, 64), SourceFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAnalysis checks one analysis setting, including one set on the
// struct directly.
func (c *Config) checkAnalysis(key string) error {
	switch key {
	case KeyCostModel:
		_, err := parseCostModel(string(c.Analysis.CostModel))
		return err
	case KeyCostPerKB, KeyUSDPerMillionTokens, KeyUSDPerMillionOutputTokens:
		return checkPrice(key, *c.price(key))
	}
	return fmt.Errorf("unknown setting %q", key)
}

// analysisValue returns an analysis key's value as text, "" for other keys.
func (c *Config) analysisValue(key string) string {
	switch key {
	case KeyCostModel:
		return string(c.Analysis.CostModel)
	case KeyCostPerKB, KeyUSDPerMillionTokens, KeyUSDPerMillionOutputTokens:
		return strconv.FormatFloat(*c.price(key), 'g', -1, 64)
	}
	return ""
}

// analysisFile returns the analysis settings that did not come from
// defaults, in file form.
func (c *Config) analysisFile() AnalysisFile {
	var f AnalysisFile
	set := func(k string) bool { return c.Sources[k] != SourceDefault && c.Sources[k] != "" }
	if set(KeyCostModel) {
		f.CostModel = string(c.Analysis.CostModel)
	}
	for _, k := range analysisKeys[1:] {
		if set(k) {
			v := *c.price(k)
			*f.price(k) = &v
		}
	}
	return f
}
