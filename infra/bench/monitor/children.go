package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// childStats describe the processes a wrapper started besides its server:
// the background shippers of a monitor with shipping on. Their memory and
// CPU are the price of shipping as much as the monitor's own, so the
// benchmark reports them next to it.
type childStats struct {
	Count int `json:"count"`
	// PeakKB is the largest peak RSS (VmHWM) of any of them.
	PeakKB int64 `json:"peak_rss_kib"`
	// CPU is their user and system time, all together.
	CPU time.Duration `json:"cpu_ns"`
}

// childTracker samples the background shippers a monitor launches
// (children running `sync --background`) until stopped, and each of them
// until it exits, even after the monitor is gone.
type childTracker struct {
	parent int
	mu     sync.Mutex
	seen   map[int]*childSample
	other  map[int]bool // children that are not shippers (the server)
	stop   chan struct{}
	done   chan struct{}
}

type childSample struct {
	peakKB int64
	ticks  int64 // utime+stime, in clock ticks
	gone   bool
}

func trackChildren(parent int) *childTracker {
	t := &childTracker{parent: parent, seen: map[int]*childSample{}, other: map[int]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

func (t *childTracker) run() {
	defer close(t.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stopping := false
	for {
		t.sample(!stopping)
		if stopping && t.allGone() {
			return
		}
		select {
		case <-t.stop:
			stopping = true
			t.stop = nil
		case <-tick.C:
		}
	}
}

// sample looks for new children (unless the parent is done) and samples
// the known ones.
func (t *childTracker) sample(findNew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if findNew {
		for _, pid := range childrenOf(t.parent) {
			if t.seen[pid] != nil || t.other[pid] {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
			if err != nil {
				continue
			}
			if strings.Contains(string(cmdline), "\x00sync\x00--background") {
				t.seen[pid] = &childSample{}
			} else {
				t.other[pid] = true
			}
		}
	}
	for pid, s := range t.seen {
		if s.gone {
			continue
		}
		ticks, ok := cpuTicks(pid)
		if !ok {
			s.gone = true
			continue
		}
		s.ticks = ticks
		s.peakKB = max(s.peakKB, vmHWM(pid))
	}
}

func (t *childTracker) allGone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.seen {
		if !s.gone {
			return false
		}
	}
	return true
}

// finish stops looking for new children and waits, at most wait, for the
// known ones to exit. A shipper launched as the monitor exited may have
// been missed between two samples and is no longer the monitor's child,
// so it is looked for by the store it works on too.
func (t *childTracker) finish(home string, wait time.Duration) childStats {
	t.mu.Lock()
	for _, pid := range testenv.Shippers(home) {
		if t.seen[pid] == nil {
			t.seen[pid] = &childSample{}
		}
	}
	t.mu.Unlock()
	close(t.stop)
	select {
	case <-t.done:
	case <-time.After(wait):
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var st childStats
	for _, s := range t.seen {
		st.Count++
		st.PeakKB = max(st.PeakKB, s.peakKB)
		st.CPU += time.Duration(s.ticks) * time.Second / clockTicks
	}
	return st
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux the benchmark runs on.
const clockTicks = 100

// childrenOf lists pid's children, from every thread's children file.
func childrenOf(pid int) []int {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// cpuTicks reads a live process's utime+stime; false once it has exited
// (or is a zombie, whose times no longer change).
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	// The command name may hold spaces; the fields after it are fixed.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return utime + stime, true
}
