package codepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// mapping is one entry of /proc/self/smaps.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	rssKB      int64
	anonKB     int64 // private pages written by the process
}

func release() (int64, error) {
	_, kb, err := newReleaser()
	return kb, err
}

// span is an address range of a released mapping.
type span struct{ start, end uint64 }

type releaser struct {
	spans  []span
	status []byte // /proc/self/status, about 1.5 KiB, is read into it
}

func newReleaser() (releaser, int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return releaser{}, 0, fmt.Errorf("find the executable: %w", err)
	}
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return releaser{}, 0, fmt.Errorf("read the memory map: %w", err)
	}
	maps, err := parseSmaps(raw)
	if err != nil {
		return releaser{}, 0, err
	}
	r := releaser{status: make([]byte, 8<<10)}
	var released int64
	for _, m := range maps {
		if !releasable(m, exe) {
			continue
		}
		if err := dontNeed(span{m.start, m.end}); err != nil {
			return r, released, err
		}
		r.spans = append(r.spans, span{m.start, m.end})
		released += m.rssKB
	}
	return r, released, nil
}

func (r releaser) again() error {
	if len(r.spans) == 0 {
		return nil
	}
	traced, err := tracedNow(r.status)
	if err != nil || traced {
		return err
	}
	for _, s := range r.spans {
		if err := dontNeed(s); err != nil {
			return err
		}
	}
	return nil
}

// dontNeed drops the resident pages of s. By address, not through a
// slice: the range is the kernel's own account of this process's memory.
func dontNeed(s span) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(s.start), uintptr(s.end-s.start), syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("release %x-%x: %w", s.start, s.end, errno)
	}
	return nil
}

// tracedNow reports whether a debugger traces the process: the breakpoints
// it writes into the code are private pages a release would drop. It reads
// /proc/self/status into buf with system calls: through os.ReadFile and
// strings.Split, the read each second made code and type data resident that
// nothing else in the monitor touches, for the release to drop again.
func tracedNow(buf []byte) (bool, error) {
	fd, err := syscall.Open("/proc/self/status", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("read the process status: %w", err)
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read the process status: %w", err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return tracerIn(buf[:n]), nil
}

// tracerIn reports whether the TracerPid line of a /proc/<pid>/status
// names a tracer.
func tracerIn(status []byte) bool {
	const key = "\nTracerPid:"
	i := bytes.Index(status, []byte(key))
	if i < 0 {
		return false
	}
	v := status[i+len(key):]
	if end := bytes.IndexByte(v, '\n'); end >= 0 {
		v = v[:end]
	}
	v = bytes.TrimSpace(v)
	return len(v) > 0 && !bytes.Equal(v, []byte("0"))
}

// releasable holds the rule: the executable's own mappings that cannot be
// written and hold no page the process wrote. Dropping such a page loses
// nothing: the next touch reads it again from the file's page cache.
func releasable(m mapping, exe string) bool {
	return m.path == exe && (m.perms == "r-xp" || m.perms == "r--p") && m.anonKB == 0 && m.rssKB > 0
}

// parseSmaps reads the mappings of /proc/<pid>/smaps with the fields
// releasable needs.
func parseSmaps(raw []byte) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if addr, ok := strings.CutSuffix(f[0], ":"); ok {
			// A field of the current mapping: "Rss:  1234 kB".
			if len(out) == 0 || len(f) < 2 {
				continue
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch addr {
			case "Rss":
				out[len(out)-1].rssKB = n
			case "Anonymous":
				out[len(out)-1].anonKB = n
			}
			continue
		}
		// A mapping: "00400000-0083c000 r-xp 00000000 fd:01 1234  /path".
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok || len(f) < 5 {
			return nil, fmt.Errorf("memory map: unexpected line %q", line)
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("memory map: unexpected range %q", f[0])
		}
		m := mapping{start: start, end: end, perms: f[1]}
		if len(f) >= 6 {
			m.path = strings.Join(f[5:], " ")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}
