package analysis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// DefinitionStore remembers, per server, a hash of each tool's definition so
// that a later session notices when a server changes a tool the user already
// trusted (a "rug pull"). The key is opaque (see DefinitionKey); the map is
// tool name -> hex SHA-256 of the tool's canonical definition.
//
// Implementations must tolerate several monitors of the same server running
// at once: the last Save wins, and a Load never sees half a Save.
type DefinitionStore interface {
	Load(ctx context.Context, key string) (defs map[string]string, found bool, err error)
	Save(ctx context.Context, key string, defs map[string]string) error
}

// DefinitionKey is the store key for a server: its name from the initialize
// handshake (empty until known) and the command that starts it. Both take
// part because one command can start different servers (a launcher like npx
// with different arguments) and one server can be started by different
// commands with different tools enabled.
func DefinitionKey(server string, command []string) string {
	b, _ := json.Marshal(struct {
		Server  string   `json:"server"`
		Command []string `json:"command"`
	}{server, command})
	return string(b)
}

// maxNamedTools bounds how many per-tool reasons one event carries: a list
// of 500 changed tools needs one line in the report, not 500.
const maxNamedTools = 20

// toolsListResult is the part of a tools/list response the analysis reads.
// Tools stay raw: each is hashed and scanned as a whole.
type toolsListResult struct {
	Result *struct {
		Tools      []json.RawMessage `json:"tools"`
		NextCursor string            `json:"nextCursor"`
	} `json:"result"`
}

// toolDefinition is what identifies a tool's behaviour to the model. Title
// and outputSchema are left out of the hash: the former is display text, the
// latter describes what comes back, and changing either is not a way to
// instruct the model before the call. (They are still scanned for
// poisoning.)
type toolDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Annotations json.RawMessage `json:"annotations"`
}

// hashTool returns the hex SHA-256 of the canonical JSON of a tool's
// description, input schema and annotations. Canonical: decoded and
// re-encoded, so key order and whitespace do not count as a change.
func hashTool(d toolDefinition) (string, error) {
	canon := func(raw json.RawMessage) (any, error) {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, nil
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		err := dec.Decode(&v)
		return v, err
	}
	schema, err := canon(d.InputSchema)
	if err != nil {
		return "", err
	}
	ann, err := canon(d.Annotations)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(map[string]any{
		"description": d.Description,
		"inputSchema": schema,
		"annotations": ann,
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// checkToolsList scans a tools/list response for poisoned tools and compares
// its definitions with what this server showed before.
func (s *Session) checkToolsList(src []byte) {
	var msg toolsListResult
	if err := json.Unmarshal(src, &msg); err != nil || msg.Result == nil {
		// Capped or malformed: still look for poisoning in what there is,
		// without tool names, and leave the definitions alone (a partial
		// list would read as removals).
		s.text = extractText(s.text[:0], src, s.opts.ScanLimit)
		var ascii bool
		s.lower, ascii = lowerText(s.lower, s.text)
		if signals := instructionSignals(nil, lowerRules.scan(s.lower), s.text, s.lower, ascii, true); len(signals) > 0 {
			s.add(strings.TrimSuffix(ReasonToolPoisoning, ":"), weightPoisoning)
			for _, r := range signals {
				s.add(r, weightExplainsReason)
			}
		}
		return
	}

	current := make(map[string]string, len(msg.Result.Tools))
	var poisoned []string
	var signals []string
	for _, raw := range msg.Result.Tools {
		var d toolDefinition
		if err := json.Unmarshal(raw, &d); err != nil {
			continue
		}
		name := safeName(d.Name)
		if h, err := hashTool(d); err == nil {
			current[d.Name] = h
		}
		// Scan the whole tool object: description, title, every string in
		// the schemas (nested property descriptions, defaults, enums).
		s.text = extractText(s.text[:0], raw, s.opts.ScanLimit)
		var ascii bool
		s.lower, ascii = lowerText(s.lower, s.text)
		n := len(signals)
		signals = instructionSignals(signals, lowerRules.scan(s.lower), s.text, s.lower, ascii, true)
		if len(signals) > n {
			poisoned = append(poisoned, name)
		}
	}
	for i, name := range poisoned {
		if i == maxNamedTools {
			s.add(ReasonToolPoisoning+"more", weightExplainsReason)
			break
		}
		s.add(ReasonToolPoisoning+name, weightPoisoning)
	}
	for _, r := range signals {
		s.add(r, weightExplainsReason)
	}

	// A paginated list is compared once it is whole.
	if msg.Result.NextCursor != "" {
		if s.pages == nil {
			s.pages = make(map[string]string)
		}
		for k, v := range current {
			s.pages[k] = v
		}
		return
	}
	if s.pages != nil {
		for k, v := range s.pages {
			if _, ok := current[k]; !ok {
				current[k] = v
			}
		}
		s.pages = nil
	}
	s.compareDefinitions(current)
}

// compareDefinitions flags changes against the definitions this session saw
// last, or, on the session's first list, against the store; then remembers
// the new ones. Trust on first use: a server seen for the first time is not
// flagged, and after a change is reported the new definitions become the
// reference, so each change is reported once.
func (s *Session) compareDefinitions(current map[string]string) {
	key := DefinitionKey(s.serverName, s.command)
	baseline, known := s.known, s.known != nil
	if !known && s.opts.Definitions != nil {
		defs, found, err := s.opts.Definitions.Load(context.Background(), key)
		if err != nil {
			s.storeError(err)
		} else if found {
			baseline, known = defs, true
			s.savedKey, s.savedDefs = key, defs
		}
	}
	s.known = current
	if known {
		s.diffDefinitions(baseline, current)
	}
	// Write only what the store does not already hold: usually one write
	// per server ever, one more per change.
	if s.opts.Definitions == nil || (key == s.savedKey && mapsEqual(s.savedDefs, current)) {
		return
	}
	if err := s.opts.Definitions.Save(context.Background(), key, current); err != nil {
		s.storeError(err)
		return
	}
	s.savedKey, s.savedDefs = key, current
}

func (s *Session) diffDefinitions(before, after map[string]string) {
	var changed, added, removed []string
	for name, h := range after {
		old, ok := before[name]
		switch {
		case !ok:
			added = append(added, name)
		case old != h:
			changed = append(changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			removed = append(removed, name)
		}
	}
	s.addNamed(ReasonDefinitionChanged, changed, weightDefChanged)
	s.addNamed(ReasonDefinitionAdded, added, weightDefAdded)
	s.addNamed(ReasonDefinitionRemoved, removed, weightDefRemoved)
}

// addNamed adds prefix+name for each name, sorted so reasons are stable.
func (s *Session) addNamed(prefix string, names []string, weight int) {
	slices.Sort(names)
	for i, name := range names {
		if i == maxNamedTools {
			s.add(prefix+"more", 0)
			return
		}
		s.add(prefix+safeName(name), weight)
	}
}

func (s *Session) storeError(err error) {
	if s.opts.OnStoreError != nil {
		s.opts.OnStoreError(err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// safeName makes a tool name fit for a reason string: MCP names are short
// and plain, but a hostile server chooses its own, so cap the length and
// replace anything outside [A-Za-z0-9_.-/].
func safeName(name string) string {
	const maxLen = 64
	if name == "" {
		return "_"
	}
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= maxLen {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9',
			r == '_', r == '-', r == '.', r == '/':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
