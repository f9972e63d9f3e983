package analysis

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/secrets"
)

// Reasons are machine-readable: dashboards count them and scripts match on
// them, so they never change spelling. Reasons about one tool carry its name
// after a colon ("tool_poisoning:add").
const (
	ReasonSensitivePath     = "sensitive_path"
	ReasonShellCommand      = "shell_command"
	ReasonDestructiveSQL    = "destructive_sql"
	ReasonSecretInResult    = "secret_in_result"
	ReasonSecretInArguments = "secret_in_arguments"
	ReasonPasswordInResult  = "password_in_result"
	ReasonInjectionInResult = "injection_in_result"
	ReasonLargePayload      = "large_payload"

	// Per-tool reasons, written as prefix + tool name.
	ReasonToolPoisoning     = "tool_poisoning:"
	ReasonDefinitionChanged = "definition_changed:"
	ReasonDefinitionAdded   = "definition_added:"
	ReasonDefinitionRemoved = "definition_removed:"

	// What a poisoned description does; they explain a tool_poisoning
	// reason (or an injection_in_result) and add no score of their own.
	ReasonHiddenInstructions = "hidden_instructions"
	ReasonConcealsFromUser   = "conceals_from_user"
	ReasonReadsSensitiveFile = "requests_sensitive_file"
	ReasonExfilParameter     = "exfiltration_parameter"
	ReasonInvisibleUnicode   = "invisible_unicode"
)

// Weights: what a finding adds to the method's base score. With the levels
// at 40 and 70, a finding of 60 or more makes a tools/call (base 10) high on
// its own, 30-59 makes it medium.
const (
	weightCriticalPath   = 60
	weightSensitivePath  = 35
	weightShell          = 65
	weightSQL            = 60
	weightSecret         = 60
	weightSecretInArgs   = 35
	weightPassword       = 35
	weightInjection      = 45
	weightLarge          = 20
	weightHuge           = 40
	weightPoisoning      = 80
	weightDefChanged     = 70
	weightDefAdded       = 10
	weightDefRemoved     = 5
	weightExplainsReason = 0
)

// Paths. The text is ASCII-lowercased first (macOS and Windows paths are
// case-insensitive) and holds one JSON string per line, so (?m)^ and $ are
// the edges of an argument. A path must start at a separator-like byte so
// "my.sshd_config" or "foo.envelope" do not count.
var (
	// Reading any of these hands over credentials or keys: high on a
	// tools/call.
	criticalPaths = newRule(`(?m)(?:^|[\s/\\"'=:~`+"`"+`])(?:`+
		`\.ssh(?:[/\\]|$|[\s"'])`+
		`|id_(?:rsa|dsa|ecdsa|ed25519)(?:$|[\s"'])`+
		`|\.aws[/\\](?:credentials|config)\b`+
		`|\.kube[/\\]config\b`+
		`|\.docker[/\\]config\.json`+
		`|\.git-credentials\b`+
		`|\.netrc\b`+
		`|\.pgpass\b`+
		`|\.gnupg(?:[/\\]|$|[\s"'])`+
		`|\.config[/\\]gcloud[/\\]`+
		`|\.azure[/\\]`+
		`|\.cursor[/\\]mcp\.json`+
		`|claude_desktop_config\.json`+
		`|etc/(?:shadow|gshadow|sudoers|master\.passwd)\b`+
		`|proc[/\\](?:self|\d+)[/\\]environ\b`+
		`|cookies\.sqlite\b|key4\.db\b|logins\.json\b`+
		`|(?:google[/\\]chrome|chromium|bravesoftware[/\\]brave-browser|microsoft[/\\]edge)[/\\][^\n]*(?:cookies|login data)(?:$|[\s"'])`+
		`|library[/\\]keychains[/\\]`+
		`)`,
		".ssh", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".aws", ".kube", ".docker",
		".git-credentials", ".netrc", ".pgpass", ".gnupg", "gcloud", ".azure", "mcp.json",
		"claude_desktop_config", "etc/", "environ", "cookies", "key4.db", "logins.json",
		"login data", "keychains")

	// Sensitive but also read for ordinary reasons (a project's .env while
	// debugging config, /etc/passwd is world-readable): medium.
	sensitivePaths = newRule(`(?m)(?:^|[\s/\\"'=:~])(?:`+
		`etc/passwd\b`+
		`|\.(?:bash|zsh|sh|python|psql|mysql)_history\b`+
		`|\.env(?:\.(?:local|prod|production|dev|development|staging|test))?(?:$|[\s"'])`+
		`|\.npmrc\b|\.pypirc\b|\.vault-token\b`+
		`|mcp\.json\b`+
		`)`,
		"etc/passwd", "_history", ".env", ".npmrc", ".pypirc", ".vault-token", "mcp.json")
)

