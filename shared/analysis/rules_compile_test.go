package analysis

import "testing"

// The rules' regexps compile on first use, so a bad pattern would only
// panic on the first text that reaches it: compile every one here.
func TestEveryRuleCompiles(t *testing.T) {
	rules := append([]*rule{criticalPaths, sensitivePaths, shellCommands, destructiveSQL,
		hiddenTags, overrides, concealment, fileRequests, exfilParams}, secretRules...)
	rules = append(rules, passwordRules...)
	for i, r := range rules {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("rule %d: %v", i, p)
				}
			}()
			if r.re() == nil {
				t.Errorf("rule %d: no regexp", i)
			}
		}()
	}
}
