package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Recorder keeps what the monitor captures. The local store's Writer
// implements it.
type Recorder interface {
	// Record appends events of the session. It must not keep evs, or
	// slices of their payloads, after it returns: the monitor reuses the
	// memory of large payloads for the next messages.
	Record(ctx context.Context, evs []event.Event) error
	// RecordSession upserts the session record; the monitor calls it at
	// start, after the handshake and at the end.
	RecordSession(ctx context.Context, s event.Session) error
	// Close flushes and syncs: after it returns every recorded event is
	// durable.
	Close() error
}

// partialRecord is implemented by an error of Recorder.Record that failed
// part-way (the store's *PartialError): the first RecordedEvents events were
// recorded.
type partialRecord interface {
	error
	RecordedEvents() int
}

// Limits of the capture pipeline. They bound the monitor's memory whatever
// the peers send; going over them costs events (counted), never bytes.
const (
	queueLines = 1024
	// coalesceWindow is how long the pipeline lets lines gather after it
	// took some, unless one was at the payload cap (see run); queueLines
	// and queueBytes must hold a window's worth.
	coalesceWindow = 2 * time.Millisecond
	queueBytes     = 4 << 20
	holdEvents     = 64
	holdBytes      = 1 << 20
	holdTimeout    = 2 * time.Second
	recordBatch    = 256
	// A reply whose request has not reached the pipeline yet waits this
	// long for it (see builder.awaitsRequest), up to parkLines lines and
	// parkBytes of prefixes; the request is normally microseconds behind.
	parkWait  = 250 * time.Millisecond
	parkLines = 64
	parkBytes = 1 << 20
)

// pipeline is the capture side of the monitor: relays offer it lines
// without ever waiting, and its one goroutine turns them into events,
// analyses them and records them.
type pipeline struct {
	rec Recorder
	log *slog.Logger
	// now is the session's clock (Config.Now): parked replies wait by it.
	now  func() time.Time
	an   *analysis.Session
	b    *builder
	pool *prefixPool // where recorded lines' prefixes go back; may be nil
	sess event.Session
	// fallback labels the server when it does not name itself and no
	// name was given.
	fallback string
	label    string
	labelSet bool

	lines   chan *line
	queued  atomic.Int64 // bytes of prefixes waiting in lines
	dropped atomic.Int64
	// recorded counts events handed to the recorder without error.
	recorded atomic.Int64

	parked      []parkedLine
	parkedBytes int

	held      []built
	heldBytes int
	holdUntil time.Time
	out       []event.Event
	// spent are pooled prefixes of lines already turned into events, and
	// spentPayloads the pooled payload buffers of those events: they go
	// back to their pools once those events are recorded.
	spent         [][]byte
	spentPayloads [][]byte
	recErr        bool // a Record failure was already logged

	// alerts gets one line per poisoned or changed tool definition seen
	// (MCP clients keep a server's stderr in their logs); nil for none.
	alerts    io.Writer
	announced map[string]bool // reasons already told
}

// newPipeline makes the capture pipeline of a session. A non-empty name is
// the server's label, whatever the server calls itself; otherwise the label
// is the server's serverInfo.name, or fallback when it gives none.
func newPipeline(rec Recorder, log *slog.Logger, now func() time.Time, sess event.Session, name, fallback string, newID func() string, an analysis.Options, pool *prefixPool) *pipeline {
	p := &pipeline{
		rec: rec, log: log, now: now, sess: sess, fallback: fallback, pool: pool,
		an:    analysis.NewSession(an),
		b:     newBuilder(sess.ID, newID),
		lines: make(chan *line, queueLines),
	}
	p.b.payloads = newPrefixPool(stringPayloadBuf, payloadPoolBuffers)
	if name != "" {
		// The label is known before any event: nothing needs holding.
		p.fixLabel(name)
	}
	return p
}

// offer queues a finished line for recording, or drops it when the queue
// is full. It never blocks: it runs on the relay's goroutines.
func (p *pipeline) offer(l *line) {
	n := int64(len(l.prefix))
	if p.queued.Add(n) > queueBytes {
		p.queued.Add(-n)
		p.drop(l)
		return
	}
	select {
	case p.lines <- l:
	default:
		p.queued.Add(-n)
		p.drop(l)
	}
}

func (p *pipeline) drop(l *line) {
	if l.pooled {
		p.pool.put(l.prefix)
	}
	n := int64(1)
	if l.valid && len(l.msgs) > 1 {
		n = int64(len(l.msgs))
	}
	p.dropped.Add(n)
}

// parkedLine is a reply waiting for its request.
type parkedLine struct {
	l     *line
	until time.Time
}