// Shell commands that destroy, download-and-run, open permissions wide or
// hand a shell to the network. Ordinary commands (rm -rf node_modules, curl
// -o file, chmod 644) do not match: only these shapes are alarming enough
// for a high score.
var shellCommands = newRule(`(?m)`+
	// rm with flags on /, ~, $HOME, * or a top-level system directory.
	`\brm\s+(?:-{1,2}[a-z-]+\s+)+(?:/|/\*|~/?\*?|\$home/?|\$\{home\}/?|\*|/(?:etc|usr|bin|sbin|boot|var|home|lib|root|opt|system)/?)(?:$|[\s;&|"'])`+
	// Download piped (or substituted) into an interpreter.
	`|\b(?:curl|wget)\b[^\n|;]*\|\s*(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b`+
	`|\b(?:curl|wget)\b[^\n|;]*\|\s*(?:sudo\s+)?python[0-9.]*\b`+
	`|\b(?:ba|z)?sh\s+-c\s+["']?\$\(\s*(?:curl|wget)\b`+
	`|\b(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b`+
	`|\bbase64\s+(?:-d|--decode|-di|-D)\b[^\n]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b`+
	`|\bchmod\s+(?:-[a-z]+\s+)*0?777\b`+
	`|\bchmod\s+(?:-[a-z]+\s+)*[ugoa]*\+s\b`+
	// Reverse shells.
	`|\b(?:nc|ncat|netcat)\s(?:[^\n]*\s)?-[a-z]*[ec]\s`+
	`|/dev/tcp/`+
	`|\bbash\s+-i\s+>&`+
	// Disks and fork bombs.
	`|\bdd\s[^\n]*\bof=/dev/(?:sd|nvme|hd|disk|xvd|mmcblk)`+
	`|\bmkfs(?:\.[a-z0-9]+)?\s`+
	`|:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:`+
	// Covering tracks.
	`|\bunset\s+histfile\b|\bhistory\s+-c\b`,
	"rm", "curl", "wget", "base64", "chmod", "nc", "netcat", "/dev/tcp", "bash", "dd",
	"mkfs", ":(", "histfile", "history")

// SQL that destroys data. DELETE is destructive only without a WHERE: the
// statement ends (semicolon or end of the argument) right after the table.
var destructiveSQL = newRule(`(?m)\bdrop\s+(?:table|database|schema)\b`+
	`|\btruncate\s+(?:table\s+)?[a-z_"`+"`"+`\[]`+
	`|\bdelete\s+from\s+[a-z0-9_."`+"`"+`\[\]]+\s*(?:;|$)`,
	"drop", "truncate", "delete")

// Secrets with a recognisable shape: the formats of shared/secrets, which
// redaction replaces too, one rule each so that only the rules whose
// anchors occur run: a big benign result costs a few substring scans. They
// run on the original case.
var secretRules = func() []*rule {
	formats := secrets.Formats()
	rules := make([]*rule, len(formats))
	for i, f := range formats {
		rules[i] = newRule(f.Expr, f.Anchors...)
	}
	return rules
}()

// Password-like keys with a literal value: the assignments of
// shared/secrets, which redaction replaces too. The value must be a
// literal, so password = request.form["password"] does not count;
// placeholders are dropped afterwards by isPlaceholder.
var (
	assignments   = secrets.Assignments()
	passwordRules = func() []*rule {
		rules := make([]*rule, len(assignments))
		for i, a := range assignments {
			rules[i] = newRule(a.Expr, a.Anchors...)
		}
		return rules
	}()
)

