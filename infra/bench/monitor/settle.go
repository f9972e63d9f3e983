package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Quiet is how long every variant's processes must have used no CPU for
// the machine to count as settled: longer than the monitor's coalescing
// window, after which it records what the last answer left. settleMax
// bounds the wait, so a process that never rests (a background shipper at
// work) slows the run but does not stop it.
const quiet, settleMax = 3 * time.Millisecond, 200 * time.Millisecond

// settle waits until none of pids' threads has run for quiet. The
// interleaved rounds of large results call it before each round trip:
// without it, the work a monitor does after an answer has gone out
// (encoding the payload, writing and syncing the store) runs during the
// next variant's round trip, whichever that is, and is charged to it
// instead of to the monitor. With 1 MiB results that made the bare copy
// look four times dearer than it is.
func settle(ctx context.Context, pids []int) error {
	deadline := time.Now().Add(settleMax)
	last, since := cpuNS(pids), time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		if err := pause(ctx, quiet/6); err != nil {
			return err
		}
		if now := cpuNS(pids); now != last {
			last, since = now, time.Now()
		}
	}
	return nil
}

// cpuNS is the CPU time every thread of pids and of their children has
// used so far. Processes that are gone count nothing.
func cpuNS(pids []int) int64 {
	var sum int64
	seen := map[int]bool{}
	var walk func(pid int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		ns, children := taskCPU(pid)
		sum += ns
		for _, c := range children {
			walk(c)
		}
	}
	for _, p := range pids {
		walk(p)
	}
	return sum
}

// taskCPU is the CPU time pid's threads have used so far, from
// /proc/<pid>/task/<tid>/schedstat (nanoseconds on the CPU is its first
// field), and pid's children.
func taskCPU(pid int) (ns int64, children []int) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil
	}
	for _, t := range tasks {
		if b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat")); err == nil {
			f, _, _ := strings.Cut(string(b), " ")
			n, _ := strconv.ParseInt(f, 10, 64)
			ns += n
		}
		if b, err := os.ReadFile(filepath.Join(dir, t.Name(), "children")); err == nil {
			for _, c := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(c); err == nil {
					children = append(children, n)
				}
			}
		}
	}
	return ns, children
}