// sessionEnd is how the server's run ended.
type sessionEnd struct {
	at   time.Time
	code int
}

// run records until stop delivers the session's end, then records what is
// queued and the end, and closes the recorder.
func (p *pipeline) run(ctx context.Context, stop <-chan sessionEnd) {
	if err := p.rec.RecordSession(ctx, p.sess); err != nil {
		p.log.Warn("record session start", "err", err)
	}
	var holdTimer, parkTimer <-chan time.Time
	for {
		select {
		case l := <-p.lines:
			large := l.pooled
			p.take(l)
			for more := true; more && len(p.out) < recordBatch; {
				select {
				case l := <-p.lines:
					large = large || l.pooled
					p.take(l)
				default:
					more = false
				}
			}
			// Let the next lines pile up before coming back for them: a
			// pipeline parked on the channel is woken by every line, and on
			// a small machine that wake-up and the work it starts compete
			// with the client and server for the very round trip being
			// relayed. One wake-up per window instead of one per message.
			// Not after a line at the payload cap: its work dwarfs a
			// wake-up, and every large line left to pile up behind it
			// holds a buffer of the cap until it is built.
			if !large {
				time.Sleep(coalesceWindow)
			}
		case <-holdTimer:
			p.release()
		case <-parkTimer:
			parkTimer = nil
			p.unpark(p.now(), false)
		case end := <-stop:
			p.drain()
			p.unpark(time.Time{}, true)
			p.release()
			p.flush(ctx)
			p.sess.EndedAt, p.sess.ExitCode = &end.at, &end.code
			p.sess.DroppedEvents = p.dropped.Load()
			if err := p.rec.RecordSession(ctx, p.sess); err != nil {
				p.log.Warn("record session end", "err", err)
			}
			if err := p.rec.Close(); err != nil {
				p.log.Warn("close event store", "err", err)
			}
			return
		}
		if !p.labelSet && len(p.held) > 0 && holdTimer == nil {
			holdTimer = time.After(holdTimeout)
		}
		if p.labelSet {
			holdTimer = nil
		}
		if len(p.parked) > 0 && parkTimer == nil {
			parkTimer = time.After(p.parked[0].until.Sub(p.now()))
		}
		p.flush(ctx)
	}
}

func (p *pipeline) drain() {
	for {
		select {
		case l := <-p.lines:
			p.take(l)
		default:
			return
		}
	}
}

// take turns a line into events, unless it is a reply that must wait for
// its request.
func (p *pipeline) take(l *line) {
	p.queued.Add(-int64(len(l.prefix)))
	if p.b.awaitsRequest(l) && len(p.parked) < parkLines && p.parkedBytes+len(l.prefix) <= parkBytes {
		p.parked = append(p.parked, parkedLine{l: l, until: p.now().Add(parkWait)})
		p.parkedBytes += len(l.prefix)
		return
	}
	p.build(l)
	if len(p.parked) > 0 {
		p.unpark(p.now(), false)
	}
}

// unpark builds the parked replies whose request has arrived or whose wait
// is over, or all of them when force is set. Those still waiting keep
// their order.
func (p *pipeline) unpark(now time.Time, force bool) {
	kept := p.parked[:0]
	for _, pl := range p.parked {
		if force || !now.Before(pl.until) || !p.b.awaitsRequest(pl.l) {
			p.parkedBytes -= len(pl.l.prefix)
			p.build(pl.l)
			continue
		}
		kept = append(kept, pl)
	}
	clear(p.parked[len(kept):])
	p.parked = kept
}

// build turns a line into events. Until the server's label is known they
// are held, so every event of the session carries the same label.
func (p *pipeline) build(l *line) {
	evs := p.b.events(l)
	p.spentPayloads = append(p.spentPayloads, p.b.took...)
	clear(p.b.took)
	p.b.took = p.b.took[:0]
	held := !p.labelSet
	for _, bt := range evs {
		if p.labelSet {
			p.finish(bt)
			continue
		}
		p.held = append(p.held, bt)
		p.heldBytes += len(bt.raw)
	}
	if l.pooled {
		if held || p.b.aliased {
			// Events waiting to be analysed or recorded point into it.
			p.spent = append(p.spent, l.prefix)
		} else {
			// A message bigger than the cap: its events have their own
			// payloads and were analysed, so the prefix can serve the
			// next large line at once. When the pipeline catches up on a
			// burst, the lines of one batch then share a few buffers
			// instead of each holding its own 256 KiB until the batch is
			// recorded.
			p.pool.put(l.prefix)
		}
	}
	if !p.labelSet && (p.b.hs.serverSpoke || len(p.held) >= holdEvents || p.heldBytes >= holdBytes) {
		p.release()
	}
}