var placeholderWords = [][]byte{
	[]byte("example"), []byte("changeme"), []byte("placeholder"), []byte("your"),
	[]byte("xxx"), []byte("***"), []byte("..."), []byte("redacted"), []byte("dummy"),
	[]byte("password"), []byte("secret"), []byte("<"), []byte("{"), []byte("$"),
	[]byte("("), []byte("["), []byte("%"), []byte("•"),
	// An escape sequence is code spelling a character ("\u3299"), not a
	// password typed in.
	[]byte("\\"),
}

// Hidden instructions: what tool-poisoning descriptions and prompt
// injections in fetched content say. Run on lowercased text. The gaps are
// unbounded but stop at a sentence or line end: counted repetition
// ({0,80}) would multiply the regexp's states and its cost.
var (
	hiddenTags = newRule(`<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|sys)\s*>`, "<")

	overrides = newRule(`\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other|system)\s+(?:instructions?|prompts?|rules|directions|guidelines)`,
		"ignore", "disregard", "forget", "override")

	concealment = newRule(`\b(?:do\s+not|don'?t|never|must\s+not|should\s+not)\s+(?:tell|mention|inform|notify|reveal|disclose|alert|show|let)\b[^.]*\b(?:user|human)`+
		`|\bwithout\s+(?:telling|informing|notifying|alerting|asking|letting)\s+(?:the\s+)?(?:user|human)`+
		`|\b(?:hide|conceal)\b[^.\n]*\bfrom\s+(?:the\s+)?(?:user|human)`+
		`|\bthe\s+user\s+(?:must|should)\s+not\s+(?:know|see|be\s+told)`,
		"user", "human")

	// A description that asks the model to read a credential file.
	fileRequests = newRule(`\b(?:read|cat|send|pass|include|upload|copy|attach|exfiltrate|provide|forward)\b[^\n]*(?:~/\.ssh|\.ssh/|id_rsa|id_ed25519|mcp\.json|\.cursor/|claude_desktop_config|\.aws/|credentials\.json|/etc/shadow|/etc/passwd|\.kube/config|\.netrc|\.git-credentials|\.env\b|private key)`,
		".ssh", "id_rsa", "id_ed25519", "mcp.json", ".cursor/", "claude_desktop_config", ".aws/",
		"credentials.json", "/etc/", ".kube/", ".netrc", ".git-credentials", ".env", "private key")

	// A description that asks the model to put some content into a
	// parameter ("pass its content as 'sidenote'").
	exfilParams = newRule(`\b(?:pass|send|include|put|provide|insert|append|embed)\b[^.]*\bcontents?\b[^.]*\b(?:as|in|into|via|inside)\s+(?:the\s+)?(?:['"`+"`"+`][a-z_][a-z0-9_]*['"`+"`"+`]|[a-z_]*\s*(?:parameter|param|argument|field))`,
		"content")
)

// rule is a regexp behind a literal pre-check: the regexp runs only when one
// of its anchors (substrings every match contains) occurs in the text. Go's
// regexp engine, without a literal prefix to skip ahead with, steps through
// every byte, and the rules run on every call and result; finding anchors is
// one pass over the text for all rules of a ruleSet together.
//
// The regexp is compiled the first time an anchor occurs, not at package
// initialisation: compiling all of them cost about 0.5 MB of heap in every
// process that links the package, and most texts never reach most rules.
type rule struct {
	anchors [][]byte
	re      func() *regexp.Regexp
	bit     uint64 // the rule's bit in its ruleSet's masks, set once at init
}

func newRule(pattern string, anchors ...string) *rule {
	r := &rule{re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })}
	for _, a := range anchors {
		r.anchors = append(r.anchors, []byte(a))
	}
	return r
}

// match runs the rule on text when mask (from its ruleSet's scan of text)
// says an anchor occurred.
func (r *rule) match(mask uint64, text []byte) bool {
	return mask&r.bit != 0 && r.re().Match(text)
}

