// Package templatetest checks template.yaml against the repository: every
// function is built from an existing functions/<name> main package, every
// API route of docs/api.md is wired to the function that serves it, and the
// deploy-time contracts (migrations, rollback alarms, log retention,
// configuration variables) hold. The checks are in the package's tests.
package templatetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is the part of a SAM template the checks read.
type Template struct {
	Globals    map[string]map[string]any `yaml:"Globals"`
	Parameters map[string]map[string]any `yaml:"Parameters"`
	Resources  map[string]Resource       `yaml:"Resources"`
	Outputs    map[string]map[string]any `yaml:"Outputs"`
}

// Resource is one resource of a template.
type Resource struct {
	Type       string         `yaml:"Type"`
	Condition  string         `yaml:"Condition"`
	DependsOn  any            `yaml:"DependsOn"`
	Metadata   map[string]any `yaml:"Metadata"`
	Properties map[string]any `yaml:"Properties"`
}

// Load parses a CloudFormation/SAM template in YAML. Short-form intrinsic
// functions (!Ref, !GetAtt, !Sub...) become their long forms ({"Ref": x},
// {"Fn::GetAtt": [res, attr]}...), as CloudFormation reads them.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := longForm(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t Template
	if err := doc.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// longForm rewrites every node tagged with a CloudFormation short form into
// a one-key mapping.
func longForm(n *yaml.Node) error {
	for _, c := range n.Content {
		if err := longForm(c); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return nil
	}
	name := strings.TrimPrefix(n.Tag, "!")
	key := "Fn::" + name
	if name == "Ref" || name == "Condition" {
		key = name
	}
	value := *n
	value.Tag = ""
	switch {
	case value.Kind == yaml.ScalarNode:
		value.Tag = "!!str"
		if name == "GetAtt" { // !GetAtt Res.Attr.Path -> [Res, Attr.Path]
			res, attr, ok := strings.Cut(value.Value, ".")
			if !ok {
				return fmt.Errorf("line %d: !GetAtt %q has no attribute", n.Line, value.Value)
			}
			value = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: res},
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: attr},
			}}
		}
	case value.Kind == yaml.SequenceNode:
		value.Tag = "!!seq"
	case value.Kind == yaml.MappingNode:
		value.Tag = "!!map"
	}
	*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&value,
	}}
	return nil
}

// Ref returns the logical id v refers to when v is {"Ref": id}.
func Ref(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// RepoRoot finds the repository root (the folder holding go.mod) from the
// working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Functions returns the template's AWS::Serverless::Function resources.
func (t *Template) Functions() map[string]Resource {
	out := map[string]Resource{}
	for name, r := range t.Resources {
		if r.Type == "AWS::Serverless::Function" {
			out[name] = r
		}
	}
	return out
}

// FunctionProperty returns a function's property, falling back to
// Globals.Function as SAM does.
func (t *Template) FunctionProperty(r Resource, key string) any {
	if v, ok := r.Properties[key]; ok {
		return v
	}
	return t.Globals["Function"][key]
}

// FunctionEnv returns a function's environment variables: Globals merged
// with the function's own, as SAM does.
func (t *Template) FunctionEnv(r Resource) map[string]any {
	out := map[string]any{}
	for _, src := range []any{t.Globals["Function"]["Environment"], r.Properties["Environment"]} {
		env, _ := src.(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			out[k] = v
		}
	}
	return out
}

// DependsOnList lists the resources r depends on.
func (r Resource) DependsOnList() []string {
	switch d := r.DependsOn.(type) {
	case string:
		return []string{d}
	case []any:
		var out []string
		for _, x := range d {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
