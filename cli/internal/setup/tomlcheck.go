package setup

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// checkTOML parses the whole document with go-toml's parser and applies
// TOML's rule that nothing is defined twice (a key, a table, a table made
// by dotted keys and then by a header, a value then used as a table), which
// the parser alone leaves to the decoder. It returns the error with its
// byte offset. go-toml's decoder would do the same, but it brings a
// reflection-based codec the binary does not otherwise need.
func checkTOML(data []byte) (off int, err error) {
	p := &unstable.Parser{}
	p.Reset(data)
	c := tomlChecker{kind: map[string]defKind{}, arrays: map[string]int{}}
	for p.NextExpression() {
		e := p.Expression()
		var perr error
		var at *unstable.Node
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			at, perr = c.header(e, e.Kind == unstable.ArrayTable)
		case unstable.KeyValue:
			at, perr = c.keyValue(c.table, e)
		}
		if perr != nil {
			return int(at.Raw.Offset), perr
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			if o := cap(data) - cap(pe.Highlight); o >= 0 && o <= len(data) {
				return o, err
			}
		}
		return len(data), err
	}
	return 0, nil
}

type defKind int

const (
	implicitTable defKind = iota + 1 // a prefix of a header, e.g. a in [a.b]
	headerTable                      // [a]
	dottedTable                      // a in a.b = 1
	valueKey                         // a = 1 (inline tables and arrays included)
	arrayTable                       // [[a]]
)

type tomlChecker struct {
	table  string // the current table's path
	kind   map[string]defKind
	arrays map[string]int // elements of each array of tables so far
}

// join builds a path; the separator cannot occur in a key.
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "\x00" + key
}

func display(path string) string {
	parts := strings.Split(path, "\x00")
	for i, p := range parts {
		if j := strings.IndexByte(p, '\x01'); j >= 0 {
			parts[i] = p[:j] // the element index of an array of tables
		}
	}
	return strings.Join(parts, ".")
}

// resolve maps an array-of-tables path to its last element's path.
func (c *tomlChecker) resolve(path string) string {
	if c.kind[path] == arrayTable {
		return path + "\x01" + strconv.Itoa(c.arrays[path])
	}
	return path
}

// keyNodes lists the parts of a node's (dotted) key.
func keyNodes(e *unstable.Node) []*unstable.Node {
	var nodes []*unstable.Node
	it := e.Key()
	for it.Next() {
		nodes = append(nodes, it.Node())
	}
	return nodes
}

// header checks a [table] or [[array]] header; on error it returns its
// first key part, where the decoder points too.
func (c *tomlChecker) header(e *unstable.Node, array bool) (*unstable.Node, error) {
	nodes := keyNodes(e)
	path := ""
	for i, n := range nodes {
		path = join(path, string(n.Data))
		last := i == len(nodes)-1
		switch c.kind[path] {
		case valueKey:
			return nodes[0], errors.New("key " + display(path) + " is already defined as a value")
		case 0:
			if !last {
				c.kind[path] = implicitTable
			}
		}
		if !last {
			path = c.resolve(path)
		}
	}
	first := nodes[0]
	k := c.kind[path]
	switch {
	case array && (k == 0 || k == arrayTable):
		c.kind[path] = arrayTable
		c.arrays[path]++
		c.table = c.resolve(path)
		return nil, nil
	case array:
		return first, errors.New("table " + display(path) + " is already defined; it cannot become an array of tables")
	case k == headerTable || k == arrayTable:
		return first, errors.New("table " + display(path) + " is defined twice")
	case k == dottedTable:
		return first, errors.New("table " + display(path) + " is already defined by dotted keys")
	}
	c.kind[path] = headerTable
	c.table = path
	return nil, nil
}

// keyValue checks a key = value; on error it returns the node at fault.
func (c *tomlChecker) keyValue(table string, e *unstable.Node) (*unstable.Node, error) {
	nodes := keyNodes(e)
	path := table
	for i, n := range nodes {
		path = join(path, string(n.Data))
		if i < len(nodes)-1 {
			switch c.kind[path] {
			case valueKey:
				return n, errors.New("key " + display(path) + " is already defined as a value")
			case headerTable, arrayTable, implicitTable:
				return n, errors.New("table " + display(path) + " is already defined; dotted keys cannot add to it")
			}
			c.kind[path] = dottedTable
			continue
		}
		if c.kind[path] != 0 {
			return nodes[0], errors.New("key " + display(path) + " is defined twice")
		}
		c.kind[path] = valueKey
	}
	if v := e.Value(); v.Kind == unstable.InlineTable {
		// An inline table is complete in itself: its keys are checked
		// within it and nothing may add to it later (its path is a value).
		inner := tomlChecker{kind: map[string]defKind{}, arrays: map[string]int{}}
		children := v.Children()
		for children.Next() {
			if n := children.Node(); n.Kind == unstable.KeyValue {
				if at, err := inner.keyValue("", n); err != nil {
					return at, errors.New(display(path) + ": " + err.Error())
				}
			}
		}
	}
	return nil, nil
}