// ruleSet finds, in one pass, which of its rules' anchors occur in a text:
// a bitmap of the anchors' first two bytes rejects almost every position,
// and the few left are compared with the anchors starting with that byte.
type ruleSet struct {
	pairs   [1 << 16 / 8]byte
	byFirst [256][]anchorRef
}

type anchorRef struct {
	lit []byte
	bit uint64
}

// newRuleSet indexes rules (at most 64) and gives each its bit. It runs at
// package initialisation; the rules are not changed afterwards.
func newRuleSet(rules ...*rule) *ruleSet {
	rs := &ruleSet{}
	for i, r := range rules {
		r.bit = 1 << i
		for _, a := range r.anchors {
			rs.byFirst[a[0]] = append(rs.byFirst[a[0]], anchorRef{a, r.bit})
			if len(a) == 1 {
				for next := range 256 {
					rs.setPair(a[0], byte(next))
				}
			} else {
				rs.setPair(a[0], a[1])
			}
		}
	}
	return rs
}

func (rs *ruleSet) setPair(a, b byte) {
	p := int(a)<<8 | int(b)
	rs.pairs[p>>3] |= 1 << (p & 7)
}

// scan returns the bits of the rules whose anchors occur in text.
func (rs *ruleSet) scan(text []byte) uint64 {
	// The loop runs on every byte of up to ScanLimit of text, twice per
	// result: a uint16 pair indexes the bitmap with no bounds check, and
	// the last byte (paired with zero) is taken apart from the loop.
	var found uint64
	if len(text) == 0 {
		return 0
	}
	last := len(text) - 1
	for i := 0; i < last; i++ {
		if p := uint16(text[i])<<8 | uint16(text[i+1]); rs.pairs[p>>3]&(1<<(p&7)) != 0 {
			found = rs.anchorsAt(text, i, found)
		}
	}
	if p := uint16(text[last]) << 8; rs.pairs[p>>3]&(1<<(p&7)) != 0 {
		found = rs.anchorsAt(text, last, found)
	}
	return found
}

// has reports whether some anchor of rs starts with the pair p.
func (rs *ruleSet) has(p uint16) bool { return rs.pairs[p>>3]&(1<<(p&7)) != 0 }

// union is what scanBoth looks up: lowerRules' pairs and trigrams and
// secretSet's, ASCII-lowercased, so that a position of the lowered text
// it rejects starts no anchor of either set, in the lowered text or in the
// original.
type union struct {
	// pairs has the bit of every anchor's first two bytes (all 256 second
	// bytes for a one-byte anchor), indexed by the pair as a little-endian
	// load reads it: first byte low.
	pairs [1 << 16 / 64]uint64
	// short has the pairs that start an anchor of one or two bytes, which
	// no trigram describes.
	short [1 << 16 / 64]uint64
	// trigrams has a bit, at trigramBit's hash, for the first three bytes
	// of every longer anchor. In source code and prose one position in
	// eight or ten has a pair of some anchor ("co", "se", "an"); most of
	// those are no anchor's first three bytes, and comparing anchors at
	// them was most of what the pass cost on such text.
	trigrams [1 << 16 / 64]uint64
}

var both = newUnion(lowerRules, secretSet)

// loweredAnchors calls f with every anchor of the sets, ASCII-lowercased.
func loweredAnchors(f func(lit []byte), sets ...*ruleSet) {
	for _, rs := range sets {
		for c := range 256 {
			for _, a := range rs.byFirst[c] {
				lit := []byte(string(a.lit))
				for i := range lit {
					lit[i] = lowerByte(lit[i])
				}
				f(lit)
			}
		}
	}
}

func newUnion(lowered, exact *ruleSet) *union {
	u := &union{}
	set := func(t *[1 << 16 / 64]uint64, b uint32) { t[b>>6] |= 1 << (b & 63) }
	loweredAnchors(func(lit []byte) {
		switch len(lit) {
		case 1:
			for next := range uint32(256) {
				set(&u.pairs, uint32(lit[0])|next<<8)
				set(&u.short, uint32(lit[0])|next<<8)
			}
		case 2:
			set(&u.pairs, uint32(lit[0])|uint32(lit[1])<<8)
			set(&u.short, uint32(lit[0])|uint32(lit[1])<<8)
		default:
			set(&u.pairs, uint32(lit[0])|uint32(lit[1])<<8)
			set(&u.trigrams, trigramBit(uint32(lit[0])|uint32(lit[1])<<8|uint32(lit[2])<<16))
		}
	}, lowered, exact)
	return u
}

