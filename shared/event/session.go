package event

// MergeSession folds a later record of a session into what is known of it.
// The monitor reports a session more than once (at start, when its counts
// change, at exit), and the records may reach a reader in any order:
// shipping retries, claims of different segments, other destinations'
// cursors. So the rule is field by field rather than "the latest record
// wins", and the fields that only move one way are order-free:
//
//   - a text field, the command or the warnings the later record leaves
//     empty keep what was known (a record never unsets them);
//   - the earliest start wins;
//   - the latest end wins, and its exit code with it (an end never goes
//     away: a record without one keeps the known end);
//   - the dropped count only grows.
//
// It is the one rule for every reader: the local store folds its session
// records with it, and the backend's session upsert (shared/postgres,
// sessions.go) is this function in SQL; a test on each side holds it to
// the same sequences.
func MergeSession(known, later Session) Session {
	m := known
	m.ID = later.ID
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&m.Server, later.Server},
		{&m.ServerName, later.ServerName},
		{&m.ServerVersion, later.ServerVersion},
		{&m.ClientName, later.ClientName},
		{&m.ClientVersion, later.ClientVersion},
		{&m.ProtocolVersion, later.ProtocolVersion},
		{&m.Host, later.Host},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if len(later.Command) > 0 {
		m.Command = later.Command
	}
	if len(later.Warnings) > 0 {
		m.Warnings = later.Warnings
	}
	if known.StartedAt.IsZero() || later.StartedAt.Before(known.StartedAt) {
		m.StartedAt = later.StartedAt
	}
	if later.EndedAt != nil && (known.EndedAt == nil || !later.EndedAt.Before(*known.EndedAt)) {
		m.EndedAt, m.ExitCode = later.EndedAt, later.ExitCode
	}
	m.DroppedEvents = max(known.DroppedEvents, later.DroppedEvents)
	return m
}

// SessionFold keeps what is known of each session, folding its records in
// the order a reader meets them (MergeSession). The zero value is not
// ready: use make or a literal.
type SessionFold map[string]Session

// Add folds one record in.
func (f SessionFold) Add(rec Session) {
	if known, ok := f[rec.ID]; ok {
		rec = MergeSession(known, rec)
	}
	f[rec.ID] = rec
}
