// Package analysis scores events: cost, token estimate and risk. It runs where
// events are made (the monitor), before redaction, so it sees real payloads;
// its results travel in the event.
//
// Analyze runs on the monitor's recording goroutine for every message, so it
// is built to be cheap on plain traffic: the JSON is walked, not decoded into
// a tree; text goes into buffers the Session reuses; every scan is bounded by
// Options.ScanLimit; the costly rules run only on the methods they concern
// (arguments of tools/call, resources/read and prompts/get; their results;
// tools/list). The rules are documented with examples in docs/analysis.md.
package analysis

import (
	"math"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

// CostModel chooses how an event's cost is estimated.
type CostModel string

const (
	// CostPerKB is the seeds' model: every message costs its size in KB
	// (1024 bytes) times Options.CostPerKB.
	CostPerKB CostModel = "per_kb"
	// CostPerToken charges what reaches the model's context: results of
	// tools/call, resources/read and prompts/get at InputPricePerMTok, and
	// tools/call arguments (which the model wrote) at OutputPricePerMTok.
	// Everything else costs nothing.
	CostPerToken CostModel = "per_token"
)

// Score thresholds of the levels: low below MediumScore, high from HighScore.
const (
	MediumScore = 40
	HighScore   = 70
)

// Defaults of Options.
const (
	DefaultCostPerKB          = 0.001
	DefaultInputPricePerMTok  = 3.0
	DefaultOutputPricePerMTok = 15.0
	DefaultCharsPerToken      = 4.0
	// DefaultScanLimit bounds the decoded text the rules read per message
	// (per tool for tools/list): enough for any argument list and the head
	// of a large result, small enough that no regexp runs over megabytes.
	DefaultScanLimit = 128 << 10
	// DefaultLargePayload is the size from which a message is large
	// (ten times that: very large).
	DefaultLargePayload = 1 << 20
	// tokenScanLimit bounds the bytes counted for the token estimate; the
	// rest of a bigger message is extrapolated from its size.
	tokenScanLimit = 1 << 20
	// tokenSample is what is counted of a message analysed from a prefix
	// (the monitor keeps 256 KiB of a larger one): its estimate is an
	// extrapolation from the head's characters per byte however much of
	// the prefix is counted, and 64 KiB (what the monitor stores of such a
	// message) holds a thousand lines or more of any text, enough for
	// that ratio (escapes and multi-byte characters per byte) to settle.
	// Counting the whole prefix cost 0.1 ms per 1 MiB result.
	tokenSample = 64 << 10
)

// Options configure analysis. Prices of zero are zero (free); the other
// fields fall back to their defaults when zero.
type Options struct {
	// CostModel is CostPerKB (the default when empty) or CostPerToken.
	CostModel CostModel
	// CostPerKB is the seed cost model: dollars per 1024 bytes of payload.
	CostPerKB float64
	// InputPricePerMTok is dollars per million tokens a result adds to the
	// model's context (CostPerToken).
	InputPricePerMTok float64
	// OutputPricePerMTok is dollars per million tokens of tools/call
	// arguments, which the model generated (CostPerToken).
	OutputPricePerMTok float64
	// CharsPerToken is the token estimate's ratio of text characters to
	// tokens.
	CharsPerToken float64
	// ScanLimit bounds the decoded text, in bytes, the rules read per
	// message.
	ScanLimit int
	// LargePayload is the message size, in bytes, from which size alone
	// adds risk.
	LargePayload int64
	// Definitions remembers tool definitions across sessions for rug-pull
	// detection; nil remembers them within the session only.
	Definitions DefinitionStore
	// OnStoreError, when set, hears about Definitions failures (analysis
	// carries on without the store).
	OnStoreError func(error)
}

// DefaultOptions are the seeds' rules: $0.001 per KB.
func DefaultOptions() Options {
	return Options{
		CostModel:          CostPerKB,
		CostPerKB:          DefaultCostPerKB,
		InputPricePerMTok:  DefaultInputPricePerMTok,
		OutputPricePerMTok: DefaultOutputPricePerMTok,
		CharsPerToken:      DefaultCharsPerToken,
		ScanLimit:          DefaultScanLimit,
		LargePayload:       DefaultLargePayload,
	}
}

// Session analyses the events of one monitor session. It keeps state across
// events (the tool definitions seen, the findings of requests awaiting their
// response) and is not safe for concurrent use: the monitor calls it from
// its one recording goroutine.
type Session struct {
	opts Options

	serverName string
	command    []string

	// Scratch buffers reused by every Analyze call.
	text  []byte
	lower []byte
	found []finding

	// pending holds the findings of requests that had some until their
	// reply arrives, paired as the monitor pairs them (shared/rpcpair);
	// plain requests add nothing.
	pending *rpcpair.Pending[[]finding]

	known     map[string]string // tool definitions last seen this session
	pages     map[string]string // a paginated tools/list being collected
	savedKey  string
	savedDefs map[string]string
}

// maxPending bounds pending: a client that never gets answers must not grow
// the map forever. Past it, an arbitrary old entry goes.
const maxPending = 256

// NewSession starts analysis for one session.
func NewSession(opts Options) *Session {
	if opts.CostModel == "" {
		opts.CostModel = CostPerKB
	}
	if opts.CharsPerToken <= 0 {
		opts.CharsPerToken = DefaultCharsPerToken
	}
	if opts.ScanLimit <= 0 {
		opts.ScanLimit = DefaultScanLimit
	}
	if opts.LargePayload <= 0 {
		opts.LargePayload = DefaultLargePayload
	}
	return &Session{opts: opts, pending: rpcpair.NewPending[[]finding](maxPending)}
}

// SetServer tells the session which server it watches, for the definition
// store's key (see DefinitionKey). Call it with the command at start and
// again with the server's name once the initialize response is known; until
// then definitions are keyed on the command alone.
func (s *Session) SetServer(name string, command []string) {
	s.serverName = name
	s.command = append([]string(nil), command...)
}

// Analyze fills e.Risk, e.CostUSD and e.Tokens. raw is the whole message as it
// crossed the pipe (possibly longer than e.Payload, which may be capped).
// The monitor must have set e.Kind, e.Method (on responses too), e.RPCID and
// e.Size.
func (s *Session) Analyze(e *event.Event, raw []byte) {
	src := source(e, raw)

	e.Tokens = s.estimateTokens(e, src)
	e.CostUSD = event.RoundUSD(s.cost(e))

	s.found = s.found[:0]
	switch {
	case e.Kind == event.KindRequest && hasArguments(e.Method):
		s.checkRequest(src)
		s.remember(e.Direction, e.RPCID)
	case e.IsReply():
		s.inherit(e.Direction, e.RPCID)
		switch {
		case e.Kind == event.KindResponse && e.Method == "tools/list":
			s.checkToolsList(src)
		case e.Kind == event.KindResponse && addsToContext(e.Method):
			s.checkResult(src)
		}
	}
	switch {
	case e.Size >= 10*s.opts.LargePayload:
		s.add(ReasonLargePayload, weightHuge)
	case e.Size >= s.opts.LargePayload:
		s.add(ReasonLargePayload, weightLarge)
	}

	score := baseScore(e.Method)
	var reasons []string
	if len(s.found) > 0 {
		reasons = make([]string, len(s.found))
		for i, f := range s.found {
			reasons[i] = f.reason
			score += f.weight
		}
	}
	score = min(score, 100)
	e.Risk = &event.Risk{Score: score, Level: LevelFor(score), Reasons: reasons}
}

// LevelFor maps a score to its level.
func LevelFor(score int) event.Level {
	switch {
	case score >= HighScore:
		return event.LevelHigh
	case score >= MediumScore:
		return event.LevelMedium
	default:
		return event.LevelLow
	}
}

// baseScore is the seeds' rule, scoring by method type: calls and reads
// above prompts, prompts above listings. It stays well below MediumScore,
// so method alone never raises an alarm: what the payload says does.
func baseScore(method string) int {
	switch method {
	case "tools/call", "resources/read":
		return 10
	case "prompts/get":
		return 5
	default:
		return 0
	}
}

// hasArguments reports whether requests of method carry arguments worth
// reading: the ones that make a server act or read.
func hasArguments(method string) bool {
	switch method {
	case "tools/call", "resources/read", "resources/subscribe", "prompts/get":
		return true
	}
	return false
}

// addsToContext reports whether responses of method go into the model's
// context.
func addsToContext(method string) bool {
	switch method {
	case "tools/call", "resources/read", "prompts/get":
		return true
	}
	return false
}

// source picks the bytes to analyse: the event's own payload when it is
// whole (it is exactly this message, even when raw was a JSON-RPC batch),
// otherwise the longer of the two.
func source(e *event.Event, raw []byte) []byte {
	if len(e.Payload) > 0 && !e.PayloadTruncated && e.Kind != event.KindInvalid {
		return e.Payload
	}
	if len(raw) >= len(e.Payload) {
		return raw
	}
	return e.Payload
}

// checkRequest reads the arguments of a call or read.
func (s *Session) checkRequest(src []byte) {
	s.text = extractText(s.text[:0], src, s.opts.ScanLimit)
	mask, secrets, _ := scanBoth(s.text)
	s.lowered(mask & requestRules)
	if r, w, ok := matchPaths(mask, s.lower); ok {
		s.add(r, w)
	}
	if shellCommands.match(mask, s.lower) {
		s.add(ReasonShellCommand, weightShell)
	}
	if destructiveSQL.match(mask, s.lower) {
		s.add(ReasonDestructiveSQL, weightSQL)
	}
	if secretIn(secrets, s.text) {
		s.add(ReasonSecretInArguments, weightSecretInArgs)
	}
}

// checkResult reads what a call, read or prompt brought back.
func (s *Session) checkResult(src []byte) {
	s.text = extractText(s.text[:0], src, s.opts.ScanLimit)
	mask, secrets, ascii := scanBoth(s.text)
	s.lowered(mask & resultRules)
	if secretIn(secrets, s.text) {
		s.add(ReasonSecretInResult, weightSecret)
	} else if hasPassword(mask, s.lower) {
		s.add(ReasonPasswordInResult, weightPassword)
	}
	var buf [4]string
	if signals := instructionSignals(buf[:0], mask, s.text, s.lower, ascii, false); len(signals) > 0 {
		s.add(ReasonInjectionInResult, weightInjection)
		for _, r := range signals {
			s.add(r, weightExplainsReason)
		}
	}
}

// lowered makes s.lower the ASCII-lowercased s.text when need (the bits of
// the rules about to run whose anchors occur) is not zero, and empty
// otherwise: those rules read s.lower only when their bit is set, and the
// copy cost a pass over up to ScanLimit of every result.
func (s *Session) lowered(need uint64) {
	if need == 0 {
		s.lower = s.lower[:0]
		return
	}
	s.lower = lowerASCII(s.lower, s.text)
}

// remember keeps a request's findings for its reply.
func (s *Session) remember(dir event.Direction, id string) {
	if len(s.found) == 0 || id == "" {
		return
	}
	s.pending.Request(dir, id, append([]finding(nil), s.found...))
}

// inherit gives a reply its request's findings: the response to a read of
// ~/.ssh/id_rsa carries the key even when no rule recognises it. Only the
// request that travelled the other way with the same id counts: the
// client's reply to a server's request is no answer to the client's own
// request of that id.
func (s *Session) inherit(dir event.Direction, id string) {
	if s.pending.Len() == 0 || id == "" {
		return
	}
	if fs, ok := s.pending.Reply(dir, id); ok {
		for _, f := range fs {
			s.add(f.reason, f.weight)
		}
	}
}

// add records a reason once, keeping its highest weight.
func (s *Session) add(reason string, weight int) {
	for i := range s.found {
		if s.found[i].reason == reason {
			s.found[i].weight = max(s.found[i].weight, weight)
			return
		}
	}
	s.found = append(s.found, finding{reason, weight})
}

// estimateTokens estimates the model-context tokens of a message: the
// characters of its string values (JSON-decoded, keys left out) over
// CharsPerToken. At most tokenScanLimit bytes of a whole message are
// counted, tokenSample of a prefix; a longer or capped message is
// extrapolated from its exact size.
func (s *Session) estimateTokens(e *event.Event, src []byte) int64 {
	scanned := src
	limit := tokenScanLimit
	if int64(len(src)) < e.Size {
		limit = tokenSample
	}
	if len(scanned) > limit {
		scanned = scanned[:limit]
	}
	var chars float64
	if e.Kind == event.KindInvalid {
		chars = float64(len(scanned))
	} else {
		chars = float64(countTextChars(scanned))
	}
	if n := int64(len(scanned)); n > 0 && n < e.Size {
		chars *= float64(e.Size) / float64(n)
	}
	return int64(math.Ceil(chars / s.opts.CharsPerToken))
}

// cost prices an event under the configured model.
func (s *Session) cost(e *event.Event) float64 {
	if s.opts.CostModel != CostPerToken {
		return float64(e.Size) / 1024 * s.opts.CostPerKB
	}
	switch {
	case e.IsReply() && addsToContext(e.Method):
		return float64(e.Tokens) * s.opts.InputPricePerMTok / 1e6
	case e.IsToolCall():
		return float64(e.Tokens) * s.opts.OutputPricePerMTok / 1e6
	default:
		return 0
	}
}

// finding is one reason and what it adds to the score.
type finding struct {
	reason string
	weight int
}
