package event

// ShortIDLen is how much of an id a terminal shows: the end of a UUIDv7 is
// random (its start is the time, shared by neighbours), and 12 hex digits
// tell a store's events apart. Commands that take an id take this end too.
const ShortIDLen = 12

// ShortID is the end of an id, as tables show it.
func ShortID(id string) string {
	if len(id) <= ShortIDLen {
		return id
	}
	return id[len(id)-ShortIDLen:]
}