// trigramBit hashes three bytes (first byte low) to a bit of
// union.trigrams: a multiplicative hash, whose top bits mix all three.
func trigramBit(t uint32) uint32 { return t * 0x9E3779B1 >> 16 }

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// scanBoth is lowerRules.scan of the ASCII-lowercased text and
// secretSet.scan(text) in one pass, and reports whether text is all ASCII
// (the invisible characters the rules look for are not). A request or
// result is read for both, and the lookup per byte was most of what
// reading it cost. It runs on up to ScanLimit of every result, so
// positions are looked up eight at a time from one load, lowered in the
// register (each a bit test of union.pairs); a position that passes is
// handed to scanState.at. The lowered copy the regexps need is made only
// when an anchor of a rule that will run was found (see Session.lowered):
// most large results have none.
//
// Where the CPU has a vector kernel for the pair test (pairCandidates), it
// takes the positions 64 at a time and this loop only the last few, in a
// text of vectorMin bytes or more: the text of most messages is a few
// hundred bytes, which the loop scans in well under a microsecond, and
// some CPUs lower their clock for a while after 512-bit instructions.
func scanBoth(text []byte) (lowMask, secretMask uint64, ascii bool) {
	if len(text) < vectorMin {
		return scanBothWith(nil, text)
	}
	return scanBothWith(vectorPairs, text)
}

// vectorMin is the shortest text scanBoth hands to the vector kernel.
const vectorMin = 1 << 10

// scanBothWith is scanBoth with the vector kernel's tables, or with none.
func scanBothWith(vt *pairTables, text []byte) (lowMask, secretMask uint64, ascii bool) {
	t := &both.pairs
	st := scanState{text: text}
	var high uint64
	i := 0
	if vt != nil {
		var nonASCII bool
		i, nonASCII = st.vectorPass(vt)
		if nonASCII {
			high = highs
		}
	}
	for ; i+9 <= len(text); i += 8 {
		raw := binary.LittleEndian.Uint64(text[i:])
		high |= raw
		w := lower8(raw)
		if p := w & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i)
		}
		if p := w >> 8 & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 1)
		}
		if p := w >> 16 & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 2)
		}
		if p := w >> 24 & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 3)
		}
		if p := w >> 32 & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 4)
		}
		if p := w >> 40 & 0xffff; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 5)
		}
		if p := w >> 48; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 6)
		}
		if p := w>>56 | uint64(lowerByte(text[i+8]))<<8; t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i + 7)
		}
	}
	for ; i < len(text); i++ {
		high |= uint64(text[i])
		p := uint64(lowerByte(text[i]))
		if i+1 < len(text) {
			p |= uint64(lowerByte(text[i+1])) << 8
		}
		if t[p>>6]&(1<<(p&63)) != 0 {
			st.at(i)
		}
	}
	return st.low, st.secret, high&highs == 0
}

// scanState is what scanBoth found so far.
type scanState struct {
	text        []byte
	low, secret uint64
}

// vectorPass hands at the positions that pairCandidates passes, 64 at a
// time while 66 bytes are left, and returns where it stopped and whether a
// byte before that was 0x80 or more.
func (st *scanState) vectorPass(vt *pairTables) (int, bool) {
	var out [64]uint64
	text := st.text
	i, high := 0, false
	for {
		n := min((len(text)-2-i)/64, len(out))
		if n <= 0 {
			return i, high
		}
		if pairCandidates(vt, text[i:i+64*n+2], out[:n]) {
			high = true
		}
		for j, m := range out[:n] {
			for ; m != 0; m &= m - 1 {
				st.at(i + 64*j + bits.TrailingZeros64(m))
			}
		}
		i += 64 * n
	}
}