// release fixes the server label and lets held events go.
func (p *pipeline) release() {
	if !p.labelSet {
		label := p.fallback
		if p.b.hs.ServerName != "" {
			label = p.b.hs.ServerName
		}
		p.fixLabel(label)
	}
	for _, bt := range p.held {
		p.finish(bt)
	}
	p.held, p.heldBytes = nil, 0
}

func (p *pipeline) fixLabel(label string) {
	p.label, p.labelSet = label, true
	p.sess.Server = label
	// Nothing was analysed before this point (events wait for the label),
	// so every tools/list is compared under the same key.
	p.an.SetServer(label, p.sess.Command)
}

func (p *pipeline) finish(bt built) {
	bt.ev.Server = p.label
	p.an.Analyze(&bt.ev, bt.raw)
	if p.alerts != nil && bt.ev.Risk != nil {
		p.announce(&bt.ev)
	}
	p.out = append(p.out, bt.ev)
}

// announce writes one line about the tool definitions e's risk reasons
// call poisoned or changed, once per reason in a session (a client that
// lists the tools again gets the same answer).
func (p *pipeline) announce(e *event.Event) {
	var poisoned, changed, why []string
	for _, r := range e.Risk.Reasons {
		kind, tool, ok := analysis.ToolAlert(r)
		if !ok {
			if !strings.Contains(r, ":") {
				why = append(why, r)
			}
			continue
		}
		if p.announced[r] {
			continue
		}
		if p.announced == nil {
			p.announced = map[string]bool{}
		}
		p.announced[r] = true
		if kind == strings.TrimSuffix(analysis.ReasonToolPoisoning, ":") {
			poisoned = append(poisoned, tool)
		} else {
			changed = append(changed, tool)
		}
	}
	if len(poisoned)+len(changed) == 0 {
		return
	}
	var parts []string
	if len(poisoned) > 0 {
		parts = append(parts, "poisoned tool description: "+strings.Join(poisoned, ", "))
	}
	if len(changed) > 0 {
		parts = append(parts, "tool definition changed since last seen: "+strings.Join(changed, ", "))
	}
	line := fmt.Sprintf("kilometers monitor: warning: server %q: %s", p.label, strings.Join(parts, "; "))
	if len(why) > 0 {
		line += " (" + strings.Join(why, ", ") + ")"
	}
	fmt.Fprintf(p.alerts, "%s; details: kilometers show %s\n", line, e.ID)
}

// flush hands pending events and any news of the session to the recorder.
func (p *pipeline) flush(ctx context.Context) {
	if p.b.hsChanged && p.labelSet {
		p.b.hsChanged = false
		hs := p.b.hs
		p.sess.ClientName, p.sess.ClientVersion = hs.ClientName, hs.ClientVersion
		p.sess.ServerName, p.sess.ServerVersion = hs.ServerName, hs.ServerVersion
		p.sess.ProtocolVersion = hs.ProtocolVersion
		if err := p.rec.RecordSession(ctx, p.sess); err != nil {
			p.log.Warn("record session", "err", err)
		}
	}
	if len(p.out) == 0 {
		p.recycle()
		return
	}
	n := int64(len(p.out))
	if err := p.rec.Record(ctx, p.out); err != nil {
		// Events recorded before the failure are not lost: count only
		// the rest as dropped.
		var part partialRecord
		if errors.As(err, &part) {
			ok := min(max(int64(part.RecordedEvents()), 0), n)
			p.recorded.Add(ok)
			n -= ok
		}
		p.dropped.Add(n)
		if !p.recErr {
			p.recErr = true
			p.log.Warn("record events; they are counted as dropped", "err", err)
		}
	} else {
		p.recorded.Add(n)
	}
	// Recorders do not keep the events, so the array serves the next batch,
	// unless a burst made it big.
	clear(p.out)
	p.out = p.out[:0]
	if cap(p.out) > keptBuilt {
		p.out = nil
	}
	p.recycle()
}

// recycle gives spent prefixes back to the pool once no event made from
// them is waiting: recorded events are not kept by the recorder, but held
// ones still point into their line.
func (p *pipeline) recycle() {
	if len(p.held) > 0 || len(p.out) > 0 {
		return
	}
	for i, b := range p.spent {
		p.pool.put(b)
		p.spent[i] = nil
	}
	p.spent = p.spent[:0]
	for i, b := range p.spentPayloads {
		p.b.payloads.put(b)
		p.spentPayloads[i] = nil
	}
	p.spentPayloads = p.spentPayloads[:0]
}

// payloadPoolBuffers is how many idle string payload buffers the pipeline
// keeps (72 KiB each): a round trip's large result, and the next.
const payloadPoolBuffers = 2
