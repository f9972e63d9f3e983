package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Problem is a setting Load could not use, or a key it does not know. Load
// never fails on one: the setting keeps what the layers below gave it (the
// default, usually), so the monitor always records. Commands call Check with
// the settings they use and refuse only those.
type Problem struct {
	// Key is the setting; for an unknown key, the key as written; "" when
	// the file as a whole could not be used.
	Key string
	// Where says where the value was written: file:line:column, or the
	// environment variable.
	Where string
	// Msg says what is wrong.
	Msg string
	// Unknown is set for a key no setting has.
	Unknown bool
	// Using says what stands in for the value, for people.
	Using string
}

func (p Problem) Error() string { return p.Where + ": " + p.Msg }

// Warning is the problem and what stands in for it, in one line.
func (p Problem) Warning() string {
	if p.Using == "" {
		return p.Error()
	}
	return p.Error() + "; using " + p.Using
}

// Check returns, as an error, the first problem with one of keys, or with
// the config file as a whole when keys are given. Unknown keys are only
// warnings (Warnings).
func (c *Config) Check(keys ...string) error {
	for _, p := range c.Problems {
		if p.fails(keys) {
			return p
		}
	}
	return nil
}

func (p Problem) fails(keys []string) bool {
	if p.Unknown || len(keys) == 0 {
		return false
	}
	return p.Key == "" || slices.Contains(keys, p.Key)
}

// Warnings are the problems that Check(keys...) does not fail on, as lines
// for stderr; with no keys, every problem (what the monitor worked around).
func (c *Config) Warnings(keys ...string) []string {
	var out []string
	for _, p := range c.Problems {
		if !p.fails(keys) {
			out = append(out, p.Warning())
		}
	}
	return out
}

// ReadKeys are the settings a command that reads recorded events uses:
// where the API is, unless it reads the local store (--local). A bad
// setting of anything else does not stop it.
func ReadKeys(local bool) []string {
	if local {
		return nil
	}
	return []string{KeyAPIURL, KeyAPIKey}
}

// Warn writes the Warnings(keys...) to w, one line each, prefixed with who
// says so.
func (c *Config) Warn(w io.Writer, prefix string, keys ...string) {
	for _, line := range c.Warnings(keys...) {
		fmt.Fprintf(w, "%s: warning: %s\n", prefix, line)
	}
}

// problem reports whether key has a problem: its value is a stand-in.
func (c *Config) problem(key string) bool {
	for _, p := range c.Problems {
		if !p.Unknown && (p.Key == "" || p.Key == key) {
			return true
		}
	}
	return false
}

// setChecked sets key from one layer and checks it; a bad value leaves the
// setting as the layers below made it and is recorded as a Problem. A good
// one clears the key's problems from lower layers.
func (c *Config) setChecked(key, v string, src Source, where string) {
	saved, savedSrc := *c, c.Sources[key]
	err := c.Set(key, v, src)
	if err == nil {
		err = c.check(key)
	}
	if err == nil {
		c.Problems = slices.DeleteFunc(c.Problems, func(p Problem) bool { return !p.Unknown && p.Key == key })
		return
	}
	sources, problems := c.Sources, c.Problems
	*c = saved
	c.Sources, c.Problems = sources, problems
	c.Sources[key] = savedSrc
	c.Problems = append(c.Problems, Problem{Key: key, Where: where, Msg: err.Error(), Using: c.standIn(key)})
}

// standIn says what a setting with a bad value works with instead.
func (c *Config) standIn(key string) string {
	switch key {
	case KeyRetentionDays:
		return "no age limit until it is fixed (nothing is deleted for its age)"
	case KeyRetentionBytes:
		return "no size limit until it is fixed (nothing is deleted for the store's size)"
	}
	v := c.Value(key)
	if v == "" {
		v = "none"
	}
	if c.Sources[key] == SourceDefault {
		return v + " (the default)"
	}
	return fmt.Sprintf("%s (from %s)", v, c.Sources[key])
}