// at adds the anchors that start at i, a position whose lowered pair is in
// union.pairs: first the lowered trigram (or the pair, for a short anchor)
// must be one of some anchor's, then each set compares its anchors of that
// first byte, lowerRules ignoring ASCII case, secretSet exactly.
func (st *scanState) at(i int) {
	text := st.text
	if i+2 < len(text) {
		pl := uint32(lowerByte(text[i])) | uint32(lowerByte(text[i+1]))<<8
		if both.short[pl>>6]&(1<<(pl&63)) == 0 {
			if b := trigramBit(pl | uint32(lowerByte(text[i+2]))<<16); both.trigrams[b>>6]&(1<<(b&63)) == 0 {
				return
			}
		}
	}
	p := uint16(lowerByte(text[i])) << 8
	q := uint16(text[i]) << 8
	if i+1 < len(text) {
		p |= uint16(lowerByte(text[i+1]))
		q |= uint16(text[i+1])
	}
	if lowerRules.has(p) {
		st.low = lowerRules.anchorsAtFold(text, i, st.low)
	}
	if secretSet.has(q) {
		st.secret = secretSet.anchorsAt(text, i, st.secret)
	}
}

// anchorsAtFold is anchorsAt for a set whose anchors are lower case, on
// text not lowered: what anchorsAt finds at i in the lowered text.
func (rs *ruleSet) anchorsAtFold(text []byte, i int, found uint64) uint64 {
	for _, a := range rs.byFirst[lowerByte(text[i])] {
		if found&a.bit == 0 && hasPrefixFold(text[i:], a.lit) {
			found |= a.bit
		}
	}
	return found
}

// hasPrefixFold reports whether s starts with lit, lower case, ignoring the
// ASCII case of s.
func hasPrefixFold(s, lit []byte) bool {
	if len(s) < len(lit) {
		return false
	}
	for k, c := range lit {
		if lowerByte(s[k]) != c {
			return false
		}
	}
	return true
}

// anchorsAt adds to found the bits of the anchors text[i:] starts with.
func (rs *ruleSet) anchorsAt(text []byte, i int, found uint64) uint64 {
	for _, a := range rs.byFirst[text[i]] {
		if found&a.bit == 0 && bytes.HasPrefix(text[i:], a.lit) {
			found |= a.bit
		}
	}
	return found
}

// The rule sets: lowerRules run on ASCII-lowercased text, secretRules on
// the original.
var (
	lowerRules = newRuleSet(append([]*rule{criticalPaths, sensitivePaths, shellCommands, destructiveSQL,
		hiddenTags, overrides, concealment, fileRequests, exfilParams}, passwordRules...)...)
	secretSet = newRuleSet(secretRules...)
)

// requestRules and resultRules are the lowerRules bits of the rules that
// checkRequest and checkResult run: the text is lowered for them only when
// scanBoth found an anchor of one.
var (
	requestRules = criticalPaths.bit | sensitivePaths.bit | shellCommands.bit | destructiveSQL.bit
	resultRules  = func() uint64 {
		bits := hiddenTags.bit | overrides.bit
		for _, r := range passwordRules {
			bits |= r.bit
		}
		return bits
	}()
)

// matchPaths checks request text for sensitive paths.
func matchPaths(mask uint64, lower []byte) (string, int, bool) {
	if criticalPaths.match(mask, lower) {
		return ReasonSensitivePath, weightCriticalPath, true
	}
	if sensitivePaths.match(mask, lower) {
		return ReasonSensitivePath, weightSensitivePath, true
	}
	return "", 0, false
}

// hasSecret reports whether text holds a recognisable credential.
func hasSecret(text []byte) bool {
	return secretIn(secretSet.scan(text), text)
}

// secretIn is hasSecret with secretSet's mask of text already found.
func secretIn(mask uint64, text []byte) bool {
	if mask == 0 {
		return false
	}
	for _, r := range secretRules {
		if r.match(mask, text) {
			return true
		}
	}
	return false
}