// loadFile applies the config file, key by key, recording what it cannot
// use. A file that is not one JSON object is used not at all.
func (c *Config) loadFile() {
	b, err := os.ReadFile(c.File)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	whole := "the defaults and the environment instead of the file"
	if err != nil {
		c.Problems = append(c.Problems, Problem{Where: c.File, Msg: "cannot read the config file: " + pathErr(err), Using: whole})
		return
	}
	entries, err := parseFile(b)
	if err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			c.Problems = append(c.Problems, Problem{Where: position(c.File, b, pe.off), Msg: pe.msg, Using: whole})
			return
		}
		c.Problems = append(c.Problems, Problem{Where: c.File, Msg: err.Error(), Using: whole})
		return
	}
	inFile := map[string]bool{}
	for _, e := range entries {
		inFile[e.key] = true
	}
	for _, e := range entries {
		if k, ok := oldKeys[e.key]; ok {
			if inFile[k] {
				continue // the current name wins
			}
			e.key = k
		}
		if !slices.Contains(Keys, e.key) {
			c.Problems = append(c.Problems, Problem{Key: e.key, Where: position(c.File, b, e.keyOff), Unknown: true,
				Msg: fmt.Sprintf("unknown setting %q; did you mean %q?", e.key, closestKey(e.key))})
			continue
		}
		where := position(c.File, b, e.valOff)
		v, err := scalarText(e.raw)
		if err != nil {
			c.Problems = append(c.Problems, Problem{Key: e.key, Where: where, Msg: e.key + ": " + err.Error(), Using: c.standIn(e.key)})
			continue
		}
		// As in File, an empty or zero value means "not set here"; zero
		// is a real price, though.
		if v == "" || (v == "0" && c.price(e.key) == nil) {
			continue
		}
		c.setChecked(e.key, v, SourceFile, where)
	}
}

// pathErr is an I/O error without the path, which the Problem already
// names.
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// fileEntry is one member of the config file's object, with the offsets
// of its key and value.
type fileEntry struct {
	key            string
	keyOff, valOff int64
	raw            json.RawMessage
}

// posError is a parse error at a byte offset.
type posError struct {
	off int64
	msg string
}

func (e *posError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

// parseFile reads a config file as one JSON object, noting where each
// member is.
func parseFile(b []byte) ([]fileEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxAt(b, err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &posError{off: skipSpace(b, 0), msg: "the config file must hold one JSON object, like {\"capture_mode\": \"redacted\"}"}
	}
	var out []fileEntry
	for dec.More() {
		keyOff := skipSpace(b, dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxAt(b, err, keyOff)
		}
		key, _ := tok.(string)
		valOff := skipSpace(b, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxAt(b, err, valOff)
		}
		out = append(out, fileEntry{key: key, keyOff: keyOff, valOff: valOff, raw: raw})
	}
	end := skipSpace(b, dec.InputOffset())
	if _, err := dec.Token(); err != nil {
		return nil, syntaxAt(b, err, end)
	}
	if rest := skipSpace(b, dec.InputOffset()); rest < int64(len(b)) {
		return nil, &posError{off: rest, msg: "unexpected text after the settings' closing }"}
	}
	return out, nil
}

// syntaxAt turns a decoding error into a posError, at the error's own
// offset when it has one, else at off.
func syntaxAt(b []byte, err error, off int64) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// For a Decoder, Offset is where the byte that made no sense is.
		return &posError{off: se.Offset, msg: "invalid JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &posError{off: int64(len(b)), msg: "invalid JSON: the file ends before the settings' closing }"}
	}
	return &posError{off: off, msg: "invalid JSON: " + err.Error()}
}

// skipSpace returns the offset of the first byte at or after off that is
// not white space, a colon or a comma.
func skipSpace(b []byte, off int64) int64 {
	for off < int64(len(b)) {
		switch b[off] {
		case ' ', '\t', '\r', '\n', ':', ',':
			off++
			continue
		}
		break
	}
	return off
}

// position renders a byte offset of file's content b as file:line:column,
// both counted from 1, columns in characters.
func position(file string, b []byte, off int64) string {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len([]rune(string(before[bytes.LastIndexByte(before, '\n')+1:]))) + 1
	return fmt.Sprintf("%s:%d:%d", file, line, col)
}

// scalarText is a member's value as Set takes it: a string's contents, a
// number or a boolean as written.
func scalarText(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("want a string or a number, got %s", strings.TrimSpace(string(raw)))
}

// closestKey is the known setting nearest to k in edit distance.
func closestKey(k string) string {
	best, bestD := "", -1
	for _, known := range Keys {
		if d := editDistance(strings.ToLower(k), known); bestD < 0 || d < bestD {
			best, bestD = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