// hasPassword reports whether lower holds a password-like key with a literal
// value that is not a placeholder.
func hasPassword(mask uint64, lower []byte) bool {
	for i, r := range passwordRules {
		if mask&r.bit == 0 {
			continue
		}
		// Allocates, but only on text that names a password-like key.
		for _, m := range r.re().FindAllSubmatchIndex(lower, 16) {
			if m[2] < 0 {
				continue
			}
			v := lower[m[2]:m[3]]
			if assignments[i].Unquoted && len(v) < 16 && allLetters(v) {
				continue
			}
			if !isPlaceholder(v) {
				return true
			}
		}
	}
	return false
}

func allLetters(v []byte) bool {
	for _, c := range v {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isPlaceholder(v []byte) bool {
	for _, w := range placeholderWords {
		if bytes.Contains(v, w) {
			return true
		}
	}
	// A run of one repeated character ("aaaaaa", "000000") is a mask.
	same := true
	for _, c := range v[1:] {
		if c != v[0] {
			same = false
			break
		}
	}
	return same
}

// instructionSignals appends the explaining reasons for hidden instructions
// found in lower (lowercased text) and text (original): the description
// checks when strict, the subset that is rare in ordinary content
// otherwise. ascii says text is all ASCII (lowerText), so it holds no
// invisible character.
func instructionSignals(dst []string, mask uint64, text, lower []byte, ascii, strict bool) []string {
	if hiddenTags.match(mask, lower) || overrides.match(mask, lower) {
		dst = append(dst, ReasonHiddenInstructions)
	}
	if strict {
		// Concealment phrasing is rare in a tool description but common
		// enough in documents and code comments ("never show the user a
		// stack trace") to stay out of the result checks.
		if concealment.match(mask, lower) {
			dst = append(dst, ReasonConcealsFromUser)
		}
		if fileRequests.match(mask, lower) {
			dst = append(dst, ReasonReadsSensitiveFile)
		}
		if exfilParams.match(mask, lower) {
			dst = append(dst, ReasonExfilParameter)
		}
	}
	if !ascii && hasInvisible(text, strict) {
		dst = append(dst, ReasonInvisibleUnicode)
	}
	return dst
}

// hasInvisible reports whether text holds characters that render as nothing
// but reach the model: Unicode tag characters (U+E0000-U+E007F, "ASCII
// smuggling") and bidi overrides always; when strict (tool descriptions,
// where they have no business), also zero-width characters, bidi marks and
// isolates. A zero-width joiner after a symbol is an emoji sequence and is
// allowed.
func hasInvisible(text []byte, strict bool) bool {
	prev := rune(0)
	for i := 0; i < len(text); {
		if i+8 <= len(text) && binary.LittleEndian.Uint64(text[i:])&highs == 0 {
			// Eight ASCII bytes at once: nothing invisible among them.
			prev = rune(text[i+7])
			i += 8
			continue
		}
		c := text[i]
		if c < utf8.RuneSelf {
			prev = rune(c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		i += n
		switch {
		case r >= 0xE0000 && r <= 0xE007F, r == 0x202D, r == 0x202E:
			return true
		case !strict:
		case r == 0x200D:
			if prev < 0x2190 {
				return true
			}
		case r == 0x200B, r == 0x200C, r == 0x200E, r == 0x200F,
			r >= 0x202A && r <= 0x202C,
			r >= 0x2060 && r <= 0x2064,
			r >= 0x2066 && r <= 0x2069,
			r == 0xFEFF:
			return true
		}
		prev = r
	}
	return false
}

// ToolAlert reports whether reason says a tool's definition warrants an
// alert (a poisoned description, or a change since the user last saw it)
// and splits it into that kind (ReasonToolPoisoning or
// ReasonDefinitionChanged without the colon) and the tool's name. Stats,
// the monitor's warning and alerts name the tool with it.
func ToolAlert(reason string) (kind, tool string, ok bool) {
	for _, prefix := range []string{ReasonToolPoisoning, ReasonDefinitionChanged} {
		if name, found := strings.CutPrefix(reason, prefix); found && name != "" {
			return prefix[:len(prefix)-1], name, true
		}
	}
	return "", "", false
}
